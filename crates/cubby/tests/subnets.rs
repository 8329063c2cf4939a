//! End to end, as root: two daemons share a host only with their own
//! subnets. A second daemon given a subnet the first one routes refuses to
//! start, says which interface holds it and what to change, and makes no
//! bridge, firewall table or pool of its own.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{BIN, container, daemon, project};

#[test]
fn a_second_daemon_on_a_taken_subnet_refuses_to_start() {
    let Some(d) = daemon("a_second_daemon_on_a_taken_subnet_refuses_to_start") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");

    let prefix = format!("s{}", std::process::id() % 10_000_000);
    let data = std::env::temp_dir().join(format!("cubby-test-{prefix}"));
    let run = std::path::PathBuf::from(format!("/run/{prefix}"));
    let mut child = Command::new(BIN)
        .args(["serve", "--prefix", &prefix, "--subnet", &d.subnet])
        .args(["--api-listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--run-dir")
        .arg(&run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second daemon");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second daemon started on a subnet the first one routes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("read stderr");
    assert!(!status.success(), "it must fail");
    assert!(
        err.contains(&d.subnet) && err.contains(&format!("{}-br", d.prefix)) && err.contains("--subnet"),
        "the message names the subnet, who holds it and the flag: {err}"
    );
    // Nothing of it on the host.
    // (Controls: the same listings show the first daemon's.)
    let links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(links.contains(&format!("{}-br", d.prefix)), "control: the first daemon's bridge is listed");
    assert!(!links.contains(&format!("{prefix}-")), "a link was made");
    let tables = Command::new("nft").args(["list", "tables"]).output().expect("nft");
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(tables.contains(&d.prefix), "control: the first daemon's table is listed");
    assert!(!tables.contains(&prefix), "a firewall table was made");
    assert!(!data.join("pool.img").exists(), "a pool was made");
    // The first daemon's tenant is untouched.
    let now = api.container(a.id.as_str()).unwrap();
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &now.url).status, 200);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&run);
}
