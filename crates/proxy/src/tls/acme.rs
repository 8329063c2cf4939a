//! Certificates from an ACME CA (Let's Encrypt, or any RFC 8555 server),
//! issued on demand for one name at a time and renewed before they expire.
//!
//! - [`Acme::ensure`] gets a certificate for a name no file covers: an
//!   order, an HTTP-01 challenge answered by the proxy's plain listener
//!   ([`Challenges`]), a CSR made here (rcgen), and the chain, stored in
//!   the state directory (key 0600) and served at once. Concurrent
//!   handshakes for one name share one issuance; a failed one is not tried
//!   again for a while, so nobody can make the box hammer the CA.
//! - [`Acme::renew_due`] issues again what expires within 30 days.
//!
//! Which names may be issued for is the caller's decision (the proxy asks
//! its resolver: only a tenant's host or a verified custom domain).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

use super::CertStore;

/// Renewal starts this long before a certificate expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// A name whose issuance failed is not tried again before this.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// Why a certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME server refused or failed at step `{step}`")]
    Server {
        step: &'static str,
        #[source]
        source: instant_acme::Error,
    },
    #[error("the order for {name} ended as {status}")]
    Order { name: String, status: String },
    #[error("the CA offers no HTTP-01 challenge for {name}")]
    NoHttpChallenge { name: String },
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the issued certificate for {name} cannot be served")]
    Certificate {
        name: String,
        #[source]
        source: super::TlsError,
    },
    #[error("the certificate for {name} failed less than {} s ago: not asking again yet", RETRY_AFTER_FAILURE.as_secs())]
    BackingOff { name: String },
}

fn server(step: &'static str) -> impl FnOnce(instant_acme::Error) -> AcmeError {
    move |source| AcmeError::Server { step, source }
}

/// HTTP-01 answers the proxy gives at `/.well-known/acme-challenge/<token>`.
#[derive(Debug, Default)]
pub struct Challenges(RwLock<HashMap<String, String>>);

impl Challenges {
    /// The key authorization for `token`, if one is pending.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()
    }

    fn set(&self, token: &str, answer: Option<String>) {
        let mut all = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match answer {
            Some(answer) => all.insert(token.to_owned(), answer),
            None => all.remove(token),
        };
    }
}

/// An ACME account and what it issued.
pub struct Acme {
    account: Account,
    dir: PathBuf,
    store: Arc<CertStore>,
    challenges: Arc<Challenges>,
    /// One issuance at a time per name.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When a name last failed.
    failed: Mutex<HashMap<String, Instant>>,
    /// When each issued certificate expires.
    expiry: Mutex<HashMap<String, time::OffsetDateTime>>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// What the state directory holds of the account.
const ACCOUNT_FILE: &str = "account.json";

fn write_private(path: &Path, data: &[u8]) -> Result<(), AcmeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what| move |source| AcmeError::Io { what, path: path.to_path_buf(), source };
    let partial = path.with_extension("partial");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut file| file.write_all(data).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        // A half-written file is not left behind.
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(io("write"))
}

/// When the leaf of `chain` (PEM) expires.
fn not_after(chain: &[u8]) -> Option<time::OffsetDateTime> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.to_datetime())
}

impl Acme {
    /// The account at `directory` (made once, then read back from `dir`),
    /// trusting `ca_file` for the directory's own HTTPS when given; the
    /// certificates issued before are loaded into `store`.
    ///
    /// # Errors
    ///
    /// The directory cannot be reached or refuses the account, or `dir`
    /// cannot be written.
    pub async fn open(
        directory: &str,
        ca_file: Option<&Path>,
        email: Option<&str>,
        dir: PathBuf,
        store: Arc<CertStore>,
        challenges: Arc<Challenges>,
    ) -> Result<Self, AcmeError> {
        std::fs::create_dir_all(&dir).map_err(|source| AcmeError::Io { what: "create", path: dir.clone(), source })?;
        let builder = || match ca_file {
            Some(file) => Account::builder_with_root(file).map_err(server("trust the CA file")),
            None => Account::builder().map_err(server("make an HTTP client")),
        };
        let saved = dir.join(ACCOUNT_FILE);
        let account = match std::fs::read(&saved)
            .ok()
            .and_then(|b| serde_json::from_slice::<AccountCredentials>(&b).ok())
        {
            Some(credentials) => builder()?.from_credentials(credentials).await.map_err(server("load the account"))?,
            None => {
                let contact = email.map(|e| format!("mailto:{e}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) =
                    builder()?.create(&new, directory.to_owned(), None).await.map_err(server("create an account"))?;
                let json = serde_json::to_vec(&credentials).unwrap_or_default();
                write_private(&saved, &json)?;
                account
            }
        };
        let acme = Self {
            account,
            dir,
            store,
            challenges,
            inflight: Mutex::default(),
            failed: Mutex::default(),
            expiry: Mutex::default(),
        };
        acme.load_issued();
        Ok(acme)
    }

    /// The HTTP-01 answers, for the proxy's plain listener.
    pub fn challenges(&self) -> &Arc<Challenges> {
        &self.challenges
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")))
    }

    /// Serves the certificates issued before (those that still load).
    fn load_issued(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".crt")) else {
                continue;
            };
            let (crt, key) = self.paths(name);
            let (Ok(chain), Ok(key)) = (std::fs::read(&crt), std::fs::read(&key)) else { continue };
            match self.store.insert_issued(name, &chain, &key) {
                Ok(()) => {
                    if let Some(at) = not_after(&chain) {
                        self.lock_expiry().insert(name.to_owned(), at);
                    }
                }
                Err(e) => {
                    tracing::warn!(%name, error = %e, "an issued certificate does not load; it will be issued again")
                }
            }
        }
    }

    fn lock_expiry(&self) -> std::sync::MutexGuard<'_, HashMap<String, time::OffsetDateTime>> {
        self.expiry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure a certificate covers `name`, issuing one if none does.
    ///
    /// # Errors
    ///
    /// Issuance failed now or a short while ago (see
    /// [`RETRY_AFTER_FAILURE`]).
    pub async fn ensure(&self, name: &str) -> Result<(), AcmeError> {
        if self.store.covers(name) {
            return Ok(());
        }
        // Names become file names: DNS characters only.
        let plain = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !plain || name.starts_with('.') || name.contains("..") {
            return Err(AcmeError::Order { name: name.escape_default().to_string(), status: "not a DNS name".into() });
        }
        let lock = Arc::clone(
            self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(name.to_owned()).or_default(),
        );
        let _one = lock.lock().await;
        if self.store.covers(name) {
            return Ok(());
        }
        self.issue_unless_backing_off(name).await
    }

    async fn issue_unless_backing_off(&self, name: &str) -> Result<(), AcmeError> {
        let recent = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).copied();
        if recent.is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE) {
            return Err(AcmeError::BackingOff { name: name.to_owned() });
        }
        let result = self.issue(name).await;
        let mut failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &result {
            Ok(()) => failed.remove(name),
            Err(_) => failed.insert(name.to_owned(), Instant::now()),
        };
        result
    }

    /// Issues again every certificate that expires within [`RENEW_BEFORE`];
    /// the number renewed.
    pub async fn renew_due(&self) -> usize {
        let soon = time::OffsetDateTime::now_utc() + RENEW_BEFORE;
        let due: Vec<String> =
            self.lock_expiry().iter().filter(|(_, at)| **at < soon).map(|(n, _)| n.clone()).collect();
        let mut renewed = 0;
        for name in due {
            match self.issue_unless_backing_off(&name).await {
                Ok(()) => renewed += 1,
                Err(e) => {
                    tracing::warn!(%name, error = %e, "certificate renewal failed; the current one is served meanwhile")
                }
            }
        }
        renewed
    }

    async fn issue(&self, name: &str) -> Result<(), AcmeError> {
        tracing::info!(%name, "asking the ACME CA for a certificate");
        let identifiers = [Identifier::Dns(name.to_owned())];
        let mut order = self.account.new_order(&NewOrder::new(&identifiers)).await.map_err(server("new order"))?;
        let mut tokens = Vec::new();
        let answered = async {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(server("read authorization"))?;
                if authz.status == AuthorizationStatus::Valid {
                    continue;
                }
                let mut challenge = authz
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| AcmeError::NoHttpChallenge { name: name.to_owned() })?;
                self.challenges.set(&challenge.token, Some(challenge.key_authorization().as_str().to_owned()));
                tokens.push(challenge.token.clone());
                challenge.set_ready().await.map_err(server("challenge ready"))?;
            }
            Ok::<_, AcmeError>(())
        }
        .await;
        let ready = match answered {
            Ok(()) => order.poll_ready(&RetryPolicy::default()).await.map_err(server("wait for the order")),
            Err(e) => Err(e),
        };
        for token in &tokens {
            self.challenges.set(token, None);
        }
        let status = ready?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Order { name: name.to_owned(), status: format!("{status:?}") });
        }
        let key = order.finalize().await.map_err(server("finalize"))?;
        let chain =
            order.poll_certificate(&RetryPolicy::default()).await.map_err(server("download the certificate"))?;
        self.store
            .insert_issued(name, chain.as_bytes(), key.as_bytes())
            .map_err(|source| AcmeError::Certificate { name: name.to_owned(), source })?;
        let (crt, key_path) = self.paths(name);
        write_private(&key_path, key.as_bytes())?;
        write_private(&crt, chain.as_bytes())?;
        if let Some(at) = not_after(chain.as_bytes()) {
            self.lock_expiry().insert(name.to_owned(), at);
        }
        tracing::info!(%name, "certificate issued");
        Ok(())
    }
}
