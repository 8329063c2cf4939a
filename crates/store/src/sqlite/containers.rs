//! Containers in SQLite: their rows (columns and decoding), their state
//! transitions, and the teardowns that hold a deleted one's slot.

use std::collections::BTreeMap;

use cubby_model::{
    AccessMode, ByteSize, ContainerId, ContainerStatus, LayerId, Limits, ProjectId, Transition, Trigger,
};
use rusqlite::{OptionalExtension, Row, params};

use super::aliases::release_aliases;
use super::audit::insert_audit;
use super::{SqliteStore, from_ms, insert_error, json, layers, ms, q, rules};
use crate::{AuditEntry, ContainerRecord, ContainerStore, NewContainer, StoreError};

pub(super) const CONTAINER_COLUMNS: &str = "id, project_id, name, image, command, env, port, cpu, memory, pids, workdir, user, status, slot, created_at, updated_at, disk_limit, max_snapshots, frozen_layer, frozen_generation, access, autostart, idle_timeout, claims_epoch";

pub(super) struct RawContainer {
    id: String,
    project_id: String,
    name: String,
    image: String,
    command: String,
    env: String,
    port: u16,
    cpu: f64,
    memory: i64,
    pids: u32,
    workdir: Option<String>,
    user: Option<String>,
    status: String,
    slot: u32,
    created_at: i64,
    updated_at: i64,
    disk_limit: Option<i64>,
    max_snapshots: u32,
    frozen_layer: Option<String>,
    frozen_generation: Option<i64>,
    access: Option<String>,
    autostart: bool,
    idle_timeout: Option<u32>,
    claims_epoch: u32,
}

pub(super) fn raw_container(row: &Row<'_>) -> rusqlite::Result<RawContainer> {
    Ok(RawContainer {
        id: row.get(0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        image: row.get(3)?,
        command: row.get(4)?,
        env: row.get(5)?,
        port: row.get(6)?,
        cpu: row.get(7)?,
        memory: row.get(8)?,
        pids: row.get(9)?,
        workdir: row.get(10)?,
        user: row.get(11)?,
        status: row.get(12)?,
        slot: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        disk_limit: row.get(16)?,
        max_snapshots: row.get(17)?,
        frozen_layer: row.get(18)?,
        frozen_generation: row.get(19)?,
        access: row.get(20)?,
        autostart: row.get(21)?,
        idle_timeout: row.get(22)?,
        claims_epoch: row.get(23)?,
    })
}

impl RawContainer {
    pub(super) fn decode(self) -> Result<ContainerRecord, StoreError> {
        let key = self.id.clone();
        let corrupt = |detail: String| StoreError::Corrupt { what: "container", key: key.clone(), detail };
        let command: Vec<String> = serde_json::from_str(&self.command).map_err(|e| corrupt(format!("command: {e}")))?;
        let env: BTreeMap<String, String> =
            serde_json::from_str(&self.env).map_err(|e| corrupt(format!("env: {e}")))?;
        let status =
            ContainerStatus::parse(&self.status).ok_or_else(|| corrupt(format!("unknown status `{}`", self.status)))?;
        let memory = u64::try_from(self.memory).map_err(|_| corrupt("negative memory".into()))?;
        Ok(ContainerRecord {
            id: ContainerId::from_stored(self.id),
            project_id: ProjectId::from_stored(self.project_id),
            name: self.name,
            image: self.image,
            command,
            env,
            port: self.port,
            limits: Limits {
                cpu: self.cpu,
                memory: ByteSize(memory),
                pids: self.pids,
                disk: self
                    .disk_limit
                    .map(|d| u64::try_from(d).map(ByteSize).map_err(|_| corrupt(format!("disk limit {d}"))))
                    .transpose()?,
            },
            workdir: self.workdir,
            user: self.user,
            status,
            slot: self.slot,
            max_snapshots: self.max_snapshots,
            frozen: match (self.frozen_layer, self.frozen_generation) {
                (Some(layer), Some(g)) => Some((
                    LayerId::from_stored(layer),
                    u64::try_from(g).map_err(|_| corrupt(format!("frozen generation {g}")))?,
                )),
                (None, None) => None,
                (layer, g) => return Err(corrupt(format!("frozen layer {layer:?} without generation {g:?}"))),
            },
            access: self
                .access
                .map(|a| AccessMode::parse(&a).ok_or_else(|| corrupt(format!("unknown access mode `{a}`"))))
                .transpose()?,
            autostart: self.autostart,
            idle_timeout: self.idle_timeout,
            claims_epoch: self.claims_epoch,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
        })
    }
}

impl ContainerStore for SqliteStore {
    fn insert_container(&self, c: &NewContainer, max_slot: u32) -> Result<ContainerRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin insert container"))?;
        let max: Option<u32> = tx
            .query_row("SELECT max_containers FROM projects WHERE id = ?1", [c.project_id.as_str()], |r| r.get(0))
            .map_err(q("read project limit"))?;
        if let Some(max) = max {
            let n: u32 = tx
                .query_row("SELECT COUNT(*) FROM containers WHERE project_id = ?1", [c.project_id.as_str()], |r| {
                    r.get(0)
                })
                .map_err(q("count containers"))?;
            if n >= max {
                return Err(StoreError::LimitReached { what: "project max_containers", limit: max });
            }
        }
        // Lowest free slot (held by no container and no pending teardown):
        // 1 if free, else the first slot whose successor is free.
        let slot: u32 = tx
            .query_row(
                "WITH taken(slot) AS (SELECT slot FROM containers UNION SELECT slot FROM teardowns)
                 SELECT s FROM (
                    SELECT 1 AS s WHERE NOT EXISTS (SELECT 1 FROM taken WHERE slot = 1)
                    UNION ALL
                    SELECT slot + 1 FROM taken c
                     WHERE NOT EXISTS (SELECT 1 FROM taken d WHERE d.slot = c.slot + 1)
                 ) ORDER BY s LIMIT 1",
                [],
                |r| r.get(0),
            )
            .map_err(q("allocate slot"))?;
        if slot > max_slot {
            return Err(StoreError::LimitReached { what: "container network address", limit: max_slot });
        }
        let status = c.status;
        tx.execute(
            &format!("INSERT INTO containers ({CONTAINER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17, NULL, NULL, ?18, ?19, ?20, 0)"),
            params![
                c.id.as_str(),
                c.project_id.as_str(),
                c.name,
                c.image,
                json(&c.command),
                json(&c.env),
                c.port,
                c.limits.cpu,
                i64::try_from(c.limits.memory.0).unwrap_or(i64::MAX),
                c.limits.pids,
                c.workdir,
                c.user,
                status.as_str(),
                slot,
                ms(c.created_at),
                c.limits.disk.and_then(|d| i64::try_from(d.0).ok()),
                c.max_snapshots,
                c.access.map(AccessMode::as_str),
                c.autostart,
                c.idle_timeout,
            ],
        )
        .map_err(insert_error("insert container", "container", c.name.clone()))?;
        tx.execute(
            "INSERT INTO transitions (container_id, from_status, to_status, trigger, at, duration_ms) VALUES (?1, NULL, ?2, ?3, ?4, 0)",
            params![c.id.as_str(), status.as_str(), Trigger::Api.as_str(), ms(c.created_at)],
        )
        .map_err(q("record transition"))?;
        rules::insert(&tx, &c.id, &c.firewall)?;
        rules::write_network(&tx, &c.id, &c.network)?;
        layers::write_lowers(&tx, &c.id, &c.lowers)?;
        tx.commit().map_err(q("commit insert container"))?;
        Ok(ContainerRecord {
            id: c.id.clone(),
            project_id: c.project_id.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            command: c.command.clone(),
            env: c.env.clone(),
            port: c.port,
            limits: c.limits,
            workdir: c.workdir.clone(),
            user: c.user.clone(),
            status,
            slot,
            max_snapshots: c.max_snapshots,
            frozen: None,
            access: c.access,
            autostart: c.autostart,
            idle_timeout: c.idle_timeout,
            claims_epoch: 0,
            created_at: c.created_at,
            updated_at: c.created_at,
        })
    }

    fn container(&self, id: &ContainerId) -> Result<Option<ContainerRecord>, StoreError> {
        let raw = self
            .conn()
            .prepare_cached(&format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id.as_str()], raw_container).optional())
            .map_err(q("get container"))?;
        raw.map(RawContainer::decode).transpose()
    }

    fn containers(
        &self,
        project: Option<&ProjectId>,
        after: Option<&ContainerId>,
        limit: u32,
    ) -> Result<Vec<ContainerRecord>, StoreError> {
        let raws: Vec<RawContainer> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CONTAINER_COLUMNS} FROM containers
                      WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR id > ?2)
                      ORDER BY id LIMIT ?3"
                ))
                .map_err(q("list containers"))?;
            let rows = stmt
                .query_map(
                    params![project.map(ProjectId::as_str), after.map(ContainerId::as_str), limit],
                    raw_container,
                )
                .map_err(q("list containers"))?;
            rows.collect::<Result<_, _>>().map_err(q("list containers"))?
        };
        raws.into_iter().map(RawContainer::decode).collect()
    }

    fn count_containers(&self, project: &ProjectId) -> Result<u32, StoreError> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM containers WHERE project_id = ?1", [project.as_str()], |r| r.get(0))
            .map_err(q("count containers"))
    }

    fn set_status(
        &self,
        id: &ContainerId,
        to: ContainerStatus,
        trigger: Trigger,
        duration_ms: u64,
    ) -> Result<Option<ContainerRecord>, StoreError> {
        let now = ms(cubby_model::now());
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin set status"))?;
        let from: Option<String> = tx
            .query_row("SELECT status FROM containers WHERE id = ?1", [id.as_str()], |r| r.get(0))
            .optional()
            .map_err(q("read status"))?;
        let Some(from) = from else { return Ok(None) };
        tx.execute(
            "UPDATE containers SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id.as_str(), to.as_str(), now],
        )
        .map_err(q("update status"))?;
        tx.execute(
            "INSERT INTO transitions (container_id, from_status, to_status, trigger, at, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id.as_str(), from, to.as_str(), trigger.as_str(), now, i64::try_from(duration_ms).unwrap_or(i64::MAX)],
        )
        .map_err(q("record transition"))?;
        // A container that restarts forever must not grow its history forever.
        tx.execute(
            "DELETE FROM transitions WHERE container_id = ?1 AND id <= \
             (SELECT id FROM transitions WHERE container_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![id.as_str(), crate::TRANSITIONS_KEPT],
        )
        .map_err(q("trim transitions"))?;
        let raw = tx
            .query_row(
                &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = ?1"),
                [id.as_str()],
                raw_container,
            )
            .map_err(q("read container"))?;
        tx.commit().map_err(q("commit set status"))?;
        raw.decode().map(Some)
    }

    fn transitions(&self, id: &ContainerId) -> Result<Vec<Transition>, StoreError> {
        type Raw = (Option<String>, String, String, i64, i64);
        let raws: Vec<Raw> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT from_status, to_status, trigger, at, duration_ms FROM transitions WHERE container_id = ?1 ORDER BY id",
                )
                .map_err(q("list transitions"))?;
            let rows = stmt
                .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .map_err(q("list transitions"))?;
            rows.collect::<Result<_, _>>().map_err(q("list transitions"))?
        };
        raws.into_iter()
            .map(|(from, to, trigger, at, duration)| {
                let corrupt = |detail: String| StoreError::Corrupt { what: "transition", key: id.to_string(), detail };
                let status = |s: &str| ContainerStatus::parse(s).ok_or_else(|| corrupt(format!("status `{s}`")));
                Ok(Transition {
                    from: from.as_deref().map(status).transpose()?,
                    to: status(&to)?,
                    trigger: Trigger::parse(&trigger).ok_or_else(|| corrupt(format!("trigger `{trigger}`")))?,
                    at: from_ms(at),
                    duration_ms: u64::try_from(duration).map_err(|_| corrupt(format!("duration {duration}")))?,
                })
            })
            .collect()
    }

    fn delete_container(&self, id: &ContainerId, audit: &AuditEntry) -> Result<bool, StoreError> {
        self.delete_container_rows(id, audit, false)
    }

    fn delete_container_deferred(&self, id: &ContainerId, audit: &AuditEntry) -> Result<bool, StoreError> {
        self.delete_container_rows(id, audit, true)
    }

    fn teardowns(&self) -> Result<Vec<(ContainerId, u32)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT container_id, slot FROM teardowns").map_err(q("list teardowns"))?;
        let rows = stmt
            .query_map([], |r| Ok((ContainerId::from_stored(r.get(0)?), r.get(1)?)))
            .map_err(q("list teardowns"))?;
        rows.collect::<Result<_, _>>().map_err(q("list teardowns"))
    }

    fn finish_teardown(&self, id: &ContainerId) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM teardowns WHERE container_id = ?1", [id.as_str()])
            .map_err(q("finish teardown"))?;
        Ok(())
    }

    fn update_container(&self, c: &ContainerRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE containers SET name = ?2, env = ?3, cpu = ?4, memory = ?5, pids = ?6, disk_limit = ?7,
                        max_snapshots = ?8, updated_at = ?9, access = ?10, autostart = ?11, idle_timeout = ?12,
                        image = ?13
                  WHERE id = ?1",
                params![
                    c.id.as_str(),
                    c.name,
                    json(&c.env),
                    c.limits.cpu,
                    i64::try_from(c.limits.memory.0).unwrap_or(i64::MAX),
                    c.limits.pids,
                    c.limits.disk.and_then(|d| i64::try_from(d.0).ok()),
                    c.max_snapshots,
                    ms(cubby_model::now()),
                    c.access.map(AccessMode::as_str),
                    c.autostart,
                    c.idle_timeout,
                    c.image,
                ],
            )
            .map_err(insert_error("update container", "container", c.name.clone()))?;
        Ok(())
    }

    fn bump_claims_epoch(&self, id: &ContainerId) -> Result<u32, StoreError> {
        let conn = self.conn();
        conn.execute("UPDATE containers SET claims_epoch = claims_epoch + 1 WHERE id = ?1", [id.as_str()])
            .map_err(q("revoke claims"))?;
        conn.query_row("SELECT claims_epoch FROM containers WHERE id = ?1", [id.as_str()], |r| r.get(0))
            .map_err(q("read claims epoch"))
    }
}

impl SqliteStore {
    fn delete_container_rows(&self, id: &ContainerId, audit: &AuditEntry, keep_slot: bool) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin delete container"))?;
        tx.execute("DELETE FROM transitions WHERE container_id = ?1", [id.as_str()])
            .map_err(q("delete transitions"))?;
        rules::delete(&tx, id)?;
        layers::delete_container_rows(&tx, id)?;
        release_aliases(&tx, "a.container_id = ?1", id.as_str())?;
        tx.execute("DELETE FROM aliases WHERE container_id = ?1", [id.as_str()]).map_err(q("delete aliases"))?;
        tx.execute("DELETE FROM domains WHERE container_id = ?1", [id.as_str()]).map_err(q("delete domains"))?;
        // Its usage rows stay (ids and numbers) for the last invoice; the
        // cursor of its counters goes.
        tx.execute("DELETE FROM usage_cursors WHERE container_id = ?1", [id.as_str()])
            .map_err(q("delete usage cursor"))?;
        if keep_slot {
            // The slot stays taken until the host side is gone.
            tx.execute(
                "INSERT OR IGNORE INTO teardowns (container_id, slot, created_at)
                 SELECT id, slot, ?2 FROM containers WHERE id = ?1",
                params![id.as_str(), ms(audit.at)],
            )
            .map_err(q("record teardown"))?;
        }
        let n = tx.execute("DELETE FROM containers WHERE id = ?1", [id.as_str()]).map_err(q("delete container"))?;
        insert_audit(&tx, audit)?;
        tx.commit().map_err(q("commit delete container"))?;
        Ok(n > 0)
    }
}
