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
    let (code, _, err) = sh(
        &api,
        &tid,
        "echo v3 > /app/version && rm /usr/local/bin/cubby-demo && printf '#!/bin/sh\\nexit 3\\n' > /usr/local/bin/cubby-demo \
         && chmod 755 /usr/local/bin/cubby-demo",
    );
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
