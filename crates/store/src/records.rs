//! Rows as the store keeps them: the model's views plus what only the
//! daemon needs (slots, secret hashes).

use std::collections::BTreeMap;

use cubby_model::{
    AccessMode, ContainerId, ContainerStatus, Firewall, Image, LayerId, Limits, NetworkRules, ProjectId, SnapshotId,
    Timestamp, Token,
};

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
    /// Most snapshots it may keep.
    pub max_snapshots: u32,
    /// The last layer frozen from its subvolume (for copies), and the
    /// subvolume's generation then: reused while the generation holds.
    pub frozen: Option<(LayerId, u64)>,
    /// Its own access mode; the project's default when `None`.
    pub access: Option<AccessMode>,
    pub autostart: bool,
    /// Its own idle timeout in seconds; the project's default when `None`.
    pub idle_timeout: Option<u32>,
    /// Claims signed before the current epoch are void (revocation).
    pub claims_epoch: u32,
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
    /// Its read-only lower layers, topmost first.
    pub lowers: Vec<LayerId>,
    pub max_snapshots: u32,
    /// `Creating` or `Copying`.
    pub status: ContainerStatus,
    pub access: Option<AccessMode>,
    pub autostart: bool,
    pub idle_timeout: Option<u32>,
}

/// What a layer was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// An image's root filesystem.
    Image,
    /// A container's own subvolume, frozen for copies.
    Frozen,
    /// A named snapshot of a container.
    Snapshot,
    /// Several layers merged into one.
    Flattened,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Frozen => "frozen",
            Self::Snapshot => "snapshot",
            Self::Flattened => "flattened",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "image" => Self::Image,
            "frozen" => Self::Frozen,
            "snapshot" => Self::Snapshot,
            "flattened" => Self::Flattened,
            _ => return None,
        })
    }
}

/// A read-only layer: a subvolume shared by every container and snapshot
/// that lists it. It lives while anything refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub id: LayerId,
    pub kind: LayerKind,
    /// The subvolume, relative to the pool root.
    pub subvolume: String,
    /// The directory overlay uses as a lower, relative to the pool root.
    pub root: String,
    pub created_at: Timestamp,
    pub source_container: Option<ContainerId>,
    pub source_generation: Option<u64>,
}

impl LayerRecord {
    /// A layer made from no container, whose whole subvolume
    /// (`layers/<id>`) is the overlay lower: an image's, a flattened
    /// chain's, an import's.
    pub fn standalone(id: LayerId, kind: LayerKind, created_at: Timestamp) -> Self {
        Self {
            subvolume: format!("layers/{id}"),
            root: format!("layers/{id}"),
            id,
            kind,
            created_at,
            source_container: None,
            source_generation: None,
        }
    }
}

/// A named snapshot of a container: its own layer, and the lowers the
/// container had then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub container_id: ContainerId,
    pub name: String,
    pub alias: Option<String>,
    pub layer_id: LayerId,
    /// The lowers below the snapshot's layer, topmost first.
    pub lowers: Vec<LayerId>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
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
    /// The layer holding its root filesystem.
    pub layer_id: LayerId,
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

/// An alias as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    pub name: String,
    pub container_id: ContainerId,
    pub port: Option<u16>,
    pub created_at: Timestamp,
}

/// A custom domain as stored: its verification token and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    pub hostname: String,
    pub container_id: ContainerId,
    pub token: String,
    pub status: cubby_model::DomainStatus,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

/// An event to record (the store gives it its id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: cubby_model::EventType,
    pub at: cubby_model::Timestamp,
    pub project_id: Option<ProjectId>,
    pub container_id: Option<ContainerId>,
    pub trigger: Option<cubby_model::Trigger>,
    pub actor: Option<String>,
    pub data: serde_json::Value,
}

/// Which events to list: after an id, narrowed by project, container and
/// type, at most `limit`, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct EventFilter<'a> {
    pub project: Option<&'a ProjectId>,
    pub container: Option<&'a ContainerId>,
    pub kind: Option<cubby_model::EventType>,
    pub after: u64,
    pub limit: u32,
    /// The newest `limit` matching events (still returned oldest first)
    /// rather than the oldest after `after`.
    pub newest: bool,
}

/// A webhook as stored: its secret sealed by the core, and the last event
/// before it was made (it gets only later ones).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub webhook: cubby_model::Webhook,
    pub sealed_secret: String,
    pub after_event: u64,
}

impl WebhookRecord {
    /// Whether event `id` of type `kind` is one for this hook.
    pub fn wants(&self, id: u64, kind: cubby_model::EventType) -> bool {
        id > self.after_event && (self.webhook.events.is_empty() || self.webhook.events.contains(&kind))
    }
}

/// A delivery whose time has come, with its hook and event.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub delivery: cubby_model::WebhookDelivery,
    pub hook: WebhookRecord,
    pub event: cubby_model::Event,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub status: cubby_model::DeliveryStatus,
    pub code: Option<u16>,
    pub error: Option<String>,
    /// When to try again (pending only).
    pub next_at: Option<Timestamp>,
}
