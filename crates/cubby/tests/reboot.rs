//! End to end, as root: a simulated host reboot. The daemon is stopped,
//! then everything a reboot loses goes: every container process, every
//! mount (namespace pins and the loop pool), the loop device,
//! /run (runtime state, netns files), links, the nft tables and the
//! cgroups. The next start must remount the pool, start exactly the
//! containers that should run, with their data, rules and URLs, and leave
//! the stopped ones stopped.

mod support;

use std::path::Path;
use std::process::Command;

use cubby_model::ContainerStatus;
use cubby_testkit::{Daemon, http_get};
use support::{container, daemon, init_pid, project, sh};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a host command");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut found: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|t| Path::new(t).starts_with(dir))
        .map(str::to_owned)
        .collect();
    found.sort_by_key(|t| std::cmp::Reverse(t.len()));
    found.dedup();
    found
}

/// What a power cycle takes from the host, for this daemon only.
fn reboot(d: &mut Daemon, running: &[&str]) {
    d.stop_with(nix::sys::signal::Signal::SIGTERM);
    // Every process dies.
    for id in running {
        let pid = init_pid(d, id).expect("the container runs before the reboot");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill the init");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Every mount goes (the pool last), then its loop device.
    for dir in [&d.run_dir, &d.data_dir] {
        for target in mounts_under(dir) {
            run(Command::new("umount").arg(&target));
        }
    }
    assert!(mounts_under(&d.data_dir).is_empty(), "the pool is unmounted");
    let image = d.data_dir.join("pool.img");
    for dev in run(Command::new("losetup").args(["-n", "-O", "NAME", "-j"]).arg(&image)).split_whitespace() {
        run(Command::new("losetup").args(["-d", dev]));
    }
    // /run is a tmpfs: runtime state and netns files are gone.
    std::fs::remove_dir_all(&d.run_dir).expect("remove the run dir");
    // Links, nft tables and cgroups do not survive a reboot.
    let links = run(Command::new("ip").args(["-o", "link", "show"]));
    for name in links.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap_or(n)) {
        if name.starts_with(&format!("{}-", d.prefix)) || name == format!("{}0", d.prefix) {
            let _ = Command::new("ip").args(["link", "del", name]).status();
        }
    }
    for family in ["inet", "bridge"] {
        let _ = Command::new("nft").args(["delete", "table", family, &d.prefix]).status();
    }
    for controller in std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").filter_map(Result::ok) {
        let ours = controller.path().join(&d.prefix);
        if ours.is_dir() {
            run(Command::new("find").arg(&ours).args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]));
        }
    }
}

#[test]
fn after_a_reboot_the_pool_comes_back_and_running_containers_start() {
    let Some(mut d) = daemon("after_a_reboot_the_pool_comes_back_and_running_containers_start") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "alpha");
    let b = container(&api, &p, "b", "beta");
    let asleep = container(&api, &p, "asleep", "zzz");
    assert_eq!(sh(&api, a.id.as_str(), "echo precious > /data/keep.txt").0, 0);
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 1);
    assert_eq!(http_get(d.proxy_addr, &b.url).json()["visits"], 1);
    let added = api
        .raw(
            "POST",
            &format!("/api/v1/containers/{}/firewall/egress", a.id),
            Some(br#"{"action":"drop","protocol":"tcp","ports":"25","description":"no mail","position":0}"#),
        )
        .expect("add a rule");
    assert_eq!(added.status, 201, "{}", String::from_utf8_lossy(&added.body));
    let rule_id = added.json()["id"].as_str().expect("rule id").to_owned();
    api.stop(asleep.id.as_str()).unwrap();

    reboot(&mut d, &[a.id.as_str(), b.id.as_str()]);
    assert!(init_pid(&d, a.id.as_str()).is_none());
    d.restart();
    let api = d.admin();

    // The pool is mounted again from its loop file, and the data is there.
    assert!(!mounts_under(&d.data_dir).is_empty(), "the pool is mounted again");
    for (c, greeting) in [(&a, "alpha"), (&b, "beta")] {
        let now = api.container(c.id.as_str()).unwrap();
        assert_eq!(now.status, ContainerStatus::Running, "{} runs again", c.name);
        let page = http_get(d.proxy_addr, &now.url).json();
        assert_eq!(page["greeting"], greeting);
        assert_eq!(page["visits"], 2, "{}'s SQLite survived", c.name);
        assert_eq!(api.transitions(c.id.as_str()).unwrap().pop().unwrap().trigger, cubby_model::Trigger::Reconcile);
    }
    assert_eq!(sh(&api, a.id.as_str(), "cat /data/keep.txt").1, "precious\n");
    // The stopped one stays stopped.
    assert_eq!(api.container(asleep.id.as_str()).unwrap().status, ContainerStatus::Stopped);
    assert!(init_pid(&d, a.id.as_str()).is_some(), "control: the runtime answers for the running one");
    assert!(init_pid(&d, asleep.id.as_str()).is_none());
    // Its rules are back in the kernel.
    let rules = api.raw("GET", &format!("/api/v1/containers/{}/firewall", a.id), None).unwrap().json();
    assert!(rules["egress"].as_array().unwrap().iter().any(|r| r["id"] == rule_id.as_str()), "{rules}");
    let table = run(Command::new("nft").args(["list", "table", "inet", &d.prefix]));
    assert!(table.contains(&format!("e_{}", a.id)) && table.contains("dport 25"), "rules re-applied:\n{table}");
    // And the host matches the database.
    let (code, report) = support::doctor(&d, &[]);
    assert_eq!(code, 0, "drift after reboot:\n{report}");
}
