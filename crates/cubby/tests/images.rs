//! End to end, as root: importing a rootfs tarball and running a container
//! from it; hostile archives are refused and leave nothing behind.

mod support;

use std::io::Write;

use cubby_model::CreateContainer;
use cubby_testkit::{HostView, http_get};
use support::{daemon, project};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A rootfs with busybox and a page to serve.
fn rootfs_tarball() -> Vec<u8> {
    gzip(&support::Rootfs::busybox().file("www/index.html", b"hello from an imported image\n", 0o644).finish())
}

fn hostile(path: &str, kind: tar::EntryType) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn import_a_rootfs_and_run_it() {
    let Some(d) = daemon("import_a_rootfs_and_run_it") else { return };
    let api = d.admin();
    let image = api.import_image("webroot", std::io::Cursor::new(rootfs_tarball())).unwrap();
    assert_eq!(image.name, "webroot");
    assert!(image.size_bytes > 1_000_000);
    assert!(api.images().unwrap().iter().any(|i| i.name == "webroot"));

    let p = project(&api, "acme");
    let req = CreateContainer {
        name: "static".into(),
        image: Some("webroot".into()),
        command: Some(vec![
            "/bin/busybox".into(),
            "httpd".into(),
            "-f".into(),
            "-p".into(),
            "8080".into(),
            "-h".into(),
            "/www".into(),
        ]),
        ..Default::default()
    };
    let c = api.create_container(p.id.as_str(), &req).unwrap();
    let r = http_get(d.proxy_addr, &format!("{}/index.html", c.url));
    assert_eq!((r.status, r.body.as_str()), (200, "hello from an imported image\n"));

    // The same name again is refused.
    let again = api.import_image("webroot", std::io::Cursor::new(rootfs_tarball())).unwrap_err();
    assert_eq!(again.code(), Some("image_already_exists"));
    // A project token may not import (images are shared by every project).
    let t = api.create_token(p.id.as_str(), &Default::default()).unwrap();
    // (A small body: the daemon refuses before reading it.)
    let denied = d.client(Some(&t.secret)).import_image("mine", std::io::Cursor::new(gzip(b"tiny"))).unwrap_err();
    assert_eq!(denied.status(), Some(403), "{denied:?}");
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let Some(d) = daemon("hostile_archives_are_refused_and_leave_nothing") else { return };
    let api = d.admin();
    let before = HostView::of(&d);
    for (what, archive) in [
        ("dot-dot path", hostile("../../escape", tar::EntryType::Regular)),
        ("not an archive", b"this is not a tarball at all, just some text that goes on".repeat(20)),
        ("truncated gzip", gzip(&rootfs_tarball())[..100].to_vec()),
    ] {
        let err = api.import_image("evil", std::io::Cursor::new(archive)).unwrap_err();
        assert_eq!(err.code(), Some("invalid_archive"), "{what}: {err}");
    }
    // Device nodes (debootstrap and `podman import` put them in /dev) are
    // left out with a warning; the rest of the image imports.
    let mut with_dev = tar::Builder::new(Vec::new());
    for (path, kind) in [("dev/null", tar::EntryType::Char), ("dev/sda", tar::EntryType::Block)] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o666);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        with_dev.append_data(&mut h, path, &b""[..]).unwrap();
    }
    let mut motd = tar::Header::new_gnu();
    motd.set_size(2);
    motd.set_mode(0o644);
    motd.set_uid(0);
    motd.set_gid(0);
    motd.set_mtime(0);
    motd.set_cksum();
    with_dev.append_data(&mut motd, "etc/motd", &b"hi"[..]).unwrap();
    let image = api.import_image("devnodes", std::io::Cursor::new(with_dev.into_inner().unwrap())).unwrap();
    assert_eq!(image.warnings.len(), 1, "{:?}", image.warnings);
    assert!(image.warnings[0].contains("2 device nodes (dev/null, dev/sda)"), "{:?}", image.warnings);
    api.delete_image("devnodes").unwrap();

    let r = api.raw("POST", "/api/v1/images?name=Bad%20Name", Some(b"x")).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(HostView::settled(&d), before);
    assert!(!api.images().unwrap().iter().any(|i| i.name == "evil"));
    assert_eq!(std::fs::read_dir(d.data_dir.join("pool/tmp")).unwrap().count(), 0);
    // `../../escape` would land two levels above the import's scratch dir.
    let found = std::process::Command::new("find").arg(&d.data_dir).args(["-name", "escape"]).output().unwrap();
    assert!(found.status.success() && found.stdout.is_empty(), "{}", String::from_utf8_lossy(&found.stdout));
    assert!(!d.data_dir.join("pool/escape").exists() && !d.data_dir.join("escape").exists());
}
