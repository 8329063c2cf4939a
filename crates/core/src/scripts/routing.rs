//! Which script file answers a URL path. The file path is the route: the
//! extension is dropped, `index` serves its folder, and `[name]` segments
//! match any one segment and become `ctx.params.name`. Where several files
//! match, the one with a literal segment earliest wins (`users/me.ts`
//! before `users/[id].ts`). A file with a segment that starts with `_`
//! (`_lib/verify.ts`, `_shared.ts`) is no route: it is there to be
//! imported.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One routable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The file, relative to `scripts/`.
    pub file: String,
    segments: Vec<Segment>,
}

impl Route {
    /// The route of a script file (a valid script path).
    pub fn of(file: &str) -> Self {
        let stem = file.strip_suffix(".ts").or_else(|| file.strip_suffix(".js")).unwrap_or(file);
        let mut parts: Vec<&str> = stem.split('/').collect();
        if parts.last() == Some(&"index") {
            parts.pop();
        }
        let segments = parts
            .into_iter()
            .map(|p| match p.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(p.to_string()),
            })
            .collect();
        Self { file: file.to_string(), segments }
    }

    /// The URL path it serves, `[name]` kept as written.
    pub fn pattern(&self) -> String {
        let parts: Vec<String> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.clone(),
                Segment::Param(p) => format!("[{p}]"),
            })
            .collect();
        format!("/{}", parts.join("/"))
    }

    /// The parameters, if `path` matches.
    fn matches(&self, path: &[&str]) -> Option<BTreeMap<String, String>> {
        if path.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (seg, part) in self.segments.iter().zip(path) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), (*part).to_string());
                }
            }
        }
        Some(params)
    }

    /// Literal segments first: `true` where literal, for ordering.
    fn shape(&self) -> Vec<bool> {
        self.segments.iter().map(|s| matches!(s, Segment::Literal(_))).collect()
    }
}

/// Percent-decodes one path segment; `None` if it is not valid UTF-8.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file for `path` (the URL path, without the query) and its params.
pub fn find<'a>(routes: &'a [Route], path: &str) -> Option<(&'a Route, BTreeMap<String, String>)> {
    let decoded: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(decode).collect::<Option<Vec<_>>>()?;
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    routes
        .iter()
        .filter_map(|r| r.matches(&parts).map(|p| (r, p)))
        // Literal segments beat parameters, leftmost first; then the file name decides.
        .max_by(|(a, _), (b, _)| a.shape().cmp(&b.shape()).then_with(|| b.file.cmp(&a.file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(files: &[&str]) -> Vec<Route> {
        files.iter().map(|f| Route::of(f)).collect()
    }

    #[test]
    fn files_are_routes() {
        let routes = table(&["index.ts", "hello.js", "users/[id].ts", "users/me.ts", "webhooks/stripe/index.ts"]);
        let file = |p: &str| find(&routes, p).map(|(r, params)| (r.file.clone(), params));
        assert_eq!(file("/").unwrap().0, "index.ts");
        assert_eq!(file("/hello").unwrap().0, "hello.js");
        assert_eq!(file("/hello/").unwrap().0, "hello.js");
        assert_eq!(file("/users/me").unwrap().0, "users/me.ts", "literal beats parameter");
        let (f, params) = file("/users/42").unwrap();
        assert_eq!((f.as_str(), params.get("id").map(String::as_str)), ("users/[id].ts", Some("42")));
        assert_eq!(file("/users/a%20b").unwrap().1["id"], "a b");
        assert_eq!(file("/webhooks/stripe").unwrap().0, "webhooks/stripe/index.ts");
        assert!(file("/nope").is_none());
        assert!(file("/users/42/x").is_none());
        assert!(file("/hello.js").is_none(), "extensions are not part of URLs");
        assert_eq!(Route::of("users/[id].ts").pattern(), "/users/[id]");
        assert_eq!(Route::of("index.js").pattern(), "/");
    }
}
