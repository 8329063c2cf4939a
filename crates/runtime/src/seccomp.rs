//! Seccomp: turning a Docker-format profile (Docker's default, as packaged
//! by containers/common and shipped by Debian's
//! `golang-github-containers-common` at `/usr/share/containers/seccomp.json`)
//! into the OCI `linux.seccomp` of a container, with Docker's own rules for
//! containers without CAP_SYS_ADMIN put back (see [`SYS_ADMIN_ONLY`]).
//!
//! A Docker-format entry may apply only to some architectures, only when
//! the container holds (or lacks) some capabilities, or only from a kernel
//! version on; the OCI format has no such conditions, so they are resolved
//! here for this host and the container's capability set, as Docker and
//! Podman do.

use std::path::{Path, PathBuf};

pub use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Value, json};

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("could not read the seccomp profile {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the seccomp profile {} is not a Docker-format profile", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: ProfileError,
    },
}

/// What is wrong with a profile's content.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("it is not JSON")]
    Json(#[source] serde_json::Error),
    #[error("it has no defaultAction")]
    NoDefaultAction,
    #[error("it has no syscalls list")]
    NoSyscalls,
    #[error("it does not convert to an OCI seccomp section")]
    NotOci(#[source] serde_json::Error),
}

/// What the profile's conditions are checked against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Go-style architecture name (`amd64`, `arm64`).
    pub arch: String,
    /// The container's capabilities (`CAP_CHOWN`, ...).
    pub capabilities: Vec<String>,
    /// The host kernel (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// This host, for a container holding `capabilities`.
    pub fn host(capabilities: Vec<String>) -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string();
        let release =
            nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Self { arch, capabilities, kernel: parse_kernel(&release).unwrap_or((0, 0)) }
    }

    fn scmp_arch(&self) -> &'static str {
        match self.arch.as_str() {
            "amd64" => "SCMP_ARCH_X86_64",
            "arm64" => "SCMP_ARCH_AARCH64",
            "386" => "SCMP_ARCH_X86",
            "arm" => "SCMP_ARCH_ARM",
            "ppc64le" => "SCMP_ARCH_PPC64LE",
            "s390x" => "SCMP_ARCH_S390X",
            _ => "SCMP_ARCH_NATIVE",
        }
    }
}

fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Whether an entry's `includes`/`excludes` let it apply to `t`.
fn applies(entry: &Value, t: &Target) -> bool {
    let inc = &entry["includes"];
    let exc = &entry["excludes"];
    let arches = strings(&inc["arches"]);
    if !arches.is_empty() && !arches.contains(&t.arch.as_str()) {
        return false;
    }
    if strings(&exc["arches"]).contains(&t.arch.as_str()) {
        return false;
    }
    if !strings(&inc["caps"]).iter().all(|c| t.capabilities.iter().any(|have| have == c)) {
        return false;
    }
    if strings(&exc["caps"]).iter().any(|c| t.capabilities.iter().any(|have| have == c)) {
        return false;
    }
    if let Some(min) = inc["minKernel"].as_str().and_then(parse_kernel)
        && t.kernel < min
    {
        return false;
    }
    true
}

/// Syscalls Docker's own default profile allows only with CAP_SYS_ADMIN
/// (mounts, namespaces, the kernel log), and that the containers/common
/// packaging allows to everyone (it counts on capabilities and user
/// namespaces instead). Cubby never grants CAP_SYS_ADMIN, so they go.
const SYS_ADMIN_ONLY: [&str; 16] = [
    "mount",
    "umount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "syslog",
    "name_to_handle_at",
    "clone3",
];

/// `clone` flags that make new namespaces (NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET): `clone` is allowed only without them.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Docker's semantics for a container without CAP_SYS_ADMIN: the
/// syscalls above are refused, `clone` may not make namespaces, and
/// `clone3` (whose flags seccomp cannot inspect) answers ENOSYS so libc
/// falls back to `clone`.
fn without_sys_admin(syscalls: &mut Vec<Value>, t: &Target) {
    if t.capabilities.iter().any(|c| c == "CAP_SYS_ADMIN") {
        return;
    }
    for call in syscalls.iter_mut() {
        if call["action"] == "SCMP_ACT_ALLOW"
            && let Some(names) = call["names"].as_array_mut()
        {
            names.retain(|n| n.as_str().is_none_or(|n| !SYS_ADMIN_ONLY.contains(&n) && n != "clone"));
        }
    }
    syscalls.retain(|c| c["names"].as_array().is_some_and(|n| !n.is_empty()));
    syscalls.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }));
    syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
}

/// Converts a Docker-format profile for `t`.
pub fn from_docker(profile: &Value, t: &Target) -> Result<LinuxSeccomp, ProfileError> {
    let default_action = profile["defaultAction"].as_str().ok_or(ProfileError::NoDefaultAction)?;
    let native = t.scmp_arch();
    let mut architectures = vec![native.to_string()];
    if let Some(entry) =
        profile["archMap"].as_array().and_then(|m| m.iter().find(|e| e["architecture"].as_str() == Some(native)))
    {
        architectures.extend(strings(&entry["subArchitectures"]).into_iter().map(str::to_string));
    }
    let mut syscalls = Vec::new();
    for entry in profile["syscalls"].as_array().ok_or(ProfileError::NoSyscalls)? {
        if !applies(entry, t) {
            continue;
        }
        let names = strings(&entry["names"]);
        if names.is_empty() {
            continue;
        }
        let mut call = json!({"names": names, "action": entry["action"]});
        if let Some(errno) = entry["errnoRet"].as_u64() {
            call["errnoRet"] = json!(errno);
        }
        if let Some(args) = entry["args"].as_array().filter(|a| !a.is_empty()) {
            call["args"] = json!(args);
        }
        syscalls.push(call);
    }
    without_sys_admin(&mut syscalls, t);
    let mut oci = json!({"defaultAction": default_action, "architectures": architectures, "syscalls": syscalls});
    if let Some(errno) = profile["defaultErrnoRet"].as_u64() {
        oci["defaultErrnoRet"] = json!(errno);
    }
    serde_json::from_value(oci).map_err(ProfileError::NotOci)
}

/// Reads and converts the profile at `path`.
pub fn load(path: &Path, t: &Target) -> Result<LinuxSeccomp, SeccompError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read { path: path.into(), source })?;
    let format = |source| SeccompError::Format { path: path.into(), source };
    let profile: Value = serde_json::from_str(&text).map_err(|e| format(ProfileError::Json(e)))?;
    from_docker(&profile, t).map_err(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { arch: "amd64".into(), capabilities: vec!["CAP_CHOWN".into()], kernel: (6, 1) }
    }

    #[test]
    fn conditions_are_resolved_for_the_target() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_CHOWN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64le"]}},
                {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.2"}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ]
        });
        let s = from_docker(&profile, &target()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
        let names: Vec<String> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(names, ["read", "write", "chown", "arch_prctl", "personality", "ptrace", "clone", "clone3"]);
        assert_eq!(v["syscalls"][3]["args"][0]["op"], "SCMP_CMP_EQ");
        assert_eq!(v["syscalls"][4]["errnoRet"], 38);
        assert_eq!(v["syscalls"][5]["args"][0]["value"], 0x7E02_0000u64, "clone without namespace flags only");
    }

    #[test]
    fn the_system_profile_converts_when_installed() {
        let path = Path::new("/usr/share/containers/seccomp.json");
        if !path.exists() {
            return;
        }
        let s = load(path, &Target::host(crate::bundle::default_capability_names())).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        let allowed: Vec<&str> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|c| c["names"].as_array().unwrap().iter().filter_map(Value::as_str))
            .collect();
        assert!(allowed.contains(&"read") && allowed.contains(&"clone") && allowed.contains(&"execve"));
        for blocked in ["mount", "unshare", "setns", "kexec_load", "init_module", "clone3"] {
            assert!(!allowed.contains(&blocked), "{blocked} must stay blocked");
        }
    }

    #[test]
    fn kernels_parse() {
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
