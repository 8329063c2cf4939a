//! `cubby-bench`: starts its own daemon (a unique prefix and data dir, as
//! the tests do), measures lifecycle latencies through the public API and
//! the proxy, and prints one report as markdown and JSON.
//!
//! This is a benchmark, not a test: it asserts nothing about time.

mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;

/// Measure a real Cubby daemon on this machine (needs root).
#[derive(Debug, Parser)]
#[command(name = "cubby-bench")]
struct Args {
    /// The `cubby` binary to measure (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Containers per scenario.
    #[arg(long, default_value_t = 20)]
    n: usize,
    /// A short run for development (n = 5).
    #[arg(long)]
    quick: bool,
    /// Write report.md and report.json here too.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !nix_is_root() {
        bail!("cubby-bench drives a real daemon (runc, btrfs, netlink, nftables): run it as root");
    }
    let bin = match args.bin {
        Some(b) => b,
        None => std::env::current_exe()?.parent().context("bench binary has a directory")?.join("cubby"),
    };
    let n = if args.quick { 5 } else { args.n };
    let report = scenarios::run_all(&bin.display().to_string(), n)?;
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

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
