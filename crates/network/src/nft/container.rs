//! One container's chains: `e_<id>` (egress) and `i_<id>` (ingress), the
//! verdict-map elements that send its packets there, and its entries in
//! the anti-spoofing sets (its veth with its address, and with its MAC).
//!
//! ```text
//! chain e_<id> {                       # packets from the container (new flows)
//!   <policy rules: DNS, or the proxy, or nothing>
//!   <user rules, first match wins>     # open mode only
//!   drop                               # nothing matched
//! }
//! chain i_<id> {                       # packets to the container (new flows)
//!   <user rules>
//!   drop
//! }
//! ```
//! Installing replaces both chains and is one transaction; its cost depends
//! on this container's rules only, never on how many containers exist.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde_json::{Value, json};

use super::base::{ALLOWED_SET, EGRESS_MAP, INGRESS_MAP, PORTS_SET};
use super::batch::{Batch, accept, chain, drop, element, eq, jump, meta, payload, prefix, rule};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    Drop,
}

/// Which protocol a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// One firewall rule, ready to render. The peer is the source of ingress
/// traffic and the destination of egress traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub verdict: Verdict,
    pub l4: L4,
    /// Inclusive port ranges; empty means all.
    pub ports: Vec<(u16, u16)>,
    pub peer: Option<IpNet>,
}

impl Match {
    /// Whether this rule matches a new TCP connection from `peer` to `port`.
    fn matches_tcp(&self, peer: IpAddr, port: u16) -> bool {
        matches!(self.l4, L4::Tcp | L4::Any)
            && self.peer.is_none_or(|net| net.contains(&peer))
            && (self.ports.is_empty() || self.ports.iter().any(|&(first, last)| (first..=last).contains(&port)))
    }
}

/// What a container's ingress chain does with a new TCP connection from
/// `peer` to `port`: the verdict of the first matching rule, or drop when
/// none matches (the chain's last rule). The same evaluation as the
/// kernel's, for deciding ahead of time; nft stays the enforcer.
pub fn ingress_tcp_verdict(ingress: &[Match], peer: IpAddr, port: u16) -> Verdict {
    ingress.iter().find(|m| m.matches_tcp(peer, port)).map_or(Verdict::Drop, |m| m.verdict)
}

/// What a container may send, before its own rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressPolicy {
    /// Its egress rules decide; DNS to its resolvers always works.
    Open { dns: Vec<IpAddr> },
    /// Nothing leaves.
    Block,
    /// Only TCP to the proxy leaves.
    Proxy { address: IpAddr, port: u16 },
}

/// Everything nft holds for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRules {
    /// The daemon's table.
    pub table: String,
    /// The container id (chains are `e_<id>` and `i_<id>`).
    pub id: String,
    pub address: Ipv4Addr,
    pub veth: String,
    pub egress_policy: EgressPolicy,
    pub egress: Vec<Match>,
    pub ingress: Vec<Match>,
}

fn peer_match(peer: &IpNet, direction_field: &str) -> Value {
    let (proto, addr) = match peer {
        IpNet::V4(n) => ("ip", prefix(n.network().to_string(), n.prefix_len())),
        IpNet::V6(n) => ("ip6", prefix(n.network().to_string(), n.prefix_len())),
    };
    eq(payload(proto, direction_field), addr)
}

fn ports_value(ports: &[(u16, u16)]) -> Value {
    let items: Vec<Value> =
        ports.iter().map(|&(a, b)| if a == b { json!(a) } else { json!({ "range": [a, b] }) }).collect();
    if items.len() == 1 { items.into_iter().next().unwrap_or(Value::Null) } else { json!({ "set": items }) }
}

fn verdict(v: Verdict, l4: L4) -> Value {
    match (v, l4) {
        (Verdict::Accept, _) => accept(),
        (Verdict::Drop, _) => drop(),
        (Verdict::Reject, L4::Tcp) => json!({ "reject": { "type": "tcp reset" } }),
        (Verdict::Reject, _) => json!({ "reject": { "type": "icmpx", "expr": "port-unreachable" } }),
    }
}

/// The statements of one rule. `peer_field` is `saddr` (ingress) or
/// `daddr` (egress).
fn render(m: &Match, peer_field: &str) -> Vec<Value> {
    let mut expr = Vec::new();
    match m.l4 {
        L4::Tcp => expr.push(eq(meta("l4proto"), json!("tcp"))),
        L4::Udp => expr.push(eq(meta("l4proto"), json!("udp"))),
        L4::Icmp => expr.push(matches_icmp()),
        L4::Any => {}
    }
    if let Some(peer) = &m.peer {
        expr.push(peer_match(peer, peer_field));
    }
    if !m.ports.is_empty() {
        expr.push(eq(payload("th", "dport"), ports_value(&m.ports)));
    }
    // A reject of "any" protocol answers TCP with a reset and the rest with
    // ICMP unreachable, as users expect from "reject".
    if m.verdict == Verdict::Reject && m.l4 == L4::Any {
        let mut tcp = expr.clone();
        tcp.push(eq(meta("l4proto"), json!("tcp")));
        tcp.push(json!({ "reject": { "type": "tcp reset" } }));
        return tcp;
    }
    expr.push(verdict(m.verdict, m.l4));
    expr
}

fn matches_icmp() -> Value {
    eq(meta("l4proto"), json!({ "set": ["icmp", "ipv6-icmp"] }))
}

impl ContainerRules {
    pub fn egress_chain(&self) -> String {
        format!("e_{}", self.id)
    }

    pub fn ingress_chain(&self) -> String {
        format!("i_{}", self.id)
    }

    fn rules_of(&self, chain_name: &str, matches: &[Match], peer_field: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for m in matches {
            out.push(rule("inet", &self.table, chain_name, render(m, peer_field)));
            if m.verdict == Verdict::Reject && m.l4 == L4::Any {
                // Second half of a reject of any protocol (see `render`).
                let mut rest: Vec<Value> =
                    render(&Match { l4: L4::Any, verdict: Verdict::Drop, ..m.clone() }, peer_field);
                rest.pop();
                rest.push(json!({ "reject": { "type": "icmpx", "expr": "port-unreachable" } }));
                out.push(rule("inet", &self.table, chain_name, rest));
            }
        }
        out.push(rule("inet", &self.table, chain_name, vec![drop()]));
        out
    }

    /// Commands that install (or replace) the container's chains and elements.
    pub fn install(&self, b: &mut Batch) {
        let t = &self.table;
        let (e, i) = (self.egress_chain(), self.ingress_chain());
        for name in [&e, &i] {
            b.add(chain("inet", t, name));
            b.flush(chain("inet", t, name));
        }
        match &self.egress_policy {
            EgressPolicy::Open { dns } => {
                for server in dns {
                    let to = peer_match(&IpNet::from(*server), "daddr");
                    b.add(rule(
                        "inet",
                        t,
                        &e,
                        vec![
                            eq(meta("l4proto"), json!({ "set": ["udp", "tcp"] })),
                            to,
                            eq(payload("th", "dport"), json!(53)),
                            accept(),
                        ],
                    ));
                }
                for r in self.rules_of(&e, &self.egress, "daddr") {
                    b.add(r);
                }
            }
            EgressPolicy::Block => b.add(rule("inet", t, &e, vec![drop()])),
            EgressPolicy::Proxy { address, port } => {
                let to = peer_match(&IpNet::from(*address), "daddr");
                b.add(rule(
                    "inet",
                    t,
                    &e,
                    vec![eq(meta("l4proto"), json!("tcp")), to, eq(payload("th", "dport"), json!(port)), accept()],
                ));
                b.add(rule("inet", t, &e, vec![drop()]));
            }
        }
        for r in self.rules_of(&i, &self.ingress, "saddr") {
            b.add(r);
        }
        let addr = self.address.to_string();
        b.add(element("inet", t, EGRESS_MAP, vec![json!([addr, jump(&e)])]));
        b.add(element("inet", t, INGRESS_MAP, vec![json!([addr, jump(&i)])]));
        b.add(element("bridge", t, ALLOWED_SET, vec![json!({ "concat": [self.veth, addr] })]));
        let mac = crate::ipam::mac_text(self.address);
        b.add(element("bridge", t, PORTS_SET, vec![json!({ "concat": [self.veth, mac] })]));
    }

    /// Commands that remove the container's chains and elements, whether
    /// or not they exist (each object is added before it is deleted).
    pub fn remove(table: &str, id: &str, address: Ipv4Addr, veth: &str, b: &mut Batch) {
        let (e, i) = (format!("e_{id}"), format!("i_{id}"));
        let addr = address.to_string();
        for (map, target) in [(EGRESS_MAP, &e), (INGRESS_MAP, &i)] {
            b.add(chain("inet", table, target));
            b.add(element("inet", table, map, vec![json!([addr, jump(target)])]));
            b.delete(element("inet", table, map, vec![json!(addr)]));
        }
        for name in [&e, &i] {
            b.flush(chain("inet", table, name));
            b.delete(chain("inet", table, name));
        }
        let mac = crate::ipam::mac_text(address);
        for (set, key) in [(ALLOWED_SET, addr), (PORTS_SET, mac)] {
            let spoof = vec![json!({ "concat": [veth, key] })];
            b.add(element("bridge", table, set, spoof.clone()));
            b.delete(element("bridge", table, set, spoof));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(policy: EgressPolicy) -> ContainerRules {
        ContainerRules {
            table: "t".into(),
            id: "cabc".into(),
            address: Ipv4Addr::new(10, 0, 0, 2),
            veth: "t-1".into(),
            egress_policy: policy,
            egress: vec![Match { verdict: Verdict::Reject, l4: L4::Tcp, ports: vec![(25, 25)], peer: None }],
            ingress: vec![Match {
                verdict: Verdict::Accept,
                l4: L4::Tcp,
                ports: vec![(8080, 8080)],
                peer: Some("10.0.0.1/32".parse().unwrap()),
            }],
        }
    }

    #[test]
    fn install_renders_both_chains_and_elements() {
        let mut b = Batch::new();
        sample(EgressPolicy::Open { dns: vec!["192.0.2.53".parse().unwrap()] }).install(&mut b);
        let text = b.to_json().to_string();
        for needle in [
            "e_cabc",
            "i_cabc",
            "tcp reset",
            "192.0.2.53",
            "\"dport\"",
            "10.0.0.1",
            "\"jump\"",
            "t-1",
            "02:cb:0a:00:00:02",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn block_and_proxy_ignore_user_egress_rules() {
        let mut b = Batch::new();
        sample(EgressPolicy::Block).install(&mut b);
        assert!(!b.to_json().to_string().contains("tcp reset"));
        let mut b = Batch::new();
        sample(EgressPolicy::Proxy { address: "198.18.0.2".parse().unwrap(), port: 3128 }).install(&mut b);
        let text = b.to_json().to_string();
        assert!(text.contains("198.18.0.2") && text.contains("3128") && !text.contains("tcp reset"));
    }

    #[test]
    fn ingress_verdicts_follow_the_first_matching_rule() {
        let gateway: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let rule = |verdict, l4, ports: &[(u16, u16)], peer: Option<&str>| Match {
            verdict,
            l4,
            ports: ports.to_vec(),
            peer: peer.map(|p| p.parse().unwrap()),
        };
        let default = [rule(Verdict::Accept, L4::Tcp, &[(8080, 8080)], Some("10.0.0.1/32"))];
        assert_eq!(ingress_tcp_verdict(&default, gateway, 8080), Verdict::Accept);
        assert_eq!(ingress_tcp_verdict(&default, gateway, 9000), Verdict::Drop, "no rule: the chain drops");
        assert_eq!(ingress_tcp_verdict(&default, other, 8080), Verdict::Drop);
        assert_eq!(ingress_tcp_verdict(&[], gateway, 8080), Verdict::Drop);
        // First match wins, protocol any matches tcp, udp and icmp do not.
        let rules = [
            rule(Verdict::Accept, L4::Udp, &[], None),
            rule(Verdict::Accept, L4::Icmp, &[], None),
            rule(Verdict::Reject, L4::Any, &[(9000, 9100)], Some("10.0.0.0/24")),
            rule(Verdict::Accept, L4::Any, &[], None),
        ];
        assert_eq!(ingress_tcp_verdict(&rules, gateway, 9050), Verdict::Reject);
        assert_eq!(ingress_tcp_verdict(&rules, gateway, 9101), Verdict::Accept);
        // An IPv6 peer never matches an IPv4 address.
        let v6 = [rule(Verdict::Accept, L4::Tcp, &[], Some("::/0"))];
        assert_eq!(ingress_tcp_verdict(&v6, gateway, 8080), Verdict::Drop);
    }

    #[test]
    fn ports_render_as_value_range_or_set() {
        assert_eq!(ports_value(&[(443, 443)]), json!(443));
        assert_eq!(ports_value(&[(8000, 8100)]), json!({"range": [8000, 8100]}));
        assert_eq!(ports_value(&[(80, 80), (443, 443)]), json!({"set": [80, 443]}));
    }
}
