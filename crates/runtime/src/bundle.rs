//! The OCI bundle of a container: `config.json` for the runtime.
//!
//! Isolation, as configured here:
//! - mount, pid, network (a namespace the daemon made and keeps), uts, ipc
//!   and cgroup namespaces; the hostname is the container's name;
//! - a user namespace (made with the network namespace, which it owns):
//!   uid 0 inside is an unprivileged uid on the host;
//! - cgroup limits on cpu, memory (swap disabled) and pids; the runtime
//!   maps them to cgroup v1 or v2;
//! - Docker's default capability set, `no_new_privs`;
//! - masked and read-only paths in `/proc` and `/sys`, as Docker does;
//! - `/ramdisk`, a size-capped tmpfs whose pages count toward the memory
//!   limit;
//! - Cubby's init and the files it and the resolver read, bind-mounted
//!   read-only from the host.

use std::path::{Path, PathBuf};

use cubby_model::Limits;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

/// Open files of a container's processes: soft and hard limit.
pub const NOFILE_SOFT: u64 = 1024;
pub const NOFILE_HARD: u64 = 524_288;

use crate::RuntimeError;
use crate::process::{EXIT_FILE_PATH, INIT_PATH, PROCESS_FILE_PATH};

/// Docker's default capabilities.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container (Docker's list).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write (Docker's list).
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// CFS period the CPU limit is expressed in.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Everything the bundle of one container needs from the daemon.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    /// Runtime id of the container.
    pub id: String,
    /// Hostname inside (the container's name).
    pub hostname: String,
    /// The mounted overlay that becomes `/`.
    pub rootfs: PathBuf,
    /// The network namespace the container joins.
    pub netns: PathBuf,
    /// Cgroup path, relative to each hierarchy (`/{prefix}/{id}`).
    pub cgroups_path: String,
    pub limits: Limits,
    /// Size cap of `/ramdisk`.
    pub ramdisk_bytes: u64,
    /// Host path of the static init binary.
    pub init_binary: PathBuf,
    /// Host path of `process.json`.
    pub process_file: PathBuf,
    /// Host path of the file init reports the exit status in (mounted
    /// read-write at `/.cubby/exit`).
    pub exit_file: PathBuf,
    /// Host paths of the files bind-mounted over `/etc/resolv.conf`,
    /// `/etc/hosts` and `/etc/hostname`.
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
    pub hostname_file: PathBuf,
    /// The syscall filter (Docker's default profile, see [`crate::seccomp`]).
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The user namespace to join (`None`: the host's, root is root).
    pub userns: Option<UserNamespaceSpec>,
}

/// A pinned user namespace and the id mapping it was made with (runc
/// wants the mapping even when it joins an existing namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespaceSpec {
    pub path: PathBuf,
    /// Host uid and gid of the container's 0.
    pub host_base: u32,
    pub size: u32,
}

/// The names (`CAP_CHOWN`, ...) of [`DEFAULT_CAPABILITIES`].
pub fn default_capability_names() -> Vec<String> {
    DEFAULT_CAPABILITIES
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)))
        .collect()
}

fn bind(source: &Path, destination: &str, writable: bool) -> Result<Mount, oci_spec::OciSpecError> {
    let mut options = vec!["rbind".to_string(), "nosuid".to_string(), "nodev".to_string()];
    options.push(if writable { "rw" } else { "ro" }.to_string());
    MountBuilder::default().destination(destination).typ("bind").source(source).options(options).build()
}

fn fs_mount(typ: &str, source: &str, destination: &str, options: &[&str]) -> Result<Mount, oci_spec::OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .build()
}

/// CFS quota (µs per [`CPU_PERIOD_US`]) and relative shares for `cpu` cores.
/// The core validates `cpu` (0.01 up to the host's cores), so the rounded
/// values are small and positive; the clamps keep a bad value harmless.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn cpu_quota_and_shares(cpu: f64) -> (i64, u64) {
    let cpu = if cpu.is_finite() { cpu.clamp(0.01, 1024.0) } else { 1.0 };
    let quota = (cpu * CPU_PERIOD_US as f64).round() as i64;
    let shares = ((cpu * 1024.0).round() as u64).clamp(2, 262_144);
    (quota, shares)
}

/// Builds the OCI spec of a container.
pub fn spec(b: &BundleSpec) -> Result<Spec, RuntimeError> {
    build(b).map_err(|source| RuntimeError::Spec { id: b.id.clone(), source })
}

fn build(b: &BundleSpec) -> Result<Spec, oci_spec::OciSpecError> {
    let caps: std::collections::HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    let capabilities =
        LinuxCapabilitiesBuilder::default().bounding(caps.clone()).effective(caps.clone()).permitted(caps).build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(vec![INIT_PATH.to_string()])
        .env(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()])
        .cwd("/")
        .capabilities(capabilities)
        .no_new_privileges(true)
        // Open files as a systemd service gets them (the daemon raised its
        // own): an app may raise its soft limit up to the hard one.
        .rlimits(vec![{
            // Never above the daemon's own hard limit: raising one needs a
            // privilege the container's user namespace does not have.
            let ceiling = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(NOFILE_HARD, |(_, hard)| hard);
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(NOFILE_SOFT.min(ceiling))
                .hard(NOFILE_HARD.min(ceiling))
                .build()?
        }])
        .build()?;

    let ramdisk = format!("size={}", b.ramdisk_bytes);
    let mounts = vec![
        fs_mount("proc", "proc", "/proc", &["nosuid", "noexec", "nodev"])?,
        fs_mount("tmpfs", "tmpfs", "/dev", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        fs_mount(
            "devpts",
            "devpts",
            "/dev/pts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        fs_mount("tmpfs", "shm", "/dev/shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
        fs_mount("mqueue", "mqueue", "/dev/mqueue", &["nosuid", "noexec", "nodev"])?,
        fs_mount("sysfs", "sysfs", "/sys", &["nosuid", "noexec", "nodev", "ro"])?,
        fs_mount("cgroup", "cgroup", "/sys/fs/cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"])?,
        fs_mount("tmpfs", "ramdisk", "/ramdisk", &["nosuid", "nodev", "mode=1777", &ramdisk])?,
        bind(&b.init_binary, INIT_PATH, false)?,
        bind(&b.process_file, PROCESS_FILE_PATH, false)?,
        bind(&b.exit_file, EXIT_FILE_PATH, true)?,
        bind(&b.resolv_conf, "/etc/resolv.conf", false)?,
        bind(&b.hosts, "/etc/hosts", false)?,
        bind(&b.hostname_file, "/etc/hostname", false)?,
    ];

    let memory = i64::try_from(b.limits.memory.0).unwrap_or(i64::MAX);
    let (quota, shares) = cpu_quota_and_shares(b.limits.cpu);
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?])
        // memory+swap equal to memory: no swap.
        .memory(LinuxMemoryBuilder::default().limit(memory).swap(memory).build()?)
        .cpu(LinuxCpuBuilder::default().quota(quota).period(CPU_PERIOD_US).shares(shares).build()?)
        .pids(LinuxPidsBuilder::default().limit(i64::from(b.limits.pids)).build()?)
        .build()?;

    let ns = |typ: LinuxNamespaceType| LinuxNamespaceBuilder::default().typ(typ).build();
    let mut namespaces = vec![
        ns(LinuxNamespaceType::Pid)?,
        LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).path(b.netns.clone()).build()?,
        ns(LinuxNamespaceType::Ipc)?,
        ns(LinuxNamespaceType::Uts)?,
        ns(LinuxNamespaceType::Mount)?,
        ns(LinuxNamespaceType::Cgroup)?,
    ];
    if let Some(user) = &b.userns {
        namespaces
            .push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::User).path(user.path.clone()).build()?);
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(&b.cgroups_path))
        .masked_paths(MASKED_PATHS.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY_PATHS.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
        .build()?;
    if let Some(filter) = &b.seccomp {
        linux.set_seccomp(Some(filter.clone()));
    }
    if let Some(user) = &b.userns {
        let map =
            LinuxIdMappingBuilder::default().container_id(0u32).host_id(user.host_base).size(user.size).build()?;
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
    }

    SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(&b.rootfs).readonly(false).build()?)
        .hostname(b.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
}

/// Writes `config.json` into `dir`.
pub fn write(dir: &Path, spec: &Spec) -> Result<(), RuntimeError> {
    let path = dir.join("config.json");
    let data = serde_json::to_vec(spec).expect("an OCI spec serialises");
    std::fs::write(&path, data).map_err(RuntimeError::io("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cubby_model::ByteSize;

    fn sample() -> BundleSpec {
        BundleSpec {
            id: "cabc".into(),
            hostname: "tenant-a".into(),
            rootfs: "/run/cubby/containers/cabc/rootfs".into(),
            netns: "/run/cubby/netns/cabc".into(),
            cgroups_path: "/cubby/cabc".into(),
            limits: Limits { cpu: 0.5, memory: ByteSize(256 << 20), pids: 128, disk: None },
            ramdisk_bytes: 64 << 20,
            init_binary: "/usr/lib/cubby/cubby-init".into(),
            process_file: "/run/cubby/containers/cabc/process.json".into(),
            exit_file: "/run/cubby/containers/cabc/exit".into(),
            resolv_conf: "/run/cubby/containers/cabc/resolv.conf".into(),
            hosts: "/run/cubby/containers/cabc/hosts".into(),
            hostname_file: "/run/cubby/containers/cabc/hostname".into(),
            seccomp: None,
            userns: Some(UserNamespaceSpec {
                path: "/run/cubby/userns/cabc".into(),
                host_base: 1_000_000,
                size: 65_536,
            }),
        }
    }

    #[test]
    fn root_inside_is_an_unprivileged_uid_outside() {
        let json = serde_json::to_value(spec(&sample()).unwrap()).unwrap();
        let user = json["linux"]["namespaces"].as_array().unwrap().iter().find(|n| n["type"] == "user").unwrap();
        assert_eq!(user["path"], "/run/cubby/userns/cabc");
        for maps in ["uidMappings", "gidMappings"] {
            assert_eq!(
                json["linux"][maps],
                serde_json::json!([{"containerID": 0, "hostID": 1_000_000, "size": 65_536}])
            );
        }
        let host_root = BundleSpec { userns: None, ..sample() };
        let json = serde_json::to_value(spec(&host_root).unwrap()).unwrap();
        assert!(json["linux"]["namespaces"].as_array().unwrap().iter().all(|n| n["type"] != "user"));
    }

    #[test]
    fn spec_isolates_and_limits() {
        let json = serde_json::to_value(spec(&sample()).unwrap()).unwrap();
        assert_eq!(json["hostname"], "tenant-a");
        assert_eq!(json["process"]["args"][0], INIT_PATH);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        let ns: Vec<&str> =
            json["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        for want in ["pid", "network", "ipc", "uts", "mount", "cgroup"] {
            assert!(ns.contains(&want), "{want} namespace missing");
        }
        let net = json["linux"]["namespaces"].as_array().unwrap().iter().find(|n| n["type"] == "network").unwrap();
        assert_eq!(net["path"], "/run/cubby/netns/cabc");
        let r = &json["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 256 << 20);
        assert_eq!(r["memory"]["swap"], 256 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 128);
        assert_eq!(json["linux"]["cgroupsPath"], "/cubby/cabc");
        let caps = json["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(caps.len(), 14);
        assert!(!caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(json["linux"]["maskedPaths"].as_array().unwrap().iter().any(|p| p == "/proc/kcore"));
    }

    #[test]
    fn ramdisk_is_capped_and_init_is_read_only() {
        let json = serde_json::to_value(spec(&sample()).unwrap()).unwrap();
        let mounts = json["mounts"].as_array().unwrap();
        let ramdisk = mounts.iter().find(|m| m["destination"] == "/ramdisk").unwrap();
        assert!(ramdisk["options"].as_array().unwrap().iter().any(|o| o == &format!("size={}", 64 << 20)));
        let init = mounts.iter().find(|m| m["destination"] == INIT_PATH).unwrap();
        assert!(init["options"].as_array().unwrap().iter().any(|o| o == "ro"));
    }
}
