//! `crypto.subtle` signing keys: RSA (RSASSA-PKCS1-v1_5, RSA-PSS), ECDSA
//! P-256 and Ed25519, against keys and signatures made by OpenSSL
//! (`openssl-keys.json`: an RS256 signature is deterministic, so ours must
//! be byte for byte OpenSSL's), through every key format, and generated
//! keys; with tampered data as the control of every `true`.

use super::{json, ok, run_js};

const KEYS: &str = include_str!("openssl-keys.json");

fn with_keys(body: &str) -> String {
    format!(
        r#"const KEYS = {KEYS};
const b64 = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
const enc = new TextEncoder();
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
export default async () => {{ {body} }};"#
    )
}

#[tokio::test]
async fn rs256_signs_as_openssl_does_and_verifies_through_every_format() {
    let source = with_keys(
        r#"
        const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
        const message = enc.encode(KEYS.message);
        const priv = await crypto.subtle.importKey("pkcs8", b64(KEYS.rsa_p8), alg, true, ["sign"]);
        const pub = await crypto.subtle.importKey("spki", b64(KEYS.rsa_spki), alg, true, ["verify"]);
        const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", priv, message);
        const jwk = await crypto.subtle.exportKey("jwk", priv);
        const fromJwk = await crypto.subtle.importKey("jwk", jwk, alg, false, ["sign"]);
        const pubJwk = await crypto.subtle.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e }, alg, false, ["verify"]);
        let wrongUse = "imported";
        try { await crypto.subtle.importKey("spki", b64(KEYS.rsa_spki), alg, false, ["sign"]); } catch (e) { wrongUse = e.name; }
        return {
            same_as_openssl: hex(signature) === hex(b64(KEYS.rsa_sig)),
            verified: await crypto.subtle.verify(alg, pub, b64(KEYS.rsa_sig), message),
            tampered: await crypto.subtle.verify(alg, pub, b64(KEYS.rsa_sig), enc.encode(KEYS.message + ".")),
            jwk_signs_the_same: hex(await crypto.subtle.sign(alg, fromJwk, message)) === hex(signature),
            jwk_public_verifies: await crypto.subtle.verify(alg, pubJwk, signature, message),
            jwk: [jwk.kty, jwk.alg, typeof jwk.d, typeof jwk.qi],
            algorithm: [pub.algorithm.name, pub.algorithm.modulusLength, [...pub.algorithm.publicExponent], pub.algorithm.hash.name, pub.type, priv.type],
            spki_back: hex(await crypto.subtle.exportKey("spki", pub)) === hex(b64(KEYS.rsa_spki)),
            wrongUse,
        };"#,
    );
    let v = json(ok(&run_js(&source).await));
    assert_eq!(v["same_as_openssl"], true, "{v}");
    assert_eq!((v["verified"].as_bool(), v["tampered"].as_bool()), (Some(true), Some(false)), "{v}");
    assert_eq!(
        (v["jwk_signs_the_same"].as_bool(), v["jwk_public_verifies"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    assert_eq!(v["jwk"], serde_json::json!(["RSA", "RS256", "string", "string"]));
    assert_eq!(
        v["algorithm"],
        serde_json::json!(["RSASSA-PKCS1-v1_5", 2048, [1, 0, 1], "SHA-256", "public", "private"])
    );
    assert_eq!(v["spki_back"], true);
    assert_eq!(v["wrongUse"], "SyntaxError", "a public key cannot sign");
}

#[tokio::test]
async fn generated_rsa_pss_ecdsa_and_ed25519_keys_sign_and_verify() {
    let source = with_keys(
        r#"
        const data = enc.encode("payload");
        const other = enc.encode("payloaD");
        const out = {};
        const cases = [
            ["pss", { name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
            ["ecdsa", { name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
            ["ed25519", { name: "Ed25519" }, { name: "Ed25519" }],
        ];
        for (const [name, generate, params] of cases) {
            const { publicKey, privateKey } = await crypto.subtle.generateKey(generate, true, ["sign", "verify"]);
            const signature = await crypto.subtle.sign(params, privateKey, data);
            const pkcs8 = await crypto.subtle.exportKey("pkcs8", privateKey);
            const again = await crypto.subtle.importKey("pkcs8", pkcs8, generate, false, ["sign"]);
            const jwk = await crypto.subtle.exportKey("jwk", privateKey);
            const fromJwk = await crypto.subtle.importKey("jwk", jwk, generate, false, ["sign"]);
            out[name] = {
                good: await crypto.subtle.verify(params, publicKey, signature, data),
                tampered: await crypto.subtle.verify(params, publicKey, signature, other),
                pkcs8: await crypto.subtle.verify(params, publicKey, await crypto.subtle.sign(params, again, data), data),
                jwk: await crypto.subtle.verify(params, publicKey, await crypto.subtle.sign(params, fromJwk, data), data),
                types: [publicKey.type, privateKey.type, publicKey.usages.join(), privateKey.usages.join()],
            };
        }
        // OpenSSL's keys: its P-256 PKCS #8 signs what its SPKI verifies; its
        // Ed25519 signature verifies under its SPKI, and ours is the same
        // (Ed25519 is deterministic).
        const ec = { name: "ECDSA", namedCurve: "P-256" };
        const ecPriv = await crypto.subtle.importKey("pkcs8", b64(KEYS.ec_p8), ec, false, ["sign"]);
        const ecPub = await crypto.subtle.importKey("spki", b64(KEYS.ec_spki), ec, false, ["verify"]);
        const ecSig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, ecPriv, data);
        out.openssl_ecdsa = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ecPub, ecSig, data);
        const edPriv = await crypto.subtle.importKey("pkcs8", b64(KEYS.ed_p8), "Ed25519", false, ["sign"]);
        const edPub = await crypto.subtle.importKey("spki", b64(KEYS.ed_spki), "Ed25519", false, ["verify"]);
        const message = enc.encode(KEYS.message);
        out.openssl_ed25519 = [
            await crypto.subtle.verify("Ed25519", edPub, b64(KEYS.ed_sig), message),
            hex(await crypto.subtle.sign("Ed25519", edPriv, message)) === hex(b64(KEYS.ed_sig)),
            await crypto.subtle.verify("Ed25519", edPub, b64(KEYS.ed_sig), data),
        ];
        let notExtractable = "exported";
        const locked = await crypto.subtle.importKey("pkcs8", b64(KEYS.ec_p8), ec, false, ["sign"]);
        try { await crypto.subtle.exportKey("pkcs8", locked); } catch (e) { notExtractable = e.name; }
        out.notExtractable = notExtractable;
        return out;"#,
    );
    let v = json(ok(&run_js(&source).await));
    for name in ["pss", "ecdsa", "ed25519"] {
        assert_eq!(
            v[name],
            serde_json::json!({"good": true, "tampered": false, "pkcs8": true, "jwk": true,
                               "types": ["public", "private", "verify", "sign"]}),
            "{name}: {v}"
        );
    }
    assert_eq!(v["openssl_ecdsa"], true, "{v}");
    assert_eq!(v["openssl_ed25519"], serde_json::json!([true, true, false]), "{v}");
    assert_eq!(v["notExtractable"], "InvalidAccessError");
}
