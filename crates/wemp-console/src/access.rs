//! Who may open the console, and CSRF protection of what changes state.
//!
//! - [`Access::Loopback`]: the request must name a loopback host (`localhost`,
//!   `127.0.0.1`, `[::1]`) — which also defeats DNS rebinding — and must carry no header a
//!   proxy adds ([`PROXY_HEADERS`]): a proxied request may come from anywhere.
//! - [`Access::Token`]: the browser enters the admin token once and gets a random session
//!   id in a cookie (`HttpOnly`, `SameSite=Strict`, scoped to the console path, `Secure`
//!   when served over HTTPS), never the token or anything derived from it. Sessions live
//!   in the process: they expire after [`SESSION_TTL`], logout revokes them, a restart
//!   ends them all. Wrong tokens are logged with the peer's address and throttled per
//!   peer: after [`MAX_FAILURES`] in [`FAILURE_WINDOW`], `429 Too Many Requests` with
//!   `Retry-After`.
//! - [`Access::Disabled`]: every request is refused with an explanation.
//!
//! State-changing requests (`POST`) must carry the page's CSRF token in `X-Wemp-Csrf`
//! and, when the browser sends an `Origin`, come from the console's own origin.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// Headers a reverse proxy or CDN adds: any of them means the request was proxied.
pub const PROXY_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "via",
];

/// How long a console session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; logging in past this ends the oldest.
const MAX_SESSIONS: usize = 256;
/// Wrong tokens a peer may send per [`FAILURE_WINDOW`] before it is refused with `429`.
pub const MAX_FAILURES: u32 = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Peers whose failures are remembered at once; beyond, the oldest is forgotten.
const MAX_PEERS: usize = 4096;

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The console's sessions: random ids, each with its expiry.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Opens a session and returns its id (256 random bits, hex).
    pub(crate) fn open(&self, now: Instant) -> String {
        let id: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let mut live = guard(&self.live);
        live.retain(|_, expires| *expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + SESSION_TTL);
        id
    }

    /// Whether `id` is a live session.
    pub(crate) fn valid(&self, id: &str, now: Instant) -> bool {
        guard(&self.live).get(id).is_some_and(|e| *e > now)
    }

    /// Ends the session `id` (logout).
    pub(crate) fn revoke(&self, id: &str) {
        guard(&self.live).remove(id);
    }
}

/// Wrong console tokens per peer.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    peers: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// The throttle's key for a peer: the address, or its /64 for IPv6 (one host's range).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Throttle {
    /// `Err(retry_after)` while `peer` has used up its failures.
    pub(crate) fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        match guard(&self.peers).get(&peer_key(peer)) {
            Some((n, since)) if *n >= MAX_FAILURES && now < *since + FAILURE_WINDOW => {
                Err((*since + FAILURE_WINDOW).saturating_duration_since(now).max(Duration::from_secs(1)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `peer`; returns the failures in its window.
    pub(crate) fn fail(&self, peer: IpAddr, now: Instant) -> u32 {
        let mut peers = guard(&self.peers);
        if peers.len() >= MAX_PEERS {
            peers.retain(|_, (_, since)| now < *since + FAILURE_WINDOW);
            if peers.len() >= MAX_PEERS
                && let Some(oldest) = peers.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k)
            {
                peers.remove(&oldest);
            }
        }
        let entry = peers.entry(peer_key(peer)).or_insert((0, now));
        if now >= entry.1 + FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.0
    }

    /// Forgets `peer`'s failures (a correct token).
    pub(crate) fn forget(&self, peer: IpAddr) {
        guard(&self.peers).remove(&peer_key(peer));
    }
}

/// Whether the request reached the console over HTTPS, as a proxy in front says
/// (`X-Forwarded-Proto: https`, `Forwarded: proto=https`).
pub(crate) fn over_https(headers: &HeaderMap) -> bool {
    let text = |h| headers.get_all(h).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let xfp = text("x-forwarded-proto");
    let fwd = text("forwarded").to_ascii_lowercase();
    xfp.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || fwd.split([';', ',']).any(|kv| kv.trim().replace(' ', "") == "proto=https")
}

/// Whether any header says a proxy forwarded the request.
pub(crate) fn proxied(headers: &HeaderMap) -> bool {
    PROXY_HEADERS.iter().any(|h| headers.contains_key(*h))
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

/// The session id the request's cookie carries, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// Whether the request may see the console.
pub(crate) fn check(access: &Access, sessions: &Sessions, headers: &HeaderMap) -> Result<(), Denied> {
    match access {
        Access::Disabled => Err(Denied::Disabled),
        Access::Loopback => match host_name(headers) {
            Some(h) if is_loopback_name(&h) && !proxied(headers) => Ok(()),
            _ => Err(Denied::NotLoopback),
        },
        Access::Token(_) => match cookie(headers, COOKIE) {
            Some(v) if sessions.valid(&v, Instant::now()) => Ok(()),
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
    if let Err(d) = check(&shared.config.access, &shared.sessions, req.headers()) {
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

    fn check(access: &Access, headers: &HeaderMap) -> Result<(), Denied> {
        super::check(access, &Sessions::default(), headers)
    }

    #[test]
    fn any_proxy_header_means_proxied() {
        // Each of these alone used to pass as a direct loopback request (issue 16 item 13).
        for h in PROXY_HEADERS {
            assert_eq!(
                check(&Access::Loopback, &headers(&[("host", "127.0.0.1"), (h, "203.0.113.9")])),
                Err(Denied::NotLoopback),
                "{h}"
            );
        }
        assert!(PROXY_HEADERS.contains(&"x-forwarded-host") && PROXY_HEADERS.contains(&"cf-connecting-ip"));
    }

    #[test]
    fn sessions_are_random_revocable_and_expire() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.open(t0);
        let b = s.open(t0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a, t0) && s.valid(&b, t0));
        s.revoke(&a);
        assert!(!s.valid(&a, t0) && s.valid(&b, t0));
        assert!(!s.valid(&b, t0 + SESSION_TTL));
        for _ in 0..MAX_SESSIONS + 10 {
            s.open(t0);
        }
        assert!(guard(&s.live).len() <= MAX_SESSIONS);
    }

    #[test]
    fn failures_are_throttled_per_peer_and_bounded() {
        let t = Throttle::default();
        let t0 = Instant::now();
        let me: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        for i in 1..=MAX_FAILURES {
            assert_eq!(t.check(me, t0), Ok(()));
            assert_eq!(t.fail(me, t0), i);
        }
        let wait = t.check(me, t0).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= FAILURE_WINDOW, "{wait:?}");
        assert_eq!(t.check(other, t0), Ok(()), "another peer is not throttled");
        assert_eq!(t.check(me, t0 + FAILURE_WINDOW), Ok(()), "the window passes");
        // One IPv6 host's /64 is one peer.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            t.fail(v6a, t0);
        }
        assert!(t.check(v6b, t0).is_err());
        for i in 0..MAX_PEERS as u32 + 10 {
            t.fail(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(guard(&t.peers).len() <= MAX_PEERS);
    }

    #[test]
    fn https_is_read_from_the_forwarded_proto() {
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_https(&headers(&[("forwarded", "for=1.2.3.4;proto=https;host=x")])));
        assert!(!over_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_https(&headers(&[])));
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
    fn token_access_reads_a_live_session_cookie() {
        let a = Access::Token("s3cret".into());
        let sessions = Sessions::default();
        let id = sessions.open(Instant::now());
        let good = format!("other=1; {COOKIE}={id}");
        assert_eq!(super::check(&a, &sessions, &headers(&[("host", "h"), ("cookie", &good)])), Ok(()));
        let raw = format!("{COOKIE}=s3cret");
        assert_eq!(super::check(&a, &sessions, &headers(&[("cookie", &raw)])), Err(Denied::Login));
        assert_eq!(super::check(&a, &sessions, &headers(&[])), Err(Denied::Login));
        sessions.revoke(&id);
        assert_eq!(super::check(&a, &sessions, &headers(&[("cookie", &good)])), Err(Denied::Login));
        assert_eq!(check(&Access::Disabled, &headers(&[("host", "127.0.0.1")])), Err(Denied::Disabled));
    }

    #[test]
    fn origin_must_match_host_when_sent() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
    }
}
