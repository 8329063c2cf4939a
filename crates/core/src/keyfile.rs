//! The daemon's private files of one secret each (the claim signing key,
//! the secrets key, the admin token): read when present, made once with
//! mode 0600 (and synced) when missing, never overwritten.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::Error;

/// The content of the file at `path`, made from `make()` if it is missing.
/// `what` names it in the log.
pub(crate) fn read_or_create(path: &Path, what: &str, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = make();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(Error::io("create", path))?;
            file.write_all(&bytes).map_err(Error::io("write", path))?;
            file.sync_all().map_err(Error::io("sync", path))?;
            tracing::info!(path = %path.display(), "{what} made");
            Ok(bytes)
        }
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// 32 random bytes, for a key.
pub(crate) fn random_key() -> Vec<u8> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the kernel's random source is available");
    key.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = read_or_create(&path, "test key", random_key).unwrap();
        assert_eq!(read_or_create(&path, "test key", || unreachable!("it exists")).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
