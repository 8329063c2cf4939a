//! The base ruleset of one daemon's `inet` table.
//!
//! Rendered as nft text it is:
//! ```text
//! table inet {prefix} {
//!   chain input       { type filter hook input priority 0;
//!                       iifname {bridge} ct state established,related accept
//!                       iifname {bridge} drop }              # no container reaches the host
//!   chain forward     { type filter hook forward priority 0;
//!                       iifname {bridge} oifname {bridge} drop  # no container reaches another
//!                       ct state established,related accept }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                       ip saddr {subnet} oifname != {bridge} masquerade }
//! }
//! ```
//! The batch deletes and re-creates the table in one transaction, so
//! applying it is idempotent and never leaves a half-built table.

use std::borrow::Cow;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::MetaKey;
use nftables::schema::{self, Chain, NfListObject, Rule, Table};
use nftables::stmt::{Accept, Drop, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::expr::{eq, established, meta, neq, payload, prefix, s};

/// The table every daemon owns, before any per-container rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRules {
    /// Table name (the daemon's prefix).
    pub table: String,
    /// The daemon's bridge.
    pub bridge: String,
    /// The container subnet.
    pub subnet: Ipv4Net,
}

impl BaseRules {
    fn chain(&self, name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> NfListObject<'static> {
        NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: Cow::Owned(self.table.clone()),
            name: name.into(),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        })
    }

    fn rule(&self, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
        NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: Cow::Owned(self.table.clone()),
            chain: chain.into(),
            expr: Cow::Owned(expr),
            ..Rule::default()
        })
    }

    /// The transaction that (re)creates the table.
    pub fn batch(&self) -> schema::Nftables<'static> {
        let table = || {
            NfListObject::Table(Table { family: NfFamily::INet, name: Cow::Owned(self.table.clone()), handle: None })
        };
        let from_bridge = || eq(meta(MetaKey::Iifname), s(&self.bridge));
        let accept = || Statement::Accept(Some(Accept {}));
        let drop = || Statement::Drop(Some(Drop {}));

        let mut batch = Batch::new();
        // `add` then `delete` makes the delete succeed whether or not the
        // table existed; the final `add` rebuilds it, all in one transaction.
        batch.add(table());
        batch.delete(table());
        batch.add(table());
        batch.add(self.chain("input", NfChainType::Filter, NfHook::Input, 0));
        batch.add(self.chain("forward", NfChainType::Filter, NfHook::Forward, 0));
        batch.add(self.chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100));
        batch.add(self.rule("input", vec![from_bridge(), established(), accept()]));
        batch.add(self.rule("input", vec![from_bridge(), drop()]));
        batch.add(self.rule("forward", vec![from_bridge(), eq(meta(MetaKey::Oifname), s(&self.bridge)), drop()]));
        batch.add(self.rule("forward", vec![established(), accept()]));
        batch.add(self.rule(
            "postrouting",
            vec![
                eq(payload("ip", "saddr"), prefix(self.subnet.network().to_string(), self.subnet.prefix_len())),
                neq(meta(MetaKey::Oifname), s(&self.bridge)),
                Statement::Masquerade(None),
            ],
        ));
        batch.to_nftables()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_recreates_the_table_atomically() {
        let rules =
            BaseRules { table: "cubbyt".into(), bridge: "cubbyt-br".into(), subnet: "10.1.0.0/24".parse().unwrap() };
        let json = serde_json::to_value(rules.batch()).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        assert!(cmds[0]["add"]["table"]["name"] == "cubbyt");
        assert!(cmds[1]["delete"]["table"]["name"] == "cubbyt");
        let text = json.to_string();
        assert!(text.contains("masquerade"));
        assert!(text.contains("10.1.0.0"));
        assert!(text.contains("cubbyt-br"));
    }
}
