//! Projects: create, read, list and delete, scoped to the caller.

use cubby_model::{CreateProject, Project, ProjectId, UpdateProject, validate_project_name};

use crate::{Caller, Error, Platform};

impl Platform {
    /// Makes a project (admin only).
    pub fn create_project(&self, caller: &Caller, req: &CreateProject) -> Result<Project, Error> {
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        validate_project_name(&req.name)?;
        if req.max_containers == Some(0) {
            return Err(Error::invalid("max_containers", "must be at least 1, or left out for no limit"));
        }
        let quota = req.quota.unwrap_or_default();
        quota.validate()?;
        let project = Project {
            id: ProjectId::random(),
            name: req.name.clone(),
            max_containers: req.max_containers,
            created_at: cubby_model::now(),
            default_access: req.default_access.unwrap_or_default(),
            default_idle_timeout_seconds: req.default_idle_timeout_seconds.unwrap_or(0),
            quota,
        };
        self.store.insert_project(&project)?;
        tracing::info!(project = %project.id, name = %project.name, "project created");
        Ok(project)
    }

    /// A project the caller may see.
    pub fn project(&self, caller: &Caller, id: &ProjectId) -> Result<Project, Error> {
        visible(&*self.store, caller, id)
    }

    /// The projects the caller may see.
    pub fn projects(&self, caller: &Caller) -> Result<Vec<Project>, Error> {
        Ok(self.store.projects()?.into_iter().filter(|p| caller.can_access(&p.id)).collect())
    }

    /// Changes a project's container limit and defaults (admin only). The
    /// routes of its containers that use the defaults follow at once.
    pub fn update_project(&self, caller: &Caller, id: &ProjectId, req: &UpdateProject) -> Result<Project, Error> {
        let mut project = self.project(caller, id)?;
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        if req.max_containers == Some(0) {
            return Err(Error::invalid("max_containers", "must be at least 1"));
        }
        if let Some(m) = req.max_containers {
            project.max_containers = Some(m);
        }
        if let Some(a) = req.default_access {
            project.default_access = a;
        }
        if let Some(t) = req.default_idle_timeout_seconds {
            project.default_idle_timeout_seconds = t;
        }
        if let Some(quota) = req.quota {
            quota.validate()?;
            project.quota = quota;
        }
        self.store.update_project(&project)?;
        for rec in self.store.containers(Some(id), None, u32::MAX)? {
            let running = rec.status == cubby_model::ContainerStatus::Running;
            self.containers.publish_routes(&rec, running)?;
        }
        Ok(project)
    }

    /// Deletes an empty project and its tokens (admin only).
    pub fn delete_project(&self, caller: &Caller, id: &ProjectId) -> Result<(), Error> {
        self.project(caller, id)?;
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        self.store.delete_project(id)?;
        self.scripts.remove_project_files(id)?;
        self.store.append_audit(&cubby_store::AuditEntry {
            at: cubby_model::now(),
            action: "project.deleted".into(),
            project_id: Some(id.clone()),
            container_id: None,
        })?;
        Ok(())
    }
}

/// A project `caller` may see, from any store of projects: the one scope
/// check every service makes before it touches a project's things.
pub(crate) fn visible(
    store: &dyn cubby_store::ProjectStore,
    caller: &Caller,
    id: &ProjectId,
) -> Result<Project, Error> {
    let not_found = || Error::NotFound { kind: "project", id: id.to_string() };
    if !ProjectId::is_well_formed(id.as_str()) || !caller.can_access(id) {
        return Err(not_found());
    }
    store.project(id)?.ok_or_else(not_found)
}
