//! The cryptography behind `crypto.subtle`: digests (SHA-1, SHA-256,
//! SHA-384, SHA-512), HMAC with those hashes, Ed25519 and ECDSA P-256
//! verification, AES-GCM, and PBKDF2 and HKDF — what webhook verifiers and
//! token checks written for Workers and Deno call (Stripe, GitHub, Shopify
//! and Svix sign with HMAC-SHA256, Discord with Ed25519, ES256 JWTs with
//! ECDSA P-256). RustCrypto and dalek crates do the work; nothing is
//! written by hand.

use hmac::{KeyInit, Mac};

use super::thrown::Thrown;

/// A hash a script names (`"SHA-256"`, `{ name: "sha-256" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn parse(name: &str) -> Result<Self, Thrown> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "SHA-1" => Self::Sha1,
            "SHA-256" => Self::Sha256,
            "SHA-384" => Self::Sha384,
            "SHA-512" => Self::Sha512,
            other => return Err(Thrown::UnknownHash(other.to_owned())),
        })
    }
}

fn digest_with<D: sha2::Digest>(data: &[u8]) -> Vec<u8> {
    D::digest(data).to_vec()
}

/// The digest of `data`.
pub(crate) fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => digest_with::<sha1::Sha1>(data),
        Hash::Sha256 => digest_with::<sha2::Sha256>(data),
        Hash::Sha384 => digest_with::<sha2::Sha384>(data),
        Hash::Sha512 => digest_with::<sha2::Sha512>(data),
    }
}

fn mac_with<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> M {
    // HMAC takes keys of any length: `new_from_slice` does not fail.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac
}

/// The HMAC of `data` under `key`.
pub(crate) fn hmac_sign(hash: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => mac_with::<hmac::Hmac<sha1::Sha1>>(key, data).finalize().into_bytes().to_vec(),
        Hash::Sha256 => mac_with::<hmac::Hmac<sha2::Sha256>>(key, data).finalize().into_bytes().to_vec(),
        Hash::Sha384 => mac_with::<hmac::Hmac<sha2::Sha384>>(key, data).finalize().into_bytes().to_vec(),
        Hash::Sha512 => mac_with::<hmac::Hmac<sha2::Sha512>>(key, data).finalize().into_bytes().to_vec(),
    }
}

/// Whether `signature` is the HMAC of `data` under `key`, compared in
/// constant time.
pub(crate) fn hmac_verify(hash: Hash, key: &[u8], signature: &[u8], data: &[u8]) -> bool {
    match hash {
        Hash::Sha1 => mac_with::<hmac::Hmac<sha1::Sha1>>(key, data).verify_slice(signature).is_ok(),
        Hash::Sha256 => mac_with::<hmac::Hmac<sha2::Sha256>>(key, data).verify_slice(signature).is_ok(),
        Hash::Sha384 => mac_with::<hmac::Hmac<sha2::Sha384>>(key, data).verify_slice(signature).is_ok(),
        Hash::Sha512 => mac_with::<hmac::Hmac<sha2::Sha512>>(key, data).verify_slice(signature).is_ok(),
    }
}

/// Whether `signature` is `public`'s Ed25519 signature of `data` (strict:
/// no malleable or small-order forms). A key that is not 32 bytes of a
/// valid point is an error; a bad signature is `false`.
pub(crate) fn ed25519_verify(public: &[u8], signature: &[u8], data: &[u8]) -> Result<bool, Thrown> {
    let bytes: [u8; 32] = public.try_into().map_err(|_| Thrown::Ed25519KeyLength(public.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| Thrown::NotEd25519Key)?;
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return Ok(false) };
    Ok(key.verify_strict(data, &signature).is_ok())
}

/// Most PBKDF2 iterations one call may ask for: a native call cannot be
/// interrupted by the script's time limit, so its cost is bounded here.
pub(crate) const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// Most bits one derivation may produce.
pub(crate) const MAX_DERIVED_BITS: u32 = 8192;

/// AES-GCM with a 96-bit IV and a 128-bit tag: `data` sealed (ciphertext
/// then tag) when `encrypt`, else opened. A wrong key, IV, tag or
/// additional data fails the opening.
pub(crate) fn aes_gcm(encrypt: bool, key: &[u8], iv: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, Thrown> {
    use aes_gcm::aead::{Aead, KeyInit as _, Payload};
    if iv.len() != 12 {
        return Err(Thrown::Crypto(format!("AES-GCM: the iv is {} bytes; use 12 (96 bits)", iv.len())));
    }
    let nonce = aes_gcm::Nonce::try_from(iv).map_err(|_| Thrown::Crypto("AES-GCM: the iv is not 12 bytes".into()))?;
    let payload = Payload { msg: data, aad };
    let result = match key.len() {
        16 => {
            let cipher = aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| Thrown::AesKeyLength(key.len()))?;
            if encrypt { cipher.encrypt(&nonce, payload) } else { cipher.decrypt(&nonce, payload) }
        }
        32 => {
            let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| Thrown::AesKeyLength(key.len()))?;
            if encrypt { cipher.encrypt(&nonce, payload) } else { cipher.decrypt(&nonce, payload) }
        }
        n => return Err(Thrown::AesKeyLength(n)),
    };
    result.map_err(|_| {
        Thrown::Crypto("AES-GCM: the data could not be decrypted (wrong key, iv, tag or additionalData)".into())
    })
}

fn check_bits(bits: u32) -> Result<usize, Thrown> {
    if bits == 0 || !bits.is_multiple_of(8) || bits > MAX_DERIVED_BITS {
        return Err(Thrown::Crypto(format!("derive: ask for a length of whole bytes, 8 to {MAX_DERIVED_BITS} bits")));
    }
    Ok((bits / 8) as usize)
}

/// PBKDF2-HMAC of `password` and `salt`: `bits` of output.
pub(crate) fn pbkdf2(hash: Hash, password: &[u8], salt: &[u8], iterations: u32, bits: u32) -> Result<Vec<u8>, Thrown> {
    let len = check_bits(bits)?;
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(Thrown::Crypto(format!("PBKDF2: give 1 to {MAX_PBKDF2_ITERATIONS} iterations")));
    }
    let mut out = vec![0u8; len];
    match hash {
        Hash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out),
        Hash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out),
        Hash::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(password, salt, iterations, &mut out),
        Hash::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut out),
    }
    Ok(out)
}

/// HKDF (extract and expand) of `ikm`: `bits` of output.
pub(crate) fn hkdf(hash: Hash, ikm: &[u8], salt: &[u8], info: &[u8], bits: u32) -> Result<Vec<u8>, Thrown> {
    let len = check_bits(bits)?;
    let mut out = vec![0u8; len];
    let too_long = |_| Thrown::Crypto("HKDF: that length is more than the hash can expand to".into());
    match hash {
        Hash::Sha1 => hkdf::Hkdf::<sha1::Sha1>::new(Some(salt), ikm).expand(info, &mut out).map_err(too_long)?,
        Hash::Sha256 => hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm).expand(info, &mut out).map_err(too_long)?,
        Hash::Sha384 => hkdf::Hkdf::<sha2::Sha384>::new(Some(salt), ikm).expand(info, &mut out).map_err(too_long)?,
        Hash::Sha512 => hkdf::Hkdf::<sha2::Sha512>::new(Some(salt), ikm).expand(info, &mut out).map_err(too_long)?,
    }
    Ok(out)
}

/// A P-256 public key as an uncompressed SEC1 point, from `spki` DER or a
/// SEC1 point (compressed or not). Anything else is an error.
pub(crate) fn p256_public(format: &str, data: &[u8]) -> Result<Vec<u8>, Thrown> {
    use p256::elliptic_curve::sec1::ToSec1Point;
    use p256::pkcs8::DecodePublicKey;
    let key = match format {
        "spki" => p256::PublicKey::from_public_key_der(data).map_err(|_| Thrown::NotP256Key)?,
        _ => p256::PublicKey::from_sec1_bytes(data).map_err(|_| Thrown::NotP256Key)?,
    };
    Ok(key.to_sec1_point(false).as_bytes().to_vec())
}

/// Whether `signature` (IEEE P1363: r then s, 64 bytes) is `public`'s
/// ECDSA P-256 signature of `data` hashed with `hash`. A malformed
/// signature is `false`.
pub(crate) fn p256_verify(hash: Hash, public: &[u8], signature: &[u8], data: &[u8]) -> Result<bool, Thrown> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).map_err(|_| Thrown::NotP256Key)?;
    let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else { return Ok(false) };
    Ok(key.verify_prehash(&digest(hash, data), &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_published_vectors() {
        let abc = b"abc";
        assert_eq!(hex::encode(digest(Hash::Sha1, abc)), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex::encode(digest(Hash::Sha256, abc)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex::encode(digest(Hash::Sha384, abc)).starts_with("cb00753f45a35e8bb5a03d699ac65007"));
        assert!(hex::encode(digest(Hash::Sha512, abc)).starts_with("ddaf35a193617abacc417349ae204131"));
        assert_eq!(Hash::parse("sha-256").ok(), Some(Hash::Sha256));
        assert!(Hash::parse("MD5").is_err());
    }

    #[test]
    fn hmac_matches_rfc_4231_and_verifies_only_the_right_tag() {
        // RFC 4231, test case 2.
        let (key, data) = (b"Jefe".as_slice(), b"what do ya want for nothing?".as_slice());
        let tag = hmac_sign(Hash::Sha256, key, data);
        assert_eq!(hex::encode(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(hmac_verify(Hash::Sha256, key, &tag, data));
        let mut wrong = tag.clone();
        wrong[0] ^= 1;
        assert!(!hmac_verify(Hash::Sha256, key, &wrong, data));
        assert!(!hmac_verify(Hash::Sha256, key, &tag[..31], data), "a truncated tag is not accepted");
    }

    #[test]
    fn ed25519_verifies_its_signatures_and_nothing_else() {
        use ed25519_dalek::Signer;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = signing.verifying_key().to_bytes();
        let signature = signing.sign(b"payload").to_bytes();
        assert_eq!(ed25519_verify(&public, &signature, b"payload").ok(), Some(true));
        assert_eq!(ed25519_verify(&public, &signature, b"payloaD").ok(), Some(false));
        assert_eq!(ed25519_verify(&public, &signature[..10], b"payload").ok(), Some(false));
        assert!(ed25519_verify(&public[..31], &signature, b"payload").is_err());
    }

    #[test]
    fn aes_gcm_round_trips_and_refuses_tampering() {
        let (key, iv) = ([7u8; 32], [1u8; 12]);
        let sealed = aes_gcm(true, &key, &iv, b"aad", b"secret").unwrap();
        assert_eq!(sealed.len(), 6 + 16, "ciphertext and a 128-bit tag");
        assert_eq!(aes_gcm(false, &key, &iv, b"aad", &sealed).unwrap(), b"secret");
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(aes_gcm(false, &key, &iv, b"aad", &tampered).is_err());
        assert!(aes_gcm(false, &key, &iv, b"other", &sealed).is_err(), "the additional data is authenticated");
        assert!(aes_gcm(true, &key[..20], &iv, b"", b"x").is_err());
        assert!(aes_gcm(true, &key, &iv[..8], b"", b"x").is_err());
        // NIST's GCM test case 2 (128-bit zero key and IV, one zero block).
        let zero = aes_gcm(true, &[0; 16], &[0; 12], b"", &[0; 16]).unwrap();
        assert_eq!(hex::encode(zero), "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf");
    }

    #[test]
    fn pbkdf2_and_hkdf_match_published_vectors() {
        // RFC 6070 test 2 (PBKDF2-HMAC-SHA1, 2 iterations).
        let out = pbkdf2(Hash::Sha1, b"password", b"salt", 2, 160).unwrap();
        assert_eq!(hex::encode(out), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
        assert!(pbkdf2(Hash::Sha256, b"p", b"s", MAX_PBKDF2_ITERATIONS + 1, 256).is_err());
        assert!(pbkdf2(Hash::Sha256, b"p", b"s", 1, 12).is_err(), "whole bytes only");
        // RFC 5869 test case 1 (HKDF-SHA256).
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = hkdf(Hash::Sha256, &ikm, &salt, &info, 42 * 8).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn p256_verifies_its_signatures_and_nothing_else() {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::EncodePublicKey;
        let signing = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let signature: p256::ecdsa::Signature = signing.sign(b"payload");
        let spki = signing.verifying_key().to_public_key_der().unwrap();
        let public = p256_public("spki", spki.as_bytes()).unwrap();
        assert_eq!(public.len(), 65, "uncompressed");
        let sig = signature.to_bytes();
        assert_eq!(p256_verify(Hash::Sha256, &public, &sig, b"payload").ok(), Some(true));
        assert_eq!(p256_verify(Hash::Sha256, &public, &sig, b"payloaD").ok(), Some(false));
        assert_eq!(p256_verify(Hash::Sha384, &public, &sig, b"payload").ok(), Some(false), "another hash");
        assert_eq!(p256_verify(Hash::Sha256, &public, &sig[..10], b"payload").ok(), Some(false));
        assert!(p256_public("raw", &[4u8; 10]).is_err());
    }
}
