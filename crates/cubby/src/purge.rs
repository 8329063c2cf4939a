//! `cubby purge`: removes every host resource one daemon instance made,
//! found by its prefix and directories, not by its database, so it works
//! even when the state is lost. Used to uninstall, and by the tests to
//! leave nothing behind.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use cubby_network::{Netlink, Nftables, ipam};
use cubby_runtime::{Cgroups, OciRuntime};
use cubby_storage::{Btrfs, Mounts};

/// Flags of `cubby purge`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// The daemon's data dir.
    #[arg(long, default_value = "/var/lib/cubby", env = "CUBBY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The daemon's prefix.
    #[arg(long, default_value = "cubby")]
    pub prefix: String,
    /// The daemon's runtime files (default /run/<prefix>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// OCI runtime binary.
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
    /// Where cgroupfs is mounted.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Say yes: this deletes every container and all data of the instance.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: PurgeArgs) -> anyhow::Result<std::process::ExitCode> {
    if !args.yes {
        bail!(
            "purge deletes every container and all data of prefix `{}` in {}: pass --yes",
            args.prefix,
            args.data_dir.display()
        );
    }
    cubby_core::Config::check_prefix(&args.prefix).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(purge(args))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let run_dir = args.run_dir.clone().unwrap_or_else(|| PathBuf::from(format!("/run/{}", args.prefix)));
    let mut problems = Vec::new();
    let mut note = |what: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("{what}: {e:#}"));
        }
    };

    let runc = cubby_runtime::Runc::new(&args.runtime, run_dir.join("runc"));
    if run_dir.join("runc").exists() {
        match runc.list().await {
            Ok(list) => {
                for c in list {
                    note("runtime container", runc.delete(&c.id, true).await.map_err(Into::into));
                }
            }
            Err(e) => note("runtime list", Err(e.into())),
        }
    }

    let mounts = cubby_storage::KernelMounts::new("/proc");
    for target in mounts.mounts_under(&run_dir).unwrap_or_default() {
        note("unmount", mounts.unmount(&target).map_err(Into::into));
    }

    let netlink = cubby_network::RtNetlink::new().context("opening netlink")?;
    for link in netlink.links_with_prefix(&format!("{}-", args.prefix)).await.unwrap_or_default() {
        note("remove link", netlink.detach(&link).await.map_err(Into::into));
    }
    note("remove bridge", netlink.delete_bridge(&ipam::bridge_name(&args.prefix)).await.map_err(Into::into));
    note("remove firewall table", cubby_network::NftCli::new().delete_table(&args.prefix).await.map_err(Into::into));

    if let Ok(cgroups) = cubby_runtime::CgroupFs::detect(&args.cgroup_root) {
        note("remove cgroups", cgroups.remove(&format!("/{}", args.prefix)).map_err(Into::into));
    }

    let pool = args.data_dir.join("pool");
    let btrfs = cubby_storage::LibBtrfs::default();
    if pool.exists() && btrfs.is_btrfs(&pool).unwrap_or(false) {
        for sub in btrfs.subvolumes_under(&pool).unwrap_or_default() {
            note("delete subvolume", btrfs.delete_subvolume(&sub).map_err(Into::into));
        }
    }
    note(
        "unmount pool",
        cubby_storage::pool::unmount_pool(std::path::Path::new("/proc"), &args.data_dir).map_err(Into::into),
    );

    for dir in [&run_dir, &args.data_dir] {
        if dir.exists() {
            note(
                "remove directory",
                std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display())),
            );
        }
    }
    if problems.is_empty() { Ok(()) } else { bail!("purge left something behind:\n  {}", problems.join("\n  ")) }
}
