//! A test fixture built against `tessera:plugin@0.2.0` with wit-bindgen
//! alone: it reads the event through the resource's getters and answers by
//! its `mode` config value, so tests can check that the host lends the event,
//! that every getter returns what the stage has, and that 0.1.0 and 0.2.0
//! plugins share one pipeline.
//!
//! Modes: `claims` (default: `v2_client` is the client's name, `v2_parts`
//! lists the parts present, `v2_event` is what `to-json` returned, `v2_scopes`
//! the access token's scopes so far, `v2_tier` the client's `tier`
//! metadata), `deny` (denies with `invalid_target`), `trap` (panics),
//! `remove-scope` (removes config `scope`), `user` (authorize: puts the
//! user's id and email in an ID-token claim, adds config `scope`).

#![allow(missing_docs, unsafe_code, reason = "generated bindings")]

wit_bindgen::generate!({
    path: "../../../wit/0.2.0/plugin.wit",
    world: "plugin",
});

use tessera::plugin::host;
use tessera::plugin::types::{DenyCode, LogLevel, Value};

struct AbiV02;

fn empty() -> Changes {
    Changes {
        access_token_claims: Vec::new(),
        id_token_claims: Vec::new(),
        add_scopes: Vec::new(),
        remove_scopes: Vec::new(),
    }
}

fn text_list(items: impl IntoIterator<Item = String>) -> Value {
    Value::TextList(items.into_iter().collect())
}

fn answer(event: &Event) -> Result<Changes, Denial> {
    let mode = host::config("mode").unwrap_or_else(|| "claims".to_owned());
    let mut changes = empty();
    match mode.as_str() {
        "deny" => {
            return Err(Denial {
                code: DenyCode::InvalidTarget,
                description: "abi-v0-2 denies".to_owned(),
            });
        }
        "trap" => panic!("abi-v0-2: asked to trap"),
        "remove-scope" => {
            changes.remove_scopes = host::config("scope").into_iter().collect();
        }
        "user" => {
            let user = event.user().expect("authorize has a user");
            changes.id_token_claims.push((
                "v2_user".to_owned(),
                Value::Text(format!("{} {}", user.id, user.email.unwrap_or_default())),
            ));
            changes.add_scopes = host::config("scope").into_iter().collect();
        }
        _ => {
            let client = event.client();
            let mut parts = vec![
                "client".to_owned(),
                "request".to_owned(),
                "transaction".to_owned(),
            ];
            if event.api().is_some() {
                parts.push("api".to_owned());
            }
            if event.user().is_some() {
                parts.push("user".to_owned());
            }
            if event.id_token().is_some() {
                parts.push("id_token".to_owned());
            }
            let _ = event.request();
            let _ = event.transaction();
            let tier = client
                .metadata
                .iter()
                .find(|(k, _)| k == "tier")
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            host::log(LogLevel::Info, &format!("abi-v0-2 saw {}", client.id));
            changes.access_token_claims = vec![
                ("v2_client".to_owned(), Value::Text(client.name)),
                ("v2_parts".to_owned(), text_list(parts)),
                ("v2_event".to_owned(), Value::Json(event.to_json())),
                (
                    "v2_scopes".to_owned(),
                    text_list(event.access_token().scopes),
                ),
                ("v2_tier".to_owned(), tier),
            ];
        }
    }
    Ok(changes)
}

impl Guest for AbiV02 {
    fn on_credentials_exchange(event: Event) -> Result<Changes, Denial> {
        answer(&event)
    }

    fn on_authorize(event: Event) -> Result<Changes, Denial> {
        answer(&event)
    }
}

export!(AbiV02);
