//! Signed claims: the links that open one container's URL for one user.
//!
//! A claim is a JWT signed with EdDSA (Ed25519), so apps can verify it
//! offline with the key served at `/api/v1/meta/public-key`. Its payload
//! names the container (`cid`), the port whose URL it opens (`port`) and
//! the container's claim epoch (`ep`): revoking bumps the epoch and voids
//! every claim signed before. The
//! signing key is made at first start and kept in the data dir, mode 0600.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// Longest claim lifetime.
pub const MAX_TTL_SECONDS: u32 = 86_400;
/// Lifetime when none is asked for.
pub const DEFAULT_TTL_SECONDS: u32 = 3_600;

/// What a claim says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPayload {
    /// Issuer: always `cubby`.
    pub iss: String,
    /// The subject the app asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The container the claim opens.
    pub cid: String,
    /// The container's claim epoch when signed.
    pub ep: u32,
    /// The port whose URL the claim opens. Claims signed before ports were
    /// named in them open the app's port only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Issued at and expiry, seconds since the epoch.
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the claim is malformed")]
    Malformed,
    #[error("the claim was not signed by this daemon")]
    BadSignature,
    #[error("the claim has expired")]
    Expired,
    #[error("the claim is for another container")]
    OtherContainer,
    #[error("the claim is for another port of this container")]
    OtherPort,
    #[error("the claim was revoked")]
    Revoked,
}

/// The daemon's claim signing key.
pub struct ClaimKeys {
    signing: SigningKey,
    verifying: VerifyingKey,
    kid: String,
}

impl std::fmt::Debug for ClaimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimKeys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl ClaimKeys {
    /// Loads the key at `path`, making it (mode 0600) if it is missing.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let bytes = crate::keyfile::read_or_create(path, "claim signing key", crate::keyfile::random_key)?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::invalid(
                "claim key",
                format!("{} is not a 32-byte key: move it away to make a new one", path.display()),
            )
        })?;
        Ok(Self::from_seed(&seed))
    }

    /// Keys from a seed (for tests).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifying = signing.verifying_key();
        let kid = hex::encode(&Sha256::digest(verifying.to_bytes())[..8]);
        Self { signing, verifying, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw public key, base64url.
    pub fn public_key(&self) -> String {
        B64.encode(self.verifying.to_bytes())
    }

    /// Signs `payload` as a compact JWT.
    pub fn sign(&self, payload: &ClaimPayload) -> String {
        let header = Header { alg: "EdDSA".into(), typ: "JWT".into(), kid: self.kid.clone() };
        let signed = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).expect("header serialises")),
            B64.encode(serde_json::to_vec(payload).expect("payload serialises"))
        );
        let signature: Signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", B64.encode(signature.to_bytes()))
    }

    /// Whether `claim` carries this key's signature, whatever it says.
    pub fn is_ours(&self, claim: &str) -> bool {
        !matches!(self.verify(claim, i64::MIN), Err(ClaimError::Malformed | ClaimError::BadSignature))
    }

    /// Checks a claim's form, signature and expiry (at `now`, seconds), and
    /// returns what it says. The caller checks the container and epoch.
    pub fn verify(&self, claim: &str, now: i64) -> Result<ClaimPayload, ClaimError> {
        if claim.len() > 4096 {
            return Err(ClaimError::Malformed);
        }
        let mut parts = claim.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(ClaimError::Malformed);
        };
        let header: Header =
            B64.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(ClaimError::Malformed)?;
        if header.alg != "EdDSA" || header.kid != self.kid {
            return Err(ClaimError::BadSignature);
        }
        let sig: [u8; 64] = B64.decode(s).ok().and_then(|b| b.try_into().ok()).ok_or(ClaimError::Malformed)?;
        let signed_len = h.len() + 1 + p.len();
        self.verifying
            .verify_strict(&claim.as_bytes()[..signed_len], &Signature::from_bytes(&sig))
            .map_err(|_| ClaimError::BadSignature)?;
        let payload: ClaimPayload =
            B64.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(ClaimError::Malformed)?;
        if payload.iss != "cubby" {
            return Err(ClaimError::BadSignature);
        }
        if payload.exp <= now {
            return Err(ClaimError::Expired);
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(exp: i64) -> ClaimPayload {
        ClaimPayload {
            iss: "cubby".into(),
            sub: Some("user-1".into()),
            cid: "cabc".into(),
            ep: 0,
            port: Some(8080),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn signs_and_verifies() {
        let keys = ClaimKeys::from_seed(&[7; 32]);
        let claim = keys.sign(&payload(100));
        assert_eq!(keys.verify(&claim, 50).unwrap(), payload(100));
        assert_eq!(keys.verify(&claim, 100), Err(ClaimError::Expired));
    }

    #[test]
    fn tampering_and_other_keys_are_refused() {
        let keys = ClaimKeys::from_seed(&[7; 32]);
        let claim = keys.sign(&payload(100));
        let mut parts: Vec<String> = claim.split('.').map(str::to_string).collect();
        let forged = ClaimPayload { cid: "cother".into(), ..payload(100) };
        parts[1] = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(keys.verify(&parts.join("."), 50), Err(ClaimError::BadSignature));
        let other = ClaimKeys::from_seed(&[8; 32]);
        assert_eq!(other.verify(&claim, 50), Err(ClaimError::BadSignature));
        assert!(keys.is_ours(&claim) && !other.is_ours(&claim) && !keys.is_ours(&parts.join(".")));
        for junk in ["", "a.b", "a.b.c.d", "x.y.z", &"a".repeat(5000)] {
            assert!(keys.verify(junk, 50).is_err(), "{junk}");
        }
        // alg=none is refused.
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none","typ":"JWT","kid":"x"}"#), parts[1]);
        assert!(keys.verify(&none, 50).is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims.key");
        let a = ClaimKeys::load_or_create(&path).unwrap();
        let b = ClaimKeys::load_or_create(&path).unwrap();
        assert_eq!(a.kid(), b.kid());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
