//! The dashboard at `/ui`: one HTML page, its script and its stylesheet,
//! embedded in the binary (no CDN, nothing fetched from elsewhere).
//!
//! The files hold no data and need no token: the page asks for an API
//! token (admin, or a project's) and reads everything through `/api/v1`
//! with it, so it sees exactly what that token may see. A strict
//! Content-Security-Policy allows only these files and this API.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../ui/index.html");
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/app.css");

/// Only this origin's script, style and API; no frames, forms elsewhere,
/// plugins or inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, to merge beside the API's.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/ui/", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/ui/app.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/ui/app.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Small and embedded: always revalidated, so an upgrade shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_embedded_files() {
        assert!(INDEX.contains(r#"src="/ui/app.js""#) && INDEX.contains(r#"href="/ui/app.css""#));
        for file in [INDEX, SCRIPT, STYLE] {
            assert!(!file.contains("http://") || file.contains("http://www.w3.org/2000/svg"), "no outside URL");
            assert!(!file.contains("https://"), "no CDN");
        }
        assert!(!INDEX.contains("<script>") && !INDEX.contains("onclick"), "no inline code: the CSP forbids it");
        assert!(!SCRIPT.contains("innerHTML"), "tenant-made text is never parsed as HTML");
    }
}
