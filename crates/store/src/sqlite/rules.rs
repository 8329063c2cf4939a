//! Firewall and network rules in SQLite: one row per rule, ordered by
//! position within its direction; network rules are columns of the
//! container.

use cubby_model::{ContainerId, Direction, Firewall, FirewallRule, NetworkMode, NetworkRules, RuleId};
use rusqlite::{Connection, params};

use super::{SqliteStore, json, q};
use crate::{RuleStore, StoreError};

fn text<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(what: &'static str, key: &str, value: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|e| StoreError::Corrupt {
        what,
        key: key.to_string(),
        detail: format!("`{value}`: {e}"),
    })
}

/// Inserts `firewall` for container `id` (its old rules must be gone).
pub(super) fn insert(conn: &Connection, id: &ContainerId, firewall: &Firewall) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO firewall_rules (id, container_id, direction, position, action, protocol, ports, peer, description, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(q("insert firewall rule"))?;
    for (direction, rules) in [(Direction::Ingress, &firewall.ingress), (Direction::Egress, &firewall.egress)] {
        for (position, rule) in rules.iter().enumerate() {
            let peer = match direction {
                Direction::Ingress => &rule.source,
                Direction::Egress => &rule.destination,
            };
            stmt.execute(params![
                rule.id.as_str(),
                id.as_str(),
                direction.as_str(),
                i64::try_from(position).unwrap_or(i64::MAX),
                text(rule.action),
                text(rule.protocol),
                rule.ports,
                peer,
                rule.description,
                text(rule.state),
            ])
            .map_err(q("insert firewall rule"))?;
        }
    }
    Ok(())
}

pub(super) fn read(conn: &Connection, id: &ContainerId) -> Result<Firewall, StoreError> {
    type Row = (String, String, String, String, Option<String>, Option<String>, Option<String>, String);
    let rows: Vec<Row> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, direction, action, protocol, ports, peer, description, state FROM firewall_rules
                  WHERE container_id = ?1 ORDER BY direction, position",
            )
            .map_err(q("read firewall"))?;
        let mapped = stmt
            .query_map([id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })
            .map_err(q("read firewall"))?;
        mapped.collect::<Result<_, _>>().map_err(q("read firewall"))?
    };
    let mut firewall = Firewall::default();
    for (rule_id, direction, action, protocol, ports, peer, description, state) in rows {
        let direction = Direction::parse(&direction).ok_or_else(|| StoreError::Corrupt {
            what: "firewall rule",
            key: rule_id.clone(),
            detail: format!("direction `{direction}`"),
        })?;
        let (source, destination) = match direction {
            Direction::Ingress => (peer, None),
            Direction::Egress => (None, peer),
        };
        let rule = FirewallRule {
            action: parse("firewall rule", &rule_id, &action)?,
            protocol: parse("firewall rule", &rule_id, &protocol)?,
            state: parse("firewall rule", &rule_id, &state)?,
            id: RuleId::from_stored(rule_id),
            ports,
            source,
            destination,
            description,
            shadowed_by: None,
        };
        match direction {
            Direction::Ingress => firewall.ingress.push(rule),
            Direction::Egress => firewall.egress.push(rule),
        }
    }
    Ok(firewall)
}

pub(super) fn delete(conn: &Connection, id: &ContainerId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM firewall_rules WHERE container_id = ?1", [id.as_str()]).map_err(q("delete firewall"))?;
    Ok(())
}

pub(super) fn write_network(conn: &Connection, id: &ContainerId, rules: &NetworkRules) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE containers SET network_mode = ?2, network_proxy = ?3, dns_servers = ?4 WHERE id = ?1",
        params![id.as_str(), rules.mode.as_str(), rules.proxy, json(&rules.dns_servers)],
    )
    .map_err(q("write network rules"))?;
    Ok(())
}

pub(super) fn read_network(conn: &Connection, id: &ContainerId) -> Result<NetworkRules, StoreError> {
    let (mode, proxy, dns): (String, Option<String>, String) = conn
        .query_row(
            "SELECT network_mode, network_proxy, dns_servers FROM containers WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(q("read network rules"))?;
    let corrupt = |detail: String| StoreError::Corrupt { what: "network rules", key: id.to_string(), detail };
    Ok(NetworkRules {
        mode: NetworkMode::parse(&mode).ok_or_else(|| corrupt(format!("mode `{mode}`")))?,
        proxy,
        dns_servers: serde_json::from_str(&dns).map_err(|e| corrupt(format!("dns_servers: {e}")))?,
    })
}

impl RuleStore for SqliteStore {
    fn firewall(&self, id: &ContainerId) -> Result<Firewall, StoreError> {
        read(&self.conn(), id)
    }

    fn replace_firewall(&self, id: &ContainerId, firewall: &Firewall) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin replace firewall"))?;
        delete(&tx, id)?;
        insert(&tx, id, firewall)?;
        tx.commit().map_err(q("commit replace firewall"))
    }

    fn network(&self, id: &ContainerId) -> Result<NetworkRules, StoreError> {
        read_network(&self.conn(), id)
    }

    fn set_network(&self, id: &ContainerId, rules: &NetworkRules) -> Result<(), StoreError> {
        write_network(&self.conn(), id, rules)
    }
}
