//! Usage accounting, store side: a reading of a container's counters,
//! the cursor (its previous reading) kept beside the usage rows, and
//! [`advance`], the one rule that turns a reading into what it adds —
//! counter resets and restarts included, so a run is never lost or
//! counted twice.

use cubby_model::{ContainerId, ProjectId, Timestamp};

/// Where a reading stands in a container's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageEdge {
    /// A periodic reading.
    Sample,
    /// The container has just started: its cgroup counters begin at zero,
    /// and it runs from now.
    Start,
    /// Its run ends (the reading is taken just before its cgroup goes):
    /// the next run's counters begin at zero again.
    End,
}

/// One reading of a container's counters, as the sampler takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReading {
    pub container_id: ContainerId,
    pub project_id: ProjectId,
    pub at: Timestamp,
    pub edge: UsageEdge,
    /// Whether it runs (for [`UsageEdge::Sample`]).
    pub running: bool,
    /// CPU time of its current run (the cgroup's counter), if readable.
    pub cpu_ns: Option<u64>,
    /// Memory charged to it now, if it runs.
    pub memory_bytes: Option<u64>,
    /// The counters of its veth: what it received and sent, if readable.
    pub net: Option<(u64, u64)>,
    /// Its exclusive disk bytes, if its quota group is readable.
    pub disk_bytes: Option<u64>,
    /// Counted since the previous reading (the proxy's counters are
    /// taken, not read).
    pub requests: u64,
    pub response_bytes: u64,
    pub wakes: u64,
}

/// A container's previous reading: what the next one is measured from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageCursor {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub running: bool,
    pub cpu_ns: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// What one reading adds to its container's usage (and, as a row, what a
/// minute or an hour holds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageDelta {
    pub cpu_ns: u64,
    pub memory_byte_seconds: f64,
    pub memory_peak_bytes: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub disk_byte_seconds: f64,
    pub disk_peak_bytes: u64,
    pub requests: u64,
    pub response_bytes: u64,
    pub running_ms: u64,
    pub wakes: u64,
}

impl UsageDelta {
    /// Adds `other` to this (counters add, peaks take the larger).
    pub fn add(&mut self, other: &UsageDelta) {
        self.cpu_ns += other.cpu_ns;
        self.memory_byte_seconds += other.memory_byte_seconds;
        self.memory_peak_bytes = self.memory_peak_bytes.max(other.memory_peak_bytes);
        self.rx_bytes += other.rx_bytes;
        self.tx_bytes += other.tx_bytes;
        self.disk_byte_seconds += other.disk_byte_seconds;
        self.disk_peak_bytes = self.disk_peak_bytes.max(other.disk_peak_bytes);
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.running_ms += other.running_ms;
        self.wakes += other.wakes;
    }
}

/// The resolution of stored usage rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageResolution {
    Minute,
    Hour,
}

impl UsageResolution {
    /// Seconds per row.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }
}

/// Whose usage rows to read.
#[derive(Debug, Clone, Copy)]
pub enum UsageScope<'a> {
    Container(&'a ContainerId),
    Project(&'a ProjectId),
}

/// One stored row: a container's usage in one minute or hour.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub container_id: ContainerId,
    /// The start of the row's minute or hour, in seconds since the epoch.
    pub start: i64,
    pub usage: UsageDelta,
}

/// The increase of a counter from `base`; a counter that went down was
/// reset (a new cgroup, a new veth), so all of it is new.
fn increase(base: u64, now: u64) -> u64 {
    if now >= base { now - base } else { now }
}

/// What `reading` adds after `prev` (none: the container's first reading),
/// and the cursor it leaves.
///
/// - Running time, memory × time and the end of a run count only when the
///   previous reading saw it running: a start begins the clock.
/// - CPU is the cgroup's counter: a start measures it from zero (the run's
///   boot counts), an end leaves zero for the next run.
/// - A reading older than the cursor (stored late) adds only the counts it
///   took, and leaves the cursor.
/// - A first reading that is not a start (a container older than usage
///   accounting) only sets the cursor: what came before is not known to
///   be in any period.
pub fn advance(prev: Option<&UsageCursor>, reading: &UsageReading) -> (UsageDelta, UsageCursor) {
    let at_ms = i64::try_from(reading.at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    if let Some(p) = prev.filter(|p| p.at_ms > at_ms) {
        // Taken before the cursor's reading but stored after it (a sampler
        // tick that raced a stop): only what it took counts.
        let delta = UsageDelta {
            requests: reading.requests,
            response_bytes: reading.response_bytes,
            wakes: reading.wakes,
            ..UsageDelta::default()
        };
        return (delta, *p);
    }
    let elapsed_ms = prev.map_or(0, |p| u64::try_from(at_ms.saturating_sub(p.at_ms)).unwrap_or(0));
    let elapsed_s = elapsed_ms as f64 / 1000.0;
    let was_running = prev.is_some_and(|p| p.running) && reading.edge != UsageEdge::Start;
    let cpu_base = match (reading.edge, prev) {
        (UsageEdge::Start, _) => Some(0),
        (_, Some(p)) => Some(p.cpu_ns),
        (_, None) => None,
    };
    let cpu_ns = match (cpu_base, reading.cpu_ns) {
        (Some(base), Some(now)) => increase(base, now),
        _ => 0,
    };
    let (rx, tx) = match (prev, reading.net) {
        (Some(p), Some((rx, tx))) => (increase(p.rx_bytes, rx), increase(p.tx_bytes, tx)),
        _ => (0, 0),
    };
    let memory = if was_running { reading.memory_bytes.unwrap_or(0) } else { 0 };
    let disk = reading.disk_bytes.unwrap_or(0);
    let delta = UsageDelta {
        cpu_ns,
        memory_byte_seconds: memory as f64 * elapsed_s,
        memory_peak_bytes: reading.memory_bytes.filter(|_| reading.running || was_running).unwrap_or(0),
        rx_bytes: rx,
        tx_bytes: tx,
        disk_byte_seconds: if prev.is_some() { disk as f64 * elapsed_s } else { 0.0 },
        disk_peak_bytes: disk,
        requests: reading.requests,
        response_bytes: reading.response_bytes,
        running_ms: if was_running { elapsed_ms } else { 0 },
        wakes: reading.wakes,
    };
    let (prev_rx, prev_tx) = prev.map_or((0, 0), |p| (p.rx_bytes, p.tx_bytes));
    let (rx_bytes, tx_bytes) = reading.net.unwrap_or((prev_rx, prev_tx));
    let cursor = UsageCursor {
        at_ms,
        running: match reading.edge {
            UsageEdge::Start => true,
            UsageEdge::End => false,
            UsageEdge::Sample => reading.running,
        },
        cpu_ns: match reading.edge {
            UsageEdge::End => 0,
            _ => reading.cpu_ns.or(cpu_base).unwrap_or(0),
        },
        rx_bytes,
        tx_bytes,
    };
    (delta, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(second: i64, edge: UsageEdge, cpu: u64, net: (u64, u64)) -> UsageReading {
        UsageReading {
            container_id: ContainerId::from_stored("cabc".into()),
            project_id: ProjectId::from_stored("pabc".into()),
            at: Timestamp::from_unix_timestamp(1_000_000 + second).unwrap(),
            edge,
            running: edge != UsageEdge::End,
            cpu_ns: Some(cpu),
            memory_bytes: Some(1 << 30),
            net: Some(net),
            disk_bytes: Some(1 << 20),
            requests: 0,
            response_bytes: 0,
            wakes: 0,
        }
    }

    /// Runs `readings` through `advance` and sums what they add.
    fn total(readings: &[UsageReading]) -> UsageDelta {
        let mut cursor = None;
        let mut sum = UsageDelta::default();
        for r in readings {
            let (d, c) = advance(cursor.as_ref(), r);
            cursor = Some(c);
            sum.add(&d);
        }
        sum
    }

    #[test]
    fn a_restart_neither_loses_nor_double_counts() {
        use UsageEdge::*;
        let sum = total(&[
            reading(0, Start, 100, (10, 10)),
            reading(10, Sample, 5_000, (1_010, 510)),
            reading(15, End, 7_000, (1_500, 600)),
            // A new run: a new cgroup counts from zero; the veth stays.
            reading(100, Start, 50, (1_500, 600)),
            reading(110, Sample, 2_050, (2_500, 700)),
        ]);
        assert_eq!(sum.cpu_ns, 7_000 + 2_050, "every run's CPU, from its own zero");
        assert_eq!(sum.running_ms, 25_000, "15 s, then 10 s; the stopped 85 s do not count");
        assert_eq!((sum.rx_bytes, sum.tx_bytes), (2_490, 690));
        assert_eq!(sum.memory_byte_seconds, 25.0 * f64::from(1 << 30));
    }

    #[test]
    fn a_counter_that_goes_down_was_reset() {
        use UsageEdge::*;
        // The daemon missed the end of a run (it was down): the next
        // reading's counter is lower, so all of it is new.
        let sum = total(&[
            reading(0, Start, 0, (0, 0)),
            reading(10, Sample, 9_000, (0, 0)),
            reading(20, Sample, 400, (0, 0)),
        ]);
        assert_eq!(sum.cpu_ns, 9_400);
    }

    #[test]
    fn a_reading_stored_after_a_later_one_only_adds_its_counts() {
        let end = reading(20, UsageEdge::End, 9_000, (0, 0));
        let (_, cursor) = advance(None, &end);
        let late = UsageReading { requests: 3, ..reading(15, UsageEdge::Sample, 8_000, (0, 0)) };
        let (delta, after) = advance(Some(&cursor), &late);
        assert_eq!(after, cursor, "the cursor stays at the end of the run");
        assert_eq!((delta.requests, delta.cpu_ns, delta.running_ms), (3, 0, 0));
    }

    #[test]
    fn a_first_reading_that_is_not_a_start_only_sets_the_cursor() {
        let (delta, cursor) = advance(None, &reading(0, UsageEdge::Sample, 5_000_000, (70, 80)));
        assert_eq!(delta.cpu_ns, 0);
        assert_eq!((delta.rx_bytes, delta.running_ms), (0, 0));
        assert_eq!((cursor.cpu_ns, cursor.rx_bytes, cursor.running), (5_000_000, 70, true));
    }
}
