//! Whatever a plugin returns: the output checks never panic; what they accept
//! holds no reserved claim, at most 64 custom claims of at most 16 KiB, and
//! scopes only from before or (authorize) the ceiling; what they refuse
//! leaves the token exactly as it was.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tessera::config::Stage;
use tessera::plugin::TokenShape;
use tessera::plugin::pipeline::output::{ClaimValue, Output, apply};
use tessera::token::is_reserved_claim;

#[derive(Debug, Arbitrary)]
enum V {
    Null,
    Boolean(bool),
    Integer(i64),
    Number(f64),
    Text(String),
    TextList(Vec<String>),
    Json(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    authorize: bool,
    require_namespace: bool,
    access: Vec<(String, V)>,
    id: Vec<(String, V)>,
    add: Vec<String>,
    remove: Vec<String>,
    before_scopes: Vec<String>,
    ceiling: Vec<String>,
}

fn value(v: V) -> ClaimValue {
    match v {
        V::Null => ClaimValue::Null,
        V::Boolean(b) => ClaimValue::Boolean(b),
        V::Integer(i) => ClaimValue::Integer(i),
        V::Number(n) => ClaimValue::Number(n),
        V::Text(s) => ClaimValue::Text(s),
        V::TextList(l) => ClaimValue::TextList(l),
        V::Json(j) => ClaimValue::Json(j),
    }
}

fn claims(list: Vec<(String, V)>) -> Vec<(String, ClaimValue)> {
    list.into_iter().map(|(k, v)| (k, value(v))).collect()
}

fn check(claims: &Map<String, Value>) {
    assert!(claims.len() <= 64);
    assert!(Value::Object(claims.clone()).to_string().len() <= 16 * 1024);
    assert!(claims.keys().all(|k| !is_reserved_claim(k)));
}

fuzz_target!(|input: Input| {
    let stage = if input.authorize {
        Stage::Authorize
    } else {
        Stage::CredentialsExchange
    };
    let before = TokenShape {
        claims: Map::new(),
        scopes: input.before_scopes,
        id_claims: Map::new(),
    };
    let mut shape = before.clone();
    let output = Output {
        access_token_claims: claims(input.access),
        id_token_claims: claims(input.id),
        add_scopes: input.add,
        remove_scopes: input.remove,
    };
    match apply(
        stage,
        output,
        &mut shape,
        &input.ceiling,
        input.require_namespace,
    ) {
        Ok(_) => {
            check(&shape.claims);
            check(&shape.id_claims);
            for s in &shape.scopes {
                assert!(
                    before.scopes.contains(s) || (input.authorize && input.ceiling.contains(s)),
                    "scope {s:?} appeared"
                );
            }
            if !input.authorize {
                assert!(shape.id_claims.is_empty());
            }
        }
        Err(_) => assert_eq!(shape, before, "a refused output changed the token"),
    }
});
