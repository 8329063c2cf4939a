//! Scale to zero: waking a stopped container on a request to its URL, and
//! stopping a container that had no traffic for its idle timeout.
//!
//! Concurrent requests for one stopped container share one start: the
//! first creates it as a task (so it finishes even if every waiter gives
//! up) and the others await the same result. The number of waiters and the
//! wait are bounded. A start that failed is not retried on every request:
//! for a cool-down the proxy answers with the failure at once.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cubby_model::{ContainerId, ContainerStatus, Trigger};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::containers::ContainerService;

/// Most requests held for one container's start.
pub const MAX_WAITERS: usize = 256;
/// Longest a request waits for a start.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a failed start is not retried.
pub const FAILURE_COOL_DOWN: Duration = Duration::from_secs(30);

/// Why a request could not wake its container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WakeError {
    /// Too many requests already wait for this container.
    #[error("too many requests wait for this container's start")]
    Busy,
    /// The start took longer than the wait allows.
    #[error("the start took longer than the wait allows")]
    Timeout,
    /// The container does not start on requests.
    #[error("autostart is off")]
    Disabled,
    /// The start failed; the reason says why.
    #[error("{0}")]
    Failed(String),
}

/// One container's proxied traffic. Touched by every proxied request, on
/// every proxy thread: atomics only.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    /// When traffic was last seen, in milliseconds since `epoch`.
    last_ms: AtomicU64,
    epoch: Instant,
    /// Since the last usage reading: requests, their response bytes, and
    /// wakes.
    requests: AtomicU64,
    response_bytes: AtomicU64,
    wakes: AtomicU64,
    /// Responses since the daemon started, by status class (1xx to 5xx).
    classes: [AtomicU64; 5],
}

/// What the proxy counted for one container since the last reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub requests: u64,
    pub response_bytes: u64,
    pub wakes: u64,
}

impl Activity {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            requests: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            classes: Default::default(),
        }
    }

    /// Responses since the daemon started, by status class (1xx to 5xx).
    pub(crate) fn classes(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed))
    }

    /// Takes the counts since the last call (each is counted once).
    pub(crate) fn take_counts(&self) -> Counts {
        Counts {
            requests: self.requests.swap(0, Ordering::AcqRel),
            response_bytes: self.response_bytes.swap(0, Ordering::AcqRel),
            wakes: self.wakes.swap(0, Ordering::AcqRel),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::AcqRel);
    }

    pub(crate) fn idle_for(&self) -> Option<Duration> {
        (self.open.load(Ordering::Acquire) == 0)
            .then(|| Duration::from_millis(self.now_ms().saturating_sub(self.last_ms.load(Ordering::Acquire))))
    }
}

/// Held while a request or an upgraded connection (a WebSocket) to the
/// container is open.
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Arc<Activity>,
}

impl ActivityGuard {
    /// Counts `bytes` of a response sent to the client.
    pub fn sent(&self, bytes: u64) {
        self.activity.response_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts the response's status by class.
    pub fn answered(&self, status: u16) {
        if let Some(class) = (status / 100).checked_sub(1).and_then(|i| self.activity.classes.get(usize::from(i))) {
            class.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.activity.touch();
        self.activity.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Activity of every container. Read on every request (a shared lock);
/// written when a container is first seen or forgotten.
#[derive(Debug, Default)]
pub(crate) struct ActivityTable {
    inner: RwLock<HashMap<ContainerId, Arc<Activity>>>,
}

impl ActivityTable {
    pub(crate) fn get(&self, id: &ContainerId) -> Arc<Activity> {
        if let Some(activity) = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id) {
            return Arc::clone(activity);
        }
        let mut map = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(id.clone()).or_insert_with(|| Arc::new(Activity::new())))
    }

    /// Counts as traffic now (a start resets the idle clock).
    pub(crate) fn touch(&self, id: &ContainerId) {
        self.get(id).touch();
    }

    pub(crate) fn forget(&self, id: &ContainerId) {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }
}

type SharedStart = Shared<BoxFuture<'static, Result<Ipv4Addr, WakeError>>>;

/// Starts in flight, and recent failures.
#[derive(Debug, Default)]
pub(crate) struct WakeTable {
    inflight: Mutex<HashMap<ContainerId, (SharedStart, Arc<AtomicUsize>)>>,
    failures: Mutex<HashMap<ContainerId, (Instant, String)>>,
}

impl ContainerService {
    /// Marks the start of a proxied request (or upgraded connection) to a
    /// container, and counts it; the guard counts its response bytes and
    /// marks its end.
    pub fn track(&self, id: &ContainerId) -> ActivityGuard {
        let activity = self.activity.get(id);
        activity.open.fetch_add(1, Ordering::AcqRel);
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        ActivityGuard { activity }
    }

    /// Starts a stopped container for a request (sharing a start already in
    /// flight) and returns its address once its app's port answers.
    pub async fn wake(self: &Arc<Self>, id: &ContainerId) -> Result<Ipv4Addr, WakeError> {
        if let Some((at, why)) = self.wakes.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id)
            && at.elapsed() < FAILURE_COOL_DOWN
        {
            return Err(WakeError::Failed(why.clone()));
        }
        let (start, waiters) = {
            let mut inflight = self.wakes.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (start, waiters) = inflight.entry(id.clone()).or_insert_with(|| {
                let platform = Arc::clone(self);
                let id = id.clone();
                let task = tokio::spawn(async move {
                    let span = tracing::info_span!("container.wake", container = %id);
                    let result = tracing::Instrument::instrument(platform.wake_once(&id), span).await;
                    platform.wakes.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
                    result
                });
                let start: BoxFuture<'static, Result<Ipv4Addr, WakeError>> = async move {
                    task.await.unwrap_or_else(|_| Err(WakeError::Failed("the start was interrupted".into())))
                }
                .boxed();
                (start.shared(), Arc::new(AtomicUsize::new(0)))
            });
            (start.clone(), Arc::clone(waiters))
        };
        if waiters.fetch_add(1, Ordering::AcqRel) >= MAX_WAITERS {
            waiters.fetch_sub(1, Ordering::AcqRel);
            return Err(WakeError::Busy);
        }
        let result = tokio::time::timeout(WAKE_TIMEOUT, start).await;
        waiters.fetch_sub(1, Ordering::AcqRel);
        result.unwrap_or(Err(WakeError::Timeout))
    }

    async fn wake_once(self: &Arc<Self>, id: &ContainerId) -> Result<Ipv4Addr, WakeError> {
        let _guard = self.lock(id).await;
        let rec = match self.store.container(id) {
            Ok(Some(rec)) => rec,
            _ => return Err(WakeError::Failed("the container no longer exists".into())),
        };
        let address = self.network.address(rec.slot).map_err(|e| WakeError::Failed(e.to_string()))?;
        match rec.status {
            ContainerStatus::Running => Ok(address),
            ContainerStatus::Stopped | ContainerStatus::Failed if rec.autostart => {
                match self.start_locked(&rec, Trigger::Wake, None).await {
                    Ok(_) => {
                        self.activity.get(id).wakes.fetch_add(1, Ordering::Relaxed);
                        self.wakes.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
                        Ok(address)
                    }
                    Err(e) => {
                        let why = match &e {
                            crate::Error::StartFailed { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        tracing::warn!(container = %id, error = %e, "a request could not wake the container");
                        self.wakes
                            .failures
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(id.clone(), (Instant::now(), why.clone()));
                        Err(WakeError::Failed(why))
                    }
                }
            }
            ContainerStatus::Stopped | ContainerStatus::Failed => Err(WakeError::Disabled),
            other => Err(WakeError::Failed(format!("the container is {}", other.as_str()))),
        }
    }
}
