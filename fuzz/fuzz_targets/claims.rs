//! libFuzzer entry for the `claims` target (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cubby_fuzz::claims::verify(data));
