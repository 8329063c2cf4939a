//! The hashing and signing behind `crypto.subtle`: digests (SHA-1,
//! SHA-256, SHA-384, SHA-512), HMAC with those hashes, and Ed25519
//! verification — what webhook verifiers written for Workers and Deno
//! call (Stripe, GitHub, Shopify and Svix sign with HMAC-SHA256, Discord
//! with Ed25519). RustCrypto and dalek crates do the work; nothing is
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
}
