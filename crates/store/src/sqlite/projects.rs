//! Projects in SQLite; a quota is a JSON column.

use cubby_model::{AccessMode, Project, ProjectId};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, corrupt_column, from_ms, insert_error, ms, q};
use crate::{ProjectStore, StoreError};

const PROJECT_COLUMNS: &str = "id, name, max_containers, created_at, default_access, default_idle_timeout, quota";

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    let access: String = row.get(4)?;
    let quota: String = row.get(6)?;
    Ok(Project {
        id: ProjectId::from_stored(row.get(0)?),
        name: row.get(1)?,
        max_containers: row.get(2)?,
        created_at: from_ms(row.get(3)?),
        default_access: AccessMode::parse(&access)
            .ok_or_else(|| corrupt_column(4, format!("unknown access mode `{access}`")))?,
        default_idle_timeout_seconds: row.get(5)?,
        quota: serde_json::from_str(&quota).map_err(|e| corrupt_column(6, format!("quota: {e}")))?,
    })
}

impl ProjectStore for SqliteStore {
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
            .map_err(insert_error("insert project", "project", project.name.clone()))?;
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
}
