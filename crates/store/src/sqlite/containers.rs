//! Container rows: their columns and decoding.

use std::collections::BTreeMap;

use cubby_model::{AccessMode, ByteSize, ContainerId, ContainerStatus, Limits, ProjectId};
use rusqlite::Row;

use super::from_ms;
use crate::{ContainerRecord, StoreError};

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
        let corrupt = |detail: String| StoreError::Corrupt { what: "container", key: self.id.clone(), detail };
        let command: Vec<String> = serde_json::from_str(&self.command).map_err(|e| corrupt(format!("command: {e}")))?;
        let env: BTreeMap<String, String> =
            serde_json::from_str(&self.env).map_err(|e| corrupt(format!("env: {e}")))?;
        let status =
            ContainerStatus::parse(&self.status).ok_or_else(|| corrupt(format!("unknown status `{}`", self.status)))?;
        let memory = u64::try_from(self.memory).map_err(|_| corrupt("negative memory".into()))?;
        Ok(ContainerRecord {
            id: ContainerId(self.id),
            project_id: ProjectId(self.project_id),
            name: self.name,
            image: self.image,
            command,
            env,
            port: self.port,
            limits: Limits {
                cpu: self.cpu,
                memory: ByteSize(memory),
                pids: self.pids,
                disk: self.disk_limit.and_then(|d| u64::try_from(d).ok()).map(ByteSize),
            },
            workdir: self.workdir,
            user: self.user,
            status,
            slot: self.slot,
            max_snapshots: self.max_snapshots,
            frozen: self.frozen_layer.zip(self.frozen_generation.and_then(|g| u64::try_from(g).ok())),
            access: self.access.as_deref().and_then(AccessMode::parse),
            autostart: self.autostart,
            idle_timeout: self.idle_timeout,
            claims_epoch: self.claims_epoch,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
        })
    }
}
