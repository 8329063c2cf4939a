//! Fuzz targets for the parsers that read untrusted input: firewall rules
//! (API JSON, port lists, CIDRs, down to the nft JSON they render to),
//! URL claims, image archives (rootfs tarballs and OCI archives) and the
//! magic comments of exec scripts.
//!
//! Each target takes arbitrary bytes, must never panic on them, and checks
//! the invariants its parser promises (a panic is a finding). The same
//! functions are driven two ways:
//! - on stable Rust, by `tests/smoke.rs`: a seed corpus plus a bounded
//!   number of deterministic mutations, in CI;
//! - by `cargo +nightly fuzz run <target>` from `fuzz/` (libFuzzer, coverage
//!   guided), for long runs; see `scripts/fuzz.sh`.

pub mod archive;
pub mod claims;
pub mod firewall;
pub mod magic;
pub mod mutate;

/// A fuzz target: takes arbitrary bytes, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, for drivers that run them all.
pub const TARGETS: &[(&str, Target)] = &[
    ("firewall_rules", firewall::rules),
    ("claims", claims::verify),
    ("archive", archive::import),
    ("magic_comments", magic::parse),
];
