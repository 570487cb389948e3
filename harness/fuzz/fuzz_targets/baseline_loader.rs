//! `baseline_loader`: see `checks::baseline_loader` (shared with the stable test that replays the corpus).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::baseline_loader(data));
