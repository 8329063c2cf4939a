//! Layers and snapshots in SQLite. A layer is referenced by the containers
//! and snapshots that list it (join tables keep the order) and by images;
//! one that nothing references is garbage.

use cubby_model::{ContainerId, LayerId, SnapshotId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, from_ms, insert_error, ms, q};
use crate::{LayerKind, LayerRecord, LayerStore, SnapshotRecord, StoreError};

const LAYER_COLUMNS: &str = "id, kind, subvolume, root, created_at, source_container, source_generation";

type RawLayer = (String, String, String, String, i64, Option<String>, Option<i64>);

fn raw_layer(row: &Row<'_>) -> rusqlite::Result<RawLayer> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn decode((id, kind, subvolume, root, created, source, generation): RawLayer) -> Result<LayerRecord, StoreError> {
    Ok(LayerRecord {
        kind: LayerKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            what: "layer",
            key: id.clone(),
            detail: format!("kind `{kind}`"),
        })?,
        id: LayerId::from_stored(id),
        subvolume,
        root,
        created_at: from_ms(created),
        source_container: source.map(ContainerId::from_stored),
        source_generation: generation.and_then(|g| u64::try_from(g).ok()),
    })
}

fn collect(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<LayerRecord>, StoreError> {
    let raws: Vec<RawLayer> = {
        let mut stmt = conn.prepare_cached(sql).map_err(q("list layers"))?;
        let rows = stmt.query_map(args, raw_layer).map_err(q("list layers"))?;
        rows.collect::<Result<_, _>>().map_err(q("list layers"))?
    };
    raws.into_iter().map(decode).collect()
}

pub(super) fn insert(conn: &Connection, l: &LayerRecord) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO layers ({LAYER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            l.id.as_str(),
            l.kind.as_str(),
            l.subvolume,
            l.root,
            ms(l.created_at),
            l.source_container.as_ref().map(ContainerId::as_str),
            l.source_generation.and_then(|g| i64::try_from(g).ok()),
        ],
    )
    .map_err(q("insert layer"))?;
    Ok(())
}

pub(super) fn get(conn: &Connection, id: &LayerId) -> Result<Option<LayerRecord>, StoreError> {
    conn.query_row(&format!("SELECT {LAYER_COLUMNS} FROM layers WHERE id = ?1"), [id.as_str()], raw_layer)
        .optional()
        .map_err(q("get layer"))?
        .map(decode)
        .transpose()
}

pub(super) fn all(conn: &Connection) -> Result<Vec<LayerRecord>, StoreError> {
    collect(conn, &format!("SELECT {LAYER_COLUMNS} FROM layers ORDER BY id"), [])
}

pub(super) fn lowers_of_container(conn: &Connection, id: &ContainerId) -> Result<Vec<LayerRecord>, StoreError> {
    let cols = LAYER_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ");
    collect(
        conn,
        &format!(
            "SELECT {cols} FROM container_layers cl JOIN layers l ON l.id = cl.layer_id
              WHERE cl.container_id = ?1 ORDER BY cl.position"
        ),
        [id.as_str()],
    )
}

pub(super) fn write_lowers(conn: &Connection, id: &ContainerId, lowers: &[LayerId]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM container_layers WHERE container_id = ?1", [id.as_str()]).map_err(q("clear lowers"))?;
    let mut stmt = conn
        .prepare_cached("INSERT INTO container_layers (container_id, position, layer_id) VALUES (?1, ?2, ?3)")
        .map_err(q("write lowers"))?;
    for (i, layer) in lowers.iter().enumerate() {
        stmt.execute(params![id.as_str(), i64::try_from(i).unwrap_or(i64::MAX), layer.as_str()])
            .map_err(q("write lowers"))?;
    }
    Ok(())
}

pub(super) fn delete_container_rows(conn: &Connection, id: &ContainerId) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM snapshot_layers WHERE snapshot_id IN (SELECT id FROM snapshots WHERE container_id = ?1)",
        [id.as_str()],
    )
    .map_err(q("delete snapshot layers"))?;
    conn.execute("DELETE FROM snapshots WHERE container_id = ?1", [id.as_str()]).map_err(q("delete snapshots"))?;
    conn.execute("DELETE FROM container_layers WHERE container_id = ?1", [id.as_str()]).map_err(q("delete lowers"))?;
    Ok(())
}

pub(super) fn unreferenced(conn: &Connection) -> Result<Vec<LayerRecord>, StoreError> {
    collect(
        conn,
        &format!(
            "SELECT {LAYER_COLUMNS} FROM layers l
              WHERE NOT EXISTS (SELECT 1 FROM container_layers WHERE layer_id = l.id)
                AND NOT EXISTS (SELECT 1 FROM snapshots WHERE layer_id = l.id)
                AND NOT EXISTS (SELECT 1 FROM snapshot_layers WHERE layer_id = l.id)
                AND NOT EXISTS (SELECT 1 FROM images WHERE layer_id = l.id)
              ORDER BY l.id"
        ),
        [],
    )
}

pub(super) fn insert_snapshot(conn: &Connection, s: &SnapshotRecord, max: u32) -> Result<(), StoreError> {
    let n: u32 = conn
        .query_row("SELECT COUNT(*) FROM snapshots WHERE container_id = ?1", [s.container_id.as_str()], |r| r.get(0))
        .map_err(q("count snapshots"))?;
    if n >= max {
        return Err(StoreError::LimitReached { what: "container max_snapshots", limit: max });
    }
    conn.execute(
        "INSERT INTO snapshots (id, container_id, name, alias, layer_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            s.id.as_str(),
            s.container_id.as_str(),
            s.name,
            s.alias,
            s.layer_id.as_str(),
            ms(s.created_at),
            s.expires_at.map(ms)
        ],
    )
    .map_err(insert_error("insert snapshot", "snapshot", s.alias.clone().unwrap_or_else(|| s.name.clone())))?;
    let mut stmt = conn
        .prepare_cached("INSERT INTO snapshot_layers (snapshot_id, position, layer_id) VALUES (?1, ?2, ?3)")
        .map_err(q("write snapshot lowers"))?;
    for (i, layer) in s.lowers.iter().enumerate() {
        stmt.execute(params![s.id.as_str(), i64::try_from(i).unwrap_or(i64::MAX), layer.as_str()])
            .map_err(q("write snapshot lowers"))?;
    }
    Ok(())
}

/// Snapshots of one container, or (with `expired_before`) of every
/// container whose expiry has passed.
pub(super) fn snapshots(
    conn: &Connection,
    container: Option<&ContainerId>,
    expired_before: Option<i64>,
) -> Result<Vec<SnapshotRecord>, StoreError> {
    type Raw = (String, String, String, Option<String>, String, i64, Option<i64>);
    let raws: Vec<Raw> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, container_id, name, alias, layer_id, created_at, expires_at FROM snapshots
                  WHERE (?1 IS NULL OR container_id = ?1) AND (?2 IS NULL OR (expires_at IS NOT NULL AND expires_at <= ?2))
                  ORDER BY created_at, id",
            )
            .map_err(q("list snapshots"))?;
        let rows = stmt
            .query_map(params![container.map(ContainerId::as_str), expired_before], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .map_err(q("list snapshots"))?;
        rows.collect::<Result<_, _>>().map_err(q("list snapshots"))?
    };
    let mut out = Vec::with_capacity(raws.len());
    let mut lowers_stmt = conn
        .prepare_cached("SELECT layer_id FROM snapshot_layers WHERE snapshot_id = ?1 ORDER BY position")
        .map_err(q("list snapshot lowers"))?;
    for (id, container_id, name, alias, layer_id, created, expires) in raws {
        let lowers: Vec<LayerId> = lowers_stmt
            .query_map([&id], |r| r.get(0).map(LayerId::from_stored))
            .map_err(q("list snapshot lowers"))?
            .collect::<Result<_, _>>()
            .map_err(q("list snapshot lowers"))?;
        out.push(SnapshotRecord {
            id: SnapshotId::from_stored(id),
            container_id: ContainerId::from_stored(container_id),
            name,
            alias,
            layer_id: LayerId::from_stored(layer_id),
            lowers,
            created_at: from_ms(created),
            expires_at: expires.map(from_ms),
        });
    }
    Ok(out)
}

impl LayerStore for SqliteStore {
    fn insert_layer(&self, layer: &LayerRecord) -> Result<(), StoreError> {
        insert(&self.conn(), layer)
    }

    fn layer(&self, id: &LayerId) -> Result<Option<LayerRecord>, StoreError> {
        get(&self.conn(), id)
    }

    fn container_lowers(&self, id: &ContainerId) -> Result<Vec<LayerRecord>, StoreError> {
        lowers_of_container(&self.conn(), id)
    }

    fn set_container_lowers(&self, id: &ContainerId, lowers: &[LayerId]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin set lowers"))?;
        write_lowers(&tx, id, lowers)?;
        tx.commit().map_err(q("commit set lowers"))
    }

    fn set_frozen_layer(&self, id: &ContainerId, layer: Option<(&LayerId, u64)>) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE containers SET frozen_layer = ?2, frozen_generation = ?3 WHERE id = ?1",
                params![id.as_str(), layer.map(|l| l.0.as_str()), layer.and_then(|l| i64::try_from(l.1).ok())],
            )
            .map_err(q("remember frozen layer"))?;
        Ok(())
    }

    fn unreferenced_layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        unreferenced(&self.conn())
    }

    fn delete_layer(&self, id: &LayerId) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM layers WHERE id = ?1", [id.as_str()]).map_err(q("delete layer"))?;
        Ok(())
    }

    fn all_layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        all(&self.conn())
    }
}
