//! [`Forward`]: a handler that posts each message to an app as signed JSON and answers with
//! the app's reply (gateway mode, docs/gateway.md).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit as _, Mac as _};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use wemp_proto::{Incoming, Reply, Secret};
use wemp_store::{ForwardRecord, ForwardResult, ForwardTarget};

// The account's key (its appid, or a WeCom app's `corpid/agentid`): the header the API
// proxy reads back.
use crate::api_proxy::ACCOUNT_HEADER;

use crate::relay::{Relay, RelayError};
use crate::{BoxError, Inbound};

/// The version of the JSON contract (`"version"` in every body).
pub const CONTRACT_VERSION: u32 = 1;
/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-wemp-signature";
/// The header carrying the key WeChat's retries of one delivery share.
pub const DEDUP_KEY_HEADER: &str = "x-wemp-dedup-key";
/// The largest answer read from the app.
pub const ANSWER_LIMIT: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Stats {
    calls: [AtomicU64; ForwardResult::ALL.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

/// How an account is named in the JSON: `account` (its name) and `appid`.
#[derive(Clone, Debug)]
struct Names {
    account: String,
    appid: Option<String>,
}

/// The JSON body of contract version [`CONTRACT_VERSION`] (docs/gateway.md), borrowed from
/// the message: serialised straight into the bytes sent.
#[derive(serde::Serialize)]
struct Contract<'a> {
    version: u32,
    account: &'a str,
    appid: Option<&'a str>,
    kind: &'a str,
    corpid: Option<&'a str>,
    agentid: Option<&'a str>,
    openid: &'a str,
    to: &'a str,
    create_time: i64,
    msg_type: String,
    event: Option<String>,
    msg_id: Option<MsgId>,
    content: Option<&'a str>,
    message: &'a Incoming,
    raw_xml: String,
    mode: &'a str,
    dedup_key: &'a str,
    received_at: u64,
    remaining_ms: u64,
}

/// `MsgId` as a JSON string: it exceeds JavaScript's safe integers.
struct MsgId(u64);

impl serde::Serialize for MsgId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Why a call to the app gave no reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The app could not be reached or did not answer in time.
    #[error("app at {url} unreachable: {source}")]
    Unreachable {
        /// The app's URL.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The app answered with a status other than 200 or 204.
    #[error("app at {url} answered HTTP {status}")]
    Status {
        /// The app's URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The message could not go through the relay (none connected, it went away, timed out,
    /// or could not reach the app).
    #[error("forwarding through the relay: {0}")]
    Relay(#[from] RelayError),
    /// The app's answer is not `{"reply": <reply>}` / `{"reply": null}`.
    #[error(
        "app at {url} answered malformed JSON ({reason}); expected {{\"reply\": {{\"type\": \"text\", \"content\": \"…\"}}}} or {{\"reply\": null}}: {body}"
    )]
    BadAnswer {
        /// The app's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
        /// The start of the body as received.
        body: String,
    },
}

impl ForwardError {
    /// How the call ended, as the record and the metrics count it.
    pub fn result(&self) -> ForwardResult {
        match self {
            Self::Unreachable { .. } | Self::Relay(_) => ForwardResult::Unreachable,
            Self::Status { .. } => ForwardResult::AppError,
            Self::BadAnswer { .. } => ForwardResult::BadAnswer,
        }
    }
}

/// Posts each message it handles to an app's URL as JSON (contract version
/// [`CONTRACT_VERSION`], docs/gateway.md) and answers with the app's reply: `200` with
/// `{"reply": <Reply JSON>}`, or `{"reply": null}` / `204` for none.
///
/// Use it as a [`crate::Router`]'s fallback: the server's dedup, deadline and late-reply
/// machinery then give the app's calls their rules — one call per message however often
/// WeChat retries, an answer after the deadline sent through the late-reply sink, never a
/// 5xx to WeChat. With a secret, each body is signed: `X-Wemp-Signature: sha256=<hex
/// HMAC-SHA256 of the body>`; the dedup key is in `X-Wemp-Dedup-Key`. When the app fails
/// (unreachable, timeout, non-2xx, malformed answer) the failure is logged and counted
/// (`wemp_forward_calls_total{result}`), and the [`Forward::fallback_text`] is answered if
/// set (else the failure is the handler's error: an empty reply). Each call is kept on the
/// delivery's record ([`crate::DeliveryRecord::forward`]: the JSON sent, the app's status,
/// answer and latency, bounded; never the secret).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let forward = wemp_server::Forward::new("http://127.0.0.1:5000/wechat")?.secret("shared-secret");
/// let router = wemp_server::Router::new().fallback(forward.handler());
/// # drop(router); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Forward {
    http: reqwest::Client,
    timeout: Duration,
    target: Target,
    /// The URL posted to.
    endpoint: Arc<str>,
    /// `endpoint` parsed once (`None`: not a URL, each call fails as reqwest says why).
    endpoint_url: Option<reqwest::Url>,
    /// The URL as shown (errors, logs, records): without a password.
    url: Arc<str>,
    secret: Option<Secret>,
    fallback_text: Option<Arc<str>>,
    names: Arc<HashMap<String, Names>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("fallback_text", &self.fallback_text)
            .finish_non_exhaustive()
    }
}

/// Where the messages go.
#[derive(Clone)]
enum Target {
    /// `POST` to the URL.
    Url,
    /// Through a relay client.
    Relay(Relay),
}

/// What [`Forward::url`] is when forwarding through a relay.
pub const RELAY_TARGET: &str = "relay";

/// `url` as shown in errors, logs and records: without a password.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Lowercase hex of `HMAC-SHA256(secret, body)`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC takes keys of any length.
        unreachable!("HMAC accepts any key length")
    });
    mac.update(body);
    let mut hex = String::with_capacity(64);
    for b in mac.finalize().into_bytes().iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl Forward {
    /// The default timeout of one call to the app.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Forwarding to `url` (pooled keep-alive connections, rustls for `https://`), with the
    /// default timeout and no secret.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(url: impl Into<String>) -> Result<Self, reqwest::Error> {
        Self::with_timeout(url, Self::DEFAULT_TIMEOUT)
    }

    /// As [`Forward::new`], each call limited to `timeout` in all.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("wemp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let url: String = url.into();
        Ok(Self {
            http,
            timeout,
            target: Target::Url,
            url: shown(&url).into(),
            endpoint_url: reqwest::Url::parse(&url).ok(),
            endpoint: url.into(),
            secret: None,
            fallback_text: None,
            names: Arc::default(),
            stats: Arc::default(),
        })
    }

    /// Forwarding through the relay clients connected to `relay` (`wemp relay`), each call
    /// limited to `timeout` in all: the same body, signature and rules as to a URL; with no
    /// client connected, the call fails (and the fallback text is answered, if set).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn relay(relay: Relay, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self::with_timeout(RELAY_TARGET, timeout)?.to_relay(relay))
    }

    /// This forwarder — its secret, fallback text, account names, timeout, connection pool
    /// and counters — sending to `url` instead (a rule's own `forward`).
    #[must_use]
    pub fn to_url(&self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        Self {
            target: Target::Url,
            url: shown(&url).into(),
            endpoint_url: reqwest::Url::parse(&url).ok(),
            endpoint: url.into(),
            ..self.clone()
        }
    }

    /// As [`Forward::to_url`], through the relay clients of `relay`.
    #[must_use]
    pub fn to_relay(&self, relay: Relay) -> Self {
        Self {
            target: Target::Relay(relay),
            url: RELAY_TARGET.into(),
            endpoint: RELAY_TARGET.into(),
            endpoint_url: None,
            ..self.clone()
        }
    }

    /// Signs each body with `secret` (`X-Wemp-Signature`).
    #[must_use]
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Answers `text` when the app fails.
    #[must_use]
    pub fn fallback_text(mut self, text: impl Into<String>) -> Self {
        let text: String = text.into();
        self.fallback_text = Some(text.into());
        self
    }

    /// How the account wemp knows as `id` appears in the JSON: `account` is `name`, `appid`
    /// the real appid (default: both are `id`). `id` is the account's key
    /// ([`wemp_proto::admission::Account::key`]): its appid, or `corpid/agentid` for a WeCom
    /// app, so the apps of one corp keep their own names.
    #[must_use]
    pub fn account_names(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        appid: Option<String>,
    ) -> Self {
        Arc::make_mut(&mut self.names).insert(id.into(), Names { account: name.into(), appid });
        self
    }

    /// The app's URL (any password in it left out), or [`RELAY_TARGET`] when forwarding
    /// through a relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON body sent for `inbound` (contract version [`CONTRACT_VERSION`]).
    pub fn body(&self, inbound: &Inbound) -> serde_json::Value {
        let (key, dedup_key) = (inbound.account().key(), inbound.message().dedup_key());
        serde_json::to_value(self.contract(inbound, &key, &dedup_key)).unwrap_or_default()
    }

    /// The body of `inbound` as it is serialised (into [`Forward::body`]'s value, or straight
    /// into the bytes sent): `key` is the account's key, `dedup_key` the message's.
    fn contract<'a>(&'a self, inbound: &'a Inbound, key: &'a str, dedup_key: &'a str) -> Contract<'a> {
        let msg = inbound.message();
        let acct = inbound.account();
        let (account, appid) = match self.names.get(key) {
            Some(n) => (n.account.as_str(), n.appid.as_deref()),
            None => (key, Some(key)),
        };
        let content = match msg {
            Incoming::Text(t) => Some(t.content.as_str()),
            Incoming::Voice(v) => v.recognition.as_deref(),
            _ => None,
        };
        let event = match msg {
            Incoming::Event(e) => Some(e.kind().as_str().to_owned()),
            Incoming::Unknown(u) => u.event.clone(),
            _ => None,
        };
        let received_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Contract {
            version: CONTRACT_VERSION,
            account,
            appid,
            kind: acct.kind().as_str(),
            corpid: acct.corpid(),
            agentid: acct.agentid(),
            openid: &msg.header().from,
            to: &msg.header().to,
            create_time: msg.header().create_time,
            msg_type: msg.kind().as_str().to_owned(),
            event,
            msg_id: msg.msg_id().map(MsgId),
            content,
            message: msg,
            raw_xml: msg.to_xml(),
            mode: inbound.mode().as_str(),
            dedup_key,
            received_at: u64::try_from(received_at).unwrap_or(u64::MAX),
            remaining_ms: u64::try_from(inbound.ctx().remaining().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Posts `inbound` to the app and reads its reply.
    ///
    /// # Errors
    /// [`ForwardError`]: the app is unreachable or slow, answered another status, or answered
    /// something that is not `{"reply": …}`.
    pub async fn call(&self, inbound: &Inbound) -> Result<Reply, ForwardError> {
        self.exchange(inbound).await.0
    }

    /// [`Forward::call`], and the record of the call: the JSON sent, the app's status,
    /// answer (as read, bounded) and the latency.
    async fn exchange(&self, inbound: &Inbound) -> (Result<Reply, ForwardError>, ForwardRecord) {
        let start = Instant::now();
        let (key, dedup_key) = (inbound.account().key(), inbound.message().dedup_key());
        let mut body = Vec::with_capacity(1024);
        // Borrowed strings and integers into a Vec: serialising cannot fail.
        let _ = serde_json::to_writer(&mut body, &self.contract(inbound, &key, &dedup_key));
        let mut record = ForwardRecord::new(
            match self.target {
                Target::Url => ForwardTarget::Url { url: self.url.to_string() },
                Target::Relay(_) => ForwardTarget::Relay,
            },
            ForwardResult::NoReply,
            &body,
            Duration::ZERO,
        );
        let mut answer = Vec::new();
        let outcome = self.post(key, dedup_key, body, &mut record.status, &mut answer).await;
        record.latency = start.elapsed();
        if record.status.is_some() {
            record.set_answer(&answer);
        }
        record.result = match &outcome {
            Ok(r) if r.is_none() => ForwardResult::NoReply,
            Ok(_) => ForwardResult::Reply,
            Err(e) => {
                record.error = Some(e.to_string());
                e.result()
            }
        };
        (outcome, record)
    }

    /// Sends `body` (of the message with `dedup_key`, for the account with `key`); the status
    /// and the bytes of the answer read are left in `status` and `answer`.
    async fn post(
        &self,
        key: String,
        dedup_key: String,
        body: Vec<u8>,
        status: &mut Option<u16>,
        answer: &mut Vec<u8>,
    ) -> Result<Reply, ForwardError> {
        let signature =
            self.secret.as_ref().map(|secret| format!("sha256={}", sign(secret.expose().as_bytes(), &body)));
        let code = match &self.target {
            Target::Url => {
                let unreachable = |source| ForwardError::Unreachable { url: self.url.to_string(), source };
                let mut req = match &self.endpoint_url {
                    Some(url) => self.http.post(url.clone()),
                    // Not a URL: the request fails as reqwest says why.
                    None => self.http.post(&*self.endpoint),
                };
                req = req
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .header(HeaderName::from_static(DEDUP_KEY_HEADER), dedup_key)
                    // The key the API proxy takes back: a WeCom app's `corpid/agentid`, since
                    // the apps of one corp share the corpid.
                    .header(HeaderName::from_static(ACCOUNT_HEADER), key);
                if let Some(signature) = signature {
                    req = req.header(HeaderName::from_static(SIGNATURE_HEADER), signature);
                }
                let mut res = req.body(body).send().await.map_err(unreachable)?;
                let code = res.status().as_u16();
                *status = Some(code);
                if code != 204 {
                    while let Some(chunk) = res.chunk().await.map_err(unreachable)? {
                        answer.extend_from_slice(&chunk);
                        if answer.len() > ANSWER_LIMIT {
                            break;
                        }
                    }
                }
                code
            }
            Target::Relay(relay) => {
                let mut headers = std::collections::BTreeMap::from([
                    (CONTENT_TYPE.as_str().to_owned(), "application/json".to_owned()),
                    (DEDUP_KEY_HEADER.to_owned(), dedup_key),
                    (ACCOUNT_HEADER.to_owned(), key),
                ]);
                headers.extend(signature.map(|s| (SIGNATURE_HEADER.to_owned(), s)));
                // The body is serde_json's output: UTF-8.
                let body = String::from_utf8(body)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                let (code, bytes) = tokio::time::timeout(self.timeout, relay.call(headers, body))
                    .await
                    .map_err(|_| RelayError::Timeout(self.timeout))??;
                *status = Some(code);
                *answer = bytes;
                code
            }
        };
        if code == 204 {
            return Ok(Reply::None);
        }
        let url = self.url.to_string();
        if code != 200 {
            return Err(ForwardError::Status { url, status: code });
        }
        if answer.len() > ANSWER_LIMIT {
            return Err(ForwardError::BadAnswer {
                url,
                reason: format!("larger than {ANSWER_LIMIT} bytes"),
                body: String::from_utf8_lossy(&answer[..200]).into_owned(),
            });
        }
        parse_answer(answer).map_err(|reason| ForwardError::BadAnswer {
            url,
            reason,
            body: String::from_utf8_lossy(answer).chars().take(200).collect(),
        })
    }

    /// [`Forward::call`] with the failure logged and counted, the call kept on the
    /// delivery's record ([`crate::Ctx::record_forward`]), and the fallback text (if any)
    /// answered in place of a failure.
    ///
    /// # Errors
    /// The app failed and there is no fallback text.
    pub async fn handle(&self, inbound: Inbound) -> Result<Reply, BoxError> {
        let (outcome, record) = self.exchange(&inbound).await;
        let s = &self.stats;
        s.latency_count.fetch_add(1, Relaxed);
        s.latency_sum_us.fetch_add(u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX), Relaxed);
        let latency_ms = record.latency_ms();
        s.calls[record.result as usize].fetch_add(1, Relaxed);
        inbound.ctx().record_forward(record);
        // Only the log lines read it: made when one is emitted.
        let key = || inbound.message().dedup_key();
        match outcome {
            Ok(reply) => {
                // At debug: the message log, the console and the metrics have every call, and a
                // line per message on standard error costs as much as half the call.
                tracing::debug!(target: "wemp::forward", dedup_key = %key(), latency_ms, reply = reply.msg_type().unwrap_or("none"), "forwarded");
                Ok(reply)
            }
            Err(e) => {
                tracing::warn!(target: "wemp::forward", dedup_key = %key(), latency_ms, "forwarding failed: {e}");
                match &self.fallback_text {
                    Some(text) => Ok(Reply::text(text.as_ref())),
                    None => Err(Box::new(e)),
                }
            }
        }
    }

    /// This forwarder as a handler (for [`crate::Router::fallback`] or a rule).
    pub fn handler(
        &self,
    ) -> impl Fn(Inbound) -> futures_util::future::BoxFuture<'static, Result<Reply, BoxError>>
    + Clone
    + Send
    + Sync
    + 'static {
        let me = self.clone();
        move |inbound: Inbound| {
            let me = me.clone();
            Box::pin(async move { me.handle(inbound).await })
        }
    }

    /// Appends the forwarder's counters in Prometheus text format.
    pub fn write_prometheus(&self, out: &mut String) {
        let s = &self.stats;
        let _ = writeln!(out, "# HELP wemp_forward_calls_total Calls to the gateway app by result.");
        let _ = writeln!(out, "# TYPE wemp_forward_calls_total counter");
        for result in ForwardResult::ALL {
            let (label, n) = (result.label(), s.calls[result as usize].load(Relaxed));
            let _ = writeln!(out, "wemp_forward_calls_total{{result=\"{label}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP wemp_forward_latency_seconds Time of calls to the gateway app.");
        let _ = writeln!(out, "# TYPE wemp_forward_latency_seconds summary");
        let sum = s.latency_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "wemp_forward_latency_seconds_sum {sum}");
        let _ = writeln!(out, "wemp_forward_latency_seconds_count {}", s.latency_count.load(Relaxed));
    }
}

/// Reads `{"reply": <Reply JSON>}` or `{"reply": null}`; an empty body is no reply.
fn parse_answer(bytes: &[u8]) -> Result<Reply, String> {
    /// The answer as the contract has it: an object with a `reply` (required, may be null).
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(deserialize_with = "Option::<Reply>::deserialize")]
        reply: Option<Reply>,
    }
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(Reply::None);
    };
    // Straight into the reply; anything else (not an object, no or a bad `reply`, a
    // repeated key) is read again below to say what is wrong.
    if *first == b'{'
        && let Ok(Answer { reply }) = serde_json::from_slice(bytes)
    {
        return Ok(reply.unwrap_or(Reply::None));
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(obj) = v.as_object() else { return Err("not a JSON object".into()) };
    match obj.get("reply") {
        None => Err("no \"reply\" field".into()),
        Some(serde_json::Value::Null) => Ok(Reply::None),
        Some(r) => serde_json::from_value(r.clone()).map_err(|e| format!("\"reply\" is not a reply: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(parse_answer(b"").unwrap(), Reply::None);
        assert_eq!(parse_answer(br#"{"reply": null}"#).unwrap(), Reply::None);
        assert_eq!(
            parse_answer(br#"{"reply": {"type": "text", "content": "hi"}}"#).unwrap(),
            Reply::text("hi")
        );
        assert!(parse_answer(b"<xml/>").unwrap_err().contains("not JSON"));
        assert!(parse_answer(br#"{"text": "hi"}"#).unwrap_err().contains("no \"reply\""));
        assert!(parse_answer(br#"{"reply": {"type": "sticker"}}"#).unwrap_err().contains("not a reply"));
        // Other fields are ignored; an array is not the object the contract asks for.
        assert_eq!(
            parse_answer(br#" {"trace": [1], "reply": {"type": "text", "content": "hi"}} "#).unwrap(),
            Reply::text("hi")
        );
        assert_eq!(parse_answer(b"{\"reply\": null, \"n\": 1}\n").unwrap(), Reply::None);
        assert!(parse_answer(br#"[null]"#).unwrap_err().contains("not a JSON object"));
        assert!(
            parse_answer(br#"[{"type": "text", "content": "hi"}]"#)
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(parse_answer(br#"{"reply": null"#).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let f = Forward::new("http://app:hunter2@127.0.0.1:5000/hook").unwrap().secret("s3cret-key");
        assert_eq!(f.url(), "http://app@127.0.0.1:5000/hook");
        let debug = format!("{f:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("s3cret-key"), "{debug}");
        assert_eq!(Forward::new("http://127.0.0.1:5000/hook").unwrap().url(), "http://127.0.0.1:5000/hook");
    }

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
