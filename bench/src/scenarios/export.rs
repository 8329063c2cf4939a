//! Export: a tenant's archive streamed over the API against `cat` of the
//! same files read from the pool, each with a cold page cache, in one run;
//! and the import of that archive.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use cubby_model::{CreateContainer, ExecRequest};
use cubby_testkit::DaemonOptions;

use super::{Report, machine};

/// Drops the page cache, so both readers start from the disk.
fn drop_caches() -> anyhow::Result<()> {
    std::process::Command::new("sync").status()?;
    std::fs::write("/proc/sys/vm/drop_caches", "3")?;
    Ok(())
}

/// Counts what passes, keeps nothing.
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn run(bin: &str, mb: u32) -> anyhow::Result<Report> {
    let d = super::daemon(bin, DaemonOptions { pool_size: Some("16GiB".into()), ..Default::default() });
    let api = d.admin();
    let p = api.create_project(&cubby_model::CreateProject { name: "bench".into(), ..Default::default() })?;
    let c = api.create_container(p.id.as_str(), &CreateContainer { name: "tenant".into(), ..Default::default() })?;
    let files = mb.div_ceil(4);
    let fill = format!(
        "mkdir -p /data/blobs && for i in $(seq 1 {files}); do \
         dd if=/dev/urandom of=/data/blobs/$i bs=1M count=4 2>/dev/null; done; sync"
    );
    let req =
        ExecRequest { command: vec!["sh".into(), "-c".into(), fill], timeout_seconds: Some(600), ..Default::default() };
    let out = api.exec(c.id.as_str(), &req)?;
    anyhow::ensure!(out.exit_code == 0, "filling the tenant failed: {}", out.stderr);
    let blobs = d.data_dir.join(format!("pool/containers/{}/upper/data/blobs", c.id));

    // `cat` of the same files, cold.
    drop_caches()?;
    let t0 = Instant::now();
    let status =
        std::process::Command::new("sh").arg("-c").arg(format!("cat {}/* > /dev/null", blobs.display())).status()?;
    anyhow::ensure!(status.success(), "cat failed");
    let cat_s = t0.elapsed().as_secs_f64();
    let bytes = u64::from(files) * (4 << 20);

    // The export, cold, streamed over HTTP to a sink.
    drop_caches()?;
    let t0 = Instant::now();
    let mut sink = Counting(0);
    api.export_container(c.id.as_str(), "", &mut sink)?;
    let export_s = t0.elapsed().as_secs_f64();

    // The import of an archive kept in memory.
    let mut archive = Vec::new();
    api.export_container(c.id.as_str(), "", &mut archive)?;
    let archive_len = archive.len();
    let t0 = Instant::now();
    let imported = api.import_container(p.id.as_str(), Some("imported"), std::io::Cursor::new(archive))?;
    let import_s = t0.elapsed().as_secs_f64();
    api.delete_container(imported.id.as_str())?;
    api.delete_container(c.id.as_str())?;

    let mib = |s: f64| bytes as f64 / s / f64::from(1 << 20);
    let mut figures = BTreeMap::new();
    figures.insert(format!("tenant data: {} MiB in {files} files (random)", bytes >> 20), String::new());
    figures.insert("1 cat of the files (cold): s | MiB/s".into(), format!("{cat_s:.2} | {:.0}", mib(cat_s)));
    figures.insert("2 export over the API (cold): s | MiB/s".into(), format!("{export_s:.2} | {:.0}", mib(export_s)));
    figures.insert("export / cat throughput".into(), format!("{:.2}", cat_s / export_s));
    figures.insert("archive bytes / data bytes".into(), format!("{:.3}", archive_len as f64 / bytes as f64));
    figures.insert(
        "3 import of that archive (to running): s | MiB/s".into(),
        format!("{import_s:.2} | {:.0}", mib(import_s)),
    );
    Ok(Report {
        title: format!("export: {} MiB tenant", bytes >> 20),
        machine: machine(),
        rows: BTreeMap::new(),
        figures,
        notes: vec![
            "the page cache is dropped before `cat` and before the export; the export is streamed to a sink that counts"
                .into(),
            "random data: zstd cannot shrink it, so this is the archive's worst case for bytes and its best for speed"
                .into(),
        ],
    })
}
