//! Backups in an S3-compatible object store (`s3://bucket/prefix`).
//!
//! The layout is the directory's, one object per file
//! (`<prefix>/<id>/backup.json`, `<prefix>/<id>/streams/...`). A backup is
//! written into a staging directory under the data dir exactly as into a
//! local one, then uploaded file by file (multipart above [`PART`], so
//! memory stays flat whatever a stream weighs), the manifest last; the
//! staging directory is removed either way. An upload cut short has no
//! manifest, so it is not a backup: [`Bucket::newest`] skips it and its
//! objects are deleted when the daemon sees the failure. Restore downloads
//! the files one manifest names into a local directory and restores from
//! it as from any backup directory (checksums included).
//!
//! Endpoint and credentials come from the daemon's environment, as for
//! every AWS tool: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` (MinIO, Ceph, R2, Garage...) and
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint. None of them is stored,
//! logged or returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FileRef, MANIFEST, Manifest};
use crate::Error;

/// Files above this size go up as multipart uploads of parts this big.
pub const PART: usize = 8 << 20;
/// Parts of one file in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// The largest manifest read (one of 10,000 tenants is a few MiB).
const MAX_MANIFEST: usize = 64 << 20;

/// Where backups go: a directory on the host or a bucket.
#[derive(Debug, Clone)]
pub enum Target {
    Dir(PathBuf),
    Bucket(Bucket),
}

impl Target {
    /// `s3://bucket[/prefix]` or an absolute path.
    pub fn parse(to: &str) -> Result<Self, Error> {
        if to.starts_with("s3://") {
            return Bucket::open(to).map(Target::Bucket);
        }
        if to.contains("://") {
            return Err(Error::invalid(
                "to",
                "name an absolute directory or s3://bucket/prefix: no other store is known",
            ));
        }
        Ok(Target::Dir(PathBuf::from(to)))
    }
}

/// A prefix of an S3 bucket holding backups.
#[derive(Clone)]
pub struct Bucket {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Bucket {
    /// The bucket at `url` (`s3://bucket/prefix`), with the endpoint and
    /// credentials of the environment. Nothing is sent yet.
    pub fn open(url: &str) -> Result<Self, Error> {
        let parsed = url::Url::parse(url).map_err(|e| Error::invalid("to", format!("`{url}` is not a URL: {e}")))?;
        if parsed.host_str().is_none_or(str::is_empty) || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::invalid("to", "write s3://bucket or s3://bucket/prefix"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::invalid(
                "to",
                "put no credentials in the URL (it is logged and returned): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the daemon's environment",
            ));
        }
        if parsed.as_str().trim_end_matches('/') != url.trim_end_matches('/') {
            // `..`, `.` or characters the URL would rewrite: the prefix
            // written must be the prefix used.
            return Err(Error::invalid("to", format!("write the URL as {parsed}: a prefix is plain path segments")));
        }
        let prefix = parsed.path().trim_matches('/');
        if prefix.split('/').any(|c| c == "." || c == "..") {
            return Err(Error::invalid("to", "the prefix may not hold `.` or `..`"));
        }
        let prefix = Key::parse(prefix).map_err(|e| Error::invalid("to", format!("the prefix is not a key: {e}")))?;
        let url = url.trim_end_matches('/').to_string();
        let store = AmazonS3Builder::from_env()
            .with_url(url.as_str())
            .build()
            .map_err(|e| Error::invalid("to", format!("the S3 store cannot be used: {e} (set AWS_REGION, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the daemon's environment)")))?;
        Ok(Self { url, store: Arc::new(store), prefix })
    }

    /// The bucket's URL as given (no credentials in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn fail(&self, op: &'static str) -> impl FnOnce(object_store::Error) -> Error + '_ {
        move |source| Error::ObjectStore { url: self.url.clone(), op, source: Box::new(source) }
    }

    fn key(&self, backup: &str, file: &str) -> Key {
        let mut key = self.prefix.clone();
        key = key.clone().join(backup);
        for part in file.split('/') {
            key = key.join(part);
        }
        key
    }

    /// The ids under the prefix that look like backups, oldest first
    /// (complete or not: only a manifest says).
    async fn ids(&self) -> Result<Vec<String>, Error> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self.store.list_with_delimiter(prefix).await.map_err(self.fail("list"))?;
        let mut ids: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|name| super::is_backup_id(name))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The manifest of backup `id`, or `None` when it has none (an upload
    /// cut short, or no such backup).
    pub async fn manifest(&self, id: &str) -> Result<Option<Manifest>, Error> {
        Ok(self.manifest_with_bytes(id).await?.map(|(m, _)| m))
    }

    /// The manifest of backup `id` and its bytes as stored.
    async fn manifest_with_bytes(&self, id: &str) -> Result<Option<(Manifest, bytes::Bytes)>, Error> {
        let key = self.key(id, MANIFEST);
        let bytes = match self.store.get(&key).await {
            Ok(got) => got.bytes().await.map_err(self.fail("read a manifest"))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail("read a manifest")(e)),
        };
        if bytes.len() > MAX_MANIFEST {
            return Err(Error::InvalidBackup {
                dir: PathBuf::from(&self.url),
                reason: format!("{key} is larger than a manifest can be"),
            });
        }
        Ok(Some((super::parse_manifest(&bytes, id, Path::new(&self.url))?, bytes)))
    }

    /// The newest complete backup's manifest.
    pub async fn newest(&self) -> Result<Option<Manifest>, Error> {
        Ok(self.newest_with_bytes().await?.map(|(m, _)| m))
    }

    async fn newest_with_bytes(&self) -> Result<Option<(Manifest, bytes::Bytes)>, Error> {
        for id in self.ids().await?.iter().rev() {
            if let Some(found) = self.manifest_with_bytes(id).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Uploads the backup written in `dir`: every file of it the manifest
    /// names, then the manifest.
    pub async fn upload(&self, dir: &Path, manifest: &Manifest) -> Result<u64, Error> {
        let mut sent = 0;
        for r in manifest.files_of(&manifest.id) {
            sent += self.put_file(&dir.join(&r.file), &self.key(&manifest.id, &r.file)).await?;
        }
        sent += self.put_file(&dir.join(MANIFEST), &self.key(&manifest.id, MANIFEST)).await?;
        Ok(sent)
    }

    async fn put_file(&self, path: &Path, key: &Key) -> Result<u64, Error> {
        let len = tokio::fs::metadata(path).await.map_err(Error::io("stat", path))?.len();
        if len <= PART as u64 {
            let bytes = tokio::fs::read(path).await.map_err(Error::io("read", path))?;
            self.store.put(key, bytes.into()).await.map_err(self.fail("upload"))?;
            return Ok(len);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(Error::io("open", path))?;
        let upload = self.store.put_multipart(key).await.map_err(self.fail("start an upload"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        let result: Result<(), Error> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(Error::io("read", path))?;
                if n == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(self.fail("upload a part"))?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await.map_err(self.fail("finish an upload"))?;
                Ok(len)
            }
            Err(e) => {
                // The parts sent so far are not left billed in the bucket.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Deletes every object of backup `id` (an upload that failed), as far
    /// as the store lets it.
    pub async fn remove(&self, id: &str) {
        let prefix = self.prefix.clone().join(id);
        let keys: Vec<_> = self.store.list(Some(&prefix)).filter_map(|m| async move { m.ok() }).collect().await;
        for meta in keys {
            if let Err(e) = self.store.delete(&meta.location).await {
                tracing::warn!(key = %meta.location, error = %e, "could not delete an object of a failed backup");
            }
        }
    }

    /// Downloads backup `backup` (the newest complete one when `None`) into
    /// the directory `into`, laid out as a backup directory, and returns
    /// its id. Nothing is checked here but the names: restore checks every
    /// file against the manifest.
    pub async fn download(&self, backup: Option<&str>, into: &Path) -> Result<String, Error> {
        let unusable = |reason: String| Error::InvalidBackup { dir: PathBuf::from(&self.url), reason };
        let (manifest, manifest_bytes) = match backup {
            Some(id) if !super::is_backup_id(id) => {
                return Err(unusable(format!("`{id}` is not a backup id (they look like 20261204T225106.123Z)")));
            }
            Some(id) => self
                .manifest_with_bytes(id)
                .await?
                .ok_or_else(|| unusable(format!("it holds no complete backup {id}")))?,
            None => self.newest_with_bytes().await?.ok_or_else(|| unusable("it holds no complete backup".into()))?,
        };
        let mut wanted: Vec<&FileRef> = vec![&manifest.database, &manifest.files];
        wanted.extend(manifest.subvolumes.iter().flat_map(|e| &e.chain));
        for r in wanted {
            if !super::is_safe_ref(r) {
                return Err(unusable(format!("the manifest names an unsafe path {}/{}", r.backup, r.file)));
            }
            let path = into.join(&r.backup).join(&r.file);
            if path.exists() {
                continue;
            }
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(Error::io("create", parent))?;
            }
            self.get_file(&self.key(&r.backup, &r.file), &path, r.bytes).await?;
        }
        // The manifest read above, not a second read that could differ.
        let dir = into.join(&manifest.id);
        tokio::fs::create_dir_all(&dir).await.map_err(Error::io("create", &dir))?;
        let path = dir.join(MANIFEST);
        tokio::fs::write(&path, &manifest_bytes).await.map_err(Error::io("write", &path))?;
        Ok(manifest.id)
    }

    /// Downloads `key` into `path`; more than `size` bytes (the manifest's
    /// count) are refused as they arrive, before they fill the disk.
    async fn get_file(&self, key: &Key, path: &Path, size: u64) -> Result<(), Error> {
        let mut stream = match self.store.get(key).await {
            Ok(got) => got.into_stream(),
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::InvalidBackup {
                    dir: PathBuf::from(&self.url),
                    reason: format!("{key} is missing"),
                });
            }
            Err(e) => return Err(self.fail("download")(e)),
        };
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
            .map_err(Error::io("create", path))?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.fail("download"))?;
            written += chunk.len() as u64;
            if written > size {
                return Err(Error::InvalidBackup {
                    dir: PathBuf::from(&self.url),
                    reason: format!("{key} is longer than its manifest says: it changed"),
                });
            }
            out.write_all(&chunk).await.map_err(Error::io("write", path))?;
        }
        out.sync_all().await.map_err(Error::io("sync", path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_paths_and_buckets_and_refuse_the_rest() {
        assert!(matches!(Target::parse("/mnt/backups"), Ok(Target::Dir(p)) if p == Path::new("/mnt/backups")));
        let Target::Bucket(b) = Target::parse("s3://backups/box-1/").unwrap() else { panic!("a bucket") };
        assert_eq!(b.url(), "s3://backups/box-1");
        assert_eq!(
            b.key("20261204T090501.002Z", "streams/layer-x.btrfs").as_ref(),
            "box-1/20261204T090501.002Z/streams/layer-x.btrfs"
        );
        let Target::Bucket(root) = Target::parse("s3://backups").unwrap() else { panic!("a bucket") };
        assert_eq!(root.key("20261204T090501.002Z", MANIFEST).as_ref(), "20261204T090501.002Z/backup.json");
        for bad in ["s3://", "s3://b/../x", "s3://b/x?y=1", "gs://b/x", "ftp://x", "s3://key:secret@b/x"] {
            assert!(matches!(Target::parse(bad), Err(Error::Invalid(_))), "{bad}");
        }
    }
}
