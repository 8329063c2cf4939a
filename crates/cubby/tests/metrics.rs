//! End to end, as root: `/metrics` in the OpenMetrics text format, read
//! with a Prometheus parser: each tenant's series carry its labels and
//! agree with the usage API; only the admin may scrape.

mod support;

use std::time::Duration;

use support::{container, daemon, project};

/// The samples of one scrape, and its text.
fn scrape(d: &cubby_testkit::Daemon, token: &str) -> (prometheus_parse::Scrape, String) {
    let r = d.client(Some(token)).raw("GET", "/metrics", None).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let parsed =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("a Prometheus exposition");
    (parsed, text)
}

/// The value of `metric` for `container`.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, container: &str) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == metric && s.labels.get("container") == Some(container)).map(|s| match s
        .value
    {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    })
}

#[test]
fn metrics_show_each_tenant_as_the_usage_api_does() {
    let Some(d) = daemon("metrics_show_each_tenant_as_the_usage_api_does") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let (a, b) = (container(&api, &p, "alpha", "a"), container(&api, &p, "beta", "b"));
    for _ in 0..3 {
        assert_eq!(cubby_testkit::http_get(d.proxy_addr, &a.url).status, 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    // A usage query reads the counters; the scrape shows what it read.
    let usage_a = api.container_usage(a.id.as_str(), "step=3600").unwrap().totals;
    api.stop(b.id.as_str()).unwrap();
    let (s, text) = scrape(&d, &d.token);

    let requests = value(&s, "cubby_container_requests_total", a.id.as_str()).expect("A's requests");
    assert_eq!(requests, usage_a.requests as f64, "the same count as the usage API");
    assert_eq!(usage_a.requests, 3);
    let cpu = value(&s, "cubby_container_cpu_seconds_total", a.id.as_str()).unwrap();
    assert!(cpu > 0.0 && cpu <= usage_a.cpu_seconds + 0.5, "{cpu} vs {}", usage_a.cpu_seconds);
    let sample = s
        .samples
        .iter()
        .find(|x| x.metric == "cubby_container_up" && x.labels.get("container") == Some(a.id.as_str()))
        .unwrap();
    assert_eq!((sample.labels.get("name"), sample.labels.get("project")), (Some("alpha"), Some(p.id.as_str())));
    assert_eq!(value(&s, "cubby_container_up", a.id.as_str()), Some(1.0));
    assert_eq!(value(&s, "cubby_container_up", b.id.as_str()), Some(0.0), "B is stopped");
    assert_eq!(value(&s, "cubby_container_requests_total", b.id.as_str()), Some(0.0), "A's requests are not B's");
    assert!(value(&s, "cubby_container_memory_bytes", a.id.as_str()).unwrap() > 0.0);
    assert_eq!(value(&s, "cubby_container_memory_bytes", b.id.as_str()), Some(0.0), "a stopped tenant uses none");
    let stopped =
        s.samples.iter().find(|x| x.metric == "cubby_containers" && x.labels.get("status") == Some("stopped"));
    assert!(stopped.is_some(), "containers by status");
    assert!(s.samples.iter().any(|x| x.metric == "cubby_pool_bytes" && x.labels.get("state") == Some("free")));
    // Each tenant's rules were installed: nftables changes are counted and timed.
    let installs = |name: &str| {
        s.samples.iter().find(|x| x.metric == name && x.labels.get("step") == Some("install container rules")).map(
            |x| match x.value {
                prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Untyped(n) => n,
                _ => f64::NAN,
            },
        )
    };
    assert!(installs("cubby_nft_applies_total").is_some_and(|n| n >= 2.0), "two tenants' rules installed");
    assert!(installs("cubby_nft_apply_seconds_total").is_some_and(|t| t > 0.0), "and timed");
    let ok = s.samples.iter().find(|x| {
        x.metric == "cubby_container_responses_total"
            && x.labels.get("container") == Some(a.id.as_str())
            && x.labels.get("class") == Some("2xx")
    });
    let three = |v: &prometheus_parse::Value| matches!(v, prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Untyped(n) if *n == 3.0);
    assert!(ok.is_some_and(|x| three(&x.value)), "three 2xx answers: {ok:?}");
    let proxied = text
        .lines()
        .find(|l| l.starts_with(r#"cubby_proxy_request_duration_seconds_count{class="2xx"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(proxied.is_some_and(|n| n >= 3.0), "the proxy times its requests: {proxied:?}");
    // (prometheus-parse skips label values with braces, which the format
    // allows: the route templates are read from the text.)
    let timed: Vec<&str> = text.lines().filter(|l| l.starts_with("cubby_api_request_duration_seconds_count")).collect();
    assert!(
        timed.iter().any(|l| l.contains(r#"route="/api/v1/containers/{id}/usage""#)),
        "the API times routes by template: {timed:?}"
    );
    assert!(!text.contains(&format!("route=\"/api/v1/containers/{}", a.id)), "never by path");

    // A wake and a script run are timed.
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &b.url).status, 200, "B wakes for a request");
    api.put_script(p.id.as_str(), "hello.js", b"export default () => 'hi'").unwrap();
    let exec = format!("http://acme.exec.localhost:{}/hello", d.proxy_addr.port());
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &exec).status, 200);
    let (_, text) = scrape(&d, &d.token);
    for series in [
        r#"cubby_wake_duration_seconds_count{outcome="started"} "#,
        r#"cubby_script_duration_seconds_count{class="2xx"} "#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(series)), "{series}in {text}");
    }

    // Only the admin scrapes (control: the admin's scrape above).
    let token = api.create_token(p.id.as_str(), &Default::default()).unwrap().secret;
    let r = d.client(Some(&token)).raw("GET", "/metrics", None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("forbidden")));
}

#[test]
fn no_metrics_turns_the_scrape_off_and_keeps_the_proxy() {
    if !cubby_testkit::require_root("no_metrics_turns_the_scrape_off_and_keeps_the_proxy") {
        return;
    }
    let options = cubby_testkit::DaemonOptions { extra_args: vec!["--no-metrics".into()], ..Default::default() };
    let d = cubby_testkit::Daemon::start_with(support::BIN, options);
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "alpha", "a");
    // The tenant is served as ever (the control that the daemon works).
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &a.url).status, 200);
    let r = api.raw("GET", "/metrics", None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("metrics_disabled")));
}
