//! The script service alone: an in-memory store and a folder, no host
//! subsystem and no `Platform`.

use std::sync::Arc;

use bytes::Bytes;
use cubby_model::Project;
use cubby_scripts::{FakeHost, ScriptHost};
use cubby_store::{ScriptStore, SqliteStore, Store};

use super::ScriptService;
use super::run::{ScriptAdmission, ScriptHead, ScriptRefusal};
use crate::config::{Defaults, Urls};
use crate::sealed::SecretKey;
use crate::{Caller, Error};

struct Fixture {
    service: Arc<ScriptService>,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let service = Arc::new(ScriptService::new(
        Arc::clone(&store) as Arc<dyn Store>,
        dir.path().to_path_buf(),
        Urls { domain: "localhost".into(), proxy_port: 8080, https: false },
        Defaults::default(),
        SecretKey::from_bytes(&[7; 32]),
        Arc::new(crate::events::Events::new(Arc::clone(&store) as Arc<dyn Store>)),
    ));
    Fixture { service, store, _dir: dir }
}

fn project(f: &Fixture, name: &str) -> Project {
    crate::testing::project(&*f.store, name)
}

fn head(path: &str, token: Option<&str>) -> ScriptHead {
    ScriptHead {
        method: "POST".into(),
        url: format!("http://acme.exec.localhost:8080{path}"),
        headers: Vec::new(),
        token: token.map(str::to_string),
    }
}

#[tokio::test]
async fn a_project_token_reaches_only_its_own_scripts_and_secrets() {
    let f = fixture();
    let (a, b) = (project(&f, "acme"), project(&f, "other"));
    let (as_a, as_b) = (Caller::project(a.id.clone()), Caller::project(b.id.clone()));
    let file = f.service.put_script(&as_a, &a.id, "hook.js", b"export default () => 'ok'").unwrap();
    assert_eq!(file.url, "http://acme.exec.localhost:8080/hook");
    f.service.set_secrets(&as_a, &a.id, &[("KEY".to_string(), "v".to_string())].into()).unwrap();
    // Control: A sees its own.
    assert_eq!(f.service.list(&as_a, &a.id).unwrap().len(), 1);
    assert_eq!(f.service.secret_names(&as_a, &a.id).unwrap().names, ["KEY"]);
    // B sees nothing of A's, as if A did not exist.
    for result in [
        f.service.list(&as_b, &a.id).map(|_| ()),
        f.service.script(&as_b, &a.id, "hook.js").map(|_| ()),
        f.service.delete_script(&as_b, &a.id, "hook.js"),
        f.service.secret_names(&as_b, &a.id).map(|_| ()),
        f.service.put_script(&as_b, &a.id, "x.js", b"export default () => 1").map(|_| ()),
    ] {
        assert!(matches!(result, Err(Error::NotFound { kind: "project", .. })), "{result:?}");
    }
    assert_eq!(f.service.list(&as_a, &a.id).unwrap().len(), 1, "B changed nothing");
    // Secrets are sealed at rest.
    let stored = f.store.secrets(&a.id).unwrap();
    assert_ne!(stored["KEY"], "v");
}

#[tokio::test]
async fn admission_checks_route_and_token_before_anything_runs() {
    let f = fixture();
    let a = project(&f, "acme");
    let admin = Caller::admin();
    f.service
        .put_script(&admin, &a.id, "paid.js", b"// @token s3cret\nexport default (req) => ({ got: req.method })")
        .unwrap();
    let refusal = |admission| match admission {
        ScriptAdmission::Refused { refusal, .. } => Some(refusal),
        _ => None,
    };
    assert_eq!(
        refusal(f.service.admit("nobody", head("/paid", None)).await),
        Some(ScriptRefusal::ProjectNotFound { project: "nobody".into() })
    );
    assert_eq!(
        refusal(f.service.admit("acme", head("/nothing", None)).await),
        Some(ScriptRefusal::ScriptNotFound { path: "/nothing".into() })
    );
    assert_eq!(
        refusal(f.service.admit("acme", head("/paid", Some("wrong"))).await),
        Some(ScriptRefusal::TokenRequired)
    );
    // Control: the right token runs it, and the run is logged with the
    // status the caller answered.
    let ScriptAdmission::Run(admitted) = f.service.admit("acme", head("/paid", Some("s3cret"))).await else {
        panic!("the right token is admitted");
    };
    let host: Arc<dyn ScriptHost> = Arc::new(FakeHost::new());
    let run = admitted.run(Bytes::new(), host).await;
    let answer = run.finish(200).expect("the script answers");
    assert_eq!(answer.status, 200);
    assert_eq!(String::from_utf8_lossy(&answer.body), r#"{"got":"POST"}"#);
    let logs = f.service.script_logs(&admin, &a.id, 10).unwrap();
    assert_eq!((logs.len(), logs[0].status, logs[0].script.as_str()), (1, 200, "paid.js"));
}

#[test]
fn a_script_or_module_behind_a_link_is_never_read() {
    let f = fixture();
    let (a, b) = (project(&f, "acme"), project(&f, "other"));
    let (as_a, as_b) = (Caller::project(a.id.clone()), Caller::project(b.id.clone()));
    f.service.put_script(&as_a, &a.id, "own.js", b"export default () => 'a'").unwrap();
    f.service.put_script(&as_b, &b.id, "_lib/secret.js", b"export const secret = 'b';").unwrap();
    let mine = f.service.scripts_dir(&a.id);
    // Control: the project's own file is compiled.
    assert!(f.service.compiled("own.js", &mine.join("own.js")).is_ok());
    // Links planted on the host (a file, and a folder on the way) to the
    // other project's file: refused, as files and as imports.
    let theirs = f.service.scripts_dir(&b.id);
    std::os::unix::fs::symlink(theirs.join("_lib/secret.js"), mine.join("linked.js")).unwrap();
    std::os::unix::fs::symlink(theirs.join("_lib"), mine.join("_lib")).unwrap();
    for file in ["linked.js", "_lib/secret.js"] {
        assert!(f.service.compiled(file, &mine.join(file)).is_err(), "{file}");
        let modules = super::ProjectModules { service: Arc::clone(&f.service), dir: mine.clone() };
        let loaded = cubby_scripts::ModuleSource::module(&modules, file);
        assert!(!matches!(loaded, Ok(Some(_))), "{file}: {loaded:?}");
    }
}
