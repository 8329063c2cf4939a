//! A batch of nft JSON commands and the expressions rules are made of.

use serde_json::{Value, json};

/// Commands that `nft` applies as one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    commands: Vec<Value>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// `add <object>`
    pub fn add(&mut self, object: Value) {
        self.commands.push(json!({ "add": object }));
    }

    /// `delete <object>`
    pub fn delete(&mut self, object: Value) {
        self.commands.push(json!({ "delete": object }));
    }

    /// `flush <object>`
    pub fn flush(&mut self, object: Value) {
        self.commands.push(json!({ "flush": object }));
    }

    /// Appends every command of `other`.
    pub fn extend(&mut self, other: Batch) {
        self.commands.extend(other.commands);
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The document `nft -j -f -` reads.
    pub fn to_json(&self) -> Value {
        json!({ "nftables": self.commands })
    }
}

// ---- objects

pub(crate) fn table(family: &str, name: &str) -> Value {
    json!({ "table": { "family": family, "name": name } })
}

pub(crate) fn base_chain(family: &str, table: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({ "chain": { "family": family, "table": table, "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept" } })
}

pub(crate) fn chain(family: &str, table: &str, name: &str) -> Value {
    json!({ "chain": { "family": family, "table": table, "name": name } })
}

pub(crate) fn rule(family: &str, table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({ "rule": { "family": family, "table": table, "chain": chain, "expr": expr } })
}

pub(crate) fn element(family: &str, table: &str, set: &str, elems: Vec<Value>) -> Value {
    json!({ "element": { "family": family, "table": table, "name": set, "elem": elems } })
}

// ---- expressions and statements

pub(crate) fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

pub(crate) fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

pub(crate) fn prefix(addr: String, len: u8) -> Value {
    json!({ "prefix": { "addr": addr, "len": len } })
}

pub(crate) fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right } })
}

pub(crate) fn eq(left: Value, right: Value) -> Value {
    matches("==", left, right)
}

pub(crate) fn established() -> Value {
    matches("in", json!({ "ct": { "key": "state" } }), json!(["established", "related"]))
}

pub(crate) fn invalid() -> Value {
    matches("in", json!({ "ct": { "key": "state" } }), json!(["invalid"]))
}

pub(crate) fn accept() -> Value {
    json!({ "accept": null })
}

pub(crate) fn drop() -> Value {
    json!({ "drop": null })
}

pub(crate) fn jump(target: &str) -> Value {
    json!({ "jump": { "target": target } })
}

pub(crate) fn counter() -> Value {
    json!({ "counter": null })
}
