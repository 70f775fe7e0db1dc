//! Configuration text: validation never panics, and every problem it reports
//! names a key or a line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tessera::config::Config;

fuzz_target!(|text: &str| {
    if let Err(e) = Config::parse(Path::new("/nonexistent/fuzz.toml"), text, &|_| None) {
        assert!(!e.problems.is_empty());
        for problem in &e.problems {
            assert!(!problem.trim().is_empty());
        }
    }
});
