//! The real host subsystems (btrfs, mounts, runc, cgroupfs, netlink, nft)
//! of one daemon instance, as `serve` and `doctor` both use them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cubby_core::Host;
use cubby_core::inventory::Layout;

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
