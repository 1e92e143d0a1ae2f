//! The simulated WeChat callback side: signs, encrypts, retries and checks replies.
//!
//! [`WechatCallback`] posts messages to an Official Account server exactly as WeChat does
//! (built with [`wemp_proto::testing::Platform`]), follows WeChat's schedule — each try
//! abandoned after 5 seconds, three tries in all — then decrypts and checks the answer and
//! reports what the user would see, including WeChat's error banner
//! ([`ERROR_BANNER`]) when every try fails or the answer is not a valid reply.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wemp_proto::{Cipher, Mode};
//! use wemp_testkit::wechat::{UserSees, WechatCallback};
//! let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")?;
//! let wechat = WechatCallback::new("http://127.0.0.1:8080/wechat", "spamtest")
//!     .with_cipher(cipher)
//!     .mode(Mode::Safe)
//!     .original_id("gh_10f6c3c3ac5a");
//! assert!(wechat.verify_url("hello").await?);
//! let delivery = wechat.send_text("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "help").await;
//! if let UserSees::Reply(reply) = &delivery.user_sees {
//!     println!("user sees {reply:?} after {} tries", delivery.attempts.len());
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::time::Instant;
use wemp_proto::reply::ReplyMessage;
use wemp_proto::testing::{Platform, SignedRequest};
use wemp_proto::{Cipher, Incoming, Mode, Reply, ReplyContext};

/// What WeChat shows the user when the server fails to answer properly.
pub const ERROR_BANNER: &str = "该公众号暂时无法提供服务，请稍后再试";

/// What WeChat would refuse about a readable reply's mode: plain to a safe-mode request, or
/// encrypted to a plain one (WeChat shows [`ERROR_BANNER`] for both). Call it for replies
/// only, not for `success`.
pub fn mode_problems(request: Mode, encrypted: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if request == Mode::Safe && !encrypted {
        problems.push("the request came in safe mode but the reply is not encrypted".to_owned());
    }
    if request == Mode::Plain && encrypted {
        problems.push("the request came in plain mode but the reply is encrypted".to_owned());
    }
    problems
}

/// What WeChat would refuse about a decoded reply: its direction (To the user's `openid`,
/// From the account's original id `account`), `CreateTime` in seconds near `now`, and the
/// news article limits (one when `answering_message`, else eight). Empty when WeChat
/// would show it. Shared by [`WechatCallback`] and `wemp sim`, so tests and the simulator
/// judge replies alike.
pub fn reply_problems(
    message: &ReplyMessage,
    openid: &str,
    account: &str,
    answering_message: bool,
    now: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(header) = &message.header else { return problems };
    if header.to == account && header.from == openid {
        problems.push(format!(
            "wrong direction: ToUserName/FromUserName are swapped (a reply goes To the user {openid} From \
             the account {account})"
        ));
    } else {
        if header.to != openid {
            problems.push(format!(
                "wrong direction: ToUserName is {:?}, expected the user's OpenID {openid:?}",
                header.to
            ));
        }
        if header.from != account {
            problems.push(format!(
                "wrong direction: FromUserName is {:?}, expected the account's original id {account:?}",
                header.from
            ));
        }
    }
    if header.create_time > 100_000_000_000 {
        problems.push(format!(
            "CreateTime {} is in milliseconds; WeChat expects seconds since the epoch",
            header.create_time
        ));
    } else if (header.create_time - now).abs() > 3600 {
        problems.push(format!(
            "CreateTime {} is more than an hour from now ({now}); expected seconds since the epoch",
            header.create_time
        ));
    }
    let ctx =
        ReplyContext { to: openid.to_owned(), from: account.to_owned(), create_time: now, answering_message };
    if let Err(e) = message.reply.validate(&ctx) {
        problems.push(format!("news article limits: {e}"));
    }
    problems
}

/// WeChat's retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// How long one try waits for the answer (5 s).
    pub timeout: Duration,
    /// How many tries in all (3).
    pub tries: u32,
}

impl Schedule {
    /// WeChat's own schedule: each try abandoned after 5 seconds, three tries in all.
    pub const WECHAT: Self = Self { timeout: Duration::from_secs(5), tries: 3 };

    /// Makes the tries of one delivery on this schedule: `attempt(number)` (1, 2, …), each
    /// bounded by [`Schedule::timeout`], until `settled` accepts a try's result (the
    /// delivery ends there, as when the server answers) or the tries run out (at least
    /// one is made). Returns every try in order; one whose timeout ran out has no result.
    /// [`WechatCallback`] and `wemp sim` both retry through it.
    pub async fn run<T, F, Fut>(&self, mut attempt: F, mut settled: impl FnMut(&T) -> bool) -> Vec<Timed<T>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = T>,
    {
        let first = Instant::now();
        let mut tries = Vec::new();
        for number in 1..=self.tries.max(1) {
            let started = Instant::now();
            let result = tokio::time::timeout(self.timeout, attempt(number)).await.ok();
            let done = result.as_ref().is_some_and(&mut settled);
            tries.push(Timed { number, started: started - first, took: started.elapsed(), result });
            if done {
                break;
            }
        }
        tries
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::WECHAT
    }
}

/// One try made by [`Schedule::run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed<T> {
    /// 1 for the first try, then 2, 3 …
    pub number: u32,
    /// When the try started, from the first try's start.
    pub started: Duration,
    /// How long it took.
    pub took: Duration,
    /// What it came to; `None` when the try's timeout ran out first.
    pub result: Option<T>,
}

/// How one try ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The server answered.
    Answered {
        /// HTTP status.
        status: u16,
        /// The body as received.
        body: String,
    },
    /// No complete answer within the try's timeout.
    TimedOut,
    /// The connection failed.
    Failed(String),
}

/// One try of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When the try started, from the first try's start.
    pub started: Duration,
    /// How long it took.
    pub took: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// What the user sees in the chat after a delivery.
#[derive(Clone, Debug, PartialEq)]
pub enum UserSees {
    /// The passive reply.
    Reply(Reply),
    /// Nothing (`success` or an empty answer).
    Nothing,
    /// WeChat's error banner ([`ERROR_BANNER`]), with why.
    ErrorBanner {
        /// Why WeChat gave up (for test output; the user sees only the banner).
        reason: String,
    },
}

impl UserSees {
    /// The text of a text reply.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Reply(Reply::Text { content }) => Some(content),
            _ => None,
        }
    }

    /// Whether the error banner is shown.
    pub fn is_banner(&self) -> bool {
        matches!(self, Self::ErrorBanner { .. })
    }
}

/// One message's delivery: every try and the user's view.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The tries made, in order.
    pub attempts: Vec<Attempt>,
    /// What the user sees.
    pub user_sees: UserSees,
    /// Whether the answer came encrypted.
    pub encrypted: bool,
}

/// The simulated WeChat side of one account, posting to one callback URL.
#[derive(Clone, Debug)]
pub struct WechatCallback {
    url: String,
    platform: Platform,
    mode: Mode,
    original_id: String,
    schedule: Schedule,
    next_msg_id: std::sync::Arc<AtomicU64>,
}

/// The simulator could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// The URL is not `http://host:port/path`.
    Url(String),
    /// The request could not be built (e.g. an encrypted mode without a cipher).
    Proto(wemp_proto::Error),
    /// Connecting or talking HTTP failed.
    Http(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(u) => write!(f, "not an http://host:port/path URL: {u}"),
            Self::Proto(e) => write!(f, "cannot build the request: {e}"),
            Self::Http(e) => write!(f, "HTTP failed: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// `text` as the content of a CDATA section: a `]]>` in it is split across two sections.
fn cdata(text: &str) -> String {
    text.replace("]]>", "]]]]><![CDATA[>")
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

impl WechatCallback {
    /// A simulator posting to `url` (`http://host:port/path`) for an account with `token`,
    /// in plain mode until a cipher and another mode are set.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            platform: Platform::new(token),
            mode: Mode::Plain,
            original_id: "gh_000000000000".to_owned(),
            schedule: Schedule::default(),
            next_msg_id: std::sync::Arc::new(AtomicU64::new(
                10_000_000_000_000_000_000 + u64::from(rand::random::<u32>()) * 1000,
            )),
        }
    }

    /// The account's cipher (for compatible and safe mode).
    #[must_use]
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.platform = self.platform.with_cipher(cipher);
        self
    }

    /// The mode messages are sent in.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The account's original id (`gh_…`), put in `ToUserName`.
    #[must_use]
    pub fn original_id(mut self, gh: impl Into<String>) -> Self {
        self.original_id = gh.into();
        self
    }

    /// A different retry schedule (shorter timeouts keep real-time tests fast).
    #[must_use]
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The platform (token and cipher) used to sign and encrypt.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The URL verification GET: whether the server echoed `echostr` exactly.
    ///
    /// # Errors
    /// [`SimError`] when the URL is bad or the request fails.
    pub async fn verify_url(&self, echostr: &str) -> Result<bool, SimError> {
        let nonce = rand::random::<u32>().to_string();
        let req = self.platform.verification(&now_unix().to_string(), &nonce, echostr);
        let (status, body) = self.request(http::Method::GET, &req).await?;
        Ok(status == 200 && body == echostr)
    }

    /// A text message from `openid`, with a fresh `MsgId`.
    pub async fn send_text(&self, openid: &str, content: &str) -> Delivery {
        let id = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
        let xml = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
             <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{}]]></Content>\
             <MsgId>{id}</MsgId></xml>",
            cdata(&self.original_id),
            now_unix(),
            cdata(content),
            openid = cdata(openid),
        );
        self.deliver(openid, &xml).await
    }

    /// An event from `openid` (`subscribe`, `CLICK`…), with an optional `EventKey`.
    pub async fn send_event(&self, openid: &str, event: &str, key: Option<&str>) -> Delivery {
        let key = key.map(|k| format!("<EventKey><![CDATA[{}]]></EventKey>", cdata(k))).unwrap_or_default();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
             <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{key}</xml>",
            cdata(&self.original_id),
            now_unix(),
            openid = cdata(openid),
            event = cdata(event),
        );
        self.deliver(openid, &xml).await
    }

    /// Delivers any message XML from `openid` on WeChat's schedule. Every try repeats the
    /// same signed request, as WeChat's retries do.
    pub async fn deliver(&self, openid: &str, xml: &str) -> Delivery {
        // Answers to a user's message may hold one news article; to events, up to eight.
        let answering_message = !matches!(Incoming::parse(xml), Ok(Incoming::Event(_)));
        let nonce = rand::random::<u32>().to_string();
        let signed = match self.platform.post(
            self.mode,
            xml,
            openid,
            &self.original_id,
            &now_unix().to_string(),
            &nonce,
            rand::random(),
        ) {
            Ok(s) => s,
            Err(e) => {
                return Delivery {
                    attempts: Vec::new(),
                    user_sees: UserSees::ErrorBanner { reason: format!("cannot build the request: {e}") },
                    encrypted: false,
                };
            }
        };
        let tries = self
            .schedule
            .run(
                |_| async {
                    match self.request(http::Method::POST, &signed).await {
                        Ok((status, body)) => AttemptOutcome::Answered { status, body },
                        Err(e) => AttemptOutcome::Failed(e.to_string()),
                    }
                },
                |outcome| matches!(outcome, AttemptOutcome::Answered { status: 200, .. }),
            )
            .await;
        let attempts: Vec<Attempt> = tries
            .into_iter()
            .map(|t| Attempt {
                started: t.started,
                took: t.took,
                outcome: t.result.unwrap_or(AttemptOutcome::TimedOut),
            })
            .collect();
        let last_failure = match attempts.last().map(|a| &a.outcome) {
            Some(AttemptOutcome::Answered { status: 200, body }) => {
                let (user_sees, encrypted) = self.judge(openid, body, answering_message);
                return Delivery { attempts, user_sees, encrypted };
            }
            Some(AttemptOutcome::Answered { status, body }) => format!("HTTP {status}: {}", body.trim()),
            Some(AttemptOutcome::TimedOut) => format!("no answer within {:?}", self.schedule.timeout),
            Some(AttemptOutcome::Failed(e)) => e.clone(),
            None => String::new(),
        };
        let reason = format!("all {} tries failed; last: {last_failure}", attempts.len());
        Delivery { attempts, user_sees: UserSees::ErrorBanner { reason }, encrypted: false }
    }

    /// Reads a 200 answer as WeChat does: a readable reply (decrypted when encrypted), in
    /// the request's mode, judged by [`reply_problems`].
    fn judge(&self, openid: &str, body: &str, answering_message: bool) -> (UserSees, bool) {
        let opened = match self.platform.open_reply(body) {
            Ok(o) => o,
            Err(e) => return (UserSees::ErrorBanner { reason: format!("invalid reply: {e}") }, false),
        };
        if opened.message.reply.is_none() {
            return (UserSees::Nothing, opened.encrypted);
        }
        let mut problems = mode_problems(self.mode, opened.encrypted);
        problems.extend(reply_problems(
            &opened.message,
            openid,
            &self.original_id,
            answering_message,
            now_unix(),
        ));
        if problems.is_empty() {
            (UserSees::Reply(opened.message.reply), opened.encrypted)
        } else {
            (UserSees::ErrorBanner { reason: problems.join("; ") }, opened.encrypted)
        }
    }

    async fn request(&self, method: http::Method, signed: &SignedRequest) -> Result<(u16, String), SimError> {
        let uri: http::Uri = self.url.parse().map_err(|_| SimError::Url(self.url.clone()))?;
        // Only plain HTTP is spoken: an https URL is refused, not posted in the clear.
        if uri.scheme_str() != Some("http") {
            return Err(SimError::Url(self.url.clone()));
        }
        let authority = uri.authority().ok_or_else(|| SimError::Url(self.url.clone()))?;
        let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let path = uri.path();
        let sep = if uri.query().is_some() { "&" } else { "?" };
        let existing = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let target = format!("{path}{existing}{sep}{}", signed.query_string());
        let stream =
            tokio::net::TcpStream::connect(&addr).await.map_err(|e| SimError::Http(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| SimError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::builder()
            .method(method)
            .uri(target)
            .header(http::header::HOST, authority.as_str())
            .header(http::header::CONTENT_TYPE, "text/xml")
            .header(http::header::USER_AGENT, "Mozilla/4.0")
            .body(Full::new(Bytes::from(signed.body.clone())))
            .map_err(|e| SimError::Http(e.to_string()))?;
        let res = sender.send_request(req).await.map_err(|e| SimError::Http(e.to_string()))?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.map_err(|e| SimError::Http(e.to_string()))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback endpoint answering `success` and keeping every body it is posted.
    async fn recording_endpoint() -> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/wechat",
            axum::routing::post(move |body: String| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body);
                    "success"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, bodies)
    }

    #[tokio::test]
    async fn event_keys_and_ids_that_end_a_cdata_section_still_make_one_valid_message() {
        let (addr, bodies) = recording_endpoint().await;
        let wechat = WechatCallback::new(format!("http://{addr}/wechat"), "t0ken").original_id("gh_a]]>b");
        let delivery = wechat.send_event("o]]>1", "CLICK", Some("KEY]]>2")).await;
        assert_eq!(delivery.user_sees, UserSees::Nothing, "{delivery:?}");
        wechat.send_text("o]]>1", "hi").await;
        let bodies = bodies.lock().unwrap().clone();
        let Ok(Incoming::Event(wemp_proto::Event::Click(click))) = Incoming::parse(&bodies[0]) else {
            panic!("not a CLICK event: {}", bodies[0])
        };
        assert_eq!(click.event_key, "KEY]]>2");
        assert_eq!((click.header.from.as_str(), click.header.to.as_str()), ("o]]>1", "gh_a]]>b"));
        let Ok(Incoming::Text(text)) = Incoming::parse(&bodies[1]) else {
            panic!("not a text: {}", bodies[1])
        };
        assert_eq!((text.header.from.as_str(), text.header.to.as_str()), ("o]]>1", "gh_a]]>b"));
    }

    #[tokio::test]
    async fn an_https_url_is_refused_rather_than_posted_in_the_clear() {
        let (addr, bodies) = recording_endpoint().await;
        let wechat = WechatCallback::new(format!("https://{addr}/wechat"), "t0ken");
        let delivery = wechat.send_text("o1", "secret").await;
        let UserSees::ErrorBanner { reason } = &delivery.user_sees else { panic!("{delivery:?}") };
        assert!(reason.contains("not an http://host:port/path URL"), "{reason}");
        assert!(bodies.lock().unwrap().is_empty(), "posted over plain HTTP to an https URL");
        assert!(matches!(wechat.verify_url("e").await, Err(SimError::Url(_))));
    }

    #[tokio::test]
    async fn the_schedule_abandons_slow_tries_and_stops_at_a_settled_one() {
        let schedule = Schedule { timeout: Duration::from_millis(30), tries: 3 };
        let tries = schedule
            .run(
                |number| async move {
                    if number < 3 {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    number
                },
                |_| true,
            )
            .await;
        let results: Vec<_> = tries.iter().map(|t| (t.number, t.result)).collect();
        assert_eq!(results, [(1, None), (2, None), (3, Some(3))]);
        assert!(tries[1].started >= Duration::from_millis(30), "{tries:?}");

        let tries = schedule.run(|number| async move { number }, |n| *n == 2).await;
        assert_eq!(tries.iter().map(|t| t.result).collect::<Vec<_>>(), [Some(1), Some(2)]);
        let once = Schedule { timeout: Duration::from_millis(30), tries: 0 };
        assert_eq!(once.run(|n| async move { n }, |_| false).await.len(), 1);
    }
}
