//! Whether containers run in user namespaces, and with which id range:
//! decided once per pool and written in it (`<pool>/idmap`), because the
//! owners of every image and frozen layer in the pool were shifted into
//! that range when they were made.
//!
//! - A new pool takes the daemon's setting (`--userns`, on by default).
//! - A pool made before user namespaces existed (it has layers but no
//!   `idmap` file) keeps running containers as host root: its layers are
//!   not shifted. The daemon says so at start; re-importing into a new pool
//!   moves it over.
//! - A later `--userns` that differs from the pool's is ignored with a
//!   warning.

use std::path::Path;

use cubby_store::Store;

use crate::Error;
use crate::config::IdRange;

const FILE: &str = "idmap";

/// Key quota bytes allowed per key (the kernel's defaults: 20000 / 200).
const BYTES_PER_KEY: u64 = 250;

/// The per-user key quotas that `containers` containers need, as
/// `(maxkeys, maxbytes)`. runc gives every container a session keyring, and
/// with user namespaces all of them belong to one host uid (the range's
/// base), which the kernel caps at `kernel.keys.maxkeys` keys (200 by
/// default): past that, `runc run` fails with "disk quota exceeded".
pub fn key_quotas(containers: u32) -> (u64, u64) {
    let keys = u64::from(containers) * 2 + 200;
    (keys, keys * BYTES_PER_KEY)
}

/// The per-user inotify limits `containers` containers need, as
/// `(max_user_instances, max_user_watches)`: each container gets what a
/// host user gets by default (128 instances, 65536 watches), since under
/// user namespaces they are all one host uid and would otherwise share
/// one user's allowance (one tenant's file watchers starving the others').
pub fn inotify_quotas(containers: u32) -> (u64, u64) {
    let users = u64::from(containers) + 1;
    let cap = u64::try_from(i32::MAX).unwrap_or(u64::MAX);
    ((users * 128).min(cap), (users * 65_536).min(cap))
}

/// Raises the per-uid kernel quotas under `proc_root` that every tenant
/// shares under user namespaces (one host uid for all): the key quotas
/// ([`key_quotas`]) and inotify's ([`inotify_quotas`]). Never lowers
/// them; LXD's production guide raises them for the same reason.
pub fn raise_key_quotas(proc_root: &Path, containers: u32) -> Result<(), Error> {
    let (keys, bytes) = key_quotas(containers);
    let (instances, watches) = inotify_quotas(containers);
    for (name, wanted) in [
        ("kernel/keys/maxkeys", keys),
        ("kernel/keys/maxbytes", bytes),
        ("fs/inotify/max_user_instances", instances),
        ("fs/inotify/max_user_watches", watches),
    ] {
        let path = proc_root.join("sys").join(name);
        let current: u64 = std::fs::read_to_string(&path)
            .map_err(Error::io("read", &path))?
            .trim()
            .parse()
            .map_err(|_| Error::invalid("sysctl", format!("{} does not hold a number", path.display())))?;
        if current < wanted {
            tracing::info!(
                current,
                wanted,
                sysctl = name,
                "raising a per-uid quota: containers share one host uid under user namespaces"
            );
            std::fs::write(&path, wanted.to_string()).map_err(Error::io("raise the quota in", &path))?;
        }
    }
    Ok(())
}

/// The pool's id range, recording `wanted` if the pool has none yet.
pub fn resolve(pool_root: &Path, wanted: Option<IdRange>, store: &dyn Store) -> Result<Option<IdRange>, Error> {
    let path = pool_root.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let recorded = parse(&text).ok_or_else(|| {
                Error::invalid(
                    "idmap",
                    format!("{} holds `{}`; expected `<host base> <size>` or `off`", path.display(), text.trim()),
                )
            })?;
            if recorded != wanted {
                tracing::warn!(
                    pool = ?recorded, flag = ?wanted,
                    "--userns differs from what this pool was made with; the pool's setting stays (its layers are shifted for it)"
                );
            }
            Ok(recorded)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let legacy = !store.all_layers()?.is_empty();
            let chosen = if legacy {
                tracing::warn!(
                    "this pool predates user namespaces: its containers keep running as host root. Import the images into a new data dir to move to user namespaces"
                );
                None
            } else {
                wanted
            };
            let text = chosen.map_or_else(|| "off\n".to_string(), |r| format!("{} {}\n", r.host_base, r.size));
            std::fs::write(&path, text).map_err(Error::io("write", &path))?;
            Ok(chosen)
        }
        Err(e) => Err(Error::io("read", &path)(e)),
    }
}

fn parse(text: &str) -> Option<Option<IdRange>> {
    let text = text.trim();
    if text == "off" {
        return Some(None);
    }
    let (base, size) = text.split_once(' ')?;
    Some(Some(IdRange { host_base: base.trim().parse().ok()?, size: size.trim().parse().ok()? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_uid_quotas_are_raised_never_lowered() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("sys/kernel/keys");
        let inotify = dir.path().join("sys/fs/inotify");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::create_dir_all(&inotify).unwrap();
        std::fs::write(keys.join("maxkeys"), "200\n").unwrap();
        std::fs::write(keys.join("maxbytes"), "90000000\n").unwrap();
        std::fs::write(inotify.join("max_user_instances"), "128\n").unwrap();
        std::fs::write(inotify.join("max_user_watches"), "999999999\n").unwrap();
        raise_key_quotas(dir.path(), 1000).unwrap();
        let read = |name: &str| std::fs::read_to_string(keys.join(name)).unwrap().trim().to_string();
        assert_eq!(read("maxkeys"), "2200", "two keys per container and the kernel's default");
        assert_eq!(read("maxbytes"), "90000000", "already higher: kept");
        let read = |name: &str| std::fs::read_to_string(inotify.join(name)).unwrap().trim().to_string();
        assert_eq!(read("max_user_instances"), "128128", "a host user's allowance per container");
        assert_eq!(read("max_user_watches"), "999999999", "already higher: kept");
        std::fs::remove_file(keys.join("maxkeys")).unwrap();
        assert!(raise_key_quotas(dir.path(), 1000).is_err(), "a missing sysctl is an error, not a guess");
    }

    #[test]
    fn the_file_says_off_or_a_range() {
        assert_eq!(parse("off\n"), Some(None));
        assert_eq!(parse("1000000 65536\n"), Some(Some(IdRange { host_base: 1_000_000, size: 65_536 })));
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("1 x"), None);
    }
}
