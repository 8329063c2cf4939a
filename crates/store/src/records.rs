//! Rows as the store keeps them: the model's views plus what only the
//! daemon needs (slots, secret hashes).

use std::collections::BTreeMap;

use cubby_model::{ContainerId, ContainerStatus, Firewall, Image, Limits, NetworkRules, ProjectId, Timestamp, Token};

/// A container as stored. The API view adds the URL and address, which
/// are derived from the name, project and slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    pub id: ContainerId,
    pub project_id: ProjectId,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub port: u16,
    pub limits: Limits,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub status: ContainerStatus,
    /// Unique per daemon: picks the address and the veth name.
    pub slot: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A container about to be inserted (the store picks the slot).
#[derive(Debug, Clone, PartialEq)]
pub struct NewContainer {
    pub id: ContainerId,
    pub project_id: ProjectId,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub port: u16,
    pub limits: Limits,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub created_at: Timestamp,
    /// Its first firewall rules (stored in the same transaction).
    pub firewall: Firewall,
    pub network: NetworkRules,
}

/// A token and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: Token,
    pub hash: [u8; 32],
}

/// An image and the digest of what built it (to notice a changed source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub image: Image,
    /// Free-form digest of the image's source (for `minimal`, of its binaries).
    pub digest: String,
}

/// One audit entry. It never holds tenant data (no names, env or files):
/// only ids and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// Dotted action such as `container.deleted`.
    pub action: String,
    pub project_id: Option<ProjectId>,
    pub container_id: Option<ContainerId>,
}
