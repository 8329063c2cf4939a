//! Starting the workload: builds the `Command` from a [`ProcessSpec`] and
//! prepares the child (signal mask, identity) between fork and exec.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::SigSet;
use nix::unistd::{Gid, Pid, Uid, getegid, geteuid, setgid, setgroups, setuid};

use crate::error::InitError;
use crate::resolve::resolve_command;
use crate::spec::ProcessSpec;

/// Identity to switch to in the child before exec.
#[derive(Debug, Clone)]
struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

/// Resolve and start the workload described by `spec`; returns its pid.
///
/// The child inherits init's stdin/stdout/stderr, gets exactly `spec.env`,
/// runs in `spec.cwd`, keeps `args[0]` as its argv[0] and starts with an
/// empty signal mask (init blocks the forwarded signals before calling this).
pub fn spawn_workload(spec: &ProcessSpec) -> Result<Pid, InitError> {
    let cmd = &spec.args[0];
    let cwd = Path::new(&spec.cwd);
    if !cwd.is_dir() {
        return Err(InitError::BadCwd { cwd: spec.cwd.clone() });
    }
    let program: PathBuf = resolve_command(cmd, spec.path_var(), cwd)?;

    let mut command = Command::new(&program);
    command.arg0(cmd).args(&spec.args[1..]).env_clear().envs(spec.env_pairs()).current_dir(cwd);

    let identity = wanted_identity(spec);
    let identity_note = identity
        .as_ref()
        .map_or_else(String::new, |id| format!(" as uid {} gid {} groups {:?}", id.uid, id.gid, spec.additional_gids));
    // SAFETY: the closure runs in the forked child before exec. cubby-init is
    // single-threaded, and the closure only performs async-signal-safe work:
    // `pthread_sigmask` (via `thread_set_mask`) and the raw `setgroups`,
    // `setgid`, `setuid` syscall wrappers. It does not allocate (the group
    // list was built before fork; nix errors convert to `io::Error` without
    // allocating) and touches no locks.
    unsafe {
        command.pre_exec(move || {
            // Required: std's Command does NOT reset the signal mask (checked
            // with Rust 1.95), and init has blocked the forwarded signals and
            // SIGCHLD, which the workload would otherwise inherit.
            SigSet::empty().thread_set_mask()?;
            if let Some(id) = &identity {
                // Order matters: groups and gid need privilege, so uid goes last.
                setgroups(&id.groups)?;
                setgid(id.gid)?;
                setuid(id.uid)?;
            }
            Ok(())
        });
    }

    let child = command.spawn().map_err(|source| InitError::Spawn {
        cmd: cmd.clone(),
        path: program.clone(),
        identity: identity_note,
        source,
    })?;
    let raw = i32::try_from(child.id()).expect("pid_t always fits in i32");
    // Dropping `Child` neither kills nor waits; init reaps it via waitpid(-1).
    drop(child);
    Ok(Pid::from_raw(raw))
}

/// The identity to switch to, or `None` to keep init's own identity.
///
/// Switching is skipped when the spec asks for init's effective uid/gid and
/// no supplementary groups, so init also works unprivileged (e.g. in tests)
/// and keeps any groups the runtime already configured.
fn wanted_identity(spec: &ProcessSpec) -> Option<Identity> {
    let uid = Uid::from_raw(spec.uid);
    let gid = Gid::from_raw(spec.gid);
    if uid == geteuid() && gid == getegid() && spec.additional_gids.is_empty() {
        return None;
    }
    Some(Identity { uid, gid, groups: spec.additional_gids.iter().copied().map(Gid::from_raw).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uid: u32, gid: u32, groups: &[u32]) -> ProcessSpec {
        ProcessSpec {
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            uid,
            gid,
            additional_gids: groups.to_vec(),
            exit_file: None,
        }
    }

    #[test]
    fn same_identity_without_groups_is_not_switched() {
        let (u, g) = (geteuid().as_raw(), getegid().as_raw());
        assert!(wanted_identity(&spec(u, g, &[])).is_none());
        assert!(wanted_identity(&spec(u, g, &[5])).is_some());
        assert!(wanted_identity(&spec(u.wrapping_add(1), g, &[])).is_some());
    }

    #[test]
    fn bad_cwd_is_reported_before_spawning() {
        let mut s = spec(0, 0, &[]);
        s.cwd = "/nonexistent/cubby-cwd".into();
        let err = spawn_workload(&s).unwrap_err();
        assert!(matches!(err, InitError::BadCwd { .. }), "{err}");
        assert_eq!(err.exit_code(), 1);
    }
}
