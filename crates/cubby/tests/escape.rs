//! End to end, as root: what a tenant with root in its container cannot
//! do. Docker's default seccomp profile is in force, namespaces cannot be
//! made, `/proc` and `/sys` are masked, another tenant's files are nowhere
//! to be seen, the network cannot be reconfigured, and a neighbour's
//! fork bomb, memory hog, CPU hog or disk filler stays in its container.

mod support;

use std::time::{Duration, Instant};

use cubby_model::{CreateContainer, LimitsSpec};
use cubby_testkit::http_get;
use support::{container, daemon, project, sh};

#[test]
fn a_tenant_cannot_escape_its_container() {
    let Some(d) = daemon("a_tenant_cannot_escape_its_container") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let b = container(&api, &p, "b", "y");
    assert_eq!(sh(&api, b.id.as_str(), "echo b-private-7d1e > /data/secret").0, 0);
    let run = |script: &str| sh(&api, a.id.as_str(), script);

    // The syscall filter is on (mode 2: filter) for every process.
    let (_, status, _) = run("grep -E '^Seccomp:' /proc/self/status");
    assert_eq!(status.split_whitespace().nth(1), Some("2"), "seccomp filter mode: {status}");
    // Each refusal below must say it was refused (the kernel's or the
    // syscall filter's errno), so a missing tool (127), a crash (139) or a
    // wrong path cannot pass for one.
    let refused = |cmd: &str| {
        let (code, out, err) = run(cmd);
        let said = ["not permitted", "Function not implemented", "Read-only file system", "Permission denied"]
            .iter()
            .any(|why| err.contains(why));
        assert!(code != 0 && said, "`{cmd}` must be refused: exit {code}, {out}{err}");
    };
    // No new namespaces (a user namespace would be the first step out).
    for cmd in ["unshare -U true", "unshare -n true", "unshare -m true", "unshare -p -f true"] {
        refused(cmd);
    }
    // No mounts, no module loading, no hostname change. (/ramdisk is a
    // mount point, as the control shows.)
    assert_eq!(run("grep -q ' /ramdisk ' /proc/self/mountinfo").0, 0, "control: /ramdisk is mounted");
    for cmd in [
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
        "umount /ramdisk",
        "echo x > /tmp/x.ko && insmod /tmp/x.ko",
        "hostname evil",
    ] {
        refused(cmd);
    }
    // Docker's capability set: no SYS_ADMIN (21), SYS_TIME (25), SYS_MODULE
    // (16), NET_ADMIN (12), SYS_PTRACE (19) or SYS_BOOT (22).
    let (_, caps, _) = run("grep -E '^CapEff:' /proc/self/status");
    let eff = u64::from_str_radix(caps.split_whitespace().nth(1).unwrap_or(""), 16).unwrap();
    assert_ne!(eff, 0, "control: root in A has capabilities ({caps})");
    for bit in [12, 16, 19, 21, 22, 25] {
        assert_eq!(eff & (1 << bit), 0, "capability {bit} is held: {caps}");
    }
    // Masked and read-only kernel files (where this host's kernel has them).
    for (file, masked) in
        [("/proc/kcore", "wc -c < /proc/kcore"), ("/proc/sysrq-trigger", "echo b > /proc/sysrq-trigger")]
    {
        if std::path::Path::new(file).exists() {
            let (code, out, _) = run(masked);
            assert!(code != 0 || out.trim() == "0", "{file} is reachable from A: {out}");
        } else {
            eprintln!("this kernel has no {file}: nothing to mask");
        }
    }
    assert_ne!(run("ls /sys/class/net | wc -l").1.trim(), "0", "control: A lists a /sys directory");
    assert_eq!(run("ls /sys/firmware | wc -l").1.trim(), "0", "/sys/firmware is masked");
    refused("echo 1 > /proc/sys/vm/drop_caches");
    // Another tenant's files are nowhere in this one's view. Control: the
    // same search finds A's own marker.
    assert_eq!(run("echo a-private-5c2f > /data/mine").0, 0);
    let search = |marker: &str| {
        run(&format!("grep -rls {marker} /data /etc /root /home /tmp /ramdisk /var /run /usr /bin /sbin 2>/dev/null"))
    };
    assert_eq!(search("a-private-5c2f").1.trim(), "/data/mine", "control: the search finds A's own file");
    assert_eq!(search("b-private-7d1e").1.trim(), "", "B's file is visible from A");
    let (_, mounts, _) = run("cat /proc/self/mountinfo");
    assert!(mounts.contains(a.id.as_str()), "control: A's mounts name A's own layer: {mounts}");
    assert!(!mounts.contains(b.id.as_str()), "A's mounts name B: {mounts}");
    let (code, _, err) = run(&format!("ls {}", d.data_dir.join("pool/containers").display()));
    assert!(code != 0 && err.contains("No such file"), "the host's pool path does not exist inside A: {err}");
    // The network stays as the host set it: no new address, no other MAC,
    // no route changes (CAP_NET_ADMIN is not granted).
    assert!(run("ip addr show eth0").1.contains(&a.address), "control: ip works and shows A's address");
    for cmd in [
        format!("ip addr add {}/32 dev eth0", b.address),
        "ip link set eth0 address 02:00:00:00:00:01".to_string(),
        "ip route add 1.2.3.4 dev eth0".to_string(),
        "ip link add dummy0 type dummy".to_string(),
    ] {
        refused(&cmd);
    }
    let (_, ps, _) = run("ps -o pid,comm");
    assert!(ps.contains("cubby-demo"), "control: ps lists A's app: {ps}");
    assert!(!ps.contains("cubby ") && !ps.contains("runc"), "host processes are visible: {ps}");
    // B is untouched.
    assert_eq!(sh(&api, b.id.as_str(), "cat /data/secret").1.trim(), "b-private-7d1e");
    assert_eq!(http_get(d.proxy_addr, &b.url).status, 200);
}

#[test]
fn root_in_a_container_is_an_unprivileged_uid_on_the_host() {
    let Some(d) = daemon("root_in_a_container_is_an_unprivileged_uid_on_the_host") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let run = |script: &str| sh(&api, a.id.as_str(), script);
    // Inside: root, in a user namespace that maps 0 to 1000000.
    assert_eq!(run("id -u").1.trim(), "0");
    let (_, map, _) = run("cat /proc/self/uid_map");
    assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "1000000", "65536"], "{map}");
    // All containers' root is that one host uid, and runc gives each a
    // session keyring: the daemon raised the per-uid key quota (200 by
    // default) so its subnet's worth of containers can start.
    let maxkeys: u64 = std::fs::read_to_string("/proc/sys/kernel/keys/maxkeys").unwrap().trim().parse().unwrap();
    assert!(maxkeys >= 2 * 250 + 200, "kernel.keys.maxkeys is {maxkeys}");
    // Likewise inotify: one tenant's watchers must not use up everyone's.
    let instances: u64 =
        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap().trim().parse().unwrap();
    assert!(instances >= 128 * 250, "fs.inotify.max_user_instances is {instances}");
    // Its open files are a service's, not the daemon's (raised) limit.
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap().1.min(524_288);
    let limits = run("grep 'Max open files' /proc/1/limits").1;
    assert_eq!(limits.split_whitespace().skip(3).take(2).collect::<Vec<_>>(), ["1024", &hard.to_string()], "{limits}");
    // Outside: its processes and its files belong to uid 1000000.
    let pid = support::init_pid(&d, a.id.as_str()).expect("runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_owned();
    assert!(uids.split_whitespace().skip(1).all(|u| u == "1000000"), "host uids of its init: {uids}");
    assert_eq!(run("echo mine > /data/mine; ls -ln /data/mine | awk '{print $3}'").1.trim(), "0");
    let on_host = d.data_dir.join(format!("pool/containers/{}/upper/data/mine", a.id));
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&on_host).unwrap()), 1_000_000);
    // Image files look owned by root inside (they were shifted at import),
    // and root may change them in its own copy.
    assert_eq!(run("stat -c %u:%g /etc/passwd").1.trim(), "0:0");
    assert_eq!(run("echo 'x:x:1:1::/:/bin/sh' >> /etc/passwd").0, 0);
    // Root owns its network namespace: it may bind port 80, but the host
    // still decides its address and routes (tested above).
    let (code, _, err) =
        run("busybox httpd -f -p 127.0.0.1:80 -h / & sleep 0.3; netstat -ltn | grep -q ':80 '; r=$?; kill $!; exit $r");
    assert_eq!(code, 0, "root binds port 80 in its own namespace: {err}");
    // What the host's root owns stays out of reach, even where it is seen.
    let (code, _, _) = run("echo pwned > /etc/hosts");
    assert_ne!(code, 0, "/etc/hosts is the host's file, mounted read-only");
    let (_, who, _) = run("stat -c %u /.cubby/init");
    assert_eq!(who.trim(), "65534", "host root's files show as nobody");
}

/// B's latencies (ms) over `rounds` requests while `during` runs in A.
fn b_while(d: &cubby_testkit::Daemon, url: &str, rounds: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = http_get(d.proxy_addr, &format!("{url}/healthz"));
        assert_eq!(r.status, 200, "B stopped answering while A misbehaved: {}", r.body);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    times
}

#[test]
fn noisy_neighbours_stay_in_their_container() {
    let Some(d) = daemon("noisy_neighbours_stay_in_their_container") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let limits = LimitsSpec {
        cpu: Some(0.5),
        memory: Some(cubby_model::ByteSize(96 << 20)),
        pids: Some(64),
        disk: Some(cubby_model::ByteSize(32 << 20)),
    };
    let req = CreateContainer { limits: Some(limits), ..support::create_req("noisy", "x") };
    let a = api.create_container(p.id.as_str(), &req).unwrap();
    let b = container(&api, &p, "quiet", "y");
    let baseline = b_while(&d, &b.url, 10);

    // Each hog runs in the background in A for a bounded time.
    let hogs = [
        ("fork bomb", "(timeout 8 sh -c 'f() { f | f & }; f' >/dev/null 2>&1 &); sleep 1; ps | wc -l"),
        ("memory hog", "(timeout 8 sh -c 'x=a; while true; do x=$x$x; done' >/dev/null 2>&1 &); sleep 1; echo started"),
        ("cpu hog", "(timeout 8 sh -c 'while :; do :; done' & timeout 8 sh -c 'while :; do :; done' &) ; echo started"),
        ("disk filler", "dd if=/dev/zero of=/data/fill bs=1M count=200 2>&1 | tail -1; ls -l /data/fill"),
    ];
    let mut report = Vec::new();
    for (what, script) in hogs {
        let (_, out, err) = sh(&api, a.id.as_str(), script);
        let times = b_while(&d, &b.url, 20);
        let max = times.iter().copied().fold(0.0, f64::max);
        report.push(format!(
            "{what}: B max {max:.1} ms over {} requests ({} / {})",
            times.len(),
            out.trim(),
            err.trim()
        ));
    }
    // The hogs did their worst, and the limits held inside A: the pids
    // cap, the memory limit, the disk quota.
    // Read from the host: after a fork bomb, A itself may not fork a `cat`.
    let cgroup = |v1: &str, v2: &str| {
        let (controller, file) = v1.split_once('/').unwrap();
        let candidates = [
            format!("/sys/fs/cgroup/{controller}/{}/{}/{file}", d.prefix, a.id),
            format!("/sys/fs/cgroup/{}/{}/{v2}", d.prefix, a.id),
        ];
        candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_else(|| panic!("none of {candidates:?}"))
    };
    assert_eq!(cgroup("pids/pids.max", "pids.max").trim(), "64");
    // The kernel counts the forks the pids limit refused.
    let events = cgroup("pids/pids.events", "pids.events");
    let refused_forks: u64 =
        events.lines().find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok())).unwrap_or(0);
    assert!(refused_forks > 0, "the fork bomb reached A's pids limit: {events} ({})", report[0]);
    // The kernel counts the processes the memory limit killed.
    let oom = cgroup("memory/memory.oom_control", "memory.events");
    let kills: u64 =
        oom.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())).unwrap_or(0);
    assert!(kills > 0, "the memory hog reached A's limit: {oom} ({})", report[1]);
    let (_, size, _) = sh(&api, a.id.as_str(), "wc -c < /data/fill");
    let size: u64 = size.trim().parse().unwrap_or(u64::MAX);
    assert!(
        (16 << 20..=33 << 20).contains(&size),
        "the disk filler wrote up to the 32 MiB quota and no further: {size}"
    );
    eprintln!("B baseline max {:.1} ms; {}", baseline.iter().copied().fold(0.0, f64::max), report.join("; "));
    // And B's data and process are as they were.
    assert_eq!(http_get(d.proxy_addr, &b.url).json()["greeting"], "y");
    assert_eq!(api.transitions(b.id.as_str()).unwrap().len(), 2, "B never restarted");
}
