//! Backups of the whole box: what the admin asks for and what a backup
//! did.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/backups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    /// Absolute directory on the daemon's host that holds the backups, or
    /// `s3://bucket/prefix` of an S3-compatible store (endpoint and
    /// credentials from the daemon's `AWS_*` environment); left out: the
    /// daemon's `--backup-dir`. Incremental against the newest backup
    /// already there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A backup that was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backup {
    /// Its id: the UTC time it was taken (`20261204T225106.123Z`).
    pub id: String,
    /// Its directory on the daemon's host, or its URL in the bucket
    /// (`s3://bucket/prefix/<id>`).
    pub dir: String,
    /// The backup it is incremental to (`None`: a whole one).
    pub parent: Option<String>,
    /// Containers in it.
    pub containers: u32,
    /// Read-only layers in it (images, templates, snapshots).
    pub layers: u32,
    /// Subvolumes written as a send stream this time (whole or increment).
    pub streams_written: u32,
    /// Subvolumes unchanged since the parent, named and not written again.
    pub unchanged: u32,
    /// Bytes written into the directory.
    pub bytes_written: u64,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}
