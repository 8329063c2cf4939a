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
//!   set guard_deny  { type ipv4_addr; flags interval }  # metadata, CGNAT, RFC 1918...
//!   set guard_allow { type ipv4_addr; flags interval }  # the operator's exceptions
//!   set guard_dns   { type ipv4_addr }                   # the daemon's resolvers
//!   chain guard   { meta l4proto {tcp,udp} th dport 53 ip daddr @guard_dns return
//!                   ip daddr @guard_allow return
//!                   ip daddr @guard_deny drop }         # no container rule lifts it
//!   chain forward { type filter hook forward priority 0;
//!                   ct state established,related accept
//!                   iifname B ct state invalid drop
//!                   iifname B oifname B drop             # nor each other
//!                   iifname B ip daddr <subnet> drop
//!                   iifname B jump guard
//!                   iifname B ip saddr vmap @egress
//!                   oifname B ip daddr vmap @ingress
//!                   iifname B drop                       # default deny: no element,
//!                   oifname B drop }                     #   no traffic
//!   chain output  { type filter hook output priority 0;
//!                   oifname B ct state established,related accept
//!                   oifname B meta skuid != 0 drop       # local users get no gateway trust
//!                   oifname B ip daddr vmap @ingress     # the proxy, through ingress rules
//!                   oifname B drop }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                   ip saddr <subnet> oifname != B masquerade }
//! }
//! table bridge P {
//!   set allowed { type ifname . ipv4_addr }              # veth . its address
//!   set ports   { type ifname . ether_addr }             # veth . its MAC
//!   chain prerouting { type filter hook prerouting priority -200;
//!                   iifname "P-*" ether type != { ip, arp } drop   # ip6, VLAN tags...
//!                   iifname "P-*" iifname . ether saddr != @ports drop
//!                   iifname "P-*" iifname . ip saddr != @allowed drop
//!                   iifname "P-*" iifname . arp saddr ether != @ports drop
//!                   iifname "P-*" iifname . arp saddr ip != @allowed drop }
//! }
//! ```
//! The bridge filter runs before the bridge learns: a frame with another
//! tenant's MAC is dropped before it can move that MAC to the wrong port
//! (and container ports do not learn at all: their MACs are static
//! forwarding entries, see the netlink attach).
//! Packets to the host's own addresses (on any interface) go through
//! `input`, which drops them all: the host is guarded whatever its address.
//! A packet costs one map lookup whatever the number of tenants. The batch
//! deletes and re-creates both tables in one transaction, so applying it is
//! idempotent and never leaves a half-built table; the daemon appends every
//! container's chains to the same batch at start.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::batch::{
    Batch, accept, base_chain, chain, counter, drop, eq, established, invalid, jump, matches, meta, payload, prefix,
    rule, table,
};

/// Destinations no container reaches whatever its own rules say: cloud
/// metadata and link-local services, and carrier-grade NAT space.
pub const PLATFORM_GUARDED: [&str; 2] = ["169.254.0.0/16", "100.64.0.0/10"];
/// What `--egress-deny` guards unless the operator says otherwise: the
/// host's LAN and every other private network (RFC 1918).
pub const DEFAULT_EGRESS_DENY: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// The platform's egress guard: `deny` minus `allow`, checked before any
/// container's own rules, so none of them can lift it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressGuard {
    /// Ranges no container reaches ([`PLATFORM_GUARDED`] and `--egress-deny`).
    pub deny: Vec<Ipv4Net>,
    /// The operator's exceptions (`--egress-allow`): containers' own rules decide there.
    pub allow: Vec<Ipv4Net>,
    /// The daemon's resolvers: DNS (port 53) to them passes the guard.
    pub resolvers: Vec<Ipv4Addr>,
}

impl EgressGuard {
    /// The platform's guard plus `deny` (the defaults when `None`), with the
    /// operator's `allow` exceptions.
    pub fn new(deny: Option<Vec<Ipv4Net>>, allow: Vec<Ipv4Net>, resolvers: Vec<Ipv4Addr>) -> Self {
        let parse = |list: &[&str]| list.iter().filter_map(|n| n.parse::<Ipv4Net>().ok()).collect::<Vec<_>>();
        let mut all = parse(&PLATFORM_GUARDED);
        all.extend(deny.unwrap_or_else(|| parse(&DEFAULT_EGRESS_DENY)));
        Self { deny: all, allow, resolvers }
    }

    /// Whether a container may send to `addr` as far as the guard goes
    /// (its own rules still decide), on port `port` of protocol tcp or udp.
    pub fn lets_through(&self, addr: Ipv4Addr, port: u16) -> bool {
        (port == 53 && self.resolvers.contains(&addr))
            || self.allow.iter().any(|n| n.contains(&addr))
            || !self.deny.iter().any(|n| n.contains(&addr))
    }
}

fn interval_set(table: &str, name: &str, nets: &[Ipv4Net]) -> Value {
    let mut set = json!({ "family": "inet", "table": table, "name": name, "type": "ipv4_addr",
                          "flags": ["interval"], "auto-merge": true });
    if !nets.is_empty() {
        set["elem"] = nets.iter().map(|n| prefix(n.network().to_string(), n.prefix_len())).collect();
    }
    json!({ "set": set })
}

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
    /// Destinations no container rule can open.
    pub guard: EgressGuard,
}

/// Name of the egress dispatch map.
pub const EGRESS_MAP: &str = "egress";
/// Name of the ingress dispatch map.
pub const INGRESS_MAP: &str = "ingress";
/// Name of the anti-spoofing set in the bridge table (port . address).
pub const ALLOWED_SET: &str = "allowed";
/// Name of the port . MAC set in the bridge table.
pub const PORTS_SET: &str = "ports";

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

        // The egress guard, before any container's own chain.
        b.add(interval_set(t, "guard_deny", &self.guard.deny));
        b.add(interval_set(t, "guard_allow", &self.guard.allow));
        let mut dns = json!({ "family": "inet", "table": t, "name": "guard_dns", "type": "ipv4_addr" });
        if !self.guard.resolvers.is_empty() {
            dns["elem"] = self.guard.resolvers.iter().map(|a| json!(a.to_string())).collect();
        }
        b.add(json!({ "set": dns }));
        b.add(chain("inet", t, "guard"));
        b.add(rule(
            "inet",
            t,
            "guard",
            vec![
                eq(meta("l4proto"), json!({ "set": ["tcp", "udp"] })),
                eq(payload("th", "dport"), json!(53)),
                eq(payload("ip", "daddr"), json!("@guard_dns")),
                json!({ "return": null }),
            ],
        ));
        b.add(rule(
            "inet",
            t,
            "guard",
            vec![eq(payload("ip", "daddr"), json!("@guard_allow")), json!({ "return": null })],
        ));
        b.add(rule("inet", t, "guard", vec![eq(payload("ip", "daddr"), json!("@guard_deny")), counter(), drop()]));

        b.add(rule("inet", t, "input", vec![from_bridge(), established(), accept()]));
        b.add(rule("inet", t, "input", vec![from_bridge(), counter(), drop()]));

        b.add(rule("inet", t, "forward", vec![established(), accept()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), invalid(), drop()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), to_bridge(), counter(), drop()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), eq(payload("ip", "daddr"), subnet()), counter(), drop()]));
        b.add(rule("inet", t, "forward", vec![from_bridge(), jump("guard")]));
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
        // From the host only root's sockets (the daemon's proxy and probes)
        // open connections to containers: another local user's would come
        // from the gateway address that ingress rules trust.
        b.add(rule("inet", t, "output", vec![to_bridge(), matches("!=", meta("skuid"), json!(0)), counter(), drop()]));
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
        b.add(
            json!({ "set": { "family": "bridge", "table": t, "name": PORTS_SET, "type": ["ifname", "ether_addr"] } }),
        );
        b.add(base_chain("bridge", t, "prerouting", "filter", "prerouting", -200));
        let from_veth = || eq(meta("iifname"), json!(format!("{}*", self.veth_prefix)));
        let not_in = |fields: Vec<Value>, set: &str| {
            let mut key = vec![meta("iifname")];
            key.extend(fields);
            matches("!=", json!({ "concat": key }), json!(format!("@{set}")))
        };
        // IPv4 and ARP only: no IPv6, no VLAN tags, no other protocol.
        b.add(rule(
            "bridge",
            t,
            "prerouting",
            vec![
                from_veth(),
                matches("!=", payload("ether", "type"), json!({ "set": ["ip", "arp"] })),
                counter(),
                drop(),
            ],
        ));
        for (fields, set) in [
            (vec![payload("ether", "saddr")], PORTS_SET),
            (vec![payload("ip", "saddr")], ALLOWED_SET),
            (vec![payload("arp", "saddr ether")], PORTS_SET),
            (vec![payload("arp", "saddr ip")], ALLOWED_SET),
        ] {
            b.add(rule("bridge", t, "prerouting", vec![from_veth(), not_in(fields, set), counter(), drop()]));
        }
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
            guard: EgressGuard::new(None, vec!["10.9.0.0/16".parse().unwrap()], vec!["192.0.2.53".parse().unwrap()]),
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
            "@ports",
            "cubbyt-*",
            "169.254.0.0",
            "100.64.0.0",
            "192.168.0.0",
            "@guard_deny",
            "192.0.2.53",
            "ether_addr",
        ] {
            assert!(text.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn the_guard_lets_through_only_allowed_ranges_and_dns_to_resolvers() {
        let guard =
            EgressGuard::new(None, vec!["192.168.50.0/24".parse().unwrap()], vec!["192.168.1.1".parse().unwrap()]);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(!guard.lets_through(ip("169.254.169.254"), 80), "cloud metadata");
        assert!(!guard.lets_through(ip("100.100.1.1"), 443), "carrier-grade NAT");
        assert!(!guard.lets_through(ip("10.1.2.3"), 443) && !guard.lets_through(ip("172.20.0.1"), 22));
        assert!(!guard.lets_through(ip("192.168.1.1"), 80), "the resolver's other ports");
        assert!(guard.lets_through(ip("192.168.1.1"), 53), "DNS to the daemon's resolver");
        assert!(guard.lets_through(ip("192.168.50.9"), 80), "the operator's exception");
        assert!(guard.lets_through(ip("198.18.0.2"), 80) && guard.lets_through(ip("93.184.216.34"), 443));
        let custom = EgressGuard::new(Some(vec!["203.0.113.0/24".parse().unwrap()]), vec![], vec![]);
        assert!(custom.lets_through(ip("10.1.2.3"), 80), "--egress-deny replaces the RFC 1918 default");
        assert!(!custom.lets_through(ip("203.0.113.7"), 80) && !custom.lets_through(ip("169.254.169.254"), 80));
    }
}
