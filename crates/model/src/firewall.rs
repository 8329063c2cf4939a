//! Per-container firewall and network rules: their API shape and the
//! parsing that turns a user's rule into checked, typed values.
//!
//! A rule matches on protocol, ports and an address (the `source` of
//! ingress traffic, the `destination` of egress traffic). Rules are
//! evaluated in order and the first match wins; traffic that matches no
//! rule is dropped. The default set allows all egress, and ingress from the
//! daemon's proxy to the app's port.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::RuleId;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ValidationError;

/// Most rules per container and direction.
pub const MAX_RULES: usize = 64;
/// Most entries in one rule's `ports`.
pub const MAX_PORT_ENTRIES: usize = 16;
/// Most DNS servers of a container.
pub const MAX_DNS_SERVERS: usize = 4;

/// Which traffic a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Connections into the container.
    Ingress,
    /// Connections out of the container.
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingress" => Some(Self::Ingress),
            "egress" => Some(Self::Egress),
            _ => None,
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Let it through.
    Allow,
    /// Refuse at once (TCP reset, ICMP unreachable).
    Reject,
    /// Discard silently (the peer times out).
    Drop,
}

/// Which protocol a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    #[default]
    Any,
}

/// Whether a rule is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    #[default]
    Enabled,
    Disabled,
}

/// A firewall rule, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FirewallRule {
    /// Stable id, for PATCH and DELETE.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: RuleId,
    pub action: RuleAction,
    pub protocol: Protocol,
    /// `443`, `8000-8100` or `80,443`; only with tcp or udp. All ports when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// Ingress only: the peer's address or CIDR. Any when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Egress only: the peer's address or CIDR. Any when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub state: RuleState,
    /// In answers: the earlier rule that matches everything this one
    /// matches, so this one never applies. Not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub shadowed_by: Option<RuleId>,
}

/// A rule in a request (POST adds one, PUT replaces the set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub action: Option<RuleAction>,
    /// `any` when left out.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default)]
    pub ports: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub state: Option<RuleState>,
    /// POST only: insert at this index (0 is first); appended when absent.
    /// The default rules end with an allow-all: put deny rules above it
    /// (`position: 0`).
    #[serde(default)]
    pub position: Option<u32>,
    /// POST only: accept a rule an earlier rule shadows (it never
    /// applies); refused with 409 `rule_shadowed` otherwise.
    #[serde(default)]
    pub allow_shadowed: Option<bool>,
}

fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of PATCH on one rule: fields given replace the rule's; `null`
/// clears `ports`, `source`, `destination` or `description`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default)]
    pub action: Option<RuleAction>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ports: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub destination: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub state: Option<RuleState>,
    /// Accept the change even if an earlier rule then shadows this one.
    #[serde(default)]
    pub allow_shadowed: Option<bool>,
}

/// A container's firewall: each list in evaluation order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Firewall {
    pub ingress: Vec<FirewallRule>,
    pub egress: Vec<FirewallRule>,
}

/// The body of PUT on the firewall: the whole set, replaced atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplaceFirewall {
    #[serde(default)]
    pub ingress: Vec<RuleSpec>,
    #[serde(default)]
    pub egress: Vec<RuleSpec>,
}

/// How a container may reach the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Egress as the firewall allows.
    #[default]
    Open,
    /// No egress at all.
    Block,
    /// Egress only to `proxy`; HTTP_PROXY, HTTPS_PROXY and ALL_PROXY point at it.
    Proxy,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Block => "block",
            Self::Proxy => "proxy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "block" => Some(Self::Block),
            "proxy" => Some(Self::Proxy),
            _ => None,
        }
    }
}

/// A container's network rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkRules {
    #[serde(default)]
    pub mode: NetworkMode,
    /// With mode `proxy`: `http://host:port` of the egress proxy (an IP address host).
    #[serde(default)]
    pub proxy: Option<String>,
    /// Resolvers for `/etc/resolv.conf` (at most 4); the daemon's when empty.
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A rule once checked: what the firewall renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRule {
    pub action: RuleAction,
    pub protocol: Protocol,
    pub ports: Vec<PortRange>,
    /// The peer (source of ingress, destination of egress); any when `None`.
    pub peer: Option<IpNet>,
    pub enabled: bool,
}

/// Parses `443`, `8000-8100` or `80,443,9000-9010`.
pub fn parse_ports(field: &str, text: &str) -> Result<Vec<PortRange>, ValidationError> {
    let bad = |why: String| {
        ValidationError::new(
            field,
            format!("`{}`: {why}. Write ports like 443, 8000-8100 or 80,443", text.escape_default()),
        )
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() > MAX_PORT_ENTRIES {
        return Err(bad(format!("at most {MAX_PORT_ENTRIES} entries")));
    }
    let port = |p: &str| -> Result<u16, ValidationError> {
        match p.parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(u16::try_from(n).expect("checked range")),
            Ok(n) => Err(bad(format!("port {n} is out of range 1-65535"))),
            Err(_) => Err(bad(format!("`{}` is not a port number", p.escape_default()))),
        }
    };
    let mut ranges = Vec::with_capacity(parts.len());
    for part in parts {
        let range = match part.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (port(a.trim())?, port(b.trim())?);
                if first > last {
                    return Err(bad(format!("the range {first}-{last} runs backwards")));
                }
                PortRange { first, last }
            }
            None => {
                let p = port(part)?;
                PortRange { first: p, last: p }
            }
        };
        ranges.push(range);
    }
    Ok(ranges)
}

/// Parses an address (`10.0.0.1`, `2001:db8::1`) or CIDR (`10.0.0.0/8`).
pub fn parse_cidr(field: &str, text: &str) -> Result<IpNet, ValidationError> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(ValidationError::new(
        field,
        format!("`{}` is not an IPv4 or IPv6 address or CIDR, like 203.0.113.7 or 10.0.0.0/8", text.escape_default()),
    ))
}

/// Checks `spec` for a rule of `direction` (at list index `index`, for
/// messages) and returns it typed.
pub fn check_rule(direction: Direction, index: usize, spec: &RuleSpec) -> Result<CheckedRule, ValidationError> {
    let field = |name: &str| format!("{}[{index}].{name}", direction.as_str());
    let action =
        spec.action.ok_or_else(|| ValidationError::new(field("action"), "give an action: allow, reject or drop"))?;
    let protocol = spec.protocol.unwrap_or_default();
    let ports = match &spec.ports {
        None => Vec::new(),
        Some(p) if matches!(protocol, Protocol::Tcp | Protocol::Udp) => parse_ports(&field("ports"), p)?,
        Some(_) => {
            return Err(ValidationError::new(
                field("ports"),
                format!(
                    "ports only apply to tcp or udp, not {}: remove them or set the protocol",
                    protocol_name(protocol)
                ),
            ));
        }
    };
    let (peer_field, other_field, peer, other) = match direction {
        Direction::Ingress => ("source", "destination", &spec.source, &spec.destination),
        Direction::Egress => ("destination", "source", &spec.destination, &spec.source),
    };
    if other.is_some() {
        return Err(ValidationError::new(
            field(other_field),
            format!("{} rules match the peer with `{peer_field}`, not `{other_field}`", direction.as_str()),
        ));
    }
    let peer = peer.as_deref().map(|p| parse_cidr(&field(peer_field), p)).transpose()?;
    if let Some(d) = &spec.description
        && (d.chars().count() > 255 || d.chars().any(char::is_control))
    {
        return Err(ValidationError::new(field("description"), "at most 255 printable characters"));
    }
    Ok(CheckedRule { action, protocol, ports, peer, enabled: spec.state.unwrap_or_default() == RuleState::Enabled })
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::Any => "any",
    }
}

impl FirewallRule {
    /// The request form of this rule (to re-check or copy it).
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            action: Some(self.action),
            protocol: Some(self.protocol),
            ports: self.ports.clone(),
            source: self.source.clone(),
            destination: self.destination.clone(),
            description: self.description.clone(),
            state: Some(self.state),
            position: None,
            allow_shadowed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_singles_ranges_and_lists() {
        assert_eq!(parse_ports("p", "443").unwrap(), vec![PortRange { first: 443, last: 443 }]);
        assert_eq!(parse_ports("p", "8000-8100").unwrap(), vec![PortRange { first: 8000, last: 8100 }]);
        assert_eq!(parse_ports("p", "80, 443").unwrap().len(), 2);
        for bad in ["0", "65536", "abc", "10-5", "", "1-", "-1", "80,,81", &"1,".repeat(20)] {
            assert!(parse_ports("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_accept_addresses_and_prefixes() {
        assert_eq!(parse_cidr("c", "10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_cidr("c", "10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("c", "2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        for bad in ["10.0.0.0/33", "300.1.1.1", "example.com", "", "10.0.0.0/-1"] {
            assert!(parse_cidr("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_are_checked_per_direction() {
        let spec = RuleSpec {
            action: Some(RuleAction::Allow),
            protocol: Some(Protocol::Icmp),
            ports: Some("80".into()),
            ..Default::default()
        };
        let err = check_rule(Direction::Egress, 2, &spec).unwrap_err();
        assert_eq!(err.field, "egress[2].ports");
        let spec = RuleSpec { action: Some(RuleAction::Drop), source: Some("10.0.0.1".into()), ..Default::default() };
        assert_eq!(check_rule(Direction::Egress, 0, &spec).unwrap_err().field, "egress[0].source");
        let ok = check_rule(Direction::Ingress, 0, &spec).unwrap();
        assert_eq!(ok.peer.unwrap().to_string(), "10.0.0.1/32");
        let none = RuleSpec::default();
        assert_eq!(check_rule(Direction::Ingress, 0, &none).unwrap_err().field, "ingress[0].action");
    }

    #[test]
    fn unknown_actions_are_refused_by_the_parser() {
        let err = serde_json::from_str::<RuleSpec>(r#"{"action":"permit"}"#).unwrap_err();
        assert!(err.to_string().contains("permit"));
        let patch: RulePatch = serde_json::from_str(r#"{"ports":null,"state":"disabled"}"#).unwrap();
        assert_eq!(patch.ports, Some(None));
        assert_eq!(patch.source, None);
    }
}
