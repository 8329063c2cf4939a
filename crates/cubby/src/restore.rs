//! `cubby restore`: rebuilds a box from a backup directory into an empty
//! data dir, with no daemon running on it. `cubby serve` on that data dir
//! then starts every tenant again, with the backup's ids and URLs.

use std::path::PathBuf;

use clap::Args;
use cubby_core::backup::RestoreOptions;

/// Flags of `cubby restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The directory of backups (what `cubby backup --to` or
    /// `--backup-dir` named).
    #[arg(long)]
    pub from: PathBuf,
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

pub fn run(args: RestoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let pool_size = crate::serve::pool_size_flag(args.pool_size.as_deref())?;
    let opts = RestoreOptions {
        from: std::path::absolute(&args.from)?,
        backup: args.backup,
        data_dir: std::path::absolute(&args.data_dir)?,
        pool_size,
        proc_root: args.proc_root,
    };
    let btrfs = cubby_storage::LibBtrfs::default();
    let report = cubby_core::backup::restore(&btrfs, &opts).map_err(|e| anyhow::anyhow!(e.chain()))?;
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
