//! Address management: a container's *slot* number determines its IPv4
//! address in the daemon's subnet and the name of its host-side veth.
//!
//! Slots are allocated by the store (a unique column), so this module is
//! pure arithmetic and holds no state.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The MAC of a container's `eth0`: locally administered, unicast, and
/// derived from its IPv4 address (`02:cb:a:b:c:d`), so the host's
/// firewall knows it without asking the kernel, and a slot reused by a new
/// container keeps a valid neighbour entry on the host.
pub fn mac_for(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0xcb, a, b, c, d]
}

/// [`mac_for`] as text (`02:cb:0a:d8:03:07`).
pub fn mac_text(address: Ipv4Addr) -> String {
    mac_for(address).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Highest slot the daemon hands out, whatever the subnet size: it keeps
/// interface names (`{prefix}-{slot}`) within the kernel's 15 bytes.
pub const MAX_SLOTS: u32 = 65_000;

/// Errors from address planning.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error(
        "subnet {subnet} is too small: it needs room for a gateway and at least one container (use a prefix of /30 or shorter)"
    )]
    SubnetTooSmall { subnet: Ipv4Net },
    #[error("slot {slot} is outside subnet {subnet}, which holds {capacity} containers")]
    SlotOutOfRange { slot: u32, subnet: Ipv4Net, capacity: u32 },
}

/// The container subnet of one daemon: the first host address is the
/// gateway (on the bridge), and slot `n` (starting at 1) gets the `n+1`th.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipam {
    subnet: Ipv4Net,
}

impl Ipam {
    /// Plans addresses in `subnet` (its host bits are ignored).
    pub fn new(subnet: Ipv4Net) -> Result<Self, IpamError> {
        let subnet = subnet.trunc();
        if subnet.prefix_len() > 30 {
            return Err(IpamError::SubnetTooSmall { subnet });
        }
        Ok(Self { subnet })
    }

    /// The subnet, with host bits cleared.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The bridge's address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }

    /// How many containers fit: every host address but the gateway, capped
    /// at [`MAX_SLOTS`].
    pub fn capacity(&self) -> u32 {
        let host_bits = 32 - u32::from(self.subnet.prefix_len());
        // network and broadcast addresses, and the gateway
        let hosts = (1u64 << host_bits).saturating_sub(3);
        u32::try_from(hosts).unwrap_or(u32::MAX).min(MAX_SLOTS)
    }

    /// The address of `slot`.
    pub fn address(&self, slot: u32) -> Result<Ipv4Addr, IpamError> {
        if slot == 0 || slot > self.capacity() {
            return Err(IpamError::SlotOutOfRange { slot, subnet: self.subnet, capacity: self.capacity() });
        }
        Ok(Ipv4Addr::from(u32::from(self.subnet.network()) + 1 + slot))
    }

    /// The slot that owns `address`, if it is a container address.
    pub fn slot_of(&self, address: Ipv4Addr) -> Option<u32> {
        if !self.subnet.contains(&address) {
            return None;
        }
        let offset = u32::from(address) - u32::from(self.subnet.network());
        let slot = offset.checked_sub(1)?;
        (slot >= 1 && slot <= self.capacity()).then_some(slot)
    }
}

/// Host-side veth name of `slot` under the daemon's `prefix`.
pub fn veth_name(prefix: &str, slot: u32) -> String {
    format!("{prefix}-{slot}")
}

/// The daemon's bridge name under `prefix`.
pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}-br")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(s: &str) -> Ipam {
        Ipam::new(s.parse().unwrap()).unwrap()
    }

    #[test]
    fn macs_follow_addresses() {
        let mac = mac_for("10.216.3.7".parse().unwrap());
        assert_eq!(mac, [0x02, 0xcb, 10, 216, 3, 7]);
        assert_eq!(mac[0] & 0x03, 0x02, "locally administered, unicast");
        assert_eq!(mac_text("10.216.3.7".parse().unwrap()), "02:cb:0a:d8:03:07");
    }

    #[test]
    fn gateway_is_first_host_and_slots_follow() {
        let p = ipam("10.213.0.0/16");
        assert_eq!(p.gateway(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(p.address(1).unwrap(), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(p.address(300).unwrap(), Ipv4Addr::new(10, 213, 1, 45));
        assert_eq!(p.slot_of(Ipv4Addr::new(10, 213, 1, 45)), Some(300));
        assert_eq!(p.slot_of(p.gateway()), None);
    }

    #[test]
    fn capacity_excludes_network_broadcast_and_gateway() {
        assert_eq!(ipam("10.0.0.0/24").capacity(), 253);
        assert_eq!(ipam("10.0.0.0/30").capacity(), 1);
        assert_eq!(ipam("10.0.0.0/8").capacity(), MAX_SLOTS);
        let small = ipam("10.0.0.0/24");
        assert!(small.address(253).is_ok());
        assert!(matches!(small.address(254), Err(IpamError::SlotOutOfRange { .. })));
        assert!(matches!(small.address(0), Err(IpamError::SlotOutOfRange { .. })));
    }

    #[test]
    fn tiny_subnet_is_refused() {
        assert!(matches!(Ipam::new("10.0.0.0/31".parse().unwrap()), Err(IpamError::SubnetTooSmall { .. })));
    }

    #[test]
    fn names_fit_in_ifnamsiz() {
        assert!(veth_name("abcdefgh", MAX_SLOTS).len() <= 15);
        assert!(bridge_name("abcdefgh").len() <= 15);
    }
}
