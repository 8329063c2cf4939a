//! End to end, as root: a box backed up while it serves (once whole, once
//! incremental) and restored into a second daemon with its own data dir,
//! prefix and subnet, as a fresh machine would be, serves every tenant
//! with the same data, rules, scripts, tokens and URLs; projects stay
//! apart there; a backup with a changed byte is refused before anything
//! is made.

mod support;

use std::path::{Path, PathBuf};

use cubby_model::{
    Backup, CopyContainer, CreateBackup, CreateSnapshot, CreateToken, Direction, Protocol, RuleAction, RuleSpec,
};
use cubby_testkit::{Daemon, DaemonOptions, http_get};
use support::{BIN, container, project, sh};

/// The port both daemons write in URLs, so a restored box's URLs are the
/// original's (each listens on a port of its own).
const PUBLIC_PORT: &str = "18443";

fn options() -> DaemonOptions {
    DaemonOptions { extra_args: vec!["--public-port".into(), PUBLIC_PORT.into()], ..Default::default() }
}

/// `cubby restore` of backup `backup` (else the newest) in `from` into
/// `data_dir`: (exit code, stdout, stderr).
fn restore(from: &Path, backup: Option<&str>, data_dir: &Path) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("restore").arg("--from").arg(from).arg("--data-dir").arg(data_dir).args(["--pool-size", "3GiB"]);
    if let Some(id) = backup {
        cmd.args(["--backup", id]);
    }
    let out = cmd.output().expect("run cubby restore");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Removes the backup directory when the test ends, however it ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Tenant `web` of `project`, its `/data` holding a row file and `bytes`
/// random bytes with their checksum.
fn web_with_data(api: &cubby_client::Client, project: &cubby_model::Project, bytes: usize) -> cubby_model::Container {
    let web = container(api, project, "web", "hello from web");
    let (code, _, err) = sh(
        api,
        web.id.as_str(),
        &format!(
            "set -e; cd /data; echo precious > rows.txt; head -c {bytes} /dev/urandom > blob; md5sum blob > blob.md5"
        ),
    );
    assert_eq!(code, 0, "{err}");
    web
}

/// The `/data` a tenant sees, without the demo app's own live database.
fn data_of(api: &cubby_client::Client, id: &str) -> String {
    let (code, out, err) =
        sh(api, id, "cd /data && find . ! -name 'app.db*' | sort && cat rows.txt && md5sum -c blob.md5");
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn a_backup_restored_on_a_fresh_box_serves_every_tenant_with_the_same_data_and_urls() {
    if !cubby_testkit::require_root("a_backup_restored_on_a_fresh_box_serves_every_tenant_with_the_same_data_and_urls")
    {
        return;
    }
    let a = Daemon::start_with(BIN, options());
    let api = a.admin();
    let dir = std::env::temp_dir().join(format!("cubby-backups-{}", a.prefix));
    let _cleanup = Cleanup(dir.clone());

    // A box with what a business has: tenants running and stopped, a copy
    // of a template, a snapshot, rules, a script, project tokens.
    let acme = project(&api, "acme");
    let zeta = project(&api, "zeta");
    let web = web_with_data(&api, &acme, 300_000);
    let web_id = web.id.to_string();
    let rule = RuleSpec {
        action: Some(RuleAction::Drop),
        protocol: Some(Protocol::Tcp),
        ports: Some("5432".into()),
        destination: Some("10.9.0.0/16".into()),
        position: Some(0),
        ..Default::default()
    };
    api.add_rule(&web_id, Direction::Egress, &rule).unwrap();
    api.create_snapshot(&web_id, &CreateSnapshot { alias: Some("before-upgrade".into()), ..Default::default() })
        .unwrap();
    let template = container(&api, &acme, "template", "hello from the template");
    let (code, _, err) = sh(&api, template.id.as_str(), "echo seed > /data/seed");
    assert_eq!(code, 0, "{err}");
    let copy =
        api.copy_container(template.id.as_str(), &CopyContainer { name: "copy".into(), ..Default::default() }).unwrap();
    api.stop(copy.id.as_str()).unwrap();
    let other = container(&api, &zeta, "other", "hello from zeta");
    api.put_script(acme.id.as_str(), "hello.js", b"export default () => new Response('script ok')").unwrap();
    let acme_token = api.create_token(acme.id.as_str(), &CreateToken::default()).unwrap().secret;
    let zeta_token = api.create_token(zeta.id.as_str(), &CreateToken::default()).unwrap().secret;

    // A whole backup through the CLI, then an incremental one through the
    // API after one tenant changed.
    let (code, out, err) = a.cli(&["backup", "--to", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let first: Backup = serde_json::from_str(&out).unwrap();
    assert_eq!((first.parent.as_deref(), first.containers, first.unchanged), (None, 4, 0), "{first:?}");
    assert_eq!(first.streams_written, first.containers + first.layers, "{first:?}");
    let (code, _, err) = sh(&api, &web_id, "echo more rows >> /data/rows.txt");
    assert_eq!(code, 0, "{err}");
    let second = api.backup(&CreateBackup { to: Some(dir.display().to_string()) }).unwrap();
    assert_eq!(second.parent.as_ref(), Some(&first.id), "{second:?}");
    // No layer is written again, nor the stopped copy; web is an increment.
    assert!(second.unchanged > first.layers, "{second:?}");
    assert!(second.bytes_written < first.bytes_written / 2, "{first:?} {second:?}");
    let web_stream = dir.join(&second.id).join(format!("streams/container-{web_id}.btrfs"));
    assert!(web_stream.is_file(), "web was written again");
    let expected_data = data_of(&api, &web_id);
    assert!(expected_data.contains("precious\nmore rows\n") && expected_data.contains("blob: OK"), "{expected_data}");
    let containers_before = api.containers(None, None, 100).unwrap().items;
    // What the daemon keeps for the next increment goes with its tenant.
    let kept = |id: &str| {
        std::fs::read_dir(a.data_dir.join("pool/backups"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(&format!("{id}@")))
            .count()
    };
    let gone = container(&api, &acme, "gone", "deleted after its backup");
    api.backup(&CreateBackup { to: Some(dir.display().to_string()) }).unwrap();
    assert_eq!(kept(gone.id.as_str()), 1, "control: its snapshot is kept for the next backup");
    api.delete_container(gone.id.as_str()).unwrap();
    assert_eq!(kept(gone.id.as_str()), 0, "a deleted tenant leaves nothing in the pool");
    let firewall_before = api.firewall(&web_id).unwrap();

    // A fresh box: another data dir, prefix and subnet.
    let mut b = Daemon::prepare_with(BIN, options());
    // The second backup (a third was taken since, with a tenant deleted
    // after it): restore picks the one it is told.
    let (code, out, err) = restore(&dir, Some(&second.id), &b.data_dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("restored backup {}", second.id)) && out.contains("4 containers"), "{out}");
    b.start_again();
    assert_eq!(b.token, a.token, "the admin token is the box's");
    let api_b = b.admin();

    // Every tenant with its id, name, URL and state.
    let summary = |cs: Vec<cubby_model::Container>| {
        let mut v: Vec<_> = cs.into_iter().map(|c| (c.id, c.name, c.url, c.status)).collect();
        v.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        v
    };
    assert_eq!(summary(api_b.containers(None, None, 100).unwrap().items), summary(containers_before));
    assert_eq!(data_of(&api_b, &web_id), expected_data, "the same /data, byte for byte");
    let r = http_get(b.proxy_addr, &web.url);
    assert_eq!((r.status, r.json()["greeting"].as_str()), (200, Some("hello from web")), "{}", r.body);
    assert_eq!(http_get(b.proxy_addr, &other.url).json()["greeting"], "hello from zeta");
    // The same rules; the one naming the proxy names this box's proxy.
    let gateway = |subnet: &str| subnet.replace(".0/24", ".1");
    let expected = serde_json::to_string(&firewall_before)
        .unwrap()
        .replace(&format!("\"source\":\"{}\"", gateway(&a.subnet)), &format!("\"source\":\"{}\"", gateway(&b.subnet)));
    assert_ne!(a.subnet, b.subnet);
    assert_eq!(serde_json::to_string(&api_b.firewall(&web_id).unwrap()).unwrap(), expected);
    let snapshots = api_b.snapshots(&web_id).unwrap();
    assert_eq!(snapshots.iter().map(|s| s.alias.clone()).collect::<Vec<_>>(), vec![Some("before-upgrade".into())]);
    api_b.start(copy.id.as_str()).unwrap();
    assert_eq!(sh(&api_b, copy.id.as_str(), "cat /data/seed").1, "seed\n", "the stopped copy's data");
    let script = http_get(b.proxy_addr, &format!("http://acme.exec.localhost:{}/hello", b.proxy_addr.port()));
    assert_eq!((script.status, script.body.as_str()), (200, "script ok"));

    // Tokens are the box's, and projects stay apart: acme's token sees
    // acme's tenants (the control), zeta's sees none of them.
    let as_acme = b.client(Some(&acme_token));
    let mine: Vec<String> =
        as_acme.containers(None, None, 100).unwrap().items.into_iter().map(|c| c.id.to_string()).collect();
    assert!(mine.contains(&web_id) && !mine.contains(&other.id.to_string()), "{mine:?}");
    let as_zeta = b.client(Some(&zeta_token));
    assert!(as_acme.container(&web_id).is_ok());
    assert!(as_zeta.container(&web_id).is_err(), "zeta cannot see acme's tenant on the restored box");
    let theirs: Vec<String> =
        as_zeta.containers(None, None, 100).unwrap().items.into_iter().map(|c| c.id.to_string()).collect();
    assert_eq!(theirs, vec![other.id.to_string()]);

    // A changed byte in a stream: refused before anything is made (the
    // restore above, of the same directory by the same command, is the
    // control).
    let mut bytes = std::fs::read(&web_stream).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&web_stream, &bytes).unwrap();
    let fresh = std::env::temp_dir().join(format!("cubby-restore-refused-{}", a.prefix));
    let (code, out, err) = restore(&dir, None, &fresh);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("does not match its checksum"), "{err}");
    assert!(!fresh.exists(), "nothing made for a refused backup");
    // A data dir that already holds a box is never overwritten.
    bytes[middle] ^= 0x20;
    std::fs::write(&web_stream, &bytes).unwrap();
    let (code, _, err) = restore(&dir, None, &b.data_dir);
    assert_ne!(code, 0);
    assert!(err.contains("already holds a box"), "{err}");
}

/// An S3 endpoint on loopback, serving the directory `root` (a bucket is a
/// directory of it) with s3s-fs and one access key, in a thread of this
/// test; it stops with the test process.
struct S3Server {
    root: tempfile::TempDir,
    endpoint: String,
}

const S3_KEY: &str = "cubby-test-key";
const S3_SECRET: &str = "cubby-test-secret-0123456789";

impl S3Server {
    fn start(buckets: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        for bucket in buckets {
            std::fs::create_dir(root.path().join(bucket)).unwrap();
        }
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY, S3_SECRET));
            b.build()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    let service = service.clone();
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(socket);
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                    });
                }
            });
        });
        Self { root, endpoint }
    }

    /// The environment that points a daemon or the CLI at this endpoint.
    fn env(&self, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", S3_KEY),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The object `key` of `bucket`, as stored.
    fn object(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }
}

/// `cubby restore --from URL` with `env`.
fn restore_from_bucket(url: &str, env: &[(String, String)], data_dir: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["restore", "--from", url, "--pool-size", "3GiB", "--data-dir"])
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run cubby restore");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_backup_in_an_s3_bucket_restores_a_box_and_a_failed_upload_leaves_nothing() {
    if !cubby_testkit::require_root("a_backup_in_an_s3_bucket_restores_a_box_and_a_failed_upload_leaves_nothing") {
        return;
    }
    let s3 = S3Server::start(&["cubby-backups"]);
    let url = "s3://cubby-backups/box-1";
    let env = s3.env(S3_SECRET);
    let a = Daemon::start_with(
        BIN,
        DaemonOptions {
            extra_args: vec!["--public-port".into(), PUBLIC_PORT.into(), "--backup-dir".into(), url.into()],
            env: env.clone(),
            ..Default::default()
        },
    );
    let api = a.admin();
    let acme = project(&api, "acme");
    let zeta = project(&api, "zeta");
    // Over one multipart part, so the stream goes up in parts.
    let web = web_with_data(&api, &acme, 12_000_000);
    let web_id = web.id.to_string();
    let other = container(&api, &zeta, "other", "hello from zeta");
    let zeta_token = api.create_token(zeta.id.as_str(), &CreateToken::default()).unwrap().secret;

    // To the daemon's --backup-dir through the CLI, then incremental
    // through the API after one tenant changed.
    let (code, out, err) = a.cli(&["backup", "--json"]);
    assert_eq!(code, 0, "{err}");
    let first: Backup = serde_json::from_str(&out).unwrap();
    assert_eq!(first.dir, format!("{url}/{}", first.id));
    assert!(s3.object("cubby-backups", &format!("box-1/{}/backup.json", first.id)).is_file());
    let stream = format!("box-1/{}/streams/container-{web_id}.btrfs", first.id);
    assert!(std::fs::metadata(s3.object("cubby-backups", &stream)).unwrap().len() > 12_000_000, "web's stream");
    assert!(!a.data_dir.join("backup-staging").exists(), "nothing staged is kept on the box");
    let (code, _, err) = sh(&api, &web_id, "echo more rows >> /data/rows.txt");
    assert_eq!(code, 0, "{err}");
    let second = api.backup(&CreateBackup { to: Some(url.into()) }).unwrap();
    assert_eq!(second.parent.as_ref(), Some(&first.id), "{second:?}");
    assert!(second.bytes_written < first.bytes_written / 4, "an increment: {first:?} {second:?}");
    let expected_data = data_of(&api, &web_id);
    assert!(expected_data.contains("precious\nmore rows\n") && expected_data.contains("blob: OK"), "{expected_data}");

    // An upload the store refuses halfway (its prefix is a file there, so
    // listing works and writing fails): the error says so, and nothing of
    // the attempt stays (the backups above, to the same store, are the
    // control).
    std::fs::write(s3.object("cubby-backups", "box-2"), b"in the way").unwrap();
    let snapshots = || {
        let mut v: Vec<_> = std::fs::read_dir(a.data_dir.join("pool/backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = snapshots();
    let (code, _, err) = sh(&api, &web_id, "echo not backed up >> /data/rows.txt");
    assert_eq!(code, 0, "{err}");
    let refused = api.backup(&CreateBackup { to: Some("s3://cubby-backups/box-2".into()) }).unwrap_err();
    assert!(format!("{refused:?}").contains("backup_store_failed"), "{refused:?}");
    assert_eq!(snapshots(), before, "no snapshot of the failed backup is left in the pool");
    assert!(!a.data_dir.join("backup-staging").exists());

    // Restored from the bucket into a fresh box: the newest complete
    // backup, the same tenants, data and URLs.
    let mut b = Daemon::prepare_with(BIN, options());
    let (code, out, err) = restore_from_bucket(url, &env, &b.data_dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("restored backup {}", second.id)) && out.contains("2 containers"), "{out}");
    assert!(!b.data_dir.join("restore-download").exists(), "the download is removed once restored");
    b.start_again();
    let api_b = b.admin();
    assert_eq!(data_of(&api_b, &web_id), expected_data, "the same /data, byte for byte");
    let r = http_get(b.proxy_addr, &web.url);
    assert_eq!((r.status, r.json()["greeting"].as_str()), (200, Some("hello from web")), "{}", r.body);
    assert_eq!(http_get(b.proxy_addr, &other.url).json()["greeting"], "hello from zeta");
    let as_zeta = b.client(Some(&zeta_token));
    assert!(as_zeta.container(other.id.as_str()).is_ok(), "control: zeta sees its own tenant");
    assert!(as_zeta.container(&web_id).is_err(), "zeta cannot see acme's tenant on the restored box");

    // Wrong credentials and a changed object: refused before anything is
    // made (the restore above, by the same command, is the control).
    let fresh = std::env::temp_dir().join(format!("cubby-restore-s3-refused-{}", a.prefix));
    let _cleanup = Cleanup(fresh.clone());
    let (code, out, err) = restore_from_bucket(url, &s3.env("not-the-secret"), &fresh);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("failed to"), "{err}");
    assert!(!fresh.join("cubby.db").exists() && !fresh.join("restore-download").exists());
    let object = s3.object("cubby-backups", &format!("box-1/{}/cubby.db", second.id));
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[100] ^= 0x20;
    std::fs::write(&object, &bytes).unwrap();
    let (code, out, err) = restore_from_bucket(url, &env, &fresh);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("does not match its checksum"), "{err}");
    assert!(!fresh.join("cubby.db").exists() && !fresh.join("restore-download").exists());
}
