//! End to end, as root: a copy synced with its template gets the
//! template's new files and keeps its own changes and its `/data` as it
//! was; a sibling copy is not touched; a template whose new state does not
//! start makes the sync roll back; another project cannot sync the copy.

mod support;

use cubby_model::{CopyContainer, CreateToken};
use support::{container, daemon, project, sh};

fn read(api: &cubby_client::Client, id: &str, path: &str) -> String {
    let (code, out, err) = sh(api, id, &format!("cat {path} 2>/dev/null || echo absent"));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

#[test]
fn a_synced_copy_gets_the_templates_files_and_keeps_its_data() {
    let Some(d) = daemon("a_synced_copy_gets_the_templates_files_and_keeps_its_data") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let t = container(&api, &acme, "template", "v1");
    let tid = t.id.to_string();
    let (code, _, err) = sh(
        &api,
        &tid,
        "mkdir -p /app && echo v1 > /app/version && echo theme-v1 > /app/theme && echo seed-v1 > /data/seed",
    );
    assert_eq!(code, 0, "{err}");
    let copy = |name: &str| {
        api.copy_container(&tid, &CopyContainer { name: name.into(), ..Default::default() }).unwrap().id.to_string()
    };
    let (c, sibling) = (copy("customer"), copy("sibling"));
    // The copy's own changes: a file outside /data, and its data.
    let (code, _, err) = sh(&api, &c, "echo mine > /app/theme && echo customer-rows > /data/db");
    assert_eq!(code, 0, "{err}");

    // A sync while the copy is already up to date changes nothing.
    let pid = support::init_pid(&d, &c).expect("running");
    api.sync_container(&c).unwrap();
    assert_eq!(support::init_pid(&d, &c), Some(pid), "not restarted when up to date");

    // The template moves on: new app files, a new seed in its /data.
    let (code, _, err) = sh(&api, &tid, "echo v2 > /app/version && echo new > /app/added && echo seed-v2 > /data/seed");
    assert_eq!(code, 0, "{err}");
    let synced = api.sync_container(&c).unwrap();
    assert_eq!(synced.status, cubby_model::ContainerStatus::Running);
    assert_eq!(read(&api, &c, "/app/version"), "v2", "the template's new file");
    assert_eq!(read(&api, &c, "/app/added"), "new");
    assert_eq!(read(&api, &c, "/app/theme"), "mine", "the copy's own change wins");
    assert_eq!(read(&api, &c, "/data/db"), "customer-rows", "its data stays");
    assert_eq!(read(&api, &c, "/data/seed"), "seed-v1", "its /data as it saw it, the template's included");
    assert!(api.snapshots(&c).unwrap().is_empty(), "the rollback snapshot goes after a good sync");
    // The sibling was not synced: still the template's old state.
    assert_eq!(read(&api, &sibling, "/app/version"), "v1");
    assert_eq!(read(&api, &sibling, "/app/added"), "absent");
    // The copy writes on as before.
    let (code, _, err) = sh(&api, &c, "echo more >> /data/db && cat /data/db");
    assert_eq!(code, 0, "{err}");

    // A template whose new state does not start: the sync is refused and
    // the copy is put back (the good sync above is the control).
    let (code, _, err) = sh(&api, &tid, &format!("echo v3 > /app/version && {}", support::BREAK_THE_APP));
    assert_eq!(code, 0, "{err}");
    let err = api.sync_container(&c).unwrap_err().to_string();
    assert!(err.contains("sync_failed"), "{err}");
    let back = api.container(&c).unwrap();
    assert_eq!(back.status, cubby_model::ContainerStatus::Running, "running again on its old state");
    assert_eq!(read(&api, &c, "/app/version"), "v2", "rolled back");
    assert_eq!(read(&api, &c, "/data/db"), "customer-rows\nmore");
    assert!(cubby_testkit::http_get(d.proxy_addr, &back.url).status < 500, "it serves");

    // Another project's token cannot sync acme's copy.
    let zeta = project(&api, "zeta");
    let secret = api.create_token(zeta.id.as_str(), &CreateToken { name: Some("z".into()) }).unwrap().secret;
    let err = d.client(Some(&secret)).sync_container(&c).unwrap_err().to_string();
    assert!(err.contains("404") || err.contains("not_found"), "{err}");
    // A container that is no copy has nothing to sync from.
    let err = api.sync_container(&tid).unwrap_err().to_string();
    assert!(err.contains("no_template"), "{err}");
}

/// A rootfs tarball of static busybox, with the demo app unless `broken`,
/// and `/etc/flavor`.
fn image_tarball(flavor: &str, broken: bool) -> Vec<u8> {
    let helpers = std::path::Path::new(support::BIN).parent().unwrap().join("helpers");
    let mut b = support::Rootfs::busybox().file("etc/flavor", flavor.as_bytes(), 0o644);
    if !broken {
        let demo = std::fs::read(helpers.join("cubby-demo")).expect("the demo helper");
        b = b.file("usr/local/bin/cubby-demo", &demo, 0o755);
    }
    b.dir("data").dir("tmp").dir("usr/bin").finish()
}

#[test]
fn a_tenant_moves_onto_a_new_image_or_template_and_back_when_it_does_not_start() {
    let Some(d) = daemon("a_tenant_moves_onto_a_new_image_or_template") else { return };
    let api = d.admin();
    api.import_image("alt", std::io::Cursor::new(image_tarball("alt", false))).unwrap();
    api.import_image("broken", std::io::Cursor::new(image_tarball("broken", true))).unwrap();
    let acme = project(&api, "acme");
    let c = container(&api, &acme, "tenant", "hi").id.to_string();
    let (code, _, err) = sh(&api, &c, "echo rows > /data/db && echo own > /own");
    assert_eq!(code, 0, "{err}");

    // A new image: its files, the tenant's own kept.
    let moved = api
        .update_container(&c, &cubby_model::UpdateContainer { image: Some("alt".into()), ..Default::default() })
        .unwrap();
    assert_eq!(moved.image, "alt");
    assert_eq!(read(&api, &c, "/etc/flavor"), "alt");
    assert_eq!((read(&api, &c, "/data/db"), read(&api, &c, "/own")), ("rows".into(), "own".into()));

    // An image it cannot start on: refused and put back (the move above,
    // made the same way, is the control).
    let err = api
        .update_container(&c, &cubby_model::UpdateContainer { image: Some("broken".into()), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync_failed"), "{err}");
    let back = api.container(&c).unwrap();
    assert_eq!((back.image.as_str(), back.status), ("alt", cubby_model::ContainerStatus::Running));
    assert_eq!(read(&api, &c, "/etc/flavor"), "alt");

    // Rebased on another container's current state.
    let t = container(&api, &acme, "template", "t").id.to_string();
    let (code, _, err) = sh(&api, &t, "echo from-template > /marker");
    assert_eq!(code, 0, "{err}");
    let req = cubby_model::UpdateContainer {
        rebase_on: Some(cubby_model::ContainerId::parse(&t).unwrap()),
        ..Default::default()
    };
    api.update_container(&c, &req).unwrap();
    assert_eq!(read(&api, &c, "/marker"), "from-template");
    assert_eq!((read(&api, &c, "/data/db"), read(&api, &c, "/own")), ("rows".into(), "own".into()));
    // Not on itself.
    let req = cubby_model::UpdateContainer {
        rebase_on: Some(cubby_model::ContainerId::parse(&c).unwrap()),
        ..Default::default()
    };
    assert!(api.update_container(&c, &req).unwrap_err().to_string().contains("itself"));
}
