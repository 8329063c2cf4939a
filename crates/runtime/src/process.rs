//! `process.json`: what Cubby's init runs as the container's workload.
//!
//! The OCI runtime always starts `/.cubby/init`; init reads this file when
//! the container starts, so a container can be created before its command
//! and env are known. The schema is shared with the `cubby-init` crate.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// Where the host's init binary appears inside every container.
pub const INIT_PATH: &str = "/.cubby/init";
/// Where `process.json` appears inside every container.
pub const PROCESS_FILE_PATH: &str = "/.cubby/process.json";
/// Where init writes its workload's exit status, inside every container.
pub const EXIT_FILE_PATH: &str = "/.cubby/exit";

/// The workload init starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFile {
    /// Program and arguments; a bare program name is looked up in `PATH`.
    pub args: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Where init writes the workload's exit status (decimal, then a
    /// newline) before it exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_file: Option<String>,
}

impl ProcessFile {
    /// Writes the file atomically (write then rename), mode 0600 and
    /// owned by `owner` (the host uid and gid of the container's root,
    /// when it has a user namespace): its env may hold the tenant's
    /// secrets, so only the container's init (and host root) reads it.
    pub fn write(&self, path: &Path, owner: Option<(u32, u32)>) -> Result<(), RuntimeError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(self).expect("plain data serialises");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(RuntimeError::io("write", &tmp))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(RuntimeError::io("chown", &tmp))?;
        }
        file.write_all(&data).map_err(RuntimeError::io("write", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(RuntimeError::io("rename", path))
    }
}

/// Parses an image's `user` field (`uid[:gid]`, numeric) into ids.
pub fn parse_user(user: Option<&str>) -> (u32, u32) {
    let Some(user) = user else { return (0, 0) };
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let uid = u.parse().unwrap_or(0);
    let gid = g.parse().unwrap_or(uid);
    (uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = ProcessFile {
            args: vec!["sh".into()],
            env: vec!["A=1".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            exit_file: None,
        };
        let path = dir.path().join("process.json");
        p.write(&path, None).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "the env may hold secrets");
        let back: ProcessFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn users() {
        assert_eq!(parse_user(None), (0, 0));
        assert_eq!(parse_user(Some("1000")), (1000, 1000));
        assert_eq!(parse_user(Some("1000:50")), (1000, 50));
    }
}
