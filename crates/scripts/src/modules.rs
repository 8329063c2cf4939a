//! The modules a run is made of: the script's own file and the files of the
//! project's `scripts/` tree it imports (ES modules, relative paths), with
//! their QuickJS bytecode kept once made.
//!
//! [`ModuleSource`] is the seam: the daemon answers from the project's
//! folder ([`NoModules`] refuses every import, [`MapModules`] is the fake).
//! [`candidates`] turns an import specifier into the files it may name,
//! the way bundlers and TypeScript do: `./verify` tries `verify.ts`,
//! `verify.js`, `verify/index.ts`, `verify/index.js`; `./verify.js` also
//! tries `verify.ts` (TypeScript's own convention for ESM). A specifier
//! that leaves the tree, or names a package (`stripe`, `node:crypto`), is
//! refused with what to do instead.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// One module's JavaScript (TypeScript already stripped), and its bytecode
/// once a run has compiled it.
pub struct ModuleCode {
    name: String,
    js: String,
    bytecode: OnceLock<Vec<u8>>,
}

impl ModuleCode {
    /// The module `name` (its path in `scripts/`, shown in stack traces)
    /// with JavaScript `js`.
    pub fn new(name: impl Into<String>, js: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { name: name.into(), js: js.into(), bytecode: OnceLock::new() })
    }

    /// Its path in `scripts/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its JavaScript.
    pub fn js(&self) -> &str {
        &self.js
    }

    /// Its bytecode, if a run compiled it already.
    pub(crate) fn bytecode(&self) -> Option<&[u8]> {
        self.bytecode.get().map(Vec::as_slice)
    }

    /// Keeps the bytecode a run made (the first one made wins; all are the
    /// same).
    pub(crate) fn keep_bytecode(&self, code: Vec<u8>) {
        let _ = self.bytecode.set(code);
    }
}

impl std::fmt::Debug for ModuleCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCode")
            .field("name", &self.name)
            .field("js_len", &self.js.len())
            .field("compiled", &self.bytecode.get().is_some())
            .finish()
    }
}

/// Where a run's imports come from: one project's `scripts/` tree.
pub trait ModuleSource: Send + Sync {
    /// The module at `path` (normalized, relative to `scripts/`), or `None`
    /// when there is no such file. `Err` says why an existing file cannot
    /// be used (it does not compile, it cannot be read).
    fn module(&self, path: &str) -> Result<Option<Arc<ModuleCode>>, String>;
}

/// A source with no files: every import is refused.
#[derive(Debug, Default)]
pub struct NoModules;

impl ModuleSource for NoModules {
    fn module(&self, _path: &str) -> Result<Option<Arc<ModuleCode>>, String> {
        Ok(None)
    }
}

/// A fixed set of modules, for tests.
#[derive(Debug, Default)]
pub struct MapModules(BTreeMap<String, Arc<ModuleCode>>);

impl MapModules {
    /// A source holding `files` (path, JavaScript).
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(files.into_iter().map(|(path, js)| (path.to_owned(), ModuleCode::new(path, js))).collect())
    }
}

impl ModuleSource for MapModules {
    fn module(&self, path: &str) -> Result<Option<Arc<ModuleCode>>, String> {
        Ok(self.0.get(path).cloned())
    }
}

/// The files of `scripts/` that `specifier`, imported by the module at
/// `base`, may name, in the order they are tried.
pub fn candidates(base: &str, specifier: &str) -> Result<Vec<String>, String> {
    let relative = specifier.starts_with("./") || specifier.starts_with("../") || specifier.starts_with('/');
    if !relative {
        let what = if specifier.contains(':') { "a URL or a runtime's built-in module" } else { "a package" };
        return Err(format!(
            "`{specifier}` is {what}: a script imports only files of its project's scripts/ (`./file.ts`); \
             bundle packages into one file first (esbuild --bundle --format=esm, see the README)"
        ));
    }
    if specifier.contains(['?', '#', '\\']) {
        return Err(format!("`{specifier}` has a query, a fragment or a backslash: name a file"));
    }
    let mut parts: Vec<&str> = if specifier.starts_with('/') {
        Vec::new()
    } else {
        let mut dir: Vec<&str> = base.split('/').collect();
        dir.pop();
        dir
    };
    for segment in specifier.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{specifier}` (imported by {base}) leaves the project's scripts/"));
                }
            }
            s => parts.push(s),
        }
    }
    let path = parts.join("/");
    if path.is_empty() {
        return Err(format!("`{specifier}` names no file"));
    }
    let mut out = Vec::new();
    if path.ends_with(".ts") || path.ends_with(".js") || path.ends_with(".mjs") {
        out.push(path.clone());
        if let Some(stem) = path.strip_suffix(".js").or_else(|| path.strip_suffix(".mjs")) {
            out.push(format!("{stem}.ts"));
        }
    } else {
        for suffix in [".ts", ".js", "/index.ts", "/index.js"] {
            out.push(format!("{path}{suffix}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_resolve_like_bundlers_and_never_leave_the_tree() {
        assert_eq!(candidates("webhooks/stripe.ts", "./_lib/verify.ts").unwrap(), ["webhooks/_lib/verify.ts"]);
        assert_eq!(candidates("webhooks/stripe.ts", "../shared.js").unwrap(), ["shared.js", "shared.ts"]);
        assert_eq!(candidates("a.ts", "./lib").unwrap(), ["lib.ts", "lib.js", "lib/index.ts", "lib/index.js"]);
        assert_eq!(candidates("deep/er/a.ts", "/lib/x.ts").unwrap(), ["lib/x.ts"]);
        for (base, bad) in [
            ("a.ts", "../x.ts"),
            ("w/a.ts", "../../x.ts"),
            ("a.ts", "stripe"),
            ("a.ts", "node:crypto"),
            ("a.ts", "https://esm.sh/x"),
            ("a.ts", "./x.ts?v=1"),
            ("a.ts", "./"),
        ] {
            assert!(candidates(base, bad).is_err(), "{bad}");
        }
    }
}
