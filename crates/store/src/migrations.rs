//! Versioned schema migrations. Each entry is applied once, in order, and
//! SQLite's `user_version` records how far a database has come. Never edit
//! a released entry: append a new one.

use rusqlite_migration::{M, Migrations};

/// All migrations, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
CREATE TABLE projects (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    max_containers INTEGER,
    created_at     INTEGER NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE images (
    name       TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    config     TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    digest     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE containers (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE RESTRICT,
    name       TEXT NOT NULL,
    image      TEXT NOT NULL,
    command    TEXT NOT NULL,
    env        TEXT NOT NULL,
    port       INTEGER NOT NULL,
    cpu        REAL NOT NULL,
    memory     INTEGER NOT NULL,
    pids       INTEGER NOT NULL,
    workdir    TEXT,
    user       TEXT,
    status     TEXT NOT NULL,
    slot       INTEGER NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    at           INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX transitions_by_container ON transitions(container_id, id);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    action       TEXT NOT NULL,
    project_id   TEXT,
    container_id TEXT
);
"#,
        ),
        M::up(
            r#"
CREATE TABLE firewall_rules (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    direction    TEXT NOT NULL,
    position     INTEGER NOT NULL,
    action       TEXT NOT NULL,
    protocol     TEXT NOT NULL,
    ports        TEXT,
    peer         TEXT,
    description  TEXT,
    state        TEXT NOT NULL
);
CREATE INDEX firewall_by_container ON firewall_rules(container_id, direction, position);

ALTER TABLE containers ADD COLUMN network_mode TEXT NOT NULL DEFAULT 'open';
ALTER TABLE containers ADD COLUMN network_proxy TEXT;
ALTER TABLE containers ADD COLUMN dns_servers TEXT NOT NULL DEFAULT '[]';
"#,
        ),
        M::up(
            r#"
CREATE TABLE layers (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    subvolume         TEXT NOT NULL,
    root              TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    source_container  TEXT,
    source_generation INTEGER
);

CREATE TABLE container_layers (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    layer_id     TEXT NOT NULL REFERENCES layers(id),
    PRIMARY KEY (container_id, position)
);
CREATE INDEX container_layers_by_layer ON container_layers(layer_id);

CREATE TABLE snapshots (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    alias        TEXT,
    layer_id     TEXT NOT NULL REFERENCES layers(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    UNIQUE (container_id, name)
);
CREATE UNIQUE INDEX snapshots_alias ON snapshots(container_id, alias) WHERE alias IS NOT NULL;

CREATE TABLE snapshot_layers (
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    layer_id    TEXT NOT NULL REFERENCES layers(id),
    PRIMARY KEY (snapshot_id, position)
);
CREATE INDEX snapshot_layers_by_layer ON snapshot_layers(layer_id);

ALTER TABLE images ADD COLUMN layer_id TEXT REFERENCES layers(id);
ALTER TABLE containers ADD COLUMN disk_limit INTEGER;
ALTER TABLE containers ADD COLUMN max_snapshots INTEGER NOT NULL DEFAULT 10;
ALTER TABLE containers ADD COLUMN frozen_layer TEXT;
ALTER TABLE containers ADD COLUMN frozen_generation INTEGER;

-- Images and containers made before layers existed.
INSERT INTO layers (id, kind, subvolume, root, created_at)
    SELECT 'img-' || name, 'image', 'images/' || name, 'images/' || name, created_at FROM images;
UPDATE images SET layer_id = 'img-' || name;
INSERT INTO container_layers (container_id, position, layer_id)
    SELECT id, 0, 'img-' || image FROM containers WHERE image IN (SELECT name FROM images);
"#,
        ),
        M::up(
            r#"
ALTER TABLE projects ADD COLUMN default_access TEXT NOT NULL DEFAULT 'claim';
ALTER TABLE projects ADD COLUMN default_idle_timeout INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN access TEXT;
ALTER TABLE containers ADD COLUMN autostart INTEGER NOT NULL DEFAULT 1;
ALTER TABLE containers ADD COLUMN idle_timeout INTEGER;
ALTER TABLE containers ADD COLUMN claims_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE aliases (
    name         TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    port         INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX aliases_by_container ON aliases(container_id);
"#,
        ),
        M::up(
            r#"
CREATE TABLE secrets (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE script_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    script      TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error       TEXT,
    logs        TEXT NOT NULL
);
CREATE INDEX script_logs_by_project ON script_logs(project_id, id);
"#,
        ),
        M::up(
            r#"
-- Deleted containers whose host side is still being removed: their slot
-- (address, veth name) is not handed out until the row goes.
CREATE TABLE teardowns (
    container_id TEXT PRIMARY KEY,
    slot         INTEGER NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);
"#,
        ),
        M::up(
            r#"
-- What the operator lets each container of a project have (JSON).
ALTER TABLE projects ADD COLUMN quota TEXT NOT NULL DEFAULT '{}';

-- Alias names recently given up, and by which project: another project
-- may not take one over (with its users' cookies) for a while.
CREATE TABLE alias_releases (
    name        TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    released_at INTEGER NOT NULL
);
"#,
        ),
        M::up(
            r#"
-- Usage per container, for invoices: what each reading of its counters
-- added, per minute and per hour (`resolution`: seconds per row). Ids and
-- numbers only; the rows of a deleted container stay until they age out.
CREATE TABLE usage_rows (
    container_id        TEXT NOT NULL,
    project_id          TEXT NOT NULL,
    resolution          INTEGER NOT NULL,
    start               INTEGER NOT NULL,
    cpu_ns              INTEGER NOT NULL,
    memory_byte_seconds REAL NOT NULL,
    memory_peak_bytes   INTEGER NOT NULL,
    rx_bytes            INTEGER NOT NULL,
    tx_bytes            INTEGER NOT NULL,
    disk_byte_seconds   REAL NOT NULL,
    disk_peak_bytes     INTEGER NOT NULL,
    requests            INTEGER NOT NULL,
    response_bytes      INTEGER NOT NULL,
    running_ms          INTEGER NOT NULL,
    wakes               INTEGER NOT NULL,
    PRIMARY KEY (container_id, resolution, start)
);
CREATE INDEX usage_rows_by_project ON usage_rows(project_id, resolution, start);

-- Each container's previous reading, which the next one is measured from.
CREATE TABLE usage_cursors (
    container_id TEXT PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    cpu_ns       INTEGER NOT NULL,
    rx_bytes     INTEGER NOT NULL,
    tx_bytes     INTEGER NOT NULL
);
"#,
        ),
        M::up(
            r#"
-- Events: every lifecycle change, by id (the API's cursor). Ids, types,
-- triggers and small details only; pruned by age.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    project_id   TEXT,
    container_id TEXT,
    trigger      TEXT,
    actor        TEXT,
    data         TEXT NOT NULL
);
CREATE INDEX events_by_project ON events(project_id, id);
CREATE INDEX events_by_container ON events(container_id, id);
CREATE INDEX events_by_age ON events(at);
"#,
        ),
        M::up(
            r#"
-- Webhooks of a project (their secrets sealed by the daemon), one
-- delivery per event and hook, and the last event turned into deliveries.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    after_event INTEGER NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks(project_id);
CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id   INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    last_code  INTEGER,
    last_error TEXT,
    next_at    INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_at);
CREATE TABLE webhook_dispatch (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    last_event INTEGER NOT NULL
);
"#,
        ),
        M::up(
            r#"
-- Custom domains: a customer's hostname for one container, served once
-- its TXT record (the token) is found. A hostname is one tenant's only.
CREATE TABLE domains (
    hostname     TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    token        TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    verified_at  INTEGER
);
CREATE INDEX domains_by_container ON domains(container_id);
"#,
        ),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
