//! `/api/v1/events`: what happened to tenants, a page at a time, and
//! `/api/v1/events/stream`, the same live as Server-Sent Events,
//! resumable with `Last-Event-ID`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json as Out;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use cubby_core::Caller;
use cubby_core::events::EventQuery;
use cubby_model::{ContainerId, Event, EventPage, EventType, ProjectId};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::json::Query;
use crate::{ApiError, AppState};

/// Which events.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only this project's (a project token sees only its own anyway).
    pub project_id: Option<String>,
    /// Only this container's.
    pub container_id: Option<String>,
    /// Only this type, e.g. `container.exited`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Events after this id (a page's `next_after`); default: the oldest
    /// kept (events are kept 30 days).
    pub after: Option<u64>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<u32>,
    /// `true`: the newest `limit` events (still oldest first) instead of
    /// the oldest; a stream opens with them and then follows.
    pub newest: Option<bool>,
}

impl EventsQuery {
    fn query(&self, after: Option<u64>) -> Result<EventQuery, ApiError> {
        let kind = match &self.kind {
            Some(k) => Some(EventType::parse(k).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                ApiError::bad_request(
                    "invalid_request",
                    format!("unknown event type `{k}`: use one of {}", known.join(", ")),
                )
            })?),
            None => None,
        };
        Ok(EventQuery {
            project: self.project_id.clone().map(ProjectId::from_stored),
            container: self.container_id.clone().map(ContainerId::from_stored),
            kind,
            after: after.or(self.after).unwrap_or(0),
            limit: self.limit.unwrap_or(100),
            newest: self.newest.unwrap_or(false) && after.is_none(),
        })
    }
}

/// Events the token may see, oldest first: every lifecycle change with a
/// stable `type`, its `trigger` and `actor`, and details in `data`.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])), params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_events(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<EventsQuery>,
) -> Result<Out<EventPage>, ApiError> {
    Ok(Out(s.platform.events().list(&caller, &q.query(None)?)?))
}

fn sse(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.id.to_string())
        .event(event.kind.as_str())
        .data(serde_json::to_string(event).unwrap_or_default())
}

/// The events the token may see, live, as Server-Sent Events (`id` is the
/// event's id, `event` its type, `data` the event as JSON). Reconnecting
/// with `Last-Event-ID` (or `?after=`) replays what was missed first.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", security(("bearer" = [])), params(EventsQuery),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stream_events(
    State(s): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let mut query = q.query(resume)?;
    let events = std::sync::Arc::clone(s.platform.events());
    // Subscribe before the replay, so nothing falls between the two.
    let live = events.subscribe();
    // A feed that opens with the newest few replays just those; otherwise
    // everything after `after` is replayed, a page at a time.
    let (first, more) = if query.newest {
        let first = events.list(&caller, &query)?;
        query.newest = false;
        (first, false)
    } else {
        let first = events.list(&caller, &EventQuery { limit: REPLAY_PAGE, ..query.clone() })?;
        let more = first.items.len() == REPLAY_PAGE as usize;
        (first, more)
    };
    let state = Follow { caller, query, events, live, backlog: first.items.into(), more };
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.backlog.pop_front() {
                st.query.after = event.id;
                return Some((Ok(sse(&event)), st));
            }
            if st.more {
                // The replay is longer than a page: the rest is older than
                // the subscription, so it is read back, not received.
                let page = st.events.list(&st.caller, &EventQuery { limit: REPLAY_PAGE, ..st.query.clone() }).ok()?;
                st.more = page.items.len() == REPLAY_PAGE as usize;
                st.backlog = page.items.into();
                continue;
            }
            match st.live.recv().await {
                Ok(event) if st.query.matches(&st.caller, &event) => {
                    st.query.after = event.id;
                    return Some((Ok(sse(&event)), st));
                }
                Ok(_) => {}
                // Fell behind: read the missed ones back from the store.
                Err(RecvError::Lagged(_)) => st.more = true,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Events a stream reads back from the store at a time.
const REPLAY_PAGE: u32 = 500;

/// Where one stream stands.
struct Follow {
    caller: Caller,
    query: EventQuery,
    events: std::sync::Arc<cubby_core::events::Events>,
    live: tokio::sync::broadcast::Receiver<Event>,
    backlog: std::collections::VecDeque<Event>,
    /// Whether the store may hold more to replay before going live.
    more: bool,
}
