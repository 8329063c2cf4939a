//! [`NftCli`]: the real [`Nftables`], through the `nft` binary's JSON input
//! (`nft -j -f -`), which commits each batch as one kernel transaction.

use async_trait::async_trait;
use nftables::helper::{self, NftablesError};
use nftables::schema;

use super::{NftError, Nftables};

/// Runs batches through the `nft` executable found at `program`.
#[derive(Debug, Clone)]
pub struct NftCli {
    program: String,
}

impl NftCli {
    /// Uses `nft` from `PATH`.
    pub fn new() -> Self {
        Self { program: "nft".into() }
    }
}

impl Default for NftCli {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Nftables for NftCli {
    async fn apply(&self, table: &str, batch: &schema::Nftables<'_>) -> Result<(), NftError> {
        helper::apply_ruleset_with_args_async(batch, Some(self.program.as_str()), helper::DEFAULT_ARGS)
            .await
            .map_err(|source| NftError::Apply { table: table.to_string(), op: "apply a batch", source })
    }

    async fn delete_table(&self, table: &str) -> Result<(), NftError> {
        if !self.table_exists(table).await? {
            return Ok(());
        }
        let args = ["delete", "table", "inet", table];
        match helper::get_current_ruleset_raw_async(Some(self.program.as_str()), args).await {
            Ok(_) => Ok(()),
            // Raced with another deleter: the table is gone, which is the goal.
            Err(NftablesError::NftFailed { ref stderr, .. }) if stderr.contains("No such file") => Ok(()),
            Err(source) => Err(NftError::Apply { table: table.to_string(), op: "delete the table", source }),
        }
    }

    async fn table_exists(&self, table: &str) -> Result<bool, NftError> {
        let args = ["-j", "list", "tables", "inet"];
        let out = helper::get_current_ruleset_raw_async(Some(self.program.as_str()), args)
            .await
            .map_err(|source| NftError::Apply { table: table.to_string(), op: "list tables", source })?;
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        Ok(parsed["nftables"].as_array().into_iter().flatten().any(|obj| obj["table"]["name"] == table))
    }
}
