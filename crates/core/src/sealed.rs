//! Project secrets at rest: each value is sealed with ChaCha20-Poly1305
//! under a key kept in its own file (`secrets.key`, 0600) beside the
//! database, never in it, so a copy of `cubby.db` (a backup, a support
//! bundle) holds no secret. The project id and the secret's name are the
//! associated data: a sealed value moved to another project or name does
//! not open.
//!
//! Stored form: `sealed:v1:` and base64url of the 12-byte nonce followed
//! by the ciphertext. Values stored before sealing existed are plain;
//! [`SecretKey::unseal`] passes them through and the daemon seals them at
//! start.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::Error;

const PREFIX: &str = "sealed:v1:";

/// The key that seals project secrets (and webhooks' secrets).
#[derive(Clone)]
pub struct SecretKey(ChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Why a stored secret could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("secret `{name}` of project {project} does not open with this daemon's secrets.key")]
pub struct UnsealError {
    pub project: String,
    pub name: String,
}

fn aad(project: &str, name: &str) -> Vec<u8> {
    format!("{project}\0{name}").into_bytes()
}

impl SecretKey {
    /// Loads the key at `path`, making it (mode 0600) if it is missing.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let key = crate::keyfile::read_or_create(path, "secrets key", crate::keyfile::random_key)?;
        let bytes: [u8; 32] = key.as_slice().try_into().map_err(|_| {
            Error::invalid(
                "secrets key",
                format!(
                    "{} is not a 32-byte key: restore it from your backup (the project secrets are sealed with it)",
                    path.display()
                ),
            )
        })?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(ChaCha20Poly1305::new(Key::from_slice(bytes)))
    }

    /// Whether a stored value is sealed already.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Seals `value`, the secret `name` of `project`.
    pub fn seal(&self, project: &str, name: &str, value: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the kernel's random source is available");
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &aad(project, name) })
            .expect("ChaCha20-Poly1305 seals any message of this size");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Opens a stored value (a plain one, stored before sealing, as it is).
    pub fn unseal(&self, project: &str, name: &str, stored: &str) -> Result<String, UnsealError> {
        let Some(body) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let fail = || UnsealError { project: project.to_string(), name: name.to_string() };
        let raw = B64.decode(body).map_err(|_| fail())?;
        if raw.len() < 12 {
            return Err(fail());
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad(project, name) })
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_with_their_key() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let sealed = key.seal("p1", "STRIPE", "whsec_123");
        assert!(SecretKey::is_sealed(&sealed) && !sealed.contains("whsec_123"));
        assert_ne!(sealed, key.seal("p1", "STRIPE", "whsec_123"), "a fresh nonce each time");
        assert_eq!(key.unseal("p1", "STRIPE", &sealed).unwrap(), "whsec_123");
        assert!(key.unseal("p2", "STRIPE", &sealed).is_err(), "moved to another project");
        assert!(key.unseal("p1", "OTHER", &sealed).is_err(), "moved to another name");
        assert!(SecretKey::from_bytes(&[2; 32]).unseal("p1", "STRIPE", &sealed).is_err(), "another key");
        assert!(key.unseal("p1", "STRIPE", "sealed:v1:@@").is_err());
        assert_eq!(key.unseal("p1", "OLD", "plain-before-sealing").unwrap(), "plain-before-sealing");
    }

    #[test]
    fn the_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let a = SecretKey::load_or_create(&path).unwrap();
        let sealed = a.seal("p", "n", "v");
        let b = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(b.unseal("p", "n", &sealed).unwrap(), "v");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(SecretKey::load_or_create(&path).is_err());
    }
}
