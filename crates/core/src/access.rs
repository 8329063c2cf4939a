//! The [`AccessService`]: who may call the API and who may open a
//! container's URL, and by which host name. API tokens are in
//! [`crate::tokens`], aliases in [`crate::aliases`]; here, the route table,
//! authorizing users with signed claims, revoking them, and the checks the
//! proxy asks for on every request. It needs only the store and the claim
//! keys: no host subsystem.

use std::sync::Arc;

use cubby_model::{Authorization, AuthorizeRequest, ContainerId, PublicKey};
use cubby_store::Store;

use crate::claims::{ClaimError, ClaimKeys, ClaimPayload, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS};
use crate::config::Urls;
use crate::routes::{RouteTable, label};
use crate::{Caller, Error};

/// Tokens, claims and the proxy's access checks.
#[derive(Debug)]
pub struct AccessService {
    pub(crate) store: Arc<dyn Store>,
    claims: ClaimKeys,
    pub(crate) urls: Urls,
    /// Which URL host reaches which container, read by the proxy.
    pub(crate) routes: RouteTable,
}

/// Query parameter that carries a claim in an authorize link.
pub const CLAIM_PARAM: &str = "__cubby_claim";

fn unix_now() -> i64 {
    cubby_model::now().unix_timestamp()
}

impl AccessService {
    pub fn new(store: Arc<dyn Store>, claims: ClaimKeys, urls: Urls) -> Self {
        Self { store, claims, urls, routes: RouteTable::default() }
    }

    /// The URL routing table the proxy reads.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Signs a claim that opens container `id`'s URL (or one of its ports).
    pub fn authorize(&self, caller: &Caller, id: &ContainerId, req: &AuthorizeRequest) -> Result<Authorization, Error> {
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if ttl == 0 || ttl > MAX_TTL_SECONDS {
            return Err(Error::invalid("ttl_seconds", format!("give 1 to {MAX_TTL_SECONDS} seconds")));
        }
        if let Some(subject) = &req.subject
            && (subject.len() > 256 || subject.chars().any(char::is_control))
        {
            return Err(Error::invalid("subject", "at most 256 printable characters"));
        }
        if req.port == Some(0) {
            return Err(Error::invalid("port", "give a TCP port from 1 to 65535"));
        }
        let now = unix_now();
        let payload = ClaimPayload {
            iss: "cubby".into(),
            sub: req.subject.clone(),
            cid: rec.id.to_string(),
            ep: rec.claims_epoch,
            port: Some(req.port.unwrap_or(rec.port)),
            iat: now,
            exp: now + i64::from(ttl),
        };
        let claim = self.claims.sign(&payload);
        let project = self.store.project(&rec.project_id)?.map(|p| p.name).unwrap_or_default();
        let base = match req.port {
            Some(port) if port != rec.port => self.urls.of_label(&format!("{}-{port}", label(&rec.name, &project))),
            _ => self.urls.of_label(&label(&rec.name, &project)),
        };
        Ok(Authorization {
            url: format!("{base}/?{CLAIM_PARAM}={claim}"),
            claim,
            expires_at: cubby_model::Timestamp::from_unix_timestamp(payload.exp).unwrap_or_else(|_| cubby_model::now()),
        })
    }

    /// Voids every claim of container `id` signed so far.
    pub fn revoke_claims(&self, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        let epoch = self.store.bump_claims_epoch(&rec.id)?;
        tracing::info!(container = %id, epoch, "claims revoked");
        Ok(())
    }

    /// The key that signs claims.
    pub fn public_key(&self) -> PublicKey {
        let key = self.claims.public_key();
        PublicKey {
            kid: self.claims.kid().to_string(),
            alg: "EdDSA".into(),
            jwk: serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": key, "kid": self.claims.kid(), "alg": "EdDSA", "use": "sig" }),
            public_key: key,
        }
    }

    /// Whether `claim` opens port `port` of container `id` now. Returns
    /// the seconds it stays valid.
    pub fn check_claim(&self, id: &ContainerId, port: u16, claim: &str) -> Result<i64, ClaimError> {
        let now = unix_now();
        let payload = self.claims.verify(claim, now)?;
        if payload.cid != id.as_str() {
            return Err(ClaimError::OtherContainer);
        }
        let rec = self.store.container(id).ok().flatten().ok_or(ClaimError::OtherContainer)?;
        if payload.ep != rec.claims_epoch {
            return Err(ClaimError::Revoked);
        }
        if payload.port.unwrap_or(rec.port) != port {
            return Err(ClaimError::OtherPort);
        }
        Ok(payload.exp - now)
    }

    /// Whether a bearer credential opens port `port` of container `id`: a
    /// claim for it, or an API token that can see its project.
    pub fn check_bearer(&self, id: &ContainerId, port: u16, token: &str) -> bool {
        if self.check_claim(id, port, token).is_ok() {
            return true;
        }
        match (self.authenticate(token), self.store.container(id)) {
            (Ok(Some(caller)), Ok(Some(rec))) => caller.can_access(&rec.project_id),
            _ => false,
        }
    }

    /// Whether `token` is a credential of this daemon: an API token (by its
    /// form) or a claim it signed (for any container, even expired).
    pub fn is_credential(&self, token: &str) -> bool {
        token.starts_with(crate::tokens::SECRET_PREFIX) || self.claims.is_ours(token)
    }
}

#[cfg(test)]
mod tests {
    use cubby_model::{CreateToken, Firewall, Project};
    use cubby_store::{ContainerRecord, SqliteStore};

    use super::*;

    struct Fixture {
        access: AccessService,
        store: Arc<SqliteStore>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let claims = ClaimKeys::load_or_create(&dir.path().join("claims.key")).unwrap();
        let urls = Urls { domain: "localhost".into(), proxy_port: 8080, https: false };
        Fixture { access: AccessService::new(Arc::clone(&store) as Arc<dyn Store>, claims, urls), store, _dir: dir }
    }

    fn tenant(f: &Fixture, name: &str) -> (Project, ContainerRecord) {
        let project = crate::testing::project(&*f.store, name);
        let rec = crate::testing::container(&*f.store, &project.id, Firewall::default());
        (project, rec)
    }

    #[test]
    fn a_tenant_can_open_only_its_own_container_and_revocation_holds() {
        let f = fixture();
        let ((pa, a), (pb, b)) = (tenant(&f, "acme"), tenant(&f, "other"));
        let token_a = f.access.create_token(&Caller::admin(), &pa.id, &CreateToken { name: None }).unwrap().secret;
        let token_b = f.access.create_token(&Caller::admin(), &pb.id, &CreateToken { name: None }).unwrap().secret;
        let as_a = f.access.authenticate(&token_a).unwrap().expect("a token of A");
        // Control: A authorizes its own container, and the claim opens it.
        let auth = f.access.authorize(&as_a, &a.id, &AuthorizeRequest::default()).unwrap();
        assert!(auth.url.starts_with("http://app--acme.localhost:8080/?"), "{}", auth.url);
        assert!(f.access.check_claim(&a.id, 8080, &auth.claim).is_ok());
        assert!(f.access.check_bearer(&a.id, 8080, &token_a));
        // A's claim and token do not open B's container, nor another port.
        assert!(matches!(f.access.check_claim(&b.id, 8080, &auth.claim), Err(ClaimError::OtherContainer)));
        assert!(matches!(f.access.check_claim(&a.id, 9090, &auth.claim), Err(ClaimError::OtherPort)));
        assert!(!f.access.check_bearer(&b.id, 8080, &token_a));
        assert!(f.access.check_bearer(&b.id, 8080, &token_b), "control: B's own token opens B");
        // A cannot sign for B, revoke B, or see B's tokens.
        let refused = f.access.authorize(&as_a, &b.id, &AuthorizeRequest::default());
        assert!(matches!(refused, Err(Error::NotFound { kind: "container", .. })), "{refused:?}");
        assert!(matches!(f.access.revoke_claims(&as_a, &b.id), Err(Error::NotFound { .. })));
        assert!(matches!(f.access.tokens(&as_a, &pb.id), Err(Error::NotFound { kind: "project", .. })));
        // Revoking A's claims voids the claim signed before.
        f.access.revoke_claims(&as_a, &a.id).unwrap();
        assert!(matches!(f.access.check_claim(&a.id, 8080, &auth.claim), Err(ClaimError::Revoked)));
        assert!(f.access.is_credential(&token_a) && f.access.is_credential(&auth.claim));
        assert!(!f.access.is_credential("an app's own token"));
    }
}
