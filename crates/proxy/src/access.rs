//! Enforcing a container's access mode on a request, and removing the
//! credentials the proxy consumed so the app never sees them.
//!
//! Claim mode: an authorize link carries the claim in `__cubby_claim`; the
//! proxy checks it, sets an HttpOnly, SameSite=Lax cookie for that host
//! only (`__Host-cubby_claim`, Secure, over https), and redirects to the
//! same URL without the claim. Later requests carry the cookie. A bearer
//! claim works too. Token mode: `Authorization: Bearer` with a claim or an
//! API token.
//!
//! Every tenant lives under one site (`*.{domain}`), so a tenant's page is
//! "same-site" to every other tenant. Hence:
//! - every claim cookie a request carries is tried (another tenant's app
//!   may have planted a decoy with `Domain={domain}` to shadow the real
//!   one), and apps' `Set-Cookie` lose their `Domain` (see `forward`);
//! - a request authorized by the cookie alone that changes something (a
//!   method other than GET, HEAD, OPTIONS) or opens a WebSocket is refused
//!   when `Origin` or `Sec-Fetch-Site` says another site or origin sent it;
//! - the claim names the port whose URL it opens.

use http::header::{AUTHORIZATION, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method, Response, StatusCode, Uri};

use crate::error_page::{Body, error};
use crate::{Access, Resolver, Target};

/// Query parameter of authorize links.
pub const CLAIM_PARAM: &str = "__cubby_claim";
/// Cookie that carries a claim after the first visit, over http.
pub const CLAIM_COOKIE: &str = "__cubby_claim";
/// The same over https: a `__Host-` cookie, which only its host can set.
pub const HOST_CLAIM_COOKIE: &str = "__Host-cubby_claim";

/// The claim cookie's name for the scheme users reach the proxy with.
pub(crate) fn claim_cookie(https: bool) -> &'static str {
    if https { HOST_CLAIM_COOKIE } else { CLAIM_COOKIE }
}

/// Whether a cookie name is one of the daemon's (an app may not set it,
/// and it is never forwarded to an app).
pub(crate) fn is_claim_cookie(name: &str) -> bool {
    name.eq_ignore_ascii_case(CLAIM_COOKIE) || name.eq_ignore_ascii_case(HOST_CLAIM_COOKIE)
}

/// What the access check decided.
pub(crate) enum Decision {
    /// Forward the request (its credentials already removed).
    Allow,
    /// Answer this instead.
    Respond(Response<Body>),
}

fn query_claim(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut claim = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == CLAIM_PARAM => {
                claim = Some(v.to_string());
                false
            }
            _ => true,
        })
        .collect();
    claim.map(|c| (c, rest.join("&")))
}

/// Every value of cookie `name` the request carries, in order.
fn cookie_claims(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(name).and_then(|r| r.strip_prefix('=')).map(str::to_string))
        .collect()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|t| t.trim().to_string())
}

/// Removes the claim cookies from the request, keeping the app's cookies.
pub(crate) fn strip_claim_cookie(headers: &mut HeaderMap) {
    if !headers.contains_key(COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.split_once('=').is_some_and(|(name, _)| is_claim_cookie(name.trim())))
        .map(str::to_string)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, v);
    }
}

fn denied(headers: &HeaderMap, code: &str, message: &str, clear_cookie: Option<bool>) -> Response<Body> {
    let mut r = error(headers, StatusCode::UNAUTHORIZED, code, message);
    if let Some(https) = clear_cookie {
        let clear = if https {
            "__Host-cubby_claim=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        } else {
            "__cubby_claim=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        };
        r.headers_mut().insert(SET_COOKIE, HeaderValue::from_static(clear));
    }
    r
}

/// Whether a request may act with the ambient authority of a cookie:
/// reading (GET, HEAD, OPTIONS without an upgrade) always may; changing
/// something or opening a WebSocket only when no browser says another
/// site or origin sent it.
fn same_origin_or_safe(method: &Method, headers: &HeaderMap) -> bool {
    let upgrade = headers.contains_key(http::header::UPGRADE);
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && !upgrade {
        return true;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if text("sec-fetch-site")
        .is_some_and(|site| site.eq_ignore_ascii_case("same-site") || site.eq_ignore_ascii_case("cross-site"))
    {
        return false;
    }
    match text("origin") {
        None => true,
        Some(origin) => {
            let host = text("host").unwrap_or("");
            let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
            origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host))
        }
    }
}

/// Checks the request against the target's access mode. On `Allow`, no
/// credential of the daemon is left in the request: not the claim cookie,
/// and no `Authorization` that carries a claim or an API token.
pub(crate) fn check(
    resolver: &dyn Resolver,
    target: &Target,
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    https: bool,
) -> Decision {
    if target.access != Access::Claim {
        // A claim link to a container that does not need one: drop the
        // claim from the URL so the app never sees it.
        if let Some((_, rest)) = query_claim(uri) {
            return Decision::Respond(see_other(&clean_url(uri, &rest), None));
        }
    }
    let decision = check_mode(resolver, target, method, uri, headers, https);
    if matches!(decision, Decision::Allow) {
        strip_claim_cookie(headers);
        if bearer(headers).is_some_and(|b| resolver.is_credential(&b)) {
            headers.remove(AUTHORIZATION);
        }
    }
    decision
}

/// The URL to redirect to once the claim is taken out of it: the same
/// path and query, always on this host (leading slashes and backslashes
/// collapse to one, or `//evil.com/` would be another site).
fn clean_url(uri: &Uri, rest: &str) -> String {
    let path = format!("/{}", uri.path().trim_start_matches(['/', '\\']));
    if rest.is_empty() { path } else { format!("{path}?{rest}") }
}

fn see_other(location: &str, cookie: Option<&str>) -> Response<Body> {
    let mut r = Response::new(crate::error_page::full(""));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(loc) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, loc);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Checks the request against the target's access mode.
fn check_mode(
    resolver: &dyn Resolver,
    target: &Target,
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    https: bool,
) -> Decision {
    match target.access {
        Access::Public => {
            strip_claim_cookie(headers);
            Decision::Allow
        }
        Access::Token => match bearer(headers) {
            Some(token) if resolver.check_bearer(&target.container, target.port, &token) => {
                headers.remove(AUTHORIZATION);
                strip_claim_cookie(headers);
                Decision::Allow
            }
            _ => {
                let mut r = denied(
                    headers,
                    "token_required",
                    "this container needs `Authorization: Bearer <token>`: an API token of its project, or a claim from authorize",
                    None,
                );
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Decision::Respond(r)
            }
        },
        Access::Claim => {
            let cookie = claim_cookie(https);
            if let Some((claim, rest)) = query_claim(uri) {
                return match resolver.check_claim(&target.container, target.port, &claim) {
                    Ok(left) => {
                        let secure = if https { "; Secure" } else { "" };
                        let set = format!("{cookie}={claim}; Path=/; Max-Age={left}; HttpOnly; SameSite=Lax{secure}");
                        Decision::Respond(see_other(&clean_url(uri, &rest), Some(&set)))
                    }
                    Err(why) => Decision::Respond(denied(
                        headers,
                        "claim_invalid",
                        &format!("{why}: ask the app that sent you here for a fresh link"),
                        Some(https),
                    )),
                };
            }
            if let Some(claim) = bearer(headers) {
                return match resolver.check_claim(&target.container, target.port, &claim) {
                    Ok(_) => {
                        headers.remove(AUTHORIZATION);
                        strip_claim_cookie(headers);
                        Decision::Allow
                    }
                    Err(why) => Decision::Respond(denied(
                        headers,
                        "claim_invalid",
                        &format!("{why}: ask the app that sent you here for a fresh link"),
                        None,
                    )),
                };
            }
            // Every cookie of that name is tried: another tenant's page may
            // have set a decoy for the whole domain to shadow the real one.
            let presented = cookie_claims(headers, cookie);
            let mut refusal = None;
            for claim in &presented {
                match resolver.check_claim(&target.container, target.port, claim) {
                    Ok(_) => {
                        if !same_origin_or_safe(method, headers) {
                            return Decision::Respond(error(
                                headers,
                                StatusCode::FORBIDDEN,
                                "cross_site_request",
                                "this request came from another site or origin: a claim cookie opens a container for \
                                 reading, not for changes or WebSockets sent by another page; send the claim as \
                                 `Authorization: Bearer` instead",
                            ));
                        }
                        strip_claim_cookie(headers);
                        return Decision::Allow;
                    }
                    Err(why) => {
                        refusal.get_or_insert(why);
                    }
                }
            }
            match refusal {
                Some(why) => Decision::Respond(denied(
                    headers,
                    "claim_invalid",
                    &format!("{why}: ask the app that sent you here for a fresh link"),
                    Some(https),
                )),
                None => Decision::Respond(denied(
                    headers,
                    "claim_required",
                    "this container opens only with a link from its app (a signed claim): ask the app that sent you here",
                    None,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_param_is_split_from_the_query() {
        let uri: Uri = "/a/b?x=1&__cubby_claim=abc.def.ghi&y=2".parse().unwrap();
        assert_eq!(query_claim(&uri), Some(("abc.def.ghi".into(), "x=1&y=2".into())));
        assert_eq!(query_claim(&"/?x=1".parse().unwrap()), None);
    }

    #[test]
    fn only_the_claim_cookies_are_removed_and_every_value_is_seen() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("app=1; __cubby_claim=decoy; __Host-cubby_claim=h; other=2"));
        h.append(COOKIE, HeaderValue::from_static("__cubby_claim=secret"));
        assert_eq!(cookie_claims(&h, CLAIM_COOKIE), ["decoy", "secret"]);
        assert_eq!(cookie_claims(&h, HOST_CLAIM_COOKIE), ["h"]);
        strip_claim_cookie(&mut h);
        assert_eq!(h.get(COOKIE).unwrap(), "app=1; other=2");
        let mut only = HeaderMap::new();
        only.insert(COOKIE, HeaderValue::from_static("__cubby_claim=secret"));
        strip_claim_cookie(&mut only);
        assert!(only.get(COOKIE).is_none());
    }

    #[test]
    fn the_redirect_after_a_claim_stays_on_this_host() {
        for (target, want) in [
            ("//evil.com/x?__cubby_claim=c", "/evil.com/x"),
            ("/\\evil.com?__cubby_claim=c&a=1", "/evil.com?a=1"),
            ("///a//b?__cubby_claim=c", "/a//b"),
            ("/app?__cubby_claim=c", "/app"),
        ] {
            let uri: Uri = target.parse().unwrap();
            let (_, rest) = query_claim(&uri).unwrap();
            assert_eq!(clean_url(&uri, &rest), want, "{target}");
        }
    }

    #[test]
    fn cookie_authority_covers_reads_and_same_origin_writes_only() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            h.insert("host", HeaderValue::from_static("b--acme.localhost:8080"));
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        // Reads, whoever sent them (a link from anywhere opens the page).
        assert!(same_origin_or_safe(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")])));
        // Writes from the container's own pages, or from no browser at all.
        assert!(same_origin_or_safe(&Method::POST, &headers(&[("origin", "http://b--acme.localhost:8080")])));
        assert!(same_origin_or_safe(&Method::POST, &headers(&[("sec-fetch-site", "same-origin")])));
        assert!(same_origin_or_safe(&Method::DELETE, &headers(&[])));
        // Writes and WebSockets from another tenant's page are not.
        assert!(!same_origin_or_safe(&Method::POST, &headers(&[("origin", "http://a--acme.localhost:8080")])));
        assert!(!same_origin_or_safe(&Method::POST, &headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin_or_safe(&Method::PUT, &headers(&[("origin", "null")])));
        assert!(!same_origin_or_safe(
            &Method::GET,
            &headers(&[("upgrade", "websocket"), ("origin", "http://a--acme.localhost:8080")])
        ));
        assert!(same_origin_or_safe(
            &Method::GET,
            &headers(&[("upgrade", "websocket"), ("origin", "http://b--acme.localhost:8080")])
        ));
    }

    /// Opens container `c` on port 8080 with the claim `good`.
    struct OneClaim;

    impl Resolver for OneClaim {
        fn resolve(&self, _: &str) -> crate::Resolution {
            crate::Resolution::NotFound
        }
        fn check_claim(&self, container: &str, port: u16, claim: &str) -> Result<u64, crate::ClaimRefusal> {
            match (container, port, claim) {
                ("c", 8080, "good") => Ok(60),
                ("c", _, "good") => Err("the claim is for another port of this container".into()),
                _ => Err("the claim was not signed by this daemon".into()),
            }
        }
        fn check_bearer(&self, container: &str, port: u16, token: &str) -> bool {
            self.check_claim(container, port, token).is_ok()
        }
        fn is_credential(&self, token: &str) -> bool {
            token == "good"
        }
        fn wake(&self, _: &str) -> crate::BoxFuture<Result<std::net::IpAddr, crate::WakeError>> {
            Box::pin(async { Err(crate::WakeError::Disabled) })
        }
        fn track(&self, _: &crate::Target, _: &str) -> Box<dyn crate::Traffic> {
            Box::new(())
        }
    }

    fn claim_target(port: u16) -> Target {
        Target { container: "c".into(), project: "p".into(), access: Access::Claim, port }
    }

    #[test]
    fn over_https_the_cookie_is_a_host_cookie_and_only_it_counts() {
        let link: Uri = "/?__cubby_claim=good".parse().unwrap();
        let Decision::Respond(r) =
            check(&OneClaim, &claim_target(8080), &Method::GET, &link, &mut HeaderMap::new(), true)
        else {
            panic!("a claim link answers with a redirect");
        };
        let cookie = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(cookie.starts_with("__Host-cubby_claim=good; Path=/;") && cookie.contains("Secure"), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");

        let plain: Uri = "/".parse().unwrap();
        let with = |cookie: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(COOKIE, HeaderValue::from_static(cookie));
            h
        };
        let mut host_cookie = with("__Host-cubby_claim=good");
        assert!(matches!(
            check(&OneClaim, &claim_target(8080), &Method::GET, &plain, &mut host_cookie, true),
            Decision::Allow
        ));
        assert!(host_cookie.get(COOKIE).is_none(), "the claim cookie is not forwarded");
        // The http name, which any subdomain could set, does not count over https.
        let mut http_name = with("__cubby_claim=good");
        assert!(matches!(
            check(&OneClaim, &claim_target(8080), &Method::GET, &plain, &mut http_name, true),
            Decision::Respond(_)
        ));
        // A claim opens the port it names only.
        let mut other_port = with("__cubby_claim=good");
        assert!(matches!(
            check(&OneClaim, &claim_target(9000), &Method::GET, &plain, &mut other_port, false),
            Decision::Respond(_)
        ));
    }
}
