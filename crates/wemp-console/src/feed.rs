//! The live feed: one [`Exchange`] per request to the callback endpoint, kept in a ring
//! for late-joining pages and broadcast to the open ones (Server-Sent Events).
//!
//! Records come from [`tap`] (a middleware around the callback router that watches the
//! HTTP exchange from outside, decrypting with the account's keys) or from anything that
//! calls [`Hub::publish`] — such as an observer inside the server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt as _;
use http_body_util_shim::collect;
use serde::Serialize;
use tokio::sync::broadcast;
use wemp_proto::{Document, EncryptedReply, Envelope, Mode, signature};
use wemp_store::LogEntry;

use crate::config::AccountInfo;

/// WeChat abandons a try after this many milliseconds.
pub const WECHAT_TIMEOUT_MS: u64 = 5_000;

/// How a delivery ended, as the log filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// A passive reply was sent in time.
    Reply,
    /// `success` or an empty body: the user sees nothing.
    NoReply,
    /// The server's budget ran out: it answered `success` and the handler's reply goes to
    /// the late sink (customer-service API).
    Deadline,
    /// The late sink's result for a reply that missed the deadline.
    FollowUp,
    /// The handler failed; the server answered per its error policy.
    HandlerError,
    /// The answer came after WeChat's 5 s: WeChat had given up on this try.
    TooSlow,
    /// The caller hung up before an answer (WeChat's timeout, or a closed connection).
    Abandoned,
    /// The request was refused (bad signature, stale timestamp, …).
    Rejected,
    /// The answer makes WeChat show its error banner (5xx, invalid reply XML).
    Error,
    /// URL verification (GET).
    Verify,
}

impl Outcome {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::NoReply => "no_reply",
            Self::Deadline => "deadline",
            Self::FollowUp => "follow_up",
            Self::HandlerError => "handler_error",
            Self::TooSlow => "too_slow",
            Self::Abandoned => "abandoned",
            Self::Rejected => "rejected",
            Self::Error => "error",
            Self::Verify => "verify",
        }
    }
}

/// One request to the callback endpoint and what came of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Exchange {
    /// Assigned by the [`Hub`], growing.
    pub id: u64,
    /// Where the record came from: `tap`, `observer` or `log`.
    pub source: &'static str,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// `GET` or `POST`.
    pub method: String,
    /// The user (`FromUserName`, or the `openid` query parameter).
    pub openid: Option<String>,
    /// `MsgType`.
    pub msg_type: Option<String>,
    /// `Event`, for events.
    pub event: Option<String>,
    /// `MsgId`, for messages.
    pub msg_id: Option<String>,
    /// A one-line summary (text, event key, …).
    pub summary: String,
    /// `plain`, `compatible` or `safe`.
    pub mode: Option<String>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// HTTP status answered (none when abandoned).
    pub status: Option<u16>,
    /// `new`, `joined` or `cached`, when the server reports it.
    pub dedup: Option<String>,
    /// Which rule or handler answered, when the server reports it.
    pub handler: Option<String>,
    /// The same message seen before (a WeChat retry): 1 for the first try.
    pub attempt: u32,
    /// Time to answer, milliseconds.
    pub latency_ms: u64,
    /// The inbound XML after decryption.
    pub raw_xml: Option<String>,
    /// The reply XML (decrypted), or the body as answered.
    pub reply_xml: Option<String>,
    /// The reply as WeChat reads it.
    pub reply: Option<wemp_proto::Reply>,
    /// What went wrong.
    pub error: Option<String>,
    /// Verification and decryption findings, one sentence each.
    pub diagnostics: Vec<String>,
    /// The server's number for the delivery (observer records only): a `follow_up`
    /// repeats the number of its `deadline` record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u64>,
    /// For a `follow_up`: what the late-reply sink did (`delivered`, `logged`,
    /// `window_expired`, `quota_exceeded`, `unsupported`, `failed`), or `none` when the
    /// handler ended without a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_sink: Option<String>,
}

impl Exchange {
    /// A record read back from the message log.
    pub fn from_log(row_id: i64, e: &LogEntry) -> Self {
        let outcome = match e.outcome.as_str() {
            "sent" if e.reply_xml.as_deref().is_some_and(|x| x != "success" && !x.is_empty()) => {
                Outcome::Reply
            }
            "sent" => Outcome::NoReply,
            "deadline_success" => Outcome::Deadline,
            o if o.starts_with("late_sink") => Outcome::FollowUp,
            _ => Outcome::Error,
        };
        Self {
            id: u64::try_from(row_id).unwrap_or_default(),
            source: "log",
            received_at_ms: e.received_at_ms,
            method: "POST".into(),
            openid: Some(e.openid.clone()),
            msg_type: Some(e.msg_type.clone()),
            event: e.event.clone(),
            msg_id: e.msg_id.map(|i| i.to_string()),
            summary: e.summary.clone(),
            mode: Some(e.mode.clone()),
            outcome: Some(outcome),
            status: Some(200),
            dedup: Some(e.dedup.clone()),
            handler: None,
            attempt: 1,
            latency_ms: e.latency_ms,
            raw_xml: Some(e.raw_xml.clone()),
            reply_xml: e.reply_xml.clone(),
            reply: None,
            error: e.error.clone(),
            diagnostics: Vec::new(),
            delivery: None,
            late_sink: None,
        }
    }
}

/// Keeps the latest exchanges and broadcasts new ones.
#[derive(Debug)]
pub struct Hub {
    next_id: AtomicU64,
    recent: Mutex<VecDeque<Arc<Exchange>>>,
    capacity: usize,
    tx: broadcast::Sender<Arc<Exchange>>,
    seen: Mutex<VecDeque<(String, u32)>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Hub {
    /// Exchanges kept for pages that open later.
    pub const DEFAULT_CAPACITY: usize = 500;

    /// A hub keeping the last `capacity` exchanges.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            next_id: AtomicU64::new(1),
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            tx,
            seen: Mutex::new(VecDeque::new()),
        }
    }

    /// Numbers `exchange`, keeps it and sends it to every open page; returns its id.
    pub fn publish(&self, mut exchange: Exchange) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        exchange.id = id;
        let exchange = Arc::new(exchange);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == self.capacity {
                recent.pop_front();
            }
            recent.push_back(exchange.clone());
        }
        // No open page is not an error.
        let _ = self.tx.send(exchange);
        id
    }

    /// The kept exchanges with an id above `after`, oldest first.
    pub fn recent(&self, after: u64) -> Vec<Arc<Exchange>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().filter(|e| e.id > after).cloned().collect()
    }

    /// A receiver of every exchange published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Exchange>> {
        self.tx.subscribe()
    }

    /// Counts tries of the same delivery (WeChat resends the identical request).
    fn attempt(&self, key: &str) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = seen.iter_mut().find(|(k, _)| k == key) {
            *n += 1;
            return *n;
        }
        if seen.len() == 256 {
            seen.pop_front();
        }
        seen.push_back((key.to_owned(), 1));
        1
    }
}

/// What [`tap`] needs: the hub to publish to and the account's keys to decrypt with.
#[derive(Clone, Debug)]
pub struct TapState {
    hub: Arc<Hub>,
    account: Arc<AccountInfo>,
    body_limit: usize,
    observed: Arc<std::sync::atomic::AtomicBool>,
}

impl TapState {
    /// Publishes to `hub`, decrypting with `account`'s keys.
    pub fn new(hub: Arc<Hub>, account: AccountInfo) -> Self {
        Self {
            hub,
            account: Arc::new(account),
            body_limit: 1024 * 1024,
            observed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Shares `flag`: while it is set, an observer inside the server reports what it
    /// handled, and the tap adds only what the server cannot see (callers that hung up).
    pub fn observed_by(mut self, flag: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.observed = flag;
        self
    }
}

/// Middleware for the callback router: records every request and answer in the hub.
///
/// ```ignore
/// let app = service.into_router().layer(axum::middleware::from_fn_with_state(tap_state, tap));
/// ```
pub async fn tap(State(state): State<TapState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let received_at_ms = now_ms();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = collect(body, state.body_limit).await else {
        return next.run(Request::from_parts(parts, Body::empty())).await;
    };
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let method = parts.method.to_string();
    let mut record = inspect_request(&state.account, &method, &query, &bytes);
    record.received_at_ms = received_at_ms;
    record.source = "tap";
    record.attempt = state.hub.attempt(&format!("{query}\n{}", bytes.len()));

    // Publish an "abandoned" record if the caller hangs up and the server drops us.
    let mut guard = Guard { hub: state.hub.clone(), record: Some(record), started };
    let observed = state.observed.load(Ordering::Relaxed);
    let res = std::panic::AssertUnwindSafe(next.run(Request::from_parts(parts, Body::from(bytes))))
        .catch_unwind()
        .await;
    let Ok(res) = res else {
        if let Some(r) = guard.record.as_mut() {
            r.error = Some("the callback handler panicked".into());
            r.outcome = Some(Outcome::Error);
        }
        return http::Response::builder().status(500).body(Body::empty()).unwrap_or_default();
    };
    let (rparts, rbody) = res.into_parts();
    let rbytes = collect(rbody, usize::MAX).await.unwrap_or_default();
    if let Some(mut record) = guard.record.take() {
        record.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        inspect_response(&state.account, &mut record, rparts.status.as_u16(), &rbytes);
        if !observed {
            state.hub.publish(record);
        }
    }
    Response::from_parts(rparts, Body::from(rbytes))
}

struct Guard {
    hub: Arc<Hub>,
    record: Option<Exchange>,
    started: Instant,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if r.outcome.is_none() {
                r.outcome = Some(Outcome::Abandoned);
                r.error = Some(format!(
                    "the caller hung up after {} ms, before the server answered (WeChat gives up after {} ms)",
                    r.latency_ms, WECHAT_TIMEOUT_MS
                ));
            }
            self.hub.publish(r);
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a request as the server would, explaining every check that fails.
pub(crate) fn inspect_request(account: &AccountInfo, method: &str, query: &str, body: &[u8]) -> Exchange {
    let mut x = Exchange { method: method.to_owned(), attempt: 1, ..Exchange::default() };
    x.openid = param(query, "openid");
    let timestamp = param(query, "timestamp").unwrap_or_default();
    let nonce = param(query, "nonce").unwrap_or_default();
    let token = account.token.as_str();
    if let Some(sig) = param(query, "signature") {
        if signature::verify(token, &timestamp, &nonce, &sig).is_err() {
            x.diagnostics.push(format!(
                "signature mismatch (-40001): sha1 of the sorted Token, timestamp {timestamp:?} and nonce \
                 {nonce:?} does not give {sig:?}. The Token in the WeChat console and in the server config \
                 must be the same."
            ));
        }
    } else if method == "POST" || method == "GET" {
        x.diagnostics.push("no signature in the query: not a request from WeChat".into());
    }
    if method == "GET" {
        x.summary = format!("URL verification, echostr {:?}", param(query, "echostr").unwrap_or_default());
        return x;
    }
    let body = String::from_utf8_lossy(body).into_owned();
    let encrypted = param(query, "encrypt_type").is_some_and(|t| t == "aes");
    let doc = match Document::parse(&body) {
        Ok(d) => d,
        Err(e) => {
            x.diagnostics.push(format!("the body is not acceptable XML (-40002): {e}"));
            x.raw_xml = Some(body);
            return x;
        }
    };
    let has_encrypt = doc.root.text_of("Encrypt").is_some();
    if !(encrypted || has_encrypt) {
        x.mode = Some(Mode::Plain.as_str().into());
        describe(&mut x, &doc);
        x.raw_xml = Some(body);
        return x;
    }
    let mode = if doc.root.child("MsgType").is_some() { Mode::Compatible } else { Mode::Safe };
    x.mode = Some(mode.as_str().into());
    let envelope = match Envelope::from_document(doc) {
        Ok(e) => e,
        Err(e) => {
            x.diagnostics.push(format!("encrypted request without a usable <Encrypt> (-40002): {e}"));
            x.raw_xml = Some(body);
            return x;
        }
    };
    let msg_sig = param(query, "msg_signature").unwrap_or_default();
    if signature::verify_msg(token, &timestamp, &nonce, &envelope.encrypt, &msg_sig).is_err() {
        x.diagnostics.push(format!(
            "msg_signature mismatch (-40001): sha1 of the sorted Token, timestamp, nonce and the <Encrypt> \
             text does not give {msg_sig:?}. Check the Token; the signature covers <Encrypt> exactly as sent."
        ));
    }
    let cipher = match account.cipher() {
        Ok(Some(c)) => c,
        Ok(None) => {
            x.diagnostics.push(
                "encrypted request but no EncodingAESKey is configured (-40004): cannot decrypt".into(),
            );
            x.raw_xml = Some(body);
            return x;
        }
        Err(e) => {
            x.diagnostics.push(format!("the configured EncodingAESKey is unusable (-40004): {e}"));
            x.raw_xml = Some(body);
            return x;
        }
    };
    match cipher.decrypt_any_appid(&envelope.encrypt) {
        Ok((xml, appid)) => {
            if appid != account.appid {
                x.diagnostics.push(format!(
                    "the payload is for appid {appid:?}, not {:?} (-40005): the EncodingAESKey belongs to \
                     another account, or the appid is wrong",
                    account.appid
                ));
            }
            if let Ok(inner) = Document::parse(&xml) {
                describe(&mut x, &inner);
            }
            x.raw_xml = Some(xml);
        }
        Err(e) => {
            x.diagnostics.push(format!(
                "cannot decrypt <Encrypt> ({}): {e}. The EncodingAESKey in the WeChat console and in the \
                 server config must be the same.",
                e.reference_code().code()
            ));
            x.raw_xml = Some(body);
        }
    }
    x
}

fn describe(x: &mut Exchange, doc: &Document) {
    let text = |t: &str| doc.root.text_of(t).map(|s| s.trim().to_owned());
    if let Some(from) = text("FromUserName") {
        x.openid = Some(from);
    }
    x.msg_type = text("MsgType");
    x.event = text("Event");
    x.msg_id = text("MsgId").or_else(|| text("MsgID"));
    x.summary = match x.msg_type.as_deref() {
        Some("text") => text("Content").unwrap_or_default(),
        Some("image") => format!("image {}", text("MediaId").unwrap_or_default()),
        Some("location") => format!(
            "location {}, {} {}",
            text("Location_X").unwrap_or_default(),
            text("Location_Y").unwrap_or_default(),
            text("Label").unwrap_or_default()
        ),
        Some("link") => {
            format!("link {} {}", text("Title").unwrap_or_default(), text("Url").unwrap_or_default())
        }
        Some("event") => {
            let key = text("EventKey").filter(|k| !k.is_empty());
            match key {
                Some(k) => format!("{} {k}", x.event.clone().unwrap_or_default()),
                None => x.event.clone().unwrap_or_default(),
            }
        }
        Some(other) => other.to_owned(),
        None => String::new(),
    }
    .trim()
    .to_owned();
}

/// Reads the answer as WeChat would.
pub(crate) fn inspect_response(account: &AccountInfo, x: &mut Exchange, status: u16, body: &[u8]) {
    x.status = Some(status);
    let body = String::from_utf8_lossy(body).into_owned();
    if x.method == "GET" {
        x.outcome = Some(if status == 200 { Outcome::Verify } else { Outcome::Rejected });
        x.reply_xml = Some(body);
        return;
    }
    if status != 200 {
        x.outcome = Some(if (400..500).contains(&status) { Outcome::Rejected } else { Outcome::Error });
        x.error = Some(format!("HTTP {status}: {}", body.trim()));
        x.reply_xml = Some(body);
        return;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        x.outcome = Some(Outcome::NoReply);
        x.reply_xml = Some(trimmed.to_owned());
    } else {
        let plain = match EncryptedReply::parse(trimmed) {
            Ok(env) => match account.cipher() {
                Ok(Some(c)) => match env.open(&c, &account.token) {
                    Ok(xml) => xml,
                    Err(e) => {
                        x.outcome = Some(Outcome::Error);
                        x.error = Some(format!("WeChat cannot open the encrypted reply: {e}"));
                        x.reply_xml = Some(body);
                        return;
                    }
                },
                _ => trimmed.to_owned(),
            },
            Err(_) => trimmed.to_owned(),
        };
        match wemp_proto::reply::ReplyMessage::parse(&plain) {
            Ok(m) => {
                x.outcome = Some(if m.reply.is_none() { Outcome::NoReply } else { Outcome::Reply });
                x.reply = Some(m.reply.clone());
            }
            Err(e) => {
                x.outcome = Some(Outcome::Error);
                x.error = Some(format!("not a valid reply, WeChat shows its error banner: {e}"));
            }
        }
        x.reply_xml = Some(plain);
    }
    if x.latency_ms > WECHAT_TIMEOUT_MS {
        x.outcome = Some(Outcome::TooSlow);
        x.error = Some(format!(
            "answered after {} ms; WeChat gives up on a try after {WECHAT_TIMEOUT_MS} ms, so the user never saw this answer",
            x.latency_ms
        ));
    }
}

mod http_body_util_shim {
    use axum::body::{Body, Bytes};
    use futures_util::StreamExt as _;

    /// Reads a body up to `limit` bytes.
    pub(super) async fn collect(body: Body, limit: usize) -> Result<Bytes, ()> {
        let mut stream = body.into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ())?;
            if out.len() + chunk.len() > limit {
                return Err(());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
}
