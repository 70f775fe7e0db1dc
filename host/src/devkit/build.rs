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
    let (component, toolchain) = match lang {
        Lang::Rust => build_rust(&dir)?,
        Lang::Js => build_js(&dir)?,
        Lang::Python => build_python(&dir)?,
    };
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read the built component {}", component.display()))?;
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

fn build_rust(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    const INSTALL: &str =
        "install Rust from https://rustup.rs, then `rustup target add wasm32-wasip2`";
    if let Some(installed) = output("rustup", &["target", "list", "--installed"], dir)
        && !installed.lines().any(|t| t.trim() == "wasm32-wasip2")
    {
        run(
            Command::new("rustup").args(["target", "add", "wasm32-wasip2"]),
            "adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)",
            INSTALL,
        )?;
    }
    progress("cargo build --release --target wasm32-wasip2");
    let child = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| cannot_run("cargo", INSTALL, &e))?;
    if !child.status.success() {
        bail!(
            "cargo build failed ({}); the output above says why",
            child.status
        );
    }
    let manifest = std::path::absolute(dir.join("Cargo.toml"))?;
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
    let rustc = output("rustc", &["--version"], dir).unwrap_or_else(|| "rustc".into());
    Ok((artifact, rustc))
}

fn build_js(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    const INSTALL: &str = "install Node.js 20 or later with npm (https://nodejs.org)";
    if !dir.join("package.json").is_file() {
        bail!(
            "{}: missing package.json (with \"type\": \"module\" and the componentize-qjs dependency); `tessera plugin new NAME --lang js` writes one",
            dir.display()
        );
    }
    let tool = dir.join("node_modules/componentize-qjs/package.json");
    if !tool.is_file() {
        // `npm install` rather than `npm ci`: it honours a lock file too, and
        // npm writes locks that `npm ci` then refuses when a package's
        // optional per-platform dependencies are not all published.
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(dir),
            "npm install (componentize-qjs)",
            INSTALL,
        )?;
    }
    let version = std::fs::read_to_string(&tool)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .with_context(|| {
            format!(
                "{} is missing after npm install; add \"componentize-qjs\": \"0.4.5\" to the dependencies in package.json",
                tool.display()
            )
        })?;
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
