//! Imports: files of the project's `scripts/` (relative paths, static and
//! dynamic, TypeScript's `.js` for `.ts`), nothing outside it, and each
//! module's bytecode reused by the next run.

use std::sync::Arc;

use super::*;
use crate::{MapModules, ModuleCode};

fn with_modules(main: &str, files: &[(&str, &str)]) -> Invocation {
    let mut inv = invocation("");
    inv.module = ModuleCode::new("webhooks/stripe.ts", main);
    inv.modules = Arc::new(MapModules::new(files.iter().copied()));
    inv
}

const LIBRARY: &[(&str, &str)] = &[
    (
        "webhooks/_lib/verify.ts",
        "import { prefix } from '../../shared.ts'; export const verify = (s) => `${prefix}:${s}`;",
    ),
    ("shared.ts", "export const prefix = 'checked';"),
    ("lib/index.js", "export default function twice(x) { return 2 * x; }"),
];

#[tokio::test]
async fn a_script_imports_files_of_its_project_statically_and_dynamically() {
    let main = r#"
        import { verify } from "./_lib/verify.js";
        import twice from "/lib";
        export default async () => {
            const again = await import("../shared.ts");
            return { verified: verify("sig"), twice: twice(21), same: again.prefix };
        };"#;
    let outcome = run(with_modules(main, LIBRARY)).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"verified": "checked:sig", "twice": 42, "same": "checked"}));
}

#[tokio::test]
async fn imports_outside_the_project_or_of_packages_are_refused_with_what_to_do() {
    // The control: the same shape of import of a file that is there.
    let control =
        run(with_modules("import { prefix } from '../shared.ts'; export default () => prefix;", LIBRARY)).await;
    assert_eq!(text(ok(&control)), "\"checked\"");
    for (import, expected) in [
        ("../../shared.ts", "leaves the project's scripts/"),
        ("stripe", "bundle packages into one file"),
        ("node:crypto", "built-in module"),
        ("./missing.ts", "no such file in the project's scripts/"),
    ] {
        let main = format!("import x from '{import}'; export default () => x;");
        let outcome = run(with_modules(&main, LIBRARY)).await;
        let error = format!("{:?}", outcome.result);
        assert!(error.contains(expected), "{import}: {error}");
        // A dynamic import is refused the same way, and can be caught.
        let main = format!(
            "export default async () => {{ try {{ await import('{import}'); return 'loaded'; }} catch (e) {{ return String(e.message); }} }};"
        );
        let outcome = run(with_modules(&main, LIBRARY)).await;
        assert!(text(ok(&outcome)).contains(expected), "{import}: {}", text(ok(&outcome)));
    }
}

#[tokio::test]
async fn the_second_run_loads_each_module_from_bytecode_with_the_same_result() {
    let main = ModuleCode::new(
        "webhooks/stripe.ts",
        "import { verify } from './_lib/verify.ts'; export default () => verify('x');",
    );
    let modules = Arc::new(MapModules::new(LIBRARY.iter().copied()));
    let invocation_of = || {
        let mut inv = invocation("");
        inv.module = Arc::clone(&main);
        inv.modules = modules.clone();
        inv
    };
    assert!(main.bytecode().is_none());
    let first = run(invocation_of()).await;
    assert_eq!(text(ok(&first)), "\"checked:x\"");
    assert!(main.bytecode().is_some(), "the first run kept the bytecode");
    let imported = crate::ModuleSource::module(&*modules, "webhooks/_lib/verify.ts").unwrap().unwrap();
    assert!(imported.bytecode().is_some(), "and the imported module's");
    let second = run(invocation_of()).await;
    assert_eq!(text(ok(&second)), "\"checked:x\"");
}
