//! End to end, as root: who may open a container's URL. Signed claims
//! (authorize → redirect → cookie → app), claims that must fail (other
//! container, expired, tampered, revoked, deleted), public and token modes,
//! and that no credential of the daemon ever reaches an app.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use cubby_model::{AccessMode, AuthorizeRequest, CreateContainer, CreateProject, CreateToken, UpdateContainer};
use cubby_testkit::{HttpResponse, http_request};
use support::daemon;

/// `GET url` with extra headers.
fn get(d: &cubby_testkit::Daemon, url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_request(d.proxy_addr, "GET", url, headers, None)
}

/// The headers the demo app received, as (lowercase name, value).
fn seen_by_app(r: &HttpResponse) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().to_ascii_lowercase(), h[1].as_str().unwrap().to_string()))
        .collect()
}

fn create(api: &cubby_client::Client, project: &str, name: &str, access: Option<AccessMode>) -> cubby_model::Container {
    let req = CreateContainer { name: name.into(), image: Some("minimal".into()), access, ..Default::default() };
    api.create_container(project, &req).unwrap()
}

#[test]
fn a_claim_opens_its_container_and_nothing_else() {
    let Some(d) = daemon("a_claim_opens_its_container_and_nothing_else") else { return };
    let api = d.admin();
    let p = api.create_project(&CreateProject { name: "acme".into(), ..Default::default() }).unwrap();
    assert_eq!(p.default_access, AccessMode::Claim, "new projects default to claims");
    let a = create(&api, p.id.as_str(), "a", None);
    let b = create(&api, p.id.as_str(), "b", None);
    assert_eq!(a.access, AccessMode::Claim);

    // No claim: a clear 401, as a page for browsers.
    let r = get(&d, &a.url, &[]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("claim_required")));
    let page = get(&d, &a.url, &[("Accept", "text/html")]);
    assert!(page.status == 401 && page.body.contains("<h1>") && page.body.contains("link"), "{}", page.body);

    // The full flow: authorize → link → 303 with a host-only cookie → app.
    let auth = api
        .authorize(a.id.as_str(), &AuthorizeRequest { subject: Some("user-1".into()), ..Default::default() })
        .unwrap();
    assert!(auth.url.starts_with(&a.url) && auth.url.contains(&auth.claim), "{}", auth.url);
    let ttl = auth.expires_at - cubby_model::now();
    assert!(ttl > time::Duration::minutes(59) && ttl <= time::Duration::hours(1), "default TTL is 1 hour: {ttl}");
    let link = format!("{}/headers?x=1&__cubby_claim={}", a.url, auth.claim);
    let r = get(&d, &link, &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/headers?x=1"), "redirects to the clean URL");
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with(&format!("__cubby_claim={};", auth.claim)), "{cookie}");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Domain") && !cookie.contains("Secure"), "host-only, no Secure over http: {cookie}");
    // The browser follows with the cookie (and one of the app's own).
    let jar = format!("app=1; __cubby_claim={}", auth.claim);
    let r = get(
        &d,
        &format!("{}/headers?x=1", a.url),
        &[
            ("Cookie", &jar),
            ("Authorization", "Basic YXBwOmFwcA=="),
            // What a client claims about itself is not passed on.
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Real-IP", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
        ],
    );
    let seen = seen_by_app(&r);
    assert_eq!(r.json()["query"], "x=1");
    let cookie_seen: Vec<&str> = seen.iter().filter(|(k, _)| k == "cookie").map(|(_, v)| v.as_str()).collect();
    assert_eq!(cookie_seen, ["app=1"], "the app keeps its cookies and never sees the claim");
    assert!(seen.contains(&("authorization".into(), "Basic YXBwOmFwcA==".into())), "the app's own auth passes");
    assert!(!r.body.contains(&auth.claim));
    let host = a.url.strip_prefix("http://").unwrap();
    assert!(seen.contains(&("x-forwarded-host".into(), host.into())), "{seen:?}");
    assert!(seen.contains(&("x-forwarded-proto".into(), "http".into())), "{seen:?}");
    assert!(seen.contains(&("x-forwarded-for".into(), "127.0.0.1".into())), "{seen:?}");
    assert!(seen.contains(&("x-real-ip".into(), "127.0.0.1".into())), "{seen:?}");
    assert!(!r.body.contains("6.6.6.6") && seen.iter().all(|(k, _)| k != "forwarded"), "{seen:?}");
    assert_eq!(get(&d, &a.url, &[("Cookie", &jar)]).json()["visits"], 1);
    // A bearer claim works for machine clients, and is not forwarded either.
    let bearer = format!("Bearer {}", auth.claim);
    let r = get(&d, &format!("{}/headers", a.url), &[("Authorization", &bearer)]);
    assert!(seen_by_app(&r).iter().all(|(k, _)| k != "authorization"));

    // A's claim never opens B: not as a link, a cookie or a bearer.
    let on_b = get(&d, &format!("{}/?__cubby_claim={}", b.url, auth.claim), &[]);
    assert_eq!((on_b.status, on_b.json()["error"]["code"].as_str()), (401, Some("claim_invalid")));
    assert!(on_b.header("set-cookie").is_none_or(|c| c.contains("Max-Age=0")), "no cookie for B");
    let code = |r: HttpResponse| (r.status, r.json()["error"]["code"].as_str().map(str::to_string));
    let invalid = (401, Some("claim_invalid".to_string()));
    assert_eq!(code(get(&d, &b.url, &[("Cookie", &jar)])), invalid, "A's cookie on B");
    assert_eq!(code(get(&d, &b.url, &[("Authorization", &bearer)])), invalid, "A's bearer on B");
    // Control: B's own claim, sent the same two ways, opens B.
    let b_claim = api.authorize(b.id.as_str(), &AuthorizeRequest::default()).unwrap().claim;
    assert_eq!(get(&d, &b.url, &[("Cookie", &format!("__cubby_claim={b_claim}"))]).status, 200);
    assert_eq!(get(&d, &b.url, &[("Authorization", &format!("Bearer {b_claim}"))]).status, 200);

    // Tampered: another container id in the payload, or a broken signature.
    let parts: Vec<&str> = auth.claim.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["cid"] = b.id.as_str().into();
    let forged = format!("{}.{}.{}", parts[0], B64.encode(payload.to_string()), parts[2]);
    let r = get(&d, &format!("{}/?__cubby_claim={forged}", b.url), &[]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("claim_invalid")));
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let broken = format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig));
    let r = get(&d, &a.url, &[("Cookie", &format!("__cubby_claim={broken}"))]);
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "a bad cookie is cleared");

    // Expired.
    let short = api.authorize(a.id.as_str(), &AuthorizeRequest { ttl_seconds: Some(1), ..Default::default() }).unwrap();
    assert_eq!(get(&d, &a.url, &[("Cookie", &format!("__cubby_claim={}", short.claim))]).status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let r = get(&d, &a.url, &[("Cookie", &format!("__cubby_claim={}", short.claim))]);
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("expired"), "{}", r.body);

    // Revoked: every claim of A so far stops working at once; new ones work.
    assert_eq!(get(&d, &a.url, &[("Cookie", &jar)]).status, 200);
    api.revoke_claims(a.id.as_str()).unwrap();
    let r = get(&d, &a.url, &[("Cookie", &jar)]);
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("revoked"), "{}", r.body);
    let fresh = api.authorize(a.id.as_str(), &AuthorizeRequest::default()).unwrap();
    assert_eq!(get(&d, &a.url, &[("Cookie", &format!("__cubby_claim={}", fresh.claim))]).status, 200);

    // Deleted: a new container with the same name (same URL) refuses the old claim.
    api.delete_container(a.id.as_str()).unwrap();
    let again = create(&api, p.id.as_str(), "a", None);
    assert_eq!(again.url, a.url);
    assert_eq!(code(get(&d, &again.url, &[("Cookie", &format!("__cubby_claim={}", fresh.claim))])), invalid);
    let new_claim = api.authorize(again.id.as_str(), &AuthorizeRequest::default()).unwrap().claim;
    assert_eq!(get(&d, &again.url, &[("Cookie", &format!("__cubby_claim={new_claim}"))]).status, 200, "control");

    // Bad requests to authorize.
    for body in [r#"{"ttl_seconds":0}"#, r#"{"ttl_seconds":100000000}"#, r#"{"port":0}"#, r#"{"nope":1}"#] {
        let r = api.raw("POST", &format!("/api/v1/containers/{}/authorize", b.id), Some(body.as_bytes())).unwrap();
        assert_eq!(r.status, 400, "{body}: {:?}", r.json());
    }
}

#[test]
fn claims_verify_offline_with_the_published_key() {
    let Some(d) = daemon("claims_verify_offline_with_the_published_key") else { return };
    let api = d.admin();
    let p = api.create_project(&CreateProject { name: "acme".into(), ..Default::default() }).unwrap();
    let a = create(&api, p.id.as_str(), "a", None);
    let auth = api.authorize(a.id.as_str(), &AuthorizeRequest { subject: Some("u-9".into()), ..Default::default() });
    let auth = auth.unwrap();

    // Anyone may fetch the key (apps verify claims without a token).
    let key = d.client(None).public_key().unwrap();
    assert_eq!(key.alg, "EdDSA");
    let raw: [u8; 32] = B64.decode(&key.public_key).unwrap().try_into().unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&raw).unwrap();
    let parts: Vec<&str> = auth.claim.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("EdDSA"), Some(key.kid.as_str())));
    let sig: [u8; 64] = B64.decode(parts[2]).unwrap().try_into().unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    verifying.verify_strict(signed.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!((payload["cid"].as_str(), payload["sub"].as_str()), (Some(a.id.as_str()), Some("u-9")));

    // The key is private on disk and survives a restart.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.data_dir.join("claims.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut d = d;
    d.restart();
    assert_eq!(d.client(None).public_key().unwrap().kid, key.kid);
    let a = d.admin().container(a.id.as_str()).unwrap();
    assert_eq!(get(&d, &a.url, &[("Cookie", &format!("__cubby_claim={}", auth.claim))]).status, 200);
}

#[test]
fn public_and_token_modes_and_daemon_credentials() {
    let Some(d) = daemon("public_and_token_modes_and_daemon_credentials") else { return };
    let api = d.admin();
    let p = api.create_project(&CreateProject { name: "acme".into(), ..Default::default() }).unwrap();
    let other = api.create_project(&CreateProject { name: "other".into(), ..Default::default() }).unwrap();
    let token = api.create_token(p.id.as_str(), &CreateToken { name: Some("ci".into()) }).unwrap().secret;
    let other_token = api.create_token(other.id.as_str(), &CreateToken { name: Some("ci".into()) }).unwrap().secret;

    // Public: opens with nothing; a daemon token sent along is not forwarded.
    let c = create(&api, p.id.as_str(), "web", Some(AccessMode::Public));
    let admin = format!("Bearer {}", d.token);
    let r = get(&d, &format!("{}/headers", c.url), &[("Authorization", &admin)]);
    assert!(seen_by_app(&r).iter().all(|(k, _)| k != "authorization"), "{}", r.body);
    // A claim link to a public container drops the claim from the URL.
    let auth = api.authorize(c.id.as_str(), &AuthorizeRequest::default()).unwrap();
    let r = get(&d, &format!("{}/headers?__cubby_claim={}", c.url, auth.claim), &[]);
    assert_eq!((r.status, r.header("location")), (303, Some("/headers")));
    assert!(r.header("set-cookie").is_none());

    // Token: PATCH switches the mode of this container only.
    let sibling = create(&api, p.id.as_str(), "sibling", Some(AccessMode::Public));
    let patched =
        api.update_container(c.id.as_str(), &UpdateContainer { access: Some(AccessMode::Token), ..Default::default() });
    assert_eq!(patched.unwrap().access, AccessMode::Token);
    assert_eq!(get(&d, &sibling.url, &[]).status, 200, "the other tenant is untouched");
    let r = get(&d, &c.url, &[]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("token_required")));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let mine = format!("Bearer {token}");
    let r = get(&d, &format!("{}/headers", c.url), &[("Authorization", &mine)]);
    assert!(seen_by_app(&r).iter().all(|(k, v)| k != "authorization" && !v.contains(&token)));
    assert_eq!(get(&d, &c.url, &[("Authorization", &format!("Bearer {other_token}"))]).status, 401);
    assert_eq!(get(&d, &c.url, &[("Authorization", &format!("Bearer {}", auth.claim))]).status, 200);
    assert_eq!(get(&d, &c.url, &[("Authorization", "Bearer cubby_madeup")]).status, 401);

    // Another project's token cannot authorize or revoke here.
    let outsider = d.client(Some(&other_token));
    assert_eq!(outsider.authorize(c.id.as_str(), &AuthorizeRequest::default()).unwrap_err().status(), Some(404));
    assert_eq!(outsider.revoke_claims(c.id.as_str()).unwrap_err().status(), Some(404));

    // The project's default applies to containers that do not choose.
    let patch = cubby_model::UpdateProject { default_access: Some(AccessMode::Public), ..Default::default() };
    assert_eq!(api.update_project(other.id.as_str(), &patch).unwrap().default_access, AccessMode::Public);
    let open = create(&api, other.id.as_str(), "open", None);
    assert_eq!(open.access, AccessMode::Public);
    assert_eq!(get(&d, &open.url, &[]).status, 200);
}

#[test]
fn tenants_sharing_a_domain_cannot_shadow_or_drive_each_other() {
    let Some(d) = daemon("tenants_sharing_a_domain_cannot_shadow_or_drive_each_other") else { return };
    let api = d.admin();
    let p = api.create_project(&CreateProject { name: "acme".into(), ..Default::default() }).unwrap();
    let a = create(&api, p.id.as_str(), "a", None);
    let b = create(&api, p.id.as_str(), "b", Some(AccessMode::Public));
    let a_claim = api.authorize(a.id.as_str(), &AuthorizeRequest::default()).unwrap().claim;
    let b_claim = api.authorize(b.id.as_str(), &AuthorizeRequest::default()).unwrap().claim;

    // B's app tries to set cookies for the whole domain, one of them a
    // decoy claim cookie: what reaches the browser is host-only, without it.
    let cgi = "mkdir -p /tmp/www/cgi-bin && printf '#!/bin/sh\\nprintf \"Set-Cookie: session=1; Domain=localhost; Path=/\\\\r\\\\nSet-Cookie: __cubby_claim=decoy; Domain=localhost; Path=/\\\\r\\\\nContent-Type: text/plain\\\\r\\\\n\\\\r\\\\nok\"\\n' > /tmp/www/cgi-bin/c && chmod +x /tmp/www/cgi-bin/c && httpd -p 9000 -h /tmp/www";
    let (code, _, err) = support::sh(&api, b.id.as_str(), cgi);
    assert_eq!(code, 0, "{err}");
    let rule = br#"{"action":"allow","protocol":"tcp","ports":"9000"}"#;
    assert_eq!(
        api.raw("POST", &format!("/api/v1/containers/{}/firewall/ingress", b.id), Some(rule)).unwrap().status,
        201
    );
    let b9000 = b.url.replacen("b--acme.", "b--acme-9000.", 1);
    let r = get(&d, &format!("{b9000}/cgi-bin/c"), &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"), "the app's page answers");
    let set: Vec<&str> =
        r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(set, ["session=1; Path=/"], "B's cookies stay on B's host and it sets no claim cookie");

    // A decoy planted for the whole domain comes first in the browser's
    // Cookie header; A's own claim still opens A.
    let jar = format!("__cubby_claim={b_claim}; __cubby_claim=decoy; __cubby_claim={a_claim}");
    assert_eq!(get(&d, &a.url, &[("Cookie", &jar)]).status, 200, "a decoy shadowed A's claim");
    let only_decoys = format!("__cubby_claim={b_claim}; __cubby_claim=decoy");
    assert_eq!(get(&d, &a.url, &[("Cookie", &only_decoys)]).json()["error"]["code"], "claim_invalid");

    // B's page cannot make A's browser change A's state or open a WebSocket
    // with A's cookie; A's own pages can (the same requests, A's Origin).
    let a_cookie = format!("__cubby_claim={a_claim}");
    let b_origin = b.url.clone();
    let post = |origin: &str, site: &str| {
        let mut h = vec![("Cookie", a_cookie.as_str()), ("Origin", origin)];
        if !site.is_empty() {
            h.push(("Sec-Fetch-Site", site));
        }
        http_request(d.proxy_addr, "POST", &format!("{}/echo", a.url), &h, Some(b"x=1"))
    };
    assert_eq!(post(&a.url, "same-origin").status, 200, "A's own page posts");
    for (origin, site) in [(b_origin.as_str(), "same-site"), (b_origin.as_str(), ""), ("null", "cross-site")] {
        let r = post(origin, site);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (403, Some("cross_site_request")),
            "{origin} {site}"
        );
    }
    // With the claim as a bearer (not ambient authority) another origin may write.
    let bearer = format!("Bearer {a_claim}");
    let r = http_request(
        d.proxy_addr,
        "POST",
        &format!("{}/echo", a.url),
        &[("Authorization", &bearer), ("Origin", &b_origin)],
        Some(b"x=1"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ws = |origin: &str| {
        let host = a.url.strip_prefix("http://").unwrap();
        let mut stream = std::net::TcpStream::connect(d.proxy_addr).unwrap();
        let head = format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {a_cookie}\r\nOrigin: {origin}\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert_eq!(ws(&a.url), "101", "A's page opens its WebSocket");
    assert_eq!(ws(&b_origin), "403", "B's page opened A's WebSocket with A's cookie");

    // A claim opens the port it was made for: the app's, not another.
    let a9000 = a.url.replacen("a--acme.", "a--acme-9000.", 1);
    let r = get(&d, &a9000, &[("Cookie", &a_cookie)]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("claim_invalid")), "{}", r.body);
    assert!(r.body.contains("another port"), "{}", r.body);
    let port_claim =
        api.authorize(a.id.as_str(), &AuthorizeRequest { port: Some(9000), ..Default::default() }).unwrap().claim;
    let r = get(&d, &a9000, &[("Cookie", &format!("__cubby_claim={port_claim}"))]);
    assert_eq!(r.json()["error"]["code"], "upstream_unreachable", "past the claim check (nothing listens there)");

    // Around the proxy: a local user of the host connects from the
    // gateway address that A's ingress rule lets in, yet gets nothing;
    // root (the daemon's own probes) does. Same tool, same address.
    let fetch = d.bin().parent().unwrap().join("helpers/cubby-fetch");
    let direct = format!("http://{}:8080/healthz", a.address);
    let run = |as_nobody: bool| {
        let mut cmd = std::process::Command::new(if as_nobody { "setpriv" } else { fetch.to_str().unwrap() });
        if as_nobody {
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&fetch);
        }
        cmd.args(["-t", "2", &direct]).output().unwrap()
    };
    let root = run(false);
    assert_eq!(
        (root.status.code(), String::from_utf8_lossy(&root.stdout).as_ref()),
        (Some(0), "ok"),
        "root on the host"
    );
    let nobody = run(true);
    assert_eq!(nobody.status.code(), Some(28), "a local user reached A's app without a claim: {nobody:?}");

    // The redirect after a claim link stays on A's host.
    let r = get(&d, &format!("{}//evil.example/x?__cubby_claim={a_claim}", a.url), &[]);
    assert_eq!((r.status, r.header("location")), (303, Some("/evil.example/x")));
}
