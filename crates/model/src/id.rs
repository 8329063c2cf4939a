//! Resource identifiers: short random strings that are safe in paths,
//! interface names, cgroup names and URLs.

use std::fmt;

use serde::{Deserialize, Serialize};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A random identifier of `len` characters from a lowercase base-32
/// alphabet (5 bits of entropy per character).
pub fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the kernel's random source is available");
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect()
}

/// A random secret of 32 bytes, hex encoded (for API tokens).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the kernel's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                Self(format!("{}{}", $prefix, random_id(12)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether `text` has the shape of this kind of id (so that
            /// malformed ids in URLs answer 404 without a query).
            pub fn is_well_formed(text: &str) -> bool {
                text.len() == $prefix.len() + 12
                    && text.starts_with($prefix)
                    && text[$prefix.len()..].bytes().all(|b| ALPHABET.contains(&b))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_string())
            }
        }
    };
}

id_type!(
    /// Identifies a project, for example `p7k2xq4mzr5ab`.
    ProjectId,
    "p"
);
id_type!(
    /// Identifies a container, for example `cq3v7hxk2m4ta`. It names the
    /// container's subvolume, cgroup and runtime state on the host.
    ContainerId,
    "c"
);
id_type!(
    /// Identifies an API token (not the secret itself).
    TokenId,
    "t"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let a = ContainerId::random();
        let b = ContainerId::random();
        assert_ne!(a, b);
        assert!(ContainerId::is_well_formed(a.as_str()));
        assert!(!ContainerId::is_well_formed("c../etc/pass"));
        assert!(!ProjectId::is_well_formed(a.as_str()));
    }

    #[test]
    fn secrets_are_64_hex_chars() {
        let s = random_secret();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
