//! API tokens: the admin token written at first start, project tokens made
//! through the API, and authentication. Only SHA-256 hashes of secrets are
//! stored; a secret is shown once, when it is made.

use std::path::Path;

use cubby_model::{CreateToken, CreatedToken, ProjectId, Token, TokenId, random_secret};
use cubby_store::TokenRecord;
use sha2::{Digest, Sha256};

use crate::access::AccessService;
use crate::{Caller, Error};

/// Secrets start with this, so leaked ones are easy to scan for.
pub const SECRET_PREFIX: &str = "cubby_";

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl AccessService {
    /// Makes sure the admin token exists: written to `path` (mode 0600) at
    /// first start, and its hash in the store. Returns the file's path.
    pub fn ensure_admin_token(&self, path: &Path) -> Result<(), Error> {
        let made = || format!("{SECRET_PREFIX}{}\n", random_secret()).into_bytes();
        let secret =
            String::from_utf8_lossy(&crate::keyfile::read_or_create(path, "admin token", made)?).trim().to_string();
        if secret.is_empty() {
            return Err(Error::invalid(
                "admin token",
                format!("{} is empty: delete it and restart to make a new one", path.display()),
            ));
        }
        let h = hash(&secret);
        if self.store.token_by_hash(&h)?.is_none() {
            self.store.insert_token(&TokenRecord {
                token: Token {
                    id: TokenId::random(),
                    project_id: None,
                    name: Some("admin".into()),
                    created_at: cubby_model::now(),
                },
                hash: h,
            })?;
        }
        // The file holds the only admin token: one it replaced stops working.
        for old in self.store.tokens(None)?.into_iter().filter(|t| t.hash != h) {
            self.store.delete_token(&old.token.id)?;
            tracing::info!(token = %old.token.id, "the admin token was replaced: the old one is revoked");
        }
        Ok(())
    }

    /// Who holds `secret`, if it is a valid token.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Caller>, Error> {
        if !secret.starts_with(SECRET_PREFIX) || secret.len() > 256 {
            return Ok(None);
        }
        Ok(self.store.token_by_hash(&hash(secret))?.map(|t| {
            let caller = match t.token.project_id {
                Some(p) => Caller::project(p),
                None => Caller::admin(),
            };
            caller.with_token(t.token.id)
        }))
    }

    /// Makes a token for `project`. The admin or a token of that project may.
    pub fn create_token(&self, caller: &Caller, project: &ProjectId, req: &CreateToken) -> Result<CreatedToken, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        if let Some(name) = &req.name
            && (name.len() > 64 || name.chars().any(char::is_control))
        {
            return Err(Error::invalid("name", "a token name is at most 64 printable characters"));
        }
        let secret = format!("{SECRET_PREFIX}{}", random_secret());
        let token = Token {
            id: TokenId::random(),
            project_id: Some(project.clone()),
            name: req.name.clone(),
            created_at: cubby_model::now(),
        };
        self.store.insert_token(&TokenRecord { token: token.clone(), hash: hash(&secret) })?;
        Ok(CreatedToken { token, secret })
    }

    /// The tokens of a project (without secrets).
    pub fn tokens(&self, caller: &Caller, project: &ProjectId) -> Result<Vec<Token>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        Ok(self.store.tokens(Some(project))?.into_iter().map(|t| t.token).collect())
    }

    /// Revokes a token of a project.
    pub fn delete_token(&self, caller: &Caller, project: &ProjectId, id: &TokenId) -> Result<(), Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let owned = self.store.tokens(Some(project))?.into_iter().any(|t| &t.token.id == id);
        if !owned || !self.store.delete_token(id)? {
            return Err(Error::NotFound { kind: "token", id: id.to_string() });
        }
        Ok(())
    }
}
