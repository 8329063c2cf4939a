//! API tokens. The admin token sees everything; a project token sees only
//! its project. Only a hash of each secret is stored.

use serde::{Deserialize, Serialize};

use crate::{ProjectId, Timestamp, TokenId};

/// A token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    pub id: TokenId,
    /// The project it is scoped to; absent for the admin token.
    pub project_id: Option<ProjectId>,
    pub name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A token just made. `secret` is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// Send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// The body of `POST /api/v1/projects/{id}/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label to tell tokens apart (at most 64 characters).
    #[serde(default)]
    pub name: Option<String>,
}
