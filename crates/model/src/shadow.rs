//! Rules that can never apply: a rule is shadowed when an earlier enabled
//! rule of the same list matches every packet it matches (the first rule
//! that matches decides). A user who appends a deny rule after the default
//! allow-all gets told, instead of a rule that silently does nothing.

use crate::firewall::{CheckedRule, PortRange, check_rule};
use crate::{Direction, Firewall, FirewallRule, Protocol};

/// `ranges` merged where they touch or overlap, sorted.
fn merged(ranges: &[PortRange]) -> Vec<PortRange> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.first);
    let mut out: Vec<PortRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if u32::from(r.first) <= u32::from(last.last) + 1 => last.last = last.last.max(r.last),
            _ => out.push(r),
        }
    }
    out
}

impl CheckedRule {
    /// Whether every packet `other` matches, this rule matches too.
    pub fn covers(&self, other: &CheckedRule) -> bool {
        let protocol = self.protocol == Protocol::Any || self.protocol == other.protocol;
        // No ports: all of them. `other` with no ports is covered only by
        // a rule with none.
        let ports = self.ports.is_empty()
            || (!other.ports.is_empty() && {
                let mine = merged(&self.ports);
                other.ports.iter().all(|o| mine.iter().any(|m| m.first <= o.first && o.last <= m.last))
            });
        let peer = match (self.peer, other.peer) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => mine.contains(&theirs),
        };
        protocol && ports && peer
    }
}

/// The earlier rule of `rules` (a list of `direction`) that shadows rule
/// `index`, if any. Disabled rules neither shadow nor are shadowed; rules
/// that do not check are left to the checks that refuse them.
pub fn shadowed_by(direction: Direction, rules: &[FirewallRule], index: usize) -> Option<&FirewallRule> {
    let checked = |i: usize| check_rule(direction, i, &rules[i].spec()).ok().filter(|c| c.enabled);
    let target = checked(index)?;
    (0..index).find(|&i| checked(i).is_some_and(|earlier| earlier.covers(&target))).map(|i| &rules[i])
}

/// Marks every shadowed rule of `firewall` with the rule that shadows it.
pub fn mark_shadowed(firewall: &mut Firewall) {
    for (direction, rules) in [(Direction::Ingress, &mut firewall.ingress), (Direction::Egress, &mut firewall.egress)] {
        let marks: Vec<_> = (0..rules.len()).map(|i| shadowed_by(direction, rules, i).map(|r| r.id.clone())).collect();
        for (rule, mark) in rules.iter_mut().zip(marks) {
            rule.shadowed_by = mark;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RuleAction, RuleId, RuleState};

    fn rule(protocol: Protocol, ports: Option<&str>, peer: Option<&str>) -> FirewallRule {
        FirewallRule {
            id: RuleId::random(),
            action: RuleAction::Allow,
            protocol,
            ports: ports.map(str::to_string),
            source: None,
            destination: peer.map(str::to_string),
            description: None,
            state: RuleState::Enabled,
            shadowed_by: None,
        }
    }

    #[test]
    fn an_earlier_rule_that_matches_everything_shadows() {
        let all = rule(Protocol::Any, None, None);
        let deny = FirewallRule { action: RuleAction::Reject, ..rule(Protocol::Tcp, Some("25"), Some("0.0.0.0/0")) };
        let rules = [all.clone(), deny.clone()];
        assert_eq!(shadowed_by(Direction::Egress, &rules, 1).map(|r| &r.id), Some(&all.id));
        // Control: above the allow-all, the deny rule applies.
        let rules = [deny, all];
        assert!(shadowed_by(Direction::Egress, &rules, 1).is_none());
        assert!(shadowed_by(Direction::Egress, &rules, 0).is_none());
    }

    #[test]
    fn partial_overlap_is_not_shadowing() {
        let cases = [
            // (earlier, later, shadowed?)
            (rule(Protocol::Tcp, Some("80,443"), None), rule(Protocol::Tcp, Some("443"), None), true),
            (rule(Protocol::Tcp, Some("80-89,90-100"), None), rule(Protocol::Tcp, Some("85-95"), None), true),
            (rule(Protocol::Tcp, Some("443"), None), rule(Protocol::Tcp, Some("443-444"), None), false),
            (rule(Protocol::Tcp, Some("443"), None), rule(Protocol::Tcp, None, None), false),
            (rule(Protocol::Tcp, None, None), rule(Protocol::Udp, None, None), false),
            (rule(Protocol::Tcp, None, None), rule(Protocol::Any, None, None), false),
            (rule(Protocol::Any, None, Some("10.0.0.0/8")), rule(Protocol::Tcp, None, Some("10.1.2.3")), true),
            (rule(Protocol::Any, None, Some("10.0.0.0/8")), rule(Protocol::Tcp, None, None), false),
            (rule(Protocol::Any, None, Some("10.0.0.0/8")), rule(Protocol::Tcp, None, Some("2001:db8::1")), false),
        ];
        for (i, (earlier, later, shadowed)) in cases.into_iter().enumerate() {
            let rules = [earlier, later];
            assert_eq!(shadowed_by(Direction::Egress, &rules, 1).is_some(), shadowed, "case {i}");
        }
    }

    #[test]
    fn disabled_rules_neither_shadow_nor_are_marked() {
        let off = FirewallRule { state: RuleState::Disabled, ..rule(Protocol::Any, None, None) };
        let later = rule(Protocol::Tcp, Some("22"), None);
        let mut firewall = Firewall { ingress: vec![], egress: vec![off.clone(), later] };
        mark_shadowed(&mut firewall);
        assert!(firewall.egress.iter().all(|r| r.shadowed_by.is_none()));
        let mut firewall = Firewall { ingress: vec![], egress: vec![rule(Protocol::Any, None, None), off] };
        mark_shadowed(&mut firewall);
        assert!(firewall.egress[1].shadowed_by.is_none(), "a disabled rule applies to nothing anyway");
    }
}
