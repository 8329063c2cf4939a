//! `cubby purge`: removes every host resource one daemon instance made,
//! found by its prefix and directories, not by its database, so it works
//! even when the state is lost. Used to uninstall, and by the tests to
//! leave nothing behind.

use std::collections::HashSet;

use anyhow::{Context, bail};
use clap::Args;
use cubby_core::inventory::{Inventory, Layout, Owners};
use cubby_storage::Btrfs;

/// Flags of `cubby purge`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub instance: crate::host::InstanceArgs,
    /// Say yes: this deletes every container and all data of the instance.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: PurgeArgs) -> anyhow::Result<std::process::ExitCode> {
    if !args.yes {
        bail!(
            "purge deletes every container and all data of prefix `{}` in {}: pass --yes",
            args.instance.prefix,
            args.instance.data_dir.display()
        );
    }
    let layout = args.instance.layout()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(purge(&args.instance, &layout))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn purge(args: &crate::host::InstanceArgs, layout: &Layout) -> anyhow::Result<()> {
    let run_dir = layout.run_dir.clone();
    let mut problems = Vec::new();
    let mut note = |what: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("{what}: {e:#}"));
        }
    };

    // Everything the inventory lists goes: when the instance goes, no
    // record owns anything.
    let host = args.host(layout)?;
    let nothing = Owners { layers: Some(HashSet::new()), ..Owners::default() };
    match Inventory::take(layout, &host).await {
        Ok(inventory) => {
            for orphan in inventory.orphans(layout, &nothing) {
                let subject = orphan.subject(layout);
                note(&subject, orphan.remove(layout, &host).await.map_err(|e| anyhow::anyhow!(e.chain())));
            }
        }
        Err(e) => note("listing the instance's resources", Err(anyhow::anyhow!(e.chain()))),
    }

    // What the inventory does not list: the instance's shared pieces, and
    // whatever else is mounted in its run dir or made in its pool.
    for target in host.mounts.mounts_under(&run_dir).unwrap_or_default() {
        note("unmount", host.mounts.unmount(&target).map_err(Into::into));
    }
    note("remove bridge", host.netlink.delete_bridge(&layout.bridge()).await.map_err(Into::into));
    note("remove firewall table", host.nft.delete_table(&args.prefix).await.map_err(Into::into));
    note("remove cgroups", host.cgroups.remove(&layout.cgroup_parent()).map_err(Into::into));

    let pool = args.data_dir.join("pool");
    let btrfs = cubby_storage::LibBtrfs::default();
    if pool.exists() && btrfs.is_btrfs(&pool).unwrap_or(false) {
        for sub in btrfs.subvolumes_under(&pool).unwrap_or_default() {
            note("delete subvolume", btrfs.delete_subvolume(&sub).map_err(Into::into));
        }
    }
    note("unmount pool", cubby_storage::pool::unmount_pool(&args.proc_root, &args.data_dir).map_err(Into::into));

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
