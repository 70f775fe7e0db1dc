//! Counters exported at `GET /metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::oauth::ErrorCode;

const CODES: [ErrorCode; 13] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::InvalidTarget,
    ErrorCode::AccessDenied,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
    ErrorCode::UnsupportedResponseType,
    ErrorCode::LoginRequired,
    ErrorCode::RequestNotSupported,
];

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    tokens_issued: AtomicU64,
    errors: [AtomicU64; CODES.len()],
    plugin_failures: Mutex<Vec<(String, u64)>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Metrics {
    /// A token was issued.
    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// A token request failed with `code`.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A plugin failed (trap, timeout, refused output).
    pub fn plugin_failure(&self, plugin: &str) {
        let Ok(mut list) = self.plugin_failures.lock() else {
            return;
        };
        match list.iter_mut().find(|(p, _)| p == plugin) {
            Some((_, n)) => *n += 1,
            None => list.push((plugin.to_owned(), 1)),
        }
    }

    /// A reload ended.
    pub fn reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tessera_tokens_issued_total Access tokens issued.\n# TYPE tessera_tokens_issued_total counter\n");
        let _ = writeln!(
            out,
            "tessera_tokens_issued_total {}",
            self.tokens_issued.load(Ordering::Relaxed)
        );
        out.push_str("# HELP tessera_token_errors_total Token requests refused, by OAuth error.\n# TYPE tessera_token_errors_total counter\n");
        for (code, n) in CODES.iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "tessera_token_errors_total{{error=\"{}\"}} {}",
                code.as_str(),
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP tessera_reloads_total Configuration and plugin reloads, by result.\n# TYPE tessera_reloads_total counter\n");
        let _ = writeln!(
            out,
            "tessera_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "tessera_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        out.push_str("# HELP tessera_plugin_failures_total Plugin calls that trapped, timed out or returned refused output.\n# TYPE tessera_plugin_failures_total counter\n");
        if let Ok(list) = self.plugin_failures.lock() {
            for (plugin, n) in list.iter() {
                let _ = writeln!(
                    out,
                    "tessera_plugin_failures_total{{plugin=\"{plugin}\"}} {n}"
                );
            }
        }
        out
    }
}
