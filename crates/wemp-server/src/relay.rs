//! [`Relay`]: forwarding to an app wemp cannot reach (a laptop, a private network) through
//! relay clients that connect out to wemp over a WebSocket (`wemp relay`, docs/gateway.md).
//!
//! The relay is only a transport of [`crate::Forward`]: the same JSON body, the same
//! signature, the same once-per-message, deadline, late-reply and fallback rules. On the wire
//! (text frames, JSON):
//!
//! - wemp → client: a [`RelayRequest`] `{"id": 7, "headers": {…}, "body": "<the JSON body>"}`;
//!   the client posts `body` to the app with `headers` (`X-Wemp-Signature`, …) as they are;
//! - client → wemp: a [`RelayAnswer`] `{"id": 7, "status": 200, "body": "{\"reply\": …}"}`,
//!   or `{"id": 7, "error": "…"}` when the app could not be reached.
//!
//! A client authenticates with the forward secret without sending it: the upgrade request
//! carries `X-Wemp-Relay-Auth: t=<unix seconds>,nonce=<hex>,sha256=<hex HMAC>` ([`relay_auth`]),
//! accepted within [`RELAY_AUTH_WINDOW`] of wemp's clock and once per nonce.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts as _};
use axum::response::{IntoResponse as _, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::forward::{ANSWER_LIMIT, sign};

/// The header of a relay client's upgrade request that proves it knows the forward secret.
pub const RELAY_AUTH_HEADER: &str = "x-wemp-relay-auth";
/// How far a relay client's clock may be from wemp's.
pub const RELAY_AUTH_WINDOW: Duration = Duration::from_secs(300);
/// How often each side pings the other; a connection silent for three times this is dead.
pub const RELAY_PING_INTERVAL: Duration = Duration::from_secs(20);

/// One message for the app, sent to a relay client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRequest {
    /// Pairs the answer with the request.
    pub id: u64,
    /// The headers to post with (`content-type`, `x-wemp-signature`, `x-wemp-dedup-key`,
    /// `x-wemp-account`), lowercase.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (contract of [`crate::CONTRACT_VERSION`]), exactly as signed.
    pub body: String,
}

/// A relay client's answer to a [`RelayRequest`]: the app's status and body, or why the app
/// could not be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAnswer {
    /// The request's id.
    pub id: u64,
    /// The app's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The app's body.
    #[serde(default)]
    pub body: String,
    /// Set when the app could not be reached (connection refused, timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a message could not go through the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// No relay client is connected.
    #[error("no relay client is connected (run `wemp relay <this server's relay URL> --to <your app>`)")]
    NotConnected,
    /// The client's connection ended before it answered.
    #[error("the relay client disconnected before answering")]
    Disconnected,
    /// No answer within the forward timeout.
    #[error("the relay client did not answer within {0:?}")]
    Timeout(Duration),
    /// The relay client could not reach the app.
    #[error("the relay client could not reach the app: {0}")]
    App(String),
}

/// The `X-Wemp-Relay-Auth` value for a client that knows `secret`, at `unix_secs`, with a
/// fresh random `nonce` (hex): `t=…,nonce=…,sha256=<hex HMAC-SHA256 of "wemp-relay:t:nonce">`.
pub fn relay_auth(secret: &[u8], unix_secs: u64, nonce: &str) -> String {
    let mac = sign(secret, format!("wemp-relay:{unix_secs}:{nonce}").as_bytes());
    format!("t={unix_secs},nonce={nonce},sha256={mac}")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

struct Client {
    conn: u64,
    tx: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<RelayAnswer>>>>,
}

struct Inner {
    secret: Arc<[u8]>,
    clients: Mutex<Vec<Client>>,
    next_id: AtomicU64,
    next_conn: AtomicU64,
    nonces: Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hub relay clients connect to: [`Relay::router`] serves the WebSocket endpoint,
/// [`crate::Forward::relay`] sends messages through it. Each message goes to the most
/// recently connected client. Clones share the hub.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("connected", &self.connected()).finish_non_exhaustive()
    }
}

impl Relay {
    /// A hub whose clients prove they know `secret` (the forward secret).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret: secret.as_ref().into(),
                clients: Mutex::default(),
                next_id: AtomicU64::new(1),
                next_conn: AtomicU64::new(1),
                nonces: Mutex::default(),
            }),
        }
    }

    /// How many relay clients are connected.
    pub fn connected(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// The WebSocket endpoint at `path` (`GET`, upgraded): `401` without a valid
    /// `X-Wemp-Relay-Auth`, `400` for a request that is not a WebSocket upgrade.
    pub fn router(&self, path: &str) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            path,
            axum::routing::get(move |req: axum::extract::Request| {
                let me = me.clone();
                async move { me.upgrade(req).await }
            }),
        )
    }

    /// Checks `X-Wemp-Relay-Auth`: the MAC, the clock window, and that the nonce is new.
    fn check(&self, header: Option<&str>) -> Result<(), &'static str> {
        let header = header.ok_or("missing X-Wemp-Relay-Auth (connect with `wemp relay`)")?;
        let mut t = None;
        let mut nonce = None;
        let mut mac = None;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => t = v.parse::<u64>().ok(),
                Some(("nonce", v)) => nonce = Some(v),
                Some(("sha256", v)) => mac = Some(v),
                _ => {}
            }
        }
        let (Some(t), Some(nonce), Some(mac)) = (t, nonce, mac) else {
            return Err("malformed X-Wemp-Relay-Auth: expected t=…,nonce=…,sha256=…");
        };
        if nonce.len() < 16 || nonce.len() > 64 {
            return Err("malformed X-Wemp-Relay-Auth: the nonce must be 16 to 64 characters");
        }
        let expected = relay_auth(&self.inner.secret, t, nonce);
        let given = format!("t={t},nonce={nonce},sha256={mac}");
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes())) {
            return Err(
                "X-Wemp-Relay-Auth does not match: the relay's WEMP_FORWARD_SECRET differs from the server's forward_secret",
            );
        }
        let now = now_secs();
        if now.abs_diff(t) > RELAY_AUTH_WINDOW.as_secs() {
            return Err("X-Wemp-Relay-Auth is too old or too far in the future: check both clocks");
        }
        let mut nonces = lock(&self.inner.nonces);
        nonces.retain(|_, at| now.abs_diff(*at) <= 2 * RELAY_AUTH_WINDOW.as_secs());
        if nonces.insert(nonce.to_owned(), t).is_some() {
            return Err("X-Wemp-Relay-Auth was already used (a replayed request)");
        }
        Ok(())
    }

    async fn upgrade(&self, req: axum::extract::Request) -> Response {
        let (mut parts, _) = req.into_parts();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
        let peer = peer.unwrap_or_else(|| "?".into());
        let header = parts.headers.get(RELAY_AUTH_HEADER).and_then(|v| v.to_str().ok());
        if let Err(why) = self.check(header) {
            tracing::warn!(target: "wemp::relay", %peer, "relay client refused: {why}");
            return (http::StatusCode::UNAUTHORIZED, why).into_response();
        }
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            Err(e) => {
                let why = format!("this is wemp's relay endpoint, for `wemp relay` (a WebSocket): {e}");
                return (http::StatusCode::BAD_REQUEST, why).into_response();
            }
        };
        let me = self.clone();
        ws.max_message_size(ANSWER_LIMIT * 2)
            .on_upgrade(move |socket| async move { me.run(socket, peer).await })
    }

    /// Serves one connected client until its connection ends.
    async fn run(&self, socket: WebSocket, peer: String) {
        let conn = self.inner.next_conn.fetch_add(1, Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<RelayAnswer>>>> = Arc::default();
        let connected = {
            let mut clients = lock(&self.inner.clients);
            clients.push(Client { conn, tx: tx.clone(), pending: pending.clone() });
            clients.len()
        };
        tracing::info!(target: "wemp::relay", %peer, connected, "relay client connected");
        let (mut sink, mut stream) = socket.split();
        let writer = async {
            let mut ping = tokio::time::interval(RELAY_PING_INTERVAL);
            ping.tick().await;
            loop {
                let msg = tokio::select! {
                    m = rx.recv() => match m { Some(m) => m, None => break },
                    _ = ping.tick() => Message::Ping(Vec::new().into()),
                };
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        };
        let reader = async {
            loop {
                let next = tokio::time::timeout(3 * RELAY_PING_INTERVAL, stream.next()).await;
                let msg = match next {
                    Ok(Some(Ok(m))) => m,
                    Ok(Some(Err(e))) => break format!("{e}"),
                    Ok(None) => break "closed".to_owned(),
                    Err(_) => break format!("silent for {:?}", 3 * RELAY_PING_INTERVAL),
                };
                match msg {
                    Message::Text(text) => match serde_json::from_str::<RelayAnswer>(text.as_str()) {
                        Ok(answer) => {
                            if let Some(waiting) = lock(&pending).remove(&answer.id) {
                                let _ = waiting.send(answer);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(target: "wemp::relay", %peer, "relay client sent an unreadable frame: {e}")
                        }
                    },
                    Message::Close(_) => break "closed".to_owned(),
                    _ => {}
                }
            }
        };
        let why = tokio::select! {
            () = writer => "the connection failed".to_owned(),
            why = reader => why,
        };
        let connected = {
            let mut clients = lock(&self.inner.clients);
            clients.retain(|c| c.conn != conn);
            clients.len()
        };
        // Calls waiting on this client fail now (their senders drop), not at the timeout.
        lock(&pending).clear();
        tracing::warn!(target: "wemp::relay", %peer, connected, "relay client disconnected: {why}");
    }

    /// Sends one message to the most recently connected client and waits for its answer:
    /// the app's status and body.
    ///
    /// # Errors
    /// [`RelayError`]: no client, the client went away, or it could not reach the app.
    pub async fn call(
        &self,
        headers: BTreeMap<String, String>,
        body: String,
    ) -> Result<(u16, Vec<u8>), RelayError> {
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let (done, answer) = oneshot::channel();
        let frame = serde_json::to_string(&RelayRequest { id, headers, body }).unwrap_or_default();
        let _waiting = {
            let clients = lock(&self.inner.clients);
            let client = clients.last().ok_or(RelayError::NotConnected)?;
            lock(&client.pending).insert(id, done);
            // Removes the entry however this call ends (answered, timed out, cancelled).
            let waiting = Waiting { pending: client.pending.clone(), id };
            client.tx.send(Message::Text(frame.into())).map_err(|_| RelayError::Disconnected)?;
            waiting
        };
        let answer = answer.await.map_err(|_| RelayError::Disconnected)?;
        match (answer.error, answer.status) {
            (Some(e), _) => Err(RelayError::App(e)),
            (None, Some(status)) => Ok((status, answer.body.into_bytes())),
            (None, None) => {
                Err(RelayError::App("the relay client's answer has neither status nor error".into()))
            }
        }
    }
}

struct Waiting {
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<RelayAnswer>>>>,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_header_is_checked_for_mac_time_and_replay() {
        let relay = Relay::new("s3cret");
        let nonce = "0123456789abcdef";
        let good = relay_auth(b"s3cret", now_secs(), nonce);
        assert_eq!(relay.check(Some(&good)), Ok(()));
        assert!(relay.check(Some(&good)).unwrap_err().contains("already used"));
        let wrong = relay_auth(b"other", now_secs(), "fedcba9876543210");
        assert!(relay.check(Some(&wrong)).unwrap_err().contains("does not match"));
        let old = relay_auth(b"s3cret", now_secs() - 3600, "00112233445566778899");
        assert!(relay.check(Some(&old)).unwrap_err().contains("too old"));
        assert!(relay.check(None).unwrap_err().contains("missing"));
        assert!(relay.check(Some("Bearer s3cret")).unwrap_err().contains("malformed"));
    }
}
