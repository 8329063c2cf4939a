//! Containers: one tenant each.
//!
//! Host resources of container `{id}` (slot `{n}`), all derived from the id
//! and slot so cleanup can find them even when a step failed midway:
//!
//! | what                      | where                                         |
//! |---------------------------|-----------------------------------------------|
//! | own subvolume             | `{pool}/containers/{id}` (`upper/`, `work/`)  |
//! | bundle, mount point, files| `{run}/containers/{id}/`                      |
//! | output FIFO               | `{run}/containers/{id}/output`                |
//! | init's exit report        | `{run}/containers/{id}/exit`                  |
//! | network namespace         | `{run}/netns/{id}`                            |
//! | veth (host side)          | `{prefix}-{n}`                                |
//! | cgroup                    | `/{prefix}/{id}` in every hierarchy           |
//! | runtime state             | `{run}/runc/{id}`                             |
//! | output log                | `{data}/logs/{id}.log`                        |
//!
//! Each operation lives in its own file: [`create`](self::create),
//! lifecycle (start, stop, restart, exit monitoring), delete, and exec and
//! logs.

mod copy;
mod create;
mod delete;
mod exec;
pub mod export;
mod lifecycle;
pub mod metrics;
pub(crate) mod output;
mod restore;
mod rollout;
mod service;
mod snapshots;
mod stats;
mod sync;
mod update;
pub mod usage;
mod watch;

pub use service::ContainerService;
pub(crate) use service::Parts;
pub use update::EnvChange;
pub use usage::UsageWindow;

use std::path::PathBuf;

use cubby_model::{Container, ContainerId, Page, ProjectId, Transition};

use cubby_runtime::logs::{LogFile, OutputPipe};
use cubby_store::ContainerRecord;

use crate::inventory::Layout;
use crate::routes::{Route, label};

use crate::{Caller, Error};

/// Largest page of a container list.
pub const MAX_PAGE: u32 = 500;

/// Where each host resource of one container lives.
#[derive(Debug, Clone)]
pub(crate) struct ContainerPaths {
    pub subvolume: PathBuf,
    pub upper: PathBuf,
    /// The pinned user namespace that owns `netns` (when the pool uses
    /// user namespaces).
    pub userns: PathBuf,
    pub work: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub process_file: PathBuf,
    /// Where the init writes its workload's exit status (`/.cubby/exit`
    /// inside).
    pub exit_report: PathBuf,
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub netns: PathBuf,
    /// The FIFO its stdout and stderr write to.
    pub output: OutputPipe,
    pub log: LogFile,
    pub cgroup: String,
    pub veth: String,
}

impl ContainerPaths {
    /// Where the resources of container `id` in slot `slot` are, in the
    /// instance `layout`.
    pub(crate) fn of(layout: &Layout, id: &ContainerId, slot: u32) -> Self {
        let subvolume = layout.container_subvolumes().join(id.as_str());
        let [bundles, netns, userns] = layout.tenant_run_dirs();
        let bundle = bundles.join(id.as_str());
        ContainerPaths {
            upper: subvolume.join("upper"),
            work: subvolume.join("work"),
            subvolume,
            rootfs: bundle.join("rootfs"),
            process_file: bundle.join("process.json"),
            exit_report: bundle.join("exit"),
            resolv_conf: bundle.join("resolv.conf"),
            hosts: bundle.join("hosts"),
            hostname: bundle.join("hostname"),
            output: OutputPipe::new(bundle.join("output")),
            bundle,
            netns: netns.join(id.as_str()),
            userns: userns.join(id.as_str()),
            log: LogFile::new(&layout.data_dir.join("logs"), id.as_str()),
            cgroup: layout.cgroup(id.as_str()),
            veth: layout.veth(slot),
        }
    }
}

impl ContainerService {
    pub(crate) fn paths(&self, id: &ContainerId, slot: u32) -> ContainerPaths {
        ContainerPaths::of(&self.config.layout(), id, slot)
    }

    /// The URL of a container.
    pub fn url(&self, name: &str, project: &str) -> String {
        self.url_of_label(&label(name, project))
    }

    /// The URL of a host label (a container, a port or an alias).
    pub fn url_of_label(&self, label: &str) -> String {
        self.config.urls().of_label(label)
    }

    pub(crate) fn project_name(&self, id: &ProjectId) -> Result<String, Error> {
        Ok(self.store.project(id)?.map(|p| p.name).unwrap_or_default())
    }

    /// A container's effective access mode and idle timeout: its own, else
    /// its project's defaults.
    pub(crate) fn effective(&self, rec: &ContainerRecord) -> Result<(cubby_model::AccessMode, u32), Error> {
        let project = self.store.project(&rec.project_id)?;
        let access = rec.access.or(project.as_ref().map(|p| p.default_access)).unwrap_or_default();
        let idle = rec.idle_timeout.or(project.map(|p| p.default_idle_timeout_seconds)).unwrap_or(0);
        Ok((access, idle))
    }

    pub(crate) fn view(&self, rec: &ContainerRecord) -> Result<Container, Error> {
        let project = self.project_name(&rec.project_id)?;
        let (access, idle) = self.effective(rec)?;
        Ok(Container {
            id: rec.id.clone(),
            project_id: rec.project_id.clone(),
            name: rec.name.clone(),
            image: rec.image.clone(),
            command: rec.command.clone(),
            environment_vars: rec.env.clone(),
            port: rec.port,
            limits: rec.limits,
            status: rec.status,
            url: self.url(&rec.name, &project),
            disk: None,
            max_snapshots: rec.max_snapshots,
            access,
            autostart: rec.autostart,
            idle_timeout_seconds: idle,
            address: self.network.address(rec.slot).map(|a| a.to_string()).unwrap_or_default(),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        })
    }

    pub(crate) fn route_of(&self, rec: &ContainerRecord, running: bool) -> Result<(String, Route), Error> {
        let project = self.project_name(&rec.project_id)?;
        let address = self.network.address(rec.slot)?;
        let (access, _) = self.effective(rec)?;
        Ok((
            label(&rec.name, &project),
            Route {
                container_id: rec.id.clone(),
                project_id: rec.project_id.clone(),
                address,
                port: rec.port,
                running,
                access,
                autostart: rec.autostart,
            },
        ))
    }

    /// Puts a container's routes (its own label and its aliases) in the table.
    pub(crate) fn publish_routes(&self, rec: &ContainerRecord, running: bool) -> Result<(), Error> {
        let (label, route) = self.route_of(rec, running)?;
        self.access.publish(label, route)
    }

    /// The record of a container the caller may see.
    pub(crate) fn record(&self, caller: &Caller, id: &ContainerId) -> Result<ContainerRecord, Error> {
        visible(&*self.store, caller, id)
    }

    /// A container, with its disk use.
    pub fn container(&self, caller: &Caller, id: &ContainerId) -> Result<Container, Error> {
        self.detailed_view(&self.record(caller, id)?)
    }

    /// The view of one container with its disk use (which costs a few
    /// reads of sysfs, so lists leave it out).
    pub(crate) fn detailed_view(&self, rec: &ContainerRecord) -> Result<Container, Error> {
        let mut view = self.view(rec)?;
        let subvolume = self.pool.container(rec.id.as_str());
        if let Ok(Some(usage)) = self.host.btrfs.disk_usage(&subvolume) {
            view.disk = Some(cubby_model::DiskUse {
                exclusive_bytes: usage.exclusive,
                referenced_bytes: usage.referenced,
                limit_bytes: usage.limit,
            });
        }
        Ok(view)
    }

    /// A page of containers, of one project or of every project the caller
    /// may see, ordered by id.
    pub fn list(
        &self,
        caller: &Caller,
        project: Option<&ProjectId>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Container>, Error> {
        if let Some(p) = project {
            crate::projects::visible(&*self.store, caller, p)?;
        }
        let scope = project.or(caller.scope());
        let limit = limit.clamp(1, MAX_PAGE);
        // The cursor is only a sort key: any text pages from where it sorts.
        let after = cursor.map(|c| ContainerId::from_stored(c.to_string()));
        let records = self.store.containers(scope, after.as_ref(), limit + 1)?;
        let more = records.len() > limit as usize;
        let items: Vec<Container> =
            records.iter().take(limit as usize).map(|r| self.view(r)).collect::<Result<_, _>>()?;
        let next_cursor = if more { items.last().map(|c| c.id.to_string()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// The container of a project with this name, if any.
    pub fn container_by_name(
        &self,
        caller: &Caller,
        project: &ProjectId,
        name: &str,
    ) -> Result<Option<Container>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let found = self.store.containers(Some(project), None, u32::MAX)?.into_iter().find(|r| r.name == name);
        found.map(|r| self.view(&r)).transpose()
    }

    /// The recorded state transitions of a container, oldest first.
    pub fn transitions(&self, caller: &Caller, id: &ContainerId) -> Result<Vec<Transition>, Error> {
        self.record(caller, id)?;
        Ok(self.store.transitions(id)?)
    }
}

/// A container `caller` may see, from any store of containers: the scope
/// check every service makes before it touches a container.
pub(crate) fn visible(
    store: &dyn cubby_store::ContainerStore,
    caller: &Caller,
    id: &ContainerId,
) -> Result<ContainerRecord, Error> {
    let not_found = || Error::NotFound { kind: "container", id: id.to_string() };
    if !ContainerId::is_well_formed(id.as_str()) {
        return Err(not_found());
    }
    match store.container(id)? {
        Some(rec) if caller.can_access(&rec.project_id) => Ok(rec),
        _ => Err(not_found()),
    }
}
