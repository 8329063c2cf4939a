//! [`Events`]: the record of every lifecycle change. Each event is stored
//! (its id is the cursor clients page and resume with) and then sent to
//! live subscribers (the API's event stream). Emitting never fails the
//! change it reports: a store error is logged.

use std::sync::Arc;

use cubby_model::{ContainerId, Event, EventPage, EventType, ProjectId, Trigger};
use cubby_store::{EventFilter, NewEvent, Store};
use tokio::sync::broadcast;

use crate::{Caller, Error};

/// Live events a slow subscriber may lag behind before it misses some
/// (it is told, and resumes from the store with its last id).
const LIVE_BUFFER: usize = 1024;
/// Largest page of events.
pub const MAX_EVENTS_PAGE: u32 = 500;
/// How long events are kept.
pub const EVENT_RETENTION: time::Duration = time::Duration::days(30);

/// Who asked, as events record it: the id of the API token the call came
/// with; `script:<file>` for an exec script's `ctx.cubby` call
/// (`event-script:<file>` when an `@on` event started the run); `admin` or
/// `project` for another call without a token; `None` for the daemon.
fn actor(caller: Option<&Caller>) -> Option<String> {
    caller.map(|c| match (c.token(), c.script()) {
        (Some(token), _) => token.to_string(),
        (None, Some(s)) if s.on_event => format!("{EVENT_SCRIPT_ACTOR}{}", s.file),
        (None, Some(s)) => format!("script:{}", s.file),
        (None, None) if c.is_admin() => "admin".to_owned(),
        (None, None) => "project".to_owned(),
    })
}

/// How an event's `actor` starts when a script an event started caused
/// it: such events start no script again, so scripts cannot loop.
pub const EVENT_SCRIPT_ACTOR: &str = "event-script:";

/// What one event is about, before it has an id.
#[derive(Debug, Clone)]
pub(crate) struct Happened<'a> {
    pub kind: EventType,
    pub project: &'a ProjectId,
    pub container: Option<&'a ContainerId>,
    pub trigger: Option<Trigger>,
    pub caller: Option<&'a Caller>,
    pub data: serde_json::Value,
}

/// What the event list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub project: Option<ProjectId>,
    pub container: Option<ContainerId>,
    pub kind: Option<EventType>,
    /// Events after this id (0: from the oldest kept).
    pub after: u64,
    pub limit: u32,
    /// The newest `limit` events after `after` instead of the oldest
    /// (still listed oldest first): what a feed opens with.
    pub newest: bool,
}

impl EventQuery {
    /// Whether `event` is one `caller` may see and this query asks for.
    pub fn matches(&self, caller: &Caller, event: &Event) -> bool {
        event.project_id.as_ref().is_some_and(|p| caller.can_access(p))
            && self.project.as_ref().is_none_or(|p| event.project_id.as_ref() == Some(p))
            && self.container.as_ref().is_none_or(|c| event.container_id.as_ref() == Some(c))
            && self.kind.is_none_or(|k| event.kind == k)
            && event.id > self.after
    }
}

/// The event log and its live feed.
#[derive(Debug)]
pub struct Events {
    store: Arc<dyn Store>,
    live: broadcast::Sender<Event>,
}

impl Events {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, live: broadcast::channel(LIVE_BUFFER).0 }
    }

    /// Records `what` and sends it to live subscribers.
    pub(crate) fn emit(&self, what: Happened<'_>) {
        let new = NewEvent {
            kind: what.kind,
            at: cubby_model::now(),
            project_id: Some(what.project.clone()),
            container_id: what.container.cloned(),
            trigger: what.trigger,
            actor: actor(what.caller),
            data: what.data,
        };
        match self.store.insert_event(&new) {
            Ok(event) => {
                tracing::debug!(id = event.id, kind = event.kind.as_str(), "event");
                // No subscriber is not an error.
                let _ = self.live.send(event);
            }
            Err(e) => tracing::warn!(kind = what.kind.as_str(), error = %e, "event not recorded"),
        }
    }

    /// Events from now on, as they are recorded. A receiver that lags is
    /// told how many it missed; it reads them back with [`Events::list`].
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// A page of the events `caller` may see, oldest first. A project
    /// token sees only its project's; naming another project is "not
    /// found".
    pub fn list(&self, caller: &Caller, query: &EventQuery) -> Result<EventPage, Error> {
        if let Some(p) = &query.project {
            crate::projects::visible(&*self.store, caller, p)?;
        }
        let project = query.project.as_ref().or(caller.scope());
        let limit = query.limit.clamp(1, MAX_EVENTS_PAGE);
        let items = self.store.events(&EventFilter {
            project,
            container: query.container.as_ref(),
            kind: query.kind,
            after: query.after,
            limit,
            newest: query.newest,
        })?;
        let next_after = items.last().map(|e| e.id).or((query.after > 0).then_some(query.after));
        Ok(EventPage { items, next_after })
    }

    /// Drops events older than their retention.
    pub(crate) fn prune(&self) {
        if let Err(e) = self.store.prune_events(cubby_model::now() - EVENT_RETENTION) {
            tracing::warn!(error = %e, "events not pruned");
        }
    }
}

#[cfg(test)]
mod tests {
    use cubby_store::SqliteStore;

    use super::*;

    #[test]
    fn a_project_sees_its_own_events_only_and_pages_by_id() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let a = crate::testing::project(&*store, "a");
        let b = crate::testing::project(&*store, "b");
        let events = Events::new(Arc::clone(&store));
        let mut live = events.subscribe();
        for (project, kind) in [(&a.id, EventType::ContainerStarted), (&b.id, EventType::ContainerStopped)] {
            let what =
                Happened { kind, project, container: None, trigger: None, caller: None, data: serde_json::json!({}) };
            events.emit(what);
        }
        assert_eq!(live.try_recv().unwrap().kind, EventType::ContainerStarted, "live subscribers get each event");

        let caller_a = Caller::project(a.id.clone());
        let page = events.list(&caller_a, &EventQuery { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(page.items.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventType::ContainerStarted]);
        let theirs = EventQuery { project: Some(b.id.clone()), limit: 10, ..Default::default() };
        assert!(matches!(events.list(&caller_a, &theirs), Err(Error::NotFound { kind: "project", .. })));

        let all = events.list(&Caller::admin(), &EventQuery { limit: 1, ..Default::default() }).unwrap();
        assert_eq!(all.items.len(), 1);
        let rest = EventQuery { after: all.next_after.unwrap(), limit: 10, ..Default::default() };
        let next = events.list(&Caller::admin(), &rest).unwrap();
        assert_eq!(next.items.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventType::ContainerStopped]);
        assert!(!rest.matches(&caller_a, &next.items[0]), "the stream's filter hides another project's");
    }

    #[test]
    fn a_feed_opens_with_the_newest_events_oldest_first() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let a = crate::testing::project(&*store, "a");
        let b = crate::testing::project(&*store, "b");
        let events = Events::new(Arc::clone(&store));
        let kinds = [EventType::ContainerCreated, EventType::ContainerStarted, EventType::ContainerStopped];
        for kind in kinds {
            let what = Happened {
                kind,
                project: &a.id,
                container: None,
                trigger: None,
                caller: None,
                data: serde_json::json!({}),
            };
            events.emit(what);
        }
        // Another tenant's newer event must not take one of the places.
        let theirs = Happened {
            kind: EventType::ContainerDeleted,
            project: &b.id,
            container: None,
            trigger: None,
            caller: None,
            data: serde_json::json!({}),
        };
        events.emit(theirs);

        let caller_a = Caller::project(a.id.clone());
        let newest = events.list(&caller_a, &EventQuery { limit: 2, newest: true, ..Default::default() }).unwrap();
        assert_eq!(newest.items.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds[1..]);
        let oldest = events.list(&caller_a, &EventQuery { limit: 2, ..Default::default() }).unwrap();
        assert_eq!(oldest.items.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds[..2], "the control: oldest first");
    }
}
