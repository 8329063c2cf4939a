//! Magic comments: the header of every uploaded script.

use cubby_scripts::{MAX_TIMEOUT_MS, parse_magic};

/// Fuzzes the magic-comment parser.
///
/// Invariants: no panic; an accepted `@timeout` is within 1 ms and the
/// maximum; an accepted `@token` or `@cors` is non-empty and has no
/// control characters (they end up in headers and comparisons); an error
/// names a line that exists.
pub fn parse(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else { return };
    match parse_magic(source) {
        Ok(magic) => {
            if let Some(t) = magic.timeout {
                assert!(t.as_millis() >= 1 && t.as_millis() <= u128::from(MAX_TIMEOUT_MS), "timeout {t:?}");
            }
            for value in [&magic.token, &magic.cors].into_iter().flatten() {
                assert!(!value.is_empty() && !value.chars().any(char::is_control), "header value {value:?}");
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= source.lines().count().max(1), "line {} of {source:?}", e.line),
    }
}
