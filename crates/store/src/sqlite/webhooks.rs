//! Webhooks in SQLite: the hooks (their secrets sealed by the core), one
//! delivery row per event and hook, and the dispatch cursor (the last
//! event turned into deliveries), moved in the same transaction as the
//! rows it makes, so a crash neither loses nor doubles a delivery.

use cubby_model::{DeliveryStatus, EventType, ProjectId, Timestamp, Webhook, WebhookDelivery, WebhookId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, corrupt_column, from_ms, ms, q};
use crate::{DeliveryAttempt, DueDelivery, EventFilter, EventStore, StoreError, WebhookRecord, WebhookStore};

const HOOK_COLUMNS: &str = "id, project_id, url, events, secret, description, created_at, after_event";

fn hook(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookRecord> {
    let events: String = r.get(3)?;
    let names: Vec<String> = serde_json::from_str(&events).map_err(|e| corrupt_column(3, e.to_string()))?;
    let events = names
        .iter()
        .map(|n| EventType::parse(n).ok_or_else(|| corrupt_column(3, format!("unknown event type `{n}`"))))
        .collect::<Result<_, _>>()?;
    Ok(WebhookRecord {
        webhook: Webhook {
            id: WebhookId::from_stored(r.get(0)?),
            project_id: ProjectId::from_stored(r.get(1)?),
            url: r.get(2)?,
            events,
            description: r.get(5)?,
            created_at: from_ms(r.get(6)?),
            secret: None,
        },
        sealed_secret: r.get(4)?,
        after_event: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
    })
}

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    let kind: String = r.get(2)?;
    let status: String = r.get(3)?;
    Ok(WebhookDelivery {
        id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        event_id: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt_column(2, format!("unknown event type `{kind}`")))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt_column(3, format!("unknown delivery status `{status}`")))?,
        attempts: r.get(4)?,
        last_status_code: r.get(5)?,
        last_error: r.get(6)?,
        next_attempt_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
        created_at: from_ms(r.get(8)?),
    })
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.event_id, d.event_type, d.status, d.attempts, d.last_code, d.last_error, d.next_at, d.created_at";

fn last_dispatched(conn: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .query_row("SELECT last_event FROM webhook_dispatch WHERE one = 1", [], |r| r.get(0))
        .optional()
        .map_err(q("read dispatch cursor"))?;
    Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

impl WebhookStore for SqliteStore {
    fn insert_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError> {
        let events: Vec<&str> = hook.webhook.events.iter().map(|e| e.as_str()).collect();
        self.conn()
            .execute(
                &format!("INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    hook.webhook.id.as_str(),
                    hook.webhook.project_id.as_str(),
                    hook.webhook.url,
                    serde_json::to_string(&events).unwrap_or_default(),
                    hook.sealed_secret,
                    hook.webhook.description,
                    ms(hook.webhook.created_at),
                    i64::try_from(hook.after_event).unwrap_or(i64::MAX),
                ],
            )
            .map_err(q("insert webhook"))?;
        Ok(())
    }

    fn webhooks(&self, project: &ProjectId) -> Result<Vec<WebhookRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {HOOK_COLUMNS} FROM webhooks WHERE project_id = ?1 ORDER BY created_at, id"
            ))
            .map_err(q("list webhooks"))?;
        let rows = stmt.query_map([project.as_str()], hook).map_err(q("list webhooks"))?;
        rows.collect::<Result<_, _>>().map_err(q("list webhooks"))
    }

    fn webhook(&self, id: &WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = ?1"), [id.as_str()], hook)
            .optional()
            .map_err(q("read webhook"))
    }

    fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin delete webhook"))?;
        tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id.as_str()])
            .map_err(q("delete deliveries"))?;
        let n = tx.execute("DELETE FROM webhooks WHERE id = ?1", [id.as_str()]).map_err(q("delete webhook"))?;
        tx.commit().map_err(q("commit delete webhook"))?;
        Ok(n > 0)
    }

    fn dispatch_events(&self, limit: u32) -> Result<usize, StoreError> {
        let after = {
            let conn = self.conn();
            last_dispatched(&conn)?
        };
        let events =
            self.events(&EventFilter { project: None, container: None, kind: None, after, limit, newest: false })?;
        let Some(last) = events.last().map(|e| e.id) else { return Ok(0) };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin dispatch"))?;
        if last_dispatched(&tx)? != after {
            // Another dispatcher moved on meanwhile: its rows stand.
            return Ok(0);
        }
        let mut made = 0;
        for event in &events {
            let Some(project) = &event.project_id else { continue };
            let hooks: Vec<WebhookRecord> = {
                let mut stmt = tx
                    .prepare_cached(&format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE project_id = ?1"))
                    .map_err(q("list webhooks"))?;
                let rows = stmt.query_map([project.as_str()], hook).map_err(q("list webhooks"))?;
                rows.collect::<Result<_, _>>().map_err(q("list webhooks"))?
            };
            for h in hooks.iter().filter(|h| h.wants(event.id, event.kind)) {
                made += tx
                    .execute(
                        "INSERT OR IGNORE INTO webhook_deliveries \
                         (webhook_id, event_id, event_type, status, attempts, next_at, created_at) \
                         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)",
                        params![
                            h.webhook.id.as_str(),
                            i64::try_from(event.id).unwrap_or(i64::MAX),
                            event.kind.as_str(),
                            ms(event.at)
                        ],
                    )
                    .map_err(q("insert delivery"))?;
            }
        }
        tx.execute(
            "INSERT INTO webhook_dispatch (one, last_event) VALUES (1, ?1) \
             ON CONFLICT (one) DO UPDATE SET last_event = excluded.last_event",
            [i64::try_from(last).unwrap_or(i64::MAX)],
        )
        .map_err(q("move dispatch cursor"))?;
        tx.commit().map_err(q("commit dispatch"))?;
        Ok(made)
    }

    fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<DueDelivery>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, d.webhook_id FROM webhook_deliveries d \
             WHERE d.status = 'pending' AND d.next_at <= ?1 ORDER BY d.next_at, d.id LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(q("list due deliveries"))?;
        let rows = stmt
            .query_map(params![ms(now), limit], |r| Ok((delivery(r)?, WebhookId::from_stored(r.get(9)?))))
            .map_err(q("list due deliveries"))?;
        let due: Vec<(WebhookDelivery, WebhookId)> =
            rows.collect::<Result<_, _>>().map_err(q("list due deliveries"))?;
        drop(stmt);
        drop(conn);
        let mut out = Vec::with_capacity(due.len());
        for (d, hook_id) in due {
            let Some(hook) = self.webhook(&hook_id)? else { continue };
            let filter = EventFilter {
                project: None,
                container: None,
                kind: None,
                after: d.event_id - 1,
                limit: 1,
                newest: false,
            };
            let Some(event) = self.events(&filter)?.into_iter().find(|e| e.id == d.event_id) else { continue };
            out.push(DueDelivery { delivery: d, hook, event });
        }
        Ok(out)
    }

    fn finish_attempt(&self, id: u64, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, last_code = ?3, last_error = ?4, \
                 next_at = ?5 WHERE id = ?1",
                params![
                    i64::try_from(id).unwrap_or(i64::MAX),
                    attempt.status.as_str(),
                    attempt.code,
                    attempt.error,
                    attempt.next_at.map(ms),
                ],
            )
            .map_err(q("record delivery attempt"))?;
        Ok(())
    }

    fn deliveries(&self, webhook: &WebhookId, limit: u32) -> Result<Vec<WebhookDelivery>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = ?1 ORDER BY d.id DESC LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(q("list deliveries"))?;
        let rows = stmt.query_map(params![webhook.as_str(), limit], delivery).map_err(q("list deliveries"))?;
        rows.collect::<Result<_, _>>().map_err(q("list deliveries"))
    }

    fn prune_deliveries(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn()
            .execute("DELETE FROM webhook_deliveries WHERE created_at < ?1 AND status != 'pending'", [ms(before)])
            .map_err(q("prune deliveries"))
    }
}
