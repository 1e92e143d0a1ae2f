//! [`ApiProxy`]: the platform API for apps that must not hold the access token.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use http_body_util::BodyExt as _;
use subtle::ConstantTimeEq as _;
use wemp_client::Client;
use wemp_client::proxy::{PassBody, Passed};
use wemp_proto::Secret;

/// The header that picks the account (its name, its appid, or `corpid/agentid` for a WeCom
/// app); default: the first account.
pub const ACCOUNT_HEADER: &str = "x-wemp-account";

/// Request bodies up to this size (by `Content-Length`) are held, so a call refused for a
/// stale token can be sent again; larger or unsized ones pass through as streams.
pub const HELD_BODY_LIMIT: u64 = 1024 * 1024;

const RESULTS: [&str; 5] = ["ok", "api_error", "unauthorized", "bad_request", "upstream_error"];

#[derive(Clone, Copy)]
enum CallResult {
    Ok = 0,
    ApiError = 1,
    Unauthorized = 2,
    BadRequest = 3,
    UpstreamError = 4,
}

#[derive(Debug, Default)]
struct Stats {
    calls: [AtomicU64; RESULTS.len()],
    token_retries: AtomicU64,
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

/// Finds the API client of an account by appid while serving (a third-party platform's
/// authorizers).
pub type ClientLookup = Arc<dyn Fn(&str) -> Option<Client> + Send + Sync>;

#[derive(Clone)]
struct Entry {
    /// The account's key: its appid, or `corpid/agentid` for a WeCom app
    /// ([`wemp_proto::admission::app_key`]).
    key: String,
    /// The names given with [`ApiProxy::account`].
    names: Vec<String>,
    client: Client,
}

impl Entry {
    /// What the log calls the account: its first name, else its key.
    fn label(&self) -> &str {
        self.names.first().unwrap_or(&self.key)
    }

    /// `"key" (name)`, for the choices of an error.
    fn choice(&self) -> String {
        match self.names.first() {
            Some(name) if *name != self.key => format!("{:?} ({name})", self.key),
            _ => format!("{:?}", self.key),
        }
    }
}

/// `/api/<path>` → the platform API with the account's access token added: an app calls
/// `GET /api/cgi-bin/user/info?openid=…` with `Authorization: Bearer <proxy token>` and never
/// sees the token or the AppSecret.
///
/// The token is the [`Client`]'s (one token machinery, shared through its store with every
/// other process): on `40001`/`42001` it is compare-and-invalidated and the call sent once
/// more; every other answer, errors included, is passed back unchanged. Uploads and
/// downloads pass through as streams ([`Client::pass_through`]). `X-Wemp-Account` picks the
/// account by name or appid — a WeCom app by `corpid/agentid`, since the apps of one corp
/// share the corpid (a bare corpid is enough when one app of the corp is added; with several
/// it is a `400` naming them) — default: the first. A name, appid or key that is no
/// account's is a `400` too. A missing or wrong bearer token is `401`, checked in constant
/// time before anything else is done.
///
/// Each call is counted (`wemp_api_proxy_calls_total{result}`, at the service's metrics
/// path through [`ApiProxy::write_prometheus`]) and logged with its path, account, errcode
/// and latency — never a token.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = wemp_client::Client::new("wx2c2769f8efd9abc2", "the-app-secret")?;
/// let proxy = wemp_server::ApiProxy::new("a-long-random-proxy-token").account(["shop"], client);
/// let app: axum::Router = proxy.router();
/// # drop(app); Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiProxy {
    token: Arc<Secret>,
    accounts: Arc<Vec<Entry>>,
    more: Option<ClientLookup>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for ApiProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiProxy")
            .field("token", &self.token)
            .field("accounts", &self.accounts.iter().map(|a| a.key.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

impl ApiProxy {
    /// A proxy that admits callers bearing `token`, with no account yet.
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        Self {
            token: Arc::new(Secret::new(token)),
            accounts: Arc::default(),
            more: None,
            stats: Arc::default(),
        }
    }

    /// Adds an account, known in `X-Wemp-Account` by `names`, by its appid and — for a WeCom
    /// app's client — by `corpid/agentid` ([`wemp_proto::admission::app_key`]).
    #[must_use]
    pub fn account(mut self, names: impl IntoIterator<Item = impl Into<String>>, client: Client) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let key = wemp_proto::admission::app_key(client.appid(), client.agentid());
        Arc::make_mut(&mut self.accounts).push(Entry { key, names, client });
        self
    }

    /// Accounts known while serving (a third-party platform's authorizers): an
    /// `X-Wemp-Account` naming none of the added accounts is looked up here by appid.
    #[must_use]
    pub fn more_accounts(mut self, lookup: ClientLookup) -> Self {
        self.more = Some(lookup);
        self
    }

    /// Whether no account was added (nothing to proxy).
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.more.is_none()
    }

    /// The routes: `ANY /api/{*path}`.
    pub fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/api/{*path}",
            axum::routing::any(move |Path(path): Path<String>, req: Request| {
                let me = me.clone();
                async move { me.handle(&path, req).await }
            }),
        )
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        bool::from(given.trim().as_bytes().ct_eq(self.token.expose().as_bytes()))
    }

    /// The account `X-Wemp-Account` names: by name or key, else by appid (a bare corpid);
    /// more than one is an error naming each, since the call would go out with a token that
    /// may be the wrong app's.
    fn pick(&self, headers: &HeaderMap) -> Result<Entry, String> {
        let wanted = headers.get(ACCOUNT_HEADER).map(|v| v.to_str().unwrap_or_default().trim());
        let w = match wanted {
            None | Some("") => {
                return self.accounts.first().cloned().ok_or_else(|| "no account with an appsecret".into());
            }
            Some(w) => w,
        };
        let named: Vec<&Entry> =
            self.accounts.iter().filter(|a| a.key == w || a.names.iter().any(|n| n == w)).collect();
        let by_appid: Vec<&Entry> = self.accounts.iter().filter(|a| a.client.appid() == w).collect();
        let found = if named.is_empty() { by_appid } else { named };
        match found.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            several => {
                let choices: Vec<String> = several.iter().map(|a| a.choice()).collect();
                let what = if several.iter().all(|a| a.client.agentid().is_some() && a.client.appid() == w) {
                    format!("is the corpid of {} WeCom apps", several.len())
                } else {
                    format!("names {} accounts", several.len())
                };
                return Err(format!(
                    "X-Wemp-Account {w:?} {what}: name one, as one of {}",
                    choices.join(", ")
                ));
            }
        }
        if let Some(client) = self.more.as_ref().and_then(|more| more(w)) {
            return Ok(Entry { key: w.to_owned(), names: Vec::new(), client });
        }
        let mut known: Vec<&str> = Vec::new();
        for a in self.accounts.iter() {
            for n in a.names.iter().chain([&a.key]) {
                if !known.contains(&n.as_str()) {
                    known.push(n);
                }
            }
        }
        let more = if self.more.is_some() { " or an authorizer's appid" } else { "" };
        Err(format!("no account {w:?} with an appsecret (X-Wemp-Account takes one of {known:?}{more})"))
    }

    async fn handle(&self, path: &str, req: Request) -> Response {
        let start = Instant::now();
        let stats = &self.stats;
        if !self.authorized(req.headers()) {
            stats.calls[CallResult::Unauthorized as usize].fetch_add(1, Relaxed);
            tracing::warn!(target: "wemp::api_proxy", path, "refused: missing or wrong bearer token");
            let mut res = json_error(
                StatusCode::UNAUTHORIZED,
                "the API proxy needs Authorization: Bearer <api_proxy token>",
            );
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
        let entry = match self.pick(req.headers()) {
            Ok(e) => e,
            Err(msg) => {
                stats.calls[CallResult::BadRequest as usize].fetch_add(1, Relaxed);
                tracing::warn!(target: "wemp::api_proxy", path, "refused: {msg}");
                return json_error(StatusCode::BAD_REQUEST, &msg);
            }
        };
        let account = entry.label();
        let path = format!("/{path}");
        let query = req.uri().query().unwrap_or_default().to_owned();
        let method = req.method().clone();
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = req.into_body();
        let body = match length {
            Some(0) => PassBody::Empty,
            Some(n) if n <= HELD_BODY_LIMIT => match body.collect().await {
                Ok(b) => PassBody::Bytes(b.to_bytes()),
                Err(e) => {
                    stats.calls[CallResult::BadRequest as usize].fetch_add(1, Relaxed);
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the request body: {e}"),
                    );
                }
            },
            _ if method == axum::http::Method::GET || method == axum::http::Method::HEAD => PassBody::Empty,
            _ => PassBody::Stream(reqwest::Body::wrap_stream(body.into_data_stream())),
        };
        let outcome = entry.client.pass_through(method, &path, &query, content_type, body).await;
        let latency = start.elapsed();
        stats.latency_count.fetch_add(1, Relaxed);
        stats.latency_sum_us.fetch_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Relaxed);
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let passed = match outcome {
            Ok(p) => p,
            Err(e) => {
                stats.calls[CallResult::UpstreamError as usize].fetch_add(1, Relaxed);
                tracing::warn!(target: "wemp::api_proxy", path, account, latency_ms, "failed: {e}");
                return json_error(StatusCode::BAD_GATEWAY, &format!("wemp API proxy: {e}"));
            }
        };
        let errcode = passed.errcode().map(|c| c.0).unwrap_or(0);
        let result = if errcode == 0 { CallResult::Ok } else { CallResult::ApiError };
        stats.calls[result as usize].fetch_add(1, Relaxed);
        let retried =
            matches!(passed, Passed::Read { retried: true, .. } | Passed::Stream { retried: true, .. });
        if retried {
            stats.token_retries.fetch_add(1, Relaxed);
        }
        tracing::info!(
            target: "wemp::api_proxy",
            path,
            account,
            errcode,
            status = passed.status().as_u16(),
            token_retried = retried,
            latency_ms,
            "api call"
        );
        match passed {
            Passed::Read { status, content_type, body, .. } => {
                let mut res = Response::new(Body::from(body));
                *res.status_mut() = status;
                if let Some(ct) = content_type {
                    res.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                res
            }
            Passed::Stream { response, .. } => {
                let status = response.status();
                let mut headers = HeaderMap::new();
                for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION] {
                    if let Some(v) = response.headers().get(&name) {
                        headers.insert(name, v.clone());
                    }
                }
                let stream = response.bytes_stream().map_err(std::io::Error::other);
                let mut res = Response::new(Body::from_stream(stream));
                *res.status_mut() = status;
                *res.headers_mut() = headers;
                res
            }
        }
    }

    /// Appends the proxy's counters in Prometheus text format.
    pub fn write_prometheus(&self, out: &mut String) {
        let s = &self.stats;
        let _ = writeln!(out, "# HELP wemp_api_proxy_calls_total API proxy calls by result.");
        let _ = writeln!(out, "# TYPE wemp_api_proxy_calls_total counter");
        for (i, label) in RESULTS.iter().enumerate() {
            let _ = writeln!(
                out,
                "wemp_api_proxy_calls_total{{result=\"{label}\"}} {}",
                s.calls[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wemp_api_proxy_token_retries_total Calls retried once after a token error."
        );
        let _ = writeln!(out, "# TYPE wemp_api_proxy_token_retries_total counter");
        let _ = writeln!(out, "wemp_api_proxy_token_retries_total {}", s.token_retries.load(Relaxed));
        let _ = writeln!(
            out,
            "# HELP wemp_api_proxy_latency_seconds Time of proxied calls (to the answer's head)."
        );
        let _ = writeln!(out, "# TYPE wemp_api_proxy_latency_seconds summary");
        let sum = s.latency_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "wemp_api_proxy_latency_seconds_sum {sum}");
        let _ = writeln!(out, "wemp_api_proxy_latency_seconds_count {}", s.latency_count.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_wemp_account_falls_back_to_the_lookup_by_appid() {
        let fixed = Client::builder("wxfixed0000000000").secret("s").build().unwrap();
        let lookup: ClientLookup = Arc::new(|appid: &str| {
            (appid == "wxauthorizer00000").then(|| Client::builder(appid).secret("s").build().unwrap())
        });
        let proxy = ApiProxy::new("a-long-random-proxy-token").account(["shop"], fixed).more_accounts(lookup);
        let pick = |name: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCOUNT_HEADER, HeaderValue::from_str(name).unwrap());
            proxy.pick(&headers).map(|e| e.client.appid().to_owned())
        };
        assert_eq!(pick("shop").unwrap(), "wxfixed0000000000");
        assert_eq!(pick("wxauthorizer00000").unwrap(), "wxauthorizer00000");
        let err = pick("wxnobody000000000").unwrap_err();
        assert!(err.contains("or an authorizer's appid"), "{err}");
        assert!(!ApiProxy::new("t").more_accounts(Arc::new(|_: &str| None)).is_empty());
    }

    #[test]
    fn apps_of_one_corp_are_picked_by_key_or_name_and_a_bare_corpid_is_ambiguous() {
        let app =
            |agent: &str| Client::builder("ww0000000000000001").secret("s").wecom(agent).build().unwrap();
        let proxy = ApiProxy::new("a-long-random-proxy-token")
            .account(["corp"], app("1000002"))
            .account(["ops"], app("1000003"))
            .account(
                Vec::<String>::new(),
                Client::builder("wx0000000000000001").secret("s").build().unwrap(),
            );
        let pick = |name: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCOUNT_HEADER, HeaderValue::from_str(name).unwrap());
            proxy.pick(&headers).map(|e| e.key)
        };
        assert_eq!(pick("ww0000000000000001/1000003").unwrap(), "ww0000000000000001/1000003");
        assert_eq!(pick("ops").unwrap(), "ww0000000000000001/1000003");
        assert_eq!(pick("corp").unwrap(), "ww0000000000000001/1000002");
        assert_eq!(pick("wx0000000000000001").unwrap(), "wx0000000000000001");
        let err = pick("ww0000000000000001").unwrap_err();
        assert_eq!(
            err,
            "X-Wemp-Account \"ww0000000000000001\" is the corpid of 2 WeCom apps: name one, as one of \
             \"ww0000000000000001/1000002\" (corp), \"ww0000000000000001/1000003\" (ops)"
        );
        let err = pick("ww0000000000000001/1000004").unwrap_err();
        assert!(err.contains("\"ww0000000000000001/1000002\"") && err.contains("\"ops\""), "{err}");

        // One app of the corp: its corpid is enough.
        let one = ApiProxy::new("a-long-random-proxy-token").account(["corp"], app("1000002"));
        let mut headers = HeaderMap::new();
        headers.insert(ACCOUNT_HEADER, HeaderValue::from_static("ww0000000000000001"));
        assert_eq!(one.pick(&headers).unwrap().key, "ww0000000000000001/1000002");
    }
}
