//! Custom domains: a hostname of the customer's own (`app.customer.com`)
//! that serves one tenant, once a DNS record proves the hostname's owner
//! wants it to.

use serde::{Deserialize, Serialize};

use crate::{ContainerId, Timestamp, ValidationError};

/// Whether a custom domain is served yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DomainStatus {
    /// Waiting for its TXT record: not served.
    Pending,
    /// Proven: the proxy serves the tenant at this hostname.
    Verified,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "verified" => Some(Self::Verified),
            _ => None,
        }
    }
}

/// The DNS record that proves a hostname's owner wants it served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainVerification {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The record's name: `_cubby-challenge.<hostname>`.
    pub name: String,
    /// The record's value.
    pub value: String,
}

/// A custom domain of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomDomain {
    /// The hostname, lowercase.
    pub hostname: String,
    pub container_id: ContainerId,
    pub status: DomainStatus,
    /// Create this TXT record, then ask for verification.
    pub verification: DomainVerification,
    /// Where the hostname should point: a CNAME to this name (the tenant's
    /// own host under the daemon's domain), or an A record to its address.
    pub cname_target: String,
    /// The tenant's URL at this hostname (served once verified).
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<Timestamp>,
}

/// The body of `POST /api/v1/containers/{id}/domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// A hostname of yours, like `app.customer.com`.
    pub hostname: String,
}

/// The hostname, lowercased, if it is one a tenant may be given: a DNS
/// name of at least two labels (letters, digits, hyphens; at most 253
/// characters), not an address, and not under the daemon's own `domain`.
pub fn validate_hostname(hostname: &str, domain: &str) -> Result<String, ValidationError> {
    let name = hostname.trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| {
        Err(ValidationError::new(
            "hostname",
            format!("`{}` cannot be a custom domain: {why}", hostname.escape_default()),
        ))
    };
    if name.is_empty() || name.len() > 253 {
        return bad("give a DNS name of at most 253 characters, like app.customer.com");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return bad("give a full name with a dot, like app.customer.com");
    }
    for label in &labels {
        let shaped = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !shaped {
            return bad("each part between dots is 1 to 63 letters, digits or inner hyphens");
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return bad("an address is not a domain");
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if name == domain || name.ends_with(&format!(".{domain}")) {
        return bad("names under the daemon's own domain are its tenants' already");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked_and_lowercased() {
        assert_eq!(validate_hostname("App.Customer.COM.", "localhost").unwrap(), "app.customer.com");
        for bad in ["", "localhost", "a..b", "-a.com", "a-.com", "10.0.0.1", "a_b.com", "x.localhost", "localhost."] {
            assert!(validate_hostname(bad, "localhost").is_err(), "{bad}");
        }
        assert!(validate_hostname(&format!("{}.com", "a".repeat(64)), "localhost").is_err());
    }
}
