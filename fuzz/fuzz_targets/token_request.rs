//! A token request body and an `Authorization` header, as any client could
//! send them: parsing never panics, and every error's description, as sent,
//! stays within the characters RFC 6749 §5.2 allows (docs/reliability.md,
//! case 20).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::oauth::TokenRequest;
use tessera::oauth::params::Params;

fuzz_target!(|input: (&[u8], &[u8])| {
    let (body, authorization) = input;
    let result = Params::parse(body).and_then(|params| {
        let headers: Vec<&[u8]> = if authorization.is_empty() {
            Vec::new()
        } else {
            vec![authorization]
        };
        TokenRequest::parse(&params, &headers)
    });
    if let Err(e) = result {
        // What goes on the wire (the JSON body, the redirect query).
        let wire = e.safe_description();
        assert!(!wire.is_empty(), "an error without a description");
        assert!(
            wire.chars()
                .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
            "error_description has a forbidden character: {wire:?}"
        );
    }
});
