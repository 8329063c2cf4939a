//! Custom domains: a customer's own hostname (`app.customer.com`) serving
//! one tenant. Adding one gives a token; the hostname's owner publishes it
//! as a TXT record at `_cubby-challenge.<hostname>` and asks for
//! verification; only then does the proxy route the hostname to the
//! tenant. A hostname is one tenant's in the whole daemon (first come, but
//! only proven owners are served), and goes with its container.
//!
//! DNS is reached through the [`TxtLookup`] seam: the binary passes a real
//! resolver, unit tests [`FakeTxt`].

use std::collections::HashMap;
use std::sync::Mutex;

use cubby_model::{ContainerId, CreateDomain, CustomDomain, DomainStatus, DomainVerification, validate_hostname};
use cubby_store::{ContainerRecord, DomainRecord};

use crate::access::AccessService;
use crate::{Caller, Error};

/// Custom domains one container may have.
pub const MAX_DOMAINS_PER_CONTAINER: u32 = 10;
/// Where the token is looked for: `<prefix>.<hostname>`.
pub const CHALLENGE_PREFIX: &str = "_cubby-challenge";

/// TXT records, as a DNS resolver answers them.
#[async_trait::async_trait]
pub trait TxtLookup: Send + Sync + std::fmt::Debug {
    /// The TXT strings at `name` (each record's strings joined); empty
    /// when there is none. `Err` says why the lookup failed.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

/// TXT records held in memory, for tests.
#[derive(Debug, Default)]
pub struct FakeTxt(Mutex<HashMap<String, Vec<String>>>);

impl FakeTxt {
    /// Publishes `value` at `name`.
    pub fn set(&self, name: &str, value: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
    }
}

#[async_trait::async_trait]
impl TxtLookup for FakeTxt {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned().unwrap_or_default())
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the kernel's random source is available");
    hex::encode(bytes)
}

impl AccessService {
    fn domain_view(&self, d: &DomainRecord, rec: &ContainerRecord) -> Result<CustomDomain, Error> {
        let project = self.store.project(&rec.project_id)?.map(|p| p.name).unwrap_or_default();
        let own = crate::routes::label(&rec.name, &project);
        Ok(CustomDomain {
            hostname: d.hostname.clone(),
            container_id: d.container_id.clone(),
            status: d.status,
            verification: DomainVerification {
                record_type: "TXT".into(),
                name: format!("{CHALLENGE_PREFIX}.{}", d.hostname),
                value: d.token.clone(),
            },
            cname_target: format!("{own}.{}", self.urls.domain),
            url: self.urls.of_host(&d.hostname),
            created_at: d.created_at,
            verified_at: d.verified_at,
        })
    }

    /// Adds a custom domain to a container the caller may see, pending
    /// until its TXT record is verified. A hostname another container
    /// holds (in any project) is refused.
    pub fn create_domain(&self, caller: &Caller, id: &ContainerId, req: &CreateDomain) -> Result<CustomDomain, Error> {
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        let hostname = validate_hostname(&req.hostname, &self.urls.domain)?;
        if self.store.domains(Some(&rec.id))?.len() >= MAX_DOMAINS_PER_CONTAINER as usize {
            return Err(Error::LimitReached { what: "custom domains per container", limit: MAX_DOMAINS_PER_CONTAINER });
        }
        let domain = DomainRecord {
            hostname,
            container_id: rec.id.clone(),
            token: random_token(),
            status: DomainStatus::Pending,
            created_at: cubby_model::now(),
            verified_at: None,
        };
        match self.store.insert_domain(&domain) {
            Ok(()) => {}
            Err(cubby_store::StoreError::Duplicate { .. }) => {
                return Err(Error::Conflict {
                    code: "domain_taken",
                    message: format!(
                        "`{}` is already a custom domain of a container: remove it there first",
                        domain.hostname
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.domain_view(&domain, &rec)
    }

    /// A container's custom domains.
    pub fn domains(&self, caller: &Caller, id: &ContainerId) -> Result<Vec<CustomDomain>, Error> {
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        self.store.domains(Some(&rec.id))?.iter().map(|d| self.domain_view(d, &rec)).collect()
    }

    fn own_domain(
        &self,
        caller: &Caller,
        id: &ContainerId,
        hostname: &str,
    ) -> Result<(ContainerRecord, DomainRecord), Error> {
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        let hostname = hostname.trim_end_matches('.').to_ascii_lowercase();
        let not_found = || Error::NotFound { kind: "domain", id: hostname.clone() };
        let domain = self.store.domain(&hostname)?.filter(|d| d.container_id == rec.id).ok_or_else(not_found)?;
        Ok((rec, domain))
    }

    /// Looks for the domain's TXT record through `dns`; found, the domain
    /// is verified and the proxy serves the tenant at it.
    pub async fn verify_domain(
        &self,
        caller: &Caller,
        id: &ContainerId,
        hostname: &str,
        dns: &dyn TxtLookup,
    ) -> Result<CustomDomain, Error> {
        let (rec, domain) = self.own_domain(caller, id, hostname)?;
        if domain.status == DomainStatus::Verified {
            return self.domain_view(&domain, &rec);
        }
        let name = format!("{CHALLENGE_PREFIX}.{}", domain.hostname);
        let found = dns.txt(&name).await.map_err(|why| Error::Conflict {
            code: "domain_not_verified",
            message: format!("the TXT record `{name}` could not be looked up ({why}): try again shortly"),
        })?;
        if !found.iter().any(|v| v.trim() == domain.token) {
            let seen = if found.is_empty() { "none".to_owned() } else { found.join(", ") };
            return Err(Error::Conflict {
                code: "domain_not_verified",
                message: format!(
                    "no TXT record `{name}` with the value `{}` was found (found: {seen}): create it at your DNS provider, wait for it to spread, and verify again",
                    domain.token
                ),
            });
        }
        let at = cubby_model::now();
        self.store.set_domain_verified(&domain.hostname, at)?;
        self.republish(&rec)?;
        tracing::info!(container = %rec.id, hostname = %domain.hostname, "custom domain verified");
        let verified = DomainRecord { status: DomainStatus::Verified, verified_at: Some(at), ..domain };
        self.domain_view(&verified, &rec)
    }

    /// Removes a custom domain: the proxy stops serving it at once.
    pub fn delete_domain(&self, caller: &Caller, id: &ContainerId, hostname: &str) -> Result<(), Error> {
        let (rec, domain) = self.own_domain(caller, id, hostname)?;
        self.store.delete_domain(&domain.hostname)?;
        self.republish(&rec)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cubby_model::Firewall;
    use cubby_store::{SqliteStore, Store};

    use super::*;
    use crate::routes::{Lookup, Route};

    #[tokio::test]
    async fn a_domain_is_served_only_once_its_txt_record_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let claims = crate::claims::ClaimKeys::load_or_create(&dir.path().join("claims.key")).unwrap();
        let urls = crate::config::Urls { domain: "localhost".into(), proxy_port: 8080, https: false };
        let access = AccessService::new(Arc::clone(&store), claims, urls);
        let a = crate::testing::project(&*store, "a");
        let b = crate::testing::project(&*store, "b");
        let web = crate::testing::container(&*store, &a.id, Firewall::default());
        let other = crate::testing::container(&*store, &b.id, Firewall::default());
        let route = Route {
            container_id: web.id.clone(),
            project_id: a.id.clone(),
            address: "10.0.0.2".parse().unwrap(),
            port: 8080,
            running: true,
            access: cubby_model::AccessMode::Public,
            autostart: true,
        };
        access.publish(crate::routes::label(&web.name, &a.name), route).unwrap();
        let (caller_a, caller_b) = (Caller::project(a.id.clone()), Caller::project(b.id.clone()));
        let req = CreateDomain { hostname: "App.Shop.TEST".into() };
        let served = |access: &AccessService| !matches!(access.routes.lookup("app.shop.test"), Lookup::Unknown);

        let pending = access.create_domain(&caller_a, &web.id, &req).unwrap();
        assert_eq!((pending.hostname.as_str(), pending.status), ("app.shop.test", DomainStatus::Pending));
        assert_eq!(pending.verification.name, "_cubby-challenge.app.shop.test");
        assert_eq!(pending.url, "http://app.shop.test:8080");
        assert!(!served(&access), "not served before it is verified");
        // Another tenant can neither take the hostname nor see this one.
        let taken = access.create_domain(&caller_b, &other.id, &req).unwrap_err();
        assert!(matches!(taken, Error::Conflict { code: "domain_taken", .. }), "{taken:?}");
        assert!(matches!(access.domains(&caller_b, &web.id), Err(Error::NotFound { .. })));

        let dns = FakeTxt::default();
        dns.set("_cubby-challenge.app.shop.test", "not the token");
        let refused = access.verify_domain(&caller_a, &web.id, "app.shop.test", &dns).await.unwrap_err();
        assert!(matches!(refused, Error::Conflict { code: "domain_not_verified", .. }), "{refused:?}");
        assert!(!served(&access));
        dns.set("_cubby-challenge.app.shop.test", &pending.verification.value);
        let verified = access.verify_domain(&caller_a, &web.id, "app.shop.test", &dns).await.unwrap();
        assert_eq!(verified.status, DomainStatus::Verified);
        assert!(served(&access), "served once verified");

        access.delete_domain(&caller_a, &web.id, "app.shop.test").unwrap();
        assert!(!served(&access), "gone at once");
    }
}
