//! End to end, as root: scripts made of several files and of npm packages.
//! `cubby scripts push --bundle` bundles the provider examples with esbuild;
//! each verifies a delivery signed by the provider's own library (Stripe's
//! SDK, GitHub's `@octokit/webhooks-methods`, `standardwebhooks`) and
//! refuses a tampered one. A script imports its own project's files, sees
//! an edit at once, and reaches no other project's files.

mod support;

use std::path::{Path, PathBuf};

use cubby_model::PutSecrets;
use cubby_testkit::{Daemon, HttpResponse, http_request};
use support::{daemon, project};

fn exec_url(d: &Daemon, project: &str, path: &str) -> String {
    format!("http://{project}.exec.localhost:{}{path}", d.proxy_addr.port())
}

fn post(d: &Daemon, url: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    http_request(d.proxy_addr, "POST", url, headers, Some(body.as_bytes()))
}

fn providers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scripts/providers")
}

const STRIPE_SECRET: &str = "whsec_stripe_test_0123456789";
const GITHUB_SECRET: &str = "github-test-secret";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Deliveries signed by the providers' own libraries, under Node.
const SIGN: &str = r#"
import Stripe from "stripe";
import { sign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
const [stripeSecret, githubSecret, standardSecret] = process.argv.slice(1);
const stripePayload = JSON.stringify({ id: "evt_1", object: "event", type: "invoice.paid", data: { object: {} } });
const githubPayload = JSON.stringify({ action: "opened", number: 7 });
const standardPayload = JSON.stringify({ type: "user.created", data: { id: "u_1" } });
const when = new Date();
console.log(JSON.stringify({
  stripe: { payload: stripePayload, header: new Stripe("sk_test_x").webhooks.generateTestHeaderString({ payload: stripePayload, secret: stripeSecret }) },
  github: { payload: githubPayload, signature: await sign(githubSecret, githubPayload) },
  standard: {
    payload: standardPayload,
    id: "msg_1",
    timestamp: String(Math.floor(when.getTime() / 1000)),
    signature: new Webhook(standardSecret).sign("msg_1", when, standardPayload),
  },
}));
"#;

#[test]
fn webhooks_verified_by_the_providers_own_libraries_in_bundled_scripts() {
    let dir = providers();
    let installed = ["stripe", "standardwebhooks", "@octokit/webhooks-methods", ".bin/esbuild"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists());
    if !installed {
        let why = "the provider examples' npm packages are missing: run scripts/setup.sh --clients";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"), "{why} (CI=true forbids skipping)");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let Some(d) = daemon("webhooks_verified_by_the_providers_own_libraries_in_bundled_scripts") else { return };
    let api = d.admin();
    let p = project(&api, "billing");
    let (code, out, err) = d.cli(&["scripts", "push", dir.to_str().unwrap(), "--project", p.id.as_str(), "--bundle"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut pushed: Vec<String> = api.scripts(p.id.as_str()).unwrap().into_iter().map(|f| f.path).collect();
    pushed.sort();
    assert_eq!(pushed, ["github.js", "standard-webhooks.js", "stripe.js"], "one bundle per endpoint, _lib inlined");
    api.put_secrets(
        p.id.as_str(),
        &PutSecrets::from([
            ("STRIPE_WEBHOOK_SECRET".into(), STRIPE_SECRET.into()),
            ("GITHUB_WEBHOOK_SECRET".into(), GITHUB_SECRET.into()),
            ("STANDARD_WEBHOOK_SECRET".into(), STANDARD_SECRET.into()),
        ]),
    )
    .unwrap();

    let out = std::process::Command::new("node")
        .args(["--input-type=module", "-e", SIGN, "--", STRIPE_SECRET, GITHUB_SECRET, STANDARD_SECRET])
        .current_dir(&dir)
        .output()
        .expect("run node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let stripe = |body: &str| {
        let header = signed["stripe"]["header"].as_str().unwrap();
        post(&d, &exec_url(&d, "billing", "/stripe"), &[("Stripe-Signature", header)], body)
    };
    let github = |body: &str| {
        let headers =
            [("X-Hub-Signature-256", signed["github"]["signature"].as_str().unwrap()), ("X-GitHub-Event", "issues")];
        post(&d, &exec_url(&d, "billing", "/github"), &headers, body)
    };
    let standard = |body: &str| {
        let s = &signed["standard"];
        let headers = [
            ("webhook-id", s["id"].as_str().unwrap()),
            ("webhook-timestamp", s["timestamp"].as_str().unwrap()),
            ("webhook-signature", s["signature"].as_str().unwrap()),
        ];
        post(&d, &exec_url(&d, "billing", "/standard-webhooks"), &headers, body)
    };
    type Deliver<'a> = &'a dyn Fn(&str) -> HttpResponse;
    let cases: [(&str, Deliver, serde_json::Value); 3] = [
        ("stripe", &stripe, serde_json::json!({"id": "evt_1", "type": "invoice.paid"})),
        ("github", &github, serde_json::json!({"event": "issues", "action": "opened"})),
        ("standard", &standard, serde_json::json!({"id": "msg_1", "type": "user.created"})),
    ];
    for (name, deliver, expected) in cases {
        let payload = signed[name]["payload"].as_str().unwrap();
        // The delivery as signed passes first (so a refusal below is the
        // signature's doing, not a script that cannot run).
        let r = deliver(payload);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        assert_eq!(v["verified"], true, "{name}: {v}");
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&v[key], value, "{name}: {v}");
        }
        let tampered = payload.replacen('1', "2", 1).replacen("opened", "closed", 1);
        assert_ne!(tampered, payload);
        let r = deliver(&tampered);
        assert_eq!((r.status, &r.json()["verified"]), (400, &serde_json::json!(false)), "{name}: {}", r.body);
    }
    // The shared helper logged each refusal, and is no endpoint itself.
    let logs = api.script_logs(p.id.as_str(), 20).unwrap();
    let rejected = logs.iter().filter(|l| l.logs.iter().any(|x| x.message.contains("signature rejected"))).count();
    assert_eq!(rejected, 3, "{logs:?}");
    let r = http_request(d.proxy_addr, "GET", &exec_url(&d, "billing", "/_lib/reply"), &[], None);
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn a_script_imports_its_own_projects_files_and_no_one_elses() {
    let Some(d) = daemon("a_script_imports_its_own_projects_files_and_no_one_elses") else { return };
    let api = d.admin();
    let alpha = project(&api, "alpha");
    let beta = project(&api, "beta");
    let put = |p: &cubby_model::Project, path: &str, source: &str| {
        api.put_script(p.id.as_str(), path, source.as_bytes()).unwrap_or_else(|e| panic!("put {path}: {e}"));
    };
    put(&beta, "_lib/secret.ts", "export const secret: string = 'beta-only';");
    put(&alpha, "_lib/greeting.ts", "export const greeting: string = 'hello';");
    put(&alpha, "hello.ts", "import { greeting } from './_lib/greeting.js';\nexport default () => greeting;");
    let get = |path: &str| http_request(d.proxy_addr, "GET", &exec_url(&d, "alpha", path), &[], None);

    // Its own file (the control), and an edit of it seen at once.
    let r = get("/hello");
    assert_eq!((r.status, r.body.as_str()), (200, "\"hello\""));
    put(&alpha, "_lib/greeting.ts", "export const greeting: string = 'hello again';");
    let r = get("/hello");
    assert_eq!((r.status, r.body.as_str()), (200, "\"hello again\""), "the edited module, not the old bytecode");

    // Beta's file by every road: up and out of alpha's folder, through the
    // data dir's own path, from the root of alpha's scripts.
    let escapes = [
        format!("../{}/scripts/_lib/secret.ts", beta.id),
        format!("../../{}/scripts/_lib/secret.ts", beta.id),
        format!("{}/projects/{}/scripts/_lib/secret.ts", d.data_dir.display(), beta.id),
        "/_lib/secret.ts".to_string(),
    ];
    for (i, specifier) in escapes.iter().enumerate() {
        let spec = if specifier.starts_with('.') || specifier.starts_with('/') {
            specifier.clone()
        } else {
            format!("./{specifier}")
        };
        put(
            &alpha,
            &format!("steal{i}.js"),
            &format!("import {{ secret }} from '{spec}';\nexport default () => secret;"),
        );
        let r = get(&format!("/steal{i}"));
        assert_eq!(r.status, 500, "{spec}: {}", r.body);
        assert!(!r.body.contains("beta-only"), "{spec}: {}", r.body);
        put(
            &alpha,
            &format!("dynamic{i}.js"),
            &format!(
                "export default async () => {{ try {{ return (await import('{spec}')).secret; }} catch (e) {{ return 'refused: ' + e.message; }} }};"
            ),
        );
        let r = get(&format!("/dynamic{i}"));
        assert_eq!(r.status, 200, "{spec}: {}", r.body);
        assert!(r.body.contains("refused") && !r.body.contains("beta-only"), "{spec}: {}", r.body);
    }
    // Beta itself imports it fine (the file is there to be found).
    put(&beta, "mine.ts", "import { secret } from './_lib/secret.ts';\nexport default () => secret;");
    let r = http_request(d.proxy_addr, "GET", &exec_url(&d, "beta", "/mine"), &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, "\"beta-only\""));
}
