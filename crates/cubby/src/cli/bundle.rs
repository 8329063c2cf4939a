//! `cubby scripts push --bundle`: each endpoint of a local folder bundled
//! with its imports and npm packages into one ES module by esbuild, so
//! that `import Stripe from "stripe"` works in a script.
//!
//! esbuild is the bundler most Workers/Deno code is already built with;
//! it is taken from the folder's `node_modules/.bin` (or a parent's), else
//! from `PATH`, and never downloaded. Packages resolve with the `worker`
//! and `browser` export conditions (the builds written for fetch and Web
//! Crypto, not Node's). The entry's header comments (`// @token ...`) are
//! put back on top of the bundle, since esbuild drops comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// esbuild's flags for a script bundle.
const ESBUILD_FLAGS: &[&str] = &[
    "--bundle",
    "--format=esm",
    "--platform=neutral",
    "--target=es2023",
    "--conditions=worker,browser",
    "--main-fields=module,main",
    "--legal-comments=none",
    "--log-level=warning",
];

/// The esbuild to run: `node_modules/.bin/esbuild` in `dir` or a parent,
/// else the one on `PATH`.
fn esbuild(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::path::absolute(dir)?;
    for parent in dir.ancestors() {
        let candidate = parent.join("node_modules/.bin/esbuild");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("esbuild"))
        .find(|p| p.is_file());
    on_path.context("--bundle needs esbuild: `npm install --save-dev esbuild` in the folder (or put it on PATH)")
}

/// The `//` and blank lines at the top of `source` (the magic comments'
/// header).
fn header(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        } else {
            break;
        }
    }
    out
}

/// Bundles every endpoint (non-private file) of `files` (the folder's, by
/// relative path) found in `dir`; answers the files to push: each
/// endpoint as `<path>.js` holding its bundle.
pub fn bundle(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let esbuild = esbuild(dir)?;
    let scratch = tempfile::Builder::new().prefix("cubby-bundle-").tempdir().context("making a scratch directory")?;
    let out_dir = scratch.path();
    {
        let mut out = BTreeMap::new();
        for (path, source) in files.iter().filter(|(p, _)| !cubby_model::is_private_script(p)) {
            let name = match path.strip_suffix(".ts") {
                Some(stem) => format!("{stem}.js"),
                None => path.clone(),
            };
            let target = out_dir.join(&name);
            let status = Command::new(&esbuild)
                .args(ESBUILD_FLAGS)
                .arg(format!("--outfile={}", target.display()))
                .arg(path)
                .current_dir(dir)
                .status()
                .with_context(|| format!("running {}", esbuild.display()))?;
            if !status.success() {
                bail!("esbuild could not bundle {path} (its message is above)");
            }
            let mut bundled = header(&String::from_utf8_lossy(source)).into_bytes();
            bundled.extend(std::fs::read(&target).with_context(|| format!("reading {}", target.display()))?);
            if out.insert(name.clone(), bundled).is_some() {
                bail!("{name} would come from two files: rename one of them");
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_leading_comment_lines_only() {
        let source = "// @token secret\n\n// webhook\nimport x from 'y';\n// @timeout 5s\n";
        assert_eq!(header(source), "// @token secret\n\n// webhook\n");
        let private = cubby_model::is_private_script;
        assert!(private("_lib/x.ts") && private("a/_b.ts") && !private("a/b_c.ts"));
    }
}
