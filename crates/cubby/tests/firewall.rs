//! End to end, as root, with real traffic: per-container firewall and
//! network rules enforced by nftables on the host. Traffic goes only to an
//! "outside host" namespace the test makes, and to the test's containers.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cubby_model::{NetworkMode, NetworkRules, RuleAction, RuleSpec};
use cubby_testkit::{Daemon, Outcome, OutsideHost, http_get, tcp_probe, udp_probe, udp_send};
use serde_json::json;
use support::{container, daemon, project, sh};

const WAIT: Duration = Duration::from_millis(1500);

fn outside(d: &Daemon) -> OutsideHost {
    let mut o = OutsideHost::new(&d.prefix, &d.subnet);
    o.serve_tcp(9000, "nine-thousand");
    o.serve_tcp(9001, "nine-thousand-one");
    o.serve_tcp(9002, "nine-thousand-two");
    o.serve_udp(9000);
    o
}

fn netns(d: &Daemon, id: &str) -> std::path::PathBuf {
    d.run_dir.join("netns").join(id)
}

fn put_egress(d: &Daemon, id: &str, egress: serde_json::Value) -> (u16, serde_json::Value) {
    let ingress = serde_json::to_value(d.admin().firewall(id).unwrap().ingress).unwrap();
    let body = json!({ "ingress": ingress.as_array().unwrap().iter().map(|r| {
        let mut r = r.clone();
        r.as_object_mut().unwrap().remove("id");
        r
    }).collect::<Vec<_>>(), "egress": egress });
    let r =
        d.admin().raw("PUT", &format!("/api/v1/containers/{id}/firewall"), Some(body.to_string().as_bytes())).unwrap();
    (r.status, r.json())
}

#[test]
fn allow_drop_and_reject_behave_and_the_first_match_wins() {
    let Some(d) = daemon("allow_drop_and_reject_behave_and_the_first_match_wins") else { return };
    let o = outside(&d);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let ns = netns(&d, a.id.as_str());
    let at = |port: u16| SocketAddr::from((o.addr, port));

    // Default: egress is open.
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Open("nine-thousand".into()));
    assert_eq!(udp_probe(&ns, at(9000), WAIT), Outcome::Open("echo:ping".into()));

    let (status, body) = put_egress(
        &d,
        a.id.as_str(),
        json!([
            { "action": "reject", "protocol": "tcp", "ports": "9001", "description": "no 9001" },
            { "action": "drop", "protocol": "tcp", "ports": "9002" },
            { "action": "reject", "protocol": "udp", "ports": "9000" },
            { "action": "allow" },
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Open("nine-thousand".into()));
    let t0 = Instant::now();
    assert_eq!(tcp_probe(&ns, None, at(9001), WAIT), Outcome::Refused);
    assert!(t0.elapsed() < WAIT, "reject answers at once");
    assert_eq!(tcp_probe(&ns, None, at(9002), WAIT), Outcome::TimedOut, "drop stays silent");
    assert_eq!(udp_probe(&ns, at(9000), WAIT), Outcome::Refused);

    // Ranges, lists, CIDRs, disabled rules; the first match wins.
    let (status, body) = put_egress(
        &d,
        a.id.as_str(),
        json!([
            { "action": "drop", "protocol": "tcp", "ports": "9000-9001", "destination": o.addr.to_string(), "state": "disabled" },
            { "action": "reject", "protocol": "tcp", "ports": "9000,9002", "destination": format!("{}/30", o.addr) },
            { "action": "reject", "protocol": "any", "destination": "203.0.113.0/24" },
            { "action": "allow", "protocol": "tcp" },
            { "action": "allow", "protocol": "udp", "ports": "9000" },
        ]),
    );
    assert_eq!(status, 200, "{body}");
    let disabled_id = body["egress"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Refused);
    assert_eq!(
        tcp_probe(&ns, None, at(9001), WAIT),
        Outcome::Open("nine-thousand-one".into()),
        "the disabled rule is skipped"
    );
    assert_eq!(tcp_probe(&ns, None, at(9002), WAIT), Outcome::Refused);
    assert_eq!(udp_probe(&ns, at(9000), WAIT), Outcome::Open("echo:ping".into()));

    // Enabling the first rule makes it the first match for 9000 and 9001.
    let r = api
        .raw(
            "PATCH",
            &format!("/api/v1/containers/{}/firewall/egress/{disabled_id}", a.id),
            Some(br#"{"state":"enabled"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::TimedOut);
    assert_eq!(tcp_probe(&ns, None, at(9001), WAIT), Outcome::TimedOut);
    // Deleting it restores the previous behaviour.
    let r = api.raw("DELETE", &format!("/api/v1/containers/{}/firewall/egress/{disabled_id}", a.id), None).unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(tcp_probe(&ns, None, at(9001), WAIT), Outcome::Open("nine-thousand-one".into()));

    // Insert at a position; reset goes back to the default.
    let r = api
        .raw(
            "POST",
            &format!("/api/v1/containers/{}/firewall/egress", a.id),
            Some(br#"{"action":"reject","protocol":"tcp","ports":"9001","position":0}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(tcp_probe(&ns, None, at(9001), WAIT), Outcome::Refused);
    let r = api.raw("POST", &format!("/api/v1/containers/{}/firewall/reset", a.id), None).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["egress"].as_array().unwrap().len(), 1);
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Open("nine-thousand".into()));
    // The proxy still reaches the app through the default ingress rule.
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 200);
}

#[test]
fn block_and_proxy_modes_hold_and_dns_works() {
    let Some(d) = daemon("block_and_proxy_modes_hold_and_dns_works") else { return };
    let mut o = outside(&d);
    o.serve_tcp(3128, "i-am-the-proxy");
    o.serve_dns("192.0.2.77".parse().unwrap());
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let ns = netns(&d, a.id.as_str());
    let at = |port: u16| SocketAddr::from((o.addr, port));
    let set = |rules: serde_json::Value| {
        let r = api
            .raw("PUT", &format!("/api/v1/containers/{}/network", a.id), Some(rules.to_string().as_bytes()))
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.json());
    };

    // DNS through the container's own resolver works, even when egress
    // rules would otherwise refuse UDP 53.
    set(json!({ "mode": "open", "dns_servers": [o.addr.to_string()] }));
    assert_eq!(sh(&api, a.id.as_str(), "cat /etc/resolv.conf").1, format!("nameserver {}\n", o.addr));
    put_egress(&d, a.id.as_str(), json!([{ "action": "allow", "protocol": "tcp", "ports": "443" }]));
    let (code, out, err) = sh(&api, a.id.as_str(), "nslookup tenant.example");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("192.0.2.77"), "{out}");
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::TimedOut, "egress narrowed to 443");
    put_egress(&d, a.id.as_str(), json!([{ "action": "allow" }]));

    set(json!({ "mode": "block" }));
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::TimedOut);
    assert_eq!(udp_probe(&ns, at(9000), WAIT), Outcome::TimedOut);

    set(json!({ "mode": "proxy", "proxy": format!("http://{}:3128", o.addr) }));
    assert_eq!(tcp_probe(&ns, None, at(3128), WAIT), Outcome::Open("i-am-the-proxy".into()));
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::TimedOut, "only the proxy is reachable");
    let rules: NetworkRules =
        serde_json::from_value(api.raw("GET", &format!("/api/v1/containers/{}/network", a.id), None).unwrap().json())
            .unwrap();
    assert_eq!(rules.mode, NetworkMode::Proxy);
    api.restart(a.id.as_str()).unwrap();
    let env = sh(&api, a.id.as_str(), "env").1;
    for key in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        assert!(env.contains(&format!("{key}=http://{}:3128", o.addr)), "{key} missing:\n{env}");
    }

    set(json!({ "mode": "open" }));
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Open("nine-thousand".into()));
    assert_eq!(udp_probe(&ns, at(9000), WAIT), Outcome::Open("echo:ping".into()), "control of the UDP blocks above");
}

#[test]
fn one_tenants_rules_never_touch_another() {
    let Some(d) = daemon("one_tenants_rules_never_touch_another") else { return };
    let mut o = outside(&d);
    let arrived = o.record_udp(9500);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let b = container(&api, &p, "b", "y");
    let (na, nb) = (netns(&d, a.id.as_str()), netns(&d, b.id.as_str()));
    let at = |port: u16| SocketAddr::from((o.addr, port));

    // A refuses 9001 and explicitly allows B's address: B is unaffected by
    // the first, and A still cannot reach B.
    let (status, body) = put_egress(
        &d,
        a.id.as_str(),
        json!([
            { "action": "allow", "destination": b.address },
            { "action": "reject", "protocol": "tcp", "ports": "9001" },
            { "action": "allow" },
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(tcp_probe(&na, None, at(9001), WAIT), Outcome::Refused);
    assert_eq!(tcp_probe(&nb, None, at(9001), WAIT), Outcome::Open("nine-thousand-one".into()));
    let b_app = SocketAddr::from((b.address.parse::<std::net::Ipv4Addr>().unwrap(), 8080));
    assert!(matches!(tcp_probe(&nb, None, b_app, WAIT), Outcome::Open(_)), "control: B's app listens");
    assert_eq!(tcp_probe(&na, None, b_app, WAIT), Outcome::TimedOut, "A reached B's app");

    // Root inside A cannot change its address or MAC (no CAP_NET_ADMIN)...
    let (code, _, _) = sh(&api, a.id.as_str(), "ip addr add 10.99.99.99/32 dev eth0");
    assert_ne!(code, 0, "root in A changed its address");
    let (code, _, _) = sh(&api, a.id.as_str(), "ip link set eth0 address 02:00:00:00:00:99");
    assert_ne!(code, 0, "root in A changed its MAC");
    // ...and even with an address it was not given (added from the host,
    // as a tenant with more privileges could), its packets do not leave.
    let spoofed: std::net::Ipv4Addr = {
        let mut o = b.address.parse::<std::net::Ipv4Addr>().unwrap().octets();
        o[3] = o[3].wrapping_add(100);
        o.into()
    };
    let status = std::process::Command::new("nsenter")
        .arg(format!("--net={}", na.display()))
        .args(["ip", "addr", "add", &format!("{spoofed}/32"), "dev", "eth0"])
        .status()
        .unwrap();
    assert!(status.success());
    // What crosses the host is counted where it arrives (a reply could
    // not come back to a spoofed sender anyway, so "no answer" proves
    // nothing): datagrams to the outside host, by source address.
    let count = |tag: &str| arrived.lock().unwrap().iter().filter(|p| *p == tag).count();
    let send_from = |from: Option<std::net::Ipv4Addr>, tag: &str| {
        for _ in 0..3 {
            udp_send(&na, from, SocketAddr::from((o.addr, 9500)), tag.as_bytes());
        }
        std::thread::sleep(Duration::from_millis(300));
        count(tag)
    };
    assert_eq!(send_from(None, "own"), 3, "control: A's own datagrams arrive");
    assert_eq!(send_from(Some(spoofed), "spoofed"), 0, "a spoofed source address left the bridge");

    // Nor does a frame with B's MAC (raw sockets could send one). Counted
    // the same way: A's address, B's MAC.
    let mac_of = |address: &str| {
        let o = address.parse::<std::net::Ipv4Addr>().unwrap().octets();
        format!("02:cb:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    };
    let (a_mac, b_mac) = (mac_of(&a.address), mac_of(&b.address));
    let set_mac = |mac: &str| {
        let status = std::process::Command::new("nsenter")
            .arg(format!("--net={}", na.display()))
            .args(["ip", "link", "set", "eth0", "address", mac])
            .status()
            .unwrap();
        assert!(status.success());
    };
    set_mac(&b_mac);
    assert_eq!(send_from(None, "with-b-mac"), 0, "frames with B's MAC left A's port");
    set_mac(&a_mac);
    assert_eq!(send_from(None, "own-again"), 3, "control: A's own MAC works again");
    assert_eq!(tcp_probe(&na, None, at(9000), WAIT), Outcome::Open("nine-thousand".into()));
    // A's rules are its own: B's firewall still has only the defaults.
    assert_eq!(api.firewall(b.id.as_str()).unwrap().egress.len(), 1);
}

#[test]
fn ingress_rules_govern_who_reaches_the_container() {
    let Some(d) = daemon("ingress_rules_govern_who_reaches_the_container") else { return };
    let o = outside(&d);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let app = SocketAddr::from((a.address.parse::<std::net::Ipv4Addr>().unwrap(), 8080));
    let outside_ns = o.netns.clone();
    // Default: only the daemon's proxy reaches the app.
    assert_eq!(tcp_probe(&outside_ns, None, app, WAIT), Outcome::TimedOut);
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 200);
    let r = api
        .raw(
            "POST",
            &format!("/api/v1/containers/{}/firewall/ingress", a.id),
            Some(
                json!({ "action": "allow", "protocol": "tcp", "ports": "8080", "source": o.addr.to_string() })
                    .to_string()
                    .as_bytes(),
            ),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.json());
    assert!(matches!(tcp_probe(&outside_ns, None, app, WAIT), Outcome::Open(_)));
}

#[test]
fn rules_survive_restarts_and_go_with_delete() {
    let Some(mut d) = daemon("rules_survive_restarts_and_go_with_delete") else { return };
    let o = outside(&d);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let ns = netns(&d, a.id.as_str());
    let at = |port: u16| SocketAddr::from((o.addr, port));
    put_egress(
        &d,
        a.id.as_str(),
        json!([{ "action": "reject", "protocol": "tcp", "ports": "9000" }, { "action": "allow" }]),
    );
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Refused);

    d.crash_and_restart();
    assert_eq!(tcp_probe(&ns, None, at(9000), WAIT), Outcome::Refused, "rules come back after a daemon crash");
    assert_eq!(tcp_probe(&ns, None, at(9001), WAIT), Outcome::Open("nine-thousand-one".into()));

    let list = |family: &str| {
        let out = std::process::Command::new("nft").args(["list", "table", family, &d.prefix]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Controls: the listing shows A's chain, map element and bridge elements.
    let (table, bridge) = (list("inet"), list("bridge"));
    assert!(table.contains(a.id.as_str()) && table.contains(&format!("{} :", a.address)), "{table}");
    assert!(bridge.contains(&a.address), "{bridge}");

    d.admin().delete_container(a.id.as_str()).unwrap();
    cubby_testkit::HostView::settled(&d);
    let (table, bridge) = (list("inet"), list("bridge"));
    assert!(table.contains("chain forward") && bridge.contains("chain prerouting"), "the tables are listed");
    assert!(!table.contains(a.id.as_str()), "a chain is left:\n{table}");
    assert!(!table.contains(&format!("{} :", a.address)), "a map element is left:\n{table}");
    assert!(!bridge.contains(&a.address), "an anti-spoofing element is left");
}

#[test]
fn bad_rules_are_refused_and_the_old_ones_stay() {
    let Some(d) = daemon("bad_rules_are_refused_and_the_old_ones_stay") else { return };
    let o = outside(&d);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let ns = netns(&d, a.id.as_str());
    put_egress(
        &d,
        a.id.as_str(),
        json!([{ "action": "reject", "protocol": "tcp", "ports": "9001" }, { "action": "allow" }]),
    );
    let before = api.firewall(a.id.as_str()).unwrap();
    let path = format!("/api/v1/containers/{}/firewall/egress", a.id);
    let too_many: Vec<RuleSpec> =
        (0..65).map(|_| RuleSpec { action: Some(RuleAction::Allow), ..Default::default() }).collect();
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("bad CIDR", path.clone(), r#"{"action":"allow","destination":"10.0.0.0/33"}"#.into(), 400, "invalid_request"),
        (
            "port out of range",
            path.clone(),
            r#"{"action":"allow","protocol":"tcp","ports":"70000"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "ports on icmp",
            path.clone(),
            r#"{"action":"allow","protocol":"icmp","ports":"80"}"#.into(),
            400,
            "invalid_request",
        ),
        ("unknown action", path.clone(), r#"{"action":"permit"}"#.into(), 400, "invalid_request"),
        ("source on egress", path.clone(), r#"{"action":"allow","source":"10.0.0.1"}"#.into(), 400, "invalid_request"),
        (
            "bad direction",
            format!("/api/v1/containers/{}/firewall/sideways", a.id),
            r#"{"action":"allow"}"#.into(),
            400,
            "invalid_request",
        ),
        ("position past the end", path.clone(), r#"{"action":"allow","position":99}"#.into(), 400, "invalid_request"),
        (
            "shadowed by the allow-all",
            path.clone(),
            r#"{"action":"reject","protocol":"tcp","ports":"25"}"#.into(),
            409,
            "rule_shadowed",
        ),
        (
            "too many rules",
            format!("/api/v1/containers/{}/firewall", a.id),
            json!({ "egress": too_many }).to_string(),
            400,
            "invalid_request",
        ),
        (
            "proxy mode without proxy",
            format!("/api/v1/containers/{}/network", a.id),
            r#"{"mode":"proxy"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "five resolvers",
            format!("/api/v1/containers/{}/network", a.id),
            r#"{"dns_servers":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4","1.1.1.5"]}"#.into(),
            400,
            "invalid_request",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let method = if path.ends_with("/firewall") || path.ends_with("/network") { "PUT" } else { "POST" };
        let r = api.raw(method, &path, Some(body.as_bytes())).unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.json());
        assert_eq!(r.json()["error"]["code"], code, "{what}: {}", r.json());
    }
    let r = api.raw("PATCH", &format!("{path}/rnosuchrule123"), Some(br#"{"state":"disabled"}"#)).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("firewall_rule_not_found")));
    let r = api.raw("DELETE", &format!("{path}/rnosuchrule123"), None).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(api.firewall(a.id.as_str()).unwrap(), before, "a refused change changed the rules");
    assert_eq!(
        tcp_probe(&ns, None, SocketAddr::from((o.addr, 9001)), WAIT),
        Outcome::Refused,
        "old rules still in force"
    );
    assert_eq!(tcp_probe(&ns, None, SocketAddr::from((o.addr, 9000)), WAIT), Outcome::Open("nine-thousand".into()));

    // A rule nothing could reach is refused, naming the rule in its way;
    // asked for, it is kept and marked.
    let allow_id = before.egress[1].id.to_string();
    let r = api.raw("POST", &path, Some(br#"{"action":"reject","protocol":"tcp","ports":"25"}"#)).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (409, Some("rule_shadowed")), "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains(&allow_id), "{}", r.json());
    let shadowed = br#"{"action":"reject","protocol":"tcp","ports":"25","allow_shadowed":true}"#;
    let r = api.raw("POST", &path, Some(shadowed)).unwrap();
    assert_eq!(r.status, 201, "{}", r.json());
    let kept = api.firewall(a.id.as_str()).unwrap();
    assert_eq!(kept.egress[2].shadowed_by.as_ref().map(ToString::to_string), Some(allow_id));
    assert!(kept.egress[..2].iter().all(|r| r.shadowed_by.is_none()), "control: the rules that apply are unmarked");
    // A PATCH that puts a rule under an earlier one is refused the same way.
    let third = br#"{"action":"reject","protocol":"tcp","ports":"9003","position":1}"#;
    let r = api.raw("POST", &path, Some(third)).unwrap();
    assert_eq!(r.status, 201, "control: a rule nothing covers is added: {}", r.json());
    let third = r.json()["id"].as_str().unwrap().to_string();
    let r = api.raw("PATCH", &format!("{path}/{third}"), Some(br#"{"ports":"9001"}"#)).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (409, Some("rule_shadowed")), "{}", r.json());
}

/// The platform's egress guard: cloud metadata (169.254.0.0/16) and the
/// private ranges are out of reach whatever the tenant's rules say, the
/// operator's `--egress-allow` opens an exception, and public addresses
/// stay open. Checked with the same tool from the same container each
/// time, so a blocked answer means the guard.
#[test]
fn the_egress_guard_holds_whatever_the_tenants_rules_say() {
    if !cubby_testkit::require_root("the_egress_guard_holds_whatever_the_tenants_rules_say") {
        return;
    }
    // An allowed private range of the test's own, chosen before the daemon.
    let mut allowed = OutsideHost::in_range(&format!("g{}", std::process::id() % 100_000), "10.216.0.0/16", [172, 31]);
    allowed.serve_http(9080, "allowed private");
    let d = Daemon::start_with(
        support::BIN,
        cubby_testkit::DaemonOptions {
            extra_args: vec!["--egress-allow".into(), format!("{}/30", allowed.host_addr)],
            ..Default::default()
        },
    );
    let mut public = OutsideHost::new(&format!("{}p", d.prefix), &d.subnet);
    public.serve_http(9080, "public");
    let mut metadata = OutsideHost::in_range(&format!("{}m", d.prefix), &d.subnet, [169, 254]);
    metadata.serve_http(9080, "metadata");
    let mut lan = OutsideHost::in_range(&format!("{}l", d.prefix), &d.subnet, [192, 168]);
    lan.serve_http(9080, "lan");
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let fetch = |host: &OutsideHost| sh(&api, a.id.as_str(), &format!("cubby-fetch -t 2 http://{}:9080/", host.addr));

    // The guarded servers answer whoever may reach them (root on the host).
    let helper = d.bin().parent().unwrap().join("helpers/cubby-fetch");
    for (host, body) in [(&metadata, "metadata"), (&lan, "lan")] {
        let out =
            std::process::Command::new(&helper).args(["-t", "2", &format!("http://{}:9080/", host.addr)]).output();
        assert_eq!(String::from_utf8_lossy(&out.unwrap().stdout), body, "control: the host reaches {}", host.addr);
    }
    // Positive controls: a public address, and the operator's exception.
    assert_eq!(fetch(&public).1, "public");
    assert_eq!(fetch(&allowed).1, "allowed private", "--egress-allow opens a private range");
    for (host, what) in [(&metadata, "cloud metadata (169.254.0.0/16)"), (&lan, "the LAN (192.168.0.0/16)")] {
        let (code, out, err) = fetch(host);
        assert_eq!(code, 28, "A reached {what}: {out}{err}");
    }
    // A tenant rule that allows them explicitly, first, changes nothing.
    let (status, body) = put_egress(
        &d,
        a.id.as_str(),
        json!([
            { "action": "allow", "destination": "169.254.0.0/16" },
            { "action": "allow", "destination": "192.168.0.0/16" },
            { "action": "allow" },
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&public).1, "public", "the new rules are in force");
    assert_eq!(fetch(&metadata).0, 28, "a tenant rule lifted the metadata guard");
    assert_eq!(fetch(&lan).0, 28, "a tenant rule lifted the LAN guard");

    // Exec scripts' fetch has the same guard, and the host's own addresses.
    let host_ip = std::process::Command::new("hostname").arg("-I").output().unwrap();
    let host_ip = String::from_utf8_lossy(&host_ip.stdout).split_whitespace().next().unwrap_or("127.0.0.1").to_string();
    let script = format!(
        r#"
const attempt = async (url) => {{ try {{ return await (await fetch(url)).text(); }} catch (e) {{ return "refused: " + String(e.message ?? e); }} }};
export default async () => Response.json({{
  public: await attempt("http://{public}:9080/"),
  allowed: await attempt("http://{allowed}:9080/"),
  lan: await attempt("http://{lan}:9080/"),
  metadata: await attempt("http://{metadata}:9080/"),
  host: await attempt("http://{host_ip}:{api_port}/api/v1/health"),
}});
"#,
        public = public.addr,
        allowed = allowed.addr,
        lan = lan.addr,
        metadata = metadata.addr,
        api_port = d.api_addr.port(),
    );
    api.put_script(p.id.as_str(), "guard.js", script.as_bytes()).unwrap();
    let url = format!("http://acme.exec.localhost:{}/guard", d.proxy_addr.port());
    let r = http_get(d.proxy_addr, &url);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["public"].as_str(), v["allowed"].as_str()), (Some("public"), Some("allowed private")), "{v}");
    for key in ["lan", "metadata", "host"] {
        assert!(v[key].as_str().unwrap().contains("is not allowed"), "{key}: {v}");
    }
}
