//! Per-container firewall and network rules, part of the
//! [`NetworkService`]: the API operations, the defaults, and turning stored
//! rules into nft chains.
//!
//! Every change is checked as a whole, applied to the kernel as one nft
//! transaction, and only then stored; a refused or failed change leaves
//! the old rules in force. Guards that no rule can lift (no traffic to other
//! containers, to the host or to the daemon) live in the base table.

use std::net::IpAddr;

use cubby_model::firewall::{MAX_DNS_SERVERS, MAX_RULES, check_rule};
use cubby_model::shadow::{mark_shadowed, shadowed_by};
use cubby_model::{
    ContainerId, Direction, Firewall, FirewallRule, NetworkMode, NetworkRules, Protocol, ReplaceFirewall, RuleAction,
    RuleId, RulePatch, RuleSpec, RuleState,
};
use cubby_network::{Batch, ContainerRules, EgressPolicy, L4, Match, Verdict};
use cubby_store::ContainerRecord;
use tracing::Instrument;

use super::NetworkService;
use crate::{Caller, Error};

/// `firewall` as answers show it: shadowed rules marked.
fn marked(mut firewall: Firewall) -> Firewall {
    mark_shadowed(&mut firewall);
    firewall
}

/// The file in the data dir naming the subnet the state was last served
/// with.
pub(crate) const SUBNET_FILE: &str = "subnet";

/// Moves every rule whose source or destination is the address `from`
/// (alone or as a /32) to `to`; returns how many fields changed. For
/// rules that name a daemon's proxy, when they move to another daemon or
/// subnet.
pub(crate) fn repoint(firewall: &mut Firewall, from: &str, to: &str) -> usize {
    let host = format!("{from}/32");
    let mut changed = 0;
    for rule in firewall.ingress.iter_mut().chain(firewall.egress.iter_mut()) {
        for field in [&mut rule.source, &mut rule.destination] {
            if field.as_deref().is_some_and(|v| v == from || v == host) {
                *field = Some(to.to_string());
                changed += 1;
            }
        }
    }
    changed
}

/// A proxy URL's address and port (`http://198.51.100.7:3128`).
pub(crate) fn parse_proxy(url: &str) -> Result<(IpAddr, u16), Error> {
    let bad = || {
        Error::invalid(
            "proxy",
            format!(
                "`{}` is not a proxy URL: write http://<IP address>:<port>, like http://10.0.0.9:3128",
                url.escape_default()
            ),
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?.trim_end_matches('/');
    let addr: std::net::SocketAddr = rest.parse().map_err(|_| bad())?;
    if addr.port() == 0 {
        return Err(bad());
    }
    Ok((addr.ip(), addr.port()))
}

impl NetworkService {
    /// The rules a new container starts with: all egress allowed (the base
    /// guards still apply), and ingress from the daemon's proxy to its app.
    pub(crate) fn default_firewall(&self, port: u16) -> Firewall {
        Firewall {
            ingress: vec![FirewallRule {
                id: RuleId::random(),
                action: RuleAction::Allow,
                protocol: Protocol::Tcp,
                ports: Some(port.to_string()),
                source: Some(self.ipam.gateway().to_string()),
                destination: None,
                description: Some("default: the daemon's proxy to the app's port".into()),
                state: RuleState::Enabled,
                shadowed_by: None,
            }],
            egress: vec![FirewallRule {
                id: RuleId::random(),
                action: RuleAction::Allow,
                protocol: Protocol::Any,
                ports: None,
                source: None,
                destination: None,
                description: Some("default: open to the world (other containers and the host stay unreachable)".into()),
                state: RuleState::Enabled,
                shadowed_by: None,
            }],
        }
    }

    /// The address the proxy's connections to containers come from.
    pub(crate) fn proxy_source(&self) -> String {
        self.ipam.gateway().to_string()
    }

    /// Keeps rules naming the proxy's address right when the state moved to
    /// another subnet (a restored backup started with its own `--subnet`):
    /// the subnet the state was last served with is in `<data>/subnet`,
    /// and a rule whose source or destination is that subnet's gateway
    /// (the default ingress rule, and any the tenant wrote for the proxy)
    /// is moved to this one's. Returns how many rules moved.
    pub(crate) fn follow_subnet(&self) -> Result<usize, Error> {
        let file = self.settings.layout.data_dir.join(SUBNET_FILE);
        let now = self.ipam.subnet();
        let before = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<ipnet::Ipv4Net>().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read", &file)(e)),
        };
        let mut moved = 0;
        if let Some(old) = before.filter(|old| *old != now)
            && let Some(old_gateway) = old.hosts().next()
        {
            let (from, to) = (old_gateway.to_string(), self.ipam.gateway().to_string());
            for rec in self.store.containers(None, None, u32::MAX)? {
                let mut firewall = self.store.firewall(&rec.id)?;
                let changed = repoint(&mut firewall, &from, &to);
                if changed > 0 {
                    self.store.replace_firewall(&rec.id, &firewall)?;
                    moved += changed;
                }
            }
            tracing::info!(from = %old, to = %now, rules = moved, "the subnet changed: rules naming the proxy follow it");
        }
        if before != Some(now) {
            let partial = file.with_extension("tmp");
            std::fs::write(&partial, format!("{now}\n")).map_err(Error::io("write", &partial))?;
            std::fs::rename(&partial, &file).map_err(Error::io("rename", &partial))?;
        }
        Ok(moved)
    }

    /// Checks a whole rule set.
    pub(crate) fn check_firewall(firewall: &Firewall) -> Result<(Vec<Match>, Vec<Match>), Error> {
        let mut out = (Vec::new(), Vec::new());
        for (direction, rules, sink) in
            [(Direction::Ingress, &firewall.ingress, &mut out.0), (Direction::Egress, &firewall.egress, &mut out.1)]
        {
            if rules.len() > MAX_RULES {
                return Err(Error::invalid(
                    direction.as_str(),
                    format!("{} rules given; a container has at most {MAX_RULES} per direction", rules.len()),
                ));
            }
            for (i, rule) in rules.iter().enumerate() {
                let checked = check_rule(direction, i, &rule.spec())?;
                if !checked.enabled {
                    continue;
                }
                sink.push(Match {
                    verdict: match checked.action {
                        RuleAction::Allow => Verdict::Accept,
                        RuleAction::Reject => Verdict::Reject,
                        RuleAction::Drop => Verdict::Drop,
                    },
                    l4: match checked.protocol {
                        Protocol::Tcp => L4::Tcp,
                        Protocol::Udp => L4::Udp,
                        Protocol::Icmp => L4::Icmp,
                        Protocol::Any => L4::Any,
                    },
                    ports: checked.ports.iter().map(|r| (r.first, r.last)).collect(),
                    peer: checked.peer,
                });
            }
        }
        Ok(out)
    }

    /// Checks network rules.
    pub(crate) fn check_network(rules: &NetworkRules) -> Result<(), Error> {
        match (rules.mode, &rules.proxy) {
            (NetworkMode::Proxy, None) => {
                return Err(Error::invalid("proxy", "mode `proxy` needs `proxy`, like http://10.0.0.9:3128"));
            }
            (NetworkMode::Proxy, Some(url)) => {
                parse_proxy(url)?;
            }
            (_, Some(_)) => return Err(Error::invalid("proxy", "`proxy` applies only with mode `proxy`")),
            (_, None) => {}
        }
        if rules.dns_servers.len() > MAX_DNS_SERVERS {
            return Err(Error::invalid("dns_servers", format!("at most {MAX_DNS_SERVERS} servers")));
        }
        for (i, s) in rules.dns_servers.iter().enumerate() {
            s.parse::<IpAddr>().map_err(|_| {
                Error::invalid(format!("dns_servers[{i}]"), format!("`{}` is not an IP address", s.escape_default()))
            })?;
        }
        Ok(())
    }

    /// The resolvers a container uses: its own, else the daemon's.
    pub(crate) fn resolvers(&self, rules: &NetworkRules) -> Vec<IpAddr> {
        let own: Vec<IpAddr> = rules.dns_servers.iter().filter_map(|s| s.parse().ok()).collect();
        if own.is_empty() { self.settings.dns_servers.clone() } else { own }
    }

    /// The nft form of a container's rules.
    pub(crate) fn container_rules(
        &self,
        rec: &ContainerRecord,
        firewall: &Firewall,
        network: &NetworkRules,
    ) -> Result<ContainerRules, Error> {
        let (ingress, egress) = Self::check_firewall(firewall)?;
        let egress_policy = match network.mode {
            NetworkMode::Open => EgressPolicy::Open { dns: self.resolvers(network) },
            NetworkMode::Block => EgressPolicy::Block,
            NetworkMode::Proxy => {
                let (address, port) = parse_proxy(network.proxy.as_deref().unwrap_or_default())?;
                EgressPolicy::Proxy { address, port }
            }
        };
        let paths = self.paths(&rec.id, rec.slot);
        Ok(ContainerRules {
            table: self.settings.layout.prefix.clone(),
            id: rec.id.to_string(),
            address: self.ipam.address(rec.slot).map_err(|e| Error::invalid("slot", e.to_string()))?,
            veth: paths.veth,
            egress_policy,
            egress,
            ingress,
        })
    }

    /// Installs (or replaces) a container's chains, as stored.
    pub(crate) async fn install_firewall(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let firewall = self.store.firewall(&rec.id)?;
        let network = self.store.network(&rec.id)?;
        let mut batch = Batch::new();
        self.container_rules(rec, &firewall, &network)?.install(&mut batch);
        self.apply(batch, "install container rules").await
    }

    /// Removes a container's chains and map elements. Idempotent.
    pub(crate) async fn remove_firewall(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let paths = self.paths(&rec.id, rec.slot);
        let address = self.ipam.address(rec.slot).map_err(|e| Error::invalid("slot", e.to_string()))?;
        let mut batch = Batch::new();
        ContainerRules::remove(&self.settings.layout.prefix, rec.id.as_str(), address, &paths.veth, &mut batch);
        self.apply(batch, "remove container rules").await
    }

    pub(crate) async fn apply(&self, batch: Batch, step: &'static str) -> Result<(), Error> {
        let span = tracing::debug_span!("firewall.apply", step, commands = batch.len());
        let started = std::time::Instant::now();
        let applied = self.nft.apply(&self.settings.layout.prefix, &batch).instrument(span).await;
        self.apply_times.observe(step, started.elapsed().as_secs_f64());
        applied.map_err(|source| Error::Firewall { step, source: Box::new(source) })
    }

    /// Checks, applies and stores a container's new rules; the caller holds
    /// its lock. Nothing changes unless all of it succeeds.
    async fn commit_rules(
        &self,
        caller: &Caller,
        rec: &ContainerRecord,
        firewall: &Firewall,
        network: &NetworkRules,
    ) -> Result<(), Error> {
        Self::check_network(network)?;
        let rules = self.container_rules(rec, firewall, network)?;
        let mut batch = Batch::new();
        rules.install(&mut batch);
        self.apply(batch, "replace container rules").await?;
        let stored =
            self.store.replace_firewall(&rec.id, firewall).and_then(|()| self.store.set_network(&rec.id, network));
        if let Err(e) = stored {
            // Put the kernel back in step with what is stored.
            if let Err(undo) = self.install_firewall(rec).await {
                tracing::error!(container = %rec.id, error = %undo, "could not restore the previous rules");
            }
            return Err(e.into());
        }
        self.events.emit(crate::events::Happened {
            kind: cubby_model::EventType::FirewallChanged,
            project: &rec.project_id,
            container: Some(&rec.id),
            trigger: None,
            caller: Some(caller),
            data: serde_json::json!({
                "ingress_rules": firewall.ingress.len(),
                "egress_rules": firewall.egress.len(),
                "network_mode": network.mode,
            }),
        });
        Ok(())
    }

    async fn locked_record(
        &self,
        caller: &Caller,
        id: &ContainerId,
    ) -> Result<(crate::locks::ContainerLock, ContainerRecord), Error> {
        let guard = self.locks.lock(id).await;
        let rec = crate::containers::visible(&*self.store, caller, id)?;
        Ok((guard, rec))
    }

    /// A container's firewall rules, shadowed ones marked.
    pub fn firewall(&self, caller: &Caller, id: &ContainerId) -> Result<Firewall, Error> {
        crate::containers::visible(&*self.store, caller, id).and_then(|_| Ok(marked(self.store.firewall(id)?)))
    }

    /// Changes the rules of one direction with `edit`, then checks,
    /// applies and stores the whole set under the container's lock. The
    /// rule `edit` names (added or changed) must not end up shadowed by an
    /// earlier one, unless `allow_shadowed`.
    async fn edit_rules<T>(
        &self,
        caller: &Caller,
        id: &ContainerId,
        direction: Direction,
        allow_shadowed: bool,
        edit: impl FnOnce(&mut Vec<FirewallRule>) -> Result<(T, Option<RuleId>), Error>,
    ) -> Result<T, Error> {
        let (_guard, rec) = self.locked_record(caller, id).await?;
        let mut firewall = self.store.firewall(id)?;
        let list = match direction {
            Direction::Ingress => &mut firewall.ingress,
            Direction::Egress => &mut firewall.egress,
        };
        let (edited, changed) = edit(list)?;
        if let Some(index) = changed.and_then(|changed| list.iter().position(|r| r.id == changed))
            && !allow_shadowed
            && let Some(earlier) = shadowed_by(direction, list, index)
        {
            let position = list.iter().position(|r| r.id == earlier.id).unwrap_or(0);
            return Err(Error::Conflict {
                code: "rule_shadowed",
                message: format!(
                    "the earlier {} rule {} ({}) matches everything this rule matches, so this one would never \
                     apply: put it above that rule (`position: {position}`), change or remove the earlier rule, or \
                     pass `\"allow_shadowed\": true`",
                    direction.as_str(),
                    earlier.id,
                    earlier.description.as_deref().unwrap_or("no description"),
                ),
            });
        }
        let network = self.store.network(id)?;
        self.commit_rules(caller, &rec, &firewall, &network).await?;
        Ok(edited)
    }

    /// Adds a rule, at `spec.position` or at the end.
    pub async fn add_rule(
        &self,
        caller: &Caller,
        id: &ContainerId,
        direction: Direction,
        spec: &RuleSpec,
    ) -> Result<FirewallRule, Error> {
        self.edit_rules(caller, id, direction, spec.allow_shadowed.unwrap_or(false), |list| {
            check_rule(direction, list.len(), spec)?;
            let rule = FirewallRule {
                id: RuleId::random(),
                action: spec.action.unwrap_or(RuleAction::Allow),
                protocol: spec.protocol.unwrap_or_default(),
                ports: spec.ports.clone(),
                source: spec.source.clone(),
                destination: spec.destination.clone(),
                description: spec.description.clone(),
                state: spec.state.unwrap_or_default(),
                shadowed_by: None,
            };
            let at = match spec.position {
                None => list.len(),
                Some(p) if (p as usize) <= list.len() => p as usize,
                Some(p) => {
                    return Err(Error::invalid(
                        "position",
                        format!("{p} is past the end: the list has {} rules", list.len()),
                    ));
                }
            };
            list.insert(at, rule.clone());
            let added = Some(rule.id.clone());
            Ok((rule, added))
        })
        .await
    }

    /// Changes one rule.
    pub async fn patch_rule(
        &self,
        caller: &Caller,
        id: &ContainerId,
        direction: Direction,
        rule_id: &RuleId,
        patch: &RulePatch,
    ) -> Result<FirewallRule, Error> {
        self.edit_rules(caller, id, direction, patch.allow_shadowed.unwrap_or(false), |list| {
            let rule = list
                .iter_mut()
                .find(|r| &r.id == rule_id)
                .ok_or_else(|| Error::NotFound { kind: "firewall_rule", id: rule_id.to_string() })?;
            if let Some(a) = patch.action {
                rule.action = a;
            }
            if let Some(p) = patch.protocol {
                rule.protocol = p;
            }
            if let Some(p) = &patch.ports {
                rule.ports.clone_from(p);
            }
            if let Some(s) = &patch.source {
                rule.source.clone_from(s);
            }
            if let Some(d) = &patch.destination {
                rule.destination.clone_from(d);
            }
            if let Some(d) = &patch.description {
                rule.description.clone_from(d);
            }
            if let Some(s) = patch.state {
                rule.state = s;
            }
            Ok((rule.clone(), Some(rule_id.clone())))
        })
        .await
    }

    /// Removes one rule.
    pub async fn delete_rule(
        &self,
        caller: &Caller,
        id: &ContainerId,
        direction: Direction,
        rule_id: &RuleId,
    ) -> Result<(), Error> {
        // A removal never makes a rule unreachable.
        self.edit_rules(caller, id, direction, true, |list| {
            let before = list.len();
            list.retain(|r| &r.id != rule_id);
            if list.len() == before {
                return Err(Error::NotFound { kind: "firewall_rule", id: rule_id.to_string() });
            }
            Ok(((), None))
        })
        .await
    }

    /// Replaces the whole rule set atomically.
    pub async fn replace_firewall(
        &self,
        caller: &Caller,
        id: &ContainerId,
        req: &ReplaceFirewall,
    ) -> Result<Firewall, Error> {
        let (_guard, rec) = self.locked_record(caller, id).await?;
        let make = |direction: Direction, specs: &[RuleSpec]| -> Result<Vec<FirewallRule>, Error> {
            specs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if s.position.is_some() {
                        return Err(Error::invalid(
                            format!("{}[{i}].position", direction.as_str()),
                            "PUT takes the rules in order; leave out position",
                        ));
                    }
                    check_rule(direction, i, s)?;
                    Ok(FirewallRule {
                        id: RuleId::random(),
                        action: s.action.unwrap_or(RuleAction::Allow),
                        protocol: s.protocol.unwrap_or_default(),
                        ports: s.ports.clone(),
                        source: s.source.clone(),
                        destination: s.destination.clone(),
                        description: s.description.clone(),
                        state: s.state.unwrap_or_default(),
                        shadowed_by: None,
                    })
                })
                .collect()
        };
        let firewall = Firewall {
            ingress: make(Direction::Ingress, &req.ingress)?,
            egress: make(Direction::Egress, &req.egress)?,
        };
        let network = self.store.network(id)?;
        self.commit_rules(caller, &rec, &firewall, &network).await?;
        Ok(marked(firewall))
    }

    /// Goes back to the default rules.
    pub async fn reset_firewall(&self, caller: &Caller, id: &ContainerId) -> Result<Firewall, Error> {
        let (_guard, rec) = self.locked_record(caller, id).await?;
        let firewall = self.default_firewall(rec.port);
        let network = self.store.network(id)?;
        self.commit_rules(caller, &rec, &firewall, &network).await?;
        Ok(marked(firewall))
    }

    /// A container's network rules.
    pub fn network_rules(&self, caller: &Caller, id: &ContainerId) -> Result<NetworkRules, Error> {
        crate::containers::visible(&*self.store, caller, id).and_then(|_| Ok(self.store.network(id)?))
    }

    /// Replaces a container's network rules. The firewall part applies at
    /// once; resolvers are rewritten at once; the proxy variables reach the
    /// app's environment at its next start.
    pub async fn set_network(
        &self,
        caller: &Caller,
        id: &ContainerId,
        rules: &NetworkRules,
    ) -> Result<NetworkRules, Error> {
        let (_guard, rec) = self.locked_record(caller, id).await?;
        let firewall = self.store.firewall(id)?;
        self.commit_rules(caller, &rec, &firewall, rules).await?;
        let paths = self.paths(&rec.id, rec.slot);
        if paths.resolv_conf.exists() {
            // Written in place: the container sees it through its bind mount.
            std::fs::write(&paths.resolv_conf, self.resolv_conf(rules))
                .map_err(Error::io("write", &paths.resolv_conf))?;
        }
        Ok(rules.clone())
    }

    /// The `/etc/resolv.conf` of a container.
    pub(crate) fn resolv_conf(&self, rules: &NetworkRules) -> String {
        self.resolvers(rules).iter().map(|s| format!("nameserver {s}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert_eq!(parse_proxy("http://10.0.0.9:3128").unwrap(), ("10.0.0.9".parse().unwrap(), 3128));
        assert_eq!(parse_proxy("http://[2001:db8::1]:8080/").unwrap().1, 8080);
        for bad in
            ["10.0.0.9:3128", "http://proxy.example:3128", "http://10.0.0.9", "http://10.0.0.9:0", "https://10.0.0.9:1"]
        {
            assert!(parse_proxy(bad).is_err(), "{bad}");
        }
    }
}
