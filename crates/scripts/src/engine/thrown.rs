//! [`Thrown`]: why a native refuses its arguments. Each becomes a
//! JavaScript `TypeError` whose message is the variant's text, so the
//! texts say what the script should write instead.

/// A refusal of one of the prelude's natives.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Thrown {
    #[error("no randomness available from the operating system")]
    NoRandomness(#[source] getrandom::Error),
    #[error(
        "btoa: the string has characters outside Latin-1; encode it first, e.g. \
         btoa(String.fromCharCode(...new TextEncoder().encode(s)))"
    )]
    NotLatin1,
    #[error("atob: the string is not valid base64")]
    NotBase64,
    #[error("TextDecoder: the data is not valid UTF-8")]
    NotUtf8,
    #[error("Invalid URL: {0}")]
    InvalidUrl(String),
    #[error("Invalid base URL: {0}")]
    InvalidBaseUrl(String),
    #[error("URL has no settable `{0}`")]
    NoSuchUrlField(String),
    #[error("unknown hash `{0}`: use SHA-1, SHA-256, SHA-384 or SHA-512")]
    UnknownHash(String),
    #[error("an Ed25519 public key is 32 bytes, not {0}")]
    Ed25519KeyLength(usize),
    #[error("not an Ed25519 public key")]
    NotEd25519Key,
    #[error("not a P-256 public key (give an uncompressed or compressed point, an SPKI, or an EC JWK on P-256)")]
    NotP256Key,
    #[error("AES-GCM keys are 16 or 32 bytes (128 or 256 bits), not {0}")]
    AesKeyLength(usize),
    #[error("{0}")]
    Crypto(String),
    #[error("{what}: {limit} fetch and ctx.cubby calls are already waiting; await some before starting more")]
    TooManyHostCalls { what: String, limit: usize },
}
