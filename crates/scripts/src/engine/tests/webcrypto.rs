//! `crypto.subtle` as webhook verifiers written for Workers and Deno use
//! it: Stripe's and GitHub's HMAC-SHA256 checks, Discord's Ed25519 check,
//! digests, and clear refusals of what is not supported.

use super::{json, ok, run_js};

/// Stripe's scheme: `t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`, checked
/// with the calls Stripe's library makes on Workers (`SubtleCryptoProvider`).
#[tokio::test]
async fn a_stripe_style_signature_is_checked_with_subtle_hmac() {
    let outcome = run_js(
        r#"export default async () => {
            const enc = new TextEncoder();
            const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
            const key = await crypto.subtle.importKey(
                "raw", enc.encode("whsec_test"), { name: "HMAC", hash: { name: "SHA-256" } }, false, ["sign", "verify"]);
            const payload = '1700000000.{"id":"evt_1"}';
            const signature = await crypto.subtle.sign("HMAC", key, enc.encode(payload));
            const good = await crypto.subtle.verify("HMAC", key, signature, enc.encode(payload));
            const tampered = await crypto.subtle.verify("HMAC", key, signature, enc.encode(payload + " "));
            let exported = "exportable";
            try { await crypto.subtle.exportKey("raw", key); } catch (e) { exported = e.name; }
            return {
                sig: hex(signature),
                same: hex(signature) === crypto.hmacSha256("whsec_test", payload),
                good, tampered, exported,
                key: [key.type, key.algorithm.name, key.algorithm.hash.name, key.extractable, key instanceof CryptoKey],
            };
        }"#,
    )
    .await;
    let v = json(ok(&outcome));
    assert_eq!(v["same"], true, "subtle and the old helper agree: {v}");
    assert_eq!((v["good"].as_bool(), v["tampered"].as_bool()), (Some(true), Some(false)), "{v}");
    assert_eq!(v["exported"], "InvalidAccessError", "a non-extractable secret stays in: {v}");
    assert_eq!(v["key"], serde_json::json!(["secret", "HMAC", "SHA-256", false, true]));
}

#[tokio::test]
async fn digests_jwk_keys_and_ed25519() {
    use ed25519_dalek::Signer;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let public = hex::encode(signing.verifying_key().to_bytes());
    let signature = hex::encode(signing.sign(b"1700000000{\"type\":1}").to_bytes());
    let source = format!(
        r#"export default async () => {{
            const enc = new TextEncoder();
            const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
            const bytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
            const digests = {{}};
            for (const alg of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) {{
                digests[alg] = hex(await crypto.subtle.digest(alg, enc.encode("abc"))).slice(0, 16);
            }}
            const jwk = {{ kty: "oct", k: "SmVmZQ", alg: "HS256" }};
            const hmacKey = await crypto.subtle.importKey("jwk", jwk, {{ name: "HMAC", hash: "SHA-256" }}, true, ["sign"]);
            const rfc = hex(await crypto.subtle.sign("HMAC", hmacKey, enc.encode("what do ya want for nothing?")));
            const back = await crypto.subtle.exportKey("jwk", hmacKey);
            const generated = await crypto.subtle.generateKey({{ name: "HMAC", hash: "SHA-512" }}, true, ["sign"]);
            const edKey = await crypto.subtle.importKey("raw", bytes("{public}"), {{ name: "Ed25519" }}, false, ["verify"]);
            const message = enc.encode('1700000000{{"type":1}}');
            const discord = await crypto.subtle.verify("Ed25519", edKey, bytes("{signature}"), message);
            const forged = await crypto.subtle.verify("Ed25519", edKey, bytes("{signature}"), enc.encode("other"));
            const refusals = [];
            for (const call of [
                () => crypto.subtle.encrypt({{ name: "AES-GCM" }}, hmacKey, message),
                () => crypto.subtle.digest("MD5", message),
                () => crypto.subtle.sign("HMAC", edKey, message),
                () => crypto.subtle.verify("HMAC", hmacKey, new Uint8Array(32), message),
            ]) {{
                try {{ await call(); refusals.push("none"); }} catch (e) {{ refusals.push(e.name); }}
            }}
            return {{ digests, rfc, k: back.k, alg: back.alg, generated: (await crypto.subtle.exportKey("raw", generated)).byteLength,
                      discord, forged, refusals }};
        }}"#
    );
    let outcome = run_js(&source).await;
    let v = json(ok(&outcome));
    assert_eq!(
        v["digests"],
        serde_json::json!({
            "SHA-1": "a9993e364706816a", "SHA-256": "ba7816bf8f01cfea",
            "SHA-384": "cb00753f45a35e8b", "SHA-512": "ddaf35a193617aba",
        })
    );
    assert_eq!(
        v["rfc"], "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "RFC 4231 through a JWK key"
    );
    assert_eq!((v["k"].as_str(), v["alg"].as_str()), (Some("SmVmZQ"), Some("HS256")));
    assert_eq!(v["generated"], 128, "an HMAC-SHA512 key is one block by default");
    assert_eq!((v["discord"].as_bool(), v["forged"].as_bool()), (Some(true), Some(false)), "{v}");
    assert_eq!(
        v["refusals"],
        serde_json::json!(["NotSupportedError", "TypeError", "InvalidAccessError", "InvalidAccessError"]),
        "unsupported, unknown, wrong key, wrong usage: {v}"
    );
}
