//! A request id for every request: the caller's `X-Request-Id` when it is a
//! sane one (a load balancer's, say), else one made here; and the trace id
//! of a W3C `traceparent`. [`super::observe`] puts both on the request's log
//! span and returns the id in the answer.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName};
use ring::rand::{SecureRandom, SystemRandom};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a caller; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// The request's id: its own `X-Request-Id` when that is sane, else a new
/// one.
pub fn of(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(new_id, str::to_owned)
}

/// The trace id of the request's W3C `traceparent`, when it has a valid one.
pub fn trace_id_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id)
}

/// Whether a caller's request id may be used as it is: 1 to
/// [`MAX_REQUEST_ID`] characters from `A–Z a–z 0–9 - _ . : / + =`, so it
/// cannot break a log line or smuggle markup into one.
fn is_sane(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// A new id: this process's random prefix and a counter, so ids are unique
/// across replicas without a random number per request.
fn new_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 6];
        // A failed generator leaves zeros: ids stay unique within the process.
        let _ = SystemRandom::new().fill(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    });
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The trace id of a W3C `traceparent` (`00-TRACEID-PARENTID-FLAGS`, Trace
/// Context §3.2): 32 lowercase hex digits, not all zero.
fn trace_id(header: &str) -> Option<&str> {
    let mut parts = header.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    ok.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_taken_only_when_sane() {
        assert!(is_sane("req-1.2_3:4/5+6="));
        assert!(is_sane(&"a".repeat(MAX_REQUEST_ID)));
        for bad in [
            "",
            "has space",
            "quote\"",
            "line\nbreak",
            "<b>",
            &"a".repeat(MAX_REQUEST_ID + 1),
        ] {
            assert!(!is_sane(bad), "{bad:?}");
        }
    }

    #[test]
    fn new_ids_differ() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(is_sane(&a), "{a}");
    }

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(&format!("00-{t}-00f067aa0ba902b7-01")), Some(t));
        for bad in [
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{t}-0000000000000000-01"),
            format!("ff-{t}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", t.to_uppercase()),
            format!("00-{t}-00f067aa0ba902b7-01-extra"),
            format!("00-{t}-00f067aa0ba902b7"),
            "garbage".to_owned(),
        ] {
            assert_eq!(trace_id(&bad), None, "{bad}");
        }
    }
}
