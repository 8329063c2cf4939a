//! [`NftCli`]: the real [`Nftables`], through the `nft` binary's JSON input
//! (`nft -j -f -`), which commits each batch as one kernel transaction.

use async_trait::async_trait;
use nftables::helper::{self, NftablesError};

use super::{Batch, NftError, Nftables};

/// Runs batches through the `nft` executable.
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
    async fn apply(&self, table: &str, batch: &Batch) -> Result<(), NftError> {
        let payload = batch.to_json().to_string();
        helper::apply_ruleset_raw_async(&payload, Some(self.program.as_str()), helper::DEFAULT_ARGS)
            .await
            .map(|_| ())
            .map_err(|source| NftError::Apply { table: table.to_string(), op: "apply a batch", source })
    }

    async fn delete_table(&self, table: &str) -> Result<(), NftError> {
        for family in ["inet", "bridge"] {
            // Add-then-delete in one transaction: succeeds whether or not it exists.
            let payload = serde_json::json!({ "nftables": [
                { "add": { "table": { "family": family, "name": table } } },
                { "delete": { "table": { "family": family, "name": table } } },
            ]})
            .to_string();
            match helper::apply_ruleset_raw_async(&payload, Some(self.program.as_str()), helper::DEFAULT_ARGS).await {
                Ok(_) => {}
                Err(source) => {
                    return Err(NftError::Apply { table: table.to_string(), op: "delete the table", source });
                }
            }
        }
        Ok(())
    }

    async fn table_exists(&self, table: &str) -> Result<bool, NftError> {
        let args = ["-j", "list", "tables", "inet"];
        let out = helper::get_current_ruleset_raw_async(Some(self.program.as_str()), args)
            .await
            .map_err(|source: NftablesError| NftError::Apply { table: table.to_string(), op: "list tables", source })?;
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        Ok(parsed["nftables"].as_array().into_iter().flatten().any(|obj| obj["table"]["name"] == table))
    }
}
