//! nginx in front of Tessera replicas, configured as a deployment would be:
//! round-robin over the replicas, the client's host, address and scheme
//! passed on, a replica that refuses connections skipped, and each request's
//! replica in the access log. The tests start it on a loopback port of their
//! own with every file nginx writes in a temporary folder.
//!
//! Where nginx is not installed the tests that need it say they are skipped,
//! unless `TESSERA_REQUIRE_NGINX` is set (as in CI): then they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Endpoint, Reply, wait_for};

/// How long nginx may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The nginx program: the first `nginx` on `PATH`, else Debian's
/// `/usr/sbin/nginx` (`/usr/sbin` is not on every user's `PATH`).
pub fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("nginx"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}

/// A port and a folder for an nginx started later: the replicas' `issuer`
/// is nginx's URL, so it is known before they start, and their addresses,
/// which nginx needs, only after.
pub struct Reserved {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Reserved {
    /// The nginx program, a free loopback port and a folder, or `None` with
    /// a note that the test is skipped when nginx is not installed — a
    /// failure instead where `TESSERA_REQUIRE_NGINX` is set, as in CI.
    pub fn new() -> Option<Reserved> {
        let Some(bin) = find() else {
            assert!(
                std::env::var_os("TESSERA_REQUIRE_NGINX").is_none(),
                "TESSERA_REQUIRE_NGINX is set but nginx is not installed (not on PATH, \
                 not /usr/sbin/nginx): Debian: apt-get install nginx"
            );
            eprintln!(
                "skipping: nginx is not installed (not on PATH, not /usr/sbin/nginx; \
                 Debian: apt-get install nginx)"
            );
            return None;
        };
        // Bound, read, released: nothing listens on it until nginx does.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        Some(Reserved { bin, dir, port })
    }

    /// `http://127.0.0.1:PORT`: what the replicas' `issuer` must be.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts nginx in front of `replicas` (`http://HOST:PORT` each) and
    /// waits until it answers `/healthz` through them.
    pub fn start(self, replicas: &[&str]) -> Nginx {
        let Reserved { bin, dir, port } = self;
        let upstreams: Vec<String> = replicas
            .iter()
            .map(|r| r.trim_start_matches("http://").to_owned())
            .collect();
        // Started as root, nginx runs its workers as `nobody`, which must
        // reach the folder (the temporary folders inside are created and
        // given to it by nginx itself).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the nginx folder");
        }
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, &upstreams)).expect("write nginx.conf");
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // The log of the start, before nginx has read error_log.
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("stderr.log"))
                    .map(Stdio::from)
                    .expect("nginx stderr"),
            )
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child,
            bin,
            dir,
            base: format!("http://127.0.0.1:{port}"),
            upstreams,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
        let up = wait_for(START_TIMEOUT, || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited at start ({status}):\n{}", nginx.logs());
            }
            nginx
                .http
                .get(nginx.url("/healthz"))
                .send()
                .is_ok_and(|r| r.status() == 200)
        });
        assert!(
            up,
            "nginx did not answer /healthz within {START_TIMEOUT:?}:\n{}",
            nginx.logs()
        );
        nginx
    }
}

/// The nginx configuration: the recipe of a deployment (docs/deploy.md
/// copies it), with the lines only a test needs marked `test:`.
pub fn config(dir: &Path, port: u16, upstreams: &[String]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u} max_fails=1 fail_timeout=5s;\n"))
        .collect();
    format!(
        r#"# Tessera behind nginx: several replicas on one PostgreSQL store answer
# as one issuer, whose URL (`[server] issuer`) is this server's.

daemon off;                             # test: the test runs and stops nginx
pid {dir}/nginx.pid;                    # test
error_log {dir}/error.log notice;       # test: a deployment keeps its default
# Started as root, nginx runs its workers as this user (a deployment on
# Debian: www-data); ignored, with a warning, when not started as root.
user nobody nogroup;
worker_processes auto;

events {{
    worker_connections 1024;
}}

http {{
    # test: nginx's temporary files in the test's folder
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    # Which replica served each request, and how it answered. $request has
    # the query string: /authorize's parameters are no secrets, but
    # /oidc/logout's id_token_hint is a token.
    log_format tessera '$remote_addr [$time_local] "$request" $status '
                       'upstream=$upstream_addr upstream_status=$upstream_status '
                       'request_time=$request_time';
    access_log {dir}/access.log tessera;

    # Token requests are small forms; refuse anything larger here.
    client_max_body_size 64k;

    upstream tessera {{
        # Round-robin (nginx's default): any replica serves any request, as
        # they share the store and the signing keys. A replica that failed
        # is left out for fail_timeout.
{servers}        # Connections kept open to the replicas. A replica closes a connection
        # that stays idle for its header_read_timeout_ms (10 s by default);
        # nginx lets go of it before, so it never sends a request down a
        # connection the replica is closing (a POST that meets a closed
        # connection is not retried: the client would get a 502).
        keepalive 32;
        keepalive_timeout 5s;
    }}

    server {{
        listen 127.0.0.1:{port};           # a deployment: listen 443 ssl; with its certificate
        server_name _;

        location / {{
            proxy_pass http://tessera;
            proxy_http_version 1.1;
            proxy_set_header Connection "";   # keepalive to the replicas
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;

            # A replica that refuses the connection or does not answer in
            # time: the request goes to the next one. nginx never resends a
            # POST that a replica may have received (non_idempotent is not
            # listed), so a proxy retry never redeems a code or a refresh
            # token twice.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"#
    )
}

/// A running nginx in front of replicas, stopped on drop.
pub struct Nginx {
    child: Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The replicas' `HOST:PORT`, as nginx logs them in `upstream=`.
    pub upstreams: Vec<String>,
    http: reqwest::blocking::Client,
}

impl Endpoint for Nginx {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Nginx {
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(self.url(path))
            .send()
            .expect("GET through nginx")
    }

    /// POSTs a form to the token endpoint with optional Basic credentials.
    pub fn token(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/token", basic, form)
    }

    /// POSTs a form to `path` with optional Basic credentials.
    pub fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        Reply::from(
            req.send()
                .unwrap_or_else(|e| panic!("POST {path} through nginx: {e}")),
        )
    }

    /// The access log so far: one line per request, `upstream=HOST:PORT`
    /// naming the replica that served it.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// The configuration it runs, and its error log and standard error.
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "--- nginx.conf\n{}\n--- error.log\n{}\n--- stderr\n{}",
            read("nginx.conf").unwrap_or_default(),
            read("error.log").unwrap_or_default(),
            read("stderr.log").unwrap_or_default()
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `nginx -s stop` (SIGTERM to the master, which ends its workers);
        // SIGKILL to the master only if that did not work, since it would
        // leave the workers running.
        let conf = self.dir.path().join("nginx.conf");
        let _ = Command::new(&self.bin)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let stopped = wait_for(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
