//! The built-in `minimal` image: the host's static busybox (Debian's
//! busybox-static), with a symlink per applet, Cubby's demo web app as
//! the default command, and `cubby-fetch`, an HTTP client whose exit code
//! tells a refused connection from a timeout.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use cubby_model::ImageConfig;
use sha2::{Digest, Sha256};

use crate::StorageError;

/// The name of the built-in image.
pub const NAME: &str = "minimal";

/// Where the demo app lives inside the image.
pub const DEMO_PATH: &str = "/usr/local/bin/cubby-demo";
/// Where the HTTP client lives inside the image (busybox's `wget -T`
/// crashes in Debian 12's static build).
pub const FETCH_PATH: &str = "/usr/local/bin/cubby-fetch";

/// Host files the image is made from.
#[derive(Debug, Clone)]
pub struct MinimalSources {
    /// A statically linked busybox.
    pub busybox: PathBuf,
    /// The statically linked demo app.
    pub demo: PathBuf,
    /// The statically linked HTTP client.
    pub fetch: PathBuf,
}

/// The defaults of containers made from `minimal`.
pub fn config() -> ImageConfig {
    ImageConfig {
        command: vec![DEMO_PATH.to_string()],
        env: BTreeMap::from([(
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        )]),
        port: Some(8080),
        workdir: Some("/".to_string()),
        user: None,
    }
}

/// A digest of the sources, to tell whether a stored image was built from
/// the same binaries.
pub fn digest(sources: &MinimalSources) -> Result<String, StorageError> {
    let mut hasher = Sha256::new();
    for path in [&sources.busybox, &sources.demo, &sources.fetch] {
        let mut file = std::fs::File::open(path).map_err(StorageError::io("open", path))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(StorageError::io("read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn write(root: &Path, rel: &str, contents: &str, mode: u32) -> Result<(), StorageError> {
    let path = root.join(rel);
    std::fs::write(&path, contents).map_err(StorageError::io("write", &path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(StorageError::io("chmod", &path))
}

fn copy_exec(from: &Path, to: &Path) -> Result<(), StorageError> {
    if !from.is_file() {
        return Err(StorageError::Missing { what: "image source binary", path: from.to_path_buf() });
    }
    #[allow(clippy::disallowed_methods, reason = "a host binary into a new image, once")]
    std::fs::copy(from, to).map_err(StorageError::io("copy", to))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).map_err(StorageError::io("chmod", to))
}

/// Fills `root` (an empty directory) with the minimal image.
pub fn populate(root: &Path, sources: &MinimalSources) -> Result<(), StorageError> {
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "root",
        "data",
        "ramdisk",
        "var/tmp",
        "home",
    ] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).map_err(StorageError::io("create", &path))?;
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(StorageError::io("create", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).map_err(StorageError::io("chmod", &tmp))?;

    copy_exec(&sources.busybox, &root.join("bin/busybox"))?;
    let list = Command::new(&sources.busybox).arg("--list-full").output().map_err(|source| StorageError::Spawn {
        command: format!("{} --list-full", sources.busybox.display()),
        source,
    })?;
    if !list.status.success() {
        return Err(StorageError::Command {
            command: format!("{} --list-full", sources.busybox.display()),
            status: list.status.to_string(),
            stderr: String::from_utf8_lossy(&list.stderr).into_owned(),
        });
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(StorageError::io("create", parent))?;
        }
        if link.symlink_metadata().is_err() {
            symlink("/bin/busybox", &link).map_err(StorageError::io("link applet", &link))?;
        }
    }

    copy_exec(&sources.demo, &root.join(DEMO_PATH.trim_start_matches('/')))?;
    copy_exec(&sources.fetch, &root.join(FETCH_PATH.trim_start_matches('/')))?;
    write(
        root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    )?;
    write(root, "etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)?;
    write(
        root,
        "etc/os-release",
        "NAME=\"Cubby minimal\"\nID=cubby-minimal\nPRETTY_NAME=\"Cubby minimal (busybox)\"\n",
        0o644,
    )?;
    // Bind-mount targets, so the runtime need not create them in the
    // tenant's upper layer.
    write(root, "etc/hostname", "", 0o644)?;
    write(root, "etc/hosts", "", 0o644)?;
    write(root, "etc/resolv.conf", "", 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_serves_the_demo_on_8080() {
        let c = config();
        assert_eq!(c.port, Some(8080));
        assert_eq!(c.command, vec![DEMO_PATH.to_string()]);
    }

    #[test]
    fn missing_sources_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let sources = MinimalSources {
            busybox: dir.path().join("nope"),
            demo: dir.path().join("nope2"),
            fetch: dir.path().join("nope3"),
        };
        let err = populate(dir.path(), &sources).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
