//! Shared steps of the end-to-end tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use cubby_client::Client;
use cubby_model::{Container, CreateContainer, CreateProject, Project};
use cubby_testkit::Daemon;

pub const BIN: &str = env!("CARGO_BIN_EXE_cubby");

/// Shell that turns a `minimal` container's app into one that exits 3 at
/// once: a release that never becomes ready.
pub const BREAK_THE_APP: &str = "rm /usr/local/bin/cubby-demo && printf '#!/bin/sh\\nexit 3\\n' > /usr/local/bin/cubby-demo \
     && chmod 755 /usr/local/bin/cubby-demo";

/// Starts a daemon, or returns `None` when the test cannot run (not root,
/// outside CI: `require_root` prints why).
pub fn daemon(test: &str) -> Option<Daemon> {
    cubby_testkit::require_root(test).then(|| Daemon::start(BIN))
}

pub fn project(client: &Client, name: &str) -> Project {
    client
        .create_project(&CreateProject {
            name: name.into(),
            default_access: Some(cubby_model::AccessMode::Public),
            ..Default::default()
        })
        .expect("create project")
}

/// The request for a `minimal` container with `GREETING` set.
pub fn create_req(name: &str, greeting: &str) -> CreateContainer {
    CreateContainer {
        name: name.into(),
        image: Some("minimal".into()),
        environment_vars: BTreeMap::from([("GREETING".into(), greeting.into())]),
        ..Default::default()
    }
}

pub fn container(client: &Client, project: &Project, name: &str, greeting: &str) -> Container {
    client.create_container(project.id.as_str(), &create_req(name, greeting)).expect("create container")
}

/// Runs `sh -c script` in a container; returns (exit code, stdout, stderr).
pub fn sh(client: &Client, id: &str, script: &str) -> (i32, String, String) {
    let out = client.exec_args(id, &["sh", "-c", script]).expect("exec");
    (out.exit_code, out.stdout, out.stderr)
}

/// The host pid of a container's init, from the runtime.
pub fn init_pid(d: &Daemon, id: &str) -> Option<u32> {
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(d.run_dir.join("runc"))
        .args(["state", id])
        .output()
        .expect("runc state");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    (v["status"] == "running").then(|| v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())).flatten()
}

/// Runs `cubby doctor` on `d` with `extra` flags; returns its exit code and
/// what it printed.
pub fn doctor(d: &Daemon, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(["doctor", "--prefix", &d.prefix, "--data-dir"])
        .arg(&d.data_dir)
        .arg("--run-dir")
        .arg(&d.run_dir)
        .args(extra)
        .output()
        .expect("run cubby doctor");
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// A root filesystem tarball being built: static busybox with `/bin/sh`,
/// then whatever a test adds, every entry owned by root with time 0.
pub struct Rootfs(tar::Builder<Vec<u8>>);

impl Rootfs {
    /// `bin/busybox` (Debian's busybox-static) and `bin/sh` linking to it.
    pub fn busybox() -> Self {
        let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
        let mut link = Self::header(tar::EntryType::Symlink, 0, 0o777);
        let mut b = Self(tar::Builder::new(Vec::new())).file("bin/busybox", &busybox, 0o755);
        b.0.append_link(&mut link, "bin/sh", "busybox").unwrap();
        b
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, mode);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    /// The tar bytes (uncompressed).
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}
