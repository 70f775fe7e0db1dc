//! `cargo xtask <task>`: the project's entry points, so that a machine with only
//! the Rust toolchain can build, try and test Tessera with one command each.
//!
//! - `demo`: installs the wasm32-wasip2 target if needed, builds the example
//!   plugins, and starts Tessera on `examples/tessera.toml`.
//! - `test [ARGS…]`: installs the target if needed and runs every test of the
//!   workspace (with cargo-nextest when installed, else `cargo test`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const EXAMPLE_PLUGINS: &[(&str, &str)] = &[
    ("client-claims", "client_claims"),
    ("api-guard", "api_guard"),
    ("roles-from-app-metadata", "roles_from_app_metadata"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        _ => Err("usage: cargo xtask demo | cargo xtask test [ARGS…]".to_owned()),
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

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
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

/// Adds the wasm32-wasip2 target through rustup when it is missing.
fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
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
        Command::new("rustup").args(["target", "add", "wasm32-wasip2"]),
        "installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)",
    )
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn demo() -> Result<(), String> {
    ensure_wasm_target()?;
    let mut build = cargo();
    build.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for (package, _) in EXAMPLE_PLUGINS {
        build.args(["-p", package]);
    }
    run(&mut build, "building the example plugins for wasm32-wasip2")?;
    let out = root().join("examples/plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (_, artifact) in EXAMPLE_PLUGINS {
        let from = target_dir().join(format!("wasm32-wasip2/release/{artifact}.wasm"));
        let to = out.join(format!("{artifact}.wasm"));
        std::fs::copy(&from, &to)
            .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    }
    run(
        cargo().args([
            "run",
            "--release",
            "-p",
            "tessera",
            "--",
            "serve",
            "--config",
            "examples/tessera.toml",
        ]),
        "starting Tessera on examples/tessera.toml (Ctrl-C stops it)",
    )
}

fn test(extra: &[String]) -> Result<(), String> {
    ensure_wasm_target()?;
    let nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
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
    run(
        &mut cmd,
        if nextest {
            "running every test (cargo nextest)"
        } else {
            "running every test (cargo test)"
        },
    )
}
