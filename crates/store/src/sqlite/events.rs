//! Events in SQLite: an append-only table whose rowid is the event's id
//! (the API's cursor). Ids, types, triggers and small details only — no
//! tenant data — so they outlive a deleted container until pruned.

use cubby_model::{ContainerId, Event, EventType, ProjectId, Timestamp, Trigger};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

use super::{SqliteStore, corrupt_column, from_ms, ms, q};
use crate::{EventFilter, EventStore, NewEvent, StoreError};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = r.get(1)?;
    let trigger: Option<String> = r.get(5)?;
    let data: String = r.get(7)?;
    Ok(Event {
        id: u64::try_from(r.get::<_, i64>(0)?).map_err(|_| corrupt_column(0, "a negative event id".into()))?,
        kind: EventType::parse(&kind).ok_or_else(|| corrupt_column(1, format!("unknown event type `{kind}`")))?,
        at: from_ms(r.get(2)?),
        project_id: r.get::<_, Option<String>>(3)?.map(ProjectId::from_stored),
        container_id: r.get::<_, Option<String>>(4)?.map(ContainerId::from_stored),
        trigger: match trigger {
            Some(t) => Some(Trigger::parse(&t).ok_or_else(|| corrupt_column(5, format!("unknown trigger `{t}`")))?),
            None => None,
        },
        actor: r.get(6)?,
        data: serde_json::from_str(&data).map_err(|e| corrupt_column(7, e.to_string()))?,
    })
}

impl EventStore for SqliteStore {
    fn insert_event(&self, e: &NewEvent) -> Result<Event, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO events (type, at, project_id, container_id, trigger, actor, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.kind.as_str(),
                ms(e.at),
                e.project_id.as_ref().map(ProjectId::as_str),
                e.container_id.as_ref().map(ContainerId::as_str),
                e.trigger.map(Trigger::as_str),
                e.actor,
                e.data.to_string(),
            ],
        )
        .map_err(q("insert event"))?;
        let id = u64::try_from(conn.last_insert_rowid()).unwrap_or(0);
        Ok(Event {
            id,
            kind: e.kind,
            at: e.at,
            project_id: e.project_id.clone(),
            container_id: e.container_id.clone(),
            trigger: e.trigger,
            actor: e.actor.clone(),
            data: e.data.clone(),
        })
    }

    fn events(&self, f: &EventFilter<'_>) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT id, type, at, project_id, container_id, trigger, actor, data FROM events WHERE id > ?1",
        );
        let mut args = vec![Value::Integer(i64::try_from(f.after).unwrap_or(i64::MAX))];
        for (column, value) in [
            ("project_id", f.project.map(|p| p.as_str().to_owned())),
            ("container_id", f.container.map(|c| c.as_str().to_owned())),
            ("type", f.kind.map(|k| k.as_str().to_owned())),
        ] {
            if let Some(value) = value {
                args.push(Value::Text(value));
                sql.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        let order = if f.newest { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", f.limit));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(q("list events"))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), row).map_err(q("list events"))?;
        let mut events: Vec<Event> = rows.collect::<Result<_, _>>().map_err(q("list events"))?;
        if f.newest {
            events.reverse();
        }
        Ok(events)
    }

    fn last_event_id(&self) -> Result<u64, StoreError> {
        let id: Option<i64> =
            self.conn().query_row("SELECT max(id) FROM events", [], |r| r.get(0)).map_err(q("read last event"))?;
        Ok(id.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    fn prune_events(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn().execute("DELETE FROM events WHERE at < ?1", [ms(before)]).map_err(q("prune events"))
    }
}
