//! The live feed: one [`Exchange`] per request to the callback endpoint, kept in a ring
//! for late-joining pages and broadcast to the open ones (Server-Sent Events).
//!
//! Records come from [`tap`] (a middleware around the callback router that watches the
//! HTTP exchange from outside, decrypting with the keys of the account the request is for)
//! or from anything that calls [`Hub::publish`] — such as an observer inside the server.
//!
//! Every record names its account ([`Exchange::account`]). With several accounts the tap
//! tells them apart as the server does: by the request's path (the path of an account's
//! [`ConsoleAccount::endpoint`], else its last segment), else by `ToUserName` (the
//! account's original id), else by the appid inside an encrypted payload that one of the
//! accounts' keys opens.

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
use wemp_proto::admission::Query;
use wemp_proto::{Document, EncryptedReply, Envelope, Mode, signature};
use wemp_store::DeliveryRecord;

use crate::config::{AccountInfo, ConsoleAccount, by_request};

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
    /// Where the record came from: `tap`, `observer` or `log` (`hub` for a record whose
    /// making panicked: [`Exchange::error`] says so).
    pub source: &'static str,
    /// The account it was for: a [`ConsoleAccount::id`], or — for a server or message-log
    /// record naming an account the console does not know — the server's name for it;
    /// `None` when nothing tells (a request to a path and `ToUserName` of no account).
    pub account: Option<String>,
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
    /// The checks the server's admission made, in order, each passed or failed with one
    /// sentence (records from the server's observer; see `wemp_proto::admission`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<wemp_proto::admission::Check>,
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
    /// An entry read back from the message log (row id `row_id`): the same view as the
    /// server's live record ([`Exchange::from`]), its retries counted in
    /// [`attempt`](Exchange::attempt).
    pub fn from_log(row_id: i64, e: &DeliveryRecord) -> Self {
        let mut x = Self::from(e);
        x.id = u64::try_from(row_id).unwrap_or_default();
        x.source = "log";
        x.delivery = None;
        x.attempt = e.attempts;
        x
    }
}

/// Keeps the latest exchanges and broadcasts new ones.
///
/// Nobody may be watching: an exchange published with [`Hub::publish_with`] while no page
/// listens is kept as the closure that makes it, and made only when a page asks for it
/// ([`Hub::recent`]), so an idle console costs the server almost nothing per request.
pub struct Hub {
    next_id: AtomicU64,
    /// The kept exchanges, oldest first. Its lock also orders publishing against
    /// [`Hub::subscribe`]: an exchange kept unmade is never one a new page misses.
    recent: Mutex<VecDeque<Kept>>,
    capacity: usize,
    tx: broadcast::Sender<Arc<Exchange>>,
    seen: Mutex<VecDeque<(u64, u32)>>,
}

/// A kept exchange, made or still to be made.
enum Kept {
    Made(Arc<Exchange>),
    Later(u64, Box<dyn FnOnce() -> Exchange + Send>),
}

impl Kept {
    fn id(&self) -> u64 {
        match self {
            Self::Made(x) => x.id,
            Self::Later(id, _) => *id,
        }
    }

    /// The exchange, made now if it was not yet.
    fn made(&mut self) -> Arc<Exchange> {
        let made = match std::mem::replace(self, Self::Made(Arc::default())) {
            Self::Made(x) => x,
            Self::Later(id, make) => make_numbered(id, make),
        };
        *self = Self::Made(made.clone());
        made
    }
}

/// Runs `make` and numbers what it made. It runs under the ring lock, for a page or inside
/// a publisher (the server's request path): a panic becomes a record that says so rather
/// than unwinding into either.
fn make_numbered(id: u64, make: impl FnOnce() -> Exchange) -> Arc<Exchange> {
    let mut x = std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Exchange {
            source: "hub",
            outcome: Some(Outcome::Error),
            error: Some(format!("the console could not make this record: {why}")),
            ..Exchange::default()
        }
    });
    x.id = id;
    Arc::new(x)
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.capacity)
            .field("next_id", &self.next_id.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
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
    ///
    /// Its ids start at the time it is made, in milliseconds since the epoch × 1000, so
    /// they keep growing across restarts of the server: a page that reconnects with the
    /// `Last-Event-ID` of the previous run gets the new run's exchanges, not nothing until
    /// the count passes the old one. (Such ids stay below 2^53, exact in JavaScript, until
    /// the year 2255.)
    pub fn new(capacity: usize) -> Self {
        let first = u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1000).max(1);
        Self::with_first_id(capacity, first)
    }

    /// A hub keeping the last `capacity` exchanges whose ids start at `first`.
    pub fn with_first_id(capacity: usize, first: u64) -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            next_id: AtomicU64::new(first),
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            tx,
            seen: Mutex::new(VecDeque::new()),
        }
    }

    /// Numbers `exchange`, keeps it and sends it to every open page; returns its id.
    pub fn publish(&self, exchange: Exchange) -> u64 {
        self.publish_with(move || exchange)
    }

    /// Numbers the exchange `make` makes and keeps it; returns its id. `make` runs now if a
    /// page listens (the exchange is sent to every open one), otherwise when a page first
    /// asks for it — or never, if it leaves the ring first. A `make` that panics is kept as
    /// a record that says so; the panic reaches neither the publisher nor the page.
    pub fn publish_with(&self, make: impl FnOnce() -> Exchange + Send + 'static) -> u64 {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if recent.len() == self.capacity {
            recent.pop_front();
        }
        if self.tx.receiver_count() == 0 {
            recent.push_back(Kept::Later(id, Box::new(make)));
        } else {
            let x = make_numbered(id, make);
            recent.push_back(Kept::Made(x.clone()));
            // A page that closed since the count is not an error.
            let _ = self.tx.send(x);
        }
        id
    }

    /// The kept exchanges with an id above `after`, oldest first.
    pub fn recent(&self, after: u64) -> Vec<Arc<Exchange>> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter_mut().filter(|k| k.id() > after).map(Kept::made).collect()
    }

    /// A receiver of every exchange published from now on (call [`Hub::recent`] after it
    /// for what came before: nothing falls between the two).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Exchange>> {
        let _order = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        self.tx.subscribe()
    }

    /// Counts tries of the same delivery (WeChat resends the identical request), by a
    /// hash of what identifies it.
    fn attempt(&self, key: u64) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = seen.iter_mut().find(|(k, _)| *k == key) {
            *n += 1;
            return *n;
        }
        if seen.len() == 256 {
            seen.pop_front();
        }
        seen.push_back((key, 1));
        1
    }
}

/// What [`tap`] needs: the hub to publish to and the accounts' keys to decrypt with.
#[derive(Clone, Debug)]
pub struct TapState {
    hub: Arc<Hub>,
    accounts: Arc<[ConsoleAccount]>,
    body_limit: usize,
    observed: Arc<std::sync::atomic::AtomicBool>,
}

impl TapState {
    /// Publishes to `hub`, decrypting every request with `account`'s keys.
    pub fn new(hub: Arc<Hub>, account: AccountInfo) -> Self {
        Self::with_accounts(hub, vec![ConsoleAccount::new("", account)])
    }

    /// Publishes to `hub`, decrypting each request with the keys of the account it is for
    /// (see the [module](self) for how it is chosen).
    pub fn with_accounts(hub: Arc<Hub>, accounts: impl Into<Arc<[ConsoleAccount]>>) -> Self {
        Self {
            hub,
            accounts: accounts.into(),
            body_limit: 64 * 1024,
            observed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Reads at most `bytes` of a callback body (default 64 KiB; use the server's limit),
    /// and nothing of a body whose declared length is more: the server refuses it unread.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
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
/// While an observer inside the server reports what it handled ([`TapState::observed_by`]),
/// the tap only reports what the server cannot see — callers that hung up, panics — and
/// reads the request only then.
///
/// ```ignore
/// let app = service.into_router().layer(axum::middleware::from_fn_with_state(tap_state, tap));
/// ```
pub async fn tap(State(state): State<TapState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let received_at_ms = now_ms();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.body_limit as u64) {
        // Not a byte is read here (reading would send `100 Continue`): the server answers
        // `413` from the header alone.
        return next.run(Request::from_parts(parts, body)).await;
    }
    let bytes = match collect(body, state.body_limit).await {
        Ok(bytes) => bytes,
        // Over the tap's limit, or the body failed: the server gets it as it came and
        // answers it as it would without the tap (413 for a body over its limit).
        Err(body) => return next.run(Request::from_parts(parts, body)).await,
    };
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let attempt = state.hub.attempt({
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&query, &mut h);
        std::hash::Hash::hash(&bytes[..], &mut h);
        std::hash::Hasher::finish(&h)
    });
    let request = Seen {
        accounts: state.accounts.clone(),
        path: parts.uri.path().to_owned(),
        method: parts.method.to_string(),
        query,
        body: bytes.clone(),
        received_at_ms,
        attempt,
    };
    // Publishes an "abandoned" record if the caller hangs up and the server drops us.
    let mut guard = Guard { hub: state.hub.clone(), request: Some(request), started };
    let observed = state.observed.load(Ordering::Relaxed);
    let res = std::panic::AssertUnwindSafe(next.run(Request::from_parts(parts, Body::from(bytes))))
        .catch_unwind()
        .await;
    let Ok(res) = res else {
        if let Some(request) = guard.request.take() {
            let (mut record, _) = request.inspect();
            record.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            record.error = Some("the callback handler panicked".into());
            record.outcome = Some(Outcome::Error);
            state.hub.publish(record);
        }
        return http::Response::builder().status(500).body(Body::empty()).unwrap_or_default();
    };
    if observed {
        // The server's observer has reported this exchange.
        guard.request = None;
        return res;
    }
    let (rparts, rbody) = res.into_parts();
    let rbytes = match collect(rbody, usize::MAX).await {
        Ok(rbytes) => rbytes,
        Err(rbody) => {
            // The answer's body failed while read: it goes to the caller as it is.
            guard.request = None;
            return Response::from_parts(rparts, rbody);
        }
    };
    if let Some(request) = guard.request.take() {
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status = rparts.status.as_u16();
        let response = rbytes.clone();
        state.hub.publish_with(move || {
            let (mut record, account) = request.inspect();
            record.latency_ms = latency_ms;
            inspect_response(account.map(|a| &a.info), &mut record, status, &response);
            record
        });
    }
    Response::from_parts(rparts, Body::from(rbytes))
}

/// A request as the tap saw it, read ([`Seen::inspect`]) only when it is shown.
struct Seen {
    accounts: Arc<[ConsoleAccount]>,
    path: String,
    method: String,
    query: String,
    body: bytes::Bytes,
    received_at_ms: i64,
    attempt: u32,
}

impl Seen {
    fn inspect(&self) -> (Exchange, Option<&ConsoleAccount>) {
        let (mut record, account) =
            inspect_request(&self.accounts, &self.path, &self.method, &self.query, &self.body);
        record.received_at_ms = self.received_at_ms;
        record.source = "tap";
        record.attempt = self.attempt;
        (record, account)
    }
}

struct Guard {
    hub: Arc<Hub>,
    request: Option<Seen>,
    started: Instant,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(request) = self.request.take() {
            let latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.hub.publish_with(move || {
                let (mut r, _) = request.inspect();
                r.latency_ms = latency_ms;
                if r.outcome.is_none() {
                    r.outcome = Some(Outcome::Abandoned);
                    r.error = Some(format!(
                        "the caller hung up after {latency_ms} ms, before the server answered (WeChat gives up after {WECHAT_TIMEOUT_MS} ms)"
                    ));
                }
                r
            });
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// Reads a request as the server would, explaining every check that fails; returns the
/// record and the account it is for (whose keys it was checked with).
pub(crate) fn inspect_request<'a>(
    accounts: &'a [ConsoleAccount],
    path: &str,
    method: &str,
    query: &str,
    body: &[u8],
) -> (Exchange, Option<&'a ConsoleAccount>) {
    let mut x = Exchange { method: method.to_owned(), attempt: 1, ..Exchange::default() };
    // The server's own query parser (percent-decoding, first occurrence, `encrypt_type` in
    // any case).
    let query = Query::parse(query);
    let param = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_owned);
    x.openid = param(&query.openid);
    let body = String::from_utf8_lossy(body).into_owned();
    let doc = (method != "GET").then(|| Document::parse(&body));
    let root = doc.as_ref().and_then(|d| d.as_ref().ok()).map(|d| &d.root);
    let to = root.and_then(|r| r.text_of("ToUserName")).map(str::trim);
    let account = by_request(accounts, path, to).or_else(|| {
        // Several accounts and neither the path nor ToUserName tells: the one whose key
        // opens the payload for its own appid.
        let encrypt = root.and_then(|r| r.text_of("Encrypt")).map(str::trim)?;
        accounts.iter().find(|a| {
            matches!(a.info.cipher(), Ok(Some(c))
                if c.decrypt_any_appid(encrypt).is_ok_and(|(_, appid)| appid == a.info.appid))
        })
    });
    x.account = account.map(|a| a.id.clone());
    if account.is_none() {
        let to = to.map(|t| format!(" or ToUserName {t:?}")).unwrap_or_default();
        let known: Vec<&str> = accounts.iter().map(ConsoleAccount::path).collect();
        x.diagnostics.push(format!(
            "no account for path {path:?}{to} (the console knows {}): signature and payload not checked",
            known.join(", ")
        ));
    }
    let token = account.map_or("", |a| a.info.token.as_str());
    let timestamp = param(&query.timestamp).unwrap_or_default();
    let nonce = param(&query.nonce).unwrap_or_default();
    if let Some(sig) = param(&query.signature) {
        if account.is_some() && signature::verify(token, &timestamp, &nonce, &sig).is_err() {
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
        x.summary = format!("URL verification, echostr {:?}", param(&query.echostr).unwrap_or_default());
        return (x, account);
    }
    let encrypted = query.is_encrypted();
    let doc = match doc {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            x.diagnostics.push(format!("the body is not acceptable XML (-40002): {e}"));
            x.raw_xml = Some(body);
            return (x, account);
        }
        None => return (x, account),
    };
    let has_encrypt = doc.root.text_of("Encrypt").is_some();
    if !(encrypted || has_encrypt) {
        x.mode = Some(Mode::Plain.as_str().into());
        describe(&mut x, &doc);
        x.raw_xml = Some(body);
        return (x, account);
    }
    let mode = if doc.root.child("MsgType").is_some() { Mode::Compatible } else { Mode::Safe };
    x.mode = Some(mode.as_str().into());
    let Some(account) = account else {
        x.raw_xml = Some(body);
        return (x, None);
    };
    let info = &account.info;
    let envelope = match Envelope::from_document(doc) {
        Ok(e) => e,
        Err(e) => {
            x.diagnostics.push(format!("encrypted request without a usable <Encrypt> (-40002): {e}"));
            x.raw_xml = Some(body);
            return (x, Some(account));
        }
    };
    let msg_sig = param(&query.msg_signature).unwrap_or_default();
    if signature::verify_msg(token, &timestamp, &nonce, &envelope.encrypt, &msg_sig).is_err() {
        x.diagnostics.push(format!(
            "msg_signature mismatch (-40001): sha1 of the sorted Token, timestamp, nonce and the <Encrypt> \
             text does not give {msg_sig:?}. Check the Token; the signature covers <Encrypt> exactly as sent."
        ));
    }
    let cipher = match info.cipher() {
        Ok(Some(c)) => c,
        Ok(None) => {
            x.diagnostics.push(
                "encrypted request but no EncodingAESKey is configured (-40004): cannot decrypt".into(),
            );
            x.raw_xml = Some(body);
            return (x, Some(account));
        }
        Err(e) => {
            x.diagnostics.push(format!("the configured EncodingAESKey is unusable (-40004): {e}"));
            x.raw_xml = Some(body);
            return (x, Some(account));
        }
    };
    match cipher.decrypt_any_appid(&envelope.encrypt) {
        Ok((xml, appid)) => {
            if appid != info.appid {
                x.diagnostics.push(format!(
                    "the payload is for appid {appid:?}, not {:?} (-40005): the EncodingAESKey belongs to \
                     another account, or the appid is wrong",
                    info.appid
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
    (x, Some(account))
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

/// Reads the answer as WeChat would, opening an encrypted reply with `account`'s keys.
pub(crate) fn inspect_response(account: Option<&AccountInfo>, x: &mut Exchange, status: u16, body: &[u8]) {
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
            Ok(env) => match account.map(AccountInfo::cipher) {
                Some(Ok(Some(c))) => match env.open(&c, account.map_or("", |a| a.token.as_str())) {
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

    /// The body, if it ends within `limit` bytes; otherwise (or if it fails) a body that
    /// yields what was read and then the rest, exactly as it came.
    pub(super) async fn collect(body: Body, limit: usize) -> Result<Bytes, Body> {
        let mut stream = body.into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) if out.len() + chunk.len() <= limit => out.extend_from_slice(&chunk),
                next => {
                    let head = futures_util::stream::iter([Ok(Bytes::from(out)), next]);
                    return Err(Body::from_stream(head.chain(stream)));
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use tower::ServiceExt as _;
    use wemp_proto::wechat::Platform;
    use wemp_proto::{Cipher, Incoming, Reply};
    use wemp_server::{Account, WechatService};

    use super::*;

    #[test]
    fn an_unwatched_hub_makes_exchanges_only_when_a_page_asks() {
        use std::sync::atomic::AtomicUsize;
        let hub = Hub::with_first_id(3, 1);
        let made = Arc::new(AtomicUsize::new(0));
        let publish = |n: &str| {
            let (made, n) = (made.clone(), n.to_owned());
            hub.publish_with(move || {
                made.fetch_add(1, Ordering::SeqCst);
                Exchange { openid: Some(n), ..Exchange::default() }
            })
        };
        let ids: Vec<u64> = ["a", "b", "c", "d"].into_iter().map(publish).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(made.load(Ordering::SeqCst), 0, "nobody watched: nothing made yet");
        // "a" left the ring unmade; a page opening now gets the others, made once.
        let users = |xs: Vec<Arc<Exchange>>| -> Vec<(u64, String)> {
            xs.iter().map(|x| (x.id, x.openid.clone().unwrap_or_default())).collect()
        };
        let rx = hub.subscribe();
        assert_eq!(users(hub.recent(0)), [(2, "b".into()), (3, "c".into()), (4, "d".into())]);
        assert_eq!(users(hub.recent(2)), [(3, "c".into()), (4, "d".into())]);
        assert_eq!(made.load(Ordering::SeqCst), 3, "each made once, the evicted one never");
        // While a page listens, an exchange is made at once and sent to it.
        let mut rx = rx;
        publish("e");
        assert_eq!(made.load(Ordering::SeqCst), 4);
        let live = rx.try_recv().unwrap();
        assert_eq!((live.id, live.openid.as_deref()), (5, Some("e")));
        drop(rx);
        publish("f");
        assert_eq!(made.load(Ordering::SeqCst), 4, "the page left: kept unmade again");
        assert_eq!(users(hub.recent(4)), [(5, "e".into()), (6, "f".into())]);
    }

    /// Read back from the log, a rejected request and a failed handler were both shown as
    /// "error": the outcome was a string the console guessed from.
    #[tokio::test]
    async fn log_entries_keep_rejections_and_handler_errors_apart() {
        use wemp_store::{MessageLog, RecordOutcome, RejectionRecord};
        let mut rejected = DeliveryRecord::new(0, 1);
        rejected.outcome = RecordOutcome::Rejected;
        rejected.status = 403;
        rejected.rejection = Some(RejectionRecord {
            reason: wemp_proto::RejectReason::SignatureMismatch,
            code: Some(-40001),
            param: "signature".into(),
            message: "signature does not match".into(),
        });
        rejected.query = [("signature".to_owned(), "forged".to_owned())].into();
        let mut failed = DeliveryRecord::new(0, 2);
        failed.outcome = RecordOutcome::HandlerError;
        failed.status = 200;
        failed.reply_xml = Some("success".into());
        failed.error = Some("handler failed: boom".into());
        failed.dedup_key = Some("wx1:msg:o1:1".into());
        let mut retried = failed.clone();
        retried.received_at_ms = 3;
        let log = wemp_store::memory::MemoryMessageLog::default();
        log.append(&[rejected, failed, retried]).await.unwrap();
        let shown: Vec<Exchange> = log
            .entries(&wemp_store::LogQuery::default())
            .await
            .unwrap()
            .iter()
            .map(|(id, e)| Exchange::from_log(*id, e))
            .collect();
        let got: Vec<_> = shown.iter().map(|x| (x.id, x.outcome, x.status, x.attempt)).collect();
        assert_eq!(
            got,
            [(1, Some(Outcome::Rejected), Some(403), 1), (2, Some(Outcome::HandlerError), Some(200), 2)]
        );
        assert_eq!(
            shown[0].diagnostics,
            ["-40001 bad signature: signature does not match (at signature, reason signature_mismatch)"]
        );
        assert_eq!(shown[1].error.as_deref(), Some("handler failed: boom"));
    }

    #[test]
    fn ids_keep_growing_across_a_restart() {
        // A page that reconnects after a restart sends the old run's last id.
        let old = Hub::new(8);
        let last_seen = (0..3).map(|_| old.publish(Exchange::default())).max().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let restarted = Hub::new(8);
        let next = restarted.publish(Exchange::default());
        assert!(next > last_seen, "{next} after {last_seen}");
        assert_eq!(restarted.recent(last_seen).len(), 1);
        assert!(next < 1 << 53, "exact as a JavaScript number");
    }

    #[test]
    fn a_record_that_panics_while_made_costs_neither_the_page_nor_the_publisher() {
        let hub = Hub::with_first_id(4, 1);
        let summary = |s: &str| Exchange { summary: s.into(), ..Exchange::default() };
        hub.publish(summary("a"));
        hub.publish_with(|| panic!("boom"));
        hub.publish(summary("c"));
        // Made when the page asks: it gets every record, the failed one saying why.
        let xs = hub.recent(0);
        let ids: Vec<u64> = xs.iter().map(|x| x.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!((xs[0].summary.as_str(), xs[2].summary.as_str()), ("a", "c"));
        assert!(xs[1].error.as_deref().is_some_and(|e| e.contains("boom")), "{:?}", xs[1]);
        assert_eq!(hub.recent(1).len(), 2, "the ring is intact");
        // Made at once for a listening page: the publisher carries on, the page is told.
        let mut rx = hub.subscribe();
        assert_eq!(hub.publish_with(|| panic!("bang")), 4);
        let live = rx.try_recv().unwrap();
        assert_eq!(live.id, 4);
        assert!(live.error.as_deref().is_some_and(|e| e.contains("bang")), "{live:?}");
        hub.publish(summary("e"));
        assert_eq!(rx.try_recv().unwrap().summary, "e");
        let ids: Vec<u64> = hub.recent(0).iter().map(|x| x.id).collect();
        assert_eq!(ids, [2, 3, 4, 5]);
    }

    const KEY_A: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const KEY_B: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg";

    fn info(token: &str, appid: &str, key: &str, gh: &str) -> AccountInfo {
        let mut a = AccountInfo::new(token);
        a.appid = appid.into();
        a.aes_key = Some(key.into());
        a.mode = Mode::Safe;
        a.original_id = gh.into();
        a
    }

    /// Two safe-mode accounts with their own Token, appid and key: `demo` at `/wechat`,
    /// `shop` at `/wechat/shop`; the server (no observer, so the tap records everything)
    /// also answers at `/hook`, where it picks the account by `ToUserName`.
    fn two_accounts() -> (Vec<ConsoleAccount>, axum::Router) {
        let demo = info("DemoTok1", "wx00000000000000a1", KEY_A, "gh_demo0000001");
        let shop = info("ShopTok2", "wx00000000000000b2", KEY_B, "gh_shop0000002");
        let accounts = vec![
            ConsoleAccount::new("http://127.0.0.1:8080/wechat", demo).with_id("demo"),
            ConsoleAccount::new("http://127.0.0.1:8080/wechat/shop", shop).with_id("shop"),
        ];
        let mut b = WechatService::builder().router(
            wemp_server::Router::new()
                .fallback(|m: Incoming| async move { Reply::text(format!("to {}", m.header().to)) }),
        );
        for (a, segment) in accounts.iter().zip(["wechat", "shop"]) {
            let account = Account::new(a.info.appid.clone(), a.info.token.clone())
                .with_path(segment)
                .with_aes_key(a.info.aes_key.as_deref().unwrap())
                .unwrap()
                .with_original_id(a.info.original_id.clone());
            b = b.account(account);
        }
        let service = b.build().unwrap();
        let mut router = axum::Router::new();
        for p in ["/wechat", "/wechat/shop", "/hook"] {
            router = router.route_service(p, service.clone());
        }
        (accounts, router)
    }

    /// A text from `o1` to `gh`, signed and encrypted by `platform` as WeChat does,
    /// posted through the tap at `path`; returns the record the tap published.
    async fn post(
        app: &axum::Router,
        hub: &Hub,
        platform: &Platform,
        path: &str,
        gh: &str,
        text: &str,
    ) -> Exchange {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{gh}]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{text}]]></Content><MsgId>{}</MsgId></xml>",
            rand::random::<u32>()
        );
        let req = platform.post(Mode::Safe, &xml, "o1", gh, &now, "nonce1", [7; 16]).unwrap();
        let http =
            http::Request::post(format!("{path}?{}", req.query_string())).body(Body::from(req.body)).unwrap();
        let res = app.clone().oneshot(http).await.unwrap();
        let _ = collect(res.into_body(), usize::MAX).await.unwrap();
        let last = hub.recent(0).pop().expect("the tap published nothing");
        (*last).clone()
    }

    #[tokio::test]
    async fn the_tap_decrypts_with_the_keys_of_the_account_the_request_is_for() {
        let (accounts, router) = two_accounts();
        let hub = Arc::new(Hub::default());
        let app = router.layer(axum::middleware::from_fn_with_state(
            TapState::with_accounts(hub.clone(), accounts.clone()),
            tap,
        ));
        let platform = |a: &ConsoleAccount| {
            let cipher = Cipher::new(a.info.aes_key.as_deref().unwrap(), &a.info.appid).unwrap();
            Platform::new(a.info.token.clone()).with_cipher(cipher)
        };
        let (demo, shop) = (platform(&accounts[0]), platform(&accounts[1]));

        // Each account's path: its own keys open the request and the encrypted reply.
        let x = post(&app, &hub, &demo, "/wechat", "gh_demo0000001", "hello demo").await;
        assert_eq!(x.account.as_deref(), Some("demo"));
        assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
        assert_eq!((x.summary.as_str(), x.outcome), ("hello demo", Some(Outcome::Reply)));
        assert!(x.reply_xml.as_deref().unwrap().contains("to gh_demo0000001"), "{x:?}");
        let x = post(&app, &hub, &shop, "/wechat/shop", "gh_shop0000002", "hello shop").await;
        assert_eq!(x.account.as_deref(), Some("shop"));
        assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
        assert_eq!((x.summary.as_str(), x.mode.as_deref()), ("hello shop", Some("safe")));
        assert!(x.reply_xml.as_deref().unwrap().contains("to gh_shop0000002"), "{x:?}");

        // The shop's message at the demo's path: checked with the demo's keys, as the
        // server does, and refused by both.
        let x = post(&app, &hub, &shop, "/wechat", "gh_shop0000002", "lost").await;
        assert_eq!(x.account.as_deref(), Some("demo"));
        assert!(x.diagnostics.iter().any(|d| d.contains("msg_signature mismatch")), "{:?}", x.diagnostics);
        assert_eq!(x.outcome, Some(Outcome::Rejected));

        // A path naming no account: ToUserName tells, else the appid inside the payload.
        let x = post(&app, &hub, &shop, "/hook", "gh_shop0000002", "by original id").await;
        assert_eq!((x.account.as_deref(), x.summary.as_str()), (Some("shop"), "by original id"));
        assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
        let x = post(&app, &hub, &shop, "/hook", "", "by appid").await;
        assert_eq!((x.account.as_deref(), x.summary.as_str()), (Some("shop"), "by appid"));
        assert!(x.raw_xml.as_deref().unwrap().contains("by appid"));

        // Nothing tells: said so, nothing checked against the wrong keys.
        let stranger =
            Platform::new("Other123").with_cipher(Cipher::new(KEY_A, "wx00000000000000c3").unwrap());
        let x = post(&app, &hub, &stranger, "/hook", "gh_nobody", "who?").await;
        assert_eq!(x.account, None);
        assert_eq!(x.diagnostics.len(), 1, "{:?}", x.diagnostics);
        assert!(x.diagnostics[0].starts_with("no account for path \"/hook\" or ToUserName \"gh_nobody\""));
        assert_eq!(x.outcome, Some(Outcome::Rejected));
    }

    #[tokio::test]
    async fn a_body_over_the_taps_limit_reaches_the_server_whole() {
        // The server echoes how many bytes it got; the tap reads at most 16.
        let hub = Arc::new(Hub::default());
        let mut state = TapState::new(hub.clone(), AccountInfo::new("DemoTok1"));
        state.body_limit = 16;
        let app = axum::Router::new()
            .route("/wechat", axum::routing::post(|body: Bytes| async move { body.len().to_string() }))
            .layer(axum::middleware::from_fn_with_state(state, tap));
        for size in [10, 16, 17, 100_000] {
            let http = http::Request::post("/wechat").body(Body::from(vec![b'x'; size])).unwrap();
            let res = app.clone().oneshot(http).await.unwrap();
            let body = collect(res.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body, size.to_string(), "{size} bytes sent");
        }
        // What the tap read in full, it recorded.
        assert_eq!(hub.recent(0).len(), 2);
    }

    #[tokio::test]
    async fn one_account_takes_every_path() {
        let hub = Arc::new(Hub::default());
        let mut demo = AccountInfo::new("DemoTok1");
        demo.original_id = "gh_demo0000001".into();
        let app = axum::Router::new()
            .route("/anything", axum::routing::post(|| async { "success" }))
            .layer(axum::middleware::from_fn_with_state(TapState::new(hub.clone(), demo), tap));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        let req = Platform::new("DemoTok1")
            .post(
                Mode::Plain,
                "<xml><MsgType>text</MsgType><Content>hi</Content></xml>",
                "o1",
                "",
                &now,
                "n",
                [0; 16],
            )
            .unwrap();
        let http = http::Request::post(format!("/anything?{}", req.query_string()))
            .body(Body::from(req.body))
            .unwrap();
        let _ = app.oneshot(http).await.unwrap();
        let x = hub.recent(0).pop().unwrap();
        assert_eq!(x.account.as_deref(), Some("default"));
        assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
        assert_eq!(x.outcome, Some(Outcome::NoReply));
    }
}
