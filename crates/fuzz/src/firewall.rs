//! Firewall rules: the API's JSON rule set, checked rule by rule, turned
//! into nft matches and rendered into an nft JSON batch.

use cubby_model::firewall::{Direction, Protocol, ReplaceFirewall, RuleAction, check_rule, parse_cidr, parse_ports};
use cubby_network::nft::{Batch, ContainerRules, EgressPolicy, L4, Match, Verdict};

/// Fuzzes the whole path of a `PUT /containers/{id}/firewall` body.
///
/// Invariants: a rule that passes the check has ports only on tcp/udp,
/// each range inside 1-65535 and not backwards; re-checking its own
/// request form gives the same rule; what passed renders to nft JSON.
pub fn rules(data: &[u8]) {
    // The text parsers on their own, on the raw input.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ranges) = parse_ports("ports", text) {
            assert!(!ranges.is_empty());
            for r in &ranges {
                assert!(r.first >= 1 && r.first <= r.last, "bad range {r:?} from {text:?}");
            }
        }
        if let Ok(net) = parse_cidr("source", text) {
            assert_eq!(net, net.trunc(), "a CIDR is kept in its network form");
        }
    }
    let Ok(set) = serde_json::from_slice::<ReplaceFirewall>(data) else { return };
    let mut ingress = Vec::new();
    let mut egress = Vec::new();
    for (direction, specs, sink) in
        [(Direction::Ingress, &set.ingress, &mut ingress), (Direction::Egress, &set.egress, &mut egress)]
    {
        for (i, spec) in specs.iter().enumerate() {
            let Ok(rule) = check_rule(direction, i, spec) else { continue };
            if !matches!(rule.protocol, Protocol::Tcp | Protocol::Udp) {
                assert!(rule.ports.is_empty(), "ports on {:?}", rule.protocol);
            }
            for r in &rule.ports {
                assert!(r.first >= 1 && r.first <= r.last);
            }
            // The stored form must check to the same rule again.
            let mut again = spec.clone();
            again.protocol = Some(rule.protocol);
            let rechecked = check_rule(direction, i, &again).expect("a checked rule checks again");
            assert_eq!(rechecked, rule);
            if rule.enabled {
                sink.push(Match {
                    verdict: match rule.action {
                        RuleAction::Allow => Verdict::Accept,
                        RuleAction::Reject => Verdict::Reject,
                        RuleAction::Drop => Verdict::Drop,
                    },
                    l4: match rule.protocol {
                        Protocol::Tcp => L4::Tcp,
                        Protocol::Udp => L4::Udp,
                        Protocol::Icmp => L4::Icmp,
                        Protocol::Any => L4::Any,
                    },
                    ports: rule.ports.iter().map(|r| (r.first, r.last)).collect(),
                    peer: rule.peer,
                });
            }
        }
    }
    let rules = ContainerRules {
        table: "cubby".into(),
        id: "cfuzz".into(),
        address: [10, 0, 0, 2].into(),
        veth: "cbfuzz".into(),
        egress_policy: EgressPolicy::Open { dns: vec![[10, 0, 0, 1].into()] },
        egress,
        ingress,
    };
    let mut batch = Batch::new();
    rules.install(&mut batch);
    let json = serde_json::to_string(&batch.to_json()).expect("an nft batch serialises");
    assert!(json.contains("e_cfuzz") && json.contains("i_cfuzz"));
}
