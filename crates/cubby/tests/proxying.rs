//! End to end, as root: the proxy is fit for real apps. Streamed responses
//! (SSE) and WebSockets pass through, connections are kept alive and
//! pooled, bodies are capped, port URLs reach any port the container
//! listens on, and aliases are unique names for a container and port.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cubby_model::{AccessMode, ContainerStatus, CreateAlias, CreateContainer, CreateToken};
use cubby_testkit::{Daemon, DaemonOptions, http_get, http_request};
use support::{BIN, container, daemon, project, sh};

fn host_of(url: &str) -> &str {
    url.strip_prefix("http://").unwrap()
}

#[test]
fn sse_streams_and_websockets_echo_through_the_proxy() {
    let Some(d) = daemon("sse_streams_and_websockets_echo_through_the_proxy") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "hi");

    // SSE: each event arrives when the app sends it, not all at the end.
    let mut s = TcpStream::connect(d.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", host_of(&a.url)).unwrap();
    let mut reader = BufReader::new(s);
    let (mut head, mut seen) = (String::new(), Vec::new());
    let start = Instant::now();
    let mut line = String::new();
    while seen.len() < 3 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended early");
        if head.is_empty() || !head.ends_with("\r\n\r\n") {
            head.push_str(&line);
            continue;
        }
        if let Some(n) = line.trim().strip_prefix("data: ") {
            seen.push((n.to_string(), start.elapsed()));
        }
    }
    assert!(head.starts_with("HTTP/1.1 200") && head.to_ascii_lowercase().contains("text/event-stream"), "{head}");
    assert_eq!(seen.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    assert!(seen[2].1 - seen[0].1 >= Duration::from_millis(150), "events were buffered: {seen:?}");

    // WebSocket: upgrade, echo text and binary, close.
    let stream = TcpStream::connect(d.proxy_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("{}/ws", a.url.replacen("http://", "ws://", 1));
    let (mut ws, resp) = tungstenite::client(url.as_str(), stream).unwrap();
    assert_eq!(resp.status(), 101);
    for msg in [tungstenite::Message::text("hello"), tungstenite::Message::binary(vec![0u8, 1, 2, 255])] {
        ws.send(msg.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), msg);
    }
    ws.close(None).unwrap();
}

#[test]
fn connections_are_kept_alive_and_pooled() {
    let Some(d) = daemon("connections_are_kept_alive_and_pooled") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "hi");
    let b = container(&api, &p, "b", "hi");
    // Twenty requests on one client connection.
    let mut s = TcpStream::connect(d.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for _ in 0..20 {
        write!(s, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", host_of(&a.url)).unwrap();
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(body, b"ok");
    }
    // The proxy reused connections to the app instead of opening twenty.
    let app_connections = |id: &str| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", d.run_dir.join("netns").join(id).display()))
            .args(["ss", "-Htn", "state", "established", "sport", "= :8080"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // B's namespace saw none of A's traffic.
    assert_eq!(app_connections(b.id.as_str()), "", "connections in B's namespace");
    let seen = app_connections(a.id.as_str());
    // Two: the pool's (the first request's) and the client connection's own.
    assert_eq!(seen.lines().count(), 2, "connections to the app:\n{seen}");
    // They start inside the container's own namespace (the default rules
    // admit the proxy to the app's port), so the app's peer is its own
    // address, not the gateway's.
    for line in seen.lines() {
        let peer = line.split_whitespace().last().unwrap_or_default();
        assert!(peer.starts_with(&format!("{}:", a.address)), "peer {peer} of the app:\n{seen}");
    }
    // The client connection's own upstream connection closes with it; the
    // pooled one (its first request's) stays for the next client.
    drop((s, reader));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app_connections(a.id.as_str()).lines().count() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = app_connections(a.id.as_str());
    assert_eq!(left.lines().count(), 1, "the pool's connection alone stays:\n{left}");
}

#[test]
fn request_bodies_are_capped() {
    let Some(d) = cubby_testkit::require_root("request_bodies_are_capped").then(|| {
        Daemon::start_with(
            BIN,
            DaemonOptions { extra_args: vec!["--proxy-max-body".into(), "1KiB".into()], ..Default::default() },
        )
    }) else {
        return;
    };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "hi");
    let small = http_request(d.proxy_addr, "POST", &format!("{}/echo", a.url), &[], Some(&[b'x'; 1000]));
    assert_eq!(
        (small.status, small.json()["bytes"].as_u64()),
        (200, Some(1000)),
        "a body under the cap reaches the app"
    );
    let big = http_request(d.proxy_addr, "POST", &format!("{}/echo", a.url), &[], Some(&[b'x'; 4096]));
    assert_eq!((big.status, big.json()["error"]["code"].as_str()), (413, Some("payload_too_large")));
    // Without a Content-Length (chunked), the cap holds too.
    let mut s = TcpStream::connect(d.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /echo HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        host_of(&a.url)
    )
    .unwrap();
    for _ in 0..4 {
        let _ = write!(s, "400\r\n{}\r\n", "y".repeat(1024));
    }
    let _ = write!(s, "0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}

#[test]
fn port_urls_and_aliases_reach_their_container() {
    let Some(d) = daemon("port_urls_and_aliases_reach_their_container") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "hi");
    let (code, _, err) = sh(
        &api,
        a.id.as_str(),
        "mkdir -p /tmp/www && echo port-nine > /tmp/www/index.html && httpd -p 9000 -h /tmp/www",
    );
    assert_eq!(code, 0, "{err}");
    // The default ingress takes the proxy to the app's port only: 9000
    // listens, yet the proxy does not reach it (the firewall drops it).
    let port_url = a.url.replacen("a--acme.", "a--acme-9000.", 1);
    let r = http_get(d.proxy_addr, &format!("{port_url}/index.html"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (502, Some("upstream_unreachable")), "{}", r.body);
    // The tenant's rule opens 9000 to it.
    let rule = br#"{"action":"allow","protocol":"tcp","ports":"9000","description":"admin UI"}"#;
    let r = api.raw("POST", &format!("/api/v1/containers/{}/firewall/ingress", a.id), Some(rule)).unwrap();
    assert_eq!(r.status, 201, "{:?}", r.json());
    let r = http_get(d.proxy_addr, &format!("{port_url}/index.html"));
    assert_eq!((r.status, r.body.trim()), (200, "port-nine"));
    assert_eq!(http_get(d.proxy_addr, &a.url.replacen("a--acme.", "a--acme-8080.", 1)).json()["visits"], 1);

    // Port URLs keep the access mode: a claim container's port wants a claim for that port.
    let claim_req = CreateContainer { access: Some(AccessMode::Claim), ..support::create_req("b", "x") };
    let b = api.create_container(p.id.as_str(), &claim_req).unwrap();
    let b_port = b.url.replacen("b--acme.", "b--acme-8080.", 1);
    assert_eq!(http_get(d.proxy_addr, &b_port).status, 401);
    let auth = api
        .authorize(b.id.as_str(), &cubby_model::AuthorizeRequest { port: Some(9000), ..Default::default() })
        .unwrap();
    assert!(auth.url.starts_with(&b.url.replacen("b--acme.", "b--acme-9000.", 1)), "{}", auth.url);

    // Aliases: a unique name for a container (and a port).
    let shop = api.create_alias(&CreateAlias { name: "shop".into(), container_id: a.id.clone(), port: None }).unwrap();
    assert!(shop.url.starts_with("http://shop.localhost:"), "{}", shop.url);
    assert_eq!(http_get(d.proxy_addr, &shop.url).json()["visits"], 2);
    let admin =
        api.create_alias(&CreateAlias { name: "shop-admin".into(), container_id: a.id.clone(), port: Some(9000) });
    let admin = admin.unwrap();
    assert_eq!(http_get(d.proxy_addr, &format!("{}/index.html", admin.url)).body.trim(), "port-nine");
    let again = api.create_alias(&CreateAlias { name: "shop".into(), container_id: b.id.clone(), port: None });
    assert_eq!(again.unwrap_err().status(), Some(409), "alias names are unique");
    for bad in ["Shop", "a--acme", "shop-9000", "-x", ""] {
        let r = api.create_alias(&CreateAlias { name: bad.into(), container_id: a.id.clone(), port: None });
        assert_eq!(r.unwrap_err().code(), Some("invalid_request"), "{bad}");
    }
    // An alias to a sleeping container wakes it.
    api.stop(a.id.as_str()).unwrap();
    assert_eq!(http_get(d.proxy_addr, &shop.url).json()["visits"], 3);
    assert_eq!(api.container(a.id.as_str()).unwrap().status, ContainerStatus::Running);

    // Another project's token cannot see, make or remove these aliases.
    let other = project(&api, "other");
    let token = api.create_token(other.id.as_str(), &CreateToken { name: None }).unwrap().secret;
    let outsider = d.client(Some(&token));
    assert!(outsider.aliases().unwrap().is_empty());
    let stolen = outsider.create_alias(&CreateAlias { name: "grab".into(), container_id: a.id.clone(), port: None });
    assert_eq!(stolen.unwrap_err().status(), Some(404));
    assert_eq!(outsider.delete_alias("shop").unwrap_err().status(), Some(404));
    assert_eq!(http_get(d.proxy_addr, &shop.url).status, 200);

    // Deleting an alias removes its route; deleting the container removes the rest.
    api.delete_alias("shop").unwrap();
    assert_eq!(http_get(d.proxy_addr, &shop.url).status, 404);
    assert_eq!(api.aliases().unwrap().len(), 1);
    api.delete_container(a.id.as_str()).unwrap();
    assert!(api.aliases().unwrap().is_empty());
    assert_eq!(http_get(d.proxy_addr, &admin.url).status, 404);
    assert_eq!(http_get(d.proxy_addr, &port_url).status, 404);
}

#[test]
fn alias_names_are_guarded_between_projects() {
    let Some(d) = daemon("alias_names_are_guarded_between_projects") else { return };
    let api = d.admin();
    let (p1, p2) = (project(&api, "one"), project(&api, "two"));
    let (a, b) = (container(&api, &p1, "a", "1"), container(&api, &p2, "b", "2"));
    let token = |p: &cubby_model::Project| api.create_token(p.id.as_str(), &Default::default()).unwrap().secret;
    let (t1, t2) = (d.client(Some(&token(&p1))), d.client(Some(&token(&p2))));
    let alias = |name: &str, id: &cubby_model::ContainerId| CreateAlias {
        name: name.into(),
        container_id: id.clone(),
        port: None,
    };

    // Names that look like the operator's are the operator's.
    let err = t1.create_alias(&alias("login", &a.id)).unwrap_err();
    assert_eq!(err.code(), Some("invalid_request"), "{err}");
    assert!(err.to_string().contains("reserved"), "{err}");
    assert_eq!(api.create_alias(&alias("login", &a.id)).unwrap().name, "login", "the admin may");

    // A name one project gave up is not handed to another for a while (its
    // users' cookies for that host would go with it); its own project may
    // take it back.
    t1.create_alias(&alias("shop", &a.id)).unwrap();
    t1.delete_alias("shop").unwrap();
    let err = t2.create_alias(&alias("shop", &b.id)).unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("alias_quarantined")), "{err}");
    assert_eq!(t1.create_alias(&alias("shop", &a.id)).unwrap().name, "shop", "control: its own project may");
    // Deleting the container gives its aliases up the same way.
    t1.delete_container(a.id.as_str()).unwrap();
    assert_eq!(t2.create_alias(&alias("shop", &b.id)).unwrap_err().code(), Some("alias_quarantined"));
    assert_eq!(t2.create_alias(&alias("fresh-name", &b.id)).unwrap().name, "fresh-name", "control: new names are free");

    // At most 100 per project.
    for i in 0..99 {
        t2.create_alias(&alias(&format!("n{i}x"), &b.id)).unwrap();
    }
    assert_eq!(t2.create_alias(&alias("one-too-many", &b.id)).unwrap_err().code(), Some("limit_reached"));
}
