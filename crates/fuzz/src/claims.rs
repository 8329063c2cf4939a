//! URL claims: the proxy verifies whatever a browser sends as a claim.

use cubby_core::claims::{ClaimKeys, ClaimPayload};

const SEED: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000;

fn keys() -> &'static ClaimKeys {
    static KEYS: std::sync::OnceLock<ClaimKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| ClaimKeys::from_seed(&SEED))
}

/// A claim the daemon would issue, for seeds and mutation.
pub fn genuine() -> String {
    keys().sign(&ClaimPayload {
        iss: "cubby".into(),
        sub: Some("customer-42".into()),
        cid: "cabc123def456".into(),
        ep: 3,
        port: Some(8080),
        iat: NOW - 10,
        exp: NOW + 3600,
    })
}

/// Fuzzes claim verification.
///
/// Invariants: no panic on any string; the only claim that verifies and
/// names the genuine claim's container is one whose signed part is
/// byte-for-byte the genuine claim's (a forgery or a tampered payload
/// never passes); anything that verifies was issued by `cubby` and has not
/// expired.
pub fn verify(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = keys();
    let _ = keys.is_ours(text);
    let Ok(payload) = keys.verify(text, NOW) else { return };
    assert_eq!(payload.iss, "cubby");
    assert!(payload.exp > NOW);
    let genuine = genuine();
    let signed = |c: &str| c.rsplit_once('.').map(|(signed, _)| signed.to_owned());
    assert_eq!(signed(text), signed(&genuine), "a claim verified that the key never signed: {text:?}");
}
