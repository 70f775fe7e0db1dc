//! Login throttling: failed sign-ins counted per account and per source
//! address in the store, so every replica sees the same counts. A few
//! failures are free; after them each failure makes the subject wait twice
//! as long as the last (exponential back-off), and at `lock_after` failures
//! sign-ins are locked for [`LOCK_SECS`]. A count is forgotten [`WINDOW_SECS`]
//! after its last failure; a successful sign-in clears the account's count
//! (not the address's, or one good account would reset a guesser's address).
//!
//! The account is the typed email, hashed, whether or not a user has it: a
//! throttled unknown email looks exactly like a throttled known one.

use std::net::IpAddr;

use crate::store::{Store, StoreError, secret_hash};

/// How long a lock lasts.
pub const LOCK_SECS: u64 = 15 * 60;
/// How long a count is remembered after its last failure.
pub const WINDOW_SECS: u64 = 15 * 60;

/// When a subject starts waiting, and when it is locked.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Failures without any wait.
    pub free: u64,
    /// At this many failures, the lock.
    pub lock_after: u64,
    /// The longest back-off before the lock (seconds).
    pub max_backoff: u64,
}

/// One account (email address): a person mistyping has five tries, then
/// waits 1, 2, 4, 8 and 16 s, then is locked at the tenth failure.
pub const ACCOUNT: Rule = Rule {
    free: 5,
    lock_after: 10,
    max_backoff: 60,
};

/// One source address (an IPv4 address or an IPv6 /64): more lenient, as
/// many people may share one behind a NAT.
pub const ADDRESS: Rule = Rule {
    free: 20,
    lock_after: 100,
    max_backoff: 60,
};

impl Rule {
    /// How long the subject must wait after its `failures`-th failure.
    pub fn wait_after(&self, failures: u64) -> u64 {
        if failures < self.free {
            0
        } else if failures >= self.lock_after {
            LOCK_SECS
        } else {
            (1u64 << (failures - self.free).min(32)).min(self.max_backoff)
        }
    }
}

/// What one login attempt is counted against.
pub struct Subjects {
    account: String,
    address: String,
}

impl Subjects {
    /// The subjects of an attempt for `email` from `ip`.
    pub fn new(email: &str, ip: IpAddr) -> Subjects {
        Subjects {
            account: format!("account:{}", secret_hash(&email.trim().to_lowercase())),
            address: format!("address:{}", source(ip)),
        }
    }
}

/// The address an attempt is counted against: an IPv4 address as it is, an
/// IPv6 address as its /64.
pub fn source(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        // One host usually holds a whole /64.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => ipnet::Ipv6Net::new(v6, 64)
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| v6.to_string()),
        },
    }
}

/// A subject that must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until the next attempt is looked at.
    pub retry_after: u64,
    /// Whether this is the lock rather than a back-off.
    pub locked: bool,
}

/// `Err` while either subject must wait.
pub async fn check(
    store: &Store,
    s: &Subjects,
    now: u64,
) -> Result<Result<(), Throttled>, StoreError> {
    let until = store
        .login_blocked_until(&[&s.account, &s.address], now)
        .await?;
    if until <= now {
        return Ok(Ok(()));
    }
    let retry_after = until - now;
    Ok(Err(Throttled {
        retry_after,
        locked: retry_after > ACCOUNT.max_backoff.max(ADDRESS.max_backoff),
    }))
}

/// Counts a failed attempt against both subjects, and blocks those that
/// must now wait.
pub async fn failed(store: &Store, s: &Subjects, now: u64) -> Result<(), StoreError> {
    for (subject, rule) in [(&s.account, ACCOUNT), (&s.address, ADDRESS)] {
        let failures = store
            .record_login_failure(subject, now, now + WINDOW_SECS)
            .await?;
        let wait = rule.wait_after(failures);
        if wait > 0 {
            store
                .block_login(subject, now + wait, now + wait.max(WINDOW_SECS))
                .await?;
        }
    }
    Ok(())
}

/// Forgets the account's failures after it signed in.
pub async fn succeeded(store: &Store, s: &Subjects) -> Result<(), StoreError> {
    store.clear_login_failures(&s.account).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_then_locks() {
        let waits: Vec<u64> = (1..=11).map(|n| ACCOUNT.wait_after(n)).collect();
        assert_eq!(waits, [0, 0, 0, 0, 1, 2, 4, 8, 16, LOCK_SECS, LOCK_SECS]);
        assert_eq!(ADDRESS.wait_after(19), 0);
        assert_eq!(ADDRESS.wait_after(27), 60);
        assert_eq!(ADDRESS.wait_after(100), LOCK_SECS);
    }

    #[test]
    fn accounts_ignore_case_and_ipv6_counts_per_64() {
        let a = Subjects::new(" Ada@Example.com", "2001:db8::1".parse().unwrap());
        let b = Subjects::new("ada@example.com", "2001:db8::ffff".parse().unwrap());
        assert_eq!(a.account, b.account);
        assert_eq!(a.address, "address:2001:db8::/64");
        assert_eq!(a.address, b.address);
        let v4 = Subjects::new("x", "::ffff:198.51.100.7".parse().unwrap());
        assert_eq!(v4.address, "address:198.51.100.7");
    }
}
