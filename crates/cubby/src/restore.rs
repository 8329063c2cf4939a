//! `cubby restore`: rebuilds a box from a backup directory (or bucket) into
//! an empty data dir, with no daemon running on it. `cubby serve` on that
//! data dir then starts every tenant again, with the backup's ids and URLs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use clap::Args;
use cubby_core::backup::RestoreOptions;

/// Flags of `cubby restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The directory of backups, or `s3://bucket/prefix` (what `cubby
    /// backup --to` or `--backup-dir` named). A bucket's backup is
    /// downloaded into the data dir first, with the credentials of the
    /// AWS_* environment, and removed once restored.
    #[arg(long)]
    pub from: String,
    /// Which backup (default: the newest complete one).
    #[arg(long)]
    pub backup: Option<String>,
    /// The new box's data dir; it must hold no state.
    #[arg(long, default_value = "/var/lib/cubby", env = "CUBBY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Size of the loop pool made when the data dir is not on btrfs
    /// (default: as `cubby serve`).
    #[arg(long)]
    pub pool_size: Option<String>,
    /// Where proc is mounted.
    #[arg(long, default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// Where a bucket's backup is downloaded, under the new data dir.
const DOWNLOAD: &str = "restore-download";

pub fn run(args: RestoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let pool_size = crate::serve::pool_size_flag(args.pool_size.as_deref())?;
    let data_dir = std::path::absolute(&args.data_dir)?;
    let chain = |e: cubby_core::Error| anyhow::anyhow!(e.chain());
    let mut opts = RestoreOptions {
        from: PathBuf::new(),
        backup: args.backup,
        data_dir: data_dir.clone(),
        pool_size,
        proc_root: args.proc_root,
    };
    let btrfs = cubby_storage::LibBtrfs::default();
    let report = match cubby_core::backup::Target::parse(&args.from).map_err(chain)? {
        cubby_core::backup::Target::Dir(dir) => {
            opts.from = std::path::absolute(&dir)?;
            cubby_core::backup::restore(&btrfs, &opts).map_err(chain)?
        }
        cubby_core::backup::Target::Bucket(bucket) => {
            if data_dir.join("cubby.db").exists() {
                anyhow::bail!(
                    "{} already holds a box's state: restore into an empty data dir (or `cubby purge` this one first)",
                    data_dir.display()
                );
            }
            let into = data_dir.join(DOWNLOAD);
            let restored = download(&bucket, opts.backup.as_deref(), &into).and_then(|id| {
                opts.from = into.clone();
                opts.backup = Some(id);
                cubby_core::backup::restore(&btrfs, &opts).map_err(chain)
            });
            std::fs::remove_dir_all(&into).with_context(|| format!("removing {}", into.display()))?;
            restored?
        }
    };
    println!(
        "restored backup {} into {}: {} containers, {} layers",
        report.backup,
        opts.data_dir.display(),
        report.containers,
        report.layers
    );
    if !report.dropped.is_empty() {
        println!("left out (deleted while the backup was taken): {}", report.dropped.join(", "));
    }
    println!("start it with: cubby serve --data-dir {}", opts.data_dir.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Downloads backup `backup` (or the newest) of `bucket` into `into` (a
/// directory of ours: one left by a restore cut short goes first), and
/// returns its id.
fn download(bucket: &cubby_core::backup::Bucket, backup: Option<&str>, into: &Path) -> anyhow::Result<String> {
    match std::fs::remove_dir_all(into) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", into.display()));
        }
        _ => {}
    }
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let id = runtime.block_on(bucket.download(backup, into)).map_err(|e| anyhow::anyhow!(e.chain()))?;
    println!("downloaded backup {id} from {}", bucket.url());
    Ok(id)
}
