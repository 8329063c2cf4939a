//! Helpers of the core's unit tests: records put straight into a store.

use std::collections::BTreeMap;

use cubby_model::{
    AccessMode, ByteSize, ContainerId, ContainerStatus, Firewall, Limits, NetworkRules, Project, ProjectId,
};
use cubby_store::{ContainerRecord, NewContainer, Store};

/// A project named `name`, stored.
pub(crate) fn project(store: &dyn Store, name: &str) -> Project {
    let project = Project {
        id: ProjectId::random(),
        name: name.into(),
        max_containers: None,
        created_at: cubby_model::now(),
        default_access: AccessMode::Claim,
        default_idle_timeout_seconds: 0,
        quota: Default::default(),
    };
    store.insert_project(&project).expect("a new project is stored");
    project
}

/// A running container `app` of `project` with `firewall`, stored (no
/// host side).
pub(crate) fn container(store: &dyn Store, project: &ProjectId, firewall: Firewall) -> ContainerRecord {
    let new = NewContainer {
        id: ContainerId::random(),
        project_id: project.clone(),
        name: "app".into(),
        image: "minimal".into(),
        command: vec!["/bin/app".into()],
        env: BTreeMap::new(),
        port: 8080,
        limits: Limits { cpu: 1.0, memory: ByteSize(64 << 20), pids: 64, disk: None },
        workdir: None,
        user: None,
        created_at: cubby_model::now(),
        firewall,
        network: NetworkRules::default(),
        lowers: vec![],
        max_snapshots: 1,
        status: ContainerStatus::Running,
        access: None,
        autostart: true,
        idle_timeout: None,
    };
    store.insert_container(&new, 250).expect("a new container is stored")
}
