//! End to end, as root: OCI image archives (`docker save` and OCI layout)
//! with two layers, a whiteout and an opaque directory import, and their
//! config sets the container's defaults. Hostile archives are refused and
//! leave nothing behind.

mod support;

use cubby_model::CreateContainer;
use cubby_testkit::{HostView, http_get};
use sha2::{Digest, Sha256};
use support::{daemon, project, sh};

/// A tar with regular files (mode 0644, or 0755 for `bin/`), directories
/// (paths ending in `/`) and symlinks (`link -> target`).
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some((link, target)) = path.split_once(" -> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_cksum();
            b.append_link(&mut h, link, target).unwrap();
        } else if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, path, &[][..]).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_mode(if path.starts_with("bin/") { 0o755 } else { 0o644 });
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let lower = tar_of(&[
        ("bin/", b""),
        ("bin/busybox", &busybox),
        ("bin/sh -> busybox", b""),
        ("www/", b""),
        ("www/index.html", b"from layer one\n"),
        ("www/old.txt", b"deleted by layer two\n"),
        ("etc/", b""),
        ("etc/conf/", b""),
        ("etc/conf/a", b"replaced by an opaque dir\n"),
    ]);
    let upper = tar_of(&[
        ("www/", b""),
        ("www/index.html", b"from layer two\n"),
        ("www/.wh.old.txt", b""),
        ("etc/conf/", b""),
        ("etc/conf/.wh..wh..opq", b""),
        ("etc/conf/b", b"new in layer two\n"),
    ]);
    (lower, upper)
}

fn config_json() -> Vec<u8> {
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/busybox"],
            "Cmd": ["httpd", "-f", "-p", "8081", "-h", "/www"],
            "Env": ["PATH=/bin", "FLAVOUR=oci"],
            "WorkingDir": "/www",
            "ExposedPorts": { "8081/tcp": {} }
        },
        "rootfs": { "type": "layers", "diff_ids": [] }
    })
    .to_string()
    .into_bytes()
}

/// As `docker save` (before Docker 25) writes it: a directory per layer
/// named by its hash, the config, then `manifest.json` last.
fn docker_save() -> Vec<u8> {
    let (lower, upper) = layers();
    let (h1, h2) = (sha(&lower), sha(&upper));
    let config = config_json();
    let config_name = format!("{}.json", sha(&config));
    let (l1, l2) = (format!("{h1}/layer.tar"), format!("{h2}/layer.tar"));
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": ["t:latest"], "Layers": [l1, l2] }]);
    let (d1, d2) = (format!("{h1}/"), format!("{h2}/"));
    tar_of(&[
        (&d1, b""),
        (&l1, &lower),
        (&d2, b""),
        (&l2, &upper),
        (&config_name, &config),
        ("manifest.json", manifest.to_string().as_bytes()),
    ])
}

fn sha(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn oci_layout() -> Vec<u8> {
    let (lower, upper) = layers();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &upper).unwrap();
    let upper_gz = gz.finish().unwrap();
    let config = config_json();
    let desc = |media: &str, data: &[u8]| serde_json::json!({ "mediaType": media, "digest": format!("sha256:{}", sha(data)), "size": data.len() });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [
            desc("application/vnd.oci.image.layer.v1.tar", &lower),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &upper_gz),
        ]
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [desc("application/vnd.oci.image.manifest.v1+json", &manifest)]
    })
    .to_string();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", sha(data));
    let (b1, b2, b3, b4) = (blob(&lower), blob(&upper_gz), blob(&config), blob(&manifest));
    tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", index.as_bytes()),
        ("blobs/", b""),
        ("blobs/sha256/", b""),
        (&b1, &lower),
        (&b2, &upper_gz),
        (&b3, &config),
        (&b4, &manifest),
    ])
}

#[test]
fn oci_archives_import_with_layers_whiteouts_and_defaults() {
    let Some(d) = daemon("oci_archives_import_with_layers_whiteouts_and_defaults") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    for (name, archive) in [("docker-saved", docker_save()), ("oci-layout", oci_layout())] {
        let image = api.import_image(name, std::io::Cursor::new(archive)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(image.source, cubby_model::ImageSource::Oci);
        assert!(image.warnings.is_empty(), "{:?}", image.warnings);
        assert_eq!(image.config.command, ["/bin/busybox", "httpd", "-f", "-p", "8081", "-h", "/www"], "{name}");
        assert_eq!(image.config.port, Some(8081));
        assert_eq!(image.config.workdir.as_deref(), Some("/www"));
        assert_eq!(image.config.env.get("FLAVOUR").map(String::as_str), Some("oci"));

        let c = api
            .create_container(
                p.id.as_str(),
                &CreateContainer { name: format!("c-{name}"), image: Some(name.into()), ..Default::default() },
            )
            .unwrap();
        assert_eq!(c.port, 8081);
        let r = http_get(d.proxy_addr, &format!("{}/index.html", c.url));
        assert_eq!((r.status, r.body.as_str()), (200, "from layer two\n"), "{name}");
        assert_eq!(
            http_get(d.proxy_addr, &format!("{}/old.txt", c.url)).status,
            404,
            "{name}: the whiteout hides old.txt"
        );
        assert_eq!(sh(&api, c.id.as_str(), "ls /etc/conf").1, "b\n", "{name}: the opaque dir hides a");
        assert_eq!(sh(&api, c.id.as_str(), "pwd").1, "/www\n");
    }
    // Deleting an image keeps its containers working.
    api.delete_image("docker-saved").unwrap();
    assert!(!api.images().unwrap().iter().any(|i| i.name == "docker-saved"));
    let c = api.container(api.containers(None, None, 10).unwrap().items[0].id.as_str()).unwrap();
    api.restart(c.id.as_str()).unwrap();
    assert_eq!(http_get(d.proxy_addr, &format!("{}/index.html", c.url)).status, 200);
}

#[test]
fn hostile_oci_archives_are_refused() {
    let Some(d) = daemon("hostile_oci_archives_are_refused") else { return };
    let api = d.admin();
    let before = HostView::of(&d);
    let layers_before = std::fs::read_dir(d.data_dir.join("pool/layers")).unwrap().count();
    let manifest = |layers: &[&str]| serde_json::json!([{ "Config": null, "Layers": layers }]).to_string();
    let raw_tar = |path: &str, kind: tar::EntryType, link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(if kind == tar::EntryType::Regular { 1 } else { 0 });
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, if kind == tar::EntryType::Regular { &b"x"[..] } else { &b""[..] }).unwrap();
        b.into_inner().unwrap()
    };
    let escape = raw_tar("../../escape", tar::EntryType::Regular, None);
    let dotdot_whiteout = raw_tar(".wh...", tar::EntryType::Regular, None);
    let link_to_tmp = raw_tar("up", tar::EntryType::Symlink, Some("/tmp"));
    let whiteout_through_link = raw_tar("up/.wh.cubby-canary", tar::EntryType::Regular, None);
    // A canary where the whiteouts above aim: no import may remove it.
    let canary = std::path::Path::new("/tmp/cubby-canary");
    std::fs::write(canary, "alive").unwrap();
    let symlink_out = {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link) in
            [("evil", tar::EntryType::Symlink, Some("/tmp")), ("evil/pwned", tar::EntryType::Regular, None)]
        {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(u64::from(kind == tar::EntryType::Regular));
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append_data(&mut h, path, if kind == tar::EntryType::Regular { &b"x"[..] } else { &b""[..] }).unwrap();
        }
        b.into_inner().unwrap()
    };
    for (what, layers) in [
        ("dot-dot", vec![escape]),
        ("symlink out of root", vec![symlink_out]),
        ("whiteout of `..`", vec![dotdot_whiteout]),
        ("whiteout through a symlink of a lower layer", vec![link_to_tmp, whiteout_through_link]),
    ] {
        let paths: Vec<String> = layers.iter().map(|l| format!("{}/layer.tar", sha(l))).collect();
        let names: Vec<&str> = paths.iter().map(String::as_str).collect();
        let manifest = manifest(&names);
        let mut entries: Vec<(&str, &[u8])> =
            paths.iter().map(String::as_str).zip(layers.iter().map(Vec::as_slice)).collect();
        entries.push(("manifest.json", manifest.as_bytes()));
        let err = api.import_image("evil", std::io::Cursor::new(tar_of(&entries))).unwrap_err();
        assert_eq!(err.code(), Some("invalid_archive"), "{what}: {err}");
        assert_eq!(std::fs::read_to_string(canary).unwrap(), "alive", "{what}: the canary outside the image is gone");
    }
    // The archive's own files are opened without following links.
    let manifest_link = {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append_link(&mut h, "manifest.json", "/etc/os-release").unwrap();
        b.into_inner().unwrap()
    };
    let err = api.import_image("evil", std::io::Cursor::new(manifest_link)).unwrap_err();
    assert_eq!(err.code(), Some("invalid_archive"), "{err}");
    assert!(!err.to_string().contains("PRETTY_NAME"), "the host file was read: {err}");
    std::fs::remove_file(canary).unwrap();
    let missing = tar_of(&[("manifest.json", manifest(&["nowhere/layer.tar"]).as_bytes())]);
    assert_eq!(api.import_image("evil", std::io::Cursor::new(missing)).unwrap_err().code(), Some("invalid_archive"));
    let outside = tar_of(&[("manifest.json", manifest(&["../../etc/passwd"]).as_bytes())]);
    assert_eq!(api.import_image("evil", std::io::Cursor::new(outside)).unwrap_err().code(), Some("invalid_archive"));

    assert!(!std::path::Path::new("/tmp/pwned").exists());
    assert_eq!(HostView::settled(&d), before);
    assert_eq!(std::fs::read_dir(d.data_dir.join("pool/layers")).unwrap().count(), layers_before);
    assert_eq!(std::fs::read_dir(d.data_dir.join("pool/tmp")).unwrap().count(), 0);
}
