//! End to end, as root: the authorization matrix. Every operation of the
//! OpenAPI document is called three ways on project B's resources: with no
//! token (401), with project A's token (404 for B's resources, 403 for
//! admin-only ones, lists without B's items), and with the admin token
//! (through). A new endpoint without a row here fails the test.

mod support;

use std::collections::BTreeSet;

use cubby_model::{CreateAlias, CreateSnapshot, CreateToken};
use support::{container, daemon, project};

/// What project A's token must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ForA {
    /// B's resource: as if it did not exist.
    NotFound,
    /// Admin only.
    Forbidden,
    /// A shared or filtered resource: 200.
    Ok,
}

struct Case {
    method: &'static str,
    /// OpenAPI path with `{}` placeholders named as in the document.
    template: &'static str,
    body: Option<&'static str>,
    for_a: ForA,
}

const fn case(method: &'static str, template: &'static str, body: Option<&'static str>, for_a: ForA) -> Case {
    Case { method, template, body, for_a }
}

/// Every secured operation, in an order where the deletes come last.
const CASES: &[Case] = &[
    case("GET", "/metrics", None, ForA::Forbidden),
    case("GET", "/api/v1/projects", None, ForA::Ok),
    case("POST", "/api/v1/projects", Some(r#"{"name":"made-by-admin"}"#), ForA::Forbidden),
    case("GET", "/api/v1/projects/{id}", None, ForA::NotFound),
    case("PATCH", "/api/v1/projects/{id}", Some(r#"{"max_containers":50}"#), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/tokens", None, ForA::NotFound),
    case("POST", "/api/v1/projects/{id}/tokens", Some(r#"{"name":"x"}"#), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/containers", None, ForA::NotFound),
    case("POST", "/api/v1/projects/{id}/containers", Some(r#"{"name":"planted","start":false}"#), ForA::NotFound),
    case("POST", "/api/v1/projects/{id}/import", Some("not an export"), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/scripts", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/scripts/logs", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/scripts/{path}", None, ForA::NotFound),
    case("PUT", "/api/v1/projects/{id}/scripts/{path}", Some("export default () => 'planted'"), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/usage", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/access-log", None, ForA::NotFound),
    // Delivery to loopback is refused before any traffic leaves.
    case("POST", "/api/v1/projects/{id}/webhooks", Some(r#"{"url":"http://127.0.0.1:9/planted"}"#), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/webhooks", None, ForA::NotFound),
    case("POST", "/api/v1/projects/{id}/rollouts", Some(r#"{"image":"minimal"}"#), ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/rollouts", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/rollouts/{rollout_id}", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/webhooks/{webhook_id}/deliveries", None, ForA::NotFound),
    case("GET", "/api/v1/projects/{id}/secrets", None, ForA::NotFound),
    case("PUT", "/api/v1/projects/{id}/secrets", Some(r#"{"PLANTED":"x"}"#), ForA::NotFound),
    case("GET", "/api/v1/containers", None, ForA::Ok),
    case("GET", "/api/v1/events", None, ForA::Ok),
    case("GET", "/api/v1/events/stream", None, ForA::Ok),
    case("GET", "/api/v1/containers/{id}", None, ForA::NotFound),
    case("PATCH", "/api/v1/containers/{id}", Some(r#"{"environment_vars":{"PLANTED":"x"}}"#), ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/authorize", Some("{}"), ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/revoke-claims", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/copy", Some(r#"{"name":"stolen","start":false}"#), ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/export", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/sync", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/exec", Some(r#"{"command":["true"]}"#), ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/logs", None, ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/transitions", None, ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/stats", None, ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/usage", None, ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/env", None, ForA::NotFound),
    case("PUT", "/api/v1/containers/{id}/env", Some(r#"{"GREETING":"grabbed"}"#), ForA::NotFound),
    case("PUT", "/api/v1/containers/{id}/env/{key}", Some(r#"{"value":"grabbed"}"#), ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/firewall", None, ForA::NotFound),
    case("PUT", "/api/v1/containers/{id}/firewall", Some(r#"{"ingress":[],"egress":[]}"#), ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/firewall/reset", None, ForA::NotFound),
    case(
        "POST",
        "/api/v1/containers/{id}/firewall/{direction}",
        Some(r#"{"action":"allow","protocol":"tcp","ports":"9000"}"#),
        ForA::NotFound,
    ),
    case(
        "PATCH",
        "/api/v1/containers/{id}/firewall/{direction}/{rule_id}",
        Some(r#"{"description":"x"}"#),
        ForA::NotFound,
    ),
    case("GET", "/api/v1/containers/{id}/network", None, ForA::NotFound),
    case("PUT", "/api/v1/containers/{id}/network", Some(r#"{"mode":"open"}"#), ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/snapshots", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/snapshots", Some("{}"), ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/snapshots/{name}", None, ForA::NotFound),
    case("PATCH", "/api/v1/containers/{id}/snapshots/{name}", Some(r#"{"alias":"renamed"}"#), ForA::NotFound),
    case("PUT", "/api/v1/containers/{id}/snapshots/{name}", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/stop", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/start", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/restart", None, ForA::NotFound),
    case("GET", "/api/v1/containers/{id}/domains", None, ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/domains", Some(r#"{"hostname":"grab.shop.test"}"#), ForA::NotFound),
    case("POST", "/api/v1/containers/{id}/domains/{hostname}/verify", None, ForA::NotFound),
    case("GET", "/api/v1/aliases", None, ForA::Ok),
    case("POST", "/api/v1/aliases", Some(r#"{"name":"grab","container_id":"{cid}"}"#), ForA::NotFound),
    case("GET", "/api/v1/images", None, ForA::Ok),
    case("GET", "/api/v1/images/{name}", None, ForA::Ok),
    case("POST", "/api/v1/images", Some(""), ForA::Forbidden),
    case("POST", "/api/v1/backups", Some(r#"{"to":"{backups}"}"#), ForA::Forbidden),
    // Deletes, last.
    case("DELETE", "/api/v1/aliases/{name}", None, ForA::NotFound),
    case("DELETE", "/api/v1/containers/{id}/domains/{hostname}", None, ForA::NotFound),
    case("DELETE", "/api/v1/containers/{id}/env/{key}", None, ForA::NotFound),
    case("DELETE", "/api/v1/containers/{id}/firewall/{direction}/{rule_id}", None, ForA::NotFound),
    case("DELETE", "/api/v1/containers/{id}/snapshots/{name}", None, ForA::NotFound),
    case("DELETE", "/api/v1/projects/{id}/scripts/{path}", None, ForA::NotFound),
    case("DELETE", "/api/v1/projects/{id}/tokens/{token_id}", None, ForA::NotFound),
    case("DELETE", "/api/v1/projects/{id}/webhooks/{webhook_id}", None, ForA::NotFound),
    case("DELETE", "/api/v1/images/{name}", None, ForA::Forbidden),
    case("DELETE", "/api/v1/containers/{id}", None, ForA::NotFound),
    case("DELETE", "/api/v1/projects/{id}", None, ForA::NotFound),
];

/// The secured operations of the checked-in OpenAPI document.
fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../openapi/cubby.json")).expect("the OpenAPI document");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_endpoint_checks_who_calls() {
    let Some(d) = daemon("every_endpoint_checks_who_calls") else { return };
    let api = d.admin();
    let a = project(&api, "alpha");
    let b = project(&api, "beta");
    let token_a = api.create_token(a.id.as_str(), &CreateToken { name: Some("a".into()) }).unwrap().secret;
    let token_b = api.create_token(b.id.as_str(), &CreateToken { name: Some("b".into()) }).unwrap();
    let cb = container(&api, &b, "victim", "b's");
    let snap = api.create_snapshot(cb.id.as_str(), &CreateSnapshot::default()).unwrap();
    let rule = api
        .raw(
            "POST",
            &format!("/api/v1/containers/{}/firewall/ingress", cb.id),
            Some(br#"{"action":"allow","protocol":"tcp","ports":"7000"}"#),
        )
        .unwrap()
        .json();
    let rule_id = rule["id"].as_str().expect("a rule id").to_string();
    api.create_alias(&CreateAlias { name: "b-alias".into(), container_id: cb.id.clone(), port: None }).unwrap();
    let domain = api
        .raw("POST", &format!("/api/v1/containers/{}/domains", cb.id), Some(br#"{"hostname":"b.shop.test"}"#))
        .unwrap();
    assert_eq!(domain.status, 201, "{:?}", domain.json());
    api.put_script(b.id.as_str(), "b.js", b"export default () => 'b'").unwrap();
    let hook = api
        .raw("POST", &format!("/api/v1/projects/{}/webhooks", b.id), Some(br#"{"url":"http://127.0.0.1:9/b"}"#))
        .unwrap()
        .json();
    let webhook_id = hook["id"].as_str().expect("a webhook id").to_string();
    let rollout = cubby_model::CreateRollout { image: Some("minimal".into()), ..Default::default() };
    let rollout_id = api.create_rollout(b.id.as_str(), &rollout).unwrap().id.to_string();

    // Every documented operation has a row, and every row is documented.
    let rows: BTreeSet<(String, String)> =
        CASES.iter().map(|c| (c.method.to_string(), c.template.to_string())).collect();
    assert_eq!(rows, documented(), "the matrix and the OpenAPI document disagree");

    let fill = |c: &Case| -> String {
        let is_project = c.template.starts_with("/api/v1/projects/{id}");
        let name = if c.template.starts_with("/api/v1/aliases") {
            "b-alias".to_string()
        } else if c.template.starts_with("/api/v1/images") {
            "minimal".to_string()
        } else {
            snap.name.clone()
        };
        c.template
            .replace("{id}", if is_project { b.id.as_str() } else { cb.id.as_str() })
            .replace("{path}", "b.js")
            .replace("{direction}", "ingress")
            .replace("{rule_id}", &rule_id)
            .replace("{token_id}", token_b.token.id.as_str())
            .replace("{webhook_id}", &webhook_id)
            .replace("{rollout_id}", &rollout_id)
            .replace("{key}", "GREETING")
            .replace("{hostname}", "b.shop.test")
            .replace("{name}", &name)
    };
    let backups = std::env::temp_dir().join(format!("cubby-authz-backups-{}", d.prefix));
    let body =
        |c: &Case| c.body.map(|b| b.replace("{cid}", cb.id.as_str()).replace("{backups}", backups.to_str().unwrap()));
    let nobody = d.client(None);
    let alpha = d.client(Some(&token_a));

    for c in CASES {
        let path = fill(c);
        let what = format!("{} {}", c.method, c.template);
        // No token: 401 before anything else.
        let r = call(&d, &nobody, None, c, &path, body(c));
        assert_eq!(r.status, 401, "{what} without a token: {:?}", r.json());
        // Project A's token on B's resources.
        let r = call(&d, &alpha, Some(&token_a), c, &path, body(c));
        let want = match c.for_a {
            ForA::NotFound => 404,
            ForA::Forbidden => 403,
            ForA::Ok => 200,
        };
        assert_eq!(r.status, want, "{what} with another project's token: {:?}", r.json());
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            c.for_a != ForA::Ok || c.template.starts_with("/api/v1/images") || !text.contains(b.id.as_str()),
            "{what}: a list shows project B to project A: {text}"
        );
        if c.for_a == ForA::Ok {
            assert!(!text.contains(cb.id.as_str()) && !text.contains("b-alias"), "{what} lists B's resources: {text}");
        }
    }
    // Nothing A tried changed B.
    assert_eq!(api.containers(Some(b.id.as_str()), None, 10).unwrap().items.len(), 1);
    assert!(!api.container(cb.id.as_str()).unwrap().environment_vars.contains_key("PLANTED"));
    assert!(!api.env(cb.id.as_str()).unwrap().values().any(|v| v == "grabbed"), "A's env writes reached B");
    assert!(api.secrets(b.id.as_str()).unwrap().names.is_empty());
    assert_eq!(api.script(b.id.as_str(), "b.js").unwrap(), b"export default () => 'b'");
    let domains = api.raw("GET", &format!("/api/v1/containers/{}/domains", cb.id), None).unwrap().json();
    assert_eq!(domains.as_array().map(Vec::len), Some(1), "A added no domain to B's container: {domains}");

    // The admin token gets through everywhere (deletes last).
    for c in CASES {
        let mut path = fill(c);
        if c.template.contains("{rule_id}") {
            // Earlier admin calls (replace, reset) removed the first rule.
            let fresh = api
                .raw(
                    "POST",
                    &format!("/api/v1/containers/{}/firewall/ingress", cb.id),
                    Some(br#"{"action":"allow","protocol":"tcp","ports":"7001","allow_shadowed":true}"#),
                )
                .unwrap()
                .json();
            path = path.replace(&rule_id, fresh["id"].as_str().unwrap());
        }
        let r = call(&d, &api, Some(&d.token), c, &path, body(c));
        // A body that is no archive gets past access and is refused for
        // what it is.
        let bad_archive = ["/api/v1/images", "/api/v1/projects/{id}/import"].contains(&c.template);
        let allowed = r.status < 400 || (r.status == 400 && bad_archive) || r.status == 409;
        assert!(allowed, "{} {} with the admin token: {} {:?}", c.method, c.template, r.status, r.json());
        // Control of the list checks above: the admin's lists do show B.
        if c.for_a == ForA::Ok && c.method == "GET" && !c.template.starts_with("/api/v1/images") {
            let text = String::from_utf8_lossy(&r.body);
            let shows_b = [b.id.as_str(), cb.id.as_str(), "b-alias"].iter().any(|x| text.contains(x));
            assert!(shows_b, "{} {}: the admin's list shows B's resources: {text}", c.method, c.template);
        }
    }
    // Only the admin's backup was written.
    let written = std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&backups);
    assert_eq!(written, 1, "one backup, the admin's");
}

/// Calls `c`; a stream (Server-Sent Events) is read for a second, then
/// closed: its status and what it sent by then.
fn call(
    d: &cubby_testkit::Daemon,
    client: &cubby_client::Client,
    token: Option<&str>,
    c: &Case,
    path: &str,
    body: Option<String>,
) -> cubby_client::RawResponse {
    if !c.template.ends_with("/stream") {
        return client.raw(c.method, path, body.as_deref().map(str::as_bytes)).unwrap();
    }
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(d.api_addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: cubby\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    cubby_client::RawResponse { status, body: body.into_bytes() }
}
