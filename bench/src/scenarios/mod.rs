//! The measured scenarios. Each runs against a fresh daemon owned by the
//! bench and removed at the end.

pub mod export;
pub mod firewall;
pub mod https;
pub mod lifecycle;
pub mod report;
pub mod scripts;
pub mod templates;
pub mod upgrades;
pub mod urls;

use std::collections::BTreeMap;
use std::time::Duration;

use cubby_testkit::{Daemon, DaemonOptions};
use serde::Serialize;

use crate::stats::Summary;

/// One report: latency rows and free-form figures.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub title: String,
    pub machine: String,
    pub rows: BTreeMap<String, Summary>,
    /// Other figures (throughputs, ratios), already formatted.
    pub figures: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// A daemon for a scenario, in a session of its own as under a service
/// manager: with autogroup scheduling it then shares the CPUs with the
/// bench and `wrk` group against group, as nginx (also started in its own
/// session) does.
pub fn daemon(bin: &str, options: DaemonOptions) -> Daemon {
    Daemon::start_with(bin, DaemonOptions { own_session: true, ..options })
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, Linux {}", kernel.trim())
}
