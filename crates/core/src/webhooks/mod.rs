//! The [`WebhookService`]: a project's webhooks (made, listed, removed,
//! their secrets sealed at rest) and their delivery log. Delivering lives
//! in [`deliver`]: it needs an HTTP sender, which the binary passes in.
//!
//! Each delivery is a `POST` of the event as JSON, signed the way Stripe
//! signs: `Cubby-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the hook's secret>`.

pub mod deliver;

use std::sync::Arc;

use cubby_model::{CreateWebhook, ProjectId, Webhook, WebhookDelivery, WebhookId};
use cubby_store::{Store, WebhookRecord};
use hmac::{KeyInit, Mac};

use crate::sealed::SecretKey;
use crate::{Caller, Error};

/// Webhooks one project may have.
pub const MAX_WEBHOOKS_PER_PROJECT: u32 = 16;
/// Deliveries one answer lists.
pub const MAX_DELIVERIES_LISTED: u32 = 200;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "cubby-signature";

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` does not fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The sealing context of a hook's secret: it opens only as that hook's.
fn seal_name(id: &WebhookId) -> String {
    format!("webhook:{id}")
}

/// A project's webhooks.
#[derive(Debug)]
pub struct WebhookService {
    store: Arc<dyn Store>,
    key: SecretKey,
}

impl WebhookService {
    pub fn new(store: Arc<dyn Store>, key: SecretKey) -> Self {
        Self { store, key }
    }

    /// Makes a webhook for `project`; the answer carries its secret, once.
    pub fn create(&self, caller: &Caller, project: &ProjectId, req: &CreateWebhook) -> Result<Webhook, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let url = url::Url::parse(&req.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::invalid("url", "give an absolute http:// or https:// URL"))?;
        let secret = match &req.secret {
            Some(s) if (16..=256).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic()) => s.clone(),
            Some(_) => return Err(Error::invalid("secret", "give 16 to 256 printable ASCII characters, or none")),
            None => format!("whsec_{}", cubby_model::random_secret()),
        };
        if let Some(d) = &req.description
            && (d.len() > 256 || d.chars().any(char::is_control))
        {
            return Err(Error::invalid("description", "at most 256 printable characters"));
        }
        if self.store.webhooks(project)?.len() >= MAX_WEBHOOKS_PER_PROJECT as usize {
            return Err(Error::LimitReached { what: "webhooks per project", limit: MAX_WEBHOOKS_PER_PROJECT });
        }
        let mut events = req.events.clone();
        events.sort_by_key(|e| e.as_str());
        events.dedup();
        let id = WebhookId::random();
        let webhook = Webhook {
            id: id.clone(),
            project_id: project.clone(),
            url: url.to_string(),
            events,
            description: req.description.clone(),
            created_at: cubby_model::now(),
            secret: None,
        };
        // Only events from now on.
        let after_event = self.store.last_event_id()?;
        let sealed_secret = self.key.seal(project.as_str(), &seal_name(&id), &secret);
        self.store.insert_webhook(&WebhookRecord { webhook: webhook.clone(), sealed_secret, after_event })?;
        Ok(Webhook { secret: Some(secret), ..webhook })
    }

    /// The webhooks of `project`, without their secrets.
    pub fn list(&self, caller: &Caller, project: &ProjectId) -> Result<Vec<Webhook>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        Ok(self.store.webhooks(project)?.into_iter().map(|r| r.webhook).collect())
    }

    fn record(&self, caller: &Caller, project: &ProjectId, id: &WebhookId) -> Result<WebhookRecord, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        self.store
            .webhook(id)?
            .filter(|r| &r.webhook.project_id == project)
            .ok_or_else(|| Error::NotFound { kind: "webhook", id: id.to_string() })
    }

    /// Removes a webhook and its delivery log.
    pub fn delete(&self, caller: &Caller, project: &ProjectId, id: &WebhookId) -> Result<(), Error> {
        self.record(caller, project, id)?;
        self.store.delete_webhook(id)?;
        Ok(())
    }

    /// A webhook's latest deliveries, newest first.
    pub fn deliveries(
        &self,
        caller: &Caller,
        project: &ProjectId,
        id: &WebhookId,
    ) -> Result<Vec<WebhookDelivery>, Error> {
        self.record(caller, project, id)?;
        Ok(self.store.deliveries(id, MAX_DELIVERIES_LISTED)?)
    }

    /// The secret of a stored hook.
    pub(crate) fn secret(&self, hook: &WebhookRecord) -> Result<String, Error> {
        let project = hook.webhook.project_id.as_str();
        self.key.unseal(project, &seal_name(&hook.webhook.id), &hook.sealed_secret).map_err(|e| Error::Conflict {
            code: "webhook_secret_unreadable",
            message: format!("{e}: delete the webhook and make it again"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently.
        let sig = signature("whsec_test", 1_700_000_000, b"{}");
        let (t, v1) = sig.split_once(',').unwrap();
        assert_eq!(t, "t=1700000000");
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"whsec_test").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(v1, format!("v1={}", hex::encode(mac.finalize().into_bytes())));
        assert_ne!(signature("other", 1_700_000_000, b"{}"), sig, "another secret, another signature");
    }

    #[test]
    fn hooks_are_checked_sealed_and_scoped() {
        let store: Arc<dyn Store> = Arc::new(cubby_store::SqliteStore::in_memory().unwrap());
        let a = crate::testing::project(&*store, "a");
        let b = crate::testing::project(&*store, "b");
        let hooks = WebhookService::new(Arc::clone(&store), SecretKey::from_bytes(&[3; 32]));
        let req = |url: &str| CreateWebhook { url: url.into(), ..Default::default() };
        let admin = Caller::admin();
        for bad in ["ftp://x/", "not a url", "/relative"] {
            assert!(matches!(hooks.create(&admin, &a.id, &req(bad)), Err(Error::Invalid(_))), "{bad}");
        }
        let made = hooks.create(&admin, &a.id, &req("https://hooks.example.com/in")).unwrap();
        let secret = made.secret.clone().unwrap();
        assert!(secret.starts_with("whsec_"));
        let stored = store.webhook(&made.id).unwrap().unwrap();
        assert!(!stored.sealed_secret.contains(&secret), "sealed at rest");
        assert_eq!(hooks.secret(&stored).unwrap(), secret);
        assert!(hooks.list(&admin, &a.id).unwrap().iter().all(|h| h.secret.is_none()), "shown once");

        let from_b = Caller::project(b.id.clone());
        assert!(matches!(hooks.list(&from_b, &a.id), Err(Error::NotFound { kind: "project", .. })));
        assert!(matches!(hooks.delete(&from_b, &b.id, &made.id), Err(Error::NotFound { kind: "webhook", .. })));
        hooks.delete(&Caller::project(a.id.clone()), &a.id, &made.id).unwrap();
        assert!(hooks.list(&admin, &a.id).unwrap().is_empty());
    }
}
