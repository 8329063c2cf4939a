//! Host networking for Cubby containers.
//!
//! This crate owns every network resource the daemon creates on the host:
//! - [`netlink`]: the per-daemon bridge, one veth pair per container and the
//!   named network namespace each container runs in (kernel concept: rtnetlink
//!   links, addresses and routes; `nsfs` bind mounts).
//! - [`nft`]: the daemon's nftables table (NAT for egress, isolation between
//!   containers and from the host).
//! - [`ipam`]: how a container's slot number maps to its address and
//!   interface name.
//!
//! Each host subsystem sits behind a narrow trait ([`netlink::Netlink`],
//! [`nft::Nftables`]) with a real implementation and a named fake beside it.

pub mod ipam;
pub mod netlink;
pub mod nft;

pub use ipam::{Ipam, IpamError};
pub use netlink::{Attachment, BridgeConfig, FakeNetlink, Netlink, NetlinkError, RtNetlink, UserNamespace};
pub use nft::{
    BaseRules, Batch, ContainerRules, DEFAULT_EGRESS_DENY, EgressGuard, EgressPolicy, FakeNftables, L4, Match, NftCli,
    NftError, Nftables, PLATFORM_GUARDED, Verdict, ingress_tcp_verdict,
};
