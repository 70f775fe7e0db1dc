//! `tessera plugin build`: a plugin folder to a component, with the
//! language's own tools (cargo, componentize-qjs, componentize-py), progress
//! on standard error and an error that says what to install when a tool is
//! missing. The component gets a `tessera-plugin` section naming its language
//! and toolchain, which `serve` reads to pick defaults (warm instances for
//! JavaScript and Python) and `inspect` shows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::scaffold::{Lang, SDK_VERSION, vendor_sdk};
use crate::config::Stage;
use crate::plugin::metadata::{BuildInfo, append_build_info};

/// What was built.
#[derive(Debug)]
pub struct Built {
    /// The component.
    pub out: PathBuf,
    /// Its language.
    pub lang: Lang,
    /// Bytes.
    pub size: u64,
    /// Seconds the build took.
    pub seconds: f64,
}

/// Builds the plugin in `dir` into `out` (default `dir/<folder name>.wasm`).
pub fn build(dir: &Path, out: Option<&Path>) -> anyhow::Result<Built> {
    let started = Instant::now();
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let lang = Lang::detect(&dir).with_context(|| {
        format!(
            "{}: not a plugin folder: expected Cargo.toml (Rust), plugin.js (JavaScript) or plugin.py (Python); create one with `tessera plugin new NAME --lang rust|js|python`",
            dir.display()
        )
    })?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("plugin")
        .to_owned();
    let out = match out {
        Some(o) => std::path::absolute(o).unwrap_or_else(|_| o.to_owned()),
        None => dir.join(format!("{name}.wasm")),
    };
    progress(&format!(
        "building {} ({lang}) -> {}",
        dir.display(),
        out.display()
    ));
    // A Rust plugin inside another workspace (the examples of this
    // repository) uses that workspace's SDK; only a folder made by `plugin
    // new` points at a vendored one.
    let vendored = lang != Lang::Rust
        || std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|m| m.contains("path = \"tessera-plugin-sdk\""));
    let changed = if vendored { vendor_sdk(&dir, lang)? } else { 0 };
    if changed > 0 {
        progress(&format!(
            "wrote {changed} SDK file(s) matching this Tessera"
        ));
    }
    let (bytes, toolchain) = match lang {
        Lang::Rust => build_rust(&dir)?,
        Lang::Js => read_built(build_js(&dir)?)?,
        Lang::Python => read_built(build_python(&dir)?)?,
    };
    let info = BuildInfo {
        language: lang.name().to_owned(),
        sdk: SDK_VERSION.to_owned(),
        toolchain,
    };
    let bytes = append_build_info(&bytes, &info);
    write_atomically(&out, &bytes)?;
    Ok(Built {
        out,
        lang,
        size: bytes.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn read_built((component, toolchain): (PathBuf, String)) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read the built component {}", component.display()))?;
    Ok((bytes, toolchain))
}

fn progress(message: &str) {
    eprintln!("==> {message}");
}

/// Writes next to `path` and renames, so a watching issuer never loads half
/// a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("plugin"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `command`, its output going to our standard error, and explains a
/// missing program with `install`.
fn run(command: &mut Command, what: &str, install: &str) -> anyhow::Result<()> {
    progress(what);
    let program = command.get_program().to_string_lossy().into_owned();
    // The tools' output goes to standard error: standard output carries only
    // the component's path.
    let status = command
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| cannot_run(&program, install, &e))?;
    if !status.success() {
        bail!("{what} failed ({status}); the output above says why");
    }
    Ok(())
}

/// Why `program` did not start: missing (with how to install it) or another
/// error.
fn cannot_run(program: &str, install: &str, e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{program} is not installed or not on PATH; {install}")
        }
        _ => anyhow::anyhow!("cannot run {program}: {e}"),
    }
}

/// Output of a short command, or `None` when it cannot run.
fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The linear-memory stack of a Rust plugin built without WASI (Rust's
/// default is 1 MiB). The stack sits below the data, so a plugin that
/// overflows it traps instead of writing over its statics.
const RUST_STACK_BYTES: u32 = 128 * 1024;

/// How a Rust plugin is built: without WASI unless its Cargo.toml asks for
/// WASI with `[package.metadata.tessera] wasi = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RustTarget {
    /// `wasm32-unknown-unknown`, made a component here: no WASI imports, so
    /// nothing of WASI to link or set up per call, a 128 KiB stack and the
    /// SDK's allocator. std's clocks, environment, files and standard
    /// streams are not there (a plugin that calls them panics).
    Bare,
    /// `wasm32-wasip2`: std as on a server, for a plugin that reads the
    /// clock or writes to standard error.
    Wasi,
}

impl RustTarget {
    fn triple(self) -> &'static str {
        match self {
            RustTarget::Bare => "wasm32-unknown-unknown",
            RustTarget::Wasi => "wasm32-wasip2",
        }
    }

    /// The target `manifest` asks for.
    fn of(manifest: &Path) -> anyhow::Result<RustTarget> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let doc: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{}: not valid TOML", manifest.display()))?;
        let wasi = doc
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("tessera"))
            .and_then(|t| t.get("wasi"));
        match wasi {
            None => Ok(RustTarget::Bare),
            Some(toml::Value::Boolean(true)) => Ok(RustTarget::Wasi),
            Some(toml::Value::Boolean(false)) => Ok(RustTarget::Bare),
            Some(other) => bail!(
                "{}: package.metadata.tessera.wasi must be true or false, not {other}",
                manifest.display()
            ),
        }
    }
}

fn build_rust(dir: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    // As cargo names it in its messages: without `..` or links.
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))
        .with_context(|| format!("cannot read {}", dir.join("Cargo.toml").display()))?;
    let target = RustTarget::of(&manifest)?;
    let triple = target.triple();
    let install = format!("install Rust from https://rustup.rs, then `rustup target add {triple}`");
    if let Some(installed) = output("rustup", &["target", "list", "--installed"], dir)
        && !installed.lines().any(|t| t.trim() == triple)
    {
        run(
            Command::new("rustup").args(["target", "add", triple]),
            &format!("adding the {triple} target (rustup target add {triple})"),
            &install,
        )?;
    }
    let stack = format!("link-arg=-zstack-size={RUST_STACK_BYTES}");
    let format = "--message-format=json-render-diagnostics";
    let args = match target {
        // `cargo rustc` passes the stack size to this crate's link alone.
        RustTarget::Bare => vec![
            "rustc",
            "--release",
            "--target",
            triple,
            "--lib",
            format,
            "--",
            "-C",
            &stack,
        ],
        RustTarget::Wasi => vec!["build", "--release", "--target", triple, format],
    };
    progress(&format!("cargo {}", args.join(" ")));
    let child = Command::new("cargo")
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| cannot_run("cargo", &install, &e))?;
    if !child.status.success() {
        bail!(
            "cargo build failed ({}); the output above says why",
            child.status
        );
    }
    let mut artifact = None;
    for line in String::from_utf8_lossy(&child.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path())
        {
            artifact = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let artifact = artifact.with_context(|| {
        format!(
            "cargo built no .wasm for {}; its [lib] needs crate-type = [\"cdylib\"]",
            manifest.display()
        )
    })?;
    let bytes = std::fs::read(&artifact)
        .with_context(|| format!("cannot read the built module {}", artifact.display()))?;
    let bytes = match target {
        RustTarget::Wasi => bytes,
        RustTarget::Bare => {
            progress("making the module a component (wit-component)");
            componentize(&bytes).with_context(|| {
                format!(
                    "{}: cannot make a component of it; a Rust plugin built without WASI must use tessera-plugin-sdk's export! (or set [package.metadata.tessera] wasi = true)",
                    artifact.display()
                )
            })?
        }
    };
    let rustc = output("rustc", &["--version"], dir).unwrap_or_else(|| "rustc".into());
    Ok((bytes, format!("{rustc}, {triple}")))
}

/// The component of a core module that carries its WIT world (the
/// `component-type` section the SDK's bindings embed), which must export a
/// stage.
fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    let component = wit_component::ComponentEncoder::default()
        .module(module)?
        .validate(true)
        .encode()?;
    let wit_component::DecodedWasm::Component(resolve, world) = wit_component::decode(&component)?
    else {
        bail!("the encoder made no component");
    };
    let exports: Vec<String> = resolve.worlds[world]
        .exports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    let stages = Stage::ALL.map(Stage::export_name);
    if !exports.iter().any(|e| stages.contains(&e.as_str())) {
        bail!(
            "it exports no stage ({}){}",
            stages.join(", "),
            if exports.is_empty() {
                String::new()
            } else {
                format!(", only {}", exports.join(", "))
            }
        );
    }
    Ok(component)
}

/// What a JavaScript plugin's build needs from npm, and the versions the SDK
/// is tested with (`host/templates/js/package.json`).
const JS_BUILD_PACKAGES: [(&str, &str); 3] = [
    ("componentize-qjs", "0.4.5"),
    ("esbuild", "0.28.2"),
    ("promise-polyfill", "8.3.0"),
];

fn build_js(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    const INSTALL: &str = "install Node.js 20 or later with npm (https://nodejs.org)";
    if !dir.join("package.json").is_file() {
        bail!(
            "{}: missing package.json (with the componentize-qjs, esbuild and promise-polyfill dependencies); `tessera plugin new NAME --lang js` writes one",
            dir.display()
        );
    }
    let tool = dir.join("node_modules/componentize-qjs/package.json");
    let installed = |package: &str| dir.join("node_modules").join(package).is_dir();
    if !JS_BUILD_PACKAGES
        .iter()
        .all(|(package, _)| installed(package))
    {
        // `npm install` rather than `npm ci`: it honours a lock file too, and
        // npm writes locks that `npm ci` then refuses when a package's
        // optional per-platform dependencies are not all published.
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(dir),
            "npm install (componentize-qjs, esbuild, promise-polyfill)",
            INSTALL,
        )?;
    }
    if let Some((package, version)) = JS_BUILD_PACKAGES.iter().find(|(p, _)| !installed(p)) {
        bail!(
            "{}: {package} is missing after npm install; add \"{package}\": \"{version}\" to the dependencies in package.json (the build needs {})",
            dir.display(),
            JS_BUILD_PACKAGES
                .iter()
                .map(|(p, v)| format!("{p} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let version = std::fs::read_to_string(&tool)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "(unknown version)".into());
    let out = dir.join(".tessera").join("component.wasm");
    run(
        Command::new("node")
            .arg(dir.join("tessera/build.mjs"))
            .arg(dir)
            .arg("--out")
            .arg(&out)
            .current_dir(dir),
        "componentize-qjs (QuickJS)",
        INSTALL,
    )?;
    Ok((out, format!("componentize-qjs {version}")))
}

fn build_python(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    const INSTALL: &str = "install Python 3.10 or later (python3 with the venv module)";
    let venv = dir.join(".venv");
    let venv_python = venv.join("bin/python");
    let has_tool = |python: &Path| {
        output(
            &python.to_string_lossy(),
            &[
                "-c",
                "import importlib.metadata as m; print(m.version('componentize-py'))",
            ],
            dir,
        )
    };
    let (python, version) = match has_tool(&venv_python) {
        Some(v) => (venv_python, v),
        None => match has_tool(Path::new("python3")) {
            Some(v) => (PathBuf::from("python3"), v),
            None => {
                if !venv_python.is_file() {
                    run(
                        Command::new("python3").args(["-m", "venv"]).arg(&venv),
                        "creating .venv (python3 -m venv .venv)",
                        INSTALL,
                    )?;
                }
                let requirements = dir.join("requirements.txt");
                let mut pip = Command::new(&venv_python);
                pip.args(["-m", "pip", "install", "--disable-pip-version-check"]);
                if requirements.is_file() {
                    pip.arg("-r").arg(&requirements);
                } else {
                    pip.arg("componentize-py==0.25.1");
                }
                run(&mut pip, "pip install componentize-py into .venv", INSTALL)?;
                let v = has_tool(&venv_python).context(
                    "componentize-py is still missing after pip install; check requirements.txt",
                )?;
                (venv_python, v)
            }
        },
    };
    let out = dir.join(".tessera").join("component.wasm");
    run(
        Command::new(&python)
            .args(["-m", "tessera_plugin.build"])
            .arg(dir)
            .arg("--out")
            .arg(&out)
            .current_dir(dir),
        "componentize-py",
        INSTALL,
    )?;
    Ok((out, format!("componentize-py {version}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_of(manifest: &str) -> anyhow::Result<RustTarget> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Cargo.toml");
        std::fs::write(&path, manifest).expect("write manifest");
        RustTarget::of(&path)
    }

    #[test]
    fn a_rust_plugin_is_built_without_wasi_unless_it_asks() {
        let package = "[package]\nname = \"p\"\nversion = \"0.1.0\"\n";
        assert_eq!(target_of(package).expect("plain"), RustTarget::Bare);
        let asks = format!("{package}\n[package.metadata.tessera]\nwasi = true\n");
        assert_eq!(target_of(&asks).expect("wasi"), RustTarget::Wasi);
        let declines = format!("{package}\n[package.metadata.tessera]\nwasi = false\n");
        assert_eq!(target_of(&declines).expect("no wasi"), RustTarget::Bare);

        let wrong = format!("{package}\n[package.metadata.tessera]\nwasi = \"yes\"\n");
        let err = target_of(&wrong).expect_err("a string").to_string();
        assert!(
            err.contains("Cargo.toml") && err.contains("package.metadata.tessera.wasi"),
            "{err}"
        );
        let err = format!("{:#}", target_of("[package").expect_err("bad TOML"));
        assert!(err.contains("not valid TOML"), "{err}");
    }

    #[test]
    fn a_module_without_a_wit_world_is_not_made_a_component() {
        // A core module with no `component-type` section: nothing says what
        // it exports.
        let module = wat::parse_str("(module (func (export \"f\")))").expect("wat");
        let err = componentize(&module).expect_err("no stage").to_string();
        assert!(err.contains("exports no stage"), "{err}");
    }
}
