//! The daemon's state: projects, tokens, images, containers, their state
//! transitions, project secrets, script logs, usage and an audit trail.
//!
//! [`Store`] is the seam the core talks to. [`SqliteStore`] keeps the state
//! in one SQLite file in WAL mode, with versioned migrations
//! ([`migrations`]); `SqliteStore::in_memory()` is the stand-in that unit
//! tests use. The trait is synchronous on purpose: every call is one short
//! transaction, and a store shared by a fleet (PostgreSQL) can implement it
//! over a blocking pool.

mod error;
mod migrations;
mod records;
mod sqlite;
mod traits;
pub mod usage;

pub use error::StoreError;
pub use records::{
    AliasRecord, AuditEntry, ContainerRecord, DeliveryAttempt, DomainRecord, DueDelivery, EventFilter, ImageRecord,
    LayerKind, LayerRecord, NewContainer, NewEvent, SnapshotRecord, TokenRecord, WebhookRecord,
};
pub use sqlite::SqliteStore;
pub use traits::{
    AliasStore, AuditStore, BackupStore, ContainerStore, DomainStore, EventStore, ImageStore, LayerStore, ProjectStore,
    RuleStore, ScriptStore, SnapshotStore, Store, TokenStore, UsageStore, WebhookStore,
};
pub use usage::{UsageCursor, UsageDelta, UsageEdge, UsageReading, UsageResolution, UsageRow, UsageScope};

/// State transitions kept per container (the oldest go first).
pub const TRANSITIONS_KEPT: u32 = 100;
