//! libFuzzer entry for the `firewall_rules` target (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cubby_fuzz::firewall::rules(data));
