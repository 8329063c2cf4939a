//! What is watched beside usage, to tell a tenant's owner why something
//! happened: OOM kills (the cgroup's `oom_kill` counter, checked at the end
//! of each run, after each exec and at every sampler tick) and a full disk
//! (exclusive bytes at 99 % of the limit, told once until use falls under
//! 90 %). Detected from the kernel's counters, never guessed from an exit
//! code.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use cubby_model::{ContainerId, EventType};
use cubby_store::ContainerRecord;

use super::ContainerService;
use crate::events::Happened;

/// The last counters seen, per container.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// OOM kills of the current run already told.
    oom_kills: Mutex<HashMap<ContainerId, u64>>,
    /// Containers told their disk is full.
    disk_full: Mutex<HashSet<ContainerId>>,
}

impl Watch {
    /// A new run begins with a new cgroup: nothing of it told yet.
    pub(crate) fn run_started(&self, id: &ContainerId) {
        self.oom_kills.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone(), 0);
    }

    /// Forgets a deleted container.
    pub(crate) fn forget(&self, id: &ContainerId) {
        self.oom_kills.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
        self.disk_full.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    /// New OOM kills given the counter now reads `now` (a counter first
    /// seen after a daemon restart only sets the base).
    fn new_oom_kills(&self, id: &ContainerId, now: u64) -> u64 {
        let mut seen = self.oom_kills.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let told = seen.insert(id.clone(), now);
        match told {
            Some(told) if now > told => now - told,
            _ => 0,
        }
    }

    /// Whether `used` of `limit` is news: full for the first time since it
    /// was last under 90 %.
    fn disk_newly_full(&self, id: &ContainerId, used: u64, limit: u64) -> bool {
        let mut full = self.disk_full.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if u128::from(used) * 100 >= u128::from(limit) * 99 {
            full.insert(id.clone())
        } else {
            if u128::from(used) * 100 < u128::from(limit) * 90 {
                full.remove(id);
            }
            false
        }
    }
}

impl ContainerService {
    /// Tells of OOM kills in `rec`'s cgroup since the last look.
    pub(crate) fn check_oom(&self, rec: &ContainerRecord) {
        let cgroup = self.paths(&rec.id, rec.slot).cgroup;
        let Ok(Some(now)) = self.host.cgroups.oom_kills(&cgroup) else { return };
        let count = self.watch.new_oom_kills(&rec.id, now);
        if count > 0 {
            tracing::info!(container = %rec.id, count, "the OOM killer ended processes of the container");
            self.events.emit(Happened {
                kind: EventType::ContainerOomKilled,
                project: &rec.project_id,
                container: Some(&rec.id),
                trigger: None,
                caller: None,
                data: serde_json::json!({ "count": count, "memory_limit_bytes": rec.limits.memory.0 }),
            });
        }
    }

    /// The exit status its init reported for the run that just ended (the
    /// workload's code, 128 + N when a signal N ended it), if it did. The
    /// tenant can write this file too: it only ever speaks of its own run.
    pub(crate) fn exit_code(&self, rec: &ContainerRecord) -> Option<i32> {
        use std::io::Read;
        let path = self.paths(&rec.id, rec.slot).exit_report;
        let mut text = String::new();
        std::fs::File::open(path).ok()?.take(32).read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }

    /// Tells when `rec`'s disk use (exclusive bytes) reaches its limit.
    pub(crate) fn check_disk(&self, rec: &ContainerRecord, used: Option<u64>) {
        let (Some(used), Some(limit)) = (used, rec.limits.disk) else { return };
        if self.watch.disk_newly_full(&rec.id, used, limit.0) {
            self.events.emit(Happened {
                kind: EventType::QuotaDiskFull,
                project: &rec.project_id,
                container: Some(&rec.id),
                trigger: None,
                caller: None,
                data: serde_json::json!({ "used_bytes": used, "limit_bytes": limit.0 }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_told_once_and_a_restart_of_the_daemon_only_sets_the_base() {
        let w = Watch::default();
        let id = ContainerId::from_stored("cabc".into());
        assert_eq!(w.new_oom_kills(&id, 4), 0, "first seen after a restart: the base");
        assert_eq!(w.new_oom_kills(&id, 6), 2);
        assert_eq!(w.new_oom_kills(&id, 6), 0, "told once");
        w.run_started(&id);
        assert_eq!(w.new_oom_kills(&id, 1), 1, "a new run counts from zero");
    }

    #[test]
    fn a_full_disk_is_told_once_until_it_falls_under_90_percent() {
        let w = Watch::default();
        let id = ContainerId::from_stored("cabc".into());
        assert!(!w.disk_newly_full(&id, 50, 100));
        assert!(w.disk_newly_full(&id, 99, 100));
        assert!(!w.disk_newly_full(&id, 100, 100), "already told");
        assert!(!w.disk_newly_full(&id, 95, 100));
        assert!(!w.disk_newly_full(&id, 99, 100), "still not under 90 % since");
        assert!(!w.disk_newly_full(&id, 80, 100));
        assert!(w.disk_newly_full(&id, 100, 100), "full again");
    }
}
