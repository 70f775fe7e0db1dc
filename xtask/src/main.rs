//! `cargo xtask <task>`: the project's entry points, so that a machine with only
//! the Rust toolchain can build, try and test Tessera with one command each.
//!
//! - `demo`: installs the wasm32-wasip2 target if needed, builds the example
//!   plugins and the `tessera` binary, prints the binary's path, and starts it
//!   on `examples/tessera.toml`. `demo --check` builds the same and, instead
//!   of serving, fails when anything had to be compiled: run after a build, it
//!   proves that the demo rebuilds nothing behind the user's back.
//! - `test [ARGS…]`: installs the target if needed and runs every test of the
//!   workspace (with cargo-nextest when installed, else `cargo test`). The
//!   store's tests run against PostgreSQL too: at `TESSERA_TEST_DATABASE_URL`
//!   when that is set, else on a throwaway server started here for the run
//!   when PostgreSQL's server programs are installed (see `postgres`).
//! - `bench [ARGS…]`: what `bench/run` does: builds `tessera` and the
//!   benchmark tools and runs `tessera-bench ARGS`, with the same throwaway
//!   PostgreSQL (as `TESSERA_BENCH_DATABASE_URL`) for its `tessera-pg` row.
//!
//! - `gen [--check]`: the files generated from the WIT (`generate.rs`); with
//!   `--check`, fails when one is out of date instead of writing it.
//!
//! Every cargo started here runs without the `CARGO_*` variables that cargo
//! set for this program (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …): build
//! scripts such as ring's rerun when those change, so passing the xtask's own
//! values down made each `cargo xtask demo` recompile ring and tessera.

mod generate;
mod postgres;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const EXAMPLE_PLUGINS: &[(&str, &str)] = &[
    ("client-claims", "client_claims"),
    ("api-guard", "api_guard"),
    ("roles-from-app-metadata", "roles_from_app_metadata"),
];

const USAGE: &str = "usage: cargo xtask demo [--check] | cargo xtask test [ARGS…] | cargo xtask bench [ARGS…] | cargo xtask gen [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => match &args[1..] {
            [] => demo(false),
            [flag] if flag == "--check" => demo(true),
            _ => Err(USAGE.to_owned()),
        },
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("gen") => match &args[1..] {
            [] => generate::run(&root(), false),
            [flag] if flag == "--check" => generate::run(&root(), true),
            _ => Err(USAGE.to_owned()),
        },
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root. Read at run time (cargo sets CARGO_MANIFEST_DIR for
/// `cargo run`): with a target folder shared between clones, the xtask binary
/// may have been built from another clone, and its compile-time path would
/// point there.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Whether cargo set `name` for this program when it ran it (cargo's
/// "environment variables Cargo sets for crates"). Those describe the xtask
/// package, not the build a child cargo is asked for.
fn set_by_cargo_for_us(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || name.starts_with("CARGO_BIN_")
        || name.starts_with("CARGO_CFG_")
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// A cargo command in the workspace root, with the environment a user's own
/// `cargo` in a shell would have.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_us) {
            c.env_remove(name);
        }
    }
    c
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// What a `cargo build` did.
#[derive(Default)]
struct Built {
    /// Crates it had to compile (not fresh), by target name.
    compiled: Vec<String>,
    /// Executables it produced or found fresh.
    executables: Vec<PathBuf>,
}

/// Runs `cargo build ARGS` with cargo's progress on standard error as usual,
/// reading cargo's JSON messages to learn what it compiled and where the
/// executables are.
fn build(args: &[&str], what: &str) -> Result<Built, String> {
    eprintln!("xtask: {what}");
    let mut child = cargo()
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let mut built = Built::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            if message["fresh"] == false
                && let Some(name) = message["target"]["name"].as_str()
            {
                built.compiled.push(name.to_owned());
            }
            if let Some(exe) = message["executable"].as_str() {
                built.executables.push(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(built)
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Adds the wasm32-wasip2 target through rustup when it is missing.
fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .current_dir(root())
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    run(
        Command::new("rustup")
            .current_dir(root())
            .args(["target", "add", "wasm32-wasip2"]),
        "installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)",
    )
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn demo(check: bool) -> Result<(), String> {
    ensure_wasm_target()?;
    let mut args = vec!["--release", "--target", "wasm32-wasip2"];
    for (package, _) in EXAMPLE_PLUGINS {
        args.extend(["-p", package]);
    }
    let plugins = build(&args, "building the example plugins for wasm32-wasip2")?;
    let out = root().join("examples/plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (_, artifact) in EXAMPLE_PLUGINS {
        let from = target_dir().join(format!("wasm32-wasip2/release/{artifact}.wasm"));
        let to = out.join(format!("{artifact}.wasm"));
        std::fs::copy(&from, &to)
            .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    }
    let host = build(&["--release", "-p", "tessera"], "building tessera")?;
    let binary = host
        .executables
        .iter()
        .find(|p| p.file_stem().is_some_and(|s| s == "tessera"))
        .cloned()
        .ok_or("cargo built no tessera executable")?;
    eprintln!(
        "xtask: the tessera binary is {}\n       (alias tessera={} to run its other commands without cargo)",
        binary.display(),
        binary.display()
    );
    if check {
        let compiled: Vec<String> = plugins.compiled.into_iter().chain(host.compiled).collect();
        if compiled.is_empty() {
            eprintln!("xtask: the demo is up to date: nothing was compiled");
            return Ok(());
        }
        return Err(format!(
            "the demo compiled {} crate{} ({}); run right after a build, it should compile nothing",
            compiled.len(),
            if compiled.len() == 1 { "" } else { "s" },
            compiled.join(", ")
        ));
    }
    serve(&binary)
}

/// Starts the demo server in place of this process, so Ctrl-C and signals
/// reach Tessera itself.
fn serve(binary: &Path) -> Result<(), String> {
    let what = "starting Tessera on examples/tessera.toml (Ctrl-C stops it)";
    eprintln!("xtask: {what}");
    let mut cmd = Command::new(binary);
    cmd.current_dir(root())
        .args(["serve", "--config", "examples/tessera.toml"]);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let e = cmd.exec();
        Err(format!("{what}: {e}"))
    }
    #[cfg(not(unix))]
    {
        run(&mut cmd, what)
    }
}

/// The variable that hands the tests a PostgreSQL server (a superuser URL;
/// each test makes a schema of its own in it).
const TEST_DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";

/// A PostgreSQL for the tests: the one named by `TESSERA_TEST_DATABASE_URL`,
/// or a throwaway server (kept running while the returned value lives), or
/// none when PostgreSQL is not installed — the PostgreSQL tests then say they
/// are skipped, or fail where `TESSERA_REQUIRE_POSTGRES` is set.
fn test_database() -> Result<Option<postgres::TestPostgres>, String> {
    if std::env::var_os(TEST_DATABASE_URL).is_some_and(|u| !u.is_empty()) {
        eprintln!("xtask: PostgreSQL tests use {TEST_DATABASE_URL}");
        return Ok(None);
    }
    let Some(bin) = postgres::find_bin() else {
        eprintln!(
            "xtask: PostgreSQL's server programs (initdb) are not installed: its tests will be \
             skipped (Debian: apt-get install postgresql; or set {TEST_DATABASE_URL})"
        );
        return Ok(None);
    };
    eprintln!(
        "xtask: starting a throwaway PostgreSQL from {}",
        bin.display()
    );
    let pg = postgres::TestPostgres::start(&bin)?;
    eprintln!("xtask: PostgreSQL tests use {}", pg.url);
    Ok(Some(pg))
}

fn test(extra: &[String]) -> Result<(), String> {
    ensure_wasm_target()?;
    let pg = test_database()?;
    let nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = cargo();
    if nextest {
        cmd.args([
            "nextest",
            "run",
            "--release",
            "--workspace",
            "--no-fail-fast",
        ]);
    } else {
        cmd.args(["test", "--release", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(extra);
    if let Some(pg) = &pg {
        cmd.env(TEST_DATABASE_URL, &pg.url);
    }
    run(
        &mut cmd,
        if nextest {
            "running every test (cargo nextest)"
        } else {
            "running every test (cargo test)"
        },
    )
}

fn bench(args: &[String]) -> Result<(), String> {
    run(
        cargo().args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "tessera",
            "-p",
            "tessera-bench",
        ]),
        "building tessera and the benchmark tools",
    )?;
    let pg = test_database()?;
    let mut cmd = Command::new(target_dir().join("release/tessera-bench"));
    cmd.current_dir(root()).args(args);
    match (&pg, std::env::var(TEST_DATABASE_URL)) {
        (Some(pg), _) => cmd.env("TESSERA_BENCH_DATABASE_URL", &pg.url),
        (None, Ok(url)) => cmd.env("TESSERA_BENCH_DATABASE_URL", url),
        (None, Err(_)) => &mut cmd,
    };
    run(&mut cmd, "running the benchmarks (tessera-bench)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_cargo_sets_for_the_xtask_are_not_passed_on() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(set_by_cargo_for_us(name), "{name}");
        }
        // What the user set for every build stays.
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_for_us(name), "{name}");
        }
    }

    #[test]
    fn a_child_cargo_does_not_see_them() {
        // The test binary runs under cargo, which set CARGO_PKG_NAME for it.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let cmd = cargo();
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert!(removed.iter().any(|n| n == "CARGO_PKG_NAME"), "{removed:?}");
        assert!(
            removed.iter().any(|n| n == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(!removed.iter().any(|n| n == "CARGO_TARGET_DIR"));
    }
}
