//! Round trips of hostile-named trees, and archives that are refused (each
//! beside the same archive made the honest way, which is accepted).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn ok(_: &[u8]) -> Result<(), String> {
    Ok(())
}

const LIMITS: ReadLimits = ReadLimits { max_bytes: 1 << 30, max_entries: 100_000 };

fn hostile_tree(root: &Path) {
    std::fs::create_dir_all(root.join("data/deep").join("d".repeat(200)).join("e".repeat(200))).unwrap();
    std::fs::write(root.join("data/app.db"), b"SQLite format 3\0 tenant bytes").unwrap();
    std::fs::write(root.join("data/line\nbreak"), b"newline in a name").unwrap();
    std::fs::write(root.join("data/-rf --no-preserve-root"), b"dash").unwrap();
    std::fs::write(root.join("data/ünïcødé ☃"), b"unicode").unwrap();
    std::fs::write(root.join("data").join(OsStr::from_bytes(b"not-utf8-\xff\xfe")), b"bytes").unwrap();
    std::fs::write(root.join("data").join("n".repeat(255)), b"longest name").unwrap();
    std::fs::write(
        root.join("data/deep").join("d".repeat(200)).join("e".repeat(200)).join("f".repeat(200)),
        vec![7u8; 300_000],
    )
    .unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", root.join("data/escape")).unwrap();
    std::os::unix::fs::symlink("x".repeat(300), root.join("data/long-target")).unwrap();
    std::fs::write(root.join("data/secret"), b"0600").unwrap();
    std::fs::set_permissions(root.join("data/secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(root.join("data/deep"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

fn export(root: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, br#"{"name":"web"}"#, root, "rootfs", IdShift::NONE).unwrap();
    out
}

/// Every path under `root` with its kind, mode and content (or target).
fn listing(root: &Path) -> Vec<(Vec<u8>, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let content = if meta.is_symlink() {
                std::fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec()
            } else if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                stack.push(path.clone());
                Vec::new()
            };
            out.push((rel, meta.mode(), content));
        }
    }
    out.sort();
    out
}

#[test]
fn a_hostile_named_tree_round_trips_byte_for_byte() {
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    hostile_tree(src.path());
    let bytes = export(src.path());
    let (header, manifest) = read(bytes.as_slice(), dst.path(), "rootfs", IdShift::NONE, LIMITS, ok).unwrap();
    assert_eq!(header, br#"{"name":"web"}"#);
    assert_eq!(manifest.prefix, "rootfs");
    assert_eq!(listing(src.path()), listing(dst.path()));
    // The symlink is kept as a link, never followed while unpacking.
    assert_eq!(std::fs::read_link(dst.path().join("data/escape")).unwrap(), Path::new("../../../../etc/passwd"));
    assert!(manifest.entries.iter().any(|e| e.path_hex.is_some()), "a non-UTF-8 name is kept as bytes");
}

#[test]
fn owners_are_stored_as_the_tenant_sees_them() {
    let shift = IdShift { host_base: 1_000_000, size: 65_536 };
    assert_eq!(shift.to_tenant(1_000_000), 0);
    assert_eq!(shift.to_tenant(1_001_000), 1000);
    assert_eq!(shift.to_tenant(0), 65_534, "a host id outside the range is nobody");
    assert_eq!(shift.to_host(1000), 1_001_000);
    assert_eq!(shift.to_host(70_000), 1_065_534);
    assert_eq!(IdShift::NONE.to_host(1000), 1000);
}

/// The decompressed tar of `bytes`, changed by `edit`, compressed again.
fn edited(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut tar = zstd::decode_all(bytes).unwrap();
    edit(&mut tar);
    zstd::encode_all(tar.as_slice(), 3).unwrap()
}

#[test]
fn a_changed_byte_is_caught_by_the_manifest_and_the_honest_archive_is_not() {
    let src = tempfile::tempdir().unwrap();
    hostile_tree(src.path());
    let bytes = export(src.path());
    read(bytes.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, LIMITS, ok)
        .expect("the control: the archive as written is accepted");
    let tampered = edited(&bytes, |tar| {
        let at = tar.windows(9).position(|w| w == b"tenant by").expect("the file's content");
        tar[at] = b'T';
    });
    let err = read(tampered.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, LIMITS, ok)
        .unwrap_err();
    assert!(err.to_string().contains("app.db") && err.to_string().contains("manifest"), "{err}");
    let cut = &bytes[..bytes.len() / 2];
    assert!(read(cut, tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, LIMITS, ok).is_err());
}

/// An archive of hand-made members: `(path, type, content or target)`.
fn crafted(members: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        // Names written raw: the builder itself refuses `..`.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        if *kind == tar::EntryType::Symlink {
            gnu.linkname[..data.len()].copy_from_slice(data);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
    }
    zstd::encode_all(b.into_inner().unwrap().as_slice(), 3).unwrap()
}

#[test]
fn paths_that_leave_the_tree_or_go_through_links_are_refused() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    let header = (HEADER, Regular, &b"{}"[..]);
    // The control: the same shape without the trick gets past every
    // entry and stops only at the missing manifest.
    let honest =
        crafted(&[header, ("rootfs", Directory, b""), ("rootfs/dir", Directory, b""), ("rootfs/dir/f", Regular, b"x")]);
    let err =
        read(honest.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, LIMITS, ok).unwrap_err();
    assert!(err.to_string().contains(MANIFEST), "{err}: {:?}", std::error::Error::source(&err));

    let through_link = crafted(&[
        header,
        ("rootfs", Directory, b""),
        ("rootfs/dir", Symlink, target.as_bytes()),
        ("rootfs/dir/f", Regular, b"x"),
    ]);
    let err = read(through_link.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, LIMITS, ok)
        .unwrap_err();
    assert!(err.to_string().contains("rootfs/dir/f"), "{err}");
    assert!(!outside.path().join("f").exists(), "nothing was written through the link");

    for (members, why) in [
        (vec![header, ("rootfs", Directory, &b""[..]), ("rootfs/../f", Regular, &b"x"[..])], "`..`"),
        (vec![header, ("elsewhere/f", Regular, &b"x"[..])], "outside"),
        (vec![header, ("rootfs", Directory, &b""[..]), ("rootfs/dev", tar::EntryType::Char, &b""[..])], "not allowed"),
        (
            vec![
                header,
                ("rootfs", Directory, &b""[..]),
                ("rootfs/f", Regular, &b"x"[..]),
                ("rootfs/f", Regular, &b"y"[..]),
            ],
            "twice",
        ),
        (vec![("rootfs", Directory, &b""[..])], "first"),
    ] {
        let err = read(
            crafted(&members).as_slice(),
            tempfile::tempdir().unwrap().path(),
            "rootfs",
            IdShift::NONE,
            LIMITS,
            ok,
        )
        .unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    assert!(!outside.path().join("f").exists());
}

#[test]
fn a_header_the_caller_refuses_stops_the_archive_before_any_file() {
    let src = tempfile::tempdir().unwrap();
    hostile_tree(src.path());
    let bytes = export(src.path());
    let dest = tempfile::tempdir().unwrap();
    let err = read(bytes.as_slice(), dest.path(), "rootfs", IdShift::NONE, LIMITS, |h| {
        Err(format!("not this one: {}", String::from_utf8_lossy(h)))
    })
    .unwrap_err();
    assert!(err.to_string().contains("not this one"), "{err}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "nothing unpacked");
}

#[test]
fn an_archive_larger_than_the_limit_is_refused() {
    let src = tempfile::tempdir().unwrap();
    hostile_tree(src.path());
    let bytes = export(src.path());
    let small = ReadLimits { max_bytes: 1000, max_entries: 100_000 };
    let err =
        read(bytes.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, small, ok).unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err:?}");
    let few = ReadLimits { max_bytes: 1 << 30, max_entries: 3 };
    let err =
        read(bytes.as_slice(), tempfile::tempdir().unwrap().path(), "rootfs", IdShift::NONE, few, ok).unwrap_err();
    assert!(err.to_string().contains("more than 3 entries"), "{err}");
}

use crate::StorageError;
