//! `cubby usage`: what containers (or a project's containers) used over a
//! span, as totals per container, or the API's JSON.

use clap::Args;
use cubby_model::{ByteSize, Usage};

use super::Connection;
use super::output::print;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Container ids (or none, with --project).
    pub ids: Vec<String>,
    /// Every container of this project, deleted ones included (by id).
    #[arg(long, required_unless_present = "ids")]
    pub project: Option<String>,
    /// Start of the span, RFC 3339 (default: a day before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the span, RFC 3339 (default: now).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub c: Connection,
}

/// The query string of the span: hourly steps, so a span reaches back as
/// far as usage is kept.
fn query(a: &UsageArgs) -> String {
    let mut q = vec!["step=3600".to_string()];
    for (key, value) in [("from", &a.from), ("to", &a.to)] {
        if let Some(v) = value {
            q.push(format!("{key}={}", v.replace('+', "%2B")));
        }
    }
    q.join("&")
}

pub fn run(a: UsageArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = a.c.client()?;
    let q = query(&a);
    let mut rows: Vec<(String, String, Usage)> = Vec::new();
    for id in &a.ids {
        let u = client.container_usage(id, &q)?;
        rows.push((id.clone(), String::new(), u.totals));
    }
    if let Some(project) = &a.project {
        let u = client.project_usage(project, &format!("{q}&group_by=container"))?;
        rows.extend(
            u.containers
                .into_iter()
                .map(|c| (c.container_id.to_string(), c.name.unwrap_or_else(|| "(deleted)".into()), c.totals)),
        );
    }
    if a.c.json {
        let map: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(id, _, u)| (id.clone(), serde_json::to_value(u).unwrap_or_default())).collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let header = [
        "ID",
        "NAME",
        "CPU s",
        "MEM GiB·s",
        "MEM PEAK",
        "NET IN / OUT",
        "DISK GiB·s",
        "REQUESTS",
        "SENT",
        "RUN s",
        "WAKES",
    ];
    print(false, &rows, &header, |(id, name, u)| {
        vec![
            id.clone(),
            name.clone(),
            format!("{:.1}", u.cpu_seconds),
            format!("{:.1}", u.memory_gib_seconds),
            ByteSize(u.memory_peak_bytes).to_string(),
            format!("{} / {}", ByteSize(u.network_rx_bytes), ByteSize(u.network_tx_bytes)),
            format!("{:.1}", u.disk_gib_seconds),
            u.requests.to_string(),
            ByteSize(u.response_bytes).to_string(),
            format!("{:.0}", u.running_seconds),
            u.wakes.to_string(),
        ]
    });
    Ok(std::process::ExitCode::SUCCESS)
}
