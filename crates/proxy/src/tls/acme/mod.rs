//! Certificates from an ACME CA (Let's Encrypt, or any RFC 8555 server),
//! issued on demand for one name at a time and renewed before they expire.
//!
//! - [`Acme::ensure`] gets a certificate for a name no file covers: an
//!   order, an HTTP-01 or TLS-ALPN-01 challenge answered by the proxy
//!   ([`challenge`]), a CSR made here (rcgen), and the chain, stored in
//!   the state directory (key 0600) and served at once. Concurrent
//!   handshakes for one name share one issuance; a failed one is not tried
//!   again for a while, so nobody can make the box hammer the CA.
//! - [`Acme::ensure_wildcard`] gets `*.{domain}` over DNS-01, the TXT
//!   record published by the operator's hook ([`DnsHook`]).
//! - [`Acme::renew_forever`] issues again what is due: when a third of a
//!   certificate's lifetime is left, at most 30 days before it expires
//!   (Let's Encrypt's 90-day certificates at 30 days, short-lived ones in
//!   proportion).
//!
//! Which names may be issued for is the caller's decision (the proxy asks
//! its resolver: only a tenant's host or a verified custom domain).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

pub mod challenge;

pub use challenge::{ACME_TLS_ALPN, ChallengeKind, Challenges, DnsHook};

use super::CertStore;

/// Renewal starts at most this long before a certificate expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Renewals are looked for at least this often.
pub const RENEW_CHECK: Duration = Duration::from_secs(12 * 3600);
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
    #[error("the CA offers no {kind} challenge for {name}")]
    NoChallenge { name: String, kind: &'static str },
    #[error("a wildcard certificate for {name} needs DNS-01: give a DNS hook (--acme-dns-hook)")]
    NoDnsHook { name: String },
    #[error("the DNS-01 hook {path} failed to {action} {record}: {status}")]
    Hook { path: PathBuf, action: &'static str, record: String, status: String },
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

/// Where and how certificates are asked for.
#[derive(Clone, Debug, Default)]
pub struct AcmeOptions {
    /// The CA's directory URL.
    pub directory: String,
    /// A PEM CA to trust for the directory's own HTTPS.
    pub ca_file: Option<PathBuf>,
    /// The account's contact address.
    pub email: Option<String>,
    /// How single names are proven.
    pub challenge: ChallengeKind,
    /// Publishes DNS-01 records (needed for wildcards).
    pub dns_hook: Option<DnsHook>,
}

/// A certificate's validity.
#[derive(Clone, Copy, Debug)]
struct Validity {
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
}

impl Validity {
    /// When renewal is due: a third of the lifetime before the end, at
    /// most [`RENEW_BEFORE`].
    fn renew_at(self) -> time::OffsetDateTime {
        let third: time::Duration = (self.not_after - self.not_before) / 3;
        let before = third.min(time::Duration::try_from(RENEW_BEFORE).unwrap_or(time::Duration::MAX));
        self.not_after - before
    }
}

/// An ACME account and what it issued.
pub struct Acme {
    account: Account,
    dir: PathBuf,
    store: Arc<CertStore>,
    challenges: Arc<Challenges>,
    kind: ChallengeKind,
    hook: Option<DnsHook>,
    /// Poked when a certificate is issued (the renewal schedule changes).
    issued: tokio::sync::Notify,
    /// One issuance at a time per name.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When a name last failed.
    failed: Mutex<HashMap<String, Instant>>,
    /// Each issued certificate's validity.
    expiry: Mutex<HashMap<String, Validity>>,
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

/// The validity of the leaf of `chain` (PEM).
fn validity(chain: &[u8]) -> Option<Validity> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain).ok()?;
    let cert = pem.parse_x509().ok()?;
    let v = cert.validity();
    Some(Validity { not_before: v.not_before.to_datetime(), not_after: v.not_after.to_datetime() })
}

/// The file stem a name's certificate is kept under (`*` is not a file
/// name character anyone wants: `*.apps.example.com` is `_.apps.example.com`;
/// no DNS label Cubby serves starts with `_`).
fn stem(name: &str) -> String {
    name.strip_prefix("*.").map_or_else(|| name.to_owned(), |rest| format!("_.{rest}"))
}

fn name_of_stem(stem: &str) -> String {
    stem.strip_prefix("_.").map_or_else(|| stem.to_owned(), |rest| format!("*.{rest}"))
}

/// Whether `name` may become a file name: DNS characters only, no empty
/// label.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
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
        options: AcmeOptions,
        dir: PathBuf,
        store: Arc<CertStore>,
        challenges: Arc<Challenges>,
    ) -> Result<Self, AcmeError> {
        let AcmeOptions { directory, ca_file, email, challenge, dns_hook } = options;
        std::fs::create_dir_all(&dir).map_err(|source| AcmeError::Io { what: "create", path: dir.clone(), source })?;
        let builder = || match ca_file.as_deref() {
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
                    builder()?.create(&new, directory.clone(), None).await.map_err(server("create an account"))?;
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
            kind: challenge,
            hook: dns_hook,
            issued: tokio::sync::Notify::new(),
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
        let stem = stem(name);
        (self.dir.join(format!("{stem}.crt")), self.dir.join(format!("{stem}.key")))
    }

    /// Serves the certificates issued before (those that still load).
    fn load_issued(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) =
                path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".crt")).map(name_of_stem)
            else {
                continue;
            };
            let name = name.as_str();
            let (crt, key) = self.paths(name);
            let (Ok(chain), Ok(key)) = (std::fs::read(&crt), std::fs::read(&key)) else { continue };
            match self.store.insert_issued(name, &chain, &key) {
                Ok(()) => {
                    if let Some(validity) = validity(&chain) {
                        self.lock_expiry().insert(name.to_owned(), validity);
                    }
                }
                Err(e) => {
                    tracing::warn!(%name, error = %e, "an issued certificate does not load; it will be issued again")
                }
            }
        }
    }

    fn lock_expiry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Validity>> {
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
        if !plain(name) {
            return Err(AcmeError::Order { name: name.escape_default().to_string(), status: "not a DNS name".into() });
        }
        self.ensure_checked(name).await
    }

    /// Makes sure a certificate covers every name under `parent`
    /// (`*.{parent}`), issuing a wildcard over DNS-01 if none does.
    ///
    /// # Errors
    ///
    /// No DNS hook, or issuance failed now or a short while ago.
    pub async fn ensure_wildcard(&self, parent: &str) -> Result<(), AcmeError> {
        let name = format!("*.{parent}");
        if !plain(parent) {
            return Err(AcmeError::Order { name: name.escape_default().to_string(), status: "not a DNS name".into() });
        }
        if self.store.covers_all_under(parent) {
            return Ok(());
        }
        if self.hook.is_none() {
            return Err(AcmeError::NoDnsHook { name });
        }
        self.ensure_checked(&name).await
    }

    async fn ensure_checked(&self, name: &str) -> Result<(), AcmeError> {
        let lock = Arc::clone(
            self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(name.to_owned()).or_default(),
        );
        let _one = lock.lock().await;
        let covered = match name.strip_prefix("*.") {
            Some(parent) => self.store.covers_all_under(parent),
            None => self.store.covers(name),
        };
        if covered {
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

    /// Renews what is due, then sleeps until the next renewal is (at most
    /// [`RENEW_CHECK`], woken early by a new certificate), for ever.
    pub async fn renew_forever(self: Arc<Self>) {
        loop {
            let renewed = self.renew_due().await;
            if renewed > 0 {
                tracing::info!(renewed, "certificates renewed");
            }
            let now = time::OffsetDateTime::now_utc();
            let next = self.lock_expiry().values().map(|v| v.renew_at()).min();
            let wait = next.map_or(RENEW_CHECK, |at| {
                // Due and failing: backed off, so look again a bit later.
                Duration::try_from(at - now)
                    .unwrap_or(Duration::from_secs(30))
                    .clamp(Duration::from_secs(1), RENEW_CHECK)
            });
            let issued = self.issued.notified();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = issued => {}
            }
        }
    }

    /// Issues again every certificate whose renewal is due (see
    /// [`Validity::renew_at`]); the number renewed.
    pub async fn renew_due(&self) -> usize {
        let now = time::OffsetDateTime::now_utc();
        let due: Vec<String> =
            self.lock_expiry().iter().filter(|(_, v)| v.renew_at() <= now).map(|(n, _)| n.clone()).collect();
        let mut renewed = 0;
        for name in due {
            match self.issue_unless_backing_off(&name).await {
                Ok(()) => renewed += 1,
                Err(e @ AcmeError::BackingOff { .. }) => tracing::debug!(%name, error = %e, "renewal waits"),
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
        let mut pending = Vec::new();
        let answered = self.answer_all(&mut order, name, &mut pending).await;
        let ready = match answered {
            Ok(()) => order.poll_ready(&RetryPolicy::default()).await.map_err(server("wait for the order")),
            Err(e) => Err(e),
        };
        for answer in pending {
            self.withdraw(answer).await;
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
        if let Some(validity) = validity(chain.as_bytes()) {
            self.lock_expiry().insert(name.to_owned(), validity);
        }
        self.issued.notify_one();
        tracing::info!(%name, "certificate issued");
        Ok(())
    }

    /// Answers every authorization of `order` that is not valid yet, the
    /// way `name` calls for (a wildcard by DNS-01, a single name by the
    /// configured challenge); what was put up is listed in `pending` so it
    /// is taken down whatever happens next.
    async fn answer_all(
        &self,
        order: &mut instant_acme::Order,
        name: &str,
        pending: &mut Vec<Pending>,
    ) -> Result<(), AcmeError> {
        let (kind, label) = match (name.starts_with("*."), self.kind) {
            (true, _) => (ChallengeType::Dns01, "dns-01"),
            (false, ChallengeKind::Http01) => (ChallengeType::Http01, "http-01"),
            (false, ChallengeKind::TlsAlpn01) => (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(server("read authorization"))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| AcmeError::NoChallenge { name: name.to_owned(), kind: label })?;
            let authorization = challenge.key_authorization();
            match kind {
                ChallengeType::Dns01 => {
                    let hook = self.hook.as_ref().ok_or_else(|| AcmeError::NoDnsHook { name: name.to_owned() })?;
                    let record = format!("_acme-challenge.{}", name.trim_start_matches("*."));
                    let value = authorization.dns_value();
                    // Listed first: a hook that fails halfway may still
                    // have published something.
                    pending.push(Pending::Dns { hook: hook.clone(), record: record.clone(), value: value.clone() });
                    hook.run("set", &record, &value).await?;
                }
                ChallengeType::TlsAlpn01 => {
                    self.challenges.set_alpn(name, authorization.digest().as_ref())?;
                    pending.push(Pending::Alpn(name.to_owned()));
                }
                _ => {
                    self.challenges.set(&challenge.token, Some(authorization.as_str().to_owned()));
                    pending.push(Pending::Http(challenge.token.clone()));
                }
            }
            challenge.set_ready().await.map_err(server("challenge ready"))?;
        }
        Ok(())
    }

    async fn withdraw(&self, answer: Pending) {
        match answer {
            Pending::Http(token) => self.challenges.set(&token, None),
            Pending::Alpn(name) => self.challenges.clear_alpn(&name),
            Pending::Dns { hook, record, value } => {
                if let Err(e) = hook.run("clear", &record, &value).await {
                    tracing::warn!(error = %e, "the DNS-01 record could not be removed");
                }
            }
        }
    }
}

/// A challenge answer put up for an order, taken down when it ends.
enum Pending {
    Http(String),
    Alpn(String),
    Dns { hook: DnsHook, record: String, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_a_third_of_the_lifetime_left_and_at_most_30_days_before() {
        let start = time::OffsetDateTime::UNIX_EPOCH;
        let ninety_days = Validity { not_before: start, not_after: start + time::Duration::days(90) };
        assert_eq!(ninety_days.renew_at(), start + time::Duration::days(60));
        let six_days = Validity { not_before: start, not_after: start + time::Duration::days(6) };
        assert_eq!(six_days.renew_at(), start + time::Duration::days(4));
        let year = Validity { not_before: start, not_after: start + time::Duration::days(365) };
        assert_eq!(year.renew_at(), start + time::Duration::days(335), "at most 30 days before");
    }

    #[test]
    fn wildcards_are_kept_under_a_file_name_without_a_star() {
        assert_eq!(stem("*.apps.example.com"), "_.apps.example.com");
        assert_eq!(name_of_stem("_.apps.example.com"), "*.apps.example.com");
        assert_eq!(stem("web--acme.apps.example.com"), "web--acme.apps.example.com");
        assert!(!plain("../etc") && !plain("a..b") && !plain("A.b") && !plain("*.b") && plain("a-b.c"));
    }
}
