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
use std::path::{Component, Path, PathBuf};

use cubby_model::ImageConfig;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::tarball::{self, ImportLimits};
use crate::StorageError;

fn oci(detail: impl Into<String>) -> StorageError {
    StorageError::Oci { detail: detail.into() }
}

fn blob_path(scratch: &Path, d: &Descriptor) -> Result<PathBuf, StorageError> {
    let digest = d.digest();
    let (alg, hex) = (digest.algorithm().to_string(), digest.digest().to_string());
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || alg.contains('/') || alg.contains("..") {
        return Err(oci(format!("bad digest `{digest}`")));
    }
    Ok(scratch.join("blobs").join(alg).join(hex))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StorageError> {
    let bytes = std::fs::read(path).map_err(|_| oci(format!("`{}` is missing", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| oci(format!("`{}` is not valid: {e}", path.display())))
}

/// A relative path in the archive that stays inside it.
fn inside(scratch: &Path, rel: &str) -> Result<PathBuf, StorageError> {
    let p = Path::new(rel);
    if !p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(oci(format!("`{rel}` leaves the archive")));
    }
    Ok(scratch.join(p))
}

/// Config and layer files (lowest first) of the image in `scratch`.
fn locate(scratch: &Path) -> Result<(Option<ImageConfiguration>, Vec<PathBuf>), StorageError> {
    if scratch.join("index.json").exists() {
        let index: ImageIndex = read_json(&scratch.join("index.json"))?;
        let mut manifest_desc = index.manifests().first().cloned().ok_or_else(|| oci("index.json lists no image"))?;
        // A multi-platform index points at another index: take linux/amd64, or the first.
        if *manifest_desc.media_type() == MediaType::ImageIndex {
            let inner: ImageIndex = read_json(&blob_path(scratch, &manifest_desc)?)?;
            manifest_desc = inner
                .manifests()
                .iter()
                .find(|m| m.platform().as_ref().is_some_and(|p| p.architecture().to_string() == "amd64"))
                .or_else(|| inner.manifests().first())
                .cloned()
                .ok_or_else(|| oci("the image index lists no image"))?;
        }
        let manifest: ImageManifest = read_json(&blob_path(scratch, &manifest_desc)?)?;
        let config: ImageConfiguration = read_json(&blob_path(scratch, manifest.config())?)?;
        let layers = manifest.layers().iter().map(|d| blob_path(scratch, d)).collect::<Result<_, _>>()?;
        return Ok((Some(config), layers));
    }
    if scratch.join("manifest.json").exists() {
        let manifest: serde_json::Value = read_json(&scratch.join("manifest.json"))?;
        let first = manifest.get(0).ok_or_else(|| oci("manifest.json lists no image"))?;
        let config = match first["Config"].as_str() {
            Some(rel) => Some(read_json::<ImageConfiguration>(&inside(scratch, rel)?)?),
            None => None,
        };
        let layers = first["Layers"]
            .as_array()
            .ok_or_else(|| oci("manifest.json has no Layers"))?
            .iter()
            .map(|l| l.as_str().ok_or_else(|| oci("a layer is not a path")).and_then(|rel| inside(scratch, rel)))
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

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Applies one layer tarball to `root`: whiteouts first, then the rest.
fn apply_layer(layer: &Path, root: &Path, budget: &mut u64, limits: ImportLimits) -> Result<u64, StorageError> {
    // Pass 1: whiteouts and opaque markers remove what lower layers left.
    let file = std::fs::File::open(layer).map_err(|_| oci(format!("layer `{}` is missing", layer.display())))?;
    let mut archive = tar::Archive::new(tarball::decompress(file)?);
    for entry in archive.entries().map_err(|source| StorageError::Archive { source })? {
        let entry = entry.map_err(|source| StorageError::Archive { source })?;
        let path = entry.path().map_err(|source| StorageError::Archive { source })?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if !name.starts_with(".wh.") {
            continue;
        }
        if !path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir | Component::RootDir)) {
            return Err(StorageError::Refused {
                entry: path.display().to_string(),
                reason: "its path leaves the image root (`..`)".into(),
            });
        }
        let parent = root.join(path.parent().unwrap_or(Path::new("")));
        if name == ".wh..wh..opq" {
            if let Ok(children) = std::fs::read_dir(&parent) {
                for child in children.flatten() {
                    remove_any(&child.path());
                }
            }
        } else {
            remove_any(&parent.join(&name[4..]));
        }
    }
    // Pass 2: every other entry, with the rootfs checks.
    let file = std::fs::File::open(layer).map_err(|_| oci(format!("layer `{}` is missing", layer.display())))?;
    let left = ImportLimits { max_unpacked_bytes: (*budget).min(limits.max_unpacked_bytes) };
    let written = tarball::unpack_filtered(file, root, left, |p| {
        !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".wh."))
    })?;
    *budget = budget.saturating_sub(written);
    Ok(written)
}

/// Imports the OCI archive read from `archive` into `root`, using `scratch`
/// (a path that does not exist yet) for the unpacked archive.
pub fn import_archive(
    archive: impl std::io::Read,
    root: &Path,
    scratch: &Path,
    limits: ImportLimits,
) -> Result<(u64, Option<ImageConfig>), StorageError> {
    std::fs::create_dir_all(scratch).map_err(StorageError::io("create", scratch))?;
    let result = (|| {
        let outer = tarball::unpack(archive, scratch, limits)?;
        let (config, layers) = locate(scratch)?;
        let mut budget = limits.max_unpacked_bytes.saturating_sub(outer);
        let mut total = 0;
        for layer in &layers {
            total += apply_layer(layer, root, &mut budget, limits)?;
        }
        Ok((total, config.as_ref().map(defaults)))
    })();
    let _ = std::fs::remove_dir_all(scratch);
    result
}
