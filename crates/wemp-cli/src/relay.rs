//! `wemp relay WS_URL --to URL`: the developer's end of the relay (docs/gateway.md). It
//! connects out to a `wemp serve --forward relay` (through NAT, no inbound port), posts each
//! message it receives to the local app with the same signed JSON and headers as
//! `wemp serve --forward URL` would, and sends the app's answer back. It reconnects with
//! backoff and says when it is connected and when not.
//!
//! The wire format and the authentication are wemp-server's ([`wemp_server::Relay`]): one
//! home; this is only the client.

use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};
use wemp_server::{ANSWER_LIMIT, RELAY_AUTH_HEADER, RELAY_PING_INTERVAL, RelayAnswer, RelayRequest};

use crate::i18n::{Lang, Msg};

/// The headers of a [`RelayRequest`] passed on to the app; others are dropped.
pub const PASSED_HEADERS: [&str; 4] =
    ["content-type", "x-wemp-signature", "x-wemp-dedup-key", "x-wemp-account"];

/// The longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What `wemp relay` runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The relay endpoint, `ws://…/wechat/relay` or `wss://…`.
    pub url: String,
    /// The local app, `http://127.0.0.1:5000/wechat`.
    pub to: String,
    /// The forward secret (`WEMP_FORWARD_SECRET`), shared with the server and the app.
    pub secret: wemp_proto::Secret,
    /// How long one call to the app may take.
    pub timeout: Duration,
    /// The language of the status lines.
    pub lang: Lang,
}

/// Why the relay cannot run; shown in the language of [`Options::lang`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayClientError {
    /// The server's relay URL is not `ws://` or `wss://`.
    #[error(
        "{0:?} is not a ws:// or wss:// URL (the server prints it: `Relay: wemp relay ws://…/wechat/relay`)"
    )]
    NotWebSocket(String),
    /// `--to` is not `http://` or `https://`.
    #[error("--to {0:?} is not an http:// or https:// URL")]
    NotHttp(String),
    /// No shared secret.
    #[error("{}", Msg::RelayNoSecret.get(*.0))]
    NoSecret(Lang),
    /// The HTTP client to the app cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The server answered the upgrade with an error status (a wrong secret or URL:
    /// retrying would not help).
    #[error("{}", Msg::RelayRefused.fill(*lang, &[("url", url), ("status", status), ("why", why)]))]
    Refused {
        /// The language of the message.
        lang: Lang,
        /// The relay URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's reason.
        why: String,
    },
}

/// Checks the options before connecting.
///
/// # Errors
/// A URL that is not `ws://`/`wss://` (`url`) or `http://`/`https://` (`to`), or no secret.
pub fn check(opts: &Options) -> Result<(), RelayClientError> {
    match reqwest::Url::parse(&opts.url) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => {}
        _ => return Err(RelayClientError::NotWebSocket(opts.url.clone())),
    }
    match reqwest::Url::parse(&opts.to) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => return Err(RelayClientError::NotHttp(opts.to.clone())),
    }
    if opts.secret.is_empty() {
        return Err(RelayClientError::NoSecret(opts.lang));
    }
    Ok(())
}

/// Runs the relay until `shutdown` completes; `say` gets each status line (connected,
/// disconnected, each message relayed).
///
/// # Errors
/// The server refused the connection (a wrong secret or URL: retrying would not help), or
/// the options are invalid.
pub async fn run(
    opts: Options,
    say: impl Fn(String) + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayClientError> {
    check(&opts)?;
    let http = reqwest::Client::builder()
        .timeout(opts.timeout)
        .user_agent(concat!("wemp-relay/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let say = std::sync::Arc::new(say);
    let lang = opts.lang;
    let url = opts.url.clone();
    // Stopping closes the WebSocket properly, so the server logs a close, not a reset.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let work = async {
        let mut backoff = Duration::from_secs(1);
        loop {
            say(Msg::RelayConnecting.fill(lang, &[("url", &url)]));
            match connect(&opts).await {
                Ok(ws) => {
                    backoff = Duration::from_secs(1);
                    say(Msg::RelayConnected.fill(lang, &[("url", &url), ("to", &opts.to)]));
                    let Some(why) = serve(ws, &opts, &http, &say, stop.clone()).await else {
                        return Ok(());
                    };
                    say(Msg::RelayDisconnected.fill(lang, &[("url", &url), ("why", &why)]));
                }
                Err(Failure::Refused { status, why }) => {
                    return Err(RelayClientError::Refused { lang, url: url.clone(), status, why });
                }
                Err(Failure::Unreachable(why)) => {
                    say(Msg::RelayRetry
                        .fill(lang, &[("url", &url), ("why", &why), ("secs", &backoff.as_secs())]));
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => r,
        () = shutdown => {
            let _ = stop_tx.send(true);
            // A connected relay closes its WebSocket (bounded); otherwise there is nothing to wait for.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut work).await;
            Ok(())
        }
    }
}

enum Failure {
    /// The server answered the upgrade with an error status: no retry.
    Refused { status: u16, why: String },
    /// No connection (refused, DNS, TLS, timeout): retry.
    Unreachable(String),
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(opts: &Options) -> Result<Socket, Failure> {
    let mut req = opts.url.as_str().into_client_request().map_err(|e| Failure::Unreachable(e.to_string()))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut nonce = String::with_capacity(32);
    for b in rand::random::<[u8; 16]>() {
        let _ = write!(nonce, "{b:02x}");
    }
    let auth = wemp_server::relay_auth(opts.secret.expose().as_bytes(), now, &nonce);
    req.headers_mut().insert(
        RELAY_AUTH_HEADER,
        auth.parse().map_err(|_| Failure::Unreachable("cannot build the auth header".into()))?,
    );
    let connecting = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Err(_) => Err(Failure::Unreachable("no answer within 10 s".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(res))) if res.status().is_client_error() => {
            let why = res.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let why = why.chars().take(300).collect::<String>();
            Err(Failure::Refused { status: res.status().as_u16(), why })
        }
        Ok(Err(tungstenite::Error::Http(res))) => {
            Err(Failure::Unreachable(format!("the server answered HTTP {}", res.status().as_u16())))
        }
        Ok(Err(e)) => Err(Failure::Unreachable(e.to_string())),
    }
}

/// Relays messages on one connection until it ends; why it ended.
async fn serve(
    ws: Socket,
    opts: &Options,
    http: &reqwest::Client,
    say: &std::sync::Arc<impl Fn(String) + Send + Sync + 'static>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<RelayAnswer>();
    let writer = async {
        let mut ping = tokio::time::interval(RELAY_PING_INTERVAL);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                a = rx.recv() => match a {
                    Some(a) => Message::Text(serde_json::to_string(&a).unwrap_or_default().into()),
                    None => break Some("the answer queue closed".to_owned()),
                },
                _ = ping.tick() => Message::Ping(Vec::new().into()),
                _ = stop.wait_for(|s| *s) => {
                    let _ = sink.send(Message::Close(None)).await;
                    break None;
                }
            };
            if let Err(e) = sink.send(msg).await {
                break Some(e.to_string());
            }
        }
    };
    let reader = async {
        loop {
            let next = tokio::time::timeout(3 * RELAY_PING_INTERVAL, stream.next()).await;
            let msg = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => break e.to_string(),
                Ok(None) => break "the server closed the connection".to_owned(),
                Err(_) => {
                    break format!("the server was silent for {} s", (3 * RELAY_PING_INTERVAL).as_secs());
                }
            };
            match msg {
                Message::Text(text) => match serde_json::from_str::<RelayRequest>(text.as_str()) {
                    Ok(req) => {
                        let (http, to, tx, say, lang) =
                            (http.clone(), opts.to.clone(), tx.clone(), say.clone(), opts.lang);
                        tokio::spawn(async move {
                            let key = req.headers.get("x-wemp-dedup-key").cloned().unwrap_or_default();
                            let start = Instant::now();
                            let answer = post(&http, &to, req).await;
                            let outcome = match (&answer.status, &answer.error) {
                                (_, Some(e)) => e.clone(),
                                (Some(s), None) => format!("HTTP {s} in {} ms", start.elapsed().as_millis()),
                                (None, None) => String::new(),
                            };
                            say(Msg::RelayForwarded
                                .fill(lang, &[("key", &key), ("to", &to), ("outcome", &outcome)]));
                            let _ = tx.send(answer);
                        });
                    }
                    Err(e) => say(format!("relay: an unreadable message from the server ignored: {e}")),
                },
                Message::Close(_) => break "the server closed the connection".to_owned(),
                _ => {}
            }
        }
    };
    tokio::select! {
        why = writer => why,
        why = reader => Some(why),
    }
}

/// Posts one relayed message to the app; its status and body, or why it could not.
async fn post(http: &reqwest::Client, to: &str, req: RelayRequest) -> RelayAnswer {
    let mut call = http.post(to);
    for (name, value) in &req.headers {
        if PASSED_HEADERS.contains(&name.as_str()) {
            call = call.header(name, value);
        }
    }
    let failed = |e: reqwest::Error| RelayAnswer {
        id: req.id,
        status: None,
        body: String::new(),
        error: Some(format!("app at {to} unreachable: {e}")),
    };
    let mut res = match call.body(req.body.clone()).send().await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let status = res.status().as_u16();
    let mut bytes = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > ANSWER_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return failed(e),
        }
    }
    RelayAnswer {
        id: req.id,
        status: Some(status),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        error: None,
    }
}
