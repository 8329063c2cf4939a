//! Runtime configuration of cubby-demo, read from the environment.
//!
//! `PORT` (default 8080), `GREETING` (default empty) and `CUBBY_DEMO_DB`
//! (default `/data/app.db`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::DemoError;

/// Port used when `PORT` is unset or empty.
pub const DEFAULT_PORT: u16 = 8080;
/// Database used when `CUBBY_DEMO_DB` is unset or empty.
pub const DEFAULT_DB: &str = "/data/app.db";

/// Everything the demo reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// TCP port to listen on (all interfaces).
    pub port: u16,
    /// Value of `GREETING`, echoed by `GET /`.
    pub greeting: String,
    /// SQLite file holding the visit counter.
    pub db_path: PathBuf,
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, DemoError> {
        Self::from_lookup(|key| std::env::var_os(key))
    }

    /// Read the configuration through `lookup` (testable without touching env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, DemoError> {
        let port = match lookup("PORT").filter(|v| !v.is_empty()) {
            None => DEFAULT_PORT,
            Some(raw) => {
                let text = raw.to_string_lossy();
                match text.trim().parse::<u16>() {
                    Ok(p) if p != 0 => p,
                    _ => return Err(DemoError::InvalidPort(text.into_owned())),
                }
            }
        };
        let greeting = lookup("GREETING").map(|v| v.to_string_lossy().into_owned()).unwrap_or_default();
        let db_path =
            lookup("CUBBY_DEMO_DB").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_DB), PathBuf::from);
        Ok(Self { port, greeting, db_path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, DemoError> {
        Config::from_lookup(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| OsString::from(v)))
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.greeting, "");
        assert_eq!(c.db_path, PathBuf::from("/data/app.db"));
    }

    #[test]
    fn explicit_values() {
        let c = cfg(&[("PORT", "9000"), ("GREETING", "hi"), ("CUBBY_DEMO_DB", "/t/x.db")]).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.greeting, "hi");
        assert_eq!(c.db_path, PathBuf::from("/t/x.db"));
    }

    #[test]
    fn bad_ports_rejected() {
        for bad in ["0", "70000", "http", "-1"] {
            assert!(matches!(cfg(&[("PORT", bad)]), Err(DemoError::InvalidPort(_))), "{bad}");
        }
    }
}
