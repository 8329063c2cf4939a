//! Cubby's domain model: the resources users see through the API and the
//! rules their fields obey.
//!
//! Everything here is plain data plus pure validation, so the store, the
//! core, the API and the client share one definition of a [`Container`] or
//! a [`Project`]. Nothing here touches the host.

mod access;
mod backup;
mod bytesize;
mod container;
mod domain;
mod error;
mod event;
pub mod firewall;
mod id;
mod image;
mod project;
mod rollout;
mod script;
pub mod shadow;
mod snapshot;
mod token;
mod usage;
mod validate;
mod webhook;

pub use access::{
    AccessMode, Alias, Authorization, AuthorizeRequest, CreateAlias, PublicKey, RESERVED_ALIASES, validate_alias_name,
};
pub use backup::{Backup, CreateBackup};
pub use bytesize::{ByteSize, ByteSizeError};
pub use container::{
    Container, ContainerStats, ContainerStatus, CopyContainer, CreateContainer, DiskUse, EnvValue, ExecRequest,
    ExecResult, Limits, LimitsSpec, Page, Transition, Trigger, UpdateContainer,
};
pub use domain::{CreateDomain, CustomDomain, DomainStatus, DomainVerification, validate_hostname};
pub use error::{ErrorBody, ErrorDetail};
pub use event::{AccessLogLine, Event, EventPage, EventType};
pub use firewall::{
    Direction, Firewall, FirewallRule, NetworkMode, NetworkRules, Protocol, ReplaceFirewall, RuleAction, RulePatch,
    RuleSpec, RuleState,
};
pub use id::{
    ContainerId, IdError, LayerId, ProjectId, RolloutId, RuleId, SnapshotId, TokenId, WebhookId, random_id,
    random_secret,
};
pub use image::{Image, ImageConfig, ImageSource};
pub use project::{CreateProject, Project, ProjectQuota, UpdateProject};
pub use rollout::{CreateRollout, Rollout, RolloutFailure, RolloutStatus};
pub use script::{
    MAX_SCRIPT_BYTES, PutSecrets, ScriptFile, ScriptInvocation, ScriptLogLine, SecretNames, is_private_script,
    validate_script_path, validate_secrets,
};
pub use snapshot::{CreateSnapshot, Snapshot, UpdateSnapshot, validate_alias};
pub use token::{CreateToken, CreatedToken, Token};
pub use usage::{ContainerTotal, ContainerUsage, ProjectUsage, Usage, UsagePoint};
pub use validate::{
    ValidationError, validate_command, validate_container_name, validate_env, validate_image_name,
    validate_project_name,
};

/// Timestamps are UTC and serialised as RFC 3339.
pub type Timestamp = time::OffsetDateTime;

/// The current time, truncated to milliseconds (what the store keeps).
pub fn now() -> Timestamp {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(now)
}
pub use webhook::{CreateWebhook, DeliveryStatus, Webhook, WebhookDelivery};
