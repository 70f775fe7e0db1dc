//! Several Tessera processes on one PostgreSQL behave as one issuer: a user
//! signs in on one replica, the code is redeemed on another, the refresh
//! token is rotated on a third, and replays are caught whichever replica
//! sees them. Each test gets a schema of its own on the test server
//! (`TESSERA_TEST_DATABASE_URL`, which `cargo xtask test` provides).

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::user_flows::{
    PASSWORD, add_user, authorize_url, browser, location_params, param, pkce, sign_in, user_config,
};

pub const SPA_REDIRECT: &str = "https://app.example.com/callback";

/// A fresh PostgreSQL schema's URL, or `None` when PostgreSQL is skipped.
pub fn postgres_url() -> Option<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(tessera::store::testing::postgres_url_for_test())
}

/// A key-encryption key shared by the replicas of a test, written once as
/// `secrets/kek` (mode 0600) into `secrets`.
pub fn kek_file(secrets: &Path) -> std::path::PathBuf {
    let file = secrets.join("kek");
    if !file.exists() {
        let (ok, out, err) = run_tessera(&["keys", "new-kek"]);
        assert!(ok, "{err}");
        std::fs::write(&file, out).expect("write the KEK");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
    file
}

/// The user-flow configuration on the PostgreSQL store at `url`, the signing
/// keys in the store sealed with the KEK of `secrets` ([`kek_file`]), and a
/// pre-publication delay of `delay_secs`.
pub fn replica_config_with_delay(url: &str, secrets: &Path, delay_secs: u64) -> String {
    user_config().replacen(
        "[signing]\n",
        &format!(
            "[store]\nurl = \"{url}\"\n\n[signing]\nkek_file = \"{}\"\npre_publication_delay_secs = {delay_secs}\n",
            kek_file(secrets).display()
        ),
        1,
    )
}

/// [`replica_config_with_delay`] with the default delay.
pub fn replica_config(url: &str, secrets: &Path) -> String {
    replica_config_with_delay(url, secrets, 600)
}

/// `n` replicas on one database and one KEK.
pub fn replicas(n: usize, url: &str, keys: &Path) -> Vec<Tessera> {
    (0..n)
        .map(|_| Tessera::start(&replica_config(url, keys)))
        .collect()
}

/// Signs Ada in on `t` and returns the code and the PKCE verifier.
pub fn code_from(t: &Tessera) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        t,
        "web-spa",
        SPA_REDIRECT,
        &challenge,
        &format!("&scope=openid%20offline_access%20read:orders&audience={ORDERS}"),
    );
    let back = sign_in(&browser(), t, &url, "ada@example.com", PASSWORD);
    let params = location_params(&back);
    let code = param(&params, "code").expect("code").to_owned();
    (code, verifier)
}

/// Redeems `code` for web-spa on `t`.
pub fn redeem(t: &Tessera, code: &str, verifier: &str) -> Reply {
    t.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web-spa"),
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
}

/// Uses web-spa's refresh token `token` on `t`.
pub fn refresh(t: &Tessera, token: &str) -> Reply {
    t.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web-spa"),
            ("refresh_token", token),
        ],
    )
}

#[test]
fn sign_in_on_one_replica_redeem_on_another_refresh_on_a_third() {
    let Some(url) = postgres_url() else { return };
    let keys = tempfile::tempdir().expect("keys");
    let r = replicas(3, &url, keys.path());
    let id = add_user(&r[0], "ada@example.com", "{\"roles\":[\"reader\"]}");

    let (code, verifier) = code_from(&r[0]);
    let tokens = redeem(&r[1], &code, &verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    for replica in &r {
        assert_eq!(replica.verify(tokens.access_token(), ORDERS)["sub"], id);
    }
    let rt1 = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token");

    let rotated = refresh(&r[2], rt1);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let rt2 = rotated.body["refresh_token"].as_str().expect("rotated");
    assert_eq!(r[0].verify(rotated.access_token(), ORDERS)["sub"], id);

    // The code replayed on the first replica, the old refresh token on the
    // second: both refused, and the replay of RT1 revoked the family, so
    // RT2 is dead on every replica.
    redeem(&r[0], &code, &verifier).expect_error(400, "invalid_grant");
    refresh(&r[1], rt1).expect_error(400, "invalid_grant");
    refresh(&r[0], rt2).expect_error(400, "invalid_grant");
}

#[test]
fn store_migrate_reads_the_url_from_the_environment_and_hides_its_password() {
    let Some(url) = postgres_url() else { return };
    // The file says SQLite; TESSERA_STORE_URL wins. The test server trusts
    // loopback, so a password in the URL is accepted and ignored.
    let with_password = url.replacen("://tessera@", "://tessera:hunter2@", 1);
    let (ok, kek, err) = run_tessera(&["keys", "new-kek"]);
    assert!(ok, "{err}");
    let (dir, config) = write_config(&user_config().replacen(
        "[signing]\n",
        "[signing]\nkek_env = \"TESSERA_KEK\"\n",
        1,
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["store", "migrate", "--config", &config])
        .env("TESSERA_STORE_URL", &with_password)
        .env("TESSERA_KEK", kek.trim())
        .output()
        .expect("tessera store migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("postgres store postgres://tessera:***@")
            && stdout.contains("is at schema version 7"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    assert!(
        !dir.path().join("data/tessera.db").exists(),
        "the file's SQLite store was not used"
    );

    // A database nobody listens on: a clear error, no password.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["store", "migrate", "--config", &config])
        .env(
            "TESSERA_STORE_URL",
            "postgres://tessera:hunter2@127.0.0.1:1/tessera",
        )
        .env("TESSERA_KEK", kek.trim())
        .output()
        .expect("tessera store migrate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("opening the store postgres://tessera:***@127.0.0.1:1/tessera"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A TCP forwarder in front of the database whose line can be cut: while
/// cut, it ends every open connection and closes new ones at once, which is
/// what a replica sees when the database stops.
struct Line {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Line {
    fn to(target: SocketAddr) -> Line {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut open = open2.lock().expect("lock");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (
                        from.try_clone().expect("clone"),
                        to.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                open.extend([client, server]);
            }
        });
        Line { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn the_database_going_away_and_coming_back() {
    let Some(url) = postgres_url() else { return };
    // postgres://tessera@127.0.0.1:PORT/…: put the line in between.
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port");
    let line = Line::to(host_port.parse().expect("socket address"));
    let through = url.replacen(host_port, &format!("127.0.0.1:{}", line.port), 1);
    let keys = tempfile::tempdir().expect("keys");
    let config = replica_config(&through, keys.path()).replacen(
        "[store]\n",
        "[store]\nconnect_timeout_secs = 2\nstatement_timeout_secs = 2\n",
        1,
    );
    let t = Tessera::start(&config);
    add_user(&t, "ada@example.com", "{}");
    let (code, verifier) = code_from(&t);
    let tokens = redeem(&t, &code, &verifier);
    let rt = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (code2, verifier2) = code_from(&t);

    line.cut();
    // Client credentials never touch the database.
    for _ in 0..20 {
        let reply = t.acme(&[("audience", ORDERS)]);
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Code and refresh exchanges: 503, Retry-After, server_error, quickly.
    for reply in [refresh(&t, &rt), redeem(&t, &code2, &verifier2)] {
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.header("retry-after"), "1");
        assert_eq!(reply.body["error"], "server_error");
    }
    let started = Instant::now();
    refresh(&t, &rt).expect_error(503, "server_error");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered after {:?}",
        started.elapsed()
    );
    let ready = t.get("/readyz");
    assert_eq!(ready.status(), 503);
    let why = ready.text().expect("body");
    assert!(why.starts_with("not ready: the store"), "{why}");

    // Back: no restart needed, and nothing was spent while it was away.
    line.restore();
    assert!(
        wait_for(Duration::from_secs(30), || t.get("/readyz").status() == 200),
        "not ready again"
    );
    let rotated = refresh(&t, &rt);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = redeem(&t, &code2, &verifier2);
    assert_eq!(second.status, 200, "{}", second.body);
}
