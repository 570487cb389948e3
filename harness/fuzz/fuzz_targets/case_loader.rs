//! `case_loader`: see `checks::case_loader` (shared with the stable test that replays the corpus).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::case_loader(data));
