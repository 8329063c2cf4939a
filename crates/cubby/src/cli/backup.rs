//! `cubby backup`: asks the daemon for a backup of the whole box.

use clap::Args;
use cubby_model::CreateBackup;

use super::Connection;
use super::output::print_one;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory on the daemon's host that holds the backups, or
    /// `s3://bucket/prefix` (the daemon's AWS_* environment has the
    /// credentials); default: the daemon's --backup-dir. Incremental
    /// against the newest there.
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub c: Connection,
}

pub fn run(a: BackupArgs) -> anyhow::Result<std::process::ExitCode> {
    let to = match a.to {
        // The daemon resolves nothing relative to the CLI's directory.
        Some(url) if url.contains("://") => Some(url),
        Some(dir) => Some(std::path::absolute(&dir)?.display().to_string()),
        None => None,
    };
    let backup = a.c.client()?.backup(&CreateBackup { to })?;
    print_one(a.c.json, &backup);
    Ok(std::process::ExitCode::SUCCESS)
}
