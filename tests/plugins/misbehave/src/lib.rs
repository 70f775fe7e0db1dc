//! A test fixture: one component whose behaviour is chosen by its `mode`
//! config value, so integration tests can make a plugin loop, trap, deny, or
//! try what the host must refuse, without a component per case.
//!
//! Modes: `claims` (sets every entry of the JSON object in config `claims`),
//! `deny` (denies with config `code` and `description`), `loop`, `trap`,
//! `recurse`, `reserved` (sets config `claim`, default `sub`), `add-scope`
//! (adds config `scope`), `remove-scope` (removes config `scope`), `counter`
//! (reports how many calls this instance has seen; traps at call `trap_at`),
//! `memory-bomb` (allocates until the cap stops it), `many-claims` (config
//! `n`), `big-claim` (config `bytes`), `busy` (computes for config `ms`), `memcopy`
//! (copies config `mb` MiB back and forth until stopped),
//! `stderr-flood` (4 MiB to standard error), `capabilities` (reports which
//! files, environment, network it could reach), `log`
//! (logs config `lines` lines), `echo` (puts what it saw into claims).

use tessera_plugin_sdk::{
    AuthorizeEvent, Changes, Context, CredentialsExchangeEvent, Denial, DenyCode, Plugin, Value,
    json,
};

/// The fixture.
pub struct Misbehave;

#[allow(
    unconditional_recursion,
    reason = "the fixture overflows the stack on purpose"
)]
fn recurse(n: u64) -> u64 {
    // Not a tail call: every frame stays on the stack.
    std::hint::black_box(n) + recurse(n + 1) + 1
}

impl Plugin for Misbehave {
    /// The authorize stage supports the modes that fail or deny (`trap`,
    /// `loop`, `deny`) and `claims`, which sets the claims on both tokens.
    fn on_authorize(_event: &AuthorizeEvent, ctx: &Context) -> Result<Changes, Denial> {
        let mut changes = Changes::default();
        match ctx.config("mode").unwrap_or_default().as_str() {
            "trap" => panic!("misbehave: asked to trap"),
            "loop" => loop {
                std::hint::spin_loop();
            },
            "deny" => {
                return Err(Denial::access_denied(
                    ctx.config("description").unwrap_or_default(),
                ));
            }
            "claims" => {
                if let Some(Value::Object(claims)) = ctx.config_value("claims") {
                    for (k, v) in claims {
                        changes.set_access_token_claim(k.clone(), v.clone());
                        changes.set_id_token_claim(k, v);
                    }
                }
            }
            _ => {}
        }
        Ok(changes)
    }

    fn on_credentials_exchange(
        event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        let mode = ctx.config("mode").unwrap_or_default();
        let mut changes = Changes::default();
        match mode.as_str() {
            "claims" => {
                if let Some(Value::Object(claims)) = ctx.config_value("claims") {
                    for (k, v) in claims {
                        changes.set_access_token_claim(k, v);
                    }
                }
            }
            "deny" => {
                let code = match ctx.config("code").as_deref() {
                    Some("invalid_scope") => DenyCode::InvalidScope,
                    Some("invalid_request") => DenyCode::InvalidRequest,
                    Some("unauthorized_client") => DenyCode::UnauthorizedClient,
                    Some("invalid_target") => DenyCode::InvalidTarget,
                    _ => DenyCode::AccessDenied,
                };
                let description = ctx.config("description").unwrap_or_default();
                return Err(Denial::new(code, description));
            }
            "loop" => loop {
                std::hint::spin_loop();
            },
            "trap" => panic!("misbehave: asked to trap"),
            "recurse" => {
                changes.set_access_token_claim("depth", recurse(0));
            }
            "reserved" => {
                let claim = ctx.config("claim").unwrap_or_else(|| "sub".to_owned());
                changes.set_access_token_claim("fine", true);
                changes.set_access_token_claim(claim, "forged");
            }
            "add-scope" => {
                changes.add_scope(ctx.config("scope").unwrap_or_default());
            }
            "remove-scope" => {
                changes.remove_scope(ctx.config("scope").unwrap_or_default());
            }
            "counter" => {
                // Module state: with a fresh instance per call it is always 1.
                static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if ctx.config("trap_at").and_then(|at| at.parse().ok()) == Some(n) {
                    panic!("counter: trapping at call {n} as configured");
                }
                changes.set_access_token_claim("calls_seen_by_this_instance", n);
            }
            "log" => {
                let lines: u32 = ctx
                    .config("lines")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(1);
                for i in 0..lines {
                    ctx.info(format!("line {i}"));
                }
            }
            "memory-bomb" => {
                // Touch ever more memory until the cap refuses to grow it.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xA5; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "many-claims" => {
                let n: u32 = ctx.config("n").and_then(|n| n.parse().ok()).unwrap_or(5000);
                for i in 0..n {
                    changes.set_access_token_claim(format!("https://claims.example.com/c{i}"), i);
                }
            }
            "big-claim" => {
                let bytes: usize = ctx
                    .config("bytes")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1 << 20);
                changes.set_access_token_claim("https://claims.example.com/big", "x".repeat(bytes));
            }
            "busy" => {
                // Computes for `ms` milliseconds of wall time, then succeeds.
                let ms: u64 = ctx.config("ms").and_then(|n| n.parse().ok()).unwrap_or(10);
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(ms) {
                    std::hint::spin_loop();
                }
                changes.set_access_token_claim("busy_ms", ms);
            }
            "memcopy" => {
                // Copies `mb` MiB back and forth (memory.copy) until stopped.
                let mb: usize = ctx.config("mb").and_then(|n| n.parse().ok()).unwrap_or(8);
                let mut a = vec![1u8; mb << 20];
                let mut b = vec![2u8; mb << 20];
                loop {
                    b.copy_from_slice(&a);
                    a.copy_from_slice(&b);
                    std::hint::black_box((&a, &b));
                }
            }
            "stderr-flood" => {
                let chunk = "x".repeat(64 * 1024);
                for _ in 0..64 {
                    eprintln!("{chunk}");
                }
            }
            "capabilities" => {
                // What WASI with nothing granted lets a plugin reach.
                let file = std::fs::read("/etc/passwd").is_ok();
                let dir = std::fs::read_dir("/").is_ok();
                let env = std::env::vars().count();
                let net = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
                let write = std::fs::write("/tmp/tessera-plugin-was-here", b"x").is_ok();
                changes.set_access_token_claim(
                    "reached",
                    json!({ "file": file, "dir": dir, "env_vars": env, "net": net, "write": write }),
                );
            }
            "echo" => {
                changes.set_access_token_claim(
                    "seen",
                    json!({
                        "client": event.client.id,
                        "client_name": event.client.name,
                        "app_type": event.client.app_type.as_str(),
                        "api": event.api.identifier,
                        "scopes": event.access_token.scopes,
                        "claims_so_far": event.access_token.claims.keys().collect::<Vec<_>>(),
                        "params": event.request.params.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                        "grant_type": event.transaction.grant_type,
                        "secret": ctx.secret("token"),
                    }),
                );
            }
            other => {
                return Err(Denial::invalid_request(format!(
                    "misbehave: unknown mode {other:?}"
                )));
            }
        }
        Ok(changes)
    }
}

tessera_plugin_sdk::export!(Misbehave);
