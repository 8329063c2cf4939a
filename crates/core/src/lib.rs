//! Cubby's core: what a tenant container *is* and how it lives, on top of
//! the host subsystems (btrfs, mounts, the OCI runtime, cgroups, netlink,
//! nftables) and the store.
//!
//! [`Platform`] is the entry point, a facade over the services:
//! [`containers::ContainerService`], [`access::AccessService`],
//! [`network::NetworkService`] and [`scripts::ScriptService`]. Every
//! operation takes a [`Caller`], so scoping (a project token sees only its
//! project) is enforced here and not only in the HTTP layer: nothing in
//! this crate knows about HTTP.
//!
//! - [`projects`], [`tokens`], [`images`]: the resources around containers;
//! - [`containers`]: create, start, stop, delete, exec and logs, each step
//!   rolled back when a later one fails;
//! - [`routes`]: which URL host reaches which container, and `upstream`:
//!   how the proxy connects to it;
//! - [`reconcile`]: bringing the host and the store back in step at start;
//! - [`scripts`]: exec scripts, a project's endpoints written in JS/TS.

pub mod access;
pub mod access_log;
mod aliases;
mod background;
pub mod backup;
mod caller;
pub mod claims;
mod config;
pub mod containers;
pub mod doctor;
pub mod domains;
mod error;
pub mod events;
pub mod images;
pub mod inventory;
mod keyfile;
mod layers;
mod locks;
pub mod network;
mod platform;
pub mod projects;
pub mod reconcile;
pub mod routes;
pub mod scripts;
pub mod sealed;
#[cfg(test)]
mod testing;
pub mod tokens;
mod upstream;
pub mod userns;
pub mod wake;
pub mod webhooks;

pub use caller::{Caller, ScriptActor};
pub use config::{Config, Defaults, Helpers, IdRange};
pub use error::Error;
pub use platform::{Host, Platform};
pub use routes::{Route, RouteTable};
