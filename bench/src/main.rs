//! `cubby-bench`: starts its own daemon (a unique prefix and data dir, as
//! the tests do), measures it through the public API and the proxy, and
//! prints one report as markdown and JSON.
//!
//! This is a benchmark, not a test: it asserts nothing about time.

mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// Measure a real Cubby daemon on this machine (needs root).
#[derive(Debug, Parser)]
#[command(name = "cubby-bench")]
struct Args {
    /// The `cubby` binary to measure (default: next to this one).
    #[arg(long, global = true)]
    bin: Option<PathBuf>,
    /// A short run for development.
    #[arg(long, global = true)]
    quick: bool,
    /// Write report.md and report.json here too.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Option<Scenario>,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Everything, against the runc baseline in the same run (the default).
    Report {
        /// Samples per latency row.
        #[arg(long)]
        n: Option<usize>,
        /// Concurrent clients.
        #[arg(long)]
        clients: Option<usize>,
        /// Containers of the throughput row.
        #[arg(long)]
        throughput: Option<usize>,
        /// Running idle tenants of the density row.
        #[arg(long)]
        density: Option<usize>,
        /// Seconds of each wrk run.
        #[arg(long)]
        wrk_seconds: Option<u32>,
        /// The baseline script.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Create, stop, start and delete latencies.
    Lifecycle {
        /// Containers.
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// Also run with `--userns off` in the same process and report the ratios.
        #[arg(long)]
        compare_userns: bool,
    },
    /// Copies of a big template, pool bytes per copy, snapshot create and restore.
    Templates {
        /// Copies to measure.
        #[arg(long, default_value_t = 20)]
        copies: usize,
        /// Megabytes of files in the template.
        #[arg(long, default_value_t = 200)]
        template_mb: u32,
    },
    /// Rule-change latency with 1 and many tenants, and the per-packet cost of rules.
    Firewall {
        /// Tenants for the second measurement.
        #[arg(long, default_value_t = 500)]
        tenants: usize,
        /// Rules per tenant.
        #[arg(long, default_value_t = 10)]
        rules: usize,
    },
    /// Latency and throughput of a hello-world exec script.
    Scripts {
        /// Calls to measure.
        #[arg(long, default_value_t = 500)]
        n: usize,
        /// Seconds of the wrk run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// A tenant's export streamed over the API against `cat` of its files.
    Export {
        /// Megabytes of files in the tenant.
        #[arg(long, default_value_t = 1024)]
        mb: u32,
    },
    /// A backup of idle tenants (whole, then with nothing changed), and a
    /// rollout over running copies against the same syncs one by one.
    Upgrades {
        /// Idle tenants in the backup.
        #[arg(long, default_value_t = 500)]
        idle: usize,
        /// Running copies in the rollout.
        #[arg(long, default_value_t = 100)]
        copies: usize,
    },
    /// Wake latency, and proxy throughput with wrk: Cubby, nginx and direct.
    Urls {
        /// Wakes to measure.
        #[arg(long, default_value_t = 20)]
        wakes: usize,
        /// Seconds of each wrk run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !is_root() {
        bail!("cubby-bench drives a real daemon (runc, btrfs, netlink, nftables): run it as root");
    }
    let bin = match args.bin {
        Some(b) => b,
        None => std::env::current_exe()?.parent().context("bench binary has a directory")?.join("cubby"),
    };
    let bin = bin.display().to_string();
    let default =
        Scenario::Report { n: None, clients: None, throughput: None, density: None, wrk_seconds: None, baseline: None };
    let report = match args.scenario.unwrap_or(default) {
        Scenario::Report { n, clients, throughput, density, wrk_seconds, baseline } => {
            let base = if args.quick { scenarios::report::Sizes::quick() } else { scenarios::report::Sizes::default() };
            let sizes = scenarios::report::Sizes {
                n: n.unwrap_or(base.n),
                clients: clients.unwrap_or(base.clients),
                throughput: throughput.unwrap_or(base.throughput),
                density: density.unwrap_or(base.density),
                wrk_seconds: wrk_seconds.unwrap_or(base.wrk_seconds),
                baseline,
            };
            scenarios::report::run(&bin, &sizes)?
        }
        Scenario::Lifecycle { n, compare_userns } => {
            scenarios::lifecycle::run(&bin, if args.quick { 5 } else { n }, compare_userns)?
        }
        Scenario::Templates { copies, template_mb } => scenarios::templates::run(
            &bin,
            if args.quick { 3 } else { copies },
            if args.quick { 8 } else { template_mb },
        )?,
        Scenario::Firewall { tenants, rules } => {
            scenarios::firewall::run(&bin, if args.quick { 20 } else { tenants }, rules)?
        }
        Scenario::Scripts { n, seconds } => {
            scenarios::scripts::run(&bin, if args.quick { 50 } else { n }, if args.quick { 3 } else { seconds })?
        }
        Scenario::Export { mb } => scenarios::export::run(&bin, if args.quick { 64 } else { mb })?,
        Scenario::Upgrades { idle, copies } => {
            scenarios::upgrades::run(&bin, if args.quick { 50 } else { idle }, if args.quick { 10 } else { copies })?
        }
        Scenario::Urls { wakes, seconds } => {
            scenarios::urls::run(&bin, if args.quick { 5 } else { wakes }, if args.quick { 3 } else { seconds })?
        }
    };
    let markdown = report::markdown(&report);
    let json = serde_json::to_string_pretty(&report)?;
    println!("{markdown}");
    if let Some(dir) = args.out {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("report.md"), &markdown)?;
        std::fs::write(dir.join("report.json"), &json)?;
    } else {
        println!("```json\n{json}\n```");
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
