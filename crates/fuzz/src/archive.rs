//! Image archives: what `POST /images` unpacks (a rootfs tarball, plain or
//! compressed, or an OCI archive with its layers).
//!
//! Unpacking writes files, so this target protects the host: on its first
//! call it drops the process to the `nobody` user, so a path-escape bug
//! becomes a failed write instead of a damaged host, and it checks after
//! every input that nothing appeared beside the image root.

use std::path::{Path, PathBuf};
use std::sync::Once;

use cubby_storage::image::{self, tarball::ImportLimits};

const NOBODY: u32 = 65_534;

fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cubby-fuzz-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the fuzz scratch dir");
        drop_privileges(&dir);
        dir
    })
}

fn drop_privileges(dir: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let id = nix::unistd::Uid::from_raw(NOBODY);
        let gid = nix::unistd::Gid::from_raw(NOBODY);
        nix::unistd::chown(dir, Some(id), Some(gid)).expect("give the scratch dir to nobody");
        nix::unistd::setgroups(&[]).expect("drop supplementary groups");
        nix::unistd::setresgid(gid, gid, gid).expect("become group nobody");
        nix::unistd::setresuid(id, id, id).expect("become nobody");
    });
}

/// Fuzzes image import.
///
/// Invariants: no panic; whatever the archive says, nothing is written
/// outside the image root (the scratch dir holds only `root` and the
/// temporary `oci` dir, which import removes); a success reports no more
/// bytes than the limit.
pub fn import_bytes(data: &[u8], limit: u64) {
    let base = scratch();
    let root = base.join("root");
    let oci = base.join("oci");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("make the image root");
    let result = image::import(std::io::Cursor::new(data), &root, &oci, ImportLimits { max_unpacked_bytes: limit });
    if let Ok(imported) = &result {
        assert!(imported.bytes <= limit, "{} bytes unpacked past the {limit} limit", imported.bytes);
    }
    let beside: Vec<String> = std::fs::read_dir(base)
        .expect("read the scratch dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "root")
        .collect();
    assert!(beside.is_empty(), "import left {beside:?} beside the image root ({result:?})");
    let _ = std::fs::remove_dir_all(&root);
}

/// Removes this process's scratch directory (drivers call it when done;
/// the process still may, as its owner).
pub fn cleanup() {
    let dir = std::env::temp_dir().join(format!("cubby-fuzz-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}

/// [`import_bytes`] with a 4 MiB limit.
pub fn import(data: &[u8]) {
    import_bytes(data, 4 << 20);
}
