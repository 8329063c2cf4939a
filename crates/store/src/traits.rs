//! The store's traits: one per aggregate, so a service names (and its unit
//! tests fake) only what it uses, and [`Store`], all of them at once, which
//! the daemon passes around. Every method is one transaction.

use std::collections::BTreeMap;

use cubby_model::{
    ContainerId, ContainerStatus, Event, Firewall, LayerId, NetworkRules, Project, ProjectId, ScriptInvocation,
    SnapshotId, TokenId, Transition, Trigger,
};

use crate::{
    AliasRecord, AuditEntry, ContainerRecord, DeliveryAttempt, DomainRecord, DueDelivery, EventFilter, ImageRecord,
    LayerRecord, NewContainer, NewEvent, SnapshotRecord, StoreError, TokenRecord, UsageDelta, UsageReading,
    UsageResolution, UsageRow, UsageScope, WebhookRecord,
};

/// Projects: one per customer of the operator.
pub trait ProjectStore: Send + Sync {
    /// Adds a project. [`StoreError::Duplicate`] if the name is taken.
    fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError>;
    fn projects(&self) -> Result<Vec<Project>, StoreError>;
    /// Stores a project's changed limit and defaults.
    fn update_project(&self, project: &Project) -> Result<(), StoreError>;
    /// Removes a project and its tokens. The caller makes sure it has no
    /// containers first; [`StoreError::InUse`] if it still has.
    fn delete_project(&self, id: &ProjectId) -> Result<bool, StoreError>;
}

/// API tokens, by the hash of their secret.
pub trait TokenStore: Send + Sync {
    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The token whose secret hashes to `hash`.
    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError>;
    /// Tokens of one project, or the admin tokens when `project` is `None`.
    fn tokens(&self, project: Option<&ProjectId>) -> Result<Vec<TokenRecord>, StoreError>;
    fn delete_token(&self, id: &TokenId) -> Result<bool, StoreError>;
}

/// Images by name, each on its layer.
pub trait ImageStore: Send + Sync {
    /// Adds an image. [`StoreError::Duplicate`] if the name is taken.
    fn insert_image(&self, image: &ImageRecord) -> Result<(), StoreError>;
    fn image(&self, name: &str) -> Result<Option<ImageRecord>, StoreError>;
    fn images(&self) -> Result<Vec<ImageRecord>, StoreError>;
    fn delete_image(&self, name: &str) -> Result<bool, StoreError>;
}

/// Containers, their state transitions and the teardowns of deleted ones.
pub trait ContainerStore: Send + Sync {
    /// Adds a container in status `creating` with the lowest free slot in
    /// `1..=max_slot`, checking the name is free in its project and the
    /// project's `max_containers`. Records the first transition.
    fn insert_container(&self, container: &NewContainer, max_slot: u32) -> Result<ContainerRecord, StoreError>;
    fn container(&self, id: &ContainerId) -> Result<Option<ContainerRecord>, StoreError>;
    /// Containers ordered by id, after `after`, at most `limit`; of one
    /// project or of all.
    fn containers(
        &self,
        project: Option<&ProjectId>,
        after: Option<&ContainerId>,
        limit: u32,
    ) -> Result<Vec<ContainerRecord>, StoreError>;
    /// Number of containers in a project.
    fn count_containers(&self, project: &ProjectId) -> Result<u32, StoreError>;
    /// Moves a container to `to` and records the transition (keeping the
    /// last [`TRANSITIONS_KEPT`]). Returns the updated record, or `None` if
    /// the container does not exist.
    fn set_status(
        &self,
        id: &ContainerId,
        to: ContainerStatus,
        trigger: Trigger,
        duration_ms: u64,
    ) -> Result<Option<ContainerRecord>, StoreError>;
    fn transitions(&self, id: &ContainerId) -> Result<Vec<Transition>, StoreError>;
    /// Removes the container and its transitions, and appends `audit`, in
    /// one transaction.
    fn delete_container(&self, id: &ContainerId, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Like [`Store::delete_container`], but the container's slot stays
    /// taken (a pending teardown) until [`Store::finish_teardown`]: its
    /// host side (veth, namespace, chains) is still being removed.
    fn delete_container_deferred(&self, id: &ContainerId, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Pending teardowns: deleted containers whose slot is still held.
    fn teardowns(&self) -> Result<Vec<(ContainerId, u32)>, StoreError>;
    /// Frees the slot of a finished teardown.
    fn finish_teardown(&self, id: &ContainerId) -> Result<(), StoreError>;
    /// Stores a container's changed name, env, limits, disk limit and
    /// snapshot cap. [`StoreError::Duplicate`] if the new name is taken.
    fn update_container(&self, container: &ContainerRecord) -> Result<(), StoreError>;
    /// Voids every claim of a container signed so far; returns the new epoch.
    fn bump_claims_epoch(&self, id: &ContainerId) -> Result<u32, StoreError>;
}

/// A container's firewall and network rules.
pub trait RuleStore: Send + Sync {
    /// A container's firewall rules, each direction in evaluation order.
    fn firewall(&self, id: &ContainerId) -> Result<Firewall, StoreError>;
    /// Replaces a container's firewall rules in one transaction.
    fn replace_firewall(&self, id: &ContainerId, firewall: &Firewall) -> Result<(), StoreError>;
    /// A container's network rules.
    fn network(&self, id: &ContainerId) -> Result<NetworkRules, StoreError>;
    /// Replaces a container's network rules.
    fn set_network(&self, id: &ContainerId, rules: &NetworkRules) -> Result<(), StoreError>;
}

/// Aliases: global names for a container (and a port).
pub trait AliasStore: Send + Sync {
    /// Adds an alias. [`StoreError::Duplicate`] if the name is taken.
    fn insert_alias(&self, alias: &AliasRecord) -> Result<(), StoreError>;
    fn alias(&self, name: &str) -> Result<Option<AliasRecord>, StoreError>;
    /// Aliases of one container, or of all.
    fn aliases(&self, container: Option<&ContainerId>) -> Result<Vec<AliasRecord>, StoreError>;
    /// Removes an alias, recording its release by its project.
    fn delete_alias(&self, name: &str) -> Result<bool, StoreError>;
    /// Which project last gave up alias `name`, and when (an alias is given
    /// up by its deletion, or its container's).
    fn alias_release(&self, name: &str) -> Result<Option<(ProjectId, cubby_model::Timestamp)>, StoreError>;
}

/// Custom domains: a customer's hostname for one container.
pub trait DomainStore: Send + Sync {
    /// Adds a domain. [`StoreError::Duplicate`] if the hostname is taken.
    fn insert_domain(&self, domain: &DomainRecord) -> Result<(), StoreError>;
    fn domain(&self, hostname: &str) -> Result<Option<DomainRecord>, StoreError>;
    /// Domains of one container, or of all.
    fn domains(&self, container: Option<&ContainerId>) -> Result<Vec<DomainRecord>, StoreError>;
    /// Marks a domain verified at `at`; `false` if it is gone.
    fn set_domain_verified(&self, hostname: &str, at: cubby_model::Timestamp) -> Result<bool, StoreError>;
    fn delete_domain(&self, hostname: &str) -> Result<bool, StoreError>;
}

/// Read-only layers and which containers sit on them.
pub trait LayerStore: Send + Sync {
    fn insert_layer(&self, layer: &LayerRecord) -> Result<(), StoreError>;
    fn layer(&self, id: &LayerId) -> Result<Option<LayerRecord>, StoreError>;
    /// A container's lowers, topmost first.
    fn container_lowers(&self, id: &ContainerId) -> Result<Vec<LayerRecord>, StoreError>;
    /// Replaces a container's lowers (restore, flatten).
    fn set_container_lowers(&self, id: &ContainerId, lowers: &[LayerId]) -> Result<(), StoreError>;
    /// Remembers the layer last frozen from a container's subvolume.
    fn set_frozen_layer(&self, id: &ContainerId, layer: Option<(&LayerId, u64)>) -> Result<(), StoreError>;
    /// Layers nothing refers to any more (no container, snapshot or image).
    fn unreferenced_layers(&self) -> Result<Vec<LayerRecord>, StoreError>;
    fn delete_layer(&self, id: &LayerId) -> Result<(), StoreError>;
    /// Every layer.
    fn all_layers(&self) -> Result<Vec<LayerRecord>, StoreError>;
}

/// Containers' snapshots.
pub trait SnapshotStore: Send + Sync {
    /// Adds a snapshot, refusing past `max` per container and on a taken
    /// name or alias.
    fn insert_snapshot(&self, snapshot: &SnapshotRecord, max: u32) -> Result<(), StoreError>;
    /// A container's snapshots, oldest first.
    fn snapshots(&self, container: &ContainerId) -> Result<Vec<SnapshotRecord>, StoreError>;
    /// A snapshot by name or alias.
    fn snapshot(&self, container: &ContainerId, key: &str) -> Result<Option<SnapshotRecord>, StoreError>;
    fn delete_snapshot(&self, id: &SnapshotId) -> Result<bool, StoreError>;
    fn set_snapshot_alias(&self, id: &SnapshotId, alias: Option<&str>) -> Result<(), StoreError>;
    /// Snapshots whose expiry is before `now`.
    fn expired_snapshots(&self, now: cubby_model::Timestamp) -> Result<Vec<SnapshotRecord>, StoreError>;
}

/// A project's secrets and the log of its script invocations.
pub trait ScriptStore: Send + Sync {
    /// Replaces a project's secrets with `secrets`.
    fn set_secrets(&self, project: &ProjectId, secrets: &BTreeMap<String, String>) -> Result<(), StoreError>;
    /// A project's secrets.
    fn secrets(&self, project: &ProjectId) -> Result<BTreeMap<String, String>, StoreError>;
    /// Records a script invocation, keeping the project's last `keep`.
    fn append_script_log(&self, project: &ProjectId, entry: &ScriptInvocation, keep: u32) -> Result<(), StoreError>;
    /// A project's latest script invocations, newest first.
    fn script_logs(&self, project: &ProjectId, limit: u32) -> Result<Vec<ScriptInvocation>, StoreError>;
}

/// The audit trail: what was done to which resource, without tenant data.
pub trait AuditStore: Send + Sync {
    /// Appends an audit entry.
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The last `limit` audit entries, newest first.
    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}

/// `Store`, the sum of the per-aggregate traits, and its blanket impl,
/// from one list.
/// Events: appended, listed by id, pruned by age.
pub trait EventStore: Send + Sync {
    /// Appends an event and answers it with its id.
    fn insert_event(&self, event: &NewEvent) -> Result<Event, StoreError>;
    /// Events that pass `filter`, oldest first.
    fn events(&self, filter: &EventFilter<'_>) -> Result<Vec<Event>, StoreError>;
    /// Drops the events from before `before`.
    fn prune_events(&self, before: cubby_model::Timestamp) -> Result<usize, StoreError>;
    /// The id of the latest event (0 when there is none).
    fn last_event_id(&self) -> Result<u64, StoreError>;
}

/// Webhooks, their deliveries, and the dispatch cursor.
pub trait WebhookStore: Send + Sync {
    fn insert_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError>;
    fn webhooks(&self, project: &ProjectId) -> Result<Vec<WebhookRecord>, StoreError>;
    fn webhook(&self, id: &cubby_model::WebhookId) -> Result<Option<WebhookRecord>, StoreError>;
    /// Removes a hook and its deliveries.
    fn delete_webhook(&self, id: &cubby_model::WebhookId) -> Result<bool, StoreError>;
    /// Turns up to `limit` events after the dispatch cursor into pending
    /// deliveries (one per hook that wants each) and moves the cursor, in
    /// one transaction; how many deliveries it made.
    fn dispatch_events(&self, limit: u32) -> Result<usize, StoreError>;
    /// Pending deliveries due at `now`, oldest first.
    fn due_deliveries(&self, now: cubby_model::Timestamp, limit: u32) -> Result<Vec<DueDelivery>, StoreError>;
    /// Records an attempt of delivery `id`.
    fn finish_attempt(&self, id: u64, attempt: &DeliveryAttempt) -> Result<(), StoreError>;
    /// A hook's latest deliveries, newest first.
    fn deliveries(
        &self,
        hook: &cubby_model::WebhookId,
        limit: u32,
    ) -> Result<Vec<cubby_model::WebhookDelivery>, StoreError>;
    /// Drops finished deliveries made before `before`.
    fn prune_deliveries(&self, before: cubby_model::Timestamp) -> Result<usize, StoreError>;
}

/// Usage per container: readings in, minute and hour rows out. Rows hold
/// ids and numbers only and outlive their container until pruned.
pub trait UsageStore: Send + Sync {
    /// Records readings: what each adds since its container's previous
    /// reading (see [`crate::usage::advance`]) goes into the container's
    /// minute and hour rows, and it becomes the next reading's base. One
    /// transaction for the batch.
    fn record_usage(&self, readings: &[UsageReading]) -> Result<Vec<UsageDelta>, StoreError>;
    /// The rows of `scope` at `resolution` whose start is in `[from, to)`
    /// (seconds since the epoch), oldest first.
    fn usage_rows(
        &self,
        scope: UsageScope<'_>,
        resolution: UsageResolution,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRow>, StoreError>;
    /// Drops the rows at `resolution` that start before `before`.
    fn prune_usage(&self, resolution: UsageResolution, before: i64) -> Result<usize, StoreError>;
    /// The project of a container that has usage rows (a deleted one's
    /// included).
    fn usage_project(&self, id: &ContainerId) -> Result<Option<ProjectId>, StoreError>;
}

/// A consistent copy of the whole state while the daemon keeps running.
pub trait BackupStore: Send + Sync {
    /// Writes a consistent copy of every table to the new file `dest`
    /// (SQLite's online backup; a shared store would dump instead).
    fn backup_to(&self, dest: &std::path::Path) -> Result<(), StoreError>;
}

macro_rules! every_store {
    ($($part:path),+ $(,)?) => {
        /// Everything the daemon remembers.
        pub trait Store: $($part +)+ std::fmt::Debug {}

        impl<T> Store for T where T: $($part +)+ std::fmt::Debug {}
    };
}

every_store!(
    ProjectStore,
    TokenStore,
    ImageStore,
    ContainerStore,
    RuleStore,
    AliasStore,
    DomainStore,
    LayerStore,
    SnapshotStore,
    ScriptStore,
    AuditStore,
    UsageStore,
    EventStore,
    WebhookStore,
    BackupStore,
);
