//! A tenant as one downloadable archive, and a tenant made from one.

use std::io::Write;

use axum::Json as Out;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_core::containers::export::{ExportOptions, ExportScope, ImportOptions};
use cubby_model::{Container, ContainerId, ProjectId};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Query;
use crate::{ApiError, AppState};

/// Chunks handed to the HTTP body.
const CHUNK: usize = 256 << 10;

/// What an export holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// The whole root filesystem instead of the tenant's files above its
    /// image.
    #[serde(default)]
    pub full: bool,
    /// Only `/data` (a handover of the tenant's data; not importable).
    #[serde(default)]
    pub data_only: bool,
    /// Environment values too (left out by default: their names are kept).
    #[serde(default)]
    pub include_env: bool,
    /// A snapshot (name or alias) to export as it was, instead of the
    /// current state.
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// Download a container as one archive (tar + zstd), taken from a
/// consistent snapshot while it keeps running: a header (its settings,
/// firewall and network rules), its files, and a manifest with every
/// file's SHA-256. `POST /api/v1/projects/{id}/import` makes it again.
#[utoipa::path(get, path = "/api/v1/containers/{id}/export", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ExportQuery),
    responses((status = 200, content_type = "application/zstd", body = Vec<u8>, description = "The archive, streamed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn export_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let scope = match (q.full, q.data_only) {
        (true, true) => {
            return Err(ApiError::bad_request("invalid_request", "give full=true or data_only=true, not both"));
        }
        (true, false) => ExportScope::Full,
        (false, true) => ExportScope::Data,
        (false, false) => ExportScope::Delta,
    };
    let options = ExportOptions { scope, include_env: q.include_env, snapshot: q.snapshot };
    let prepared = s.platform.containers().prepare_export(&caller, &id, options).await?;
    let disposition = format!("attachment; filename=\"{}\"", prepared.file_name.replace(['"', '\\'], "_"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        match prepared.write_to(&mut out).map_err(|e| std::io::Error::other(e.to_string())) {
            Ok(written) => {
                tracing::info!(container = %id, entries = written.entries, bytes = written.bytes, "exported")
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "export cut short");
                // The body ends in an error: the client sees a broken
                // download, never a short archive that looks whole.
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let headers = [(header::CONTENT_TYPE, "application/zstd".to_string()), (header::CONTENT_DISPOSITION, disposition)];
    Ok((StatusCode::OK, headers, Body::from_stream(stream)).into_response())
}

/// A blocking `Write` that hands chunks to an async body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// How to import.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// The new container's name (the exported one's by default).
    pub name: Option<String>,
    /// Start it once made (default true).
    pub start: Option<bool>,
}

/// Make a new container from an archive of `GET .../export` (streamed as
/// the body): a new id and URL, the exported settings, rules and files.
/// Every file is checked against the archive's manifest before anything
/// is made; environment values the export left out are set afterwards
/// (`PUT /api/v1/containers/{id}/env`). The box must have the image.
#[utoipa::path(post, path = "/api/v1/projects/{id}/import", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "An archive made by export (tar + zstd)"),
    responses((status = 201, body = Container), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn import_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(project): PathId<ProjectId>,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<(StatusCode, Out<Container>), ApiError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let options = ImportOptions { name: q.name, start: q.start.unwrap_or(true), ..ImportOptions::default() };
    let c = s.platform.containers().import_container(&caller, &project, options, reader, s.max_image_bytes).await?;
    Ok((StatusCode::CREATED, Out(c)))
}
