//! The real [`TxtLookup`] of custom domains: a DNS stub resolver
//! (hickory), asking the system's resolvers (`/etc/resolv.conf`) or the one
//! given with `--domain-dns`. Answers are not cached: a record just made
//! is seen as soon as the resolver sees it.

use std::net::SocketAddr;

use cubby_core::domains::TxtLookup;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// TXT lookups through hickory's resolver.
pub struct Dns {
    resolver: hickory_resolver::TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").finish_non_exhaustive()
    }
}

impl Dns {
    /// A resolver asking `server` (UDP, then TCP), or the system's.
    pub fn new(server: Option<SocketAddr>) -> anyhow::Result<Self> {
        let mut builder = match server {
            Some(addr) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let config =
                    ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, connections)]);
                hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => hickory_resolver::Resolver::builder_tokio()
                .map_err(|e| anyhow::anyhow!("reading the system's DNS configuration: {e}"))?,
        };
        builder.options_mut().cache_size = 0;
        let resolver = builder.build().map_err(|e| anyhow::anyhow!("making the DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }
}

#[async_trait::async_trait]
impl TxtLookup for Dns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        // A fully qualified name: no search domain is tried.
        let lookup = match self.resolver.txt_lookup(format!("{}.", name.trim_end_matches('.'))).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect())
                }
                _ => None,
            })
            .collect())
    }
}
