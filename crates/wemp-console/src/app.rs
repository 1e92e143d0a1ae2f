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
use wemp_store::LogQuery;

use crate::access::{self, COOKIE, Denied};
use crate::feed::Exchange;
use crate::sim::{self, Action};
use crate::{Shared, media};

const INDEX: &str = include_str!("../assets/index.html");
const LOGIN: &str = include_str!("../assets/login.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const ICON: &str = include_str!("../assets/icon.svg");

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
        .route("/doctor", get(doctor))
        .route("/rules", get(rules))
        .route("/rules/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), access::guard_api))
        .with_state(shared.clone());
    let redirect_to = format!("{base}/");
    axum::Router::new()
        .route(&base, get(move || async move { Redirect::to(&redirect_to) }))
        .route(&format!("{base}/"), get(index))
        .route(&format!("{base}/login"), post(login))
        .route(&format!("{base}/logout"), post(logout))
        .route(
            &format!("{base}/assets/app.js"),
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(&format!("{base}/assets/app.css"), get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route(&format!("{base}/assets/icon.svg"), get(|| async { asset("image/svg+xml", ICON) }))
        .route(&format!("{base}/media/{{id}}"), get(media_get))
        .nest(&format!("{base}/api"), api)
        .with_state(shared)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(status: StatusCode, html: String) -> Response {
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

fn login_page(shared: &Shared, status: StatusCode, message: &str, form: bool) -> Response {
    let html = LOGIN
        .replace("{{BASE}}", &escape(&shared.config.base_path))
        .replace("{{MESSAGE}}", &escape(message))
        .replace("{{FORM_HIDDEN}}", if form { "" } else { "hidden" });
    page(status, html)
}

async fn index(State(shared): S, headers: HeaderMap) -> Response {
    match access::check(&shared.config.access, &headers) {
        Ok(()) => {}
        Err(Denied::Login) => {
            return login_page(&shared, StatusCode::UNAUTHORIZED, Denied::Login.message(), true);
        }
        Err(d) => return login_page(&shared, StatusCode::FORBIDDEN, d.message(), false),
    }
    let html = INDEX.replace("{{BASE}}", &escape(&shared.config.base_path)).replace("{{CSRF}}", &shared.csrf);
    page(StatusCode::OK, html)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(shared): S, headers: HeaderMap, axum::Form(form): axum::Form<LoginForm>) -> Response {
    let crate::Access::Token(token) = &shared.config.access else {
        return Redirect::to(&format!("{}/", shared.config.base_path)).into_response();
    };
    if !access::same_origin(&headers) {
        return login_page(&shared, StatusCode::FORBIDDEN, "cross-site login refused", true);
    }
    if !access::same(form.token.trim(), token) {
        return login_page(&shared, StatusCode::UNAUTHORIZED, "wrong token: try again", true);
    }
    let cookie = format!(
        "{COOKIE}={}; Path={}; HttpOnly; SameSite=Strict; Max-Age=31536000",
        access::session_value(token),
        shared.config.base_path
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
    let cookie = format!("{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0", shared.config.base_path);
    let mut res = Redirect::to(&format!("{}/", shared.config.base_path)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn config(State(shared): S) -> Json<serde_json::Value> {
    let c = &shared.config;
    Json(json!({
        "account": {
            "name": c.account.name,
            "appid": c.account.appid,
            "original_id": c.account.original_id,
            "mode": c.account.mode,
        },
        "endpoint": c.endpoint,
        "users": c.users,
        "menu": c.menu,
        "timeout_ms": u64::try_from(c.schedule.timeout.as_millis()).unwrap_or(u64::MAX),
        "tries": c.schedule.tries,
        "has_log": shared.log.is_some(),
        "has_doctor": shared.doctor.is_some(),
        "has_rules": shared.rules.is_some(),
        "token_access": matches!(c.access, crate::Access::Token(_)),
    }))
}

#[derive(Deserialize)]
struct SendBody {
    user: String,
    action: Action,
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg.into() }))).into_response()
}

async fn send(State(shared): S, Json(body): Json<SendBody>) -> Response {
    if !shared.config.users.iter().any(|u| u.openid == body.user) {
        return bad_request(format!("{:?} is not one of the console's test users", body.user));
    }
    // What the server reports about this message (a deadline answer, a rejection) reaches
    // the hub before its HTTP answer: collect it for the chat.
    let mut rx = shared.hub.subscribe();
    let mut result =
        sim::run(&shared.wechat, &shared.config.account.original_id, &body.user, &body.action).await;
    let sent = result.sent_xml.trim().to_owned();
    loop {
        match rx.try_recv() {
            Ok(e) if e.raw_xml.as_deref().map(str::trim) == Some(sent.as_str()) => {
                result.server.push((*e).clone());
            }
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    Json(result).into_response()
}

async fn upload(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ct.starts_with("image/") {
        return bad_request("only images can be uploaded (Content-Type image/…)");
    }
    if body.is_empty() {
        return bad_request("empty upload");
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
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such media id").into_response(),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    State(shared): S,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.after)
        .unwrap_or(0);
    let rx = shared.hub.subscribe();
    let backlog = shared.hub.recent(last);
    let seen = backlog.last().map_or(last, |e| e.id);
    let backlog = futures_util::stream::iter(backlog.into_iter().map(|e| Ok(to_event(&e))));
    let live = futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.id <= seen => {}
                Ok(e) => return Some((Ok(to_event(&e)), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(futures_util::StreamExt::chain(backlog, live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn to_event(e: &Exchange) -> Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Event::default().id(e.id.to_string()).event("exchange").data(data)
}

#[derive(Deserialize)]
struct HistoryQuery {
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
    let query = LogQuery {
        openid: q.user.filter(|u| !u.is_empty()),
        msg_type: q.msg_type.filter(|t| !t.is_empty()),
        limit: Some(q.limit.unwrap_or(200).min(1000)),
        ..LogQuery::default()
    };
    match log.query(&query).await {
        Ok(rows) => {
            let items: Vec<Exchange> = rows.iter().map(|(id, e)| Exchange::from_log(*id, e)).collect();
            Json(json!({ "items": items })).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

async fn setup(State(shared): S) -> Json<serde_json::Value> {
    let c = &shared.config;
    Json(json!({
        "url": c.public_url(),
        "token": c.account.token,
        "aes_key_masked": c.account.masked_aes_key(),
        "mode": c.account.mode,
        "appid": c.account.appid,
        "original_id": c.account.original_id,
    }))
}

async fn reveal(State(shared): S) -> Json<serde_json::Value> {
    Json(json!({ "aes_key": shared.config.account.aes_key }))
}

async fn doctor(State(shared): S) -> Response {
    match &shared.doctor {
        Some(d) => Json(json!({ "checks": d.checks().await })).into_response(),
        None => Json(json!({ "checks": [] })).into_response(),
    }
}

async fn rules(State(shared): S) -> Response {
    match &shared.rules {
        Some(r) => Json(json!({ "rules": r.current() })).into_response(),
        None => Json(json!({ "rules": [] })).into_response(),
    }
}

async fn reload(State(shared): S) -> Response {
    let Some(r) = &shared.rules else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "this server has no reloadable rules" })))
            .into_response();
    };
    match r.reload().await {
        Ok(report) => Json(json!({ "ok": true, "report": report, "rules": r.current() })).into_response(),
        Err(e) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "ok": false, "error": e, "rules": r.current() })))
                .into_response()
        }
    }
}
