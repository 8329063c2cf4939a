//! End to end, as root: env vars as the seed spells them (`env_vars`),
//! and one at a time through `/containers/{id}/env`.

mod support;

use cubby_testkit::http_get;
use support::{container, daemon, project};

fn greeting(d: &cubby_testkit::Daemon, url: &str) -> String {
    http_get(d.proxy_addr, url).json()["greeting"].as_str().unwrap_or_default().to_string()
}

#[test]
fn env_vars_work_as_the_seed_writes_them_and_one_at_a_time() {
    let Some(d) = daemon("env_vars_work_as_the_seed_writes_them_and_one_at_a_time") else { return };
    let api = d.admin();
    let p = project(&api, "acme");

    // Create, PATCH and copy take `env_vars` as they take `environment_vars`.
    let body = br#"{"name":"seed","image":"minimal","env_vars":{"GREETING":"from env_vars"}}"#;
    let r = api.raw("POST", &format!("/api/v1/projects/{}/containers", p.id), Some(body)).unwrap();
    assert_eq!(r.status, 201, "{}", r.json());
    let (id, url) = (r.json()["id"].as_str().unwrap().to_string(), r.json()["url"].as_str().unwrap().to_string());
    assert_eq!(greeting(&d, &url), "from env_vars");
    let patch = br#"{"env_vars":{"GREETING":"patched"},"restart":true}"#;
    let r = api.raw("PATCH", &format!("/api/v1/containers/{id}"), Some(patch)).unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(greeting(&d, &url), "patched");
    let copy = br#"{"name":"copied","env_vars":{"GREETING":"copied"}}"#;
    let r = api.raw("POST", &format!("/api/v1/containers/{id}/copy"), Some(copy)).unwrap();
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(greeting(&d, r.json()["url"].as_str().unwrap()), "copied");
    // Both spellings at once is a clear error.
    let both = br#"{"environment_vars":{"A":"1"},"env_vars":{"A":"2"}}"#;
    let r = api.raw("PATCH", &format!("/api/v1/containers/{id}"), Some(both)).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", r.json());

    // One at a time.
    let env = api.set_env_var(&id, "GREETING", "one at a time", true).unwrap();
    assert_eq!(env["GREETING"], "one at a time");
    assert_eq!(greeting(&d, &url), "one at a time", "?restart=true applies it now");
    let env = api.set_env_var(&id, "GREETING", "next start", false).unwrap();
    assert_eq!(env["GREETING"], "next start");
    assert_eq!(greeting(&d, &url), "one at a time", "without restart the app keeps its env until its next start");
    api.set_env_var(&id, "LATER", "x", false).unwrap();
    api.delete_env_var(&id, "LATER", false).unwrap();
    assert!(!api.env(&id).unwrap().contains_key("LATER"));
    let r = api.raw("DELETE", &format!("/api/v1/containers/{id}/env/LATER"), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("env_var_not_found")));
    let bad = api.raw("PUT", &format!("/api/v1/containers/{id}/env/1BAD"), Some(br#"{"value":"x"}"#)).unwrap();
    assert_eq!(bad.status, 400, "{}", bad.json());
    // Replacing the whole env drops what is not given.
    let all = std::collections::BTreeMap::from([("GREETING".to_string(), "replaced".to_string())]);
    let env = api.replace_env(&id, &all, true).unwrap();
    assert_eq!(env, all);
    assert_eq!(greeting(&d, &url), "replaced");

    // Another project's token sees none of it.
    let other = project(&api, "other");
    let theirs = container(&api, &other, "theirs", "theirs");
    let token = api.create_token(other.id.as_str(), &Default::default()).unwrap().secret;
    let b = d.client(Some(&token));
    assert!(b.env(theirs.id.as_str()).is_ok(), "control: B reads its own env");
    for r in [
        b.raw("GET", &format!("/api/v1/containers/{id}/env"), None).unwrap(),
        b.raw("PUT", &format!("/api/v1/containers/{id}/env/GREETING"), Some(br#"{"value":"hijacked"}"#)).unwrap(),
        b.raw("DELETE", &format!("/api/v1/containers/{id}/env/GREETING"), None).unwrap(),
    ] {
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("container_not_found")));
    }
    assert_eq!(greeting(&d, &url), "replaced", "A's app is untouched");
}
