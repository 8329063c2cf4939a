//! How the box proves to an ACME CA that it answers for a name: the
//! pending HTTP-01 answers and TLS-ALPN-01 certificates the proxy serves
//! ([`Challenges`]), and the DNS-01 hook that publishes a TXT record for a
//! wildcard ([`DnsHook`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::AcmeError;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How long the DNS-01 hook may take to publish or remove a record.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// Which challenge proves a single name (wildcards always use DNS-01).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChallengeKind {
    /// The CA fetches `http://NAME/.well-known/acme-challenge/TOKEN` from
    /// the proxy's plain listener (port 80 for a public CA).
    #[default]
    Http01,
    /// The CA opens a TLS connection to NAME offering ALPN `acme-tls/1`
    /// and checks the self-signed certificate it gets (port 443): for a
    /// box that serves no plain HTTP.
    TlsAlpn01,
}

impl std::str::FromStr for ChallengeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http-01" => Ok(Self::Http01),
            "tls-alpn-01" => Ok(Self::TlsAlpn01),
            other => Err(format!("unknown ACME challenge `{other}` (known: http-01, tls-alpn-01)")),
        }
    }
}

/// The answers the proxy gives while an order is pending.
#[derive(Debug, Default)]
pub struct Challenges {
    /// HTTP-01 key authorizations, by token.
    http: RwLock<HashMap<String, String>>,
    /// TLS-ALPN-01 server configurations, by name.
    alpn: RwLock<HashMap<String, Arc<ServerConfig>>>,
}

impl Challenges {
    /// The key authorization for `token`, if one is pending.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.http.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()
    }

    pub(super) fn set(&self, token: &str, answer: Option<String>) {
        let mut all = self.http.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match answer {
            Some(answer) => all.insert(token.to_owned(), answer),
            None => all.remove(token),
        };
    }

    /// The TLS configuration that answers a TLS-ALPN-01 validation of
    /// `name`, if one is pending.
    pub fn alpn_config(&self, name: &str) -> Option<Arc<ServerConfig>> {
        self.alpn.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    /// Serves, for `name` over ALPN `acme-tls/1`, a self-signed certificate
    /// carrying `digest` (SHA-256 of the key authorization) in its
    /// acmeIdentifier extension.
    pub(super) fn set_alpn(&self, name: &str, digest: &[u8]) -> Result<(), AcmeError> {
        let failed = |what: String| AcmeError::Order { name: name.to_owned(), status: what };
        let key = rcgen::KeyPair::generate().map_err(|e| failed(format!("no TLS-ALPN-01 key: {e}")))?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
            .map_err(|e| failed(format!("no TLS-ALPN-01 certificate: {e}")))?;
        params.custom_extensions.push(rcgen::CustomExtension::new_acme_identifier(digest));
        let cert = params.self_signed(&key).map_err(|e| failed(format!("no TLS-ALPN-01 certificate: {e}")))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let signing =
            provider.key_provider.load_private_key(key_der).map_err(|e| failed(format!("no TLS-ALPN-01 key: {e}")))?;
        // Not `with_single_cert`: its check refuses the critical
        // acmeIdentifier extension that the CA looks for.
        let certified = CertifiedKey::new(vec![CertificateDer::from(cert.der().to_vec())], signing);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(format!("no TLS-ALPN-01 configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Only(Arc::new(certified))));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        self.alpn.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), Arc::new(config));
        Ok(())
    }

    pub(super) fn clear_alpn(&self, name: &str) {
        self.alpn.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
    }
}

/// Presents one certificate whatever the client asks.
#[derive(Debug)]
struct Only(Arc<CertifiedKey>);

impl ResolvesServerCert for Only {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A program that publishes DNS-01 records: run as `HOOK set RECORD VALUE`
/// before the CA is told to look, and `HOOK clear RECORD VALUE` after, with
/// RECORD like `_acme-challenge.apps.example.com`. It must exit 0 only once
/// the TXT record is visible to the world (its DNS provider's API, then a
/// wait for propagation).
#[derive(Clone, Debug)]
pub struct DnsHook(pub PathBuf);

impl DnsHook {
    /// Runs the hook with `action` (`set` or `clear`).
    pub(super) async fn run(&self, action: &'static str, record: &str, value: &str) -> Result<(), AcmeError> {
        let failed =
            |status: String| AcmeError::Hook { path: self.0.clone(), action, record: record.to_owned(), status };
        // std opens everything close-on-exec: the hook inherits no fd of
        // the daemon's but its standard streams, which are not kept.
        let mut child = tokio::process::Command::new(&self.0)
            .args([action, record, value])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("cannot start: {e}")))?;
        let stderr = child.stderr.take();
        let waited = tokio::time::timeout(HOOK_TIMEOUT, async {
            let mut said = String::new();
            if let Some(mut stderr) = stderr {
                use tokio::io::AsyncReadExt;
                let _ = (&mut stderr).take(4096).read_to_string(&mut said).await;
            }
            (child.wait().await, said)
        })
        .await;
        match waited {
            Err(_) => Err(failed(format!("still running after {} s", HOOK_TIMEOUT.as_secs()))),
            Ok((Err(e), _)) => Err(failed(format!("cannot be waited for: {e}"))),
            Ok((Ok(status), _)) if status.success() => Ok(()),
            Ok((Ok(status), said)) => Err(failed(format!("{status}: {}", said.trim()))),
        }
    }

    /// The hook's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_kinds_parse_by_their_rfc_names() {
        assert_eq!("http-01".parse::<ChallengeKind>(), Ok(ChallengeKind::Http01));
        assert_eq!("tls-alpn-01".parse::<ChallengeKind>(), Ok(ChallengeKind::TlsAlpn01));
        assert!("dns-01".parse::<ChallengeKind>().unwrap_err().contains("known: http-01, tls-alpn-01"));
    }

    #[test]
    fn an_alpn_answer_is_served_for_its_name_until_cleared() {
        let challenges = Challenges::default();
        challenges.set_alpn("web--acme.cubby.test", &[7; 32]).unwrap();
        let config = challenges.alpn_config("web--acme.cubby.test").expect("pending");
        assert_eq!(config.alpn_protocols, vec![ACME_TLS_ALPN.to_vec()]);
        assert!(challenges.alpn_config("other--acme.cubby.test").is_none());
        challenges.clear_alpn("web--acme.cubby.test");
        assert!(challenges.alpn_config("web--acme.cubby.test").is_none());
    }

    #[tokio::test]
    async fn a_failing_hook_names_itself_and_says_what_it_printed() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook");
        std::fs::write(&hook, "#!/bin/sh\necho \"no API token for $2\" >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let err = DnsHook(hook.clone()).run("set", "_acme-challenge.cubby.test", "v").await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&hook.display().to_string()) && text.contains("set"), "{text}");
        assert!(text.contains("no API token for _acme-challenge.cubby.test"), "{text}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&ok, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        DnsHook(ok).run("clear", "_acme-challenge.cubby.test", "v").await.expect("a hook that exits 0 succeeds");
    }
}
