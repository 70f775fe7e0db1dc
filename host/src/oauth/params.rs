//! Form parameters (`application/x-www-form-urlencoded`) with the RFC 6749
//! rules: a parameter sent twice is an error (§3.2), an empty value is the same
//! as an omitted one (§3.1).

use super::error::{ErrorCode, OAuthError};

/// At most this many parameters are accepted in one request.
pub const MAX_PARAMS: usize = 64;

/// Decoded request parameters, in request order, without empty values.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a form body. A repeated parameter is `invalid_request`, except
    /// `resource`, which RFC 8707 allows to repeat but this issuer accepts once
    /// (`invalid_target`).
    pub fn parse(body: &[u8]) -> Result<Params, OAuthError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(if name == "resource" {
                    OAuthError::invalid_target("only one resource (or audience) per token request")
                } else {
                    OAuthError::new(
                        ErrorCode::InvalidRequest,
                        format!("parameter {} is repeated (RFC 6749 §3.2)", echo(&name)),
                    )
                });
            }
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of a parameter, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in request order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The parameters that are safe to show a plugin: no secrets, verifiers,
    /// codes, tokens or assertions.
    pub fn without_secrets(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(n, _)| !is_sensitive(n))
            .cloned()
            .collect()
    }
}

fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "code"
        || ["secret", "password", "assertion", "verifier", "token"]
            .iter()
            .any(|w| name.contains(w))
}

/// Longest piece of a request echoed in an error description, in characters.
const ECHO_MAX_CHARS: usize = 64;

/// A value from the request, cut for an error description, so an error is
/// never larger than the request made it. Quoted, as `{:?}` would.
pub fn echo(s: &str) -> String {
    let mut cut: String = s.chars().take(ECHO_MAX_CHARS).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_cut_and_quoted() {
        assert_eq!(echo("read"), "\"read\"");
        let long = "x".repeat(14_000);
        let cut = echo(&long);
        assert_eq!(cut, format!("\"{}…\"", "x".repeat(64)));
        assert_eq!(
            echo(&"é".repeat(64)),
            format!("{:?}", "é".repeat(64)),
            "characters, not bytes"
        );
    }

    #[test]
    fn decodes_and_drops_empty_values() {
        let p = Params::parse(b"a=1&b=&c=x+y%2Bz").expect("ok");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y+z"));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let e = Params::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("scope"));
        assert_eq!(
            Params::parse(b"resource=a&resource=b").unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        // An empty repeat is an omitted one.
        assert!(Params::parse(b"scope=a&scope=").is_ok());
    }

    #[test]
    fn secrets_are_hidden_from_plugins() {
        let p = Params::parse(
            b"grant_type=x&client_secret=s&code=c&code_verifier=v&refresh_token=r&scope=a",
        )
        .expect("ok");
        let names: Vec<_> = p.without_secrets().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["grant_type", "scope"]);
    }

    #[test]
    fn too_many_parameters() {
        let body: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(body.as_bytes()).is_err());
    }
}
