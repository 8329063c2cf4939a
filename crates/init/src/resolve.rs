//! Resolution of `args[0]` to an executable path, execvp-style.
//!
//! A command containing '/' is used as is. Otherwise each PATH entry is tried
//! in order; the first regular file with an execute bit wins. A matching file
//! without execute permission is remembered and reported as "not executable"
//! only if nothing better is found (like execvp's EACCES). Empty PATH entries
//! are skipped; relative entries are taken relative to the workload's cwd.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::InitError;

/// PATH used when the workload environment has none (or an empty one).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolve `cmd` using `path_var` (the workload's PATH, if any) and `cwd`.
pub fn resolve_command(cmd: &str, path_var: Option<&str>, cwd: &Path) -> Result<PathBuf, InitError> {
    if cmd.contains('/') {
        return Ok(PathBuf::from(cmd));
    }
    let search_path = match path_var {
        Some(p) if !p.is_empty() => p,
        _ => DEFAULT_PATH,
    };
    let mut not_executable = None;
    for dir in search_path.split(':').filter(|d| !d.is_empty()) {
        let candidate = cwd.join(dir).join(cmd);
        match classify(&candidate) {
            Candidate::Executable => return Ok(candidate),
            Candidate::NotExecutable => {
                not_executable.get_or_insert(candidate);
            }
            Candidate::Absent => {}
        }
    }
    match not_executable {
        Some(path) => Err(InitError::NotExecutable { path }),
        None => Err(InitError::NotFound { cmd: cmd.to_owned(), search_path: search_path.to_owned() }),
    }
}

enum Candidate {
    Executable,
    NotExecutable,
    Absent,
}

fn classify(path: &Path) -> Candidate {
    // `metadata` follows symlinks, as exec does (busybox applets are symlinks).
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            if meta.permissions().mode() & 0o111 != 0 {
                Candidate::Executable
            } else {
                Candidate::NotExecutable
            }
        }
        _ => Candidate::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "cubby-init-resolve-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, rel: &str, mode: u32) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn slash_commands_are_not_searched() {
        let got = resolve_command("./x", Some("/nope"), Path::new("/")).unwrap();
        assert_eq!(got, PathBuf::from("./x"));
        let got = resolve_command("/bin/none", None, Path::new("/")).unwrap();
        assert_eq!(got, PathBuf::from("/bin/none"));
    }

    #[test]
    fn first_executable_in_path_order_wins() {
        let s = Scratch::new();
        s.file("a/tool", 0o755);
        let b = s.file("b/tool", 0o755);
        let path = format!("{0}/missing::{0}/b:{0}/a", s.0.display());
        assert_eq!(resolve_command("tool", Some(&path), Path::new("/")).unwrap(), b);
    }

    #[test]
    fn non_executable_is_skipped_but_reported_if_nothing_else() {
        let s = Scratch::new();
        s.file("a/tool", 0o644);
        let b = s.file("b/tool", 0o700);
        let path = format!("{0}/a:{0}/b", s.0.display());
        assert_eq!(resolve_command("tool", Some(&path), Path::new("/")).unwrap(), b);

        let only_a = format!("{}/a", s.0.display());
        let err = resolve_command("tool", Some(&only_a), Path::new("/")).unwrap_err();
        assert!(matches!(err, InitError::NotExecutable { .. }), "{err}");
        assert_eq!(err.exit_code(), 126);
    }

    #[test]
    fn directories_are_not_commands() {
        let s = Scratch::new();
        fs::create_dir_all(s.0.join("a/tool")).unwrap();
        let path = format!("{}/a", s.0.display());
        let err = resolve_command("tool", Some(&path), Path::new("/")).unwrap_err();
        assert!(matches!(err, InitError::NotFound { .. }));
    }

    #[test]
    fn relative_entries_are_relative_to_cwd() {
        let s = Scratch::new();
        let t = s.file("rel/bin/tool", 0o755);
        let got = resolve_command("tool", Some("rel/bin"), &s.0).unwrap();
        assert_eq!(got, t);
    }

    #[test]
    fn missing_or_empty_path_falls_back_to_default() {
        // `sh` lives in /bin or /usr/bin on every supported host.
        for path_var in [None, Some("")] {
            let got = resolve_command("sh", path_var, Path::new("/")).unwrap();
            assert!(got.ends_with("sh"), "{}", got.display());
        }
    }

    #[test]
    fn not_found_names_command_and_path() {
        let err = resolve_command("no-such-cmd-xyz", Some("/nonexistent"), Path::new("/")).unwrap_err();
        assert_eq!(err.exit_code(), 127);
        let msg = err.to_string();
        assert!(msg.contains("no-such-cmd-xyz") && msg.contains("/nonexistent"), "{msg}");
    }
}
