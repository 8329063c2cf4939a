//! Turning a request's `Host` into a container label.

/// The label of `host` under `domain`: `tenant-a--acme.localhost:8080`
/// under `localhost` gives `tenant-a--acme`. Case-insensitive; `None` when
/// the host is not one label under the domain.
pub fn label_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let host = without_port(host);
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

/// `host` without its `:port`.
pub(crate) fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The name a host outside the domain is looked up by: the whole name,
/// lowercase, when it has a dot (a custom domain); else nothing (labels
/// are only served under the domain).
pub(crate) fn custom_name(host: &str) -> Option<String> {
    let name = without_port(host).trim_end_matches('.');
    name.contains('.').then(|| name.to_ascii_lowercase())
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

    #[test]
    fn custom_names_are_whole_names_with_a_dot() {
        assert_eq!(custom_name("App.Shop.test:8443").as_deref(), Some("app.shop.test"));
        assert_eq!(custom_name("shop.test.").as_deref(), Some("shop.test"));
        assert_eq!(custom_name("web--acme:8080"), None, "a bare label is served under the domain only");
    }
}
