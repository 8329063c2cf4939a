//! Integration tests of [`RtNetlink`] against the running kernel (as root):
//! the bridge, namespaces, veth attachments, port isolation between
//! containers with reachability from the host, idempotent removals,
//! rollback of failed attachments, and informational timings.
//!
//! Each test works under its own names (`<tag><pid>-…`), its own /24 and its
//! own namespace directory under `/run/cubby-nltest-<pid>/`, and a [`Scratch`]
//! guard removes all of it when the test ends, even on failure.

use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cubby_network::{Attachment, BridgeConfig, Netlink, NetlinkError, RtNetlink};
use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoBridgePort, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use nix::mount::{MntFlags, umount2};
use nix::sched::{CloneFlags, setns};
use rtnetlink::RouteMessageBuilder;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the test can run. Without root it panics under `CI=true` and
/// otherwise says loudly that it did not run.
fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
        "{test} needs root (netlink, mounts, namespaces) and CI=true forbids skipping it"
    );
    // Straight to the stderr stream: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: it needs root (netlink, mounts, namespaces); run the tests as root !!!!!!!!\n"
    );
    false
}

/// Names, subnet and namespace directory private to one test; dropping it
/// removes every link, namespace and directory the test may have left.
struct Scratch {
    prefix: String,
    dir: PathBuf,
    net: [u8; 3],
}

impl Scratch {
    /// `tag` is two letters unique among the tests, `subnet` a number unique
    /// among them too.
    fn new(tag: &str, subnet: u8) -> Self {
        let pid = std::process::id();
        // "<tag><pid ≤ 7 digits>-<≤ 3>" stays within 15 bytes.
        let prefix = format!("{tag}{pid}");
        let dir = PathBuf::from(format!("/run/cubby-nltest-{pid}/{tag}"));
        let second = 200 + u8::try_from(pid % 50).expect("below 50");
        Self { prefix, dir, net: [10, second, subnet] }
    }

    /// What every link name of this test starts with.
    fn link_prefix(&self) -> String {
        format!("{}-", self.prefix)
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, host)
    }

    fn bridge(&self) -> BridgeConfig {
        BridgeConfig { name: format!("{}-br", self.prefix), gateway: self.ip(1), prefix_len: 24 }
    }

    fn netns(&self, n: u8) -> PathBuf {
        self.dir.join(format!("c{n}"))
    }

    fn attachment(&self, n: u8) -> Attachment {
        Attachment {
            host_ifname: format!("{}-{n}", self.prefix),
            netns: self.netns(n),
            address: self.ip(n + 1),
            prefix_len: 24,
            gateway: self.ip(1),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (prefix, dir) = (self.link_prefix(), self.dir.clone());
        // Own thread and runtime: drop may run inside the test's runtime.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let nl = RtNetlink::new().expect("netlink connection");
                for link in nl.links_with_prefix(&prefix).await.unwrap_or_default() {
                    if let Err(e) = nl.detach(&link).await {
                        eprintln!("cleanup: could not delete {link}: {e:?}");
                    }
                }
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if let Err(e) = nl.delete_netns(&entry.path()).await {
                        eprintln!("cleanup: could not delete {}: {e:?}", entry.path().display());
                    }
                }
            });
            // The directory's bind mount of itself (at most a few).
            while umount2(&dir, MntFlags::MNT_DETACH).is_ok() {}
            let _ = std::fs::remove_dir(&dir);
            if let Some(parent) = dir.parent() {
                while umount2(parent, MntFlags::MNT_DETACH).is_ok() {}
                let _ = std::fs::remove_dir(parent);
            }
        })
        .join();
        if cleaned.is_err() {
            eprintln!("cleanup of {} panicked", self.dir.display());
        }
    }
}

/// Runs `f` on a thread that entered the network namespace at `netns`.
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(netns).expect("open netns");
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("thread in netns panicked")
}

/// Links, addresses and IPv4 routes of one network namespace.
#[derive(Debug)]
struct NetView {
    links: Vec<LinkMessage>,
    addresses: Vec<AddressMessage>,
    routes: Vec<RouteMessage>,
}

impl NetView {
    /// Of the calling thread's namespace.
    async fn current() -> Self {
        let (connection, handle, _) = rtnetlink::new_connection().expect("netlink");
        tokio::spawn(connection);
        let links = handle.link().get().execute().try_collect().await.expect("dump links");
        let addresses = handle.address().get().execute().try_collect().await.expect("dump addresses");
        let routes = handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .expect("dump routes");
        Self { links, addresses, routes }
    }

    /// Of the namespace at `netns`.
    fn of(netns: &Path) -> Self {
        in_netns(netns, || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(Self::current())
        })
    }

    fn link(&self, name: &str) -> Option<&LinkMessage> {
        self.links.iter().find(|l| l.attributes.contains(&LinkAttribute::IfName(name.to_string())))
    }

    fn mac(&self, name: &str) -> Option<Vec<u8>> {
        self.link(name)?.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(mac) => Some(mac.clone()),
            _ => None,
        })
    }

    fn is_up(&self, name: &str) -> bool {
        self.link(name).is_some_and(|l| l.header.flags.contains(LinkFlags::Up))
    }

    fn link_names(&self) -> Vec<String> {
        self.links
            .iter()
            .flat_map(|l| &l.attributes)
            .filter_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// IPv4 addresses (with prefix length) on the link `name`.
    fn ipv4_of(&self, name: &str) -> Vec<(Ipv4Addr, u8)> {
        let Some(index) = self.link(name).map(|l| l.header.index) else {
            return Vec::new();
        };
        self.addresses
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some((*ip, m.header.prefix_len)),
                    _ => None,
                })
            })
            .collect()
    }

    /// (gateway, output interface) of each default route of the main table.
    fn default_routes(&self) -> Vec<(Option<Ipv4Addr>, Option<u32>)> {
        self.routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0 && r.header.table == 254)
            .map(|r| {
                let gateway = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(*gw),
                    _ => None,
                });
                let oif = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(index) => Some(*index),
                    _ => None,
                });
                (gateway, oif)
            })
            .collect()
    }
}

/// Connects to `target` from the calling namespace, retrying for a few
/// seconds: a port that just came up may drop the very first packets.
fn connect_eventually(target: SocketAddr) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn assert_container_network(a: &Attachment) {
    let view = NetView::of(&a.netns);
    assert!(view.is_up("lo"), "lo is down in {}", a.netns.display());
    assert!(view.is_up("eth0"), "eth0 is down in {}: {view:?}", a.netns.display());
    assert_eq!(view.ipv4_of("eth0"), vec![(a.address, a.prefix_len)], "eth0 address in {}", a.netns.display());
    let eth0 = view.link("eth0").expect("eth0").header.index;
    assert_eq!(view.default_routes(), vec![(Some(a.gateway), Some(eth0))], "default route in {}", a.netns.display());
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_isolated_from_each_other_but_reachable_from_the_host() {
    if !have_root("containers_are_isolated_from_each_other_but_reachable_from_the_host") {
        return;
    }
    let s = Scratch::new("ni", 1);
    let nl = RtNetlink::new().unwrap();
    let br = s.bridge();

    nl.ensure_bridge(&br).await.unwrap();
    nl.ensure_bridge(&br).await.unwrap();
    assert_eq!(nl.links_with_prefix(&s.link_prefix()).await.unwrap(), vec![br.name.clone()]);
    let host = NetView::current().await;
    assert!(host.is_up(&br.name), "bridge is down");
    assert_eq!(host.ipv4_of(&br.name), vec![(br.gateway, 24)], "gateway added once");
    let bridge_mac = host.mac(&br.name);

    let (a, b) = (s.attachment(1), s.attachment(2));
    for x in [&a, &b] {
        nl.create_netns(&x.netns, None).await.unwrap();
        nl.attach(&br.name, x).await.unwrap();
    }
    let attached = Instant::now();

    let err = nl.create_netns(&a.netns, None).await.unwrap_err();
    assert!(matches!(err, NetlinkError::Netns { op: "create", .. }), "{err:?}");

    for x in [&a, &b] {
        assert_container_network(x);
    }
    let host = NetView::current().await;
    let bridge_index = host.link(&br.name).unwrap().header.index;
    // Its own fixed address, not the lowest of its ports' addresses.
    assert_eq!(host.mac(&br.name), bridge_mac, "the bridge changed its MAC");
    for x in [&a, &b] {
        let port = host.link(&x.host_ifname).expect("host veth");
        assert!(port.header.flags.contains(LinkFlags::Up), "{} is down", x.host_ifname);
        assert!(
            port.attributes.contains(&LinkAttribute::Controller(bridge_index)),
            "{} not on the bridge",
            x.host_ifname
        );
        let has = |want: InfoBridgePort| {
            port.attributes.iter().any(|attr| match attr {
                LinkAttribute::LinkInfo(infos) => infos.iter().any(|info| match info {
                    LinkInfo::PortData(InfoPortData::BridgePort(opts)) => opts.contains(&want),
                    _ => false,
                }),
                _ => false,
            })
        };
        assert!(has(InfoBridgePort::Isolated(true)), "{} is not an isolated port: {port:?}", x.host_ifname);
        assert!(has(InfoBridgePort::Learning(false)), "{} learns MACs: {port:?}", x.host_ifname);
        assert!(has(InfoBridgePort::UnicastFlood(false)), "{} gets unknown-destination floods", x.host_ifname);
    }
    // Each container's MAC is a static forwarding entry on its own port.
    let fdb = std::process::Command::new("bridge").args(["fdb", "show", "br", &br.name]).output().unwrap();
    let fdb = String::from_utf8_lossy(&fdb.stdout);
    for x in [&a, &b] {
        let mac = cubby_network::ipam::mac_text(x.address);
        let entry = format!("{mac} dev {} master {} static", x.host_ifname, br.name);
        assert!(fdb.contains(&entry), "no `{entry}` in:\n{fdb}");
    }

    // A listener inside B (its socket stays in B's namespace).
    let b_address = b.address;
    let listener = in_netns(&b.netns, move || TcpListener::bind((b_address, 0))).unwrap();
    let to_b = SocketAddr::from((b.address, listener.local_addr().unwrap().port()));

    // The host reaches B through the bridge...
    connect_eventually(to_b).expect("the host reaches B's listener");
    eprintln!("host reached B {:?} after the attachments", attached.elapsed());
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(br.gateway));

    // ... and A reaches the host (so A's network works at all) ...
    let gateway_listener = TcpListener::bind((br.gateway, 0)).unwrap();
    let to_gateway = SocketAddr::from((br.gateway, gateway_listener.local_addr().unwrap().port()));
    in_netns(&a.netns, move || connect_eventually(to_gateway)).expect("A reaches the gateway");

    // ... but A does not reach B: isolated ports do not forward to each other.
    let started = Instant::now();
    let a_to_b = in_netns(&a.netns, move || TcpStream::connect_timeout(&to_b, CONNECT_TIMEOUT));
    assert!(a_to_b.is_err(), "A reached B across the bridge");
    eprintln!("A -> B failed as expected after {:?}: {:?}", started.elapsed(), a_to_b.err());

    for x in [&a, &b] {
        nl.detach(&x.host_ifname).await.unwrap();
        nl.detach(&x.host_ifname).await.unwrap();
        nl.delete_netns(&x.netns).await.unwrap();
        nl.delete_netns(&x.netns).await.unwrap();
        assert!(!x.netns.exists(), "{} is still there", x.netns.display());
    }
    nl.delete_bridge(&br.name).await.unwrap();
    nl.delete_bridge(&br.name).await.unwrap();
    assert_eq!(nl.links_with_prefix(&s.link_prefix()).await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_network_namespace_can_be_owned_by_a_new_user_namespace() {
    if !have_root("a_network_namespace_can_be_owned_by_a_new_user_namespace") {
        return;
    }
    let s = Scratch::new("un", 3);
    let nl = RtNetlink::new().unwrap();
    let path = s.netns(1);
    let owner = cubby_network::UserNamespace { path: s.dir.join("u1"), host_base: 2_000_000, size: 65_536 };
    nl.create_netns(&path, Some(&owner)).await.unwrap();
    assert!(NetView::of(&path).is_up("lo"));
    // Inside, uid 0 is host uid 2000000, and the network namespace is the
    // user namespace's own (so its root may administer it).
    let out = std::process::Command::new("nsenter")
        .arg(format!("--user={}", owner.path.display()))
        .arg(format!("--net={}", path.display()))
        .args(["--", "cat", "/proc/self/uid_map"])
        .output()
        .unwrap();
    let map: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
    assert_eq!(map, ["0", "2000000", "65536"], "{}", String::from_utf8_lossy(&out.stderr));
    let net = std::fs::File::open(&path).unwrap();
    // SAFETY: NS_GET_USERNS (_IO(0xb7, 0x1)) takes no argument and returns
    // a new fd on success, which is wrapped at once.
    let owner_fd = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&net), 0xb701) };
    assert!(owner_fd >= 0, "NS_GET_USERNS: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd from the ioctl above, owned by nothing else.
    let owner_file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(owner_fd) };
    let ino = |m: std::fs::Metadata| std::os::unix::fs::MetadataExt::ino(&m);
    assert_eq!(ino(owner_file.metadata().unwrap()), ino(std::fs::metadata(&owner.path).unwrap()));
    // A veth can be moved in and configured from the host as before.
    for p in [&path, &owner.path] {
        nl.delete_netns(p).await.unwrap();
        assert!(!p.exists());
    }
}

// Several threads at once, as concurrent creates in the daemon are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_user_owned_namespaces_all_finish() {
    if !have_root("concurrent_user_owned_namespaces_all_finish") {
        return;
    }
    let s = Scratch::new("uc", 7);
    let nl = std::sync::Arc::new(RtNetlink::new().unwrap());
    let made: Vec<(PathBuf, cubby_network::UserNamespace)> = (1..=12)
        .map(|n| {
            let owner =
                cubby_network::UserNamespace { path: s.dir.join(format!("u{n}")), host_base: 2_000_000, size: 65_536 };
            (s.netns(n), owner)
        })
        .collect();
    let creates = made.iter().cloned().map(|(path, owner)| {
        let nl = std::sync::Arc::clone(&nl);
        tokio::spawn(async move { nl.create_netns(&path, Some(&owner)).await })
    });
    // Before the fix, two children cloned at once inherited each other's
    // release pipe and both waited forever.
    let all = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(creates))
        .await
        .expect("every create finishes");
    for result in all {
        result.unwrap().unwrap();
    }
    for (path, owner) in &made {
        assert!(NetView::of(path).is_up("lo"));
        nl.delete_netns(path).await.unwrap();
        nl.delete_netns(&owner.path).await.unwrap();
    }
}

#[tokio::test]
async fn a_socket_made_in_a_namespace_connects_from_inside_it() {
    if !have_root("a_socket_made_in_a_namespace_connects_from_inside_it") {
        return;
    }
    let s = Scratch::new("sk", 8);
    let nl = RtNetlink::new().unwrap();
    let path = s.netns(1);
    nl.create_netns(&path, None).await.unwrap();
    // A listener on the namespace's loopback: unreachable from the host's.
    let listener = in_netns(&path, || TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let socket = nl.tcp_socket_in(&path).await.unwrap();
    let stream = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(socket))
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("the socket reaches the namespace's loopback");
    let (accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
    drop((accepted, stream));
    assert!(nl.tcp_socket_in(&s.netns(9)).await.is_err(), "no namespace there");
    nl.delete_netns(&path).await.unwrap();
}

// The default current-thread runtime: the namespace threads must not need
// it to make progress.
#[tokio::test]
async fn namespaces_are_created_once_and_removed_idempotently() {
    if !have_root("namespaces_are_created_once_and_removed_idempotently") {
        return;
    }
    let s = Scratch::new("nn", 2);
    let nl = RtNetlink::new().unwrap();
    let path = s.netns(1);

    // Its parent is shared, as systemd makes `/run`.
    let parent = s.dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    nix::mount::mount(Some(parent), parent, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).unwrap();
    nix::mount::mount(None::<&str>, parent, None::<&str>, nix::mount::MsFlags::MS_SHARED, None::<&str>).unwrap();
    // The directory does not exist yet: it is created, and made a shared
    // mount point (a bind mount of itself).
    nl.create_netns(&path, None).await.unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir_mount = mountinfo
        .lines()
        .find(|line| line.split(' ').nth(4) == Some(s.dir.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is not a mount point", s.dir.display()));
    assert!(dir_mount.contains(" shared:"), "{} is not shared: {dir_mount}", s.dir.display());
    // In a peer group of its own: the namespace files do not propagate to
    // the parent mount's peers.
    let group = |line: &str| line.split(' ').find(|f| f.starts_with("shared:")).map(str::to_owned);
    let parent_id = dir_mount.split(' ').nth(1).unwrap();
    let parent = mountinfo.lines().find(|l| l.split(' ').next() == Some(parent_id)).unwrap();
    let pins_in_parent = mountinfo.lines().filter(|l| l.split(' ').nth(1) == Some(parent_id)).count();
    assert_eq!(pins_in_parent, 1, "only the dir's own mount is on the parent: {mountinfo}");
    assert!(group(parent).is_some(), "{parent}");
    assert_ne!(group(dir_mount), group(parent), "{dir_mount}\n{parent}");

    let err = nl.create_netns(&path, None).await.unwrap_err();
    assert!(matches!(err, NetlinkError::Netns { op: "create", .. }), "{err:?}");
    // Still the same, working namespace: only lo, up.
    let view = NetView::of(&path);
    assert!(view.is_up("lo"));
    assert!(view.link_names().iter().all(|n| n == "lo" || !n.starts_with("eth")), "{:?}", view.link_names());

    // A second namespace in the same directory is a different one.
    let other = s.netns(2);
    nl.create_netns(&other, None).await.unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    assert_ne!(inode(&path), inode(&other));

    for p in [&path, &other] {
        nl.delete_netns(p).await.unwrap();
        nl.delete_netns(p).await.unwrap();
        assert!(!p.exists());
    }

    // A file left without a namespace on it is reused.
    std::fs::write(&path, b"").unwrap();
    nl.create_netns(&path, None).await.unwrap();
    assert!(NetView::of(&path).is_up("lo"));
    nl.delete_netns(&path).await.unwrap();
    assert!(!path.exists());
}

// The default current-thread runtime: the namespace threads must not need
// it to make progress.
#[tokio::test]
async fn failed_attachments_leave_nothing_behind() {
    if !have_root("failed_attachments_leave_nothing_behind") {
        return;
    }
    let s = Scratch::new("nr", 3);
    let nl = RtNetlink::new().unwrap();
    let br = s.bridge();
    nl.ensure_bridge(&br).await.unwrap();
    let host_links = || async { nl.links_with_prefix(&s.link_prefix()).await.unwrap() };

    // Missing namespace, missing bridge: nothing is created.
    let first = s.attachment(1);
    let err = nl.attach(&br.name, &first).await.unwrap_err();
    assert!(matches!(err, NetlinkError::Netns { op: "open", .. }), "{err:?}");
    nl.create_netns(&first.netns, None).await.unwrap();
    let missing = format!("{}-nob", s.prefix);
    let err = nl.attach(&missing, &first).await.unwrap_err();
    assert!(matches!(&err, NetlinkError::LinkNotFound { ifname } if *ifname == missing), "{err:?}");
    assert_eq!(host_links().await, vec![br.name.clone()]);

    nl.attach(&br.name, &first).await.unwrap();

    // Same host name again: refused, and the existing one is left alone.
    let mut same_name = s.attachment(2);
    same_name.host_ifname = first.host_ifname.clone();
    nl.create_netns(&same_name.netns, None).await.unwrap();
    let err = nl.attach(&br.name, &same_name).await.unwrap_err();
    assert!(matches!(&err, NetlinkError::Link { op: "create veth", .. }), "{err:?}");
    assert_container_network(&first);
    assert!(!NetView::of(&same_name.netns).link_names().contains(&"eth0".to_string()));

    // A namespace that already has its eth0: refused, nothing on the host.
    let mut same_netns = s.attachment(3);
    same_netns.netns = first.netns.clone();
    assert!(nl.attach(&br.name, &same_netns).await.is_err());
    assert_container_network(&first);

    // Failing after the veth exists (a gateway outside the container's /32):
    // the veth is rolled back, on both sides.
    let mut bad_route = s.attachment(4);
    bad_route.prefix_len = 32;
    nl.create_netns(&bad_route.netns, None).await.unwrap();
    let err = nl.attach(&br.name, &bad_route).await.unwrap_err();
    assert!(matches!(err, NetlinkError::NetnsLink { op: "add default route", .. }), "{err:?}");
    eprintln!("rolled back: {err} ({:?})", std::error::Error::source(&err));
    assert_eq!(host_links().await, vec![br.name.clone(), first.host_ifname.clone()]);
    assert!(!NetView::of(&bad_route.netns).link_names().contains(&"eth0".to_string()));

    // Cancelled once the veth exists: it is deleted in the background.
    let cancelled = s.attachment(5);
    nl.create_netns(&cancelled.netns, None).await.unwrap();
    let sysfs = PathBuf::from(format!("/sys/class/net/{}", cancelled.host_ifname));
    let mut attach = Box::pin(nl.attach(&br.name, &cancelled));
    while !sysfs.exists() {
        let poll = futures::poll!(attach.as_mut());
        assert!(poll.is_pending(), "attach finished before it could be cancelled");
        tokio::task::yield_now().await;
    }
    drop(attach);
    let deadline = Instant::now() + Duration::from_secs(2);
    while sysfs.exists() {
        assert!(Instant::now() < deadline, "the cancelled attach left its veth");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    nl.detach(&first.host_ifname).await.unwrap();
    nl.detach(&first.host_ifname).await.unwrap();
    for n in 1..=5 {
        nl.delete_netns(&s.netns(n)).await.unwrap();
        assert!(!s.netns(n).exists());
    }
    nl.delete_bridge(&br.name).await.unwrap();
    assert!(host_links().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_timings() {
    if !have_root("attach_and_detach_timings") {
        return;
    }
    const N: u8 = 20;
    let s = Scratch::new("nt", 4);
    let nl = RtNetlink::new().unwrap();
    let br = s.bridge();
    nl.ensure_bridge(&br).await.unwrap();

    let fds_before = open_fds();
    let (mut create, mut attach, mut detach, mut delete) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let attachments: Vec<Attachment> = (1..=N).map(|n| s.attachment(n)).collect();
    for a in &attachments {
        let t = Instant::now();
        nl.create_netns(&a.netns, None).await.unwrap();
        create.push(t.elapsed());
        let t = Instant::now();
        nl.attach(&br.name, a).await.unwrap();
        attach.push(t.elapsed());
    }
    assert_eq!(nl.links_with_prefix(&s.link_prefix()).await.unwrap().len(), usize::from(N) + 1);
    assert_container_network(&attachments[usize::from(N) - 1]);
    for a in &attachments {
        let t = Instant::now();
        nl.detach(&a.host_ifname).await.unwrap();
        detach.push(t.elapsed());
        let t = Instant::now();
        nl.delete_netns(&a.netns).await.unwrap();
        delete.push(t.elapsed());
    }
    nl.delete_bridge(&br.name).await.unwrap();
    assert!(nl.links_with_prefix(&s.link_prefix()).await.unwrap().is_empty());
    // Informational: other tests may run concurrently in this process.
    eprintln!("open fds: {fds_before} before, {} after {N} attachments", open_fds());

    for (what, samples) in [("create_netns", create), ("attach", attach), ("detach", detach), ("delete_netns", delete)]
    {
        let max = samples.iter().max().copied().unwrap_or_default();
        eprintln!("timing over {N}: {what:<12} median {:>9.3?}  max {max:>9.3?}", median(samples));
    }
}
