//! OCI image archives: `docker save` (a `manifest.json` naming a config
//! and layer tarballs) and OCI layouts (`oci-layout`, `index.json`,
//! `blobs/`, as `skopeo copy oci-archive:` writes them).
//!
//! The archive is unpacked into a scratch directory first (its manifest
//! may come last), then each layer is applied in order: whiteouts
//! (`.wh.<name>`) delete what lower layers put there, opaque markers
//! (`.wh..wh..opq`) empty a directory, and every other entry goes through
//! the same checks as a rootfs tarball. The image config's Entrypoint, Cmd,
//! Env, WorkingDir, User and ExposedPorts become the container defaults.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cubby_model::ImageConfig;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::Imported;
use super::beneath::{Beneath, normal_components};
use super::tarball::{self, ImportLimits};
use crate::StorageError;

fn oci(detail: impl Into<String>) -> StorageError {
    StorageError::Oci { detail: detail.into() }
}

/// Largest manifest, index or config read.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// Where a blob lives in an OCI layout, relative to its root.
fn blob_path(d: &Descriptor) -> Result<PathBuf, StorageError> {
    let digest = d.digest();
    let (alg, hex) = (digest.algorithm().to_string(), digest.digest().to_string());
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !plain(&alg) {
        return Err(oci(format!("bad digest `{digest}`")));
    }
    Ok(Path::new("blobs").join(alg).join(hex))
}

fn read_json<T: serde::de::DeserializeOwned>(scratch: &Beneath, rel: &Path) -> Result<T, StorageError> {
    let bytes = scratch.read(rel, MAX_JSON_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| oci(format!("`{}` is not valid: {e}", rel.display())))
}

/// Config and layer files (lowest first, relative to the archive's root)
/// of the image unpacked under `scratch`.
fn locate(scratch: &Beneath) -> Result<(Option<ImageConfiguration>, Vec<PathBuf>), StorageError> {
    let index_json = Path::new("index.json");
    if scratch.file_if_present(index_json)?.is_some() {
        let index: ImageIndex = read_json(scratch, index_json)?;
        let mut manifest_desc = index.manifests().first().cloned().ok_or_else(|| oci("index.json lists no image"))?;
        // A multi-platform index points at another index: take linux/amd64, or the first.
        if *manifest_desc.media_type() == MediaType::ImageIndex {
            let inner: ImageIndex = read_json(scratch, &blob_path(&manifest_desc)?)?;
            manifest_desc = inner
                .manifests()
                .iter()
                .find(|m| m.platform().as_ref().is_some_and(|p| p.architecture().to_string() == "amd64"))
                .or_else(|| inner.manifests().first())
                .cloned()
                .ok_or_else(|| oci("the image index lists no image"))?;
        }
        let manifest: ImageManifest = read_json(scratch, &blob_path(&manifest_desc)?)?;
        let config: ImageConfiguration = read_json(scratch, &blob_path(manifest.config())?)?;
        let layers = manifest.layers().iter().map(blob_path).collect::<Result<_, _>>()?;
        return Ok((Some(config), layers));
    }
    let manifest_json = Path::new("manifest.json");
    if scratch.file_if_present(manifest_json)?.is_some() {
        let manifest: serde_json::Value = read_json(scratch, manifest_json)?;
        let first = manifest.get(0).ok_or_else(|| oci("manifest.json lists no image"))?;
        let config = match first["Config"].as_str() {
            Some(rel) => Some(read_json::<ImageConfiguration>(scratch, &normal_components(Path::new(rel))?)?),
            None => None,
        };
        let layers = first["Layers"]
            .as_array()
            .ok_or_else(|| oci("manifest.json has no Layers"))?
            .iter()
            .map(|l| {
                l.as_str().ok_or_else(|| oci("a layer is not a path")).and_then(|rel| normal_components(Path::new(rel)))
            })
            .collect::<Result<_, _>>()?;
        return Ok((config, layers));
    }
    Err(oci("neither index.json nor manifest.json found"))
}

/// The container defaults an image config gives.
fn defaults(config: &ImageConfiguration) -> ImageConfig {
    let Some(c) = config.config() else { return ImageConfig::default() };
    let mut command = c.entrypoint().clone().unwrap_or_default();
    command.extend(c.cmd().clone().unwrap_or_default());
    let env: BTreeMap<String, String> = c
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let port = c
        .exposed_ports()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            (proto == "tcp").then(|| port.parse::<u16>().ok()).flatten()
        })
        .min();
    ImageConfig {
        command,
        env,
        port,
        workdir: c.working_dir().clone().filter(|w| !w.is_empty()),
        user: c.user().clone().filter(|u| !u.is_empty()),
    }
}

/// What a whiteout entry asks for.
enum Whiteout<'a> {
    /// `.wh..wh..opq`: empty the directory of lower layers' entries.
    Opaque,
    /// `.wh.<name>`: remove `<name>`.
    Remove(&'a OsStr),
    /// `.wh..wh.<anything else>`: aufs bookkeeping, nothing to do.
    Meta,
}

fn whiteout(name: &OsStr) -> Option<Whiteout<'_>> {
    let rest = name.as_bytes().strip_prefix(b".wh.")?;
    Some(match rest {
        b".wh..opq" => Whiteout::Opaque,
        _ if rest.starts_with(b".wh.") => Whiteout::Meta,
        _ => Whiteout::Remove(OsStr::from_bytes(rest)),
    })
}

/// Applies one layer tarball (at `layer` under `scratch`) to `root`:
/// whiteouts first, then the rest. Returns the bytes written.
fn apply_layer(
    scratch: &Beneath,
    layer: &Path,
    root: &Path,
    budget: &mut u64,
    skipped: &mut Vec<String>,
) -> Result<u64, StorageError> {
    let cap = tarball::ImportLimits { max_unpacked_bytes: *budget };
    // Pass 1: whiteouts and opaque markers remove what lower layers left,
    // every path resolved under the root without following links.
    let base = Beneath::open(root)?;
    let mut archive = tar::Archive::new(tarball::capped(tarball::decompress(scratch.file(layer)?)?, cap));
    for entry in archive.entries().map_err(|e| tarball::archive_error(e, cap))? {
        let entry = entry.map_err(|e| tarball::archive_error(e, cap))?;
        let path = entry.path().map_err(|e| tarball::archive_error(e, cap))?.into_owned();
        let Some(kind) = path.file_name().and_then(whiteout) else { continue };
        let parent = normal_components(path.parent().unwrap_or(Path::new("")))?;
        let Some(dir) = base.dir(&parent)? else { continue };
        match kind {
            Whiteout::Opaque => dir.clear()?,
            Whiteout::Remove(name) => dir.remove(name).map_err(|e| match e {
                StorageError::Refused { .. } => StorageError::Refused {
                    entry: path.display().to_string(),
                    reason: "its whiteout names no entry of its directory".into(),
                },
                other => other,
            })?,
            Whiteout::Meta => {}
        }
    }
    // Pass 2: every other entry, with the rootfs checks.
    let unpacked = tarball::unpack_filtered(scratch.file(layer)?, root, cap, |p| {
        !p.file_name().is_some_and(|n| n.as_bytes().starts_with(b".wh."))
    })?;
    *budget = budget.saturating_sub(unpacked.bytes);
    skipped.extend(unpacked.skipped);
    Ok(unpacked.bytes)
}

/// Imports the OCI archive read from `archive` into `root`, using `scratch`
/// (a path that does not exist yet) for the unpacked archive.
pub fn import_archive(
    archive: impl std::io::Read,
    root: &Path,
    scratch: &Path,
    limits: ImportLimits,
) -> Result<Imported, StorageError> {
    std::fs::create_dir_all(scratch).map_err(StorageError::io("create", scratch))?;
    let result = (|| {
        let outer = tarball::unpack(archive, scratch, limits)?;
        let unpacked = Beneath::open(scratch)?;
        let (config, layers) = locate(&unpacked)?;
        let mut budget = limits.max_unpacked_bytes.saturating_sub(outer.bytes);
        let mut imported = Imported { config: config.as_ref().map(defaults), oci: true, ..Imported::default() };
        let mut skipped = outer.skipped;
        for layer in &layers {
            imported.bytes += apply_layer(&unpacked, layer, root, &mut budget, &mut skipped)?;
        }
        imported.warnings = tarball::skipped_warning(&skipped).into_iter().collect();
        Ok(imported)
    })();
    let _ = std::fs::remove_dir_all(scratch);
    result
}

#[cfg(test)]
mod tests {
    use tar::EntryType::{Block, Char, Directory, Regular, Symlink};

    use super::*;
    use crate::image::testing::{docker_archive, tar_with};

    /// A root, a scratch path, and a canary file outside the root that no
    /// import may touch.
    struct Scene {
        _dir: tempfile::TempDir,
        root: PathBuf,
        scratch: PathBuf,
        outside: PathBuf,
    }

    impl Scene {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let outside = dir.path().join("outside");
            for d in [&root, &outside] {
                std::fs::create_dir(d).unwrap();
            }
            std::fs::write(outside.join("canary"), "alive").unwrap();
            Self { scratch: dir.path().join("scratch"), root, outside, _dir: dir }
        }

        fn import(&self, archive: &[u8]) -> Result<Imported, StorageError> {
            import_archive(archive, &self.root, &self.scratch, ImportLimits::default())
        }

        fn canary_alive(&self) -> bool {
            std::fs::read_to_string(self.outside.join("canary")).is_ok_and(|c| c == "alive")
        }

        fn outside_str(&self) -> &str {
            self.outside.to_str().unwrap()
        }
    }

    fn lower() -> Vec<u8> {
        tar_with(&[
            ("etc/", Directory, b"", None),
            ("etc/shadow", Regular, b"root:x", None),
            ("etc/keep", Regular, b"k", None),
            ("opt/", Directory, b"", None),
            ("opt/old", Regular, b"o", None),
        ])
    }

    #[test]
    fn whiteouts_remove_what_lower_layers_left_and_only_that() {
        let s = Scene::new();
        let upper = tar_with(&[
            ("etc/.wh.shadow", Regular, b"", None),
            ("opt/.wh..wh..opq", Regular, b"", None),
            ("opt/new", Regular, b"n", None),
            ("etc/.wh..wh.plnk", Regular, b"", None),
            ("gone/.wh.nothing", Regular, b"", None),
        ]);
        let imported = s.import(&docker_archive(&[lower(), upper])).unwrap();
        assert!(imported.oci && imported.warnings.is_empty());
        assert!(!s.root.join("etc/shadow").exists(), "the whiteout removes the lower file");
        assert!(s.root.join("etc/keep").exists());
        assert!(!s.root.join("opt/old").exists(), "the opaque marker empties the lower directory");
        assert_eq!(std::fs::read(s.root.join("opt/new")).unwrap(), b"n", "but keeps its own layer's entries");
        assert!(
            std::fs::read_dir(&s.root).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(".wh."))
        );
        assert!(!s.scratch.exists());
    }

    #[test]
    fn an_absolute_whiteout_stays_inside_the_root() {
        let s = Scene::new();
        // The old code joined this to the root, which gave the path itself.
        let abs = format!("{}/.wh.canary", s.outside_str());
        let upper = tar_with(&[(&abs, Regular, b"", None), ("/etc/.wh.shadow", Regular, b"", None)]);
        s.import(&docker_archive(&[lower(), upper])).unwrap();
        assert!(s.canary_alive(), "a whiteout reached outside the root");
        assert!(!s.root.join("etc/shadow").exists(), "`/etc/...` means the image's /etc");
    }

    #[test]
    fn a_whiteout_through_a_symlink_of_an_earlier_layer_is_refused() {
        for target in [Scene::new().outside_str().to_string(), "../../outside".to_string()] {
            let s = Scene::new();
            let target = if target.starts_with('/') { s.outside_str().to_string() } else { target };
            let links = tar_with(&[("a", Symlink, b"", Some(&target))]);
            let upper = tar_with(&[("a/.wh.canary", Regular, b"", None)]);
            // Positive control: the same path without the link removes the file.
            let control = Scene::new();
            let real = tar_with(&[("a/", Directory, b"", None), ("a/canary", Regular, b"x", None)]);
            control.import(&docker_archive(&[real, upper.clone()])).unwrap();
            assert!(!control.root.join("a/canary").exists());

            let err = s.import(&docker_archive(&[links, upper])).unwrap_err();
            assert!(matches!(err, StorageError::Refused { .. }), "{err}");
            assert!(err.to_string().contains("symlink"), "{err}");
            assert!(s.canary_alive(), "a whiteout followed a symlink out of the root ({target})");
        }
    }

    #[test]
    fn whiteouts_naming_dot_or_dotdot_are_refused() {
        for name in [".wh...", "etc/.wh..", "etc/.wh.", "../.wh.canary"] {
            let s = Scene::new();
            let upper = tar_with(&[(name, Regular, b"", None)]);
            let err = s.import(&docker_archive(&[lower(), upper])).unwrap_err();
            assert!(matches!(err, StorageError::Refused { .. }), "{name}: {err}");
            assert!(s.canary_alive() && s.root.join("etc/keep").exists(), "{name} removed something");
        }
    }

    #[test]
    fn archive_members_are_never_read_through_symlinks() {
        let s = Scene::new();
        let layer = lower();
        let manifest = serde_json::json!([{ "Config": null, "Layers": ["layer.tar"] }]).to_string();
        std::fs::write(s.outside.join("manifest.json"), &manifest).unwrap();
        std::fs::write(s.outside.join("layer.tar"), &layer).unwrap();
        // Positive control: the same members as plain files import.
        let plain =
            tar_with(&[("manifest.json", Regular, manifest.as_bytes(), None), ("layer.tar", Regular, &layer, None)]);
        s.import(&plain).unwrap();
        assert!(s.root.join("etc/keep").exists());

        let outside_manifest = format!("{}/manifest.json", s.outside_str());
        let outside_layer = format!("{}/layer.tar", s.outside_str());
        for archive in [
            tar_with(&[("manifest.json", Symlink, b"", Some(&outside_manifest))]),
            tar_with(&[
                ("manifest.json", Regular, manifest.as_bytes(), None),
                ("layer.tar", Symlink, b"", Some(&outside_layer)),
            ]),
        ] {
            let s = Scene::new();
            let err = s.import(&archive).unwrap_err();
            assert!(matches!(err, StorageError::Refused { .. }), "{err}");
            assert!(!s.root.join("etc/keep").exists(), "a member was read from outside the archive");
        }
    }

    #[test]
    fn the_size_cap_holds_while_whiteouts_are_read() {
        let s = Scene::new();
        let big = vec![0u8; 64 << 10];
        let upper = tar_with(&[("big", Regular, &big, None), ("etc/.wh.keep", Regular, b"", None)]);
        let archive = docker_archive(&[lower(), upper]);
        let limits = ImportLimits { max_unpacked_bytes: u64::try_from(archive.len()).unwrap() + (16 << 10) };
        let err = import_archive(&archive[..], &s.root, &s.scratch, limits).unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
        assert!(s.root.join("etc/keep").exists(), "the whiteout pass read past the cap");
    }

    #[test]
    fn device_nodes_are_left_out_with_a_warning() {
        let s = Scene::new();
        let layer = tar_with(&[
            ("dev/", Directory, b"", None),
            ("dev/null", Char, b"", None),
            ("dev/sda", Block, b"", None),
            ("bin/", Directory, b"", None),
            ("bin/app", Regular, b"#!", None),
        ]);
        let imported = s.import(&docker_archive(&[layer])).unwrap();
        assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
        assert!(imported.warnings[0].contains("dev/null, dev/sda"), "{:?}", imported.warnings);
        assert!(s.root.join("bin/app").exists() && !s.root.join("dev/null").exists());
    }
}
