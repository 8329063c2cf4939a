//! `cubby stats`: what containers use now, as a table (`--watch` redraws
//! it every two seconds), or the API's JSON.

use clap::Args;
use cubby_model::{ByteSize, ContainerStats};

use super::Connection;
use super::output::print;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Redraw every two seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub c: Connection,
}

fn rate(bytes_per_second: f64) -> String {
    let units = [("GiB", 1_073_741_824.0), ("MiB", 1_048_576.0), ("KiB", 1024.0)];
    match units.iter().find(|(_, size)| bytes_per_second >= *size) {
        Some((unit, size)) => format!("{:.1} {unit}/s", bytes_per_second / size),
        None => format!("{:.0} B/s", bytes_per_second.max(0.0)),
    }
}

pub fn run(a: StatsArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = a.c.client()?;
    loop {
        let stats: Vec<(String, ContainerStats)> =
            a.ids.iter().map(|id| Ok((id.clone(), client.stats(id)?))).collect::<anyhow::Result<_>>()?;
        if a.c.json {
            let map: serde_json::Map<String, serde_json::Value> =
                stats.iter().map(|(id, s)| (id.clone(), serde_json::to_value(s).unwrap_or_default())).collect();
            println!("{}", serde_json::to_string_pretty(&map)?);
        } else {
            if a.watch {
                // Clear the screen and go home, as `watch` does.
                print!("\x1b[2J\x1b[H");
            }
            let header = ["ID", "STATUS", "CPU %", "MEM / LIMIT", "PIDS", "DISK", "NET IN / OUT", "UP"];
            print(false, &stats, &header, |(id, s)| {
                vec![
                    id.clone(),
                    s.status.as_str().to_string(),
                    format!("{:.1} / {:.0}", s.cpu_percent, s.cpu_limit * 100.0),
                    format!("{} / {}", ByteSize(s.memory_bytes), ByteSize(s.memory_limit_bytes)),
                    format!("{} / {}", s.pids, s.pids_limit),
                    ByteSize(s.disk_bytes).to_string(),
                    format!("{} / {}", rate(s.net_rx_rate), rate(s.net_tx_rate)),
                    format!("{}s", s.uptime_seconds),
                ]
            });
        }
        if !a.watch {
            return Ok(std::process::ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
