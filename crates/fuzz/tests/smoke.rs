//! Stable-Rust smoke runs of the parser fuzz targets: the seed corpus and
//! a bounded number of reproducible mutations each (count-bounded, not
//! timed). A panic is a finding; the failing input is printed by the
//! target's assertion.

use cubby_fuzz::{claims, firewall, magic, mutate::drive};

const ROUNDS: usize = 20_000;

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(dir);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", path.display()))
        .map(|e| std::fs::read(e.expect("corpus entry").path()).expect("read a seed"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", path.display());
    seeds
}

#[test]
fn firewall_rules_never_panic_and_what_passes_is_sound() {
    drive(firewall::rules, &corpus("firewall_rules"), ROUNDS, 0x5eed_f17e);
}

#[test]
fn claims_never_verify_unless_signed() {
    let mut seeds = corpus("claims");
    seeds.push(claims::genuine().into_bytes());
    drive(claims::verify, &seeds, ROUNDS, 0xc1a1_3500);
}

#[test]
fn a_tampered_claim_never_verifies() {
    // Every single-byte change of a genuine claim, exhaustively.
    let genuine = claims::genuine().into_bytes();
    for i in 0..genuine.len() {
        for b in [b'A', b'Q', b'_', b'-', b'.', b'0', b'z'] {
            let mut c = genuine.clone();
            c[i] = b;
            claims::verify(&c);
        }
    }
}

#[test]
fn magic_comments_never_panic_and_keep_values_clean() {
    drive(magic::parse, &corpus("magic_comments"), ROUNDS, 0x3a61_c000);
}
