//! Firewall cost: how long one container's rule change takes with 1 and
//! with many tenants (each with its own rules), and what the rules cost a
//! packet: new connections per second and bulk throughput from a container
//! to an outside host, with the default rules and with a long rule list.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cubby_model::CreateContainer;
use cubby_testkit::{Daemon, DaemonOptions, OutsideHost, in_netns};
use serde_json::json;

use super::{Report, machine, ms};
use crate::stats::summarize;

fn rules(n: usize, variant: u16) -> serde_json::Value {
    let mut egress: Vec<serde_json::Value> = (0..u16::try_from(n.saturating_sub(1)).unwrap_or(99))
        .map(|i| {
            json!({ "action": "reject", "protocol": "tcp", "ports": format!("{}", 20000 + variant * 100 + i),
                    "destination": format!("203.0.113.{}", i % 250) })
        })
        .collect();
    egress.push(json!({ "action": "allow" }));
    json!({ "ingress": [{ "action": "allow", "protocol": "tcp", "ports": "8080" }], "egress": egress })
}

fn put(d: &Daemon, id: &str, body: &serde_json::Value) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let r = d.admin().raw("PUT", &format!("/api/v1/containers/{id}/firewall"), Some(body.to_string().as_bytes()))?;
    let took = t0.elapsed();
    anyhow::ensure!(r.status == 200, "PUT firewall answered {}: {}", r.status, r.json());
    Ok(took)
}

fn change_latency(d: &Daemon, id: &str, rounds: usize, per: usize) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::new();
    for i in 0..rounds {
        v.push(ms(put(d, id, &rules(per, u16::try_from(i % 2).unwrap_or(0)))?));
    }
    Ok(v)
}

/// New TCP connections per second, and MB/s over one connection, from the
/// container to the sink.
fn traffic(netns: &std::path::Path, to: SocketAddr, secs: f64) -> (f64, f64) {
    let ns = netns.to_path_buf();
    in_netns(&ns, move || {
        let run = Duration::from_secs_f64(secs);
        let t0 = Instant::now();
        let mut conns = 0u64;
        while t0.elapsed() < run {
            if let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                let _ = s.write_all(b"x");
                conns += 1;
            }
        }
        let rate = conns as f64 / t0.elapsed().as_secs_f64();
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("connect for bulk");
        let chunk = vec![0u8; 1 << 16];
        let t0 = Instant::now();
        let mut sent = 0u64;
        while t0.elapsed() < run {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        (rate, sent as f64 / t0.elapsed().as_secs_f64() / 1e6)
    })
}

pub fn run(bin: &str, tenants: usize, per: usize) -> anyhow::Result<Report> {
    // A /21 holds 2045 containers (test daemons get a /24).
    let d = super::daemon(bin, DaemonOptions { subnet: Some("10.218.0.0/21".into()), ..Default::default() });
    let api = d.admin();
    let p = api.create_project(&cubby_model::CreateProject {
        name: "bench".into(),
        default_access: Some(cubby_model::AccessMode::Public),
        ..Default::default()
    })?;
    let a = api.create_container(p.id.as_str(), &CreateContainer { name: "a".into(), ..Default::default() })?;
    let mut rows = BTreeMap::new();
    let mut figures = BTreeMap::new();

    rows.insert(
        format!("rule change ({per} rules), 1 tenant"),
        summarize(&change_latency(&d, a.id.as_str(), 20, per)?),
    );

    let t0 = Instant::now();
    for i in 1..tenants {
        let c = api.create_container(
            p.id.as_str(),
            &CreateContainer { name: format!("t{i}"), start: Some(false), ..Default::default() },
        )?;
        put(&d, c.id.as_str(), &rules(per, 0))?;
    }
    figures.insert(
        format!("setup of {} more tenants with {per} rules each", tenants - 1),
        format!("{:.1} s", t0.elapsed().as_secs_f64()),
    );
    rows.insert(
        format!("rule change ({per} rules), {tenants} tenants"),
        summarize(&change_latency(&d, a.id.as_str(), 20, per)?),
    );

    let mut outside = OutsideHost::new(&d.prefix, &d.subnet);
    let received = outside.serve_sink(9100);
    let to = SocketAddr::from((outside.addr, 9100));
    let ns = d.run_dir.join("netns").join(a.id.as_str());
    // Interleaved rounds, median of each: the machine is noisy.
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        put(&d, a.id.as_str(), &json!({ "ingress": [], "egress": [{ "action": "allow" }] }))?;
        one.push(traffic(&ns, to, 1.5));
        put(&d, a.id.as_str(), &rules(64, 0))?;
        many.push(traffic(&ns, to, 1.5));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (c1, b1) = (median(&mut one.iter().map(|x| x.0).collect()), median(&mut one.iter().map(|x| x.1).collect()));
    let (c64, b64) = (median(&mut many.iter().map(|x| x.0).collect()), median(&mut many.iter().map(|x| x.1).collect()));
    figures.insert("new connections/s, 1 allow rule".into(), format!("{c1:.0}"));
    figures.insert(
        "new connections/s, 63 non-matching rules then allow".into(),
        format!("{c64:.0} ({:.2}× of 1 rule)", c64 / c1),
    );
    figures.insert("bulk MB/s, 1 allow rule".into(), format!("{b1:.0}"));
    figures
        .insert("bulk MB/s, 63 non-matching rules then allow".into(), format!("{b64:.0} ({:.2}× of 1 rule)", b64 / b1));
    figures.insert("bytes received by the sink".into(), received.load(Ordering::Relaxed).to_string());

    Ok(Report {
        title: format!("firewall, {tenants} tenants × {per} rules"),
        machine: machine(),
        rows,
        figures,
        notes: vec![
            "rule change = PUT /containers/{id}/firewall through the API: validation, one nft transaction, one store write".into(),
            "traffic runs from a thread in the container's network namespace to an outside namespace over the bridge, NAT and a veth; established flows skip the per-container chain".into(),
        ],
    })
}
