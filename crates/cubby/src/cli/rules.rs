//! `cubby firewall` and `cubby network`: a container's firewall rules and
//! network rules.

use clap::Subcommand;
use cubby_model::{Direction, NetworkMode, NetworkRules, Protocol, RuleAction, RuleSpec, RuleState};
use serde::de::DeserializeOwned;

use super::output::{print, print_one};
use super::{Connection, Target};

/// A value of one of the API's enums, as the API spells it.
fn parse_word<T: DeserializeOwned>(s: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(s.to_string()))?)
}

fn parse_direction(s: &str) -> anyhow::Result<Direction> {
    Direction::parse(s).ok_or_else(|| anyhow::anyhow!("`{s}` is not a direction: ingress or egress"))
}

#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Show a container's rules, ingress then egress, in order.
    List(Target),
    /// Add a rule (at the end, or at --position; the default rules end
    /// with an allow-all: put deny rules above it with --position 0).
    Add {
        /// Container id.
        id: String,
        /// ingress or egress.
        #[arg(value_parser = parse_direction)]
        direction: Direction,
        /// allow, reject or drop.
        #[arg(long, value_parser = parse_word::<RuleAction>)]
        action: Option<RuleAction>,
        /// tcp, udp, icmp or any.
        #[arg(long, value_parser = parse_word::<Protocol>)]
        protocol: Option<Protocol>,
        /// `443`, `8000-8100` or `80,443` (tcp or udp only).
        #[arg(long)]
        ports: Option<String>,
        /// Peer address or CIDR: the source of ingress rules.
        #[arg(long)]
        source: Option<String>,
        /// Peer address or CIDR: the destination of egress rules.
        #[arg(long)]
        destination: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// enabled or disabled.
        #[arg(long, value_parser = parse_word::<RuleState>)]
        state: Option<RuleState>,
        /// Where in the list (0: first).
        #[arg(long)]
        position: Option<u32>,
        /// Add it even if an earlier rule shadows it (it would never apply).
        #[arg(long)]
        allow_shadowed: bool,
        #[command(flatten)]
        c: Connection,
    },
    /// Remove one rule.
    Delete {
        /// Container id.
        id: String,
        #[arg(value_parser = parse_direction)]
        direction: Direction,
        /// The rule's id.
        rule: String,
        #[command(flatten)]
        c: Connection,
    },
    /// Go back to the default rules.
    Reset(Target),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Show a container's network rules.
    Get(Target),
    /// Replace a container's network rules.
    Set {
        /// Container id.
        id: String,
        /// open (default), block, or proxy (egress only through --proxy).
        #[arg(long, value_parser = parse_word::<NetworkMode>)]
        mode: Option<NetworkMode>,
        /// http://<IP>:<port>, with --mode proxy.
        #[arg(long)]
        proxy: Option<String>,
        /// A resolver, repeatable (default: the daemon's).
        #[arg(long = "dns")]
        dns_servers: Vec<String>,
        #[command(flatten)]
        c: Connection,
    },
}

pub fn firewall(cmd: FirewallCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        FirewallCommand::List(Target { id, c }) => {
            let f = c.client()?.firewall(&id)?;
            if c.json {
                print_one(true, &f);
            } else {
                let rules: Vec<_> = f
                    .ingress
                    .iter()
                    .map(|r| (Direction::Ingress, r))
                    .chain(f.egress.iter().map(|r| (Direction::Egress, r)))
                    .collect();
                let header = ["DIRECTION", "ID", "ACTION", "PROTOCOL", "PORTS", "PEER", "STATE", "SHADOWED BY"];
                print(false, &rules, &header, |(d, r)| {
                    vec![
                        d.as_str().to_string(),
                        r.id.to_string(),
                        word(&r.action),
                        word(&r.protocol),
                        r.ports.clone().unwrap_or_else(|| "all".into()),
                        r.source.clone().or_else(|| r.destination.clone()).unwrap_or_else(|| "any".into()),
                        word(&r.state),
                        r.shadowed_by.as_ref().map(ToString::to_string).unwrap_or_default(),
                    ]
                });
            }
        }
        FirewallCommand::Add {
            id,
            direction,
            action,
            protocol,
            ports,
            source,
            destination,
            description,
            state,
            position,
            allow_shadowed,
            c,
        } => {
            let allow_shadowed = Some(allow_shadowed);
            let spec =
                RuleSpec { action, protocol, ports, source, destination, description, state, position, allow_shadowed };
            print_one(c.json, &c.client()?.add_rule(&id, direction, &spec)?);
        }
        FirewallCommand::Delete { id, direction, rule, c } => {
            c.client()?.delete_rule(&id, direction, &rule)?;
            if !c.json {
                println!("deleted rule {rule}");
            }
        }
        FirewallCommand::Reset(Target { id, c }) => print_one(c.json, &c.client()?.reset_firewall(&id)?),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn network(cmd: NetworkCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        NetworkCommand::Get(Target { id, c }) => print_one(c.json, &c.client()?.network(&id)?),
        NetworkCommand::Set { id, mode, proxy, dns_servers, c } => {
            let rules = NetworkRules { mode: mode.unwrap_or_default(), proxy, dns_servers };
            print_one(c.json, &c.client()?.set_network(&id, &rules)?);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// An enum value as the API spells it.
fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}
