//! The daemon's nftables tables, applied as atomic JSON transactions.
//!
//! [`Nftables`] is the seam: [`NftCli`] hands a [`Batch`] to
//! `nft -j -f -` (one kernel transaction per call) and [`FakeNftables`]
//! records batches for unit tests.
//!
//! - [`BaseRules`]: the tables every daemon owns: NAT for egress, guards
//!   that keep containers away from each other and from the host, verdict
//!   maps that dispatch each packet to its container's chains, and an
//!   anti-spoofing set on the bridge.
//! - [`ContainerRules`]: one container's ingress and egress chains and its
//!   map elements, installed, replaced or removed as one transaction.
//!
//! Batches are nft JSON (libnftables-json(5)) built here directly: the
//! `nftables` crate's typed schema cannot declare verdict maps, so it is
//! used only to run `nft`.

mod base;
mod batch;
mod cli;
mod container;
mod fake;

use async_trait::async_trait;

pub use base::{BaseRules, DEFAULT_EGRESS_DENY, EgressGuard, PLATFORM_GUARDED};
pub use batch::Batch;
pub use cli::NftCli;
pub use container::{ContainerRules, EgressPolicy, L4, Match, Verdict, ingress_tcp_verdict};
pub use fake::FakeNftables;

/// Errors from running an nft transaction.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft transaction on table `{table}` failed while trying to {op}")]
    Apply {
        table: String,
        op: &'static str,
        #[source]
        source: nftables::helper::NftablesError,
    },
}

/// The nftables tables owned by the daemon.
#[async_trait]
pub trait Nftables: Send + Sync + std::fmt::Debug {
    /// Applies `batch` as one atomic transaction: either every command in it
    /// takes effect or none does. `table` names the table for errors.
    async fn apply(&self, table: &str, batch: &Batch) -> Result<(), NftError>;

    /// Deletes the `inet` and `bridge` tables named `table` and everything
    /// in them. Succeeds when they do not exist.
    async fn delete_table(&self, table: &str) -> Result<(), NftError>;

    /// Whether the `inet` table `table` exists.
    async fn table_exists(&self, table: &str) -> Result<bool, NftError>;
}
