//! Images: the built-in `minimal`, rootfs tarball imports, listing.
//!
//! An image is built in `pool/tmp/`, then published by a read-only snapshot
//! into `pool/images/{name}` and a store row. A crash midway leaves only
//! `tmp/` debris, which the pool clears at start.

use std::io::Read;

use cubby_model::{Image, ImageSource, validate_image_name};
use cubby_storage::StorageError;
use cubby_storage::image::{minimal, tarball, tree_size};
use cubby_store::ImageRecord;

use crate::{Caller, Error, Platform};

impl Platform {
    /// Builds `minimal` if the store does not have it (or its subvolume is gone).
    pub(crate) async fn ensure_minimal_image(&self) -> Result<(), Error> {
        let path = self.pool.image(minimal::NAME);
        let recorded = self.store.image(minimal::NAME)?;
        if recorded.is_some() && path.exists() {
            return Ok(());
        }
        let sources = minimal::MinimalSources {
            busybox: self.config.helpers.busybox.clone(),
            demo: self.config.helpers.demo.clone(),
        };
        let digest = minimal::digest(&sources).map_err(|source| Error::Storage {
            step: "read minimal image sources",
            container: None,
            source: Box::new(source),
        })?;
        tracing::info!("building the built-in `minimal` image");
        let size = self
            .publish_image(minimal::NAME, move |root| {
                minimal::populate(root, &sources)?;
                tree_size(root)
            })
            .await?;
        if recorded.is_some() {
            self.store.delete_image(minimal::NAME)?;
        }
        self.store.insert_image(&ImageRecord {
            image: Image {
                name: minimal::NAME.into(),
                source: ImageSource::Builtin,
                config: minimal::config(),
                size_bytes: size,
                created_at: cubby_model::now(),
            },
            digest,
        })?;
        Ok(())
    }

    /// Fills a new subvolume with `fill` and publishes it read-only as image
    /// `name`. Nothing is left behind on failure.
    async fn publish_image<F>(&self, name: &str, fill: F) -> Result<u64, Error>
    where
        F: FnOnce(&std::path::Path) -> Result<u64, StorageError> + Send + 'static,
    {
        let btrfs = std::sync::Arc::clone(&self.host.btrfs);
        let tmp = self.pool.tmp_path("image");
        let dest = self.pool.image(name);
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let fail = |step: &'static str| {
                let name = name.clone();
                move |source| Error::Storage {
                    step,
                    container: Some(format!("image {name}")),
                    source: Box::new(source),
                }
            };
            btrfs.create_subvolume(&tmp).map_err(fail("create image subvolume"))?;
            let result = fill(&tmp).map_err(fail("fill image")).and_then(|size| {
                btrfs.snapshot(&tmp, &dest, true).map_err(fail("publish image"))?;
                Ok(size)
            });
            let _ = btrfs.delete_subvolume(&tmp);
            result
        })
        .await
        .expect("image task does not panic")
    }

    /// Imports a rootfs tarball (plain, gzip or zstd) as image `name`
    /// (admin only: images are shared by all projects).
    pub async fn import_tarball(
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
        if self.store.image(name)?.is_some() || self.pool.image(name).exists() {
            return Err(Error::Duplicate { what: "image", name: name.into() });
        }
        let limits = tarball::ImportLimits { max_unpacked_bytes: max_bytes };
        let size =
            self.publish_image(name, move |root| tarball::unpack(reader, root, limits)).await.map_err(|e| match e {
                Error::Storage { source, .. } if matches!(*source, StorageError::TooLarge { .. }) => {
                    Error::TooLarge { limit: max_bytes }
                }
                Error::Storage { source, .. }
                    if matches!(*source, StorageError::Refused { .. } | StorageError::Archive { .. }) =>
                {
                    Error::InvalidArchive { reason: error_chain(&*source) }
                }
                other => other,
            })?;
        let image = Image {
            name: name.into(),
            source: ImageSource::Tarball,
            config: cubby_model::ImageConfig { env: minimal::config().env, ..Default::default() },
            size_bytes: size,
            created_at: cubby_model::now(),
        };
        if let Err(e) = self.store.insert_image(&ImageRecord { image: image.clone(), digest: String::new() }) {
            let _ = self.host.btrfs.delete_subvolume(&self.pool.image(name));
            return Err(e.into());
        }
        tracing::info!(image = name, size, "image imported");
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
}

/// `err` and its causes, joined: the user needs the archive's own words.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
