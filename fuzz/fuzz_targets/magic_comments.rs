//! libFuzzer entry for the `magic_comments` target (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cubby_fuzz::magic::parse(data));
