//! The case loader on any text: YAML reading, matrix expansion and substitution, typing and
//! validation must answer Ok or located errors, never panic, and stay within their limits.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match zcrx_conform::case::load_str(Path::new("fuzz.yaml"), text) {
        Ok(cases) => {
            assert!(!cases.is_empty());
            for c in &cases {
                zcrx_conform::case::check_id(&c.id).expect("a loaded case has a valid id");
                assert!(cases.len() <= zcrx_conform::case::MAX_ROWS);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                // Messages are one line each, printable, with at most one place.
                let shown = e.to_string();
                assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown:?}");
            }
        }
    }
});
