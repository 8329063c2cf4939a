//! Error type of cubby-init and its mapping to process exit codes.
//!
//! Exit-code conventions (shared with shells and other container inits):
//! 127 = command not found, 126 = found but not executable, 1 = anything else
//! (bad CLI, unreadable or invalid process file, setup failures).

use std::io;
use std::path::PathBuf;

/// Exit code for "command not found".
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code for "command found but cannot be executed".
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code for every other failure of init itself.
pub const EXIT_FAILURE: i32 = 1;

/// Everything that can stop cubby-init before (or while) starting the workload.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Bad command line.
    #[error("{0} (usage: cubby-init [--process-file PATH])")]
    Usage(String),

    /// The process file could not be read.
    #[error("cannot read process file {}: {source}", path.display())]
    ReadSpec {
        /// Path of the process file.
        path: PathBuf,
        /// Underlying I/O error.
        source: io::Error,
    },

    /// The process file is not valid JSON or does not match the schema.
    #[error("invalid process file {}: {source}", path.display())]
    ParseSpec {
        /// Path of the process file.
        path: PathBuf,
        /// Underlying JSON error.
        source: serde_json::Error,
    },

    /// The process file parsed but its content is unusable.
    #[error("invalid process file {}: {problem}", path.display())]
    InvalidSpec {
        /// Path of the process file.
        path: PathBuf,
        /// What is wrong with it.
        problem: crate::spec::SpecProblem,
    },

    /// `args[0]` was not found (in PATH, or at the given path).
    #[error("{cmd}: command not found (PATH={search_path})")]
    NotFound {
        /// The command as given in `args[0]`.
        cmd: String,
        /// The PATH value that was searched.
        search_path: String,
    },

    /// `args[0]` was found but is not an executable file.
    #[error("{}: permission denied (not an executable file)", path.display())]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },

    /// The working directory does not exist or is not a directory.
    #[error("working directory {cwd} does not exist or is not a directory")]
    BadCwd {
        /// The requested working directory.
        cwd: String,
    },

    /// fork/exec (or the identity switch in the child) failed.
    #[error("cannot execute {cmd} ({}){identity}: {source}", path.display())]
    Spawn {
        /// The command as given in `args[0]`.
        cmd: String,
        /// The resolved path that was executed.
        path: PathBuf,
        /// Empty, or " as uid U gid G groups [..]" when init switched identity.
        identity: String,
        /// Error reported by the child before exec, or by exec itself.
        source: io::Error,
    },

    /// Blocking or waiting for signals failed.
    #[error("signal setup failed: {0}")]
    Signals(#[from] nix::Error),
}

impl InitError {
    /// The exit code init must terminate with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. } => EXIT_NOT_FOUND,
            Self::NotExecutable { .. } => EXIT_NOT_EXECUTABLE,
            Self::Spawn { source, .. } => exec_errno_exit_code(source.raw_os_error()),
            Self::Usage(_)
            | Self::ReadSpec { .. }
            | Self::ParseSpec { .. }
            | Self::InvalidSpec { .. }
            | Self::BadCwd { .. }
            | Self::Signals(_) => EXIT_FAILURE,
        }
    }
}

/// Map an exec errno to the shell convention: ENOENT → 127; EACCES, ENOEXEC,
/// EISDIR, ETXTBSY → 126; anything else → 1.
fn exec_errno_exit_code(errno: Option<i32>) -> i32 {
    use nix::errno::Errno;
    match errno.map(Errno::from_raw) {
        Some(Errno::ENOENT | Errno::ENOTDIR) => EXIT_NOT_FOUND,
        Some(Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::ETXTBSY) => EXIT_NOT_EXECUTABLE,
        _ => EXIT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_map_to_shell_codes() {
        assert_eq!(exec_errno_exit_code(Some(libc_enoent())), EXIT_NOT_FOUND);
        assert_eq!(exec_errno_exit_code(Some(nix::errno::Errno::EACCES as i32)), EXIT_NOT_EXECUTABLE);
        assert_eq!(exec_errno_exit_code(Some(nix::errno::Errno::EPERM as i32)), EXIT_FAILURE);
        assert_eq!(exec_errno_exit_code(None), EXIT_FAILURE);
    }

    fn libc_enoent() -> i32 {
        nix::errno::Errno::ENOENT as i32
    }
}
