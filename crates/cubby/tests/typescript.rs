//! End to end, as root: the TypeScript client in `clients/typescript`
//! runs the README's walkthrough against a fresh daemon (node's test
//! runner), after checking that its generated types match
//! `openapi/cubby.json` and that its typed example compiles. Node and the
//! client's packages come from `scripts/setup.sh`; missing, they fail the
//! test under CI and skip it loudly elsewhere.

mod support;

use std::path::Path;
use std::process::Command;

use support::daemon;

#[test]
fn the_typescript_client_walks_through_the_readme() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/typescript");
    let ready = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success())
        && dir.join("node_modules/openapi-fetch").is_dir();
    if !ready {
        let why = "node or the client's packages are missing: run `scripts/setup.sh`";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"), "{why} (CI=true forbids skipping)");
        eprintln!("\n*** SKIPPED the_typescript_client_walks_through_the_readme: {why} ***\n");
        return;
    }
    let Some(d) = daemon("the_typescript_client_walks_through_the_readme") else { return };
    let out = Command::new("npm")
        .arg("test")
        .current_dir(&dir)
        .env("CUBBY_API", &d.api)
        .env("CUBBY_TOKEN", &d.token)
        .env("CUBBY_PROXY", d.proxy_addr.to_string())
        .env("CI", "true")
        .env("NO_COLOR", "1")
        .output()
        .expect("run npm test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the TypeScript client's tests failed:\n{text}");
    assert!(text.contains("# pass 1") && text.contains("# fail 0"), "the walkthrough ran and passed:\n{text}");
}
