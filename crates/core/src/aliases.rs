//! Aliases: unique names that point at a container (and a port), served
//! at `http://{alias}.{domain}`. They go with their container.

use cubby_model::{Alias, ContainerId, ContainerStatus, CreateAlias, validate_alias_name};
use cubby_store::AliasRecord;

use crate::{Caller, Error, Platform};

impl Platform {
    fn alias_view(&self, a: &AliasRecord) -> Alias {
        Alias {
            name: a.name.clone(),
            container_id: a.container_id.clone(),
            port: a.port,
            url: self.url_of_label(&a.name),
            created_at: a.created_at,
        }
    }

    /// Makes an alias for a container the caller may see.
    pub fn create_alias(&self, caller: &Caller, req: &CreateAlias) -> Result<Alias, Error> {
        validate_alias_name(&req.name)?;
        if req.port == Some(0) {
            return Err(Error::invalid("port", "give a TCP port from 1 to 65535"));
        }
        let rec = self.record(caller, &req.container_id)?;
        let alias = AliasRecord {
            name: req.name.clone(),
            container_id: rec.id.clone(),
            port: req.port,
            created_at: cubby_model::now(),
        };
        self.store.insert_alias(&alias)?;
        self.publish_routes(&rec, rec.status == ContainerStatus::Running)?;
        Ok(self.alias_view(&alias))
    }

    /// The aliases the caller may see (of one container, or all).
    pub fn aliases(&self, caller: &Caller, container: Option<&ContainerId>) -> Result<Vec<Alias>, Error> {
        if let Some(id) = container {
            self.record(caller, id)?;
        }
        let mut out = Vec::new();
        for a in self.store.aliases(container)? {
            if self.record(caller, &a.container_id).is_ok() {
                out.push(self.alias_view(&a));
            }
        }
        Ok(out)
    }

    /// Removes an alias of a container the caller may see.
    pub fn delete_alias(&self, caller: &Caller, name: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound { kind: "alias", id: name.to_string() };
        let alias = self.store.alias(name)?.ok_or_else(not_found)?;
        let rec = self.record(caller, &alias.container_id).map_err(|_| not_found())?;
        self.store.delete_alias(name)?;
        self.publish_routes(&rec, rec.status == ContainerStatus::Running)?;
        Ok(())
    }
}
