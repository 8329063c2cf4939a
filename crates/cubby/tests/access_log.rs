//! End to end, as root: each request through a tenant's URL is one line
//! of its project's access log (status, bytes, duration), with no query
//! string or header; a project reads its own log only.

mod support;

use std::time::{Duration, Instant};

use cubby_model::AccessLogLine;
use support::{container, daemon, project};

fn lines(client: &cubby_client::Client, project: &str) -> Vec<AccessLogLine> {
    let r = client.raw("GET", &format!("/api/v1/projects/{project}/access-log?limit=50"), None).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    serde_json::from_value(r.json()).unwrap()
}

#[test]
fn each_request_is_one_line_of_its_projects_access_log() {
    let Some(d) = daemon("each_request_is_one_line_of_its_projects_access_log") else { return };
    let api = d.admin();
    let (p, q) = (project(&api, "acme"), project(&api, "other"));
    let (a, b) = (container(&api, &p, "alpha", "a"), container(&api, &q, "beta", "b"));
    for path in ["/", "/?card=4242424242424242", "/nothing-here"] {
        let r = cubby_testkit::http_request(
            d.proxy_addr,
            "GET",
            &format!("{}{path}", a.url),
            &[("cookie", "s=hush")],
            None,
        );
        assert!(r.status == 200 || r.status == 404, "{}", r.status);
    }
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &b.url).status, 200);

    // Lines are written in the background: wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mine = loop {
        let got = lines(&api, p.id.as_str());
        if got.len() >= 3 || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(mine.iter().all(|l| l.container_id == a.id && l.method == "GET"), "{mine:?}");
    assert_eq!(mine.iter().filter(|l| l.status == 200).count(), 2, "{mine:?}");
    assert!(mine.iter().any(|l| l.status == 404), "the app's own 404 is logged as such");
    assert!(mine.iter().filter(|l| l.status == 200).all(|l| l.response_bytes > 0));
    let raw = api.raw("GET", &format!("/api/v1/projects/{}/access-log", p.id), None).unwrap();
    let text = String::from_utf8_lossy(&raw.body);
    assert!(!text.contains("4242") && !text.contains("hush"), "no query string, no cookie: {text}");

    // Each project sees its own (control: q's log has b's request).
    let theirs = lines(&api, q.id.as_str());
    assert!(theirs.iter().all(|l| l.container_id == b.id) && !theirs.is_empty(), "{theirs:?}");
    let token = api.create_token(q.id.as_str(), &Default::default()).unwrap().secret;
    let r = d.client(Some(&token)).raw("GET", &format!("/api/v1/projects/{}/access-log", p.id), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("project_not_found")));
}
