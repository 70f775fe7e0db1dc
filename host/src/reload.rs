//! Hot reload: a file watcher on the configuration file and every plugin file,
//! `SIGHUP`, and `POST /admin/reload` all ask for the same thing — read the
//! configuration again, build a complete new [`Snapshot`] off the request path
//! (plugins whose files did not change reuse their compiled component), and
//! swap it in atomically.
//!
//! Requests hold the snapshot they started with until they finish, so nothing
//! in flight sees a half-applied change, and an old snapshot is freed when its
//! last request ends. A reload that fails (a config error, a plugin that does
//! not compile or link, a file caught mid-write) swaps nothing: the last good
//! snapshot keeps serving, and the reason is logged, shown in
//! `GET /admin/plugins` and counted on `/metrics`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::metrics::ReloadRefusal;
use crate::plugin::signature::signature_path;
use crate::{Issuer, Snapshot, SnapshotError};

/// How long the watcher waits for a burst of file events to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// What triggered a reload.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    /// A watched file changed.
    Watcher,
    /// `SIGHUP`.
    Signal,
    /// `POST /admin/reload`.
    Admin,
}

impl Trigger {
    /// Its name in the audit log: `watcher`, `signal` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Watcher => "watcher",
            Trigger::Signal => "signal",
            Trigger::Admin => "admin",
        }
    }
}

/// How the last reload attempt ended.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// When it ended (Unix seconds).
    pub at: u64,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// Per-issuer reload state.
#[derive(Default)]
pub struct State {
    /// One reload at a time.
    running: Mutex<()>,
    /// The last attempt.
    last: Mutex<Status>,
}

impl Issuer {
    /// Reloads from the configuration file the current snapshot came from.
    /// Blocking (file I/O, compilation): call [`Issuer::reload`] from async code.
    pub fn reload_blocking(&self, trigger: Trigger) -> Result<u64, String> {
        let _one_at_a_time = self
            .reloads
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot();
        let result = Config::load(&current.config.path)
            .map_err(|e| (ReloadRefusal::Config, e.to_string()))
            .and_then(|config| {
                if !config.signing.same_place(&current.config.signing) {
                    return Err((
                        ReloadRefusal::NeedsRestart,
                        "[signing] key_dir, kek_env and kek_file take effect at the next start"
                            .to_owned(),
                    ));
                }
                Snapshot::build(
                    &self.runtime,
                    Arc::new(config),
                    current.generation + 1,
                    &current.plugins,
                )
                .map_err(|e| {
                    let refusal = match e {
                        SnapshotError::Plugins { .. } => ReloadRefusal::Plugin,
                        SnapshotError::NeedsRestart(_) => ReloadRefusal::NeedsRestart,
                        SnapshotError::Keys { .. } => ReloadRefusal::Internal,
                    };
                    (refusal, e.to_string())
                })
            });
        let status = Status {
            at: self.clock.now(),
            error: result.as_ref().err().map(|(_, e)| e.clone()),
        };
        *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()) = status;
        match result {
            Ok(snapshot) => {
                // Off the request path like the build: this thread is one of
                // the runtime's blocking threads (see `reload`).
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.block_on(snapshot.start_warm_instances(&self.runtime));
                }
                let generation = snapshot.generation;
                let hashes: Vec<String> = snapshot
                    .plugins
                    .iter()
                    .map(|p| format!("{}={}", p.config.name, &p.sha256[..12]))
                    .collect();
                self.snapshot.store(Arc::new(snapshot));
                self.metrics.reload(None);
                tracing::info!(?trigger, generation, plugins = %hashes.join(" "), "reloaded");
                crate::audit::reload(trigger.as_str(), generation, None);
                Ok(generation)
            }
            Err((refusal, error)) => {
                self.metrics.reload(Some(refusal));
                crate::audit::reload(trigger.as_str(), current.generation, Some(refusal.as_str()));
                tracing::error!(?trigger, %error, reason = refusal.as_str(), generation = current.generation, "reload failed; the last good configuration keeps serving");
                Err(error)
            }
        }
    }

    /// Reloads on the blocking pool.
    pub async fn reload(self: &Arc<Self>, trigger: Trigger) -> Result<u64, String> {
        let issuer = self.clone();
        tokio::task::spawn_blocking(move || issuer.reload_blocking(trigger))
            .await
            .unwrap_or_else(|e| Err(format!("the reload task failed: {e}")))
    }

    /// How the last reload attempt ended (`None` before the first).
    pub fn last_reload(&self) -> Option<Status> {
        let last = self.reloads.last.lock().unwrap_or_else(|e| e.into_inner());
        (last.at != 0).then(|| last.clone())
    }
}

/// The files a snapshot depends on: the configuration, every plugin and
/// candidate build, and the signature of each that needs one.
fn watched_files(snapshot: &Snapshot) -> HashSet<PathBuf> {
    // A signed plugin's signature too: deploying a new version writes both
    // files, and whichever lands second must trigger the reload. And the
    // candidate build of a plugin with shadow runs, with its signature.
    let mut files: HashSet<PathBuf> = snapshot
        .config
        .plugins
        .iter()
        .flat_map(|p| {
            let builds =
                std::iter::once(p.path.clone()).chain(p.shadow.as_ref().map(|s| s.path.clone()));
            builds.flat_map(|path| {
                let signature = (!p.signers.is_empty()).then(|| signature_path(&path));
                std::iter::once(path).chain(signature)
            })
        })
        .collect();
    files.insert(
        std::path::absolute(&snapshot.config.path).unwrap_or_else(|_| snapshot.config.path.clone()),
    );
    files
}

/// Watches the folders of every watched file (so editors' write-then-rename
/// and delete-then-create are seen) and reloads after a burst of events
/// settles. The watches are in place when this returns, so a change made
/// right after start-up is not missed; the returned task runs until the
/// process ends, and after each reload the watched set follows the new
/// configuration.
pub fn watch(issuer: Arc<Issuer>) -> Option<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    // The files of the current snapshot, read by the watcher's own thread:
    // an event about any other file in the watched folders (a log written
    // next to the configuration, say) is dropped there, without waking the
    // reload task.
    let watched: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let wanted = watched.clone();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // Only content changes: a reload reads every watched file, and
            // those reads (access, metadata) must not trigger the next reload.
            use notify::EventKind::{Create, Modify, Remove};
            use notify::event::ModifyKind;
            let Ok(event) = event else { return };
            let content = match event.kind {
                Create(_) | Remove(_) => true,
                Modify(kind) => !matches!(kind, ModifyKind::Metadata(_)),
                _ => false,
            };
            if !content {
                return;
            }
            let wanted = wanted
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for path in event.paths {
                if wanted.contains(&path) {
                    let _ = tx.send(path);
                }
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching is unavailable; reload with SIGHUP or POST /admin/reload");
            return None;
        }
    };
    let mut folders: HashSet<PathBuf> = HashSet::new();
    follow(&mut watcher, &mut folders, &watched, &issuer.snapshot());
    Some(tokio::spawn(async move {
        loop {
            // Wait for an event about one of our files, then until none has
            // come for DEBOUNCE.
            if rx.recv().await.is_none() {
                return;
            }
            let mut settle = tokio::time::Instant::now() + DEBOUNCE;
            loop {
                match tokio::time::timeout_at(settle, rx.recv()).await {
                    Ok(Some(_)) => settle = tokio::time::Instant::now() + DEBOUNCE,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let _ = issuer.reload(Trigger::Watcher).await;
            follow(&mut watcher, &mut folders, &watched, &issuer.snapshot());
        }
    }))
}

/// Points the watcher at the folders of `snapshot`'s files, and the
/// watcher's filter at the files.
fn follow(
    watcher: &mut impl notify::Watcher,
    folders: &mut HashSet<PathBuf>,
    watched: &Mutex<HashSet<PathBuf>>,
    snapshot: &Snapshot,
) {
    let files = watched_files(snapshot);
    tracing::debug!(files = ?files, "watching");
    let wanted: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    // The filter first, so that no event about a new file comes before it.
    *watched
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = files;
    for gone in folders.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for new in wanted.difference(folders) {
        if let Err(e) = watcher.watch(new, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %new.display(), error = %e, "cannot watch folder");
        }
    }
    *folders = wanted;
}

/// Reloads on every `SIGHUP`.
#[cfg(unix)]
pub async fn on_sighup(issuer: Arc<Issuer>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    while hup.recv().await.is_some() {
        let _ = issuer.reload(Trigger::Signal).await;
    }
}

/// When a snapshot was built, for display.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
