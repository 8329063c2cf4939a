//! Running containers: everything between "here is a root filesystem" and
//! "a process tree runs isolated in it".
//!
//! - [`bundle`]: the OCI bundle (`config.json`) of a container, written with
//!   the `oci-spec` crate: namespaces, cgroup limits, capabilities, masked
//!   paths, mounts.
//! - [`process`]: `process.json`, which tells Cubby's init (PID 1 of every
//!   container) what to run.
//! - [`oci`]: the OCI runtime (runc by default), behind [`OciRuntime`].
//! - [`cgroups`]: reading and cleaning cgroupfs (v1, hybrid and v2), behind
//!   [`Cgroups`], rooted at a path so tests can use a temp dir.
//! - [`logs`]: each container's output: a FIFO it writes, collected into a
//!   capped log that only the daemon writes.
//! - [`mountns`]: the private mount namespaces containers are created
//!   from, so the host's mount table does not grow with each tenant.

pub mod bundle;
pub mod cgroups;
mod error;
pub mod logs;
pub mod mountns;
pub mod oci;
pub mod pidfd;
pub mod process;
pub mod seccomp;

pub use cgroups::{CgroupFs, Cgroups, FakeCgroups};
pub use error::RuntimeError;
pub use mountns::{BaseNamespace, LazyBase, PrivateMount};
pub use oci::{ContainerState, ExecOutput, ExecSpec, FakeRuntime, OciRuntime, Runc, RuntimeStatus};
