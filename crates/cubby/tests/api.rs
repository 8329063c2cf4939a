//! End to end, as root: bad input gets a clear JSON error with a stable
//! code and leaves nothing behind; tokens see only their own project.

mod support;

use cubby_model::{CreateContainer, CreateToken};
use cubby_testkit::{HostView, http_get};
use support::{container, daemon, project};

fn post(client: &cubby_client::Client, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = client.raw("POST", path, Some(body.as_bytes())).unwrap();
    (r.status, r.json())
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() {
    let Some(d) = daemon("bad_input_gets_clear_errors_and_leaves_nothing") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let ok = container(&api, &p, "taken", "x");
    let before = HostView::of(&d);
    let path = format!("/api/v1/projects/{}/containers", p.id);

    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        ("malformed JSON", "{\"name\": ".into(), 400, "invalid_json", None),
        ("not an object", "[1,2]".into(), 400, "invalid_request", None),
        ("missing name", "{}".into(), 400, "invalid_request", None),
        ("unknown field", r#"{"name":"a","imgae":"minimal"}"#.into(), 400, "invalid_request", None),
        ("upper-case name", r#"{"name":"Tenant"}"#.into(), 400, "invalid_request", Some("name")),
        ("name with --", r#"{"name":"a--b"}"#.into(), 400, "invalid_request", Some("name")),
        ("name too long", format!(r#"{{"name":"{}"}}"#, "a".repeat(31)), 400, "invalid_request", Some("name")),
        ("unknown image", r#"{"name":"a","image":"nope"}"#.into(), 404, "image_not_found", None),
        ("bad image name", r#"{"name":"a","image":"../etc"}"#.into(), 400, "invalid_request", Some("image")),
        (
            "bad env key",
            r#"{"name":"a","environment_vars":{"1X":"y"}}"#.into(),
            400,
            "invalid_request",
            Some("environment_vars.1X"),
        ),
        (
            "oversized env value",
            format!(r#"{{"name":"a","environment_vars":{{"X":"{}"}}}}"#, "v".repeat(40_000)),
            400,
            "invalid_request",
            Some("environment_vars.X"),
        ),
        (
            "memory too big",
            r#"{"name":"a","limits":{"memory":"64TiB"}}"#.into(),
            400,
            "invalid_request",
            Some("limits.memory"),
        ),
        ("memory unit", r#"{"name":"a","limits":{"memory":"12 parsecs"}}"#.into(), 400, "invalid_request", None),
        ("cpu too big", r#"{"name":"a","limits":{"cpu":1000}}"#.into(), 400, "invalid_request", Some("limits.cpu")),
        ("pids too small", r#"{"name":"a","limits":{"pids":1}}"#.into(), 400, "invalid_request", Some("limits.pids")),
        ("port zero", r#"{"name":"a","port":0}"#.into(), 400, "invalid_request", Some("port")),
        ("port too big", r#"{"name":"a","port":70000}"#.into(), 400, "invalid_request", None),
        ("empty command", r#"{"name":"a","command":[]}"#.into(), 400, "invalid_request", Some("command")),
        ("duplicate name", r#"{"name":"taken"}"#.into(), 409, "container_already_exists", None),
        (
            "oversized body",
            format!(r#"{{"name":"a","command":["{}"]}}"#, "x".repeat(2 << 20)),
            413,
            "payload_too_large",
            None,
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, json) = post(&api, &path, &body);
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["error"]["code"], code, "{what}: {json}");
        let message = json["error"]["message"].as_str().unwrap_or("");
        assert!(message.len() > 10, "{what}: the message says what to fix: {json}");
        if let Some(field) = field {
            assert_eq!(json["error"]["details"]["field"], field, "{what}: {json}");
        }
    }

    let (status, json) = post(&api, "/api/v1/projects", r#"{"name":"Bad Name"}"#);
    assert_eq!((status, json["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, json) = post(&api, "/api/v1/projects", r#"{"name":"acme"}"#);
    assert_eq!((status, json["error"]["code"].as_str()), (409, Some("project_already_exists")));
    let r = api.raw("GET", "/api/v1/containers/cnotarealidxx", None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("container_not_found")));
    let r = api.raw("GET", "/api/v1/containers/..%2F..%2Fetc", None).unwrap();
    assert_eq!(r.status, 404);
    let r = api.raw("GET", "/api/v1/nowhere", None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("route_not_found")));

    assert_eq!(HostView::settled(&d), before, "rejected requests left something on the host");
    let all = api.containers(None, None, 100).unwrap().items;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, ok.id);
    assert_eq!(http_get(d.proxy_addr, &ok.url).status, 200);
    let unknown = http_get(d.proxy_addr, "http://nobody--acme.localhost/");
    assert_eq!((unknown.status, unknown.json()["error"]["code"].as_str()), (404, Some("unknown_host")));
}

#[test]
fn tokens_see_only_their_project() {
    let Some(d) = daemon("tokens_see_only_their_project") else { return };
    let admin = d.admin();
    let p1 = project(&admin, "one");
    let p2 = project(&admin, "two");
    let c2 = container(&admin, &p2, "theirs", "x");
    let created = admin.create_token(p1.id.as_str(), &CreateToken { name: Some("ci".into()) }).unwrap();
    let t1 = d.client(Some(&created.secret));

    // It sees its own project only.
    let visible = t1.projects().unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].id, p1.id);
    let mine =
        t1.create_container(p1.id.as_str(), &CreateContainer { name: "mine".into(), ..Default::default() }).unwrap();
    assert_eq!(t1.containers(None, None, 100).unwrap().items.len(), 1);

    // Another project's resources do not exist for it.
    // (The code, not only the status: an unknown route is a 404 too.)
    let code = |e: cubby_client::ClientError| (e.status(), e.code().map(str::to_string));
    let gone = |kind: &str| (Some(404), Some(format!("{kind}_not_found")));
    for (answer, what, kind) in [
        (code(t1.project(p2.id.as_str()).unwrap_err()), "project", "project"),
        (code(t1.container(c2.id.as_str()).unwrap_err()), "container", "container"),
        (code(t1.delete_container(c2.id.as_str()).unwrap_err()), "delete", "container"),
        (code(t1.stop(c2.id.as_str()).unwrap_err()), "stop", "container"),
        (code(t1.exec_args(c2.id.as_str(), &["true"]).unwrap_err()), "exec", "container"),
        (code(t1.logs(c2.id.as_str(), 10).unwrap_err()), "logs", "container"),
        (code(t1.tokens(p2.id.as_str()).unwrap_err()), "tokens", "project"),
        (code(t1.env(c2.id.as_str()).unwrap_err()), "env", "container"),
        (code(t1.set_env_var(c2.id.as_str(), "K", "v", false).unwrap_err()), "set env", "container"),
        (code(t1.firewall(c2.id.as_str()).unwrap_err()), "firewall", "container"),
        (code(t1.network(c2.id.as_str()).unwrap_err()), "network", "container"),
        (
            code(
                t1.create_container(p2.id.as_str(), &CreateContainer { name: "x".into(), ..Default::default() })
                    .unwrap_err(),
            ),
            "create",
            "project",
        ),
    ] {
        assert_eq!(answer, gone(kind), "{what} on another project must answer {kind}_not_found");
    }
    // Control: the same calls on its own project work.
    assert_eq!(t1.container(mine.id.as_str()).unwrap().name, "mine");
    assert!(t1.set_env_var(mine.id.as_str(), "K", "v", false).unwrap().contains_key("K"));
    assert!(t1.firewall(mine.id.as_str()).is_ok() && t1.network(mine.id.as_str()).is_ok());
    assert!(!admin.env(c2.id.as_str()).unwrap().contains_key("K"), "the other tenant's env is untouched");
    assert_eq!(t1.logs(mine.id.as_str(), 10).map(|_| ()).ok(), Some(()));
    let forbidden = t1.create_project(&cubby_model::CreateProject {
        name: "three".into(),
        max_containers: None,
        ..Default::default()
    });
    assert_eq!(forbidden.unwrap_err().status(), Some(403));
    assert_eq!(admin.container(c2.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Running, "untouched");

    // No token, or a wrong one: 401 with a hint.
    for client in [d.client(None), d.client(Some("cubby_0000")), d.client(Some("garbage"))] {
        let r = client.raw("GET", "/api/v1/projects", None).unwrap();
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("unauthorized")));
    }
    // The health check needs no token.
    assert_eq!(d.client(None).health().unwrap()["status"], "ok");

    // Secrets are stored hashed: the database file never contains them.
    let db = std::fs::read(d.data_dir.join("cubby.db")).unwrap();
    let wal = std::fs::read(d.data_dir.join("cubby.db-wal")).unwrap_or_default();
    for secret in [created.secret.as_str(), d.token.as_str()] {
        let needle = secret.as_bytes();
        assert!(!db.windows(needle.len()).any(|w| w == needle), "a secret is stored in clear");
        assert!(!wal.windows(needle.len()).any(|w| w == needle), "a secret is stored in clear (WAL)");
    }
    let mode = std::fs::metadata(d.data_dir.join("admin.token")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    t1.delete_container(mine.id.as_str()).unwrap();
}

#[test]
fn project_quotas_bound_every_container_and_tokens_cannot_raise_them() {
    use cubby_model::{
        ByteSize, CopyContainer, CreateProject, LimitsSpec, ProjectQuota, UpdateContainer, UpdateProject,
    };
    let Some(d) = daemon("project_quotas_bound_every_container_and_tokens_cannot_raise_them") else { return };
    let api = d.admin();
    let quota = ProjectQuota {
        max_cpu: Some(0.5),
        max_memory: Some(ByteSize(256 << 20)),
        max_disk: Some(ByteSize(64 << 20)),
        default_disk: Some(ByteSize(32 << 20)),
    };
    let small =
        api.create_project(&CreateProject { name: "small".into(), quota: Some(quota), ..Default::default() }).unwrap();
    assert_eq!(small.quota, quota);
    let token = api.create_token(small.id.as_str(), &CreateToken::default()).unwrap().secret;
    let tenant = d.client(Some(&token));

    // Asking for nothing: the daemon's defaults, within the quota.
    let c = tenant.create_container(small.id.as_str(), &support::create_req("a", "x")).unwrap();
    assert_eq!((c.limits.cpu, c.limits.memory, c.limits.disk), (0.5, ByteSize(256 << 20), Some(ByteSize(32 << 20))));
    // Asking for more is refused with the reason; asking within is fine.
    let above = |limits: LimitsSpec| CreateContainer { limits: Some(limits), ..support::create_req("b", "x") };
    let err = tenant
        .create_container(
            small.id.as_str(),
            &above(LimitsSpec { memory: Some(ByteSize(1 << 30)), ..Default::default() }),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_request"), "{err}");
    assert!(err.to_string().contains("quota"), "{err}");
    let within = LimitsSpec { memory: Some(ByteSize(128 << 20)), disk: Some(ByteSize(64 << 20)), ..Default::default() };
    assert_eq!(tenant.create_container(small.id.as_str(), &above(within)).unwrap().limits.memory, ByteSize(128 << 20));
    let patch = |memory: u64| UpdateContainer {
        limits: Some(LimitsSpec { memory: Some(ByteSize(memory)), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(tenant.update_container(c.id.as_str(), &patch(1 << 30)).unwrap_err().code(), Some("invalid_request"));
    assert_eq!(tenant.update_container(c.id.as_str(), &patch(200 << 20)).unwrap().limits.memory, ByteSize(200 << 20));
    // The project's token cannot lift the quota; the admin can.
    let lift = UpdateProject { quota: Some(ProjectQuota::default()), ..Default::default() };
    assert_eq!(tenant.update_project(small.id.as_str(), &lift).unwrap_err().status(), Some(403));
    assert_eq!(api.project(small.id.as_str()).unwrap().quota, quota, "unchanged");

    // A template from a project without a quota is copied in within it.
    let big = support::project(&api, "big");
    let template = api
        .create_container(
            big.id.as_str(),
            &CreateContainer {
                limits: Some(LimitsSpec { memory: Some(ByteSize(512 << 20)), cpu: Some(1.0), ..Default::default() }),
                ..support::create_req("template", "t")
            },
        )
        .unwrap();
    let copy = api
        .copy_container(
            template.id.as_str(),
            &CopyContainer { name: "copied".into(), target_project_id: Some(small.id.clone()), ..Default::default() },
        )
        .unwrap();
    assert_eq!((copy.limits.cpu, copy.limits.memory), (0.5, ByteSize(256 << 20)));
    assert_eq!(copy.limits.disk, Some(ByteSize(32 << 20)));
    assert_eq!(
        api.update_project(small.id.as_str(), &lift).unwrap().quota,
        ProjectQuota::default(),
        "the admin lifts it"
    );
}
