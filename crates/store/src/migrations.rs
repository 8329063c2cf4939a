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
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
