//! Turning a request's `Host` into a container label.

/// The label of `host` under `domain`: `tenant-a--acme.localhost:8080`
/// under `localhost` gives `tenant-a--acme`. Case-insensitive; `None` when
/// the host is not one label under the domain.
pub fn label_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() <= domain.len() + 1 {
        return None;
    }
    let (label, rest) = host.split_at(host.len() - domain.len() - 1);
    if !rest.starts_with('.') || !rest[1..].eq_ignore_ascii_case(domain) || label.is_empty() || label.contains('.') {
        return None;
    }
    Some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label_of("a--p.localhost:8080", "localhost"), Some("a--p"));
        assert_eq!(label_of("a--p.localhost", "localhost"), Some("a--p"));
        assert_eq!(label_of("A--P.LOCALHOST.", "localhost"), Some("A--P"));
        assert_eq!(label_of("a--p.apps.example.com", "apps.example.com"), Some("a--p"));
        assert_eq!(label_of("localhost:8080", "localhost"), None);
        assert_eq!(label_of("x.a--p.localhost", "localhost"), None);
        assert_eq!(label_of("a--p.evil.com", "localhost"), None);
        assert_eq!(label_of(".localhost", "localhost"), None);
    }
}
