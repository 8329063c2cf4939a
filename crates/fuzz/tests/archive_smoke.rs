//! Stable-Rust smoke run of the image-archive fuzz target, in its own test
//! binary because the target drops the process to `nobody` before
//! unpacking anything. Seeds are built here with the `tar` crate: a
//! rootfs tree, a gzipped one, hostile entries and an OCI layout.

use std::io::Write;

use cubby_fuzz::{archive, mutate::drive};

fn tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_uid(65_534);
        h.set_gid(65_534);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link name");
        }
        // Raw path bytes: the builder's own checks would refuse `..`.
        let name = path.as_bytes();
        h.as_gnu_mut().expect("gnu header").name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("finish tar")
}

fn seeds() -> Vec<Vec<u8>> {
    use tar::EntryType::{Directory, Regular, Symlink};
    let tree = tar(&[
        ("etc/", Directory, b"", None),
        ("etc/hostname", Regular, b"fuzz\n", None),
        ("bin/", Directory, b"", None),
        ("bin/sh", Symlink, b"", Some("busybox")),
        ("/abs/file", Regular, b"x", None),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tree).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let hostile = tar(&[
        ("../escape", Regular, b"x", None),
        ("link", Symlink, b"", Some("/etc")),
        ("link/passwd", Regular, b"x", None),
    ]);
    let layer = tar(&[("app/", Directory, b"", None), ("app/.wh.gone", Regular, b"", None)]);
    let digest = "a".repeat(64);
    let manifest =
        format!(r#"[{{"Config":"blobs/sha256/{digest}","RepoTags":["x:1"],"Layers":["blobs/sha256/{digest}"]}}]"#);
    let oci = tar(&[
        ("oci-layout", Regular, br#"{"imageLayoutVersion":"1.0.0"}"#, None),
        ("manifest.json", Regular, manifest.as_bytes(), None),
        ("blobs/", Directory, b"", None),
        ("blobs/sha256/", Directory, b"", None),
        (&format!("blobs/sha256/{digest}"), Regular, &layer, None),
    ]);
    vec![tree, gz, hostile, oci]
}

#[test]
fn image_archives_never_panic_or_write_beside_the_root() {
    drive(archive::import, &seeds(), 2_000, 0xa5c4_1e00);
    archive::cleanup();
    let left = std::env::temp_dir().join(format!("cubby-fuzz-archive-{}", std::process::id()));
    assert!(!left.exists(), "the scratch dir is left behind");
}
