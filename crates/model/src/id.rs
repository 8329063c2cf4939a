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

/// Why a text is not an id of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {kind} id (`{prefix}` and 12 of a-z2-7)")]
pub struct IdError {
    /// The kind of id (`container`, `project`, ...).
    pub kind: &'static str,
    /// Its first letter.
    pub prefix: &'static str,
    /// The text, cut to 64 characters.
    pub text: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        // Made by `random`, checked by `parse` (or deserialising) where it
        // comes from a user, and taken as it is by `from_stored` where the
        // daemon reads back what it wrote. (Not a doc comment: the doc is
        // the schema's description in the OpenAPI document.)
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The kind of id, in messages.
            pub const KIND: &'static str = $kind;

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

            /// An id given by a user: its shape is checked.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                if Self::is_well_formed(text) {
                    Ok(Self(text.to_string()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, text: text.chars().take(64).collect() })
                }
            }

            /// An id the store gives back: one the daemon made (some
            /// versions made other shapes), taken as it is.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(text: String) -> Result<Self, IdError> {
                Self::parse(&text)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// Identifies a project, for example `p7k2xq4mzr5ab`.
    ProjectId,
    "p",
    "project"
);
id_type!(
    /// Identifies a container, for example `cq3v7hxk2m4ta`. It names the
    /// container's subvolume, cgroup and runtime state on the host.
    ContainerId,
    "c",
    "container"
);
id_type!(
    /// Identifies an API token (not the secret itself).
    TokenId,
    "t",
    "token"
);
id_type!(
    /// Identifies a read-only layer (an image's, a frozen template's, a
    /// flattened chain's); it names the layer's subvolume.
    LayerId,
    "l",
    "layer"
);
id_type!(
    /// Identifies a snapshot of a container.
    SnapshotId,
    "s",
    "snapshot"
);
id_type!(
    /// Identifies one firewall rule of a container.
    RuleId,
    "r",
    "firewall rule"
);

id_type!(
    /// Identifies a project's webhook.
    WebhookId,
    "w",
    "webhook"
);

id_type!(
    /// Identifies a rollout: an upgrade of many tenants in batches.
    RolloutId,
    "u",
    "rollout"
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
        assert_eq!(ContainerId::parse(a.as_str()).unwrap(), a);
        let err = ContainerId::parse("c../etc/passwd").unwrap_err();
        assert_eq!(err.to_string(), "`c../etc/passwd` is not a container id (`c` and 12 of a-z2-7)");
        assert!(serde_json::from_str::<ContainerId>("\"nope\"").is_err(), "deserialising checks too");
        let back: ContainerId = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        // What the store holds is taken as it is (an image's layer once
        // had the id `img-<name>`).
        assert_eq!(LayerId::from_stored("img-minimal".into()).as_str(), "img-minimal");
    }

    #[test]
    fn secrets_are_64_hex_chars() {
        let s = random_secret();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
