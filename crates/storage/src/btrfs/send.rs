//! `btrfs send` and `btrfs receive` for [`super::LibBtrfs`]: libbtrfsutil
//! has no send or receive, so btrfs-progs' command does the work (its
//! stream format is the kernel's; writing our own encoder would gain
//! nothing).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::StorageError;

const BTRFS: &str = "btrfs";

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `btrfs send`, copying its stdout to `out`; stderr is kept for the
/// error.
pub(super) fn send(subvolume: &Path, parent: Option<&Path>, out: &mut dyn std::io::Write) -> Result<u64, StorageError> {
    let _span =
        tracing::debug_span!("btrfs.send", path = %subvolume.display(), incremental = parent.is_some()).entered();
    let mut cmd = Command::new(BTRFS);
    cmd.args(["send", "-q"]);
    if let Some(p) = parent {
        cmd.arg("-p").arg(p);
    }
    cmd.arg(subvolume).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let command = command_line(&cmd);
    let mut child = cmd.spawn().map_err(|source| StorageError::Spawn { command: command.clone(), source })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // Read stderr beside stdout, so a chatty failure cannot block the pipe.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let copied = std::io::copy(&mut stdout, out);
    drop(stdout);
    if copied.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|source| StorageError::Spawn { command: command.clone(), source })?;
    let stderr = errors.join().unwrap_or_default();
    let bytes = copied.map_err(StorageError::io("write the send stream of", subvolume))?;
    if !status.success() {
        return Err(StorageError::Command { command, status: status.to_string(), stderr: stderr.trim().into() });
    }
    Ok(bytes)
}

/// Runs `btrfs receive` confined (`--chroot`) to `into`; an increment's
/// parent must have been received into the same directory.
pub(super) fn receive(stream: &Path, into: &Path) -> Result<PathBuf, StorageError> {
    let _span = tracing::debug_span!("btrfs.receive", stream = %stream.display()).entered();
    let before = entries(into)?;
    let mut cmd = Command::new(BTRFS);
    cmd.args(["receive", "-q", "--chroot", "-f"]).arg(stream).arg(into).stdin(Stdio::null());
    let command = command_line(&cmd);
    let out = cmd.output().map_err(|source| StorageError::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(StorageError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    received(into, &before)
}

/// The entries of directory `dir`.
pub(super) fn entries(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    std::fs::read_dir(dir)
        .map_err(StorageError::io("list", dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StorageError::io("list", dir))
}

/// The one entry of `into` that was not among `before`: what a receive made.
pub(super) fn received(into: &Path, before: &[PathBuf]) -> Result<PathBuf, StorageError> {
    let mut new: Vec<PathBuf> = entries(into)?.into_iter().filter(|p| !before.contains(p)).collect();
    match new.len() {
        1 => Ok(new.remove(0)),
        _ => Err(StorageError::Missing { what: "one received subvolume", path: into.to_path_buf() }),
    }
}
