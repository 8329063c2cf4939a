//! [`FakeNftables`]: records every batch instead of touching the kernel.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Batch, NftError, Nftables};

/// An in-memory [`Nftables`] for unit tests. It keeps the JSON of each
/// applied batch and the set of tables that exist.
#[derive(Debug, Default)]
pub struct FakeNftables {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    batches: Vec<serde_json::Value>,
    tables: BTreeSet<String>,
}

impl FakeNftables {
    /// A fake with no tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The JSON of every batch applied so far, oldest first.
    pub fn batches(&self) -> Vec<serde_json::Value> {
        self.lock().batches.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Nftables for FakeNftables {
    async fn apply(&self, table: &str, batch: &Batch) -> Result<(), NftError> {
        let json = batch.to_json();
        let mut state = self.lock();
        state.tables.insert(table.to_string());
        state.batches.push(json);
        Ok(())
    }

    async fn delete_table(&self, table: &str) -> Result<(), NftError> {
        self.lock().tables.remove(table);
        Ok(())
    }

    async fn table_exists(&self, table: &str) -> Result<bool, NftError> {
        Ok(self.lock().tables.contains(table))
    }
}
