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
}

impl ProcessFile {
    /// Writes the file atomically (write then rename), mode 0644.
    pub fn write(&self, path: &Path) -> Result<(), RuntimeError> {
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(self).expect("plain data serialises");
        std::fs::write(&tmp, data).map_err(RuntimeError::io("write", &tmp))?;
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
        };
        let path = dir.path().join("process.json");
        p.write(&path).unwrap();
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
