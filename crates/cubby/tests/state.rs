//! End to end, as root: what the daemon keeps on the host is its own. Its
//! database, keys, logs and scripts are not readable by other users, the
//! tenant's env in the bundle is readable by the tenant's root only,
//! project secrets are sealed at rest, and a replaced admin token stops
//! working. The files containers read still work for every user inside.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use cubby_model::PutSecrets;
use cubby_testkit::http_get;
use support::{container, daemon, project, sh};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn the_daemons_files_are_its_own_and_secrets_are_sealed() {
    let Some(mut d) = daemon("the_daemons_files_are_its_own_and_secrets_are_sealed") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    api.put_secrets(p.id.as_str(), &PutSecrets::from([("KEY".into(), "whsec_sealed_4f9a".into())])).unwrap();
    api.put_script(p.id.as_str(), "env.js", b"export default (req, ctx) => new Response(ctx.env.KEY)").unwrap();

    // Control: the script gets the secret's value.
    let url = format!("http://acme.exec.localhost:{}/env", d.proxy_addr.port());
    assert_eq!(http_get(d.proxy_addr, &url).body, "whsec_sealed_4f9a");
    // At rest, neither the database nor its WAL holds it.
    for file in ["cubby.db", "cubby.db-wal"] {
        let path = d.data_dir.join(file);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(!bytes.windows(17).any(|w| w == b"whsec_sealed_4f9a"), "{file} holds the secret in plain text");
    }
    assert!(
        std::fs::read(d.data_dir.join("cubby.db-wal")).unwrap().windows(10).any(|w| w == b"sealed:v1:"),
        "control: the sealed value is in the WAL"
    );

    // Private files and directories.
    for (file, want) in [
        ("cubby.db", 0o600),
        ("cubby.db-wal", 0o600),
        ("admin.token", 0o600),
        ("claims.key", 0o600),
        ("secrets.key", 0o600),
        ("logs", 0o700),
        (&format!("logs/{}.log", a.id), 0o600),
        ("projects", 0o700),
        (&format!("projects/{}/scripts/env.js", p.id), 0o600),
    ] {
        assert_eq!(mode(&d.data_dir.join(file)), want, "{file}");
    }
    // The tenant's env is its root's and host root's only.
    let process = d.run_dir.join("containers").join(a.id.as_str()).join("process.json");
    assert_eq!(mode(&process), 0o600);
    assert_eq!(std::fs::metadata(&process).unwrap().uid(), 1_000_000, "owned by the container's root");
    // Every user inside still enters `/` and reads what the runtime mounts.
    let as_nobody = "su -s /bin/sh nobody -c 'id -u; ls /bin >/dev/null && cat /etc/resolv.conf /etc/hostname'";
    let (code, out, err) = sh(&api, a.id.as_str(), as_nobody);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("65534\n") && out.contains("nameserver") && out.ends_with("a\n"), "{out}");
    assert_eq!(sh(&api, a.id.as_str(), "id -u").1.trim(), "0", "control: exec runs as root otherwise");

    // Replacing admin.token revokes the old one at the next start.
    let old = d.token.clone();
    std::fs::write(d.data_dir.join("admin.token"), "cubby_replacedtokenreplacedtokenreplacedtoken\n").unwrap();
    d.restart();
    assert_eq!(d.token, "cubby_replacedtokenreplacedtokenreplacedtoken");
    assert!(d.admin().projects().is_ok(), "the new admin token works");
    let stale = d.client(Some(&old)).projects().unwrap_err();
    assert_eq!(stale.status(), Some(401), "the replaced admin token still works");
    // And the sealed secret still opens after the restart.
    assert_eq!(http_get(d.proxy_addr, &url).body, "whsec_sealed_4f9a");
}
