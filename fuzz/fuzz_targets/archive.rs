//! libFuzzer entry for the `archive` target (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cubby_fuzz::archive::import(data));
