//! `topology_loader`: see `checks::topology_loader` (shared with the stable test that replays the corpus).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::topology_loader(data));
