//! The real host subsystems (btrfs, mounts, runc, cgroupfs, netlink, nft)
//! of one daemon instance, as `serve` and `doctor` both use them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cubby_core::Host;

/// The kernel-facing implementations for a daemon whose runtime files are
/// in `run_dir`.
pub fn real(proc_root: &Path, runtime: &Path, run_dir: &Path, cgroup_root: &Path) -> anyhow::Result<Host> {
    Ok(Host {
        btrfs: Arc::new(cubby_storage::LibBtrfs::default()),
        mounts: Arc::new(cubby_storage::KernelMounts::new(proc_root)),
        // Containers are created from a mount namespace without the
        // daemon's namespace pins and roots (see `cubby_runtime::mountns`).
        runtime: Arc::new(
            cubby_runtime::Runc::new(runtime, run_dir.join("runc"))
                .with_base_namespace(proc_root, cubby_core::containers::tenant_run_dirs(run_dir).to_vec()),
        ),
        cgroups: Arc::new(cubby_runtime::CgroupFs::detect(cgroup_root).context("reading cgroupfs")?),
        netlink: Arc::new(cubby_network::RtNetlink::new().context("opening netlink")?),
        nft: Arc::new(cubby_network::NftCli::new()),
    })
}
