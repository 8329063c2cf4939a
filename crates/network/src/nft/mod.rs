//! The daemon's nftables table, applied as atomic JSON transactions.
//!
//! [`Nftables`] is the seam: [`NftCli`] hands a batch to `nft -j -f -` (one
//! kernel transaction per call) and [`FakeNftables`] records batches for
//! unit tests. [`BaseRules`] renders the table every daemon owns: NAT for
//! container egress, and drops for traffic between containers and from
//! containers to the host.

mod base;
mod cli;
mod expr;
mod fake;

use async_trait::async_trait;
use nftables::schema;

pub use base::BaseRules;
pub use cli::NftCli;
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

/// One nftables table owned by the daemon (family `inet`).
#[async_trait]
pub trait Nftables: Send + Sync + std::fmt::Debug {
    /// Applies `batch` as one atomic transaction: either every command in it
    /// takes effect or none does. `table` names the table for errors.
    async fn apply(&self, table: &str, batch: &schema::Nftables<'_>) -> Result<(), NftError>;

    /// Deletes the `inet` table `table` and everything in it. Succeeds when
    /// it does not exist.
    async fn delete_table(&self, table: &str) -> Result<(), NftError>;

    /// Whether the `inet` table `table` exists.
    async fn table_exists(&self, table: &str) -> Result<bool, NftError>;
}
