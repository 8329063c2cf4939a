//! Hand-rolled argv parsing for `cubby-init [--process-file PATH]`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::InitError;
use crate::spec::DEFAULT_PROCESS_FILE;

/// Help text printed by `--help`.
pub const USAGE: &str = "usage: cubby-init [--process-file PATH]\n\
    Runs the workload described by PATH (default /.cubby/process.json) as a child,\n\
    forwards signals to it, reaps zombies and exits with its status.";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Location of the process file.
    pub process_file: PathBuf,
}

impl Cli {
    /// Parse the arguments after argv[0]. `Ok(None)` means help was requested.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Self>, InitError> {
        let mut process_file = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(text) = arg.to_str() else {
                return Err(InitError::Usage(format!("unexpected argument {arg:?}")));
            };
            let value = match text {
                "-h" | "--help" => return Ok(None),
                "--process-file" => {
                    args.next().ok_or_else(|| InitError::Usage("--process-file needs a value".to_owned()))?
                }
                _ => match text.strip_prefix("--process-file=") {
                    Some(v) => OsString::from(v),
                    None => {
                        return Err(InitError::Usage(format!("unexpected argument {text:?}")));
                    }
                },
            };
            if value.is_empty() {
                return Err(InitError::Usage("--process-file needs a value".to_owned()));
            }
            process_file = Some(PathBuf::from(value));
        }
        Ok(Some(Self { process_file: process_file.unwrap_or_else(|| PathBuf::from(DEFAULT_PROCESS_FILE)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Cli>, InitError> {
        Cli::parse(args.iter().map(OsString::from))
    }

    fn file(args: &[&str]) -> PathBuf {
        parse(args).unwrap().unwrap().process_file
    }

    #[test]
    fn default_and_explicit_process_file() {
        assert_eq!(file(&[]), PathBuf::from("/.cubby/process.json"));
        assert_eq!(file(&["--process-file", "/x.json"]), PathBuf::from("/x.json"));
        assert_eq!(file(&["--process-file=/y.json"]), PathBuf::from("/y.json"));
    }

    #[test]
    fn help_and_errors() {
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(matches!(parse(&["--process-file"]), Err(InitError::Usage(_))));
        assert!(matches!(parse(&["--process-file="]), Err(InitError::Usage(_))));
        assert!(matches!(parse(&["sh"]), Err(InitError::Usage(_))));
        assert_eq!(parse(&["bogus"]).unwrap_err().exit_code(), 1);
    }
}
