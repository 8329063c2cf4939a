//! [`SqliteStore`]: the [`Store`] in one SQLite file (WAL mode), or in
//! memory for tests.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cubby_model::{
    AccessMode, ContainerId, ContainerStatus, Firewall, Image, ImageConfig, ImageSource, NetworkRules, Project,
    ProjectId, Timestamp, Token, TokenId, Transition, Trigger,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use crate::migrations::migrations;
use crate::{
    AliasRecord, AuditEntry, ContainerRecord, ImageRecord, LayerRecord, NewContainer, SnapshotRecord, Store,
    StoreError, TokenRecord,
};

/// The state in SQLite. One connection behind a mutex: every call is a
/// short transaction, and WAL lets readers of other processes (`cubby
/// doctor`) look at it meanwhile.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

mod containers;
mod layers;
mod scripts;

use containers::{CONTAINER_COLUMNS, RawContainer, raw_container};

pub(super) fn q(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

pub(super) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(super) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        Self::init(conn)
    }

    /// A private database in memory (for tests and fakes).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn =
            Connection::open_in_memory().map_err(|source| StoreError::Open { path: ":memory:".into(), source })?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(q("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("enable foreign keys"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(q("set busy timeout"))?;
        migrations().to_latest(&mut conn).map_err(|source| StoreError::Migrate { source })?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const PROJECT_COLUMNS: &str = "id, name, max_containers, created_at, default_access, default_idle_timeout, quota";

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    let access: String = row.get(4)?;
    let quota: String = row.get(6)?;
    let corrupt = |column: usize, detail: String| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, detail.into())
    };
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        max_containers: row.get(2)?,
        created_at: from_ms(row.get(3)?),
        default_access: AccessMode::parse(&access)
            .ok_or_else(|| corrupt(4, format!("unknown access mode `{access}`")))?,
        default_idle_timeout_seconds: row.get(5)?,
        quota: serde_json::from_str(&quota).map_err(|e| corrupt(6, format!("quota: {e}")))?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let hash: Vec<u8> = row.get(3)?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    Ok(TokenRecord {
        token: Token {
            id: TokenId(row.get(0)?),
            project_id: row.get::<_, Option<String>>(1)?.map(ProjectId),
            name: row.get(2)?,
            created_at: from_ms(row.get(4)?),
        },
        hash: fixed,
    })
}

type RawImage = (String, String, String, i64, String, i64, Option<String>);

fn image_from_row(row: &Row<'_>) -> rusqlite::Result<RawImage> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn decode_image(raw: RawImage) -> Result<ImageRecord, StoreError> {
    let (name, source, config, size, digest, created, layer_id) = raw;
    let corrupt = |detail: String| StoreError::Corrupt { what: "image", key: name.clone(), detail };
    let source = ImageSource::parse(&source).ok_or_else(|| corrupt(format!("unknown source `{source}`")))?;
    let config: ImageConfig = serde_json::from_str(&config).map_err(|e| corrupt(format!("config: {e}")))?;
    Ok(ImageRecord {
        image: Image {
            name: name.clone(),
            source,
            config,
            size_bytes: u64::try_from(size).unwrap_or(0),
            created_at: from_ms(created),
            warnings: Vec::new(),
        },
        digest,
        layer_id: layer_id.unwrap_or_default(),
    })
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

impl Store for SqliteStore {
    fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        self.conn()
            .execute(
                &format!("INSERT INTO projects ({PROJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    project.id.as_str(),
                    project.name,
                    project.max_containers,
                    ms(project.created_at),
                    project.default_access.as_str(),
                    project.default_idle_timeout_seconds,
                    serde_json::to_string(&project.quota).expect("a quota serialises"),
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate { what: "project", name: project.name.clone() }
                } else {
                    StoreError::Query { op: "insert project", source: e }
                }
            })?;
        Ok(())
    }

    fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"),
                [id.as_str()],
                project_from_row,
            )
            .optional()
            .map_err(q("get project"))
    }

    fn projects(&self) -> Result<Vec<Project>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name"))
            .map_err(q("list projects"))?;
        let rows = stmt.query_map([], project_from_row).map_err(q("list projects"))?;
        rows.collect::<Result<_, _>>().map_err(q("list projects"))
    }

    fn update_project(&self, p: &Project) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE projects SET max_containers = ?2, default_access = ?3, default_idle_timeout = ?4, quota = ?5 \
                 WHERE id = ?1",
                params![
                    p.id.as_str(),
                    p.max_containers,
                    p.default_access.as_str(),
                    p.default_idle_timeout_seconds,
                    serde_json::to_string(&p.quota).expect("a quota serialises"),
                ],
            )
            .map_err(q("update project"))?;
        Ok(())
    }

    fn delete_project(&self, id: &ProjectId) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n: u32 = conn
            .query_row("SELECT COUNT(*) FROM containers WHERE project_id = ?1", [id.as_str()], |r| r.get(0))
            .map_err(q("count containers"))?;
        if n > 0 {
            return Err(StoreError::InUse { what: "project", id: id.to_string(), by: format!("{n} containers") });
        }
        let deleted = conn.execute("DELETE FROM projects WHERE id = ?1", [id.as_str()]).map_err(q("delete project"))?;
        Ok(deleted > 0)
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO tokens (id, project_id, name, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    token.token.id.as_str(),
                    token.token.project_id.as_ref().map(ProjectId::as_str),
                    token.token.name,
                    &token.hash[..],
                    ms(token.token.created_at)
                ],
            )
            .map_err(q("insert token"))?;
        Ok(())
    }

    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.conn()
            .prepare_cached("SELECT id, project_id, name, hash, created_at FROM tokens WHERE hash = ?1")
            .and_then(|mut s| s.query_row([&hash[..]], token_from_row).optional())
            .map_err(q("find token"))
    }

    fn tokens(&self, project: Option<&ProjectId>) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, project_id, name, hash, created_at FROM tokens WHERE project_id IS ?1 ORDER BY created_at, id",
            )
            .map_err(q("list tokens"))?;
        let rows = stmt.query_map([project.map(ProjectId::as_str)], token_from_row).map_err(q("list tokens"))?;
        rows.collect::<Result<_, _>>().map_err(q("list tokens"))
    }

    fn delete_token(&self, id: &TokenId) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM tokens WHERE id = ?1", [id.as_str()]).map_err(q("delete token"))?;
        Ok(n > 0)
    }

    fn insert_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        let i = &image.image;
        self.conn()
            .execute(
                "INSERT INTO images (name, source, config, size_bytes, digest, created_at, layer_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    i.name,
                    i.source.as_str(),
                    json(&i.config),
                    i64::try_from(i.size_bytes).unwrap_or(i64::MAX),
                    image.digest,
                    ms(i.created_at),
                    image.layer_id,
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate { what: "image", name: i.name.clone() }
                } else {
                    StoreError::Query { op: "insert image", source: e }
                }
            })?;
        Ok(())
    }

    fn image(&self, name: &str) -> Result<Option<ImageRecord>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                "SELECT name, source, config, size_bytes, digest, created_at, layer_id FROM images WHERE name = ?1",
                [name],
                image_from_row,
            )
            .optional()
            .map_err(q("get image"))?;
        raw.map(decode_image).transpose()
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let raws: Vec<_> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, source, config, size_bytes, digest, created_at, layer_id FROM images ORDER BY name",
                )
                .map_err(q("list images"))?;
            let rows = stmt.query_map([], image_from_row).map_err(q("list images"))?;
            rows.collect::<Result<_, _>>().map_err(q("list images"))?
        };
        raws.into_iter().map(decode_image).collect()
    }

    fn delete_image(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM images WHERE name = ?1", [name]).map_err(q("delete image"))?;
        Ok(n > 0)
    }

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
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate { what: "container", name: c.name.clone() }
            } else {
                StoreError::Query { op: "insert container", source: e }
            }
        })?;
        tx.execute(
            "INSERT INTO transitions (container_id, from_status, to_status, trigger, at, duration_ms) VALUES (?1, NULL, ?2, ?3, ?4, 0)",
            params![c.id.as_str(), status.as_str(), Trigger::Api.as_str(), ms(c.created_at)],
        )
        .map_err(q("record transition"))?;
        crate::firewall::insert(&tx, &c.id, &c.firewall)?;
        crate::firewall::write_network(&tx, &c.id, &c.network)?;
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
                Ok(Transition {
                    from: from.as_deref().and_then(ContainerStatus::parse),
                    to: ContainerStatus::parse(&to).ok_or_else(|| corrupt(format!("status `{to}`")))?,
                    trigger: Trigger::parse(&trigger).ok_or_else(|| corrupt(format!("trigger `{trigger}`")))?,
                    at: from_ms(at),
                    duration_ms: u64::try_from(duration).unwrap_or(0),
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
        let rows = stmt.query_map([], |r| Ok((ContainerId(r.get(0)?), r.get(1)?))).map_err(q("list teardowns"))?;
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
                        max_snapshots = ?8, updated_at = ?9, access = ?10, autostart = ?11, idle_timeout = ?12
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
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate { what: "container", name: c.name.clone() }
                } else {
                    StoreError::Query { op: "update container", source: e }
                }
            })?;
        Ok(())
    }

    fn bump_claims_epoch(&self, id: &ContainerId) -> Result<u32, StoreError> {
        let conn = self.conn();
        conn.execute("UPDATE containers SET claims_epoch = claims_epoch + 1 WHERE id = ?1", [id.as_str()])
            .map_err(q("revoke claims"))?;
        conn.query_row("SELECT claims_epoch FROM containers WHERE id = ?1", [id.as_str()], |r| r.get(0))
            .map_err(q("read claims epoch"))
    }

    fn insert_alias(&self, a: &AliasRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO aliases (name, container_id, port, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![a.name, a.container_id.as_str(), a.port, ms(a.created_at)],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate { what: "alias", name: a.name.clone() }
                } else {
                    StoreError::Query { op: "insert alias", source: e }
                }
            })?;
        Ok(())
    }

    fn alias(&self, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        Ok(self.aliases(None)?.into_iter().find(|a| a.name == name))
    }

    fn aliases(&self, container: Option<&ContainerId>) -> Result<Vec<AliasRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, container_id, port, created_at FROM aliases WHERE (?1 IS NULL OR container_id = ?1) ORDER BY name",
            )
            .map_err(q("list aliases"))?;
        let rows = stmt
            .query_map([container.map(ContainerId::as_str)], |r| {
                Ok(AliasRecord {
                    name: r.get(0)?,
                    container_id: ContainerId(r.get(1)?),
                    port: r.get(2)?,
                    created_at: from_ms(r.get(3)?),
                })
            })
            .map_err(q("list aliases"))?;
        rows.collect::<Result<_, _>>().map_err(q("list aliases"))
    }

    fn delete_alias(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin delete alias"))?;
        release_aliases(&tx, "a.name = ?1", name)?;
        let n = tx.execute("DELETE FROM aliases WHERE name = ?1", [name]).map_err(q("delete alias"))?;
        tx.commit().map_err(q("commit delete alias"))?;
        Ok(n > 0)
    }

    fn alias_release(&self, name: &str) -> Result<Option<(ProjectId, cubby_model::Timestamp)>, StoreError> {
        self.conn()
            .query_row("SELECT project_id, released_at FROM alias_releases WHERE name = ?1", [name], |r| {
                Ok((ProjectId(r.get(0)?), from_ms(r.get(1)?)))
            })
            .optional()
            .map_err(q("read alias release"))
    }

    fn insert_layer(&self, layer: &LayerRecord) -> Result<(), StoreError> {
        layers::insert(&self.conn(), layer)
    }

    fn layer(&self, id: &str) -> Result<Option<LayerRecord>, StoreError> {
        layers::get(&self.conn(), id)
    }

    fn container_lowers(&self, id: &ContainerId) -> Result<Vec<LayerRecord>, StoreError> {
        layers::lowers_of_container(&self.conn(), id)
    }

    fn set_container_lowers(&self, id: &ContainerId, lowers: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin set lowers"))?;
        layers::write_lowers(&tx, id, lowers)?;
        tx.commit().map_err(q("commit set lowers"))
    }

    fn set_frozen_layer(&self, id: &ContainerId, layer: Option<(&str, u64)>) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE containers SET frozen_layer = ?2, frozen_generation = ?3 WHERE id = ?1",
                params![id.as_str(), layer.map(|l| l.0), layer.and_then(|l| i64::try_from(l.1).ok())],
            )
            .map_err(q("remember frozen layer"))?;
        Ok(())
    }

    fn unreferenced_layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        layers::unreferenced(&self.conn())
    }

    fn delete_layer(&self, id: &str) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM layers WHERE id = ?1", [id]).map_err(q("delete layer"))?;
        Ok(())
    }

    fn all_layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        layers::all(&self.conn())
    }

    fn insert_snapshot(&self, snapshot: &SnapshotRecord, max: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin insert snapshot"))?;
        layers::insert_snapshot(&tx, snapshot, max)?;
        tx.commit().map_err(q("commit insert snapshot"))
    }

    fn snapshots(&self, container: &ContainerId) -> Result<Vec<SnapshotRecord>, StoreError> {
        layers::snapshots(&self.conn(), Some(container), None)
    }

    fn snapshot(&self, container: &ContainerId, key: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(layers::snapshots(&self.conn(), Some(container), None)?
            .into_iter()
            .find(|s| s.name == key || s.alias.as_deref() == Some(key)))
    }

    fn delete_snapshot(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM snapshots WHERE id = ?1", [id]).map_err(q("delete snapshot"))?;
        Ok(n > 0)
    }

    fn set_snapshot_alias(&self, id: &str, alias: Option<&str>) -> Result<(), StoreError> {
        self.conn().execute("UPDATE snapshots SET alias = ?2 WHERE id = ?1", params![id, alias]).map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate { what: "snapshot alias", name: alias.unwrap_or_default().to_string() }
            } else {
                StoreError::Query { op: "rename snapshot alias", source: e }
            }
        })?;
        Ok(())
    }

    fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<SnapshotRecord>, StoreError> {
        layers::snapshots(&self.conn(), None, Some(ms(now)))
    }

    fn firewall(&self, id: &ContainerId) -> Result<Firewall, StoreError> {
        crate::firewall::read(&self.conn(), id)
    }

    fn replace_firewall(&self, id: &ContainerId, firewall: &Firewall) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin replace firewall"))?;
        crate::firewall::delete(&tx, id)?;
        crate::firewall::insert(&tx, id, firewall)?;
        tx.commit().map_err(q("commit replace firewall"))
    }

    fn network(&self, id: &ContainerId) -> Result<NetworkRules, StoreError> {
        crate::firewall::read_network(&self.conn(), id)
    }

    fn set_network(&self, id: &ContainerId, rules: &NetworkRules) -> Result<(), StoreError> {
        crate::firewall::write_network(&self.conn(), id, rules)
    }

    fn set_secrets(
        &self,
        project: &ProjectId,
        secrets: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        scripts::set_secrets(&mut self.conn(), project, secrets)
    }

    fn secrets(&self, project: &ProjectId) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        scripts::secrets(&self.conn(), project)
    }

    fn append_script_log(
        &self,
        project: &ProjectId,
        entry: &cubby_model::ScriptInvocation,
        keep: u32,
    ) -> Result<(), StoreError> {
        scripts::append_log(&mut self.conn(), project, entry, keep)
    }

    fn script_logs(&self, project: &ProjectId, limit: u32) -> Result<Vec<cubby_model::ScriptInvocation>, StoreError> {
        scripts::logs(&self.conn(), project, limit)
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        insert_audit(&self.conn(), entry)
    }

    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT at, action, project_id, container_id FROM audit ORDER BY id DESC LIMIT ?1")
            .map_err(q("list audit"))?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(AuditEntry {
                    at: from_ms(r.get(0)?),
                    action: r.get(1)?,
                    project_id: r.get::<_, Option<String>>(2)?.map(ProjectId),
                    container_id: r.get::<_, Option<String>>(3)?.map(ContainerId),
                })
            })
            .map_err(q("list audit"))?;
        rows.collect::<Result<_, _>>().map_err(q("list audit"))
    }
}

impl SqliteStore {
    fn delete_container_rows(&self, id: &ContainerId, audit: &AuditEntry, keep_slot: bool) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin delete container"))?;
        tx.execute("DELETE FROM transitions WHERE container_id = ?1", [id.as_str()])
            .map_err(q("delete transitions"))?;
        crate::firewall::delete(&tx, id)?;
        layers::delete_container_rows(&tx, id)?;
        release_aliases(&tx, "a.container_id = ?1", id.as_str())?;
        tx.execute("DELETE FROM aliases WHERE container_id = ?1", [id.as_str()]).map_err(q("delete aliases"))?;
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

/// Records the aliases matching `filter` (on `aliases a`, with `?1`) as
/// released by their container's project, now.
fn release_aliases(conn: &Connection, filter: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO alias_releases (name, project_id, released_at)
             SELECT a.name, c.project_id, ?2 FROM aliases a JOIN containers c ON c.id = a.container_id WHERE {filter}"
        ),
        params![value, ms(cubby_model::now())],
    )
    .map_err(q("release aliases"))?;
    Ok(())
}

fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, action, project_id, container_id) VALUES (?1, ?2, ?3, ?4)",
        params![
            ms(entry.at),
            entry.action,
            entry.project_id.as_ref().map(ProjectId::as_str),
            entry.container_id.as_ref().map(ContainerId::as_str)
        ],
    )
    .map_err(q("append audit"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
