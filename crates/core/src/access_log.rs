//! Access logs: one JSON line per request through a tenant's URL (its
//! container, method, status, response bytes, duration; never the query
//! string, cookies or any header), in a capped file per project
//! (`{data}/projects/{id}/access.log` and `.log.1`, 8 MiB each), readable
//! through the API.
//!
//! The proxy hands lines to [`AccessLogs::record`], which never blocks: a
//! writer task lets them gather for 200 ms and appends them in one batch,
//! one open file per project. When the queue is full (a disk slower than the traffic), lines
//! are dropped and counted rather than slowing requests down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cubby_model::{AccessLogLine, ProjectId};
use cubby_runtime::logs::LogFile;
use cubby_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Caller, Error};

/// Bytes per file; two files per project at most.
pub const ACCESS_LOG_CAP: u64 = 8 << 20;
/// Lines waiting to be written before new ones are dropped.
const QUEUE: usize = 32_768;
/// How long lines gather before a write: a write per request would cost
/// the proxy a third of its throughput (`cubby-bench urls`).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Most lines one answer returns.
pub const MAX_LINES: usize = 1000;

/// The access logs of every project.
#[derive(Debug)]
pub struct AccessLogs {
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    queue: mpsc::Sender<(ProjectId, AccessLogLine)>,
    /// Lines dropped because the queue was full.
    pub dropped: AtomicU64,
}

fn log_file(data_dir: &std::path::Path, project: &ProjectId) -> LogFile {
    LogFile::new(&data_dir.join("projects").join(project.as_str()), "access")
}

impl AccessLogs {
    /// The logs under `data_dir`, and the task that writes them.
    pub fn start(store: Arc<dyn Store>, data_dir: PathBuf) -> (Arc<Self>, JoinHandle<()>) {
        let (queue, mut lines) = mpsc::channel::<(ProjectId, AccessLogLine)>(QUEUE);
        let logs = Arc::new(Self { store, data_dir: data_dir.clone(), queue, dropped: AtomicU64::new(0) });
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while lines.recv_many(&mut batch, QUEUE).await > 0 {
                tokio::time::sleep(FLUSH_EVERY).await;
                while let Ok(line) = lines.try_recv() {
                    batch.push(line);
                }
                let mut by_project: BTreeMap<ProjectId, Vec<u8>> = BTreeMap::new();
                for (project, line) in batch.drain(..) {
                    let out = by_project.entry(project).or_default();
                    if serde_json::to_writer(&mut *out, &line).is_ok() {
                        out.push(b'\n');
                    }
                }
                let dir = data_dir.clone();
                let written = tokio::task::spawn_blocking(move || {
                    for (project, bytes) in by_project {
                        let log = log_file(&dir, &project);
                        if let Some(parent) = log.path().parent()
                            && std::fs::create_dir_all(parent).is_ok()
                            && let Err(e) = log.append(&bytes, ACCESS_LOG_CAP)
                        {
                            tracing::warn!(project = %project, error = %e, "access log not written");
                        }
                    }
                })
                .await;
                if let Err(e) = written {
                    tracing::warn!(error = %e, "access log writer");
                }
            }
        });
        (logs, task)
    }

    /// Queues `line` for `project`'s log; never waits.
    pub fn record(&self, project: &ProjectId, line: AccessLogLine) {
        if self.queue.try_send((project.clone(), line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The last `limit` lines of `project`'s log, oldest first.
    pub fn read(&self, caller: &Caller, project: &ProjectId, limit: usize) -> Result<Vec<AccessLogLine>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let limit = limit.clamp(1, MAX_LINES);
        // A line is about 200 bytes: read enough for `limit` of them.
        let bytes = log_file(&self.data_dir, project)
            .tail((limit as u64) * 512)
            .map_err(Error::runtime("read the access log of", project.as_str()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<AccessLogLine> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let skip = lines.len().saturating_sub(limit);
        Ok(lines.split_off(skip))
    }
}
