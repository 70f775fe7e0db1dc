//! `tessera plugin build --watch`: the plugin author's loop in one command.
//! It builds the folder, then rebuilds on every save of its sources and writes
//! the component (atomically) where the running server's configuration
//! points, so the server's own watcher hot-reloads it: edit, save, ask for a
//! token.
//!
//! What counts as a source: any file in the folder except what builds write
//! (`target/`, `node_modules/`, `__pycache__/`, hidden files and folders such
//! as `.venv/` and `.tessera/`, and `.wasm` files). A failed build is reported
//! and the last good component stays where it is.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;

use super::build::{Built, build};

/// Saves within this long of each other make one rebuild (editors write a
/// file in several steps).
const SETTLE: Duration = Duration::from_millis(200);

/// Folders builds write into, never sources.
const GENERATED: &[&str] = &["target", "node_modules", "__pycache__"];

/// Builds `dir` into `out`, then again after each change to its sources,
/// until the process is stopped. Each build's outcome goes to `report`.
pub fn watch(
    dir: &Path,
    out: Option<&Path>,
    report: &mut dyn FnMut(anyhow::Result<Built>),
) -> anyhow::Result<()> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_create() || event.kind.is_modify() || event.kind.is_remove())
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .context("cannot watch files on this system")?;
    notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;

    report(build(&dir, out));
    // What the sources look like after a build, files the build itself wrote
    // (a Cargo.lock, the SDK files) included: only a difference from this
    // starts the next build, so a build never triggers itself.
    let mut built_from = fingerprint(&dir);
    eprintln!("==> watching {} for changes (Ctrl-C stops)", dir.display());
    loop {
        let Ok(first) = rx.recv() else {
            return Ok(());
        };
        if !is_source(&dir, &first) {
            continue;
        }
        // Let the burst of writes of one save settle.
        while rx.recv_timeout(SETTLE).is_ok() {}
        if fingerprint(&dir) == built_from {
            continue;
        }
        eprintln!(
            "==> {} changed",
            first.strip_prefix(&dir).unwrap_or(&first).display()
        );
        report(build(&dir, out));
        built_from = fingerprint(&dir);
    }
}

/// Every source file under `dir` with its size and modification time.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_source(dir, &path) {
                continue;
            }
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(path),
                Ok(m) => found.push((path, m.len(), m.modified().ok())),
                Err(_) => {}
            }
        }
    }
    found.sort();
    found
}

/// Whether a change to `path` (inside `dir`) should trigger a rebuild.
fn is_source(dir: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(dir) else {
        return false;
    };
    let generated = relative.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with('.') || GENERATED.contains(&name.as_ref())
    });
    !generated && path.extension().is_none_or(|e| e != "wasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_what_the_author_edits() {
        let dir = Path::new("/p/partner-claims");
        for source in [
            "src/lib.rs",
            "Cargo.toml",
            "plugin.js",
            "plugin.py",
            "lib/util.js",
        ] {
            assert!(is_source(dir, &dir.join(source)), "{source}");
        }
        for generated in [
            "target/wasm32-wasip2/release/x.wasm",
            "partner-claims.wasm",
            "node_modules/componentize-qjs/index.js",
            "__pycache__/plugin.cpython-313.pyc",
            ".venv/lib/site.py",
            ".tessera/component.wasm",
            ".plugin.js.swp",
        ] {
            assert!(!is_source(dir, &dir.join(generated)), "{generated}");
        }
        assert!(!is_source(dir, Path::new("/elsewhere/src/lib.rs")));
    }
}
