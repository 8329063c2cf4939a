//! TLS for the proxy's HTTPS listener (rustls, aws-lc-rs): certificates
//! and keys read from PEM files, the one to present picked by the client's
//! SNI name, and new files picked up without a restart.
//!
//! [`CertStore`] owns the files and what was loaded from them. A handshake
//! asks it for the first certificate valid for the SNI name (the first one
//! of all when the client sent none or no certificate covers the name).
//! [`CertStore::reload_if_changed`] reads the files again when one's
//! modification time or size changed; a pair that fails to load leaves the
//! previous certificates in place, so a half-written renewal never takes
//! HTTPS down.
//!
//! [`acme`] adds certificates issued on demand for single names (a
//! tenant's host or its verified custom domain) when no file covers them.

pub mod acme;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// ALPN's name of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN's name of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A certificate chain file and its private key file, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM from {path}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate: it should hold the PEM chain, leaf first")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds a certificate that cannot be parsed")]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: webpki::Error,
    },
    #[error("the key in {path} cannot be used")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("no certificate was given: pass --tls-cert and --tls-key")]
    NoPairs,
    #[error("cannot make the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// What one file looked like when it was read: modification time and size.
type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).map_or((None, 0), |m| (m.modified().ok(), m.len()))
}

/// Certificates as loaded, in the order their files were given.
#[derive(Debug)]
struct Loaded {
    keys: Vec<Arc<CertifiedKey>>,
    stamps: Vec<(Stamp, Stamp)>,
}

/// The proxy's certificates, picked per handshake by SNI.
#[derive(Debug)]
pub struct CertStore {
    pairs: Vec<CertFiles>,
    provider: Arc<CryptoProvider>,
    loaded: RwLock<Arc<Loaded>>,
    /// Certificates issued for one name each (ACME), by that name.
    issued: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertStore {
    /// Loads every pair (at least one).
    ///
    /// # Errors
    ///
    /// A file that cannot be read or parsed, a key that does not match its
    /// certificate, or no pair at all.
    pub fn load(pairs: Vec<CertFiles>) -> Result<Arc<Self>, TlsError> {
        if pairs.is_empty() {
            return Err(TlsError::NoPairs);
        }
        Self::load_or_empty(pairs)
    }

    /// Like [`CertStore::load`], but no pair is fine: certificates then
    /// come from ACME only.
    ///
    /// # Errors
    ///
    /// As [`CertStore::load`], but for the missing pairs.
    pub fn load_or_empty(pairs: Vec<CertFiles>) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded = load_all(&pairs, &provider)?;
        Ok(Arc::new(Self { pairs, provider, loaded: RwLock::new(Arc::new(loaded)), issued: RwLock::default() }))
    }

    /// Whether a certificate from the files or an issued one covers `name`.
    pub fn covers(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name) else { return false };
        self.issued_for(name).is_some() || self.current().keys.iter().any(|key| covers(key, &server_name))
    }

    /// Whether every single-label name under `parent` is covered: a
    /// wildcard `*.{parent}` from the files or issued.
    pub fn covers_all_under(&self, parent: &str) -> bool {
        // A label no tenant host has (they are `name--project`) stands
        // for all of them.
        let probe = format!("wildcard-probe.{parent}");
        self.issued_read().contains_key(&format!("*.{parent}"))
            || ServerName::try_from(probe.as_str())
                .is_ok_and(|name| self.current().keys.iter().any(|key| covers(key, &name)))
    }

    fn issued_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.issued.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The issued certificate for `name`: its own, or a wildcard of its
    /// parent.
    fn issued_for(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let issued = self.issued_read();
        issued.get(name).cloned().or_else(|| {
            let (_, parent) = name.split_once('.')?;
            issued.get(&format!("*.{parent}")).cloned()
        })
    }

    /// Serves `chain` (PEM, leaf first) with `key` (PEM) for `name` from
    /// now on (`*.{parent}`: for every name directly under `parent`).
    ///
    /// # Errors
    ///
    /// The PEM does not parse, or the key is not the certificate's.
    pub fn insert_issued(&self, name: &str, chain: &[u8], key: &[u8]) -> Result<(), TlsError> {
        let path = || PathBuf::from(format!("(issued for {name})"));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|source| TlsError::Pem { path: path(), source })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate { path: path() });
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| TlsError::Pem { path: path(), source })?;
        let signing = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::Key { path: path(), source })?;
        let certified = CertifiedKey::new(certs, signing);
        if certified.keys_match().is_err() {
            return Err(TlsError::Mismatch { cert: path(), key: path() });
        }
        self.issued
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(certified));
        Ok(())
    }

    /// Reads the files again if any changed since they were loaded; `true`
    /// when new certificates are in use.
    ///
    /// # Errors
    ///
    /// The new files do not load; the previous certificates stay in use.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let current = self.current();
        let now: Vec<(Stamp, Stamp)> = self.pairs.iter().map(|p| (stamp(&p.cert), stamp(&p.key))).collect();
        if now == current.stamps {
            return Ok(false);
        }
        let loaded = load_all(&self.pairs, &self.provider)?;
        *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        Ok(true)
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The certificate to present for `sni`.
    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.current();
        let by_name = sni
            .and_then(|sni| ServerName::try_from(sni).ok())
            .and_then(|name| loaded.keys.iter().find(|key| covers(key, &name)).cloned());
        let issued = || self.issued_for(sni?);
        by_name.or_else(issued).or_else(|| loaded.keys.first().cloned())
    }

    /// A server configuration that presents these certificates (TLS 1.3
    /// and 1.2, session resumption on), offering `alpn` (most preferred
    /// first: [`ALPN_H2`], [`ALPN_HTTP11`]).
    ///
    /// # Errors
    ///
    /// The crypto provider refuses the protocol versions (it does not).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(16_384);
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// Whether `key`'s certificate is valid for `name`, as a client checks.
fn covers(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.end_entity_cert()
        .ok()
        .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
        .is_some_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

fn load_all(pairs: &[CertFiles], provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let mut keys = Vec::with_capacity(pairs.len());
    let mut stamps = Vec::with_capacity(pairs.len());
    for pair in pairs {
        // Stamped before reading: a write during the read shows next time.
        stamps.push((stamp(&pair.cert), stamp(&pair.key)));
        keys.push(Arc::new(load_pair(pair, provider)?));
    }
    Ok(Loaded { keys, stamps })
}

fn load_pair(pair: &CertFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    fn pem(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
        move |source| TlsError::Pem { path: path.to_path_buf(), source }
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.cert)
        .map_err(pem(&pair.cert))?
        .collect::<Result<_, _>>()
        .map_err(pem(&pair.cert))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { path: pair.cert.clone() });
    };
    webpki::EndEntityCert::try_from(leaf)
        .map_err(|source| TlsError::BadCertificate { path: pair.cert.clone(), source })?;
    let key = PrivateKeyDer::from_pem_file(&pair.key).map_err(pem(&pair.key))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key { path: pair.key.clone(), source })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(_) => Err(TlsError::Mismatch { cert: pair.cert.clone(), key: pair.key.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names`, written as `{stem}.crt/.key`.
    fn write_pair(dir: &Path, stem: &str, names: &[&str]) -> (CertFiles, CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names).unwrap().self_signed(&key).unwrap();
        let files = CertFiles { cert: dir.join(format!("{stem}.crt")), key: dir.join(format!("{stem}.key")) };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, cert.der().clone())
    }

    fn presented(store: &CertStore, sni: Option<&str>) -> CertificateDer<'static> {
        store.pick(sni).unwrap().end_entity_cert().unwrap().clone().into_owned()
    }

    #[test]
    fn sni_picks_the_certificate_that_covers_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let (apps, apps_der) = write_pair(dir.path(), "apps", &["*.cubby.test"]);
        let (exec, exec_der) = write_pair(dir.path(), "exec", &["*.exec.cubby.test"]);
        let store = CertStore::load(vec![apps, exec]).unwrap();
        assert_eq!(presented(&store, Some("web--acme.cubby.test")), apps_der);
        assert_eq!(presented(&store, Some("acme.exec.cubby.test")), exec_der);
        // No SNI, or a name nothing covers: the first one.
        assert_eq!(presented(&store, None), apps_der);
        assert_eq!(presented(&store, Some("elsewhere.example")), apps_der);
        store.server_config(&[ALPN_H2, ALPN_HTTP11]).expect("a server configuration");
    }

    #[test]
    fn changed_files_are_reloaded_and_broken_ones_keep_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (pair, first) = write_pair(dir.path(), "site", &["*.cubby.test"]);
        let store = CertStore::load(vec![pair.clone()]).unwrap();
        assert!(!store.reload_if_changed().unwrap(), "nothing changed");

        let (_, renewed) = write_pair(dir.path(), "site", &["*.cubby.test"]);
        assert_ne!(first, renewed);
        assert!(store.reload_if_changed().unwrap());
        assert_eq!(presented(&store, Some("a--b.cubby.test")), renewed, "the renewal is served");

        // A half-written certificate does not load: the renewal stays.
        std::fs::write(&pair.cert, "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
        assert!(store.reload_if_changed().is_err());
        assert_eq!(presented(&store, Some("a--b.cubby.test")), renewed);
    }

    #[test]
    fn bad_pairs_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = write_pair(dir.path(), "a", &["a.test"]);
        let (b, _) = write_pair(dir.path(), "b", &["b.test"]);
        let crossed = CertFiles { cert: a.cert.clone(), key: b.key.clone() };
        let err = CertStore::load(vec![crossed]).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("b.key") && err.to_string().contains("a.crt"), "{err}");

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "").unwrap();
        let err = CertStore::load(vec![CertFiles { cert: empty, key: a.key }]).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(matches!(CertStore::load(Vec::new()), Err(TlsError::NoPairs)));
    }
}

#[cfg(test)]
mod issued_tests {
    use super::*;

    #[test]
    fn an_issued_certificate_is_served_for_its_name_only() {
        let store = CertStore::load_or_empty(Vec::new()).unwrap();
        assert!(store.pick(Some("web--acme.cubby.test")).is_none(), "nothing to present yet");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["web--acme.cubby.test".to_string()]).unwrap().self_signed(&key).unwrap();
        store.insert_issued("web--acme.cubby.test", cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        assert!(store.covers("web--acme.cubby.test"));
        assert!(store.pick(Some("web--acme.cubby.test")).is_some());
        assert!(!store.covers("other--acme.cubby.test"));
    }

    #[test]
    fn an_issued_wildcard_covers_the_names_one_label_under_it() {
        let store = CertStore::load_or_empty(Vec::new()).unwrap();
        assert!(!store.covers_all_under("cubby.test"));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["*.cubby.test".to_string()]).unwrap().self_signed(&key).unwrap();
        store.insert_issued("*.cubby.test", cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        assert!(store.covers_all_under("cubby.test"));
        assert!(store.covers("web--acme.cubby.test") && store.pick(Some("web--acme.cubby.test")).is_some());
        assert!(!store.covers("acme.exec.cubby.test"), "two labels under: not covered");
        assert!(!store.covers_all_under("exec.cubby.test"));
    }
}
