//! Reading the mount table (`/proc/self/mountinfo`), taking the proc root
//! as a parameter so tests can point it at a fixture.

use std::path::{Path, PathBuf};

use crate::StorageError;

/// One line of mountinfo: where something is mounted and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("x"), 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: fs_type.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// The mounts of this process, read from `{proc_root}/self/mountinfo`.
pub fn read(proc_root: &Path) -> Result<Vec<MountEntry>, StorageError> {
    let path = proc_root.join("self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(StorageError::io("read", &path))?;
    Ok(parse(&text))
}

/// Whether something is mounted at `target`.
pub fn is_mount_point(proc_root: &Path, target: &Path) -> Result<bool, StorageError> {
    Ok(read(proc_root)?.iter().any(|m| m.mount_point == target))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
98 22 7:0 / /var/lib/cubby/pool rw,noatime shared:50 - btrfs /dev/loop0 rw,space_cache=v2
99 22 0:52 / /run/cubby/c/rootfs rw,relatime - overlay overlay rw,lowerdir=/a:/b
100 22 0:53 / /mnt/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_mount_points_types_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].mount_point, PathBuf::from("/var/lib/cubby/pool"));
        assert_eq!(m[1].fs_type, "btrfs");
        assert_eq!(m[1].source, "/dev/loop0");
        assert_eq!(m[2].fs_type, "overlay");
        assert_eq!(m[3].mount_point, PathBuf::from("/mnt/with space"));
    }

    #[test]
    fn reads_from_a_proc_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("self")).unwrap();
        std::fs::write(dir.path().join("self/mountinfo"), SAMPLE).unwrap();
        assert!(is_mount_point(dir.path(), Path::new("/var/lib/cubby/pool")).unwrap());
        assert!(!is_mount_point(dir.path(), Path::new("/var/lib/cubby")).unwrap());
    }
}
