//! A throwaway PostgreSQL for one test run: `initdb` into a temporary folder,
//! the server on an ephemeral loopback port (and a Unix socket in the same
//! folder), stopped and deleted when [`TestPostgres`] is dropped.
//!
//! PostgreSQL refuses to run as root; when this process is root, the folder
//! is given to `nobody` and the server's programs run as that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user (and group) the server runs as when we are root.
const NOBODY: u32 = 65534;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway server.
pub struct TestPostgres {
    /// `postgres://tessera@127.0.0.1:PORT/postgres`: the superuser `tessera`,
    /// trusted on loopback, no password.
    pub url: String,
    bin: PathBuf,
    dir: PathBuf,
    server: Child,
    as_nobody: bool,
}

/// The folder with PostgreSQL's server programs: `TESSERA_PG_BIN` when set,
/// else the newest `/usr/lib/postgresql/*/bin` (Debian's layout), else
/// `pg_config --bindir`. `None` when there is no `initdb` anywhere.
pub fn find_bin() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("TESSERA_PG_BIN").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has_initdb(&dir).then_some(dir)
}

impl TestPostgres {
    /// Creates a cluster and starts its server; ready when this returns.
    pub fn start(bin: &Path) -> Result<TestPostgres, String> {
        let as_nobody = is_root();
        let dir = std::env::temp_dir().join(format!("tessera-test-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        #[cfg(unix)]
        if as_nobody {
            std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY))
                .map_err(|e| format!("giving {} to nobody: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let mut initdb = program(bin, "initdb", &dir, as_nobody);
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "tessera",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .stdout(Stdio::null());
        let out = initdb
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let port = free_port()?;
        // Durability off (a crash loses a throwaway database, nothing else),
        // room for many test pools at once.
        let server = program(bin, "postgres", &dir, as_nobody)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let mut pg = TestPostgres {
            url: format!("postgres://tessera@127.0.0.1:{port}/postgres"),
            bin: bin.to_owned(),
            dir,
            server,
            as_nobody,
        };
        pg.wait_ready(port)?;
        Ok(pg)
    }

    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.server.try_wait() {
                return Err(format!(
                    "postgres exited at start ({status}); its log: {}",
                    self.log()
                ));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "postgres did not accept connections within {} s; its log: {}",
                    START_TIMEOUT.as_secs(),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // A fast shutdown: running sessions are ended, nothing is flushed
        // for later.
        let stopped = program(&self.bin, "pg_ctl", &self.dir, self.as_nobody)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "fast", "-s"])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One of PostgreSQL's programs, run in `dir`, as nobody when asked.
fn program(bin: &Path, name: &str, dir: &Path, as_nobody: bool) -> Command {
    let mut cmd = Command::new(bin.join(name));
    cmd.current_dir(dir);
    #[cfg(unix)]
    if as_nobody {
        use std::os::unix::process::CommandExt as _;
        cmd.uid(NOBODY).gid(NOBODY);
    }
    #[cfg(not(unix))]
    let _ = as_nobody;
    cmd
}

fn is_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // Our own process entry belongs to our effective user.
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}
