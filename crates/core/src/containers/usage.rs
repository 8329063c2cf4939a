//! Usage accounting: readings of each container's counters (its cgroup's
//! CPU and memory, its veth's bytes, its subvolume's exclusive bytes, the
//! proxy's requests and wakes) go to the store at the start of a run, at
//! its end (just before the cgroup goes), and every `--usage-interval`
//! between; the store turns them into minute and hour rows. The queries
//! fold those rows into a series of steps and totals.
//!
//! A reading never fails a lifecycle step: what cannot be read is left
//! out, and a store error is logged.

use std::collections::BTreeMap;
use std::path::Path;

use cubby_model::{
    ContainerId, ContainerStatus, ContainerTotal, ContainerUsage, ProjectId, ProjectUsage, Timestamp, Usage, UsagePoint,
};
use cubby_store::{ContainerRecord, UsageDelta, UsageEdge, UsageReading, UsageResolution, UsageRow, UsageScope};

use super::ContainerService;
use crate::{Caller, Error};

/// How far back minute rows are kept (hour rows: `--usage-retention-days`).
pub const MINUTE_RETENTION: time::Duration = time::Duration::days(2);
/// The most steps one answer has.
pub const MAX_STEPS: i64 = 10_000;
/// The longest span one query covers.
pub const MAX_SPAN: time::Duration = time::Duration::days(400);

/// The span and step of a usage query; what is not given has a default
/// (the last 24 hours, in hours; spans of 6 hours or less in minutes).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageWindow {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Seconds per step: a multiple of 60 (minute rows) or of 3600 (hour
    /// rows).
    pub step: Option<u32>,
}

/// A checked window: its bounds in seconds, aligned to the step.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: i64,
    to: i64,
    step: i64,
    resolution: UsageResolution,
}

impl UsageWindow {
    fn check(&self, now: Timestamp) -> Result<Span, Error> {
        let to = self.to.unwrap_or(now);
        let from = self.from.unwrap_or(to - time::Duration::days(1));
        if from >= to {
            return Err(Error::invalid("from", "give a `from` before `to`"));
        }
        if to - from > MAX_SPAN {
            return Err(Error::invalid("from", format!("one query covers at most {} days", MAX_SPAN.whole_days())));
        }
        let step = i64::from(self.step.unwrap_or(if to - from > time::Duration::hours(6) { 3600 } else { 60 }));
        if step < 60 || step % 60 != 0 {
            return Err(Error::invalid("step", "give a step in seconds that is a multiple of 60 (e.g. 60, 300, 3600)"));
        }
        let resolution = if step % 3600 == 0 { UsageResolution::Hour } else { UsageResolution::Minute };
        if resolution == UsageResolution::Minute && from < now - MINUTE_RETENTION {
            return Err(Error::invalid(
                "step",
                format!(
                    "minute usage is kept for {} days: for an older `from`, give a step that is a multiple of 3600",
                    MINUTE_RETENTION.whole_days()
                ),
            ));
        }
        let (from, to) = (from.unix_timestamp(), to.unix_timestamp());
        let from = from - from.rem_euclid(step);
        let to = to + (step - to.rem_euclid(step)) % step;
        if (to - from) / step > MAX_STEPS {
            return Err(Error::invalid("step", format!("at most {MAX_STEPS} steps: give a larger step")));
        }
        Ok(Span { from, to, step, resolution })
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A stored delta in the API's units.
pub(crate) fn usage_of(d: &UsageDelta) -> Usage {
    const GIB: f64 = (1u64 << 30) as f64;
    Usage {
        cpu_seconds: d.cpu_ns as f64 / 1e9,
        memory_gib_seconds: d.memory_byte_seconds / GIB,
        memory_peak_bytes: d.memory_peak_bytes,
        network_rx_bytes: d.rx_bytes,
        network_tx_bytes: d.tx_bytes,
        disk_gib_seconds: d.disk_byte_seconds / GIB,
        disk_peak_bytes: d.disk_peak_bytes,
        requests: d.requests,
        response_bytes: d.response_bytes,
        running_seconds: d.running_ms as f64 / 1000.0,
        wakes: d.wakes,
    }
}

/// Folds rows into steps (only steps with rows) and a total.
fn fold(rows: &[UsageRow], span: &Span) -> (Usage, Vec<UsagePoint>) {
    let mut steps: BTreeMap<i64, Usage> = BTreeMap::new();
    let mut totals = Usage::default();
    for row in rows {
        let usage = usage_of(&row.usage);
        totals.add(&usage);
        let start = row.start - (row.start - span.from).rem_euclid(span.step);
        steps.entry(start).or_default().add(&usage);
    }
    (totals, steps.into_iter().map(|(start, usage)| UsagePoint { at: at(start), usage }).collect())
}

/// Bytes the host side of `veth` received and sent, from the text of
/// `net/dev`. The container's view is the other way round.
pub(crate) fn veth_bytes(net_dev: &str, veth: &str) -> Option<(u64, u64)> {
    net_dev.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != veth {
            return None;
        }
        let fields: Vec<u64> = counters.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        // rx bytes is the first field, tx bytes the ninth.
        Some((*fields.first()?, *fields.get(8)?))
    })
}

/// The host's `net/dev` under `proc_root` (empty when unreadable).
pub(crate) fn read_net_dev(proc_root: &Path) -> String {
    std::fs::read_to_string(proc_root.join("net/dev")).unwrap_or_default()
}

impl ContainerService {
    /// Takes a reading of `rec`'s counters and records it. `net_dev` is
    /// the host's `net/dev`, read once for many readings.
    pub(crate) fn record_usage(&self, rec: &ContainerRecord, edge: UsageEdge, net_dev: &str) {
        let readings = [self.read_usage(rec, edge, net_dev)];
        match self.store.record_usage(&readings) {
            Ok(deltas) => self.tallies.add(&readings, &deltas),
            Err(e) => tracing::warn!(container = %rec.id, error = %e, "usage reading not recorded"),
        }
    }

    /// A reading of `rec`'s counters.
    fn read_usage(&self, rec: &ContainerRecord, edge: UsageEdge, net_dev: &str) -> UsageReading {
        let paths = self.paths(&rec.id, rec.slot);
        let running = match edge {
            UsageEdge::Start => true,
            UsageEdge::End => false,
            UsageEdge::Sample => rec.status == ContainerStatus::Running,
        };
        let in_cgroup = running || edge == UsageEdge::End;
        let cgroups = &self.host.cgroups;
        let cpu_ns = if in_cgroup { cgroups.cpu_usage_ns(&paths.cgroup).ok().flatten() } else { None };
        // A container listed as running whose cgroup is gone has just
        // stopped: its run's end reading counts the rest.
        let running = running && (edge != UsageEdge::Sample || cpu_ns.is_some());
        let memory_bytes = if in_cgroup { cgroups.memory_usage(&paths.cgroup).ok().flatten() } else { None };
        let taken = self.activity.get(&rec.id).take_counts();
        UsageReading {
            container_id: rec.id.clone(),
            project_id: rec.project_id.clone(),
            at: cubby_model::now(),
            edge,
            running,
            cpu_ns,
            memory_bytes,
            // The host side's received bytes are what the container sent.
            net: veth_bytes(net_dev, &paths.veth).map(|(host_rx, host_tx)| (host_tx, host_rx)),
            disk_bytes: self.host.btrfs.disk_usage(&paths.subvolume).ok().flatten().map(|d| d.exclusive),
            requests: taken.requests,
            response_bytes: taken.response_bytes,
            wakes: taken.wakes,
        }
    }

    /// One reading of every container (the sampler's tick); `scope`
    /// narrows it to one project.
    pub(crate) fn sample_usage(&self, scope: Option<&ProjectId>) {
        let Ok(records) = self.store.containers(scope, None, u32::MAX) else { return };
        let net_dev = read_net_dev(&self.config.proc_root);
        let readings: Vec<UsageReading> = records
            .iter()
            .filter(|r| matches!(r.status, ContainerStatus::Running | ContainerStatus::Stopped))
            .map(|rec| {
                let reading = self.read_usage(rec, UsageEdge::Sample, &net_dev);
                if reading.running {
                    self.check_oom(rec);
                }
                self.check_disk(rec, reading.disk_bytes);
                reading
            })
            .collect();
        match self.store.record_usage(&readings) {
            Ok(deltas) => self.tallies.add(&readings, &deltas),
            Err(e) => tracing::warn!(error = %e, readings = readings.len(), "usage readings not recorded"),
        }
    }

    /// Drops usage rows and events older than their retention.
    pub(crate) fn prune_usage(&self, retention: time::Duration) {
        self.events.prune();
        let now = cubby_model::now();
        for (resolution, keep) in [(UsageResolution::Minute, MINUTE_RETENTION), (UsageResolution::Hour, retention)] {
            if let Err(e) = self.store.prune_usage(resolution, (now - keep).unix_timestamp()) {
                tracing::warn!(error = %e, "usage rows not pruned");
            }
        }
    }

    /// What container `id` used over `window`: current to this call (its
    /// counters are read first). A deleted container's usage stays
    /// readable by its project until it ages out.
    pub fn container_usage(
        &self,
        caller: &Caller,
        id: &ContainerId,
        window: &UsageWindow,
    ) -> Result<ContainerUsage, Error> {
        let span = window.check(cubby_model::now())?;
        let project_id = match self.record(caller, id) {
            Ok(rec) => {
                if rec.status == ContainerStatus::Running {
                    self.record_usage(&rec, UsageEdge::Sample, &read_net_dev(&self.config.proc_root));
                }
                rec.project_id
            }
            Err(Error::NotFound { .. }) => self
                .store
                .usage_project(id)?
                .filter(|p| ContainerId::is_well_formed(id.as_str()) && caller.can_access(p))
                .ok_or_else(|| Error::NotFound { kind: "container", id: id.to_string() })?,
            Err(e) => return Err(e),
        };
        let rows = self.store.usage_rows(UsageScope::Container(id), span.resolution, span.from, span.to)?;
        let (totals, series) = fold(&rows, &span);
        Ok(ContainerUsage {
            container_id: id.clone(),
            project_id,
            from: at(span.from),
            to: at(span.to),
            step_seconds: u32::try_from(span.step).unwrap_or(u32::MAX),
            totals,
            series,
        })
    }

    /// What the containers of `project` used over `window`, together, and
    /// with `by_container` each one's total (deleted ones by id).
    pub fn project_usage(
        &self,
        caller: &Caller,
        project: &ProjectId,
        window: &UsageWindow,
        by_container: bool,
    ) -> Result<ProjectUsage, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let span = window.check(cubby_model::now())?;
        self.sample_usage(Some(project));
        let rows = self.store.usage_rows(UsageScope::Project(project), span.resolution, span.from, span.to)?;
        let (totals, series) = fold(&rows, &span);
        let mut containers = Vec::new();
        if by_container {
            let mut each: BTreeMap<ContainerId, Usage> = BTreeMap::new();
            for row in &rows {
                each.entry(row.container_id.clone()).or_default().add(&usage_of(&row.usage));
            }
            let names: BTreeMap<ContainerId, String> =
                self.store.containers(Some(project), None, u32::MAX)?.into_iter().map(|r| (r.id, r.name)).collect();
            containers = each
                .into_iter()
                .map(|(id, totals)| ContainerTotal { name: names.get(&id).cloned(), container_id: id, totals })
                .collect();
        }
        Ok(ProjectUsage {
            project_id: project.clone(),
            from: at(span.from),
            to: at(span.to),
            step_seconds: u32::try_from(span.step).unwrap_or(u32::MAX),
            totals,
            series,
            containers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn windows_default_and_align_to_their_step() {
        let span = UsageWindow::default().check(now()).unwrap();
        assert_eq!((span.step, span.resolution), (3600, UsageResolution::Hour), "a day goes in hours");
        assert_eq!(span.to - span.from, 86_400);
        let short = UsageWindow { from: Some(now() - time::Duration::minutes(30)), ..Default::default() };
        let span = short.check(now()).unwrap();
        assert_eq!((span.step, span.resolution), (60, UsageResolution::Minute));
        assert_eq!(span.from % 60, 0);
    }

    #[test]
    fn bad_windows_say_what_to_change() {
        let bad = |w: UsageWindow| match w.check(now()) {
            Err(Error::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        };
        let back = |d| Some(now() - d);
        assert_eq!(bad(UsageWindow { step: Some(90), ..Default::default() }), "step");
        assert_eq!(bad(UsageWindow { from: Some(now()), to: Some(now()), step: None }), "from");
        assert_eq!(bad(UsageWindow { from: back(time::Duration::days(500)), ..Default::default() }), "from");
        let old_minutes = UsageWindow { from: back(time::Duration::days(5)), to: None, step: Some(60) };
        assert_eq!(bad(old_minutes), "step", "minutes are not kept that long");
    }

    #[test]
    fn rows_fold_into_steps_and_a_total() {
        let span = Span { from: 0, to: 600, step: 300, resolution: UsageResolution::Minute };
        let row = |start, cpu_ns| UsageRow {
            container_id: ContainerId::from_stored("cabc".into()),
            start,
            usage: UsageDelta { cpu_ns, requests: 1, ..Default::default() },
        };
        let (totals, series) = fold(&[row(0, 1_000_000_000), row(60, 500_000_000), row(360, 250_000_000)], &span);
        assert_eq!(totals.cpu_seconds, 1.75);
        assert_eq!(totals.requests, 3);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].usage.cpu_seconds, 1.5);
        assert_eq!(series[1].at.unix_timestamp(), 300);
    }

    #[test]
    fn veth_counters_come_from_net_dev() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(
            dir.path().join("net/dev"),
            "Inter-|   Receive                            |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
             cbt-7: 1500 10 0 0 0 0 0 0 64000 50 0 0 0 0 0 0\n",
        )
        .unwrap();
        let net_dev = read_net_dev(dir.path());
        assert_eq!(veth_bytes(&net_dev, "cbt-7"), Some((1500, 64000)));
        assert_eq!(veth_bytes(&net_dev, "cbt-8"), None);
    }
}
