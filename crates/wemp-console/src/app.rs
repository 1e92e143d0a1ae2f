//! Routes and handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use wemp_proto::Secret;
use wemp_store::LogQuery;

use crate::access::{self, COOKIE, Denied};
use crate::config::ConsoleAccount;
use crate::feed::{LiveEntry, Source};
use crate::sim::{self, Action};
use crate::{Shared, media};

const INDEX: &str = include_str!("../assets/index.html");
const LOGIN: &str = include_str!("../assets/login.html");
const JS: &str = "text/javascript; charset=utf-8";

/// The page's static files, embedded: name under `assets/`, content type, body. The scripts
/// are ES modules (`app.js` imports the others), so adding one means adding it here.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../assets/app.js")),
    ("dom.js", JS, include_str!("../assets/dom.js")),
    ("state.js", JS, include_str!("../assets/state.js")),
    ("chat.js", JS, include_str!("../assets/chat.js")),
    ("menu.js", JS, include_str!("../assets/menu.js")),
    ("log.js", JS, include_str!("../assets/log.js")),
    ("setup.js", JS, include_str!("../assets/setup.js")),
    ("accounts.js", JS, include_str!("../assets/accounts.js")),
    ("login.js", JS, include_str!("../assets/login.js")),
    ("i18n.js", JS, include_str!("../assets/i18n.js")),
    ("strings.js", JS, include_str!("../assets/strings.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("icon.svg", "image/svg+xml", include_str!("../assets/icon.svg")),
];

type S = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let base = shared.config.base_path.clone();
    let api = axum::Router::new()
        .route("/config", get(config))
        .route("/send", post(send))
        .route("/media", post(upload).layer(DefaultBodyLimit::max(media::MAX_BYTES)))
        .route("/events", get(events))
        .route("/history", get(history))
        .route("/setup", get(setup))
        .route("/setup/reveal", post(reveal))
        // It fetches an access token and calls the API: a side effect, so POST with the CSRF
        // check (a GET could be fired by any page the admin visits).
        .route("/doctor", post(doctor))
        .route("/rules", get(rules))
        .route("/authorizers", get(authorizers))
        .route("/rules/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), access::guard_api))
        .with_state(shared.clone());
    let redirect_to = format!("{base}/");
    axum::Router::new()
        .route(&base, get(move || async move { Redirect::to(&redirect_to) }))
        .route(&format!("{base}/"), get(index))
        .route(&format!("{base}/login"), post(login))
        .route(&format!("{base}/logout"), post(logout))
        .route(&format!("{base}/assets/{{name}}"), get(asset))
        .route(&format!("{base}/media/{{id}}"), get(media_get))
        .nest(&format!("{base}/api"), api)
        .with_state(shared)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some(&(_, content_type, body)) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// `s` safe inside HTML text and double-quoted attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An HTML page as the console serves its own: never cached, never framed, scripts and
/// styles only from this server.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}

/// The sign-in page saying `message`; `code` names the message for the page's translations
/// (`server.login.<code>` in assets/strings.js).
fn login_page(shared: &Shared, status: StatusCode, code: &str, message: &str, form: bool) -> Response {
    let html = LOGIN
        .replace("{{BASE}}", &escape(&shared.config.base_path))
        .replace("{{CODE}}", &format!("login.{}", escape(code)))
        .replace("{{MESSAGE}}", &escape(message))
        .replace("{{FORM_HIDDEN}}", if form { "" } else { "hidden" });
    page(status, html)
}

async fn index(State(shared): S, headers: HeaderMap) -> Response {
    match access::check(&shared.config.access, &shared.sessions, &headers) {
        Ok(()) => {}
        Err(d) => {
            let (status, code, form) = match d {
                Denied::Login => (StatusCode::UNAUTHORIZED, "login", true),
                Denied::NotLoopback => (StatusCode::FORBIDDEN, "not-loopback", false),
                Denied::Disabled => (StatusCode::FORBIDDEN, "disabled", false),
            };
            return login_page(&shared, status, code, d.message(), form);
        }
    }
    let html = INDEX.replace("{{BASE}}", &escape(&shared.config.base_path)).replace("{{CSRF}}", &shared.csrf);
    page(StatusCode::OK, html)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(shared): S,
    extensions: http::Extensions,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let crate::Access::Token(token) = &shared.config.access else {
        return Redirect::to(&format!("{}/", shared.config.base_path)).into_response();
    };
    if !access::same_origin(&headers) {
        return login_page(&shared, StatusCode::FORBIDDEN, "cross-site", "cross-site login refused", true);
    }
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let now = std::time::Instant::now();
    if let Err(wait) = shared.throttle.check(peer, now) {
        let secs = wait.as_secs().max(1);
        let mut res = login_page(
            &shared,
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            &format!("too many wrong tokens from your address: try again in {secs} s"),
            true,
        );
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return res;
    }
    if !access::same(form.token.trim(), token.expose()) {
        let failures = shared.throttle.fail(peer, now);
        tracing::warn!(%peer, failures, "console login failed: wrong admin token");
        if failures >= crate::MAX_FAILURES {
            tracing::warn!(%peer, "console login: too many wrong tokens; refusing this peer for a while");
        }
        return login_page(&shared, StatusCode::UNAUTHORIZED, "wrong-token", "wrong token: try again", true);
    }
    shared.throttle.forget(peer);
    tracing::info!(%peer, "console login");
    let cookie = format!(
        "{COOKIE}={}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        shared.sessions.open(now),
        shared.config.base_path,
        crate::SESSION_TTL.as_secs(),
        if access::over_https(&headers) { "; Secure" } else { "" },
    );
    let mut res = Redirect::to(&format!("{}/", shared.config.base_path)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn logout(State(shared): S, headers: HeaderMap) -> Response {
    if !access::same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(id) = access::session_cookie(&headers) {
        shared.sessions.revoke(&id);
    }
    let cookie = format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0{}",
        shared.config.base_path,
        if access::over_https(&headers) { "; Secure" } else { "" },
    );
    let mut res = Redirect::to(&format!("{}/", shared.config.base_path)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `?account=ID`: which account a request is about (the default, first one when unset).
#[derive(Deserialize)]
struct AccountQuery {
    account: Option<String>,
}

/// An `account` the console does not know: answered 400, naming the accounts there are.
struct UnknownAccount {
    /// The account asked for.
    account: String,
    /// The accounts there are, quoted.
    known: String,
}

/// How to get a first account, for a third-party platform's console without one.
const NO_ACCOUNT_YET: &str = "this console has no account yet: authorize the third-party platform (wemp component authorize-url prints \
     the authorization link), and the authorizer becomes an account";

impl IntoResponse for UnknownAccount {
    fn into_response(self) -> Response {
        let Self { account, known } = self;
        if known.is_empty() {
            // A third-party platform's console before any authorization: nothing to pick.
            let status = if account.is_empty() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            let msg = if account.is_empty() {
                NO_ACCOUNT_YET.to_owned()
            } else {
                format!("unknown account {account:?}: {NO_ACCOUNT_YET}")
            };
            let body = json!({ "error": msg, "code": "no-account", "params": { "account": account } });
            return (status, Json(body)).into_response();
        }
        let msg = format!("unknown account {account:?}: this console plays {known}");
        bad_request("unknown-account", msg, json!({ "account": account, "known": known }))
    }
}

/// The account named `id` (the default one for `None` or empty) with its WeChat side,
/// among the accounts played now (the configured ones and those the server added).
fn pick(
    shared: &Shared,
    id: Option<&str>,
) -> Result<(ConsoleAccount, wemp_client::callback::Simulator), UnknownAccount> {
    let played = shared.accounts.now();
    let accounts = &played.accounts;
    let i = match id.filter(|i| !i.is_empty()) {
        None => Some(0),
        Some(id) => accounts.iter().position(|a| a.id == id),
    };
    match i.and_then(|i| Some((accounts.get(i)?.clone(), played.wechat.get(i)?.clone()))) {
        Some(found) => Ok(found),
        None => {
            let known: Vec<String> = accounts.iter().map(|a| format!("{:?}", a.id)).collect();
            Err(UnknownAccount { account: id.unwrap_or_default().to_owned(), known: known.join(", ") })
        }
    }
}

/// What the page shows of an account (no Token, no key).
fn account_json(a: &ConsoleAccount) -> serde_json::Value {
    json!({
        "id": a.id,
        "name": a.name,
        "label": a.label(),
        "appid": a.account().appid(),
        "original_id": a.original_id(),
        "mode": a.mode(),
        "kind": a.account().kind(),
        "agentid": a.account().agentid(),
        "endpoint": a.endpoint,
        "path": a.path(),
        "component": a.component_appid(),
    })
}

async fn config(State(shared): S, Query(q): Query<AccountQuery>) -> Response {
    let c = &shared.config;
    let played = shared.accounts.now();
    let account = match pick(&shared, q.account.as_deref()) {
        Ok((account, _)) => Some(account),
        // A third-party platform's console before any authorization: no account yet, and
        // `component` tells the page to say how to authorize one.
        Err(_) if played.accounts.is_empty() && q.account.as_deref().unwrap_or_default().is_empty() => None,
        Err(e) => return e.into_response(),
    };
    Json(json!({
        // The account asked for (the default one without `account=`), as before several
        // accounts existed; `accounts` lists them all, the default first, then those the
        // server added while it runs (a third-party platform's authorizers). Both `null`
        // and empty while a third-party platform has no account yet.
        "account": account.as_ref().map(account_json),
        "endpoint": account.as_ref().map(|a| &a.endpoint),
        "accounts": played.accounts.iter().map(account_json).collect::<Vec<_>>(),
        "component": shared.authorizers.is_some(),
        "users": c.users,
        "menu": c.menu,
        "menu_shared": true,
        "timeout_ms": u64::try_from(c.schedule.timeout.as_millis()).unwrap_or(u64::MAX),
        "tries": c.schedule.tries,
        "has_log": shared.log.is_some(),
        "has_doctor": shared.doctor.is_some(),
        "has_rules": shared.rules.is_some(),
        "token_access": matches!(c.access, crate::Access::Token(_)),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SendBody {
    user: String,
    action: Action,
    /// The account to play WeChat for (default: the first).
    #[serde(default)]
    account: Option<String>,
}

/// A 400 saying `msg`, with a `code` and its `params` for the page's translations
/// (`server.api.<code>` in assets/strings.js).
fn bad_request(code: &str, msg: impl Into<String>, params: serde_json::Value) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg.into(), "code": code, "params": params })))
        .into_response()
}

async fn send(State(shared): S, Json(body): Json<SendBody>) -> Response {
    let (account, wechat) = match pick(&shared, body.account.as_deref()) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    if !shared.config.users.iter().any(|u| u.openid == body.user) {
        let msg = format!("{:?} is not one of the console's test users", body.user);
        return bad_request("unknown-user", msg, json!({ "user": body.user }));
    }
    // What the server reports about this message (a deadline answer, a rejection) reaches
    // the hub before its HTTP answer: collect it for the chat.
    let mut rx = shared.hub.subscribe();
    let mut result = sim::run(&wechat, &body.user, &body.action).await;
    result.account = account.id.clone();
    let sent = result.sent_xml.trim().to_owned();
    loop {
        match rx.try_recv() {
            Ok(e) if e.raw_xml() == Some(sent.as_str()) => result.server.push((*e).clone()),
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    Json(result).into_response()
}

async fn upload(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ct.starts_with("image/") {
        return bad_request("not-image", "only images can be uploaded (Content-Type image/…)", json!({}));
    }
    if body.is_empty() {
        return bad_request("empty-upload", "empty upload", json!({}));
    }
    let id = shared.media.put(ct.to_owned(), body);
    let url = format!("{}/media/{id}", shared.config.base_path);
    Json(json!({ "media_id": id, "url": url })).into_response()
}

async fn media_get(State(shared): S, Path(id): Path<String>) -> Response {
    match shared.media.get(&id) {
        Some((ct, bytes)) => {
            let ct =
                HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream"));
            // Any image type is kept, SVG too: opened on its own, on the console's origin,
            // it must not run a script or be read as something else.
            let inert = [
                (header::CONTENT_TYPE, ct),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")),
            ];
            (inert, bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such media id").into_response(),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
    /// Only this account's entries.
    account: Option<String>,
}

async fn events(
    State(shared): S,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UnknownAccount> {
    let only = match q.account.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(id) => Some(pick(&shared, Some(id))?.0.id.clone()),
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.after)
        .unwrap_or(0);
    let rx = shared.hub.subscribe();
    let live = futures_util::StreamExt::map(live(shared.hub.clone(), rx, last, only), |e| Ok(to_event(&e)));
    Ok(Sse::new(live).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The entries after `seen`, for the account `only` (or all): first those the hub keeps,
/// then each one as it comes through `rx` (subscribed before this call, so nothing falls
/// between). A page that falls behind the broadcast (more than it buffers) catches up from
/// the hub's ring again instead of silently missing what it skipped.
fn live(
    hub: Arc<crate::feed::Hub>,
    rx: tokio::sync::broadcast::Receiver<Arc<LiveEntry>>,
    seen: u64,
    only: Option<String>,
) -> impl Stream<Item = Arc<LiveEntry>> {
    use tokio::sync::broadcast::error::RecvError;
    let missed: std::collections::VecDeque<_> = hub.recent(seen).into();
    futures_util::stream::unfold((rx, seen, missed), move |(mut rx, mut seen, mut missed)| {
        let (hub, only) = (hub.clone(), only.clone());
        async move {
            loop {
                let next = match missed.pop_front() {
                    Some(e) => e,
                    None => match rx.recv().await {
                        Ok(e) => e,
                        Err(RecvError::Lagged(_)) => {
                            missed = hub.recent(seen).into();
                            continue;
                        }
                        Err(RecvError::Closed) => return None,
                    },
                };
                if next.id <= seen {
                    continue;
                }
                seen = next.id;
                if only.is_none() || next.account == only {
                    return Some((next, (rx, seen, missed)));
                }
            }
        }
    })
}

fn to_event(e: &LiveEntry) -> Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Event::default().id(e.id.to_string()).event("entry").data(data)
}

#[derive(Deserialize)]
struct HistoryQuery {
    /// Only this account's entries.
    account: Option<String>,
    user: Option<String>,
    #[serde(rename = "type")]
    msg_type: Option<String>,
    limit: Option<usize>,
}

async fn history(State(shared): S, Query(q): Query<HistoryQuery>) -> Response {
    let Some(log) = &shared.log else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "no message log configured" })))
            .into_response();
    };
    let appid = match q.account.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(id) => match pick(&shared, Some(id)) {
            Ok((a, _)) => Some(a.id),
            Err(e) => return e.into_response(),
        },
    };
    let query = LogQuery {
        appid,
        openid: q.user.filter(|u| !u.is_empty()),
        msg_type: q.msg_type.filter(|t| !t.is_empty()),
        limit: Some(q.limit.unwrap_or(200).min(1000)),
        ..LogQuery::default()
    };
    match log.entries(&query).await {
        Ok(rows) => {
            let played = shared.accounts.now();
            let items: Vec<LiveEntry> = rows
                .into_iter()
                .map(|(id, e)| {
                    let mut x = crate::observe::entry(&played.accounts, Source::Log, Arc::new(e));
                    x.id = u64::try_from(id).unwrap_or_default();
                    x
                })
                .collect();
            Json(json!({ "items": items })).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

async fn setup(State(shared): S, Query(q): Query<AccountQuery>) -> Response {
    let a = match pick(&shared, q.account.as_deref()) {
        Ok((a, _)) => a,
        Err(e) => return e.into_response(),
    };
    Json(json!({
        "account": a.id,
        "url": a.public_url(),
        "token": a.account().token().expose(),
        "aes_key_masked": a.masked_aes_key(),
        "mode": a.mode(),
        "appid": a.account().appid(),
        "original_id": a.original_id(),
    }))
    .into_response()
}

async fn reveal(State(shared): S, Query(q): Query<AccountQuery>) -> Response {
    match pick(&shared, q.account.as_deref()) {
        Ok((a, _)) => Json(json!({ "account": a.id, "aes_key": a.account().aes_key().map(Secret::expose) }))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `?lang=zh-CN`: the page's language.
#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn doctor(State(shared): S, Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang.as_deref().map(crate::Language::from_tag).unwrap_or_default();
    match &shared.doctor {
        Some(d) => Json(json!({ "checks": d.checks(lang).await })).into_response(),
        None => Json(json!({ "checks": [] })).into_response(),
    }
}

async fn rules(State(shared): S) -> Response {
    match &shared.rules {
        Some(r) => Json(json!({ "rules": r.current() })).into_response(),
        None => Json(json!({ "rules": [] })).into_response(),
    }
}

/// The third-party platform's authorizers: `component` false when the server has none.
async fn authorizers(State(shared): S) -> Response {
    let Some(a) = &shared.authorizers else {
        return Json(json!({ "component": false, "authorizers": [] })).into_response();
    };
    match a.list().await {
        Ok(list) => Json(json!({ "component": true, "authorizers": list })).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e }))).into_response(),
    }
}

async fn reload(State(shared): S) -> Response {
    let Some(r) = &shared.rules else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "this server has no reloadable rules", "code": "no-rules", "params": {} })),
        )
            .into_response();
    };
    match r.reload().await {
        // The page words the report from `code` and `params`; `report` is the English.
        Ok(report) => Json(json!({
            "ok": true,
            "report": report.to_string(),
            "code": if report.restart.is_empty() { "reloaded" } else { "reloaded-restart" },
            "params": { "rules": report.rules, "restart": report.restart.join(", ") },
            "rules": r.current(),
        }))
        .into_response(),
        Err(e) => {
            // Problems located in the config: the page words their places.
            let problems =
                e.downcast_ref::<crate::ReloadRefused>().map(|r| r.problems.clone()).unwrap_or_default();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "ok": false, "error": e.to_string(), "problems": problems, "rules": r.current() })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;
    use wemp_proto::{Incoming, Mode, Reply};
    use wemp_server::{Account, WechatService};

    use crate::{Console, ConsoleAccount, ConsoleConfig};

    #[tokio::test]
    async fn a_page_that_falls_behind_catches_up_from_the_ring() {
        use std::sync::Arc;

        use futures_util::StreamExt as _;

        use crate::feed::{Hub, LiveEntry};
        let hub = Arc::new(Hub::with_first_id(1000, 1));
        let rx = hub.subscribe();
        // More than the broadcast buffers (256) while the page is not reading.
        for n in 0..600 {
            let account = Some(if n % 3 == 0 { "shop" } else { "demo" }.to_owned());
            hub.publish(LiveEntry { account, ..LiveEntry::default() });
        }
        let all: Vec<u64> = super::live(hub.clone(), rx, 0, None).take(600).map(|e| e.id).collect().await;
        assert_eq!(all, (1..=600).collect::<Vec<_>>());
        // One account's page, joining after id 300, behind too.
        let rx = hub.subscribe();
        for _ in 0..300 {
            hub.publish(LiveEntry { account: Some("shop".into()), ..LiveEntry::default() });
        }
        let shop: Vec<u64> =
            super::live(hub.clone(), rx, 300, Some("shop".into())).take(400).map(|e| e.id).collect().await;
        let expected: Vec<u64> = (301..=900).filter(|id| id > &600 || (id - 1) % 3 == 0).collect();
        assert_eq!(shop, expected);
    }

    /// With no page open the observer keeps each record as it is; a page opening later gets
    /// them as entries tagged with their account (by appid, else by the message's
    /// `ToUserName`), each made once; the ring keeps its capacity.
    #[test]
    fn an_unwatched_console_keeps_records_and_tags_them_when_a_page_asks() {
        use std::sync::Arc;

        use wemp_server::{DeliveryRecord, Observer as _};

        use crate::feed::{Hub, Source};
        let hub = Arc::new(Hub::with_first_id(3, 1));
        let console = Console::builder(config("http://127.0.0.1:8080")).hub(hub.clone()).build().unwrap();
        let observer = console.observer();
        let record = |appid: Option<&str>, to: &str| {
            let mut r = DeliveryRecord::new(7, 1);
            r.appid = appid.map(Into::into);
            r.raw_xml = Some(format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName></xml>").into());
            Arc::new(r)
        };
        let records = [
            record(Some(DEMO), "gh_demo0000001"),
            record(Some(SHOP), "gh_demo0000001"),
            record(None, "gh_shop0000002"),
            record(Some("wx_other"), "gh_nobody"),
        ];
        for r in &records {
            observer.observe(r);
        }
        let first = hub.recent(0);
        let seen: Vec<(u64, Option<&str>, Source)> =
            first.iter().map(|x| (x.id, x.account.as_deref(), x.source)).collect();
        assert_eq!(
            seen,
            [
                (2, Some(SHOP), Source::Observer),
                (3, Some(SHOP), Source::Observer),
                (4, Some("wx_other"), Source::Observer)
            ]
        );
        // The record itself, not a copy, each entry made once.
        assert!(Arc::ptr_eq(&first[0].record, &records[1]));
        let again = hub.recent(0);
        assert!(first.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)));
        // The record that left the ring is no longer held by the console.
        assert_eq!(Arc::strong_count(&records[0]), 1);
    }

    /// Consoles sharing a hub each tag their observer's records from their own accounts,
    /// however their records interleave, and a console's observers share one book.
    #[test]
    fn consoles_sharing_a_hub_tag_records_from_their_own_accounts() {
        use std::sync::Arc;

        use wemp_server::{DeliveryRecord, Observer as _};

        use crate::feed::Hub;
        let hub = Arc::new(Hub::with_first_id(8, 1));
        let two = Console::builder(config("http://127.0.0.1:8080")).hub(hub.clone()).build().unwrap();
        // One account: every record is tagged with it.
        let solo = Account::new("wx00000000000000c3", "SoloTok3").with_path("solo");
        let solo =
            ConsoleConfig::from_accounts(vec![ConsoleAccount::new("http://127.0.0.1:8080/solo", solo)]);
        let one = Console::builder(solo).hub(hub.clone()).build().unwrap();
        let record = Arc::new({
            let mut r = DeliveryRecord::new(7, 1);
            r.appid = Some("wx_other".into());
            r
        });
        for observer in [one.observer(), two.observer(), two.observer(), one.observer()] {
            observer.observe(&record);
        }
        let tags: Vec<Option<String>> = hub.recent(0).iter().map(|x| x.account.clone()).collect();
        let (solo, other) = (Some("wx00000000000000c3".to_owned()), Some("wx_other".to_owned()));
        assert_eq!(tags, [solo.clone(), other.clone(), other, solo]);
        assert_eq!(hub.book(&two.shared.accounts), 1, "two consoles, two books");
    }

    /// A record that leaves the ring held by nothing else is let go: kept (not freed) until
    /// the next record shared on this thread takes its allocation; one held elsewhere is not.
    #[test]
    fn a_record_the_ring_drops_is_let_go_for_the_next_one() {
        use std::sync::Arc;

        use wemp_server::{DeliveryRecord, Observer as _};

        use crate::feed::Hub;
        let hub = Arc::new(Hub::with_first_id(1, 1));
        let console = Console::builder(config("http://127.0.0.1:8080")).hub(hub.clone()).build().unwrap();
        let observer = console.observer();
        // Each record holds `mark`: its count tells how many are alive.
        let mark: Arc<str> = Arc::from(DEMO);
        let shared = |id| {
            let mut r = DeliveryRecord::new(id, 1);
            r.appid = Some(mark.clone());
            DeliveryRecord::shared_from(&mut Some(r)).unwrap()
        };
        let first = shared(1);
        let at = Arc::as_ptr(&first);
        observer.observe(&first);
        drop(first);
        // The first leaves the ring for the second, and is kept: `mark`, the second, the first.
        observer.observe(&shared(2));
        assert_eq!(Arc::strong_count(&mark), 3);
        // The third takes its allocation; the first is dropped then.
        let third = shared(3);
        assert_eq!((Arc::as_ptr(&third), third.id), (at, 3));
        assert_eq!(Arc::strong_count(&mark), 3);
        // The second leaves for the third (kept, taken by the fourth); the third, still held
        // here, leaves for the fourth and is not kept.
        observer.observe(&third);
        let fourth = shared(4);
        observer.observe(&fourth);
        assert_eq!((third.id, Arc::strong_count(&third)), (3, 1));
        assert_eq!(Arc::strong_count(&mark), 3, "`mark`, the third, the fourth");
    }

    const KEY_B: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg";
    const DEMO: &str = "wx00000000000000a1";
    const SHOP: &str = "wx00000000000000b2";

    /// `demo` (plain, at /wechat) and `shop` (safe, at /wechat/shop), on `origin`; the ids
    /// are the appids, as the server names the accounts.
    fn config(origin: &str) -> ConsoleConfig {
        let demo = Account::new(DEMO, "DemoTok1").with_path("wechat").with_original_id("gh_demo0000001");
        let shop = Account::new(SHOP, "ShopTok2")
            .with_path("shop")
            .with_aes_key(KEY_B)
            .unwrap()
            .with_mode(Mode::Safe)
            .with_original_id("gh_shop0000002");
        ConsoleConfig::from_accounts(vec![
            ConsoleAccount::new(format!("{origin}/wechat"), demo).with_name("demo"),
            ConsoleAccount::new(format!("{origin}/wechat/shop"), shop).with_name("shop"),
        ])
    }

    async fn call(
        app: &axum::Router,
        console: &Console,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1")
            .header(crate::CSRF_HEADER, console.shared.csrf.as_str());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn every_account_has_its_config_and_setup_and_an_unknown_one_is_a_400() {
        let console = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        let app = console.router();

        // Without `account`: the first account, in the fields the page always read.
        let (status, cfg) = call(&app, &console, "GET", "/console/api/config", None).await;
        assert_eq!(status, 200);
        assert_eq!(
            (cfg["account"]["name"].as_str(), cfg["account"]["mode"].as_str()),
            (Some("demo"), Some("plain"))
        );
        assert_eq!(cfg["endpoint"], "http://127.0.0.1:8080/wechat");
        let ids: Vec<&str> =
            cfg["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [DEMO, SHOP]);
        assert_eq!(cfg["accounts"][1]["path"], "/wechat/shop");
        assert_eq!(cfg["accounts"][1]["mode"], "safe");
        let (_, cfg) =
            call(&app, &console, "GET", &format!("/console/api/config?account={SHOP}"), None).await;
        assert_eq!(cfg["account"]["original_id"], "gh_shop0000002");
        assert_eq!(cfg["endpoint"], "http://127.0.0.1:8080/wechat/shop");
        let page = cfg.to_string();
        assert!(!page.contains("ShopTok2") && !page.contains(KEY_B), "no secrets in the config: {page}");

        // Setup: each account's URL, Token and masked key; the key only when revealed.
        let (_, demo) = call(&app, &console, "GET", "/console/api/setup", None).await;
        assert_eq!(
            (demo["token"].as_str(), demo["url"].as_str()),
            (Some("DemoTok1"), Some("http://127.0.0.1:8080/wechat"))
        );
        assert!(demo["aes_key_masked"].is_null());
        let (_, shop) =
            call(&app, &console, "GET", &format!("/console/api/setup?account={SHOP}"), None).await;
        assert_eq!(shop["account"], SHOP);
        assert_eq!((shop["token"].as_str(), shop["mode"].as_str()), (Some("ShopTok2"), Some("safe")));
        assert_eq!(shop["url"], "http://127.0.0.1:8080/wechat/shop");
        let masked = shop["aes_key_masked"].as_str().unwrap();
        assert!(masked.starts_with("0123") && !masked.contains("4567"), "{masked}");
        assert!(!shop.to_string().contains(KEY_B));
        let (status, key) =
            call(&app, &console, "POST", &format!("/console/api/setup/reveal?account={SHOP}"), None).await;
        assert_eq!((status, key["aes_key"].as_str()), (200, Some(KEY_B)));
        let (_, key) = call(&app, &console, "POST", "/console/api/setup/reveal", None).await;
        assert!(key["aes_key"].is_null(), "the default account has no key: {key}");

        // An account the console does not know: a 400 that says which ones it knows.
        let unknown = format!("unknown account \"nope\": this console plays \"{DEMO}\", \"{SHOP}\"");
        for (method, uri) in [
            ("GET", "/console/api/config?account=nope"),
            ("GET", "/console/api/setup?account=nope"),
            ("POST", "/console/api/setup/reveal?account=nope"),
            ("GET", "/console/api/events?account=nope"),
        ] {
            let (status, body) = call(&app, &console, method, uri, None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some(unknown.as_str())), "{method} {uri}");
            // …and as a code with its params, which the page translates.
            assert_eq!(body["code"], "unknown-account");
            assert_eq!(
                body["params"],
                json!({ "account": "nope", "known": format!("\"{DEMO}\", \"{SHOP}\"") })
            );
        }
        let send = serde_json::json!({
            "user": "oWempTestUser000000000000001", "account": "nope", "action": { "kind": "text", "content": "x" },
        });
        let (status, body) = call(&app, &console, "POST", "/console/api/send", Some(send)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(unknown.as_str())));
    }

    /// The page is ES modules: every `import … from './x.js'` of a served script (and the
    /// page's own script tag) must name a served asset, with a JavaScript content type.
    #[tokio::test]
    async fn every_module_the_page_imports_is_served_as_javascript() {
        let console = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        let app = console.router();
        assert!(super::INDEX.contains(r#"<script type="module" src="{{BASE}}/assets/app.js">"#));
        let mut wanted = vec!["app.js".to_owned()];
        for (_, _, body) in super::ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let name = line.split("from './").nth(1).and_then(|r| r.split('\'').next()).unwrap();
                wanted.push(name.to_owned());
            }
        }
        assert!(wanted.len() > 8, "the modules import each other: {wanted:?}");
        for name in wanted {
            let req = http::Request::get(format!("/console/assets/{name}"))
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200, "{name}");
            let ct = res.headers().get("content-type").unwrap().to_str().unwrap();
            assert!(ct.starts_with("text/javascript"), "{name}: {ct}");
        }
        let req =
            http::Request::get("/console/assets/nope.js").header("host", "127.0.0.1").body(Body::empty());
        assert_eq!(app.oneshot(req.unwrap()).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn the_authorizers_are_listed_when_the_server_has_a_third_party_platform() {
        struct Failing;
        #[async_trait::async_trait]
        impl crate::Authorizers for Failing {
            async fn list(&self) -> Result<Vec<crate::AuthorizerSummary>, String> {
                Err("component state: database is locked".into())
            }
        }
        let get = |console: &Console| {
            let req = http::Request::get("/console/api/authorizers").header("host", "127.0.0.1");
            console.router().oneshot(req.body(Body::empty()).unwrap())
        };
        let none = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        let res = get(&none).await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body, serde_json::json!({ "component": false, "authorizers": [] }));
        let failing = Console::builder(config("http://127.0.0.1:8080")).authorizers(Failing).build().unwrap();
        let res = get(&failing).await.unwrap();
        assert_eq!(res.status(), 503);
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"], "component state: database is locked");
    }

    /// A third-party platform's console before any account authorized it: its config says
    /// there is no account (and a platform), what needs an account says how to get one.
    #[tokio::test]
    async fn a_platform_without_accounts_says_there_is_none_yet() {
        struct Empty;
        #[async_trait::async_trait]
        impl crate::Authorizers for Empty {
            async fn list(&self) -> Result<Vec<crate::AuthorizerSummary>, String> {
                Ok(Vec::new())
            }
        }
        let console =
            Console::builder(ConsoleConfig::from_accounts(Vec::new())).authorizers(Empty).build().unwrap();
        let app = console.router();
        let (status, cfg) = call(&app, &console, "GET", "/console/api/config", None).await;
        assert_eq!(status, 200, "{cfg}");
        assert_eq!((&cfg["account"], &cfg["endpoint"]), (&Value::Null, &Value::Null), "{cfg}");
        assert_eq!((cfg["accounts"].as_array().map(Vec::len), &cfg["component"]), (Some(0), &json!(true)));
        for (method, uri) in [("GET", "/console/api/setup"), ("POST", "/console/api/setup/reveal")] {
            let (status, body) = call(&app, &console, method, uri, None).await;
            assert_eq!((status, body["code"].as_str()), (404, Some("no-account")), "{method} {uri}: {body}");
            assert!(body["error"].as_str().unwrap().contains("wemp component authorize-url"), "{body}");
        }
        let send =
            json!({ "user": "oWempTestUser000000000000001", "action": { "kind": "text", "content": "x" } });
        let (status, body) = call(&app, &console, "POST", "/console/api/send", Some(send)).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("no-account")), "{body}");
        let (status, body) = call(&app, &console, "GET", "/console/api/config?account=wx1", None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("no-account")), "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("unknown account \"wx1\": this console has no account yet")
        );
        let (_, listed) = call(&app, &console, "GET", "/console/api/authorizers", None).await;
        assert_eq!(listed, json!({ "component": true, "authorizers": [] }));
        // A console of its own accounts says it has no platform.
        let own = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        let (_, cfg) = call(&own.router(), &own, "GET", "/console/api/config", None).await;
        assert_eq!(cfg["component"], false);
    }

    #[tokio::test]
    async fn uploaded_media_is_served_inert_even_an_svg_with_a_script() {
        let console = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('/console/api/setup/reveal')"/>"#;
        let req = http::Request::post("/console/api/media")
            .header("host", "127.0.0.1")
            .header("content-type", "image/svg+xml")
            .header(crate::CSRF_HEADER, console.shared.csrf.as_str())
            .body(Body::from(svg))
            .unwrap();
        let res = console.router().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let url = body["url"].as_str().unwrap();
        let req = http::Request::get(url).header("host", "127.0.0.1").body(Body::empty()).unwrap();
        let res = console.router().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers();
        // Opened on its own, on the console's origin, it must not run: no script, no sniffing.
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "CSP: {csp:?}");
        assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    }

    #[tokio::test]
    async fn the_live_feed_can_be_limited_to_one_account() {
        let console = Console::builder(config("http://127.0.0.1:8080")).build().unwrap();
        for (account, summary) in [(DEMO, "for demo"), (SHOP, "for shop")] {
            let mut record = wemp_store::DeliveryRecord::new(0, 0);
            record.summary = Some(summary.into());
            let mut x = crate::LiveEntry::new(crate::feed::Source::Observer, std::sync::Arc::new(record));
            x.account = Some(account.into());
            console.hub().publish(x);
        }
        let req = http::Request::get(format!("/console/api/events?account={SHOP}"))
            .header("host", "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        let res = console.router().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let mut body = res.into_body();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let text = String::from_utf8_lossy(&frame);
        assert!(text.contains("for shop") && !text.contains("for demo"), "{text}");
        assert!(text.contains(&format!("\"account\":\"{SHOP}\"")), "{text}");
    }

    #[tokio::test]
    async fn the_simulator_plays_wechat_for_the_account_asked_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let console = Console::builder(config(&origin)).build().unwrap();
        let mut b = WechatService::builder()
            .router(
                wemp_server::Router::new()
                    .fallback(|m: Incoming| async move { Reply::text(format!("to {}", m.header().to)) }),
            )
            .observer(console.observer());
        // The server answers for the very accounts the console plays WeChat for.
        for a in &console.config().accounts {
            b = b.account(a.account().clone());
        }
        let service = b.build().unwrap();
        let callback = axum::Router::new()
            .route_service("/wechat", service.clone())
            .route_service("/wechat/shop", service);
        let app = console.tap(callback).merge(console.router());
        let served = tokio::spawn(axum::serve(listener, app.clone()).into_future());

        let send = |account: Option<&str>| {
            let mut body = serde_json::json!({
                "user": "oWempTestUser000000000000001", "action": { "kind": "text", "content": "who is there?" },
            });
            if let Some(a) = account {
                body["account"] = a.into();
            }
            body
        };
        // The second account: signed with its Token, encrypted with its key, posted to its
        // path with its original id as ToUserName — the server finds it and answers in kind.
        let (status, res) = call(&app, &console, "POST", "/console/api/send", Some(send(Some(SHOP)))).await;
        assert_eq!(status, 200, "{res}");
        assert_eq!(res["account"], SHOP);
        assert_eq!(res["sees"]["reply"]["content"], "to gh_shop0000002", "{res}");
        assert_eq!(res["encrypted"], true);
        assert_eq!(res["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(res["server"][0]["account"], SHOP, "the server's record is tagged: {res}");
        assert_eq!(res["server"][0]["record"]["mode"], "safe");
        // What WeChat sent and what admission checked, as the record carries them.
        let record = &res["server"][0]["record"];
        assert_eq!(record["query"]["encrypt_type"], "aes", "{record}");
        assert!(record["headers"]["content-type"].is_string(), "{record}");
        let checks: Vec<(&str, bool)> = record["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["kind"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
            .collect();
        assert!(
            checks.contains(&("msg_signature", true)) && checks.contains(&("decrypt", true)),
            "{checks:?}"
        );
        assert!(checks.iter().all(|c| c.1), "{checks:?}");
        // No account: the first one, in plain mode, as before.
        let (_, res) = call(&app, &console, "POST", "/console/api/send", Some(send(None))).await;
        assert_eq!(res["account"], DEMO);
        assert_eq!(res["sees"]["reply"]["content"], "to gh_demo0000001", "{res}");
        assert_eq!(res["encrypted"], false);
        assert_eq!(res["server"][0]["account"], DEMO);
        // The live log has both, each with its account.
        let tagged: Vec<_> =
            console.hub().recent(0).iter().map(|x| (x.account.clone(), x.record.mode)).collect();
        assert_eq!(
            tagged,
            [(Some(SHOP.to_owned()), Some(Mode::Safe)), (Some(DEMO.to_owned()), Some(Mode::Plain))]
        );
        served.abort();
    }
}
