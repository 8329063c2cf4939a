//! End to end, as root: the command-line client covers the API with
//! readable tables and `--json`.

mod support;

use support::daemon;

#[test]
fn cli_walks_through_the_lifecycle() {
    let Some(d) = daemon("cli_walks_through_the_lifecycle") else { return };
    let (code, out, err) = d.cli(&["projects", "create", "acme", "--json"]);
    assert_eq!(code, 0, "{err}");
    let project: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pid = project["id"].as_str().unwrap().to_string();

    let (code, out, err) =
        d.cli(&["containers", "create", &pid, "web", "--env", "GREETING=hi", "--memory", "128MiB", "--json"]);
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["status"], "running");
    assert_eq!(c["limits"]["memory"], 128 << 20);

    // URLs: the project defaults to claims; authorize prints a link that opens the container.
    assert_eq!(c["access"], "claim");
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, c["url"].as_str().unwrap()).status, 401);
    let (code, link, err) = d.cli(&["containers", "authorize", &cid, "--subject", "u1"]);
    assert_eq!(code, 0, "{err}");
    let r = cubby_testkit::http_get(d.proxy_addr, link.trim());
    assert_eq!(r.status, 303, "{}", r.body);
    let (code, out, err) = d.cli(&["aliases", "create", "front", &cid, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("http://front.localhost:"), "{out}");
    let (code, out, _) =
        d.cli(&["containers", "update", &cid, "--access", "public", "--idle-timeout", "300", "--json"]);
    assert_eq!(code, 0);
    let updated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((updated["access"].as_str(), updated["idle_timeout_seconds"].as_u64()), (Some("public"), Some(300)));
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, "http://front.localhost/healthz").status, 200);

    let (code, out, _) = d.cli(&["containers", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("web") && out.contains("running") && out.contains("NAME"), "a readable table:\n{out}");
    let (code, out, _) = d.cli(&["projects", "list"]);
    assert!(code == 0 && out.contains("acme"));
    let (code, out, _) = d.cli(&["images", "list"]);
    assert!(code == 0 && out.contains("minimal"));

    let (code, out, _) = d.cli(&["exec", &cid, "--", "sh", "-c", "echo $GREETING; exit 4"]);
    assert_eq!((code, out.as_str()), (4, "hi\n"), "exec passes output and exit code through");
    let (code, out, _) = d.cli(&["logs", &cid]);
    assert!(code == 0 && out.contains("listening"));
    let (code, _, _) = d.cli(&["containers", "stop", &cid]);
    assert_eq!(code, 0);
    let (_, out, _) = d.cli(&["containers", "transitions", &cid]);
    assert!(out.contains("stopped"));
    let (code, _, err) = d.cli(&["containers", "get", "cnotarealidxx"]);
    assert_ne!(code, 0);
    assert!(err.contains("container_not_found"), "{err}");
    // Env, firewall and network from the CLI.
    let (code, out, err) = d.cli(&["env", "set", &cid, "A=1", "B=2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("KEY") && out.contains("A") && out.contains("GREETING"), "a table of the env:\n{out}");
    let (code, out, err) = d.cli(&["env", "unset", &cid, "A", "--json"]);
    assert_eq!(code, 0, "{err}");
    let env: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((env.get("A"), env["B"].as_str()), (None, Some("2")));
    let (code, _, err) =
        d.cli(&["firewall", "add", &cid, "egress", "--action", "reject", "--protocol", "tcp", "--ports", "25"]);
    assert_ne!(code, 0, "appended after the allow-all it would never apply");
    assert!(err.contains("rule_shadowed"), "{err}");
    let (code, out, err) = d.cli(&[
        "firewall",
        "add",
        &cid,
        "egress",
        "--action",
        "reject",
        "--protocol",
        "tcp",
        "--ports",
        "25",
        "--position",
        "0",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rule: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (code, out, _) = d.cli(&["firewall", "list", &cid]);
    assert!(code == 0 && out.contains(rule["id"].as_str().unwrap()) && out.contains("reject"), "{out}");
    let (code, _, err) = d.cli(&["firewall", "delete", &cid, "egress", rule["id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["network", "set", &cid, "--mode", "block", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"block\""), "{out}");
    let (code, out, _) = d.cli(&["network", "get", &cid]);
    assert!(code == 0 && out.contains("block"), "{out}");

    // The version names the commit; completions are printed for each shell.
    let (code, out, _) = d.cli(&["--version"]);
    assert!(code == 0 && out.starts_with("cubby ") && out.contains('('), "{out}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = d.cli(&["completions", shell]);
        assert!(code == 0 && out.contains("firewall") && out.contains("containers"), "{shell}: {err}");
    }

    let (code, _, _) = d.cli(&["containers", "delete", &cid]);
    assert_eq!(code, 0);
}
