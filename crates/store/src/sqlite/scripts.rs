//! Project secrets and script invocation logs in SQLite. Both go with
//! their project (`ON DELETE CASCADE`); logs keep only the latest entries.

use std::collections::BTreeMap;

use cubby_model::{ProjectId, ScriptInvocation, ScriptLogLine};
use rusqlite::{Connection, params};

use super::{SqliteStore, corrupt_column, from_ms, json, ms, q};
use crate::{ScriptStore, StoreError};

pub(super) fn set_secrets(
    conn: &mut Connection,
    project: &ProjectId,
    secrets: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(q("begin set secrets"))?;
    tx.execute("DELETE FROM secrets WHERE project_id = ?1", [project.as_str()]).map_err(q("clear secrets"))?;
    for (name, value) in secrets {
        tx.execute(
            "INSERT INTO secrets (project_id, name, value) VALUES (?1, ?2, ?3)",
            params![project.as_str(), name, value],
        )
        .map_err(q("insert secret"))?;
    }
    tx.commit().map_err(q("commit secrets"))
}

pub(super) fn secrets(conn: &Connection, project: &ProjectId) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT name, value FROM secrets WHERE project_id = ?1").map_err(q("list secrets"))?;
    let rows = stmt.query_map([project.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).map_err(q("list secrets"))?;
    rows.collect::<Result<_, _>>().map_err(q("list secrets"))
}

pub(super) fn append_log(
    conn: &mut Connection,
    project: &ProjectId,
    e: &ScriptInvocation,
    keep: u32,
) -> Result<(), StoreError> {
    let logs = json(&e.logs);
    let tx = conn.transaction().map_err(q("begin script log"))?;
    tx.execute(
        "INSERT INTO script_logs (project_id, at, script, method, path, status, duration_ms, error, logs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            project.as_str(),
            ms(e.at),
            e.script,
            e.method,
            e.path,
            e.status,
            i64::try_from(e.duration_ms).unwrap_or(i64::MAX),
            e.error,
            logs
        ],
    )
    .map_err(q("insert script log"))?;
    tx.execute(
        "DELETE FROM script_logs WHERE project_id = ?1 AND id <= (
             SELECT id FROM script_logs WHERE project_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![project.as_str(), keep],
    )
    .map_err(q("trim script logs"))?;
    tx.commit().map_err(q("commit script log"))
}

pub(super) fn logs(conn: &Connection, project: &ProjectId, limit: u32) -> Result<Vec<ScriptInvocation>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at, script, method, path, status, duration_ms, error, logs FROM script_logs
             WHERE project_id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(q("list script logs"))?;
    let rows = stmt
        .query_map(params![project.as_str(), limit], |r| {
            let logs: String = r.get(7)?;
            let duration: i64 = r.get(5)?;
            Ok(ScriptInvocation {
                at: from_ms(r.get(0)?),
                script: r.get(1)?,
                method: r.get(2)?,
                path: r.get(3)?,
                status: r.get(4)?,
                duration_ms: u64::try_from(duration).map_err(|_| corrupt_column(5, format!("duration {duration}")))?,
                error: r.get(6)?,
                logs: serde_json::from_str::<Vec<ScriptLogLine>>(&logs)
                    .map_err(|e| corrupt_column(7, format!("logs: {e}")))?,
            })
        })
        .map_err(q("list script logs"))?;
    rows.collect::<Result<_, _>>().map_err(q("list script logs"))
}

impl ScriptStore for SqliteStore {
    fn set_secrets(
        &self,
        project: &ProjectId,
        secrets: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        set_secrets(&mut self.conn(), project, secrets)
    }

    fn secrets(&self, project: &ProjectId) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        secrets(&self.conn(), project)
    }

    fn append_script_log(
        &self,
        project: &ProjectId,
        entry: &cubby_model::ScriptInvocation,
        keep: u32,
    ) -> Result<(), StoreError> {
        append_log(&mut self.conn(), project, entry, keep)
    }

    fn script_logs(&self, project: &ProjectId, limit: u32) -> Result<Vec<cubby_model::ScriptInvocation>, StoreError> {
        logs(&self.conn(), project, limit)
    }
}
