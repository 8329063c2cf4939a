//! Who may open a container's URL: access modes, signed claims, the
//! daemon's public key, and aliases.

use serde::{Deserialize, Serialize};

use crate::{ContainerId, Timestamp, ValidationError};

/// How a container's URL is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// Only with a signed claim from `authorize` (a link, then a cookie).
    #[default]
    Claim,
    /// Anyone.
    Public,
    /// Machine clients: `Authorization: Bearer <claim or API token>`.
    Token,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Public => "public",
            Self::Token => "token",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "claim" => Self::Claim,
            "public" => Self::Public,
            "token" => Self::Token,
            _ => return None,
        })
    }
}

/// The body of `POST /api/v1/containers/{id}/authorize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// Who the claim is for (your user id); carried in the claim as `sub`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Lifetime, 1 to 86400 seconds (default 3600).
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
    /// Open this port's URL instead of the app's.
    #[serde(default)]
    pub port: Option<u16>,
}

/// A signed claim that opens one container's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Authorization {
    /// The claim: a JWT signed with EdDSA (Ed25519); verify it with the key
    /// at `/api/v1/meta/public-key`.
    pub claim: String,
    /// Send the user here: it carries the claim, sets a cookie and
    /// redirects to the clean URL.
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

/// The key that signs claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicKey {
    /// Key id, also in each claim's header.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// The same key as a JWK (`kty` OKP, `crv` Ed25519).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub jwk: serde_json::Value,
}

/// A unique name that points at a container (and a port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alias {
    pub name: String,
    pub container_id: ContainerId,
    /// The port it reaches; the app's when absent.
    pub port: Option<u16>,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The body of `POST /api/v1/aliases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAlias {
    /// 1 to 40 lowercase letters, digits and single hyphens; unique on the daemon.
    pub name: String,
    pub container_id: ContainerId,
    #[serde(default)]
    pub port: Option<u16>,
}

/// An alias name: a DNS label without `--` (which container URLs use) and
/// not ending in `-<digits>` (which port URLs use).
/// Alias names only the admin token may take: they look like the
/// operator's own pages, and a tenant holding one could phish.
pub const RESERVED_ALIASES: &[&str] = &[
    "www",
    "api",
    "app",
    "admin",
    "administrator",
    "login",
    "logout",
    "signin",
    "signup",
    "auth",
    "oauth",
    "sso",
    "account",
    "accounts",
    "billing",
    "pay",
    "payment",
    "payments",
    "checkout",
    "mail",
    "email",
    "smtp",
    "imap",
    "mx",
    "ftp",
    "ns",
    "ns1",
    "ns2",
    "dns",
    "cdn",
    "static",
    "assets",
    "status",
    "docs",
    "help",
    "support",
    "dashboard",
    "console",
    "portal",
    "cubby",
    "exec",
    "proxy",
    "root",
    "security",
    "secure",
    "id",
    "identity",
    "webmail",
];

pub fn validate_alias_name(name: &str) -> Result<(), ValidationError> {
    let bad = |why: &str| {
        Err(ValidationError::new(
            "name",
            format!(
                "`{}` is not a valid alias: {why}. Use 1 to 40 lowercase letters, digits and single hyphens",
                name.escape_default()
            ),
        ))
    };
    if name.is_empty() || name.len() > 40 {
        return bad("its length is wrong");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return bad("it has a character other than a-z, 0-9 and -");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return bad("it starts or ends with a hyphen, or has two in a row");
    }
    if name.rsplit_once('-').is_some_and(|(_, tail)| tail.bytes().all(|b| b.is_ascii_digit())) {
        return bad("it ends in `-<digits>`, which URLs use for ports");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names() {
        assert!(validate_alias_name("shop").is_ok());
        assert!(validate_alias_name("acme-shop").is_ok());
        for bad in ["", "a--b", "-a", "Shop", "shop-8080", &"a".repeat(41)] {
            assert!(validate_alias_name(bad).is_err(), "{bad}");
        }
    }
}
