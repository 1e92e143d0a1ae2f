//! How the dedup store's writer reaches Redis: over a connection of its own where it knows
//! Redis's address, speaking RESP itself, or else over the store's shared connection.
//!
//! The shared connection (a [`ConnectionManager`](::redis::aio::ConnectionManager)) hands
//! each pipeline to a driver task of its own, which frames it, writes it, parses the replies
//! and hands them back: two tasks woken a batch, and the crate's machinery a command. The
//! writer sends one pipeline at a time and waits for its replies before the next, so it needs
//! none of that: on its own connection it writes the batch and reads the replies in its own
//! task.

use std::io;
use std::time::Duration;

use ::redis::{ConnectionAddr, ConnectionInfo, Pipeline, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::command::{Command, Packer};
use super::{RedisConnection, redis_err};
use crate::{Result, StoreError};

/// The timeouts of a connection to Redis.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    /// How long opening the connection (and its handshake) may take.
    pub(super) connection: Duration,
    /// How long a batch may wait for its replies.
    pub(super) response: Duration,
}

impl Timeouts {
    /// One second each (see [`super::connect`]).
    pub(super) const DEFAULT: Self =
        Self { connection: Duration::from_secs(1), response: Duration::from_secs(1) };
}

/// Where Redis is (TCP or a Unix socket) and how to greet it, for a connection of the
/// writer's own.
#[derive(Clone, Debug)]
pub(super) struct Address {
    info: ConnectionInfo,
    pub(super) timeouts: Timeouts,
}

impl Address {
    /// The address of `info`, or `None` where the writer cannot open it itself (TLS).
    pub(super) fn of(info: &ConnectionInfo, timeouts: Timeouts) -> Option<Self> {
        match info.addr {
            ConnectionAddr::Tcp(..) | ConnectionAddr::Unix(..) => Some(Self { info: info.clone(), timeouts }),
            _ => None,
        }
    }
}

/// How the writer reaches Redis.
pub(super) enum Link {
    /// A connection of its own, opened on first use and again after it failed; the shared one
    /// is kept for when Redis refuses the own connection's greeting.
    Own(Box<Own>, RedisConnection),
    /// The store's shared connection.
    Shared(RedisConnection),
}

impl Link {
    /// Its own connection where `conn` knows Redis's address; `conn` itself otherwise.
    pub(super) fn new(conn: &RedisConnection) -> Self {
        match conn.address() {
            Some(address) => Self::Own(Box::new(Own::new(address.clone())), conn.clone()),
            None => Self::Shared(conn.clone()),
        }
    }

    /// Sends `batch` as one pipeline and reads one value per command (a command Redis
    /// refused is a [`Value::ServerError`] in its place; the batch fails as a whole only when
    /// Redis cannot be reached or does not answer in time, and then may have run some of it).
    pub(super) async fn send(&mut self, batch: &[Command]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        self.send_into(batch, &mut values).await?;
        Ok(values)
    }

    /// [`Link::send`], the values put in `values` (emptied first; its room kept from one
    /// batch to the next).
    pub(super) async fn send_into(&mut self, batch: &[Command], values: &mut Vec<Value>) -> Result<()> {
        values.clear();
        if let Self::Own(own, shared) = self {
            match own.open().await {
                Ok(()) => return own.exchange(batch, values).await,
                Err(Unopened::Unreachable(e)) => return Err(e),
                Err(Unopened::Refused(e)) => {
                    tracing::warn!(
                        error = %e,
                        "redis refused the dedup writer's own connection; it uses the shared one from now on"
                    );
                    *self = Self::Shared(shared.clone());
                }
            }
        }
        let Self::Shared(conn) = self else { unreachable!("an own link either sent or became shared") };
        let mut pipe = Pipeline::with_capacity(batch.len());
        for command in batch {
            pipe.add_command(command.to_cmd());
        }
        *values = conn.get().await?.send_packed_commands(&pipe, 0, pipe.len()).await.map_err(redis_err)?;
        Ok(())
    }
}

/// Why the own connection could not be opened.
enum Unopened {
    /// Redis cannot be reached or did not answer in time: the batch fails, and the next one
    /// tries again.
    Unreachable(StoreError),
    /// Redis answered and refused the greeting (`AUTH`, `SELECT`): the shared connection is
    /// used instead.
    Refused(StoreError),
}

/// The writer's own connection.
pub(super) struct Own {
    address: Address,
    stream: Option<Stream>,
    /// The batch's commands, packed.
    out: Vec<u8>,
    /// Packs them (keeping what they repeat from one batch to the next).
    packer: Packer,
    /// Replies read and not parsed yet.
    input: Vec<u8>,
    /// When the last batch was answered.
    last_used: Option<std::time::Instant>,
}

/// A connection idle this long is checked before a batch is sent on it: Redis may have
/// closed it meanwhile (its `timeout` setting, a restart, a proxy's idle timeout).
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Read at least this much at a time.
const READ_CHUNK: usize = 4096;
/// The longest bulk string waited for (a Redis string holds at most 512 MiB): a longer one
/// announced is a broken reply, not a reason to buffer gigabytes.
const MAX_BULK: usize = 512 << 20;
/// The deepest nesting of arrays read (the writer's commands answer none).
const MAX_DEPTH: usize = 8;

impl Own {
    fn new(address: Address) -> Self {
        Self {
            address,
            stream: None,
            out: Vec::new(),
            packer: Packer::default(),
            input: Vec::new(),
            last_used: None,
        }
    }

    /// Opens the connection unless it is open: connects and greets Redis (`AUTH` with the
    /// URL's user and password, `SELECT` its database), within the connection timeout.
    ///
    /// A connection left idle for [`IDLE_CHECK`] or more is first checked: one Redis closed
    /// meanwhile is replaced before the batch is sent (a batch sent on it would fail, and its
    /// claims with it, though Redis answers).
    async fn open(&mut self) -> std::result::Result<(), Unopened> {
        if let Some(stream) = &self.stream {
            if self.last_used.is_none_or(|t| t.elapsed() < IDLE_CHECK) || stream.still_open() {
                return Ok(());
            }
            tracing::debug!("redis closed the dedup writer's idle connection; opening another");
            self.stream = None;
        }
        let timeout = self.address.timeouts.connection;
        let opened = tokio::time::timeout(timeout, self.connect_and_greet()).await.unwrap_or_else(|_| {
            Err(Unopened::Unreachable(StoreError::backend(
                "redis",
                format!("cannot connect within {} ms", timeout.as_millis()),
            )))
        });
        if opened.is_err() {
            self.stream = None;
        }
        opened
    }

    async fn connect_and_greet(&mut self) -> std::result::Result<(), Unopened> {
        let unreachable = |e: io::Error| Unopened::Unreachable(StoreError::backend("redis", e));
        let stream = match &self.address.info.addr {
            ConnectionAddr::Tcp(host, port) => {
                let tcp =
                    tokio::net::TcpStream::connect((host.as_str(), *port)).await.map_err(unreachable)?;
                tcp.set_nodelay(true).map_err(unreachable)?;
                Stream::Tcp(tcp)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                Stream::Unix(tokio::net::UnixStream::connect(path).await.map_err(unreachable)?)
            }
            other => {
                return Err(Unopened::Refused(StoreError::backend(
                    "redis",
                    format!("the dedup writer cannot open {other}"),
                )));
            }
        };
        self.stream = Some(stream);
        let greeting = greeting(&self.address.info);
        if greeting.is_empty() {
            return Ok(());
        }
        self.out = greeting.get_packed_pipeline();
        let mut values = Vec::new();
        self.round_trip(greeting.len(), &mut values).await.map_err(Unopened::Unreachable)?;
        match values.into_iter().find_map(|v| v.extract_error().err()) {
            None => Ok(()),
            Some(e) => Err(Unopened::Refused(redis_err(e))),
        }
    }

    /// Sends `batch` on the open connection and reads its replies, within the response
    /// timeout; on any failure the connection is closed (the next batch opens another).
    async fn exchange(&mut self, batch: &[Command], values: &mut Vec<Value>) -> Result<()> {
        self.out.clear();
        for command in batch {
            self.packer.pack(command, &mut self.out);
        }
        let timeout = self.address.timeouts.response;
        let answered =
            tokio::time::timeout(timeout, self.round_trip(batch.len(), values)).await.unwrap_or_else(|_| {
                Err(StoreError::backend("redis", format!("no answer within {} ms", timeout.as_millis())))
            });
        match answered {
            Ok(()) => self.last_used = Some(std::time::Instant::now()),
            Err(_) => self.stream = None,
        }
        answered
    }

    /// Writes the commands packed in `out` and reads `count` replies into `values`.
    async fn round_trip(&mut self, count: usize, values: &mut Vec<Value>) -> Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(StoreError::backend("redis", "the dedup writer's connection is closed"));
        };
        stream.write_all(&self.out).await.map_err(io_err)?;
        read_replies(stream, &mut self.input, count, values).await
    }
}

/// The commands that greet Redis on a new connection: `AUTH` when the URL has a password
/// (with its user name, if any), `SELECT` when its database is not 0.
fn greeting(info: &ConnectionInfo) -> Pipeline {
    let mut greeting = Pipeline::new();
    if let Some(password) = &info.redis.password {
        let auth = greeting.cmd("AUTH");
        if let Some(user) = &info.redis.username {
            auth.arg(user);
        }
        auth.arg(password);
    }
    if info.redis.db != 0 {
        greeting.cmd("SELECT").arg(info.redis.db);
    }
    greeting
}

/// Reads `count` replies from `stream` into `values` (appended), with `input` as the buffer.
async fn read_replies(
    stream: &mut Stream,
    input: &mut Vec<u8>,
    count: usize,
    values: &mut Vec<Value>,
) -> Result<()> {
    let count = values.len() + count;
    values.reserve(count);
    input.clear();
    let mut at = 0;
    loop {
        while values.len() < count {
            let Some(len) = frame(&input[at..], 0)? else { break };
            values.push(decode(&input[at..at + len])?);
            at += len;
        }
        if values.len() == count {
            if at < input.len() {
                return Err(protocol("more replies than commands"));
            }
            return Ok(());
        }
        input.drain(..at);
        at = 0;
        input.reserve(READ_CHUNK);
        if stream.read_buf(input).await.map_err(io_err)? == 0 {
            return Err(StoreError::backend("redis", "the connection was closed by redis"));
        }
    }
}

/// The length of the first reply in `buf` (RESP2: `+`, `-`, `:`, `$`, `*`), or `None` while
/// it has not all arrived.
fn frame(buf: &[u8], depth: usize) -> Result<Option<usize>> {
    let Some(&kind) = buf.first() else { return Ok(None) };
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let head = eol + 2;
    match kind {
        b'+' | b'-' | b':' => Ok(Some(head)),
        b'$' => match length(&buf[1..eol])? {
            None => Ok(Some(head)),
            Some(n) if n > MAX_BULK => Err(protocol("a bulk string longer than redis sends")),
            Some(n) => Ok((buf.len() >= head + n + 2).then_some(head + n + 2)),
        },
        b'*' => {
            if depth >= MAX_DEPTH {
                return Err(protocol("arrays nested too deep"));
            }
            let mut at = head;
            for _ in 0..length(&buf[1..eol])?.unwrap_or(0) {
                match frame(&buf[at..], depth + 1)? {
                    Some(len) => at += len,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        _ => Err(protocol("a reply of an unknown type")),
    }
}

/// The length on a `$` or `*` line: `None` for `-1` (nil).
fn length(line: &[u8]) -> Result<Option<usize>> {
    if line == b"-1" {
        return Ok(None);
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| protocol("a length that is not a number"))
}

/// The value of one whole reply, as the redis crate's parser reads it (the common replies
/// read here, the rest by that parser).
fn decode(reply: &[u8]) -> Result<Value> {
    let body = |r: &[u8]| -> Option<Vec<u8>> {
        let start = r.iter().position(|&b| b == b'\n')? + 1;
        Some(r.get(start..r.len().checked_sub(2)?)?.to_vec())
    };
    let fast = match reply {
        b"$-1\r\n" => Some(Value::Nil),
        b"+OK\r\n" => Some(Value::Okay),
        [b'$', ..] => body(reply).map(Value::BulkString),
        [b':', digits @ .., b'\r', b'\n'] => {
            std::str::from_utf8(digits).ok().and_then(|d| d.parse::<i64>().ok()).map(Value::Int)
        }
        _ => None,
    };
    match fast {
        Some(value) => Ok(value),
        None => ::redis::parse_redis_value(reply).map_err(redis_err),
    }
}

fn protocol(what: &str) -> StoreError {
    StoreError::backend("redis", format!("unexpected reply from redis: {what}"))
}

fn io_err(e: io::Error) -> StoreError {
    StoreError::backend("redis", e)
}

/// The socket.
enum Stream {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// Whether the other end has not closed it (nothing is waiting to be read on an open
    /// connection between batches: anything there, or an error, means it cannot be used).
    fn still_open(&self) -> bool {
        let mut byte = [0; 1];
        let read = match self {
            Self::Tcp(s) => s.try_read(&mut byte),
            #[cfg(unix)]
            Self::Unix(s) => s.try_read(&mut byte),
        };
        matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(bytes).await,
            #[cfg(unix)]
            Self::Unix(s) => s.write_all(bytes).await,
        }
    }

    async fn read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read_buf(buf).await,
            #[cfg(unix)]
            Self::Unix(s) => s.read_buf(buf).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply the writer's commands get, and some they never do.
    const REPLIES: &[&[u8]] = &[
        b"$-1\r\n",
        b"+OK\r\n",
        b"+QUEUED\r\n",
        b"$1\r\nI\r\n",
        b"$0\r\n\r\n",
        b"$13\r\nDhello\r\nworld\r\n",
        b":0\r\n",
        b":1\r\n",
        b":-42\r\n",
        b"-ERR syntax error\r\n",
        b"-NOSCRIPT No matching script\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        b"*0\r\n",
        b"*-1\r\n",
        b"*3\r\n$1\r\na\r\n:2\r\n*1\r\n$-1\r\n",
    ];

    #[test]
    fn replies_are_framed_whole_and_decoded_as_the_redis_crate_does() {
        for reply in REPLIES {
            assert_eq!(frame(reply, 0).unwrap(), Some(reply.len()), "{}", String::from_utf8_lossy(reply));
            assert_eq!(
                decode(reply).unwrap(),
                ::redis::parse_redis_value(reply).unwrap(),
                "{}",
                String::from_utf8_lossy(reply)
            );
            // Each shorter prefix is incomplete, never a reply.
            for cut in 0..reply.len() {
                assert_eq!(
                    frame(&reply[..cut], 0).unwrap(),
                    None,
                    "{}",
                    String::from_utf8_lossy(&reply[..cut])
                );
            }
        }
    }

    #[test]
    fn replies_in_a_row_are_framed_one_at_a_time() {
        let all: Vec<u8> = REPLIES.concat();
        let mut at = 0;
        for reply in REPLIES {
            let len = frame(&all[at..], 0).unwrap().unwrap();
            assert_eq!(&all[at..at + len], *reply);
            at += len;
        }
        assert_eq!(at, all.len());
    }

    #[test]
    fn what_redis_never_sends_is_an_error_not_a_wait() {
        for bad in
            [&b"?x\r\n"[..], b"$x\r\n", b"$99999999999\r\n", b"*x\r\n", &b"*1\r\n".repeat(MAX_DEPTH + 1)]
        {
            assert!(frame(bad, 0).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    /// A batch's values are its own, whatever the buffer held (a batch that failed halfway
    /// leaves the replies read so far in it). Needs the Redis of `REDIS_URL` (default
    /// `redis://127.0.0.1:6379`); skipped when it does not answer.
    #[tokio::test]
    async fn a_batch_answers_only_its_own_commands() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let mut link = Link::new(&RedisConnection::lazy(&url).unwrap());
        let key = super::super::Key { prefix: "wemp-test:link:", kind: "dedup", key: "own-values" };
        let release = [Command::release(key)];
        if let Err(e) = link.send_into(&release, &mut Vec::new()).await {
            eprintln!("skipping: redis at {url}: {e}");
            return;
        }
        let mut values = vec![Value::Int(7), Value::Okay];
        link.send_into(&release, &mut values).await.unwrap();
        // The release of a key that does not exist deletes nothing.
        assert_eq!(values, [Value::Int(0)]);
    }

    #[test]
    fn the_greeting_authenticates_and_selects_as_the_url_says() {
        let info = |url: &str| url.parse::<ConnectionInfo>().unwrap();
        let packed = |p: Pipeline| String::from_utf8(p.get_packed_pipeline()).unwrap();
        assert!(greeting(&info("redis://127.0.0.1:6379")).is_empty());
        assert_eq!(packed(greeting(&info("redis://127.0.0.1:6379/3"))), "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n");
        assert_eq!(
            packed(greeting(&info("redis://:secret@127.0.0.1:6379"))),
            "*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"
        );
        assert_eq!(
            packed(greeting(&info("redis://app:secret@127.0.0.1:6379/1"))),
            "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\nsecret\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n"
        );
    }
}
