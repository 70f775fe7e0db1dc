//! Scopes: parsing the space-delimited `scope` parameter (RFC 6749 §3.3) and
//! narrowing a request to what a client was granted.

use super::error::OAuthError;
use crate::config::is_scope_token;

/// Parses a `scope` value into distinct scope tokens, in request order.
pub fn parse(value: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in value.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::invalid_scope(
                "scope holds a character RFC 6749 §3.3 does not allow",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// The scopes to grant: everything requested if it is within `ceiling`,
/// the whole ceiling when nothing was requested; anything beyond the ceiling is
/// `invalid_scope`, naming the first offending scope.
pub fn narrow(requested: Option<&[String]>, ceiling: &[String]) -> Result<Vec<String>, OAuthError> {
    match requested {
        None => Ok(ceiling.to_vec()),
        Some(req) => {
            if let Some(extra) = req.iter().find(|s| !ceiling.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {} was not granted to this client for this API",
                    super::params::echo(extra)
                )));
            }
            Ok(req.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_splits_and_dedups() {
        assert_eq!(parse("a  b a").expect("ok"), v(&["a", "b"]));
        assert!(parse("a \"b\"").is_err());
    }

    #[test]
    fn narrow_keeps_within_ceiling() {
        let ceiling = v(&["read", "write"]);
        assert_eq!(narrow(None, &ceiling).expect("ok"), ceiling);
        assert_eq!(
            narrow(Some(&v(&["read"])), &ceiling).expect("ok"),
            v(&["read"])
        );
        let e = narrow(Some(&v(&["read", "admin"])), &ceiling).unwrap_err();
        assert!(e.description.contains("admin"));
    }
}
