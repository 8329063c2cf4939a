//! Pure Rust behind the prelude's natives, with no JavaScript types:
//! hashing and HMAC, constant-time comparison, randomness and UUIDs,
//! base64 over "binary strings", UTF-8 decoding, and WHATWG URL components.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::thrown::Thrown;

/// SHA-256 of `data`, lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`, lowercase hex.
pub(crate) fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here;
    // the fallback keeps the function total without a panic.
    match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Equality that takes the same time for every pair of equal-length inputs;
/// inputs of different lengths are unequal.
pub(crate) fn timing_safe_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `n` bytes from the operating system's generator.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, Thrown> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(Thrown::NoRandomness)?;
    Ok(bytes)
}

/// A random (version 4) UUID, lowercase hyphenated.
pub(crate) fn uuid_v4() -> Result<String, Thrown> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(Thrown::NoRandomness)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// `btoa`: base64 of a string whose characters are all <= U+00FF.
pub(crate) fn btoa(data: &str) -> Result<String, Thrown> {
    let bytes =
        data.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect::<Option<Vec<u8>>>().ok_or(Thrown::NotLatin1)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `atob`: decodes forgiving base64 (whitespace and missing padding allowed)
/// into a string of one character per byte.
pub(crate) fn atob(data: &str) -> Result<String, Thrown> {
    let compact: String = data.chars().filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')).collect();
    let trimmed = if compact.len().is_multiple_of(4) {
        compact.strip_suffix("==").or_else(|| compact.strip_suffix('=')).unwrap_or(&compact)
    } else {
        &compact
    };
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).map_err(|_| Thrown::NotBase64)?;
    Ok(bytes.into_iter().map(char::from).collect())
}

/// UTF-8 to a string; invalid sequences become U+FFFD unless `fatal`.
pub(crate) fn utf8_decode(bytes: &[u8], fatal: bool) -> Result<String, Thrown> {
    if fatal {
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| Thrown::NotUtf8)
    } else {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The components the prelude's `URL` reads, in its `FIELDS` order: href,
/// origin, protocol, username, password, host, hostname, port, pathname,
/// search, hash.
pub(crate) fn url_parts(url: &Url) -> Vec<String> {
    use url::quirks;
    vec![
        quirks::href(url).to_owned(),
        quirks::origin(url),
        quirks::protocol(url).to_owned(),
        quirks::username(url).to_owned(),
        quirks::password(url).to_owned(),
        quirks::host(url).to_owned(),
        quirks::hostname(url).to_owned(),
        quirks::port(url).to_owned(),
        quirks::pathname(url).to_owned(),
        quirks::search(url).to_owned(),
        quirks::hash(url).to_owned(),
    ]
}

/// `new URL(input, base)`.
pub(crate) fn url_parse(input: &str, base: Option<&str>) -> Result<Url, Thrown> {
    let invalid = || Thrown::InvalidUrl(input.to_owned());
    match base {
        None => Url::parse(input).map_err(|_| invalid()),
        Some(base) => {
            let base = Url::parse(base).map_err(|_| Thrown::InvalidBaseUrl(base.to_owned()))?;
            base.join(input).map_err(|_| invalid())
        }
    }
}

/// A `URL` setter: WHATWG semantics, where a value that does not fit is
/// ignored (as browsers do), except `href`, which must parse.
pub(crate) fn url_set(href: &str, field: &str, value: &str) -> Result<Url, Thrown> {
    use url::quirks;
    let mut url = Url::parse(href).map_err(|_| Thrown::InvalidUrl(href.to_owned()))?;
    match field {
        "href" => return Url::parse(value).map_err(|_| Thrown::InvalidUrl(value.to_owned())),
        "protocol" => drop(quirks::set_protocol(&mut url, value)),
        "username" => drop(quirks::set_username(&mut url, value)),
        "password" => drop(quirks::set_password(&mut url, value)),
        "host" => drop(quirks::set_host(&mut url, value)),
        "hostname" => drop(quirks::set_hostname(&mut url, value)),
        "port" => drop(quirks::set_port(&mut url, value)),
        "pathname" => quirks::set_pathname(&mut url, value),
        "search" => quirks::set_search(&mut url, value),
        "hash" => quirks::set_hash(&mut url, value),
        other => return Err(Thrown::NoSuchUrlField(other.to_owned())),
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_hmac_vectors() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn timing_safe_equal_compares_lengths_and_bytes() {
        assert!(timing_safe_equal(b"abc", b"abc"));
        assert!(!timing_safe_equal(b"abc", b"abd"));
        assert!(!timing_safe_equal(b"abc", b"abcd"));
        assert!(timing_safe_equal(b"", b""));
    }

    #[test]
    fn uuid_is_version_4() {
        let id = uuid_v4().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, uuid_v4().unwrap());
    }

    #[test]
    fn base64_binary_strings() {
        assert_eq!(btoa("hello").unwrap(), "aGVsbG8=");
        assert_eq!(atob("aGVsbG8=").unwrap(), "hello");
        assert_eq!(atob(" aGVs bG8 ").unwrap(), "hello");
        assert_eq!(btoa("\u{ff}").unwrap(), "/w==");
        assert_eq!(atob("/w==").unwrap(), "\u{ff}");
        assert!(btoa("€").is_err());
        assert!(atob("a").is_err());
    }

    #[test]
    fn url_components_and_setters() {
        let url = url_parse("http://acme.exec.localhost:8080/hello?x=1#top", None).unwrap();
        assert_eq!(
            url_parts(&url),
            vec![
                "http://acme.exec.localhost:8080/hello?x=1#top",
                "http://acme.exec.localhost:8080",
                "http:",
                "",
                "",
                "acme.exec.localhost:8080",
                "acme.exec.localhost",
                "8080",
                "/hello",
                "?x=1",
                "#top"
            ]
        );
        let joined = url_parse("../b?y", Some("https://a.com/x/y/z")).unwrap();
        assert_eq!(joined.as_str(), "https://a.com/x/b?y");
        assert!(url_parse("not a url", None).is_err());
        let set = url_set("https://a.com/x", "search", "q=1 2").unwrap();
        assert_eq!(set.as_str(), "https://a.com/x?q=1%202");
        let set = url_set("https://a.com/x?q", "search", "").unwrap();
        assert_eq!(set.as_str(), "https://a.com/x");
    }
}
