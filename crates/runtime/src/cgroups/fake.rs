//! [`FakeCgroups`]: cgroups as a map from path to pids.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::Cgroups;
use crate::RuntimeError;

/// In-memory cgroups for unit tests.
#[derive(Debug, Default)]
pub struct FakeCgroups {
    groups: Mutex<BTreeMap<String, Vec<u32>>>,
}

impl FakeCgroups {
    /// No cgroups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `pids` in `cgroup`.
    pub fn set(&self, cgroup: &str, pids: Vec<u32>) {
        self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(cgroup.into(), pids);
    }
}

impl Cgroups for FakeCgroups {
    fn pids(&self, cgroup: &str) -> Result<Vec<u32>, RuntimeError> {
        Ok(self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(cgroup)
            .cloned()
            .unwrap_or_default())
    }

    fn dirs(&self, cgroup: &str) -> Vec<PathBuf> {
        let g = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.contains_key(cgroup).then(|| PathBuf::from(format!("/fake{cgroup}"))).into_iter().collect()
    }

    fn memory_usage(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let g = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.get(cgroup).map(|p| p.len() as u64 * 1024))
    }

    fn freeze(&self, _cgroup: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn thaw(&self, _cgroup: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn cpu_usage_ns(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let g = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.get(cgroup).map(|_| 0))
    }

    fn pid_count(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let g = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.get(cgroup).map(|p| p.len() as u64))
    }

    fn oom_kills(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let g = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.get(cgroup).map(|_| 0))
    }

    fn file_cache(&self, _cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        Ok(None)
    }

    fn remove(&self, cgroup: &str) -> Result<(), RuntimeError> {
        self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|k, _| !k.starts_with(cgroup));
        Ok(())
    }
}
