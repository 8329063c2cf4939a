//! Delivering webhooks: a task that turns new events into deliveries (one
//! per matching hook, through the store's dispatch cursor, so a restart
//! neither loses nor repeats one) and sends the due ones through a
//! [`WebhookSender`], retrying with backoff for a day.
//!
//! The sender is a seam: the daemon passes the scripts' `fetch` client,
//! so the same destination checks apply (never the daemon's host, its
//! containers or the egress guard's ranges).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cubby_model::DeliveryStatus;
use cubby_scripts::{AnswerRoom, FetchError, FetchRequest, HttpFetcher};
use cubby_store::{DeliveryAttempt, DueDelivery, Store};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use super::{SIGNATURE_HEADER, WebhookService, signature};

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a delivery is retried before it is given up.
pub const GIVE_UP_AFTER: time::Duration = time::Duration::days(1);
/// How long finished deliveries stay in the log.
pub const LOG_RETENTION: time::Duration = time::Duration::days(7);
/// Deliveries sent at once.
const BATCH: u32 = 32;

/// Sends one webhook request: the status it was answered with.
pub trait WebhookSender: Send + Sync + std::fmt::Debug {
    fn post(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> BoxFuture<'static, Result<u16, FetchError>>;
}

impl WebhookSender for HttpFetcher {
    fn post(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> BoxFuture<'static, Result<u16, FetchError>> {
        let request = FetchRequest {
            method: "POST".into(),
            url: url.to_owned(),
            headers,
            body,
            timeout: ATTEMPT_TIMEOUT,
            // The answer's body is not kept: a small room is plenty.
            room: AnswerRoom::new(1 << 20),
        };
        let fetcher = self.clone();
        async move { fetcher.fetch(request).await.map(|r| r.status) }.boxed()
    }
}

/// The wait before attempt `n + 1` after `n` failed ones.
pub fn backoff(failed: u32) -> Duration {
    const STEPS: [u64; 6] = [2, 10, 60, 300, 1800, 3600];
    Duration::from_secs(STEPS.get(failed.saturating_sub(1) as usize).copied().unwrap_or(7200))
}

/// Starts delivering: woken by each new event, and every second for
/// retries.
pub(crate) fn spawn(
    hooks: Arc<WebhookService>,
    events: &crate::events::Events,
    sender: Arc<dyn WebhookSender>,
) -> JoinHandle<()> {
    let mut live = events.subscribe();
    tokio::spawn(async move {
        let mut last_prune = None::<std::time::Instant>;
        loop {
            tokio::select! {
                _ = live.recv() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = hooks.store.dispatch_events(500) {
                tracing::warn!(error = %e, "webhook dispatch");
            }
            let due = match hooks.store.due_deliveries(cubby_model::now(), BATCH) {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook deliveries");
                    continue;
                }
            };
            futures::future::join_all(due.into_iter().map(|d| attempt(&hooks, &*sender, d))).await;
            if last_prune.is_none_or(|at: std::time::Instant| at.elapsed() > Duration::from_secs(3600)) {
                let _ = hooks.store.prune_deliveries(cubby_model::now() - LOG_RETENTION);
                last_prune = Some(std::time::Instant::now());
            }
        }
    })
}

/// One attempt of one delivery, and its record.
async fn attempt(hooks: &WebhookService, sender: &dyn WebhookSender, due: DueDelivery) {
    let store: &dyn Store = &*hooks.store;
    let id = due.delivery.id;
    let outcome = match hooks.secret(&due.hook) {
        Ok(secret) => {
            let body = serde_json::to_vec(&due.event).unwrap_or_default();
            let now = cubby_model::now().unix_timestamp();
            let headers = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("user-agent".to_owned(), "cubby-webhooks/1".to_owned()),
                (SIGNATURE_HEADER.to_owned(), signature(&secret, now, &body)),
                ("cubby-event-id".to_owned(), due.event.id.to_string()),
                ("cubby-event-type".to_owned(), due.event.kind.as_str().to_owned()),
                ("cubby-delivery-id".to_owned(), id.to_string()),
            ];
            sender.post(&due.hook.webhook.url, headers, Bytes::from(body)).await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let failed = due.delivery.attempts + 1;
    let record = match outcome {
        Ok(code) if (200..300).contains(&code) => {
            DeliveryAttempt { status: DeliveryStatus::Delivered, code: Some(code), error: None, next_at: None }
        }
        other => {
            let (code, error) = match other {
                Ok(code) => (Some(code), Some(format!("answered {code}"))),
                Err(e) => (None, Some(e)),
            };
            let now = cubby_model::now();
            if now - due.delivery.created_at >= GIVE_UP_AFTER {
                DeliveryAttempt { status: DeliveryStatus::Failed, code, error, next_at: None }
            } else {
                DeliveryAttempt { status: DeliveryStatus::Pending, code, error, next_at: Some(now + backoff(failed)) }
            }
        }
    };
    tracing::debug!(delivery = id, hook = %due.hook.webhook.id, status = record.status.as_str(), "webhook attempt");
    if let Err(e) = store.finish_attempt(id, &record) {
        tracing::warn!(delivery = id, error = %e, "webhook attempt not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_every_two_hours() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(6), Duration::from_secs(3600));
        assert_eq!(backoff(40), Duration::from_secs(7200));
        let day: u64 = (1..=20).map(|n| backoff(n).as_secs()).sum();
        assert!(day >= 86_400, "retries reach past a day: {day} s");
    }
}
