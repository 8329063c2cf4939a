//! End to end, as root: a tenant exported while it runs, deleted, and
//! imported again has the same `/data` (hostile names, modes and owners
//! included), the same rules and its app answering; a tampered archive and
//! a data-only one are refused with nothing left behind; another project's
//! token can neither export nor import into the tenant's project.

mod support;

use std::io::Read;

use cubby_model::{CreateSnapshot, CreateToken, Direction, NetworkRules, Protocol, RuleAction, RuleSpec};
use support::{container, daemon, project, sh};

/// `/data` as the tenant sees it: every entry's name, mode and owner,
/// and every file's checksum, in a stable order. The demo app's own live
/// database (`app.db*`, rewritten by the app as it runs) is left out.
fn data_listing(api: &cubby_client::Client, id: &str) -> String {
    let (code, out, err) = sh(
        api,
        id,
        "cd /data && find . ! -name 'app.db*' -exec stat -c '%n %a %u %g %F' {} + | sort \
         && find . -type f ! -name 'app.db*' -exec md5sum {} + | sort && readlink escape",
    );
    assert_eq!(code, 0, "{err}");
    out
}

/// The archive's members, in order: (path, content) for the header.
fn members(archive: &[u8]) -> Vec<String> {
    let tar = zstd_decode(archive);
    let mut out = Vec::new();
    let mut a = tar::Archive::new(tar.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        out.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
    }
    out
}

fn zstd_decode(bytes: &[u8]) -> Vec<u8> {
    zstd::decode_all(bytes).expect("a zstd stream")
}

fn header_of(archive: &[u8]) -> serde_json::Value {
    let tar = zstd_decode(archive);
    let mut a = tar::Archive::new(tar.as_slice());
    let mut first = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(&*first.path_bytes(), b"cubby-export.json");
    let mut text = String::new();
    first.read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_tenant_exported_deleted_and_imported_has_the_same_data_and_rules() {
    let Some(d) = daemon("a_tenant_exported_deleted_and_imported_has_the_same_data_and_rules") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let web = container(&api, &acme, "web", "exported greeting");
    let id = web.id.to_string();
    let (code, _, err) = sh(
        &api,
        &id,
        r#"set -e; cd /data
        printf 'SQLite format 3\000 the tenant rows' > tenant.db; chmod 600 tenant.db; chown 1000:1001 tenant.db
        printf 'newline' > "$(printf 'line\nbreak')"
        printf 'dash' > ./-rf; printf 'unicode' > 'ünïcødé ☃'
        mkdir -p "deep/$(printf 'd%.0s' $(seq 120))/$(printf 'e%.0s' $(seq 120))"
        head -c 300000 /dev/urandom > "deep/$(printf 'd%.0s' $(seq 120))/$(printf 'e%.0s' $(seq 120))/blob"
        ln -s ../../../../etc/shadow escape
        chmod 750 deep"#,
    );
    assert_eq!(code, 0, "{err}");
    let rule = RuleSpec {
        action: Some(RuleAction::Drop),
        protocol: Some(Protocol::Tcp),
        ports: Some("5432".into()),
        destination: Some("10.9.0.0/16".into()),
        description: Some("no database".into()),
        position: Some(0),
        ..Default::default()
    };
    api.add_rule(&id, Direction::Egress, &rule).unwrap();
    let network = NetworkRules { dns_servers: vec!["10.0.0.53".into()], ..Default::default() };
    api.set_network(&id, &network).unwrap();
    let before = data_listing(&api, &id);
    let firewall_before = api.firewall(&id).unwrap();
    let network_before = api.raw("GET", &format!("/api/v1/containers/{id}/network"), None).unwrap().body;

    // Exported while it runs; the default leaves environment values out.
    let mut archive = Vec::new();
    api.export_container(&id, "", &mut archive).unwrap();
    assert_eq!(api.container(&id).unwrap().status, cubby_model::ContainerStatus::Running, "still running");
    let header = header_of(&archive);
    assert_eq!(header["env"], serde_json::json!({}), "{header}");
    assert!(header["env_redacted"].as_array().unwrap().iter().any(|k| k == "GREETING"), "{header}");
    assert!(!String::from_utf8_lossy(&zstd_decode(&archive)).contains("exported greeting"), "no value leaks");
    let names = members(&archive);
    assert_eq!(names.first().map(String::as_str), Some("cubby-export.json"));
    assert_eq!(names.last().map(String::as_str), Some("cubby-manifest.json"));
    assert!(names.iter().any(|n| n == "rootfs/data/tenant.db"), "{names:?}");
    let mut with_env = Vec::new();
    api.export_container(&id, "include_env=true", &mut with_env).unwrap();
    assert_eq!(header_of(&with_env)["env"]["GREETING"], "exported greeting");

    // A data-only export holds /data and nothing else.
    let mut data_only = Vec::new();
    api.export_container(&id, "data_only=true", &mut data_only).unwrap();
    let names = members(&data_only);
    assert!(names.iter().any(|n| n == "data/tenant.db"), "{names:?}");
    assert!(names.iter().all(|n| n == "data" || n.starts_with("data/") || n.starts_with("cubby-")), "{names:?}");

    api.delete_container(&id).unwrap();
    let imported = api.import_container(acme.id.as_str(), None, std::io::Cursor::new(with_env.clone())).unwrap();
    assert_ne!(imported.id, web.id, "a new tenant");
    assert_eq!(imported.name, "web");
    let new_id = imported.id.to_string();
    assert_eq!(data_listing(&api, &new_id), before, "the same /data, byte for byte");
    let firewall_after = api.firewall(&new_id).unwrap();
    // New ids, the same rules in the same order.
    let strip = |rules: &[cubby_model::FirewallRule]| {
        rules
            .iter()
            .map(|r| cubby_model::FirewallRule { id: firewall_before.egress[0].id.clone(), ..r.clone() })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&firewall_after.egress), strip(&firewall_before.egress));
    assert_eq!(strip(&firewall_after.ingress), strip(&firewall_before.ingress));
    let network_after = api.raw("GET", &format!("/api/v1/containers/{new_id}/network"), None).unwrap().body;
    assert_eq!(network_after, network_before);
    let (code, out, _) = sh(&api, &new_id, "printf %s \"$GREETING\"");
    assert_eq!((code, out.as_str()), (0, "exported greeting"), "include_env carried the value");
    // The imported tenant writes over its data like any tenant.
    let (code, _, err) = sh(&api, &new_id, "printf more >> /data/tenant.db && tail -c 4 /data/tenant.db");
    assert_eq!(code, 0, "{err}");

    // A changed byte is refused (the same archive unchanged was accepted
    // above), and nothing of the attempt remains.
    let count = api.containers(None, None, 500).unwrap().items.len();
    let tar = zstd_decode(&with_env);
    let at = tar.windows(14).position(|w| w == b"the tenant row").expect("tenant.db's content");
    let mut tampered_tar = tar.clone();
    tampered_tar[at] = b'T';
    let tampered = zstd_encode(&tampered_tar);
    let err = api.import_container(acme.id.as_str(), Some("tampered"), std::io::Cursor::new(tampered)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid_export") && text.contains("tenant.db"), "{text}");
    assert_eq!(api.containers(None, None, 500).unwrap().items.len(), count, "no tenant made");
    let tmp = d.data_dir.join("pool/tmp");
    // The pool's scratch directory is always there (the pool makes it).
    assert_eq!(std::fs::read_dir(&tmp).expect("pool/tmp").count(), 0, "no staging left in {}", tmp.display());

    // A data-only export cannot make a tenant, said before anything unpacks.
    let err = api.import_container(acme.id.as_str(), Some("data"), std::io::Cursor::new(data_only)).unwrap_err();
    assert!(err.to_string().contains("data-only"), "{err}");
}

#[test]
fn a_snapshot_is_exported_as_it_was_and_imported_as_a_tenant() {
    let Some(d) = daemon("a_snapshot_is_exported_as_it_was_and_imported_as_a_tenant") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let id = container(&api, &acme, "web", "hi").id.to_string();
    let (code, _, err) = sh(&api, &id, "echo monday > /data/ledger");
    assert_eq!(code, 0, "{err}");
    let snap = CreateSnapshot { alias: Some("monday".into()), ..Default::default() };
    api.create_snapshot(&id, &snap).unwrap();
    let (code, _, err) = sh(&api, &id, "echo tuesday > /data/ledger && echo new > /data/later");
    assert_eq!(code, 0, "{err}");

    // The current state (the control), then the snapshot by its alias.
    let mut now = Vec::new();
    api.export_container(&id, "", &mut now).unwrap();
    assert!(members(&now).iter().any(|n| n == "rootfs/data/later"));
    let mut monday = Vec::new();
    api.export_container(&id, "snapshot=monday", &mut monday).unwrap();
    assert!(header_of(&monday)["snapshot"].as_str().is_some_and(|n| n.starts_with("snap-")), "{}", header_of(&monday));
    assert!(!members(&monday).iter().any(|n| n == "rootfs/data/later"), "only what the snapshot held");
    let imported = api.import_container(acme.id.as_str(), Some("monday"), std::io::Cursor::new(monday)).unwrap();
    let (code, out, err) = sh(&api, imported.id.as_str(), "cat /data/ledger; ls /data/later 2>&1 || true");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("monday\n") && out.contains("No such file"), "{out}");
    // The tenant itself is untouched, and a missing snapshot is a 404.
    assert_eq!(sh(&api, &id, "cat /data/ledger").1, "tuesday\n");
    let err = api.export_container(&id, "snapshot=never", &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("snapshot_not_found"), "{err}");
}

fn zstd_encode(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("compress")
}

#[test]
fn another_project_can_neither_export_a_tenant_nor_import_into_its_project() {
    let Some(d) = daemon("another_project_can_neither_export_a_tenant_nor_import_into_its_project") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let zeta = project(&api, "zeta");
    let web = container(&api, &acme, "web", "acme's");
    let token = |p: &cubby_model::Project| {
        let t = api.create_token(p.id.as_str(), &CreateToken { name: Some("t".into()) }).unwrap();
        d.client(Some(&t.secret))
    };
    let (acme_client, zeta_client) = (token(&acme), token(&zeta));
    // The control: acme's own token exports and imports.
    let mut archive = Vec::new();
    acme_client.export_container(web.id.as_str(), "", &mut archive).expect("acme exports its own tenant");
    acme_client
        .import_container(acme.id.as_str(), Some("web2"), std::io::Cursor::new(archive.clone()))
        .expect("acme imports into its own project");
    // zeta's token sees neither.
    let mut stolen = Vec::new();
    let err = zeta_client.export_container(web.id.as_str(), "", &mut stolen).unwrap_err();
    assert!(err.to_string().contains("404") || err.to_string().contains("not_found"), "{err}");
    assert!(stolen.is_empty());
    let err = zeta_client
        .import_container(acme.id.as_str(), Some("planted"), std::io::Cursor::new(archive.clone()))
        .unwrap_err();
    assert!(err.to_string().contains("404") || err.to_string().contains("not_found"), "{err}");
    let names: Vec<String> = api.containers(None, None, 500).unwrap().items.into_iter().map(|c| c.name).collect();
    assert!(!names.iter().any(|n| n == "planted"), "{names:?}");
    // zeta imports acme's archive into zeta only when it holds it: the
    // archive carries files, not access to acme.
    let copy = zeta_client.import_container(zeta.id.as_str(), Some("mine"), std::io::Cursor::new(archive)).unwrap();
    assert_eq!(copy.project_id, zeta.id);

    // The CLI: export to a file, import it under another name.
    let file = d.data_dir.join("web.cubby.tar.zst");
    let (code, _, err) = d.cli(&["containers", "export", web.id.as_str(), "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&file).unwrap()[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd file");
    let (code, out, err) =
        d.cli(&["containers", "import", acme.id.as_str(), file.to_str().unwrap(), "--name", "web3", "--json"]);
    assert_eq!(code, 0, "{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((made["name"].as_str(), made["status"].as_str()), (Some("web3"), Some("running")));
}
