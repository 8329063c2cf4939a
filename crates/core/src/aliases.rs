//! Aliases: unique names that point at a container (and a port), served
//! at `http://{alias}.{domain}`. They go with their container. One global
//! namespace, so: reserved names for the operator, a cap per project, and
//! a quarantine before a released name changes project.

use cubby_model::{Alias, ContainerId, CreateAlias, RESERVED_ALIASES, validate_alias_name};
use cubby_store::{AliasRecord, ContainerRecord};

use crate::access::AccessService;
use crate::routes::{Route, label};
use crate::{Caller, Error};

/// Aliases one project may hold.
pub const MAX_ALIASES_PER_PROJECT: u32 = 100;
/// How long a name given up by one project stays out of another's reach.
pub const ALIAS_QUARANTINE: time::Duration = time::Duration::days(30);

impl AccessService {
    fn alias_view(&self, a: &AliasRecord) -> Alias {
        Alias {
            name: a.name.clone(),
            container_id: a.container_id.clone(),
            port: a.port,
            url: self.urls.of_label(&a.name),
            created_at: a.created_at,
        }
    }

    /// Makes an alias for a container the caller may see. Reserved names
    /// are the admin's; a project has at most [`MAX_ALIASES_PER_PROJECT`];
    /// and a name another project gave up less than
    /// [`ALIAS_QUARANTINE`] ago is not handed over (its users' cookies for
    /// that host would go with it).
    pub fn create_alias(&self, caller: &Caller, req: &CreateAlias) -> Result<Alias, Error> {
        validate_alias_name(&req.name)?;
        if req.port == Some(0) {
            return Err(Error::invalid("port", "give a TCP port from 1 to 65535"));
        }
        let rec = crate::containers::visible(&*self.store, caller, &req.container_id)?;
        if RESERVED_ALIASES.contains(&req.name.as_str()) && !caller.is_admin() {
            return Err(Error::invalid("name", format!("`{}` is reserved for the operator: choose another", req.name)));
        }
        if let Some((project, at)) = self.store.alias_release(&req.name)?
            && project != rec.project_id
            && cubby_model::now() - at < ALIAS_QUARANTINE
        {
            return Err(Error::Conflict {
                code: "alias_quarantined",
                message: format!(
                    "`{}` was given up by another project less than {} days ago: choose another name",
                    req.name,
                    ALIAS_QUARANTINE.whole_days()
                ),
            });
        }
        let in_project = self
            .store
            .aliases(None)?
            .iter()
            .filter(|a| {
                self.store.container(&a.container_id).ok().flatten().is_some_and(|c| c.project_id == rec.project_id)
            })
            .count();
        if in_project >= MAX_ALIASES_PER_PROJECT as usize {
            return Err(Error::LimitReached { what: "aliases per project", limit: MAX_ALIASES_PER_PROJECT });
        }
        let alias = AliasRecord {
            name: req.name.clone(),
            container_id: rec.id.clone(),
            port: req.port,
            created_at: cubby_model::now(),
        };
        self.store.insert_alias(&alias)?;
        self.republish(&rec)?;
        Ok(self.alias_view(&alias))
    }

    /// The aliases the caller may see (of one container, or all).
    pub fn aliases(&self, caller: &Caller, container: Option<&ContainerId>) -> Result<Vec<Alias>, Error> {
        if let Some(id) = container {
            crate::containers::visible(&*self.store, caller, id)?;
        }
        let mut out = Vec::new();
        for a in self.store.aliases(container)? {
            if crate::containers::visible(&*self.store, caller, &a.container_id).is_ok() {
                out.push(self.alias_view(&a));
            }
        }
        Ok(out)
    }

    /// Removes an alias of a container the caller may see.
    pub fn delete_alias(&self, caller: &Caller, name: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound { kind: "alias", id: name.to_string() };
        let alias = self.store.alias(name)?.ok_or_else(not_found)?;
        let rec = crate::containers::visible(&*self.store, caller, &alias.container_id).map_err(|_| not_found())?;
        self.store.delete_alias(name)?;
        self.republish(&rec)?;
        Ok(())
    }

    /// Puts a container's routes in the table: its own `label`, each of its
    /// aliases and its verified custom domains, all leading where `route`
    /// does.
    pub(crate) fn publish(&self, label: String, route: Route) -> Result<(), Error> {
        self.routes.remove(&route.container_id);
        for alias in self.store.aliases(Some(&route.container_id))? {
            let port = alias.port.unwrap_or(route.port);
            self.routes.insert(alias.name.clone(), Route { port, ..route.clone() });
        }
        // Verified custom domains: a whole hostname, which no label is
        // (labels have no dots).
        for domain in self.store.domains(Some(&route.container_id))? {
            if domain.status == cubby_model::DomainStatus::Verified {
                self.routes.insert(domain.hostname, route.clone());
            }
        }
        self.routes.insert(label, route);
        Ok(())
    }

    /// Publishes a container's routes again after its aliases changed,
    /// from its own route in the table (none yet: it is still being made,
    /// and its creation publishes them).
    pub(crate) fn republish(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let project = self.store.project(&rec.project_id)?.map(|p| p.name).unwrap_or_default();
        let own = label(&rec.name, &project);
        match self.routes.get(&own) {
            Some(route) => self.publish(own, route),
            None => Ok(()),
        }
    }
}
