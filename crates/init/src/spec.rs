//! The workload description (`process.json`): schema, loading and validation.
//!
//! Schema (unknown fields are rejected so typos surface early):
//! `{"args": ["cmd", ...], "env": ["K=V", ...], "cwd": "/", "uid": 0, "gid": 0,
//!   "additional_gids": []}` — only `args` is required; `env` defaults to `[]`,
//! `cwd` to `"/"`, `uid`/`gid` to 0 and `additional_gids` to `[]`.

use std::path::Path;

use serde::Deserialize;

use crate::error::InitError;

/// Default location of the process file inside the container.
pub const DEFAULT_PROCESS_FILE: &str = "/.cubby/process.json";

/// The workload init must run, as read from the process file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// argv of the workload; `args[0]` is resolved through PATH if it has no '/'.
    pub args: Vec<String>,
    /// Complete environment of the workload, as `KEY=VALUE` strings.
    #[serde(default)]
    pub env: Vec<String>,
    /// Absolute working directory.
    #[serde(default = "default_cwd")]
    pub cwd: String,
    /// User id the workload runs as.
    #[serde(default)]
    pub uid: u32,
    /// Primary group id the workload runs as.
    #[serde(default)]
    pub gid: u32,
    /// Supplementary group ids.
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Where to write the workload's exit status before exiting.
    #[serde(default)]
    pub exit_file: Option<String>,
}

fn default_cwd() -> String {
    "/".to_owned()
}

impl ProcessSpec {
    /// Read, parse and validate the process file at `path`.
    pub fn load(path: &Path) -> Result<Self, InitError> {
        let raw = std::fs::read(path).map_err(|source| InitError::ReadSpec { path: path.to_owned(), source })?;
        Self::parse(&raw, path)
    }

    /// Parse and validate process-file bytes; `path` is only used in messages.
    pub fn parse(raw: &[u8], path: &Path) -> Result<Self, InitError> {
        let spec: Self =
            serde_json::from_slice(raw).map_err(|source| InitError::ParseSpec { path: path.to_owned(), source })?;
        spec.validate().map_err(|problem| InitError::InvalidSpec { path: path.to_owned(), problem })?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), SpecProblem> {
        match self.args.first() {
            None => return Err(SpecProblem::NoCommand),
            Some(cmd) if cmd.is_empty() => return Err(SpecProblem::EmptyCommand),
            Some(_) => {}
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            return Err(SpecProblem::NulInArgs);
        }
        for entry in &self.env {
            match entry.split_once('=') {
                Some((key, _)) if !key.is_empty() && !entry.contains('\0') => {}
                _ => {
                    return Err(SpecProblem::EnvEntry(entry.clone()));
                }
            }
        }
        if !self.cwd.starts_with('/') {
            return Err(SpecProblem::RelativeCwd(self.cwd.clone()));
        }
        Ok(())
    }

    /// The environment as `(key, value)` pairs, in file order (later wins).
    pub fn env_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().filter_map(|e| e.split_once('='))
    }

    /// The value of `PATH` in the workload environment (last occurrence wins).
    pub fn path_var(&self) -> Option<&str> {
        self.env_pairs().filter(|(k, _)| *k == "PATH").map(|(_, v)| v).last()
    }
}

/// What makes a process file unusable.
#[derive(Debug, thiserror::Error)]
pub enum SpecProblem {
    #[error("\"args\" is empty: no command to run")]
    NoCommand,
    #[error("\"args[0]\" is an empty string")]
    EmptyCommand,
    #[error("\"args\" contains a NUL byte")]
    NulInArgs,
    #[error("\"env\" entry {0:?} is not of the form KEY=VALUE")]
    EnvEntry(String),
    #[error("\"cwd\" {0:?} is not an absolute path")]
    RelativeCwd(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ProcessSpec, InitError> {
        ProcessSpec::parse(json.as_bytes(), Path::new("/p.json"))
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec = parse(r#"{"args": ["sh"]}"#).unwrap();
        assert_eq!(spec.args, ["sh"]);
        assert!(spec.env.is_empty());
        assert_eq!(spec.cwd, "/");
        assert_eq!((spec.uid, spec.gid), (0, 0));
        assert!(spec.additional_gids.is_empty());
    }

    #[test]
    fn full_spec_parses() {
        let spec = parse(
            r#"{"args": ["/bin/app", "-v"], "env": ["A=1", "PATH=/x:/y", "B=x=y"],
                "cwd": "/srv", "uid": 1000, "gid": 100, "additional_gids": [10, 20]}"#,
        )
        .unwrap();
        assert_eq!(spec.args, ["/bin/app", "-v"]);
        assert_eq!(spec.cwd, "/srv");
        assert_eq!((spec.uid, spec.gid), (1000, 100));
        assert_eq!(spec.additional_gids, [10, 20]);
        assert_eq!(spec.path_var(), Some("/x:/y"));
        let pairs: Vec<_> = spec.env_pairs().collect();
        assert_eq!(pairs, [("A", "1"), ("PATH", "/x:/y"), ("B", "x=y")]);
    }

    #[test]
    fn last_path_wins_and_missing_path_is_none() {
        let spec = parse(r#"{"args": ["a"], "env": ["PATH=/1", "PATH=/2"]}"#).unwrap();
        assert_eq!(spec.path_var(), Some("/2"));
        let spec = parse(r#"{"args": ["a"], "env": ["HOME=/"]}"#).unwrap();
        assert_eq!(spec.path_var(), None);
    }

    #[test]
    fn empty_args_rejected_with_clear_message() {
        let err = parse(r#"{"args": []}"#).unwrap_err();
        assert!(matches!(err, InitError::InvalidSpec { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/p.json") && msg.contains("args"), "{msg}");
        assert!(matches!(parse(r#"{"args": [""]}"#), Err(InitError::InvalidSpec { .. })));
    }

    #[test]
    fn missing_args_and_bad_json_rejected() {
        assert!(matches!(parse(r#"{}"#), Err(InitError::ParseSpec { .. })));
        assert!(matches!(parse("not json"), Err(InitError::ParseSpec { .. })));
        assert!(matches!(parse(r#"{"args": ["a"], "uid": -1}"#), Err(InitError::ParseSpec { .. })));
        assert!(matches!(parse(r#"{"args": ["a"], "user": "root"}"#), Err(InitError::ParseSpec { .. })));
    }

    #[test]
    fn bad_env_and_cwd_rejected() {
        for json in [
            r#"{"args": ["a"], "env": ["NOEQUALS"]}"#,
            r#"{"args": ["a"], "env": ["=v"]}"#,
            r#"{"args": ["a"], "cwd": "relative"}"#,
        ] {
            assert!(matches!(parse(json), Err(InitError::InvalidSpec { .. })), "{json}");
        }
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = ProcessSpec::load(Path::new("/nonexistent/cubby/process.json")).unwrap_err();
        assert!(matches!(err, InitError::ReadSpec { .. }));
        assert!(err.to_string().contains("/nonexistent/cubby/process.json"));
    }
}
