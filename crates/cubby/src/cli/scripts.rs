//! `cubby scripts ...`: a project's exec scripts and secrets. `push DIR`
//! mirrors a local folder: new and changed `.js`/`.ts` files are uploaded
//! (compared by SHA-256), files that are gone locally are removed; with
//! `--bundle`, each endpoint's bundle instead (see `bundle`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use sha2::{Digest, Sha256};

use super::Connection;
use super::output::{print, print_one};

#[derive(Debug, Subcommand)]
pub enum ScriptsCommand {
    /// Mirror a local folder into the project's scripts/.
    Push {
        /// The folder (its files keep their relative paths).
        dir: PathBuf,
        /// The project id.
        #[arg(long)]
        project: String,
        /// Keep remote files that are not in the folder.
        #[arg(long)]
        no_delete: bool,
        /// Bundle each endpoint with its imports and npm packages into one
        /// file with esbuild (the folder's node_modules/.bin/esbuild), and
        /// push the bundles (`x.ts` goes up as `x.js`; `_private` files are
        /// inlined, not pushed).
        #[arg(long)]
        bundle: bool,
        #[command(flatten)]
        c: Connection,
    },
    /// List a project's scripts and their URLs.
    List {
        project: String,
        #[command(flatten)]
        c: Connection,
    },
    /// Print one script.
    Get {
        project: String,
        path: String,
        #[command(flatten)]
        c: Connection,
    },
    /// Remove one script.
    Delete {
        project: String,
        path: String,
        #[command(flatten)]
        c: Connection,
    },
    /// The latest invocations and what they printed.
    Logs {
        project: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        c: Connection,
    },
    /// Replace the project's secrets: `cubby scripts secrets <project> STRIPE_SECRET=whsec_...`.
    Secrets {
        project: String,
        /// NAME=VALUE pairs (the whole set); none to list the names.
        pairs: Vec<String>,
        #[command(flatten)]
        c: Connection,
    },
}

fn local_files(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if name.ends_with(".js") || name.ends_with(".ts") {
                let rel = path.strip_prefix(root)?.to_str().context("a non-UTF-8 file name")?.to_string();
                out.insert(rel, std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

pub fn run(cmd: ScriptsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ScriptsCommand::Push { dir, project, no_delete, bundle, c } => {
            if !dir.is_dir() {
                bail!("{} is not a folder", dir.display());
            }
            let client = c.client()?;
            let local = local_files(&dir)?;
            let local = if bundle { super::bundle::bundle(&dir, &local)? } else { local };
            let remote: BTreeMap<String, String> =
                client.scripts(&project)?.into_iter().map(|f| (f.path, f.sha256)).collect();
            let (mut uploaded, mut removed, mut same) = (Vec::new(), Vec::new(), 0);
            for (path, content) in &local {
                if remote.get(path).is_some_and(|sha| *sha == hex::encode(Sha256::digest(content))) {
                    same += 1;
                    continue;
                }
                let file = client.put_script(&project, path, content).with_context(|| format!("uploading {path}"))?;
                uploaded.push(file);
            }
            if !no_delete {
                for path in remote.keys().filter(|p| !local.contains_key(*p)) {
                    client.delete_script(&project, path).with_context(|| format!("removing {path}"))?;
                    removed.push(path.clone());
                }
            }
            if c.json {
                print_one(true, &serde_json::json!({"uploaded": uploaded, "removed": removed, "unchanged": same}));
            } else {
                for f in &uploaded {
                    println!("uploaded {:<40} {}", f.path, f.url);
                }
                for p in &removed {
                    println!("removed  {p}");
                }
                println!("{} uploaded, {} removed, {same} unchanged", uploaded.len(), removed.len());
            }
        }
        ScriptsCommand::List { project, c } => {
            let files = c.client()?.scripts(&project)?;
            print(c.json, &files, &["PATH", "BYTES", "URL"], |f| {
                vec![f.path.clone(), f.size.to_string(), f.url.clone()]
            });
        }
        ScriptsCommand::Get { project, path, c } => {
            let content = c.client()?.script(&project, &path)?;
            print!("{}", String::from_utf8_lossy(&content));
        }
        ScriptsCommand::Delete { project, path, c } => {
            c.client()?.delete_script(&project, &path)?;
            if !c.json {
                println!("removed {path}");
            }
        }
        ScriptsCommand::Logs { project, limit, c } => {
            let logs = c.client()?.script_logs(&project, limit)?;
            if c.json {
                print_one(true, &logs);
            } else {
                for l in logs.iter().rev() {
                    let when = l.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                    let error = l.error.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default();
                    println!(
                        "{when} {} {} → {} in {} ms ({}){error}",
                        l.method, l.path, l.status, l.duration_ms, l.script
                    );
                    for line in &l.logs {
                        println!("    [{}] {}", line.level, line.message);
                    }
                }
            }
        }
        ScriptsCommand::Secrets { project, pairs, c } => {
            let client = c.client()?;
            let names = if pairs.is_empty() {
                client.secrets(&project)?
            } else {
                let mut secrets = BTreeMap::new();
                for pair in pairs {
                    let (k, v) = pair.split_once('=').with_context(|| format!("`{pair}` is not NAME=VALUE"))?;
                    secrets.insert(k.to_string(), v.to_string());
                }
                client.put_secrets(&project, &secrets)?
            };
            if c.json {
                print_one(true, &names);
            } else {
                for n in names.names {
                    println!("{n}");
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
