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
    fn the_file_says_off_or_a_range() {
        assert_eq!(parse("off\n"), Some(None));
        assert_eq!(parse("1000000 65536\n"), Some(Some(IdRange { host_base: 1_000_000, size: 65_536 })));
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("1 x"), None);
    }
}
