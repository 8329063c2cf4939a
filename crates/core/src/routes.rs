//! The URL routing table: which host name reaches which container.
//!
//! A container answers at `{name}--{project}.{domain}`; `--` cannot occur
//! in names, so the label splits without ambiguity. `{name}--{project}-{port}`
//! reaches another port of the same container (project names never end in
//! `-<digits>`, so that suffix is always a port).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::RwLock;

use cubby_model::{AccessMode, ContainerId, ProjectId};

/// Where one container's URL leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub container_id: ContainerId,
    pub project_id: ProjectId,
    pub address: Ipv4Addr,
    /// The app's port (the default target).
    pub port: u16,
    /// Whether the container runs.
    pub running: bool,
    /// Who may open it.
    pub access: AccessMode,
    /// Whether a request starts it when it is stopped.
    pub autostart: bool,
}

/// The result of looking up a request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Forward to `upstream`.
    Running { route: Route, upstream: SocketAddr },
    /// The container exists but does not run; `port` is the one asked for.
    Stopped { route: Route, port: u16 },
    /// No container answers at this host.
    Unknown,
}

/// The label of a container's URL host.
pub fn label(name: &str, project: &str) -> String {
    format!("{name}--{project}")
}

/// Every route, by URL label. Read on every proxied request; written on
/// lifecycle changes.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_label: RwLock<HashMap<String, Route>>,
}

impl RouteTable {
    /// Sets the route of `label`.
    pub fn insert(&self, label: String, route: Route) {
        self.by_label.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(label, route);
    }

    /// The route of `label` itself (no port suffix), if any.
    pub fn get(&self, label: &str) -> Option<Route> {
        self.by_label.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(label).cloned()
    }

    /// Marks the container behind `container` running or stopped.
    pub fn set_running(&self, container: &ContainerId, running: bool) {
        let mut map = self.by_label.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for route in map.values_mut().filter(|r| &r.container_id == container) {
            route.running = running;
        }
    }

    /// Removes every route to `container`.
    pub fn remove(&self, container: &ContainerId) {
        self.by_label
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, r| &r.container_id != container);
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.by_label.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The running container at `address`, if any. A walk over the routes:
    /// the proxy asks once per new upstream connection, not per request.
    pub fn running_at(&self, address: Ipv4Addr) -> Option<ContainerId> {
        let map = self.by_label.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().find(|r| r.running && r.address == address).map(|r| r.container_id.clone())
    }

    /// Resolves a URL label (the host without the domain).
    pub fn lookup(&self, label: &str) -> Lookup {
        let map = self.by_label.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (route, port) = match map.get(label) {
            Some(route) => (route, None),
            None => {
                let Some((base, port)) = label.rsplit_once('-') else { return Lookup::Unknown };
                let Ok(port) = port.parse::<u16>() else { return Lookup::Unknown };
                match map.get(base) {
                    Some(route) if port != 0 => (route, Some(port)),
                    _ => return Lookup::Unknown,
                }
            }
        };
        let port = port.unwrap_or(route.port);
        if route.running {
            Lookup::Running { route: route.clone(), upstream: SocketAddr::from((route.address, port)) }
        } else {
            Lookup::Stopped { route: route.clone(), port }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(running: bool) -> Route {
        Route {
            container_id: ContainerId::from_stored("cabc".into()),
            project_id: ProjectId::from_stored("pabc".into()),
            address: Ipv4Addr::new(10, 0, 0, 2),
            port: 8080,
            running,
            access: AccessMode::Public,
            autostart: true,
        }
    }

    #[test]
    fn exact_label_and_port_suffix() {
        let t = RouteTable::default();
        t.insert(label("web-2", "acme"), route(true));
        match t.lookup("web-2--acme") {
            Lookup::Running { upstream, .. } => assert_eq!(upstream, "10.0.0.2:8080".parse().unwrap()),
            other => panic!("{other:?}"),
        }
        match t.lookup("web-2--acme-9000") {
            Lookup::Running { upstream, .. } => assert_eq!(upstream, "10.0.0.2:9000".parse().unwrap()),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.lookup("web--acme"), Lookup::Unknown);
        assert_eq!(t.lookup("web-2--acme-0"), Lookup::Unknown);
        assert_eq!(t.lookup("web-2--acme-99999"), Lookup::Unknown);
    }

    #[test]
    fn stopped_and_removed() {
        let t = RouteTable::default();
        t.insert(label("a", "p"), route(true));
        t.set_running(&ContainerId::from_stored("cabc".into()), false);
        assert!(matches!(t.lookup("a--p"), Lookup::Stopped { .. }));
        t.remove(&ContainerId::from_stored("cabc".into()));
        assert_eq!(t.lookup("a--p"), Lookup::Unknown);
        assert!(t.is_empty());
    }
}
