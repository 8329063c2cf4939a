//! The real host subsystems (btrfs, mounts, runc, cgroupfs, netlink, nft)
//! of one daemon instance, as `serve` and `doctor` both use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use cubby_core::Host;
use cubby_core::inventory::Layout;

/// Which daemon instance a command works on, and where the host's pieces
/// are (the flags `doctor` and `purge` share).
#[derive(Debug, Clone, Args)]
pub struct InstanceArgs {
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
    /// Where proc is mounted.
    #[arg(long, default_value = "/proc")]
    pub proc_root: PathBuf,
}

impl InstanceArgs {
    /// The instance's layout, its prefix checked.
    pub fn layout(&self) -> anyhow::Result<Layout> {
        cubby_core::Config::check_prefix(&self.prefix)?;
        Ok(Layout::new(&self.prefix, self.data_dir.clone(), self.run_dir.clone()))
    }

    /// The real host subsystems for `layout`.
    pub fn host(&self, layout: &Layout) -> anyhow::Result<Host> {
        real(&self.proc_root, &self.runtime, layout, &self.cgroup_root)
    }
}

/// The kernel-facing implementations for the daemon instance `layout`.
pub fn real(proc_root: &Path, runtime: &Path, layout: &Layout, cgroup_root: &Path) -> anyhow::Result<Host> {
    Ok(Host {
        btrfs: Arc::new(cubby_storage::LibBtrfs::default()),
        mounts: Arc::new(cubby_storage::KernelMounts::new(proc_root)),
        // Containers are created from a mount namespace without the
        // daemon's namespace pins and roots (see `cubby_runtime::mountns`).
        runtime: Arc::new(
            cubby_runtime::Runc::new(runtime, layout.runtime_root())
                .with_base_namespace(proc_root, layout.tenant_run_dirs().to_vec()),
        ),
        cgroups: Arc::new(cubby_runtime::CgroupFs::detect(cgroup_root).context("reading cgroupfs")?),
        netlink: Arc::new(cubby_network::RtNetlink::new().context("opening netlink")?),
        nft: Arc::new(cubby_network::NftCli::new()),
    })
}
