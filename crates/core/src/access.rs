//! Who may open a container's URL: authorizing users with signed claims,
//! revoking them, and the checks the proxy asks for on every request.

use std::sync::Arc;

use cubby_model::{Authorization, AuthorizeRequest, ContainerId, PublicKey};

use crate::claims::{ClaimError, ClaimPayload, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS};
use crate::routes::label;
use crate::{Caller, Error, Platform};

/// Query parameter that carries a claim in an authorize link.
pub const CLAIM_PARAM: &str = "__cubby_claim";

fn unix_now() -> i64 {
    cubby_model::now().unix_timestamp()
}

impl Platform {
    /// Signs a claim that opens container `id`'s URL (or one of its ports).
    pub fn authorize(&self, caller: &Caller, id: &ContainerId, req: &AuthorizeRequest) -> Result<Authorization, Error> {
        let rec = self.record(caller, id)?;
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
        let project = self.project_name(&rec.project_id)?;
        let base = match req.port {
            Some(port) if port != rec.port => self.url_of_label(&format!("{}-{port}", label(&rec.name, &project))),
            _ => self.url(&rec.name, &project),
        };
        Ok(Authorization {
            url: format!("{base}/?{CLAIM_PARAM}={claim}"),
            claim,
            expires_at: cubby_model::Timestamp::from_unix_timestamp(payload.exp).unwrap_or_else(|_| cubby_model::now()),
        })
    }

    /// Voids every claim of container `id` signed so far.
    pub fn revoke_claims(&self, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        let rec = self.record(caller, id)?;
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
    pub fn check_bearer(self: &Arc<Self>, id: &ContainerId, port: u16, token: &str) -> bool {
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
