//! Who may open the console, and CSRF protection of what changes state.
//!
//! - [`Access::Loopback`]: the request must name a loopback host (`localhost`,
//!   `127.0.0.1`, `[::1]`) — which also defeats DNS rebinding — and must not come through a
//!   proxy (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`): a proxied request may come from
//!   anywhere.
//! - [`Access::Token`]: the browser enters the admin token once; the console keeps a
//!   cookie derived from it (`HttpOnly`, `SameSite=Strict`, scoped to the console path),
//!   never the token itself.
//! - [`Access::Disabled`]: every request is refused with an explanation.
//!
//! State-changing requests (`POST`) must carry the page's CSRF token in `X-Wemp-Csrf`
//! and, when the browser sends an `Origin`, come from the console's own origin.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq as _;

use crate::Shared;
use crate::config::Access;

/// The cookie holding the session value.
pub const COOKIE: &str = "wemp_console";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-wemp-csrf";

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// Token access and no valid cookie: show the login form.
    Login,
    /// Loopback access but a non-loopback host name or a proxy header.
    NotLoopback,
    /// Listening beyond loopback without a token.
    Disabled,
}

impl Denied {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Login => "enter the console's admin token to continue",
            Self::NotLoopback => {
                "the console without a token only answers on loopback (http://127.0.0.1 or http://localhost), \
                 not through a proxy; set WEMP_CONSOLE_TOKEN to open it from elsewhere"
            }
            Self::Disabled => {
                "the server listens beyond loopback and no admin token is set: set WEMP_CONSOLE_TOKEN (or \
                 the config's console token) to enable the console"
            }
        }
    }
}

/// The cookie value for `token`: a hash, so the cookie never holds the token itself.
pub(crate) fn session_value(token: &str) -> String {
    let mut h = Sha1::new();
    h.update(b"wemp-console-session\0");
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time string equality.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == name).then(|| val.to_owned())
        })
    })
}

fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h.to_owned());
    }
    Some(host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h).to_owned())
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the request may see the console.
pub(crate) fn check(access: &Access, headers: &HeaderMap) -> Result<(), Denied> {
    match access {
        Access::Disabled => Err(Denied::Disabled),
        Access::Loopback => {
            let proxied =
                ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| headers.contains_key(*h));
            match host_name(headers) {
                Some(h) if is_loopback_name(&h) && !proxied => Ok(()),
                _ => Err(Denied::NotLoopback),
            }
        }
        Access::Token(token) => match cookie(headers, COOKIE) {
            Some(v) if same(&v, &session_value(token)) => Ok(()),
            _ => Err(Denied::Login),
        },
    }
}

/// Whether the browser's `Origin`, when sent, is the console's own.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| r.eq_ignore_ascii_case(host))
}

/// Middleware for the API: access, then CSRF on state-changing methods.
pub(crate) async fn guard_api(
    State(shared): State<std::sync::Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(d) = check(&shared.config.access, req.headers()) {
        let status = if d == Denied::Login { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
        return (status, axum::Json(serde_json::json!({ "error": d.message() }))).into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let given = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !same(given, &shared.csrf) || !same_origin(req.headers()) {
            let msg = "missing or wrong CSRF token: reload the console page";
            return (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": msg }))).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_needs_a_loopback_host_and_no_proxy() {
        let a = Access::Loopback;
        assert_eq!(check(&a, &headers(&[("host", "127.0.0.1:8080")])), Ok(()));
        assert_eq!(check(&a, &headers(&[("host", "localhost:8080")])), Ok(()));
        assert_eq!(check(&a, &headers(&[("host", "[::1]:8080")])), Ok(()));
        assert_eq!(check(&a, &headers(&[("host", "evil.example:8080")])), Err(Denied::NotLoopback));
        assert_eq!(check(&a, &headers(&[])), Err(Denied::NotLoopback));
        assert_eq!(
            check(&a, &headers(&[("host", "127.0.0.1"), ("x-forwarded-for", "203.0.113.9")])),
            Err(Denied::NotLoopback)
        );
    }

    #[test]
    fn token_access_reads_the_derived_cookie() {
        let a = Access::Token("s3cret".into());
        let good = format!("other=1; {COOKIE}={}", session_value("s3cret"));
        assert_eq!(check(&a, &headers(&[("host", "h"), ("cookie", &good)])), Ok(()));
        let raw = format!("{COOKIE}=s3cret");
        assert_eq!(check(&a, &headers(&[("cookie", &raw)])), Err(Denied::Login));
        assert_eq!(check(&a, &headers(&[])), Err(Denied::Login));
        assert!(!session_value("s3cret").contains("s3cret"));
        assert_eq!(check(&Access::Disabled, &headers(&[("host", "127.0.0.1")])), Err(Denied::Disabled));
    }

    #[test]
    fn origin_must_match_host_when_sent() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
    }
}
