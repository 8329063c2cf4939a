//! Snapshots: read-only, named states of a container that can be restored
//! in place or copied into new containers.

use serde::{Deserialize, Serialize};

use crate::{ContainerId, Timestamp, ValidationError};

/// A snapshot, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Generated, unique in its container.
    pub name: String,
    /// A second name of the user's choice, unique in its container.
    pub alias: Option<String>,
    pub container_id: ContainerId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When the daemon removes it, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    /// Bytes the snapshot holds on its own.
    pub size_bytes: Option<u64>,
}

/// The body of `POST /api/v1/containers/{id}/snapshots`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    #[serde(default)]
    pub alias: Option<String>,
    /// Removed after this many days (fractions allowed, up to 3650); kept
    /// until deleted when absent.
    #[serde(default)]
    pub expiry_days: Option<f64>,
}

/// The body of `PATCH /api/v1/containers/{id}/snapshots/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateSnapshot {
    /// The new alias; `null` removes it.
    pub alias: Option<String>,
}

/// A snapshot alias: 1 to 40 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn validate_alias(alias: &str) -> Result<(), ValidationError> {
    let ok = !alias.is_empty()
        && alias.len() <= 40
        && alias.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && alias.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "alias",
            format!(
                "`{}` is not a valid alias: use 1 to 40 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit",
                alias.escape_default()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert!(validate_alias("before-migration").is_ok());
        assert!(validate_alias("v1.2_ok").is_ok());
        for bad in ["", "-x", "UPPER", "a b", "../x", &"a".repeat(41)] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
    }
}
