//! `crypto.subtle` as webhook verifiers written for Workers and Deno use
//! it: Stripe's and GitHub's HMAC-SHA256 checks, Discord's Ed25519 check,
//! an ES256 JWT's ECDSA P-256 check, AES-GCM sealing, PBKDF2 and HKDF,
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
                () => crypto.subtle.encrypt({{ name: "RSA-OAEP" }}, hmacKey, message),
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

/// An ES256 JWT (ECDSA P-256 over SHA-256, signature as r||s) verified with
/// a JWK and an SPKI key, as identity providers' JWKS are used.
#[tokio::test]
async fn an_es256_jwt_is_verified_with_jwk_and_spki_keys() {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let point = signing.verifying_key().to_sec1_point(false);
    let (x, y) = (b64.encode(point.x().unwrap()), b64.encode(point.y().unwrap()));
    let spki = hex::encode(signing.verifying_key().to_public_key_der().unwrap().as_bytes());
    let signed = format!("{}.{}", b64.encode(r#"{"alg":"ES256"}"#), b64.encode(r#"{"sub":"cust_1"}"#));
    let signature: p256::ecdsa::Signature = signing.sign(signed.as_bytes());
    let jwt = format!("{signed}.{}", b64.encode(signature.to_bytes()));
    let source = format!(
        r#"export default async () => {{
            const enc = new TextEncoder();
            const bytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
            const unb64 = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0));
            const [h, p, s] = "{jwt}".split(".");
            const alg = {{ name: "ECDSA", namedCurve: "P-256" }};
            const jwk = await crypto.subtle.importKey("jwk", {{ kty: "EC", crv: "P-256", x: "{x}", y: "{y}" }}, alg, true, ["verify"]);
            const spki = await crypto.subtle.importKey("spki", bytes("{spki}"), alg, false, ["verify"]);
            const check = (key, data) => crypto.subtle.verify({{ name: "ECDSA", hash: "SHA-256" }}, key, unb64(s), enc.encode(data));
            const back = await crypto.subtle.exportKey("jwk", jwk);
            let p384 = "imported";
            try {{ await crypto.subtle.importKey("jwk", {{ kty: "EC", crv: "P-256", x: "{x}", y: "{y}" }}, {{ name: "ECDSA", namedCurve: "P-384" }}, false, ["verify"]); }} catch (e) {{ p384 = e.name; }}
            return {{ jwk: await check(jwk, h + "." + p), spki: await check(spki, h + "." + p),
                      tampered: await check(jwk, h + "." + p + "x"), same: back.x === "{x}" && back.y === "{y}", p384 }};
        }}"#
    );
    let v = json(ok(&run_js(&source).await));
    assert_eq!((v["jwk"].as_bool(), v["spki"].as_bool()), (Some(true), Some(true)), "{v}");
    assert_eq!(v["tampered"], false, "the control: a changed payload fails: {v}");
    assert_eq!(v["same"], true, "the JWK exports as it came: {v}");
    assert_eq!(v["p384"], "NotSupportedError", "{v}");
}

/// AES-GCM sealing with a key derived by PBKDF2, and HKDF bits, as apps
/// that encrypt tenant secrets at rest do.
#[tokio::test]
async fn aes_gcm_with_derived_keys_round_trips_and_refuses_tampering() {
    let outcome = run_js(
        r#"export default async () => {
            const enc = new TextEncoder();
            const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
            const base = await crypto.subtle.importKey("raw", enc.encode("password"), "PBKDF2", false, ["deriveBits", "deriveKey"]);
            const rfc6070 = hex(await crypto.subtle.deriveBits({ name: "PBKDF2", salt: enc.encode("salt"), iterations: 2, hash: "SHA-1" }, base, 160));
            const key = await crypto.subtle.deriveKey({ name: "PBKDF2", salt: enc.encode("s"), iterations: 1000, hash: "SHA-256" },
                base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
            const iv = crypto.getRandomValues(new Uint8Array(12));
            const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode("tenant-1") }, key, enc.encode("card on file"));
            const opened = new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: enc.encode("tenant-1") }, key, sealed));
            let otherTenant = "opened";
            try { await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: enc.encode("tenant-2") }, key, sealed); } catch (e) { otherTenant = e.name; }
            const ikm = await crypto.subtle.importKey("raw", new Uint8Array(22).fill(11), "HKDF", false, ["deriveBits"]);
            const salt = new Uint8Array([0,1,2,3,4,5,6,7,8,9,10,11,12]);
            const info = new Uint8Array([0xf0,0xf1,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9]);
            const rfc5869 = hex(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, ikm, 336));
            const generated = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt"]);
            let tooMany = "ran";
            try { await crypto.subtle.deriveBits({ name: "PBKDF2", salt: enc.encode("s"), iterations: 2000000, hash: "SHA-256" }, base, 256); } catch (e) { tooMany = e.name; }
            return { rfc6070, opened, sealedBytes: sealed.byteLength, otherTenant, rfc5869,
                     generated: (await crypto.subtle.exportKey("jwk", generated)).alg, tooMany };
        }"#,
    )
    .await;
    let v = json(ok(&outcome));
    assert_eq!(v["rfc6070"], "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957", "RFC 6070 test 2: {v}");
    assert_eq!((v["opened"].as_str(), v["sealedBytes"].as_u64()), (Some("card on file"), Some(12 + 16)), "{v}");
    assert_eq!(v["otherTenant"], "OperationError", "other additional data does not open it: {v}");
    assert_eq!(
        v["rfc5869"], "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        "RFC 5869 test 1: {v}"
    );
    assert_eq!(v["generated"], "A128GCM");
    assert_eq!(v["tooMany"], "OperationError", "PBKDF2's cost is bounded: {v}");
}
