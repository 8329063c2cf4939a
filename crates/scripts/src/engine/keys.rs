//! The asymmetric signing keys of `crypto.subtle`: RSA (RSASSA-PKCS1-v1_5
//! and RSA-PSS, sign and verify, keys as SPKI, PKCS #8 or JWK parts,
//! generation), and ECDSA P-256 and Ed25519 private keys (sign, PKCS #8
//! and JWK, generation). What people sign with them: GitHub App and Google service
//! account JWTs (RS256), Apple and Firebase tokens (ES256), and the
//! webhooks some providers sign with RSA. RustCrypto's `rsa` and `p256` do
//! the work; keys cross into JavaScript only as DER or raw bytes, which
//! the prelude keeps out of the script's reach.
//!
//! Kept forms: an RSA private key is its PKCS #8 DER, a public key its
//! SPKI DER; a P-256 private key is its 32-byte scalar, a public key its
//! uncompressed point.

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, Pkcs1v15Sign, PrivateKey, Pss, PublicKey};

use rquickjs::{Ctx, Function, Object, TypedArray};

use super::natives::{type_error, with_bytes};
use super::thrown::Thrown;
use super::webcrypto::{Hash, digest};

/// The RSA modulus sizes accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 1024..=8192;
/// The largest key DER read (an 8192-bit private key is about 4.8 KiB):
/// the parsing and checks are native work the time limit cannot stop, so
/// their input is bounded first.
const MAX_KEY_DER: usize = 8 * 1024;
/// The sizes `generateKey` makes (a native call cannot be interrupted, and
/// 4096 bits already takes about a second).
const RSA_GENERATE_BITS: [usize; 3] = [2048, 3072, 4096];

fn crypto(message: impl std::fmt::Display) -> Thrown {
    Thrown::Crypto(message.to_string())
}

/// An RSA key's parts as big-endian bytes: `n, e` for a public key, then
/// `d, p, q, dp, dq, qi` for a private one (a JWK's fields).
pub(crate) type Parts = Vec<Vec<u8>>;

fn checked_size(n_bits: usize) -> Result<(), Thrown> {
    if RSA_BITS.contains(&n_bits) {
        Ok(())
    } else {
        Err(crypto(format!("RSA keys of {n_bits} bits are not accepted: 1024 to 8192 bits are")))
    }
}

fn public_parts(key: &PublicKey) -> Parts {
    vec![key.n().to_be_bytes_trimmed_vartime().into_vec(), key.e().to_be_bytes_trimmed_vartime().into_vec()]
}

fn private_parts(key: &PrivateKey) -> Parts {
    let mut parts = public_parts(key.as_public_key());
    let trimmed = |v: &BoxedUint| v.to_be_bytes_trimmed_vartime().into_vec();
    parts.push(trimmed(key.d()));
    for prime in key.primes().iter().take(2) {
        parts.push(trimmed(prime.as_ref()));
    }
    parts.push(key.dp().map(trimmed).unwrap_or_default());
    parts.push(key.dq().map(trimmed).unwrap_or_default());
    parts.push(key.crt_coefficient().as_ref().map(trimmed).unwrap_or_default());
    parts
}

/// Reads an RSA key: `spki` (public) or `pkcs8` (private) DER. Answers the
/// kept DER and the key's parts.
pub(crate) fn rsa_import(format: &str, der: &[u8]) -> Result<(Vec<u8>, Parts), Thrown> {
    if der.len() > MAX_KEY_DER {
        return Err(crypto(format!("an RSA key's DER is at most {MAX_KEY_DER} bytes")));
    }
    match format {
        "spki" => {
            let key = PublicKey::from_public_key_der(der).map_err(|e| crypto(format!("not an RSA SPKI key: {e}")))?;
            checked_size(key.n().bit_width_vartime() as usize)?;
            Ok((der.to_vec(), public_parts(&key)))
        }
        "pkcs8" => {
            let key = PrivateKey::from_pkcs8_der(der).map_err(|e| crypto(format!("not an RSA PKCS #8 key: {e}")))?;
            checked_size(key.n().bit_width_vartime() as usize)?;
            Ok((der.to_vec(), private_parts(&key)))
        }
        other => Err(crypto(format!("RSA keys are imported as spki, pkcs8 or jwk, not {other}"))),
    }
}

/// An RSA key from a JWK's parts (`n, e`, or `n, e, d, p, q`): its kept DER
/// and all its parts.
pub(crate) fn rsa_from_parts(parts: &[Vec<u8>]) -> Result<(Vec<u8>, Parts), Thrown> {
    let number = |bytes: &[u8]| BoxedUint::from_be_slice_vartime(bytes);
    // No part is longer than the modulus, and the modulus is bounded, before
    // any arithmetic (which the time limit cannot interrupt).
    let modulus = parts.first().map_or(0, Vec::len);
    if modulus > RSA_BITS.end() / 8 + 1 || parts.iter().any(|p| p.len() > modulus) {
        return Err(crypto("an RSA JWK's parts are at most as long as its n, of at most 8192 bits"));
    }
    match parts {
        [n, e] => {
            checked_size(number(n).bit_width_vartime() as usize)?;
            let key =
                PublicKey::new(number(n), number(e)).map_err(|e| crypto(format!("not an RSA public key: {e}")))?;
            let der = key.to_public_key_der().map_err(crypto)?;
            Ok((der.as_bytes().to_vec(), public_parts(&key)))
        }
        [n, e, d, p, q, ..] => {
            checked_size(number(n).bit_width_vartime() as usize)?;
            let key = PrivateKey::from_components(number(n), number(e), number(d), vec![number(p), number(q)])
                .map_err(|e| crypto(format!("not an RSA private key: {e}")))?;
            let der = key.to_pkcs8_der().map_err(crypto)?;
            Ok((der.as_bytes().to_vec(), private_parts(&key)))
        }
        _ => Err(crypto("an RSA JWK needs n and e, and d, p and q for a private key")),
    }
}

/// The SPKI of the public half of private key `pkcs8`.
pub(crate) fn rsa_public_of(pkcs8: &[u8]) -> Result<Vec<u8>, Thrown> {
    let key = PrivateKey::from_pkcs8_der(pkcs8).map_err(crypto)?;
    Ok(key.to_public_key().to_public_key_der().map_err(crypto)?.as_bytes().to_vec())
}

/// A new RSA key pair of `bits` with exponent 65537: (PKCS #8, SPKI).
pub(crate) fn rsa_generate(bits: usize, exponent: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Thrown> {
    if !RSA_GENERATE_BITS.contains(&bits) {
        return Err(crypto(format!("generateKey makes RSA keys of 2048, 3072 or 4096 bits, not {bits}")));
    }
    if exponent.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>() != [1, 0, 1] {
        return Err(crypto("generateKey makes RSA keys with the public exponent 65537 ([1, 0, 1]) only"));
    }
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let key = PrivateKey::new(&mut rng, bits).map_err(crypto)?;
    let private = key.to_pkcs8_der().map_err(crypto)?.as_bytes().to_vec();
    let public = key.to_public_key().to_public_key_der().map_err(crypto)?.as_bytes().to_vec();
    Ok((private, public))
}

/// RSASSA-PKCS1-v1_5, or RSA-PSS with a salt of this many bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RsaScheme {
    Pkcs1v15,
    Pss(usize),
}

macro_rules! with_scheme {
    ($scheme:expr, $hash:expr, |$padding:ident| $body:expr) => {
        match ($scheme, $hash) {
            (RsaScheme::Pkcs1v15, Hash::Sha1) => {
                let $padding = Pkcs1v15Sign::new::<sha1::Sha1>();
                $body
            }
            (RsaScheme::Pkcs1v15, Hash::Sha256) => {
                let $padding = Pkcs1v15Sign::new::<sha2::Sha256>();
                $body
            }
            (RsaScheme::Pkcs1v15, Hash::Sha384) => {
                let $padding = Pkcs1v15Sign::new::<sha2::Sha384>();
                $body
            }
            (RsaScheme::Pkcs1v15, Hash::Sha512) => {
                let $padding = Pkcs1v15Sign::new::<sha2::Sha512>();
                $body
            }
            (RsaScheme::Pss(salt), Hash::Sha1) => {
                let $padding = Pss::<sha1::Sha1>::new_with_salt(salt);
                $body
            }
            (RsaScheme::Pss(salt), Hash::Sha256) => {
                let $padding = Pss::<sha2::Sha256>::new_with_salt(salt);
                $body
            }
            (RsaScheme::Pss(salt), Hash::Sha384) => {
                let $padding = Pss::<sha2::Sha384>::new_with_salt(salt);
                $body
            }
            (RsaScheme::Pss(salt), Hash::Sha512) => {
                let $padding = Pss::<sha2::Sha512>::new_with_salt(salt);
                $body
            }
        }
    };
}

/// The signature of `data` (hashed with `hash`) by private key `pkcs8`.
pub(crate) fn rsa_sign(scheme: RsaScheme, hash: Hash, pkcs8: &[u8], data: &[u8]) -> Result<Vec<u8>, Thrown> {
    let key = PrivateKey::from_pkcs8_der(pkcs8).map_err(crypto)?;
    let hashed = digest(hash, data);
    with_scheme!(scheme, hash, |padding| key.sign(padding, &hashed)).map_err(crypto)
}

/// Whether `signature` is public key `spki`'s signature of `data`.
pub(crate) fn rsa_verify(
    scheme: RsaScheme,
    hash: Hash,
    spki: &[u8],
    signature: &[u8],
    data: &[u8],
) -> Result<bool, Thrown> {
    let key = PublicKey::from_public_key_der(spki).map_err(crypto)?;
    let hashed = digest(hash, data);
    Ok(with_scheme!(scheme, hash, |padding| key.verify(padding, &hashed, signature)).is_ok())
}

/// A P-256 private key from `pkcs8` DER or a raw 32-byte scalar (a JWK's
/// `d`): (scalar, uncompressed public point).
pub(crate) fn p256_private(format: &str, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Thrown> {
    let key = match format {
        "pkcs8" => {
            p256::SecretKey::from_pkcs8_der(data).map_err(|e| crypto(format!("not a P-256 PKCS #8 key: {e}")))?
        }
        _ => p256::SecretKey::from_slice(data).map_err(|_| crypto("not a P-256 private scalar"))?,
    };
    Ok(p256_pair(&key))
}

fn p256_pair(key: &p256::SecretKey) -> (Vec<u8>, Vec<u8>) {
    use p256::elliptic_curve::sec1::ToSec1Point;
    (key.to_bytes().to_vec(), key.public_key().to_sec1_point(false).as_bytes().to_vec())
}

/// A new P-256 key pair: (scalar, uncompressed public point).
pub(crate) fn p256_generate() -> Result<(Vec<u8>, Vec<u8>), Thrown> {
    let mut scalar = [0u8; 32];
    loop {
        getrandom::fill(&mut scalar).map_err(Thrown::NoRandomness)?;
        if let Ok(key) = p256::SecretKey::from_slice(&scalar) {
            return Ok(p256_pair(&key));
        }
    }
}

/// The PKCS #8 DER of P-256 private `scalar`.
pub(crate) fn p256_pkcs8(scalar: &[u8]) -> Result<Vec<u8>, Thrown> {
    use p256::pkcs8::EncodePrivateKey as _;
    let key = p256::SecretKey::from_slice(scalar).map_err(|_| crypto("not a P-256 private scalar"))?;
    Ok(key.to_pkcs8_der().map_err(crypto)?.as_bytes().to_vec())
}

/// The SPKI DER of P-256 public `point`.
pub(crate) fn p256_spki(point: &[u8]) -> Result<Vec<u8>, Thrown> {
    use p256::pkcs8::EncodePublicKey as _;
    let key = p256::PublicKey::from_sec1_bytes(point).map_err(|_| Thrown::NotP256Key)?;
    Ok(key.to_public_key_der().map_err(crypto)?.as_bytes().to_vec())
}

/// The ECDSA P-256 signature (IEEE P1363: r then s) of `data` hashed with
/// `hash`, deterministic (RFC 6979).
pub(crate) fn p256_sign(hash: Hash, scalar: &[u8], data: &[u8]) -> Result<Vec<u8>, Thrown> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let key = p256::ecdsa::SigningKey::from_slice(scalar).map_err(|_| crypto("not a P-256 private scalar"))?;
    let signature: p256::ecdsa::Signature = key.sign_prehash(&digest(hash, data)).map_err(crypto)?;
    Ok(signature.to_bytes().to_vec())
}

/// An Ed25519 private key from `pkcs8` DER or its raw 32-byte seed (a
/// JWK's `d`): (seed, public key).
pub(crate) fn ed25519_private(format: &str, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Thrown> {
    let key = match format {
        "pkcs8" => {
            use ed25519_dalek::pkcs8::DecodePrivateKey as _;
            ed25519_dalek::SigningKey::from_pkcs8_der(data)
                .map_err(|e| crypto(format!("not an Ed25519 PKCS #8 key: {e}")))?
        }
        _ => {
            let seed: [u8; 32] = data.try_into().map_err(|_| crypto("an Ed25519 private key is 32 bytes"))?;
            ed25519_dalek::SigningKey::from_bytes(&seed)
        }
    };
    Ok((key.to_bytes().to_vec(), key.verifying_key().to_bytes().to_vec()))
}

/// A new Ed25519 key pair: (seed, public key).
pub(crate) fn ed25519_generate() -> Result<(Vec<u8>, Vec<u8>), Thrown> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(Thrown::NoRandomness)?;
    ed25519_private("raw", &seed)
}

/// The PKCS #8 DER of Ed25519 `seed`.
pub(crate) fn ed25519_pkcs8(seed: &[u8]) -> Result<Vec<u8>, Thrown> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let seed: [u8; 32] = seed.try_into().map_err(|_| crypto("an Ed25519 private key is 32 bytes"))?;
    let der = ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der().map_err(crypto)?;
    Ok(der.as_bytes().to_vec())
}

/// The Ed25519 signature of `data` by `seed`.
pub(crate) fn ed25519_sign(seed: &[u8], data: &[u8]) -> Result<Vec<u8>, Thrown> {
    use ed25519_dalek::Signer as _;
    let seed: [u8; 32] = seed.try_into().map_err(|_| crypto("an Ed25519 private key is 32 bytes"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed).sign(data).to_bytes().to_vec())
}

/// Byte arrays for JavaScript.
fn arrays<'js>(ctx: &Ctx<'js>, all: Vec<Vec<u8>>) -> rquickjs::Result<Vec<TypedArray<'js, u8>>> {
    all.into_iter().map(|bytes| TypedArray::new(ctx.clone(), bytes)).collect()
}

fn owned(arrays: &[TypedArray<'_, u8>]) -> Vec<Vec<u8>> {
    arrays.iter().map(|a| with_bytes(a, <[u8]>::to_vec)).collect()
}

/// The scheme a script names: `RSASSA-PKCS1-v1_5`, or `RSA-PSS` with its
/// salt length.
fn scheme(pss: bool, salt: u32) -> RsaScheme {
    if pss { RsaScheme::Pss(usize::try_from(salt).unwrap_or(usize::MAX)) } else { RsaScheme::Pkcs1v15 }
}

/// Puts this module's natives on `native` (`subtleRsa*`, `subtleP256Sign`
/// and the P-256 private key helpers). Each answers byte arrays, or a list
/// of them, and throws a `TypeError` with the reason.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set(
        "subtleRsaImport",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, format: String, der: TypedArray<'js, u8>| {
            let (kept, parts) = with_bytes(&der, |d| rsa_import(&format, d)).map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, std::iter::once(kept).chain(parts).collect())
        })?,
    )?;
    native.set(
        "subtleRsaFromParts",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, parts: Vec<TypedArray<'js, u8>>| {
            let (kept, parts) = rsa_from_parts(&owned(&parts)).map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, std::iter::once(kept).chain(parts).collect())
        })?,
    )?;
    native.set(
        "subtleRsaPublicOf",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, pkcs8: TypedArray<'js, u8>| {
            let spki = with_bytes(&pkcs8, rsa_public_of).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, spki)
        })?,
    )?;
    native.set(
        "subtleRsaGenerate",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, bits: u32, exponent: TypedArray<'js, u8>| {
            let bits = usize::try_from(bits).unwrap_or(0);
            let (private, public) =
                with_bytes(&exponent, |e| rsa_generate(bits, e)).map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, vec![private, public])
        })?,
    )?;
    native.set(
        "subtleRsaSign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, pss: bool, salt: u32, hash: String, key: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
                let hash = Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                let signature = with_bytes(&key, |k| with_bytes(&data, |d| rsa_sign(scheme(pss, salt), hash, k, d)))
                    .map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(ctx, signature)
            },
        )?,
    )?;
    native.set(
        "subtleRsaVerify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             pss: bool,
             salt: u32,
             hash: String,
             key: TypedArray<'js, u8>,
             signature: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                let hash = Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                with_bytes(&key, |k| {
                    with_bytes(&signature, |s| with_bytes(&data, |d| rsa_verify(scheme(pss, salt), hash, k, s, d)))
                })
                .map_err(|m| type_error(&ctx, &m))
            },
        )?,
    )?;
    native.set(
        "subtleP256Private",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, format: String, data: TypedArray<'js, u8>| {
            let (scalar, point) = with_bytes(&data, |d| p256_private(&format, d)).map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, vec![scalar, point])
        })?,
    )?;
    native.set(
        "subtleP256Generate",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| {
            let (scalar, point) = p256_generate().map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, vec![scalar, point])
        })?,
    )?;
    native.set(
        "subtleP256Export",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, format: String, data: TypedArray<'js, u8>| {
            let der = with_bytes(&data, |d| if format == "pkcs8" { p256_pkcs8(d) } else { p256_spki(d) })
                .map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, der)
        })?,
    )?;
    native.set(
        "subtleEd25519Private",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, format: String, data: TypedArray<'js, u8>| {
            let (seed, public) =
                with_bytes(&data, |d| ed25519_private(&format, d)).map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, vec![seed, public])
        })?,
    )?;
    native.set(
        "subtleEd25519Generate",
        Function::new(ctx.clone(), |ctx: Ctx<'js>| {
            let (seed, public) = ed25519_generate().map_err(|m| type_error(&ctx, &m))?;
            arrays(&ctx, vec![seed, public])
        })?,
    )?;
    native.set(
        "subtleEd25519Pkcs8",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, seed: TypedArray<'js, u8>| {
            let der = with_bytes(&seed, ed25519_pkcs8).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, der)
        })?,
    )?;
    native.set(
        "subtleEd25519Sign",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, seed: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
            let signature =
                with_bytes(&seed, |k| with_bytes(&data, |d| ed25519_sign(k, d))).map_err(|m| type_error(&ctx, &m))?;
            TypedArray::<u8>::new(ctx, signature)
        })?,
    )?;
    native.set(
        "subtleP256Sign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, hash: String, scalar: TypedArray<'js, u8>, data: TypedArray<'js, u8>| {
                let hash = Hash::parse(&hash).map_err(|m| type_error(&ctx, &m))?;
                let signature = with_bytes(&scalar, |k| with_bytes(&data, |d| p256_sign(hash, k, d)))
                    .map_err(|m| type_error(&ctx, &m))?;
                TypedArray::<u8>::new(ctx, signature)
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::webcrypto::p256_verify;

    #[test]
    fn rsa_signs_and_verifies_both_schemes_and_refuses_tampering() {
        let (private, public) = rsa_generate(2048, &[1, 0, 1]).unwrap();
        let (kept, parts) = rsa_import("pkcs8", &private).unwrap();
        assert_eq!((kept.len(), parts.len()), (private.len(), 8));
        assert_eq!(rsa_public_of(&private).unwrap(), public);
        for scheme in [RsaScheme::Pkcs1v15, RsaScheme::Pss(32)] {
            let signature = rsa_sign(scheme, Hash::Sha256, &private, b"payload").unwrap();
            assert!(rsa_verify(scheme, Hash::Sha256, &public, &signature, b"payload").unwrap());
            assert!(!rsa_verify(scheme, Hash::Sha256, &public, &signature, b"payloaD").unwrap());
            assert!(!rsa_verify(scheme, Hash::Sha384, &public, &signature, b"payload").unwrap());
        }
        // The JWK parts make the same key again.
        let (again, _) = rsa_from_parts(&parts[..5]).unwrap();
        let signature = rsa_sign(RsaScheme::Pkcs1v15, Hash::Sha256, &again, b"x").unwrap();
        assert!(rsa_verify(RsaScheme::Pkcs1v15, Hash::Sha256, &public, &signature, b"x").unwrap());
        let (public_again, _) = rsa_from_parts(&parts[..2]).unwrap();
        assert_eq!(public_again, public);
        assert!(rsa_generate(1024, &[1, 0, 1]).is_err() && rsa_generate(2048, &[3]).is_err());
        // Parts longer than the modulus are refused before any arithmetic.
        let mut huge = parts[..5].to_vec();
        huge[3] = vec![0xff; 1 << 20];
        assert!(rsa_from_parts(&huge).is_err());
        assert!(rsa_import("pkcs8", &vec![0x30; 64 * 1024]).is_err());
    }

    #[test]
    fn p256_signs_what_it_verifies_and_round_trips_pkcs8() {
        let (scalar, point) = p256_generate().unwrap();
        let signature = p256_sign(Hash::Sha256, &scalar, b"token").unwrap();
        assert_eq!(signature.len(), 64);
        assert!(p256_verify(Hash::Sha256, &point, &signature, b"token").unwrap());
        assert!(!p256_verify(Hash::Sha256, &point, &signature, b"tokeN").unwrap());
        let pkcs8 = p256_pkcs8(&scalar).unwrap();
        assert_eq!(p256_private("pkcs8", &pkcs8).unwrap(), (scalar.clone(), point.clone()));
        assert!(p256_spki(&point).unwrap().len() > 65);
    }

    #[test]
    fn ed25519_signs_what_it_verifies_and_round_trips_pkcs8() {
        let (seed, public) = ed25519_generate().unwrap();
        let signature = ed25519_sign(&seed, b"hello").unwrap();
        assert!(crate::engine::webcrypto::ed25519_verify(&public, &signature, b"hello").unwrap());
        assert!(!crate::engine::webcrypto::ed25519_verify(&public, &signature, b"hellO").unwrap());
        assert_eq!(ed25519_private("pkcs8", &ed25519_pkcs8(&seed).unwrap()).unwrap(), (seed, public));
    }
}
