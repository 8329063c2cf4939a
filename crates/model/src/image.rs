//! Images: read-only root filesystems that containers are layered on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Where an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Made by the daemon without a download (`minimal`).
    Builtin,
    /// Imported from a rootfs tarball.
    Tarball,
    /// Imported from an OCI image archive.
    Oci,
}

impl ImageSource {
    /// The source as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Tarball => "tarball",
            Self::Oci => "oci",
        }
    }

    /// Parses a stored source.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "builtin" => Self::Builtin,
            "tarball" => Self::Tarball,
            "oci" => Self::Oci,
            _ => return None,
        })
    }
}

/// Defaults a container made from the image starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageConfig {
    /// Program and arguments; empty means the container must give one.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The app's port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Working directory of the command.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `uid[:gid]` the command runs as.
    #[serde(default)]
    pub user: Option<String>,
}

/// An image, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    pub name: String,
    pub source: ImageSource,
    pub config: ImageConfig,
    /// Bytes of files in the image.
    pub size_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// What the import left out and why (only in the answer to an import).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
