//! Images: the built-in `minimal`, imports, listing and deletion.
//!
//! An image's root filesystem is a layer: it is built in `pool/tmp/`, then
//! published by a read-only snapshot into `pool/layers/{id}`, with a layer
//! row and an image row. A crash midway leaves only `tmp/` debris, which
//! the pool clears at start. Deleting an image removes its name; its layer
//! stays while containers use it, so they keep working.

use std::io::Read;

use cubby_model::{Image, ImageConfig, ImageSource, LayerId, validate_image_name};
use cubby_storage::StorageError;
use cubby_storage::image::{minimal, tarball, tree_size};
use cubby_store::{ImageRecord, LayerKind, LayerRecord};

use crate::containers::ContainerService;
use crate::{Caller, Error};

/// What filling a layer gave: its size, the image config it found, and
/// warnings for the user.
pub(crate) type Filled = cubby_storage::image::Imported;

/// Runs `fill` on a thread of its own whose umask is 022: an image's files
/// get the modes its archive gives, and 0755/0644 where it gives none
/// (parent directories, the built-in image), not the daemon's private 077.
/// The thread unshares its filesystem context first, so the umask is its
/// alone; if it cannot, the daemon's umask stays.
async fn with_image_umask<T: Send + 'static>(
    fill: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cubby-image".into())
        .spawn(move || {
            match nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS) {
                Ok(()) => {
                    #[allow(clippy::disallowed_methods, reason = "this thread unshared CLONE_FS just above")]
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
                }
                Err(e) => tracing::warn!(error = %e, "image files get the daemon's umask"),
            }
            let _ = tx.send(fill());
        })
        .map_err(Error::io("start an image thread for", "the image"))?;
    rx.await
        .unwrap_or_else(|_| Err(Error::io("build", "the image")(std::io::Error::other("the image thread panicked"))))
}

impl ContainerService {
    /// Builds `minimal` if the store does not have it (or its layer is gone).
    pub(crate) async fn ensure_minimal_image(&self) -> Result<(), Error> {
        let recorded = self.store.image(minimal::NAME)?;
        if let Some(rec) = &recorded
            && let Some(layer) = self.store.layer(&rec.layer_id)?
            && self.pool.root().join(&layer.subvolume).exists()
        {
            return Ok(());
        }
        let sources = minimal::MinimalSources {
            busybox: self.config.helpers.busybox.clone(),
            demo: self.config.helpers.demo.clone(),
            fetch: self.config.helpers.fetch.clone(),
        };
        let digest = minimal::digest(&sources).map_err(|source| Error::Storage {
            step: "read minimal image sources",
            container: None,
            source: Box::new(source),
        })?;
        tracing::info!("building the built-in `minimal` image");
        if recorded.is_some() {
            self.store.delete_image(minimal::NAME)?;
        }
        self.publish_image(minimal::NAME, ImageSource::Builtin, digest, move |root| {
            let fail =
                |source| Error::Storage { step: "build minimal image", container: None, source: Box::new(source) };
            minimal::populate(root, &sources).map_err(fail)?;
            Ok(Filled { bytes: tree_size(root).map_err(fail)?, config: Some(minimal::config()), ..Filled::default() })
        })
        .await?;
        Ok(())
    }

    /// Fills a new subvolume with `fill` and publishes it read-only as the
    /// layer of image `name`. Nothing is left behind on failure.
    pub(crate) async fn publish_image<F>(
        &self,
        name: &str,
        source: ImageSource,
        digest: String,
        fill: F,
    ) -> Result<Image, Error>
    where
        F: FnOnce(&std::path::Path) -> Result<Filled, Error> + Send + 'static,
    {
        let btrfs = std::sync::Arc::clone(&self.host.btrfs);
        let tmp = self.pool.tmp_path("image");
        let layer_id = LayerId::random();
        let dest = self.pool.layers_dir().join(layer_id.as_str());
        let label = format!("image {name}");
        let blocking_dest = dest.clone();
        let userns = self.userns;
        let filled = with_image_umask(move || {
            let fail = |step: &'static str| {
                let label = label.clone();
                move |source: StorageError| Error::Storage { step, container: Some(label), source: Box::new(source) }
            };
            btrfs.create_subvolume(&tmp).map_err(fail("create image subvolume"))?;
            let result = fill(&tmp).and_then(|filled| {
                // Owned as inside the containers' user namespace.
                if let Some(r) = userns {
                    cubby_storage::idmap::shift_tree(&tmp, r.host_base, r.size).map_err(fail("shift image owners"))?;
                }
                btrfs.snapshot(&tmp, &blocking_dest, true).map_err(fail("publish image"))?;
                Ok(filled)
            });
            let _ = btrfs.delete_subvolume(&tmp);
            result
        })
        .await?;
        let source = if filled.oci { ImageSource::Oci } else { source };
        let image = Image {
            name: name.into(),
            source,
            config: filled.config.unwrap_or_else(|| ImageConfig { env: minimal::config().env, ..Default::default() }),
            size_bytes: filled.bytes,
            created_at: cubby_model::now(),
            warnings: Vec::new(),
        };
        let layer = LayerRecord::standalone(layer_id.clone(), LayerKind::Image, image.created_at);
        self.failpoint("image.published");
        let stored = self.store.insert_layer(&layer).and_then(|()| {
            self.failpoint("image.layer_inserted");
            self.store.insert_image(&ImageRecord { image: image.clone(), digest, layer_id: layer_id.clone() })
        });
        if let Err(e) = stored {
            let _ = self.store.delete_layer(&layer_id);
            let _ = self.host.btrfs.delete_subvolume(&dest);
            return Err(e.into());
        }
        Ok(Image { warnings: filled.warnings, ..image })
    }

    /// Imports an image (admin only: images are shared by all projects):
    /// an OCI image archive (`docker save` or `oci-archive`) or a rootfs
    /// tarball (plain, gzip or zstd), told apart by their first entry.
    pub async fn import_image(
        &self,
        caller: &Caller,
        name: &str,
        reader: impl Read + Send + 'static,
        max_bytes: u64,
    ) -> Result<Image, Error> {
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        validate_image_name(name)?;
        if self.store.image(name)?.is_some() {
            return Err(Error::Duplicate { what: "image", name: name.into() });
        }
        let limits = tarball::ImportLimits { max_unpacked_bytes: max_bytes };
        let scratch = self.pool.tmp_path("oci");
        let image = self
            .publish_image(name, ImageSource::Tarball, String::new(), move |root| {
                cubby_storage::image::import(reader, root, &scratch, limits).map_err(|e| match e {
                    StorageError::TooLarge { limit } => Error::TooLarge { limit },
                    e @ (StorageError::Refused { .. } | StorageError::Archive { .. } | StorageError::Oci { .. }) => {
                        Error::InvalidArchive { reason: crate::error::error_chain(&e) }
                    }
                    other => Error::Storage { step: "import image", container: None, source: Box::new(other) },
                })
            })
            .await?;
        tracing::info!(image = name, size = image.size_bytes, "image imported");
        Ok(image)
    }

    /// Every image.
    pub fn images(&self, _caller: &Caller) -> Result<Vec<Image>, Error> {
        Ok(self.store.images()?.into_iter().map(|r| r.image).collect())
    }

    /// One image.
    pub fn image(&self, _caller: &Caller, name: &str) -> Result<Image, Error> {
        self.store.image(name)?.map(|r| r.image).ok_or_else(|| Error::NotFound { kind: "image", id: name.into() })
    }

    /// Deletes an image's name (admin only). Containers made from it keep
    /// working: its layer goes only when nothing uses it any more.
    pub async fn delete_image(&self, caller: &Caller, name: &str) -> Result<(), Error> {
        self.image(caller, name)?;
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        self.store.delete_image(name)?;
        self.collect_layers().await?;
        Ok(())
    }
}
