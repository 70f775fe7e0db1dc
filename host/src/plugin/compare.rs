//! What two versions of a plugin made of the same event: the decision
//! (allow, deny, fail) and, when both allowed, the claims and scopes each
//! left on the token. `tessera plugin replay` compares a recorded run with
//! a new version's run of the same recorded event.

use std::fmt;

use serde_json::{Map, Value};

use super::event::TokenShape;
use super::pipeline::{PipelineError, RunOutcome};

/// How one plugin run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Its changes were applied: the token as it left it.
    Allowed(TokenShape),
    /// It denied: the OAuth error, `code: description`.
    Denied(String),
    /// It failed (a trap, a timeout, a refused change), skipped or not.
    Failed(String),
}

impl Verdict {
    /// A recorded run's verdict: its outcome and the token it left.
    pub fn recorded(outcome: &RunOutcome, after: Option<&TokenShape>) -> Verdict {
        match outcome {
            RunOutcome::Applied => Verdict::Allowed(after.cloned().unwrap_or_default()),
            RunOutcome::Denied(error) => Verdict::Denied(error.clone()),
            RunOutcome::Failed(why) | RunOutcome::Skipped(why) => Verdict::Failed(why.clone()),
        }
    }

    /// The verdict of a stage run with the plugin alone: its result and the
    /// token after it.
    pub fn of_stage(result: Result<(), PipelineError>, shape: TokenShape) -> Verdict {
        match result {
            Ok(()) => Verdict::Allowed(shape),
            Err(PipelineError::Denied { error, .. }) => Verdict::Denied(error.to_string()),
            Err(PipelineError::Failed { reason, .. }) => Verdict::Failed(reason),
        }
    }

    /// `allow`, `deny` or `fail`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Allowed(_) => "allow",
            Verdict::Denied(_) => "deny",
            Verdict::Failed(_) => "fail",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Allowed(_) => f.write_str("allow"),
            Verdict::Denied(error) => write!(f, "deny ({error})"),
            Verdict::Failed(why) => write!(f, "fail ({why})"),
        }
    }
}

/// Which token a claim is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Token {
    /// The access token.
    AccessToken,
    /// The ID token.
    IdToken,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Token::AccessToken => "access_token",
            Token::IdToken => "id_token",
        })
    }
}

/// One way the second verdict differs from the first; read back from a
/// trace's JSON by `tessera trace`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// Another decision, or the same refusal for another reason.
    Decision {
        /// The first verdict.
        from: String,
        /// The second.
        to: String,
        /// Whether a token is issued in one case and not in the other.
        flipped: bool,
    },
    /// A custom claim set, removed or given another value.
    Claim {
        /// `access_token` or `id_token`.
        token: Token,
        /// The claim.
        name: String,
        /// Its value the first time (absent: not set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Value>,
        /// Its value the second time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Value>,
    },
    /// A scope on the access token one time and not the other.
    Scope {
        /// The scope.
        scope: String,
        /// Whether the second time has it and the first not.
        added: bool,
    },
}

impl Difference {
    /// Whether this one issues a token where the other did not, or the
    /// reverse.
    pub fn flips(&self) -> bool {
        matches!(self, Difference::Decision { flipped: true, .. })
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<Value>| v.as_ref().map_or("(not set)".to_owned(), Value::to_string);
        match self {
            Difference::Decision { from, to, flipped } => write!(
                f,
                "decision: {from} → {to}{}",
                if *flipped { " (flipped)" } else { "" }
            ),
            Difference::Claim {
                token,
                name,
                from,
                to,
            } => write!(f, "{token} claim {name}: {} → {}", shown(from), shown(to)),
            Difference::Scope { scope, added: true } => write!(f, "scope {scope}: added"),
            Difference::Scope {
                scope,
                added: false,
            } => write!(f, "scope {scope}: removed"),
        }
    }
}

/// The word for a comparison: `same` (no difference), `flipped` (a token
/// issued one time and not the other) or `changed`.
pub fn result(differences: &[Difference]) -> &'static str {
    if differences.is_empty() {
        "same"
    } else if differences.iter().any(Difference::flips) {
        "flipped"
    } else {
        "changed"
    }
}

/// How `second` differs from `first`; empty when they agree.
pub fn compare(first: &Verdict, second: &Verdict) -> Vec<Difference> {
    match (first, second) {
        (Verdict::Allowed(a), Verdict::Allowed(b)) => {
            let mut out = claims(Token::AccessToken, &a.claims, &b.claims);
            out.extend(claims(Token::IdToken, &a.id_claims, &b.id_claims));
            for scope in &a.scopes {
                if !b.scopes.contains(scope) {
                    out.push(Difference::Scope {
                        scope: scope.clone(),
                        added: false,
                    });
                }
            }
            for scope in &b.scopes {
                if !a.scopes.contains(scope) {
                    out.push(Difference::Scope {
                        scope: scope.clone(),
                        added: true,
                    });
                }
            }
            out
        }
        _ if first == second => Vec::new(),
        _ => vec![Difference::Decision {
            from: first.to_string(),
            to: second.to_string(),
            flipped: matches!(first, Verdict::Allowed(_)) != matches!(second, Verdict::Allowed(_)),
        }],
    }
}

fn claims(token: Token, a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<Difference> {
    let mut out = Vec::new();
    for (name, from) in a {
        if b.get(name) != Some(from) {
            out.push(Difference::Claim {
                token,
                name: name.clone(),
                from: Some(from.clone()),
                to: b.get(name).cloned(),
            });
        }
    }
    for (name, to) in b {
        if !a.contains_key(name) {
            out.push(Difference::Claim {
                token,
                name: name.clone(),
                from: None,
                to: Some(to.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn allowed(claims: Value, scopes: &[&str]) -> Verdict {
        Verdict::Allowed(TokenShape {
            claims: serde_json::from_value(claims).expect("a map"),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            id_claims: Map::new(),
        })
    }

    #[test]
    fn the_same_verdict_has_no_differences() {
        let a = allowed(json!({"tier": "gold"}), &["read"]);
        assert!(compare(&a, &a.clone()).is_empty());
        let d = Verdict::Denied("access_denied: no".into());
        assert!(compare(&d, &d.clone()).is_empty());
    }

    #[test]
    fn claims_and_scopes_are_compared_one_by_one() {
        let a = allowed(json!({"tier": "gold", "old": 1}), &["read", "write"]);
        let b = allowed(json!({"tier": "platinum", "new": true}), &["read", "admin"]);
        let shown: Vec<String> = compare(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "access_token claim old: 1 → (not set)",
                "access_token claim tier: \"gold\" → \"platinum\"",
                "access_token claim new: (not set) → true",
                "scope write: removed",
                "scope admin: added",
            ]
        );
        assert!(!compare(&a, &b).iter().any(Difference::flips));
    }

    #[test]
    fn allowing_against_refusing_is_a_flip_and_refusing_otherwise_is_not() {
        let allow = allowed(json!({}), &[]);
        let deny = Verdict::Denied("access_denied: no".into());
        let fail = Verdict::Failed("trapped".into());
        assert!(compare(&allow, &deny)[0].flips());
        assert!(compare(&fail, &allow)[0].flips());
        let other = compare(&deny, &fail);
        assert_eq!(other.len(), 1);
        assert!(!other[0].flips());
        assert_eq!(
            other[0].to_string(),
            "decision: deny (access_denied: no) → fail (trapped)"
        );
    }
}
