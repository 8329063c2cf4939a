//! Enforcing a container's access mode on a request, and removing the
//! credentials the proxy consumed so the app never sees them.
//!
//! Claim mode: an authorize link carries the claim in `__cubby_claim`; the
//! proxy checks it, sets an HttpOnly, SameSite=Lax cookie for that host
//! only (Secure over https), and redirects to the same URL without the
//! claim. Later requests carry the cookie. A bearer claim works too.
//! Token mode: `Authorization: Bearer` with a claim or an API token.

use http::header::{AUTHORIZATION, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, Response, StatusCode, Uri};

use crate::error_page::{Body, error};
use crate::{Access, Resolver, Target};

/// Query parameter of authorize links.
pub const CLAIM_PARAM: &str = "__cubby_claim";
/// Cookie that carries a claim after the first visit.
pub const CLAIM_COOKIE: &str = "__cubby_claim";

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

fn cookie_claim(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(CLAIM_COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_string))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|t| t.trim().to_string())
}

/// Removes the claim cookie from the request, keeping the app's cookies.
pub(crate) fn strip_claim_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.starts_with(&format!("{CLAIM_COOKIE}=")))
        .map(str::to_string)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, v);
    }
}

fn denied(headers: &HeaderMap, code: &str, message: &str, clear_cookie: bool) -> Response<Body> {
    let mut r = error(headers, StatusCode::UNAUTHORIZED, code, message);
    if clear_cookie {
        r.headers_mut()
            .insert(SET_COOKIE, HeaderValue::from_static("__cubby_claim=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"));
    }
    r
}

/// Checks the request against the target's access mode. On `Allow`, no
/// credential of the daemon is left in the request: not the claim cookie,
/// and no `Authorization` that carries a claim or an API token.
pub(crate) fn check(
    resolver: &dyn Resolver,
    target: &Target,
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
    let decision = check_mode(resolver, target, uri, headers, https);
    if matches!(decision, Decision::Allow) {
        strip_claim_cookie(headers);
        if bearer(headers).is_some_and(|b| resolver.is_credential(&b)) {
            headers.remove(AUTHORIZATION);
        }
    }
    decision
}

fn clean_url(uri: &Uri, rest: &str) -> String {
    let path = uri.path();
    if rest.is_empty() { path.to_string() } else { format!("{path}?{rest}") }
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
fn check_mode(resolver: &dyn Resolver, target: &Target, uri: &Uri, headers: &mut HeaderMap, https: bool) -> Decision {
    match target.access {
        Access::Public => {
            strip_claim_cookie(headers);
            Decision::Allow
        }
        Access::Token => match bearer(headers) {
            Some(token) if resolver.check_bearer(&target.container, &token) => {
                headers.remove(AUTHORIZATION);
                strip_claim_cookie(headers);
                Decision::Allow
            }
            _ => {
                let mut r = denied(
                    headers,
                    "token_required",
                    "this container needs `Authorization: Bearer <token>`: an API token of its project, or a claim from authorize",
                    false,
                );
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Decision::Respond(r)
            }
        },
        Access::Claim => {
            if let Some((claim, rest)) = query_claim(uri) {
                return match resolver.check_claim(&target.container, &claim) {
                    Ok(left) => {
                        let secure = if https { "; Secure" } else { "" };
                        let cookie =
                            format!("{CLAIM_COOKIE}={claim}; Path=/; Max-Age={left}; HttpOnly; SameSite=Lax{secure}");
                        Decision::Respond(see_other(&clean_url(uri, &rest), Some(&cookie)))
                    }
                    Err(why) => Decision::Respond(denied(
                        headers,
                        "claim_invalid",
                        &format!("{why}: ask the app that sent you here for a fresh link"),
                        true,
                    )),
                };
            }
            let presented = cookie_claim(headers).map(|c| (c, true)).or_else(|| bearer(headers).map(|b| (b, false)));
            match presented {
                Some((claim, from_cookie)) => match resolver.check_claim(&target.container, &claim) {
                    Ok(_) => {
                        strip_claim_cookie(headers);
                        if !from_cookie {
                            headers.remove(AUTHORIZATION);
                        }
                        Decision::Allow
                    }
                    Err(why) => Decision::Respond(denied(
                        headers,
                        "claim_invalid",
                        &format!("{why}: ask the app that sent you here for a fresh link"),
                        from_cookie,
                    )),
                },
                None => Decision::Respond(denied(
                    headers,
                    "claim_required",
                    "this container opens only with a link from its app (a signed claim): ask the app that sent you here",
                    false,
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
    fn only_the_claim_cookie_is_removed() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("app=1; __cubby_claim=secret; other=2"));
        assert_eq!(cookie_claim(&h).as_deref(), Some("secret"));
        strip_claim_cookie(&mut h);
        assert_eq!(h.get(COOKIE).unwrap(), "app=1; other=2");
        let mut only = HeaderMap::new();
        only.insert(COOKIE, HeaderValue::from_static("__cubby_claim=secret"));
        strip_claim_cookie(&mut only);
        assert!(only.get(COOKIE).is_none());
    }
}
