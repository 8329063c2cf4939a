//! The tables every daemon owns, before any per-container chain.
//!
//! Rendered as nft text (`P` is the prefix, `B` the bridge):
//! ```text
//! table inet P {
//!   map egress  { type ipv4_addr : verdict }   # container address -> jump e_<id>
//!   map ingress { type ipv4_addr : verdict }   # container address -> jump i_<id>
//!   chain input   { type filter hook input priority 0;
//!                   iifname B ct state established,related accept
//!                   iifname B drop }                     # containers never reach the host
//!   chain forward { type filter hook forward priority 0;
//!                   ct state established,related accept
//!                   iifname B ct state invalid drop
//!                   iifname B oifname B drop             # nor each other
//!                   iifname B ip daddr <subnet> drop
//!                   iifname B ip saddr vmap @egress
//!                   oifname B ip daddr vmap @ingress
//!                   iifname B drop                       # default deny: no element,
//!                   oifname B drop }                     #   no traffic
//!   chain output  { type filter hook output priority 0;
//!                   oifname B ct state established,related accept
//!                   oifname B ip daddr vmap @ingress     # the proxy, through ingress rules
//!                   oifname B drop }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                   ip saddr <subnet> oifname != B masquerade }
//! }
//! table bridge P {
//!   set allowed { type ifname . ipv4_addr }              # veth . its address
//!   chain prerouting { type filter hook prerouting priority -200;
//!                   iifname "P-*" ether type ip6 drop
//!                   iifname "P-*" iifname . ip saddr != @allowed drop
//!                   iifname "P-*" iifname . arp saddr ip != @allowed drop }
//! }
//! ```
//! A packet costs one map lookup whatever the number of tenants. The batch
//! deletes and re-creates both tables in one transaction, so applying it is
//! idempotent and never leaves a half-built table; the daemon appends every
//! container's chains to the same batch at start.

use ipnet::Ipv4Net;
use serde_json::json;

use super::batch::{
    Batch, accept, base_chain, counter, drop, eq, established, invalid, matches, meta, payload, prefix, rule, table,
};

/// The daemon's own tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRules {
    /// Table name (the daemon's prefix).
    pub table: String,
    /// The daemon's bridge.
    pub bridge: String,
    /// Prefix of the veth names (`{prefix}-`).
    pub veth_prefix: String,
    /// The container subnet.
    pub subnet: Ipv4Net,
}

/// Name of the egress dispatch map.
pub const EGRESS_MAP: &str = "egress";
/// Name of the ingress dispatch map.
pub const INGRESS_MAP: &str = "ingress";
/// Name of the anti-spoofing set in the bridge table.
pub const ALLOWED_SET: &str = "allowed";

impl BaseRules {
    /// The transaction that (re)creates both tables, empty of containers.
    pub fn batch(&self) -> Batch {
        let t = self.table.as_str();
        let br = self.bridge.as_str();
        let subnet = || prefix(self.subnet.network().to_string(), self.subnet.prefix_len());
        let from_bridge = || eq(meta("iifname"), json!(br));
        let to_bridge = || eq(meta("oifname"), json!(br));
        let mut b = Batch::new();
        for family in ["inet", "bridge"] {
            // `add` then `delete` succeeds whether or not the table existed.
            b.add(table(family, t));
            b.delete(table(family, t));
            b.add(table(family, t));
        }
        for map in [EGRESS_MAP, INGRESS_MAP] {
            b.add(
                json!({ "map": { "family": "inet", "table": t, "name": map, "type": "ipv4_addr", "map": "verdict" } }),
            );
        }
        b.add(base_chain("inet", t, "input", "filter", "input", 0));
        b.add(base_chain("inet", t, "forward", "filter", "forward", 0));
        b.add(base_chain("inet", t, "output", "filter", "output", 0));
        b.add(base_chain("inet", t, "postrouting", "nat", "postrouting", 100));

        b.add(rule("inet", t, "input", vec![from_bridge(), established(), accept()]));
        b.add(rule("inet", t, "input", vec![from_bridge(), counter(), drop()]));

        b.add(rule("inet", t, "forward", vec![established(), accept()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), invalid(), drop()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), to_bridge(), counter(), drop()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), eq(payload("ip", "daddr"), subnet()), counter(), drop()]));
        b.add(rule(
            "inet",
            t,
            "forward",
            vec![from_bridge(), json!({ "vmap": { "key": payload("ip", "saddr"), "data": format!("@{EGRESS_MAP}") } })],
        ));
        b.add(rule(
            "inet",
            t,
            "forward",
            vec![to_bridge(), json!({ "vmap": { "key": payload("ip", "daddr"), "data": format!("@{INGRESS_MAP}") } })],
        ));
        // Default deny: an address with no map element has no rules, so no traffic.
        b.add(rule("inet", t, "forward", vec![from_bridge(), counter(), drop()]));
        b.add(rule("inet", t, "forward", vec![to_bridge(), counter(), drop()]));

        b.add(rule("inet", t, "output", vec![to_bridge(), established(), accept()]));
        b.add(rule(
            "inet",
            t,
            "output",
            vec![to_bridge(), json!({ "vmap": { "key": payload("ip", "daddr"), "data": format!("@{INGRESS_MAP}") } })],
        ));
        b.add(rule("inet", t, "output", vec![to_bridge(), counter(), drop()]));

        b.add(rule(
            "inet",
            t,
            "postrouting",
            vec![
                eq(payload("ip", "saddr"), subnet()),
                matches("!=", meta("oifname"), json!(br)),
                json!({ "masquerade": null }),
            ],
        ));

        // Anti-spoofing at layer 2: a container's frames must carry its own
        // address, whatever root inside it does with raw sockets.
        b.add(
            json!({ "set": { "family": "bridge", "table": t, "name": ALLOWED_SET, "type": ["ifname", "ipv4_addr"] } }),
        );
        b.add(base_chain("bridge", t, "prerouting", "filter", "prerouting", -200));
        let from_veth = || eq(meta("iifname"), json!(format!("{}*", self.veth_prefix)));
        b.add(rule("bridge", t, "prerouting", vec![from_veth(), eq(payload("ether", "type"), json!("ip6")), drop()]));
        b.add(rule(
            "bridge",
            t,
            "prerouting",
            vec![
                from_veth(),
                matches(
                    "!=",
                    json!({ "concat": [meta("iifname"), payload("ip", "saddr")] }),
                    json!(format!("@{ALLOWED_SET}")),
                ),
                counter(),
                drop(),
            ],
        ));
        b.add(rule(
            "bridge",
            t,
            "prerouting",
            vec![
                from_veth(),
                matches(
                    "!=",
                    json!({ "concat": [meta("iifname"), payload("arp", "saddr ip")] }),
                    json!(format!("@{ALLOWED_SET}")),
                ),
                counter(),
                drop(),
            ],
        ));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_recreates_both_tables_and_dispatch_maps() {
        let rules = BaseRules {
            table: "cubbyt".into(),
            bridge: "cubbyt-br".into(),
            veth_prefix: "cubbyt-".into(),
            subnet: "10.1.0.0/24".parse().unwrap(),
        };
        let json = rules.batch().to_json();
        let cmds = json["nftables"].as_array().unwrap();
        assert_eq!(cmds[0]["add"]["table"]["name"], "cubbyt");
        assert_eq!(cmds[1]["delete"]["table"]["family"], "inet");
        let text = json.to_string();
        for needle in [
            "masquerade",
            "10.1.0.0",
            "cubbyt-br",
            "\"map\":\"verdict\"",
            "@egress",
            "@ingress",
            "@allowed",
            "cubbyt-*",
        ] {
            assert!(text.contains(needle), "{needle} missing");
        }
    }
}
