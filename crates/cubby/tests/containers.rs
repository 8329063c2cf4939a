//! End to end, as root, against a real daemon: isolation between tenants,
//! stop and start, daemon restarts, delete, exec and logs.

mod support;

use cubby_testkit::{HostView, OutsideHost, http_get, processes_mounting};
use support::{container, daemon, init_pid, project, sh};

#[test]
fn two_tenants_from_one_image_are_isolated() {
    let Some(d) = daemon("two_tenants_from_one_image_are_isolated") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "tenant-a", "hello a");
    let b = container(&api, &p, "tenant-b", "hello b");
    assert_eq!(a.status, cubby_model::ContainerStatus::Running);

    // Each URL reaches its own app.
    let ra = http_get(d.proxy_addr, &a.url).json();
    let rb = http_get(d.proxy_addr, &b.url).json();
    assert_eq!((ra["greeting"].as_str(), ra["hostname"].as_str()), (Some("hello a"), Some("tenant-a")));
    assert_eq!((rb["greeting"].as_str(), rb["hostname"].as_str()), (Some("hello b"), Some("tenant-b")));

    // Files: a file written in A is absent in B.
    assert_eq!(sh(&api, a.id.as_str(), "echo top-secret > /data/secret.txt").0, 0);
    let (code, _, _) = sh(&api, b.id.as_str(), "cat /data/secret.txt");
    assert_ne!(code, 0, "B must not see A's file");
    assert_eq!(sh(&api, a.id.as_str(), "cat /data/secret.txt").1.trim(), "top-secret");

    // Processes: a marker process in B is invisible in A, and A sees only its own.
    assert_eq!(sh(&api, b.id.as_str(), "sleep 300 >/dev/null 2>&1 &").0, 0);
    assert!(sh(&api, b.id.as_str(), "ps").1.contains("sleep 300"));
    let ps_a = sh(&api, a.id.as_str(), "ps -o pid,comm").1;
    assert!(!ps_a.contains("sleep"), "A sees B's process:\n{ps_a}");
    let commands: Vec<&str> = ps_a.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert!(
        commands.iter().all(|c| ["init", "cubby-demo", "sh", "ps"].contains(c)),
        "A sees processes that are not its own: {commands:?}"
    );
    assert!(ps_a.lines().any(|l| l.split_whitespace().next() == Some("1")), "A has its own PID 1");

    // Env: A's env is not in B.
    assert!(sh(&api, a.id.as_str(), "env").1.contains("GREETING=hello a"));
    let b_env = sh(&api, b.id.as_str(), "env").1;
    assert!(b_env.contains("GREETING=hello b") && !b_env.contains("hello a"), "{b_env}");

    // Network. The tool is cubby-fetch (busybox's `wget -T` crashes, which
    // made a failure prove nothing): its exit code says refused (7) or
    // timed out (28). Positive controls first, with the same tool from the
    // same container: its own app, and an outside host it may reach.
    let mut outside = OutsideHost::new(&d.prefix, &d.subnet);
    outside.serve_http(9080, "outside");
    let fetch = |url: &str| sh(&api, a.id.as_str(), &format!("cubby-fetch -t 2 {url}"));
    assert_eq!(fetch("http://127.0.0.1:8080/healthz").0, 0, "A's own app");
    assert_eq!(fetch(&format!("http://{}:9080/", outside.addr)), (0, "outside".into(), String::new()));
    // The firewall drops (silently: exit 28) what A sends to B and to the
    // host; the targets do answer others (the controls before each).
    let blocked = |url: String, what: &str| {
        let (code, out, err) = fetch(&url);
        assert_eq!(code, 28, "A reached {what} ({url}): {out}{err}");
    };
    let b_app = format!("http://{}:8080/healthz", b.address);
    assert_eq!(sh(&api, b.id.as_str(), &format!("cubby-fetch -t 2 {b_app}")).1, "ok", "control: B's app answers B");
    blocked(b_app, "B's app");
    let gateway = a.address.rsplit_once('.').map(|(net, _)| format!("{net}.1")).unwrap();
    let api_port = d.api_addr.port();
    let host_ip = std::process::Command::new("hostname").arg("-I").output().unwrap();
    let host_ip = String::from_utf8_lossy(&host_ip.stdout).split_whitespace().next().unwrap_or("").to_string();
    assert!(!host_ip.is_empty(), "the host has an address of its own");
    for (addr, what) in
        [(gateway.as_str(), "the API through the gateway"), (host_ip.as_str(), "the API through the host's address")]
    {
        let from_host = std::net::TcpStream::connect_timeout(
            &format!("{addr}:{api_port}").parse().unwrap(),
            std::time::Duration::from_secs(2),
        );
        assert!(from_host.is_ok(), "control: the API listens on {addr}:{api_port}");
        blocked(format!("http://{addr}:{api_port}/api/v1/health"), what);
    }
    // While the host (the proxy) still reaches B.
    assert_eq!(http_get(d.proxy_addr, &b.url).status, 200);
}

#[test]
fn stop_frees_everything_and_start_keeps_data() {
    let Some(d) = daemon("stop_frees_everything_and_start_keeps_data") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "web", "hi");
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 1);
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 2);
    assert_eq!(sh(&api, a.id.as_str(), "echo kept > /data/note").0, 0);
    // Its root is mounted in its own mount namespace, never on the host.
    let running = HostView::of(&d);
    assert!(running.mounts.iter().all(|m| !m.contains("rootfs")), "a root on the host: {:?}", running.mounts);
    let upper = format!("upperdir={}", d.data_dir.join("pool/containers").join(a.id.as_str()).join("upper").display());
    let pid = support::init_pid(&d, a.id.as_str()).expect("it runs");
    assert!(processes_mounting(&upper).contains(&pid), "its init has its root");
    let note = std::fs::read_to_string(format!("/proc/{pid}/root/data/note")).expect("its files, through its init");
    assert_eq!(note, "kept\n");

    assert!(
        running.runtime.iter().any(|r| r.contains(a.id.as_str())),
        "control: the runtime knows A: {:?}",
        running.runtime
    );
    assert!(
        running.cgroups.iter().any(|c| c.contains(a.id.as_str())),
        "control: A has a cgroup: {:?}",
        running.cgroups
    );
    let stopped = api.stop(a.id.as_str()).unwrap();
    assert_eq!(stopped.status, cubby_model::ContainerStatus::Stopped);
    let host = HostView::of(&d);
    assert!(host.runtime.is_empty(), "runtime still knows: {:?}", host.runtime);
    assert!(host.cgroups.iter().all(|c| !c.contains(a.id.as_str())), "cgroup left: {:?}", host.cgroups);
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/{}/{}", d.prefix, a.id)).exists());
    assert_eq!(processes_mounting(&upper), Vec::<u32>::new(), "its root is mounted nowhere");
    // With autostart off, a request does not wake it (the wake tests cover autostart).
    let patch = cubby_model::UpdateContainer { autostart: Some(false), ..Default::default() };
    api.update_container(a.id.as_str(), &patch).unwrap();
    let r = http_get(d.proxy_addr, &a.url);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "container_stopped");
    assert!(r.header("retry-after").is_some());

    let started = api.start(a.id.as_str()).unwrap();
    assert_eq!(started.status, cubby_model::ContainerStatus::Running);
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 3, "the visit counter continues");
    assert_eq!(sh(&api, a.id.as_str(), "cat /data/note").1.trim(), "kept");
    let t = api.transitions(a.id.as_str()).unwrap();
    let path: Vec<&str> = t.iter().map(|t| t.to.as_str()).collect();
    assert_eq!(path, ["creating", "running", "stopped", "running"]);
}

#[test]
fn containers_survive_daemon_restarts() {
    let Some(mut d) = daemon("containers_survive_daemon_restarts") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let b = container(&api, &p, "b", "y");
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 1);
    let pids = (init_pid(&d, a.id.as_str()).unwrap(), init_pid(&d, b.id.as_str()).unwrap());

    d.restart();
    let api = d.admin();
    assert_eq!(
        (init_pid(&d, a.id.as_str()).unwrap(), init_pid(&d, b.id.as_str()).unwrap()),
        pids,
        "processes kept running"
    );
    // The URL port may change between runs (port 0 in tests), the route comes back.
    let a_now = api.container(a.id.as_str()).unwrap();
    assert_eq!(http_get(d.proxy_addr, &a_now.url).json()["visits"], 2);

    d.crash_and_restart();
    let api = d.admin();
    assert_eq!((init_pid(&d, a.id.as_str()).unwrap(), init_pid(&d, b.id.as_str()).unwrap()), pids);
    let b_now = api.container(b.id.as_str()).unwrap();
    assert_eq!(http_get(d.proxy_addr, &b_now.url).json()["visits"], 1);
    assert_eq!(HostView::of(&d).runtime.len(), 2, "nothing duplicated");
    assert_eq!(api.containers(None, None, 100).unwrap().items.len(), 2);
    // No start was recorded by the restarts: the containers never stopped.
    assert_eq!(api.transitions(a.id.as_str()).unwrap().len(), 2);
}

#[test]
fn a_container_killed_while_the_daemon_is_down_is_started_again() {
    let Some(mut d) = daemon("a_container_killed_while_the_daemon_is_down_is_started_again") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    d.stop_with(nix::sys::signal::Signal::SIGTERM);
    let pid = init_pid(&d, a.id.as_str()).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.restart();
    let api = d.admin();
    let now = api.container(a.id.as_str()).unwrap();
    assert_eq!(now.status, cubby_model::ContainerStatus::Running);
    assert_eq!(http_get(d.proxy_addr, &now.url).status, 200);
    let last = api.transitions(a.id.as_str()).unwrap().pop().unwrap();
    assert_eq!(last.trigger, cubby_model::Trigger::Reconcile);
}

#[test]
fn delete_leaves_nothing_of_the_tenant() {
    let Some(d) = daemon("delete_leaves_nothing_of_the_tenant") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "doomed", "bye");
    let b = container(&api, &p, "survivor", "hi");
    assert_eq!(sh(&api, a.id.as_str(), "dd if=/dev/zero of=/data/blob bs=1k count=64 2>/dev/null").0, 0);
    let before = HostView::of(&d);
    assert!(!before.mentions(a.id.as_str()).is_empty());
    assert!(init_pid(&d, a.id.as_str()).is_some(), "control: A runs before the delete");

    api.delete_container(a.id.as_str()).unwrap();

    // When the call returns, nothing of the tenant runs or is stored.
    let now = HostView::of(&d);
    assert_eq!(now.subvolumes.len(), before.subvolumes.len() - 1, "its files are gone");
    assert!(now.logs.iter().all(|l| !l.contains(a.id.as_str())), "its logs are gone");
    assert!(init_pid(&d, a.id.as_str()).is_none(), "its processes are gone");
    let upper = format!("upperdir={}", d.data_dir.join("pool/containers").join(a.id.as_str()).join("upper").display());
    assert_eq!(processes_mounting(&upper), Vec::<u32>::new(), "its root is mounted nowhere");
    // The plumbing (veth, namespace, cgroup, runtime state) follows at once.
    let after = HostView::settled(&d);
    assert!(after.mentions(a.id.as_str()).is_empty(), "left on the host: {:?}", after.mentions(a.id.as_str()));
    assert_eq!(after.links.len(), before.links.len() - 1, "the veth is gone: {:?}", after.links);
    assert_eq!(after.subvolumes.len(), before.subvolumes.len() - 1);
    assert!(!d.run_dir.join("containers").join(a.id.as_str()).exists());
    assert_eq!(api.container(a.id.as_str()).unwrap_err().code(), Some("container_not_found"));
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 404, "the route is gone");

    let db = rusqlite::Connection::open(d.data_dir.join("cubby.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [a.id.as_str()], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM containers WHERE id = ?1"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM transitions WHERE container_id = ?1"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM audit WHERE container_id = ?1 AND action = 'container.deleted'"), 1);
    let dump: String = db
        .query_row(
            "SELECT group_concat(action || coalesce(project_id,'') || coalesce(container_id,'')) FROM audit",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains("doomed"), "the audit holds no tenant data");

    // The other tenant is untouched.
    assert_eq!(http_get(d.proxy_addr, &b.url).status, 200);
}

#[test]
fn exec_reports_exit_codes_and_logs_show_app_output() {
    let Some(d) = daemon("exec_reports_exit_codes_and_logs_show_app_output") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let (code, out, err) = sh(&api, a.id.as_str(), "echo out; echo err >&2; exit 3");
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    assert_eq!(sh(&api, a.id.as_str(), "hostname").1.trim(), "a");
    // The test daemon runs with --dns 192.0.2.53 (see the testkit).
    assert_eq!(sh(&api, a.id.as_str(), "cat /etc/resolv.conf").1, "nameserver 192.0.2.53\n");
    assert!(sh(&api, a.id.as_str(), "cat /etc/hosts").1.contains(&format!("{}\ta", a.address)));
    assert!(sh(&api, a.id.as_str(), "mount").1.contains("/ramdisk"));
    let logs = api.logs(a.id.as_str(), 4096).unwrap();
    assert!(logs.contains("cubby-demo: listening"), "logs: {logs}");
    api.stop(a.id.as_str()).unwrap();
    assert_eq!(api.exec_args(a.id.as_str(), &["true"]).unwrap_err().code(), Some("container_not_running"));
}

#[test]
fn a_command_that_fails_to_start_is_rolled_back() {
    let Some(d) = daemon("a_command_that_fails_to_start_is_rolled_back") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let before = HostView::of(&d);
    let req = cubby_model::CreateContainer {
        name: "broken".into(),
        command: Some(vec!["/bin/sh".into(), "-c".into(), "echo dying words; exit 7".into()]),
        ..Default::default()
    };
    let err = api.create_container(p.id.as_str(), &req).unwrap_err();
    assert_eq!(err.code(), Some("start_failed"), "{err}");
    match err {
        cubby_client::ClientError::Api { details: Some(details), .. } => {
            assert!(details["log_tail"].as_str().unwrap_or("").contains("dying words"), "{details}");
        }
        other => panic!("no details: {other}"),
    }
    assert_eq!(HostView::settled(&d), before, "nothing is left behind");
    assert!(api.containers(None, None, 10).unwrap().items.is_empty());
}

#[test]
fn a_tenant_cannot_fill_the_host_through_its_output() {
    let Some(d) = daemon("a_tenant_cannot_fill_the_host_through_its_output") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let b = container(&api, &p, "quiet", "y");
    // Its app floods its own stdout with 2 GiB as fast as it can (bounded:
    // dd stops there, and the container is deleted at the end). Its stdout
    // is a pipe the daemon reads, so `ftruncate` or `fallocate` of it fail
    // (see the runtime's logs tests) and its log is capped.
    let req = cubby_model::CreateContainer {
        name: "noisy".into(),
        command: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo first-words; dd if=/dev/zero bs=64k count=32768 2>/dev/null & exec /usr/local/bin/cubby-demo".into(),
        ]),
        ..Default::default()
    };
    let a = api.create_container(p.id.as_str(), &req).unwrap();
    let id = a.id.as_str();
    let logs = d.data_dir.join("logs");
    let mut largest = 0u64;
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Bytes on disk (allocated blocks, so a sparse file counts as it
        // costs) of A's logs: at most two files of the 1 MiB cap.
        let used: u64 = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(id))
            .map(|e| std::os::unix::fs::MetadataExt::blocks(&e.metadata().unwrap()) * 512)
            .sum();
        largest = largest.max(used);
        assert!(used <= 2 * (1 << 20) + (64 << 10), "A's logs use {used} bytes on the host");
        // Other tenants, A's own app and the API keep answering.
        assert_eq!(http_get(d.proxy_addr, &b.url).status, 200);
        assert_eq!(http_get(d.proxy_addr, &a.url).status, 200);
        assert!(api.health().is_ok());
    }
    assert!(largest > 1 << 20, "the flood reached the log ({largest} bytes): the check above had something to check");
    assert!(api.logs(id, 1 << 20).unwrap().len() >= 1 << 19, "A's recent output can be read");
    // The flood is held back, not swallowed: dd still runs after 3 s
    // (unbounded it would have finished 2 GiB long ago).
    assert!(sh(&api, id, "ps").1.contains("dd"), "the writer is held back by the pipe");
    api.delete_container(id).unwrap();
    assert!(
        std::fs::read_dir(&logs).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(id)),
        "A's logs went with it"
    );
}
