use std::sync::Arc;

use redis::aio::ConnectionManager;
use wemp_store::redis::{RedisConnection, RedisDedupStore, RedisSessionStore, RedisTokenStore};

use crate::suite;

/// Two connections to the test Redis, made from its URL (so a dedup store's writer opens a
/// connection of its own), and a fresh key prefix; `None` (with a note on stderr) if no Redis
/// answers.
async fn connect(test: &str) -> Option<(RedisConnection, RedisConnection, String)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    connect_by(test, RedisConnection::connect(&url), RedisConnection::connect(&url)).await
}

/// As [`connect`], but bare connection managers: a dedup store's writer shares them.
async fn connect_shared(test: &str) -> Option<(ConnectionManager, ConnectionManager, String)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    connect_by(test, wemp_store::redis::connect(&url), wemp_store::redis::connect(&url)).await
}

async fn connect_by<C>(
    test: &str,
    a: impl Future<Output = wemp_store::Result<C>>,
    b: impl Future<Output = wemp_store::Result<C>>,
) -> Option<(C, C, String)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let connect = async { Ok::<_, wemp_store::StoreError>((a.await?, b.await?)) };
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok((a, b))) => Some((a, b, format!("wemp-test:{test}:{:016x}:", rand::random::<u64>()))),
        Ok(Err(e)) => {
            eprintln!("skipping redis test {test}: cannot connect to {url}: {e}");
            None
        }
        Err(_) => {
            eprintln!("skipping redis test {test}: {url} did not answer within 5 s");
            None
        }
    }
}

/// Deletes every key under `prefix`.
async fn cleanup(conn: impl Into<RedisConnection>, prefix: &str) {
    let mut conn = conn.into().get().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
    let left: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn dedup() {
    let Some((a, b, prefix)) = connect("dedup").await else { return };
    suite::dedup(
        Arc::new(RedisDedupStore::new(a.clone(), &prefix)),
        Arc::new(RedisDedupStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// The same over bare connection managers: the writer sends its pipelines through the
/// shared connection.
#[tokio::test(flavor = "multi_thread")]
async fn dedup_over_a_shared_connection() {
    let Some((a, b, prefix)) = connect_shared("dedup-shared").await else { return };
    suite::dedup(
        Arc::new(RedisDedupStore::new(a.clone(), &prefix)),
        Arc::new(RedisDedupStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token() {
    let Some((a, b, prefix)) = connect("token").await else { return };
    suite::token_store(
        Arc::new(RedisTokenStore::new(a.clone(), &prefix)),
        Arc::new(RedisTokenStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session() {
    let Some((a, b, prefix)) = connect("session").await else { return };
    suite::session(
        Arc::new(RedisSessionStore::new(a.clone(), &prefix)),
        Arc::new(RedisSessionStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// With completions written in place (no queue), the contract holds as it does for a store
/// that queues them.
#[tokio::test(flavor = "multi_thread")]
async fn dedup_with_completions_written_in_place() {
    let Some((a, b, prefix)) = connect("dedup-in-place").await else { return };
    suite::dedup(
        Arc::new(RedisDedupStore::new(a.clone(), &prefix).completion_queue(0)),
        Arc::new(RedisDedupStore::new(b, &prefix).completion_queue(0)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// A completion written behind reaches another instance without a flush: a retry there sees
/// the reply, or the key in flight and then the reply by waiting. With a queue of one, most
/// completions find it full and are written in place: none is lost either way.
#[tokio::test(flavor = "multi_thread")]
async fn completions_written_behind_reach_other_instances() {
    use std::time::Duration;
    use wemp_store::{Claim, DedupStore};
    let Some((a, b, prefix)) = connect("write-behind").await else { return };
    let minute = Duration::from_secs(60);
    let (one, two) = (RedisDedupStore::new(a.clone(), &prefix), RedisDedupStore::new(b.clone(), &prefix));
    for n in 0..50 {
        let k = format!("wx1:msg:o1:{n}");
        assert_eq!(one.claim(&k, minute).await.unwrap(), Claim::New);
        one.complete(&k, &format!("reply {n}"), minute).await.unwrap();
        match two.claim(&k, minute).await.unwrap() {
            Claim::Done(reply) => assert_eq!(reply, format!("reply {n}")),
            Claim::InFlight => {}
            Claim::New => panic!("a completed key was claimed again"),
        }
        assert_eq!(two.wait(&k, Duration::from_secs(5)).await.unwrap(), Some(format!("reply {n}")));
    }

    let tiny = Arc::new(RedisDedupStore::new(a.clone(), &prefix).completion_queue(1));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let s = tiny.clone();
        tasks.spawn(async move {
            let k = format!("wx1:msg:o2:{n}");
            assert_eq!(s.claim(&k, minute).await.unwrap(), Claim::New);
            s.complete(&k, &format!("reply {n}"), minute).await.unwrap();
        });
    }
    tasks.join_all().await;
    tiny.flush().await.unwrap();
    for n in 0..200 {
        let k = format!("wx1:msg:o2:{n}");
        assert_eq!(two.claim(&k, minute).await.unwrap(), Claim::Done(format!("reply {n}")));
    }
    cleanup(a, &prefix).await;
}

/// Claims made at once are sent in pipelines, several a round trip: of many concurrent claims
/// of one key, on two instances, exactly one is new, whatever batches they travel in; each
/// key's claims are independent of the others'.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_claims_of_the_same_and_different_keys() {
    let Some((a, b, prefix)) = connect("concurrent-claims").await else { return };
    concurrent_claims(RedisDedupStore::new(a.clone(), &prefix), RedisDedupStore::new(b, &prefix)).await;
    cleanup(a, &prefix).await;
}

/// The same through shared connections.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_claims_over_shared_connections() {
    let Some((a, b, prefix)) = connect_shared("concurrent-claims-shared").await else { return };
    concurrent_claims(RedisDedupStore::new(a.clone(), &prefix), RedisDedupStore::new(b, &prefix)).await;
    cleanup(a, &prefix).await;
}

async fn concurrent_claims(one: RedisDedupStore, two: RedisDedupStore) {
    use std::time::Duration;
    use wemp_store::{Claim, DedupStore};
    let minute = Duration::from_secs(60);
    let (one, two) = (Arc::new(one), Arc::new(two));
    let mut claims = tokio::task::JoinSet::new();
    for n in 0..100 {
        for claimer in 0..8 {
            let store = if claimer % 2 == 0 { one.clone() } else { two.clone() };
            claims.spawn(async move {
                let k = format!("wx1:msg:o1:{n}");
                let claim = store.claim(&k, minute).await.unwrap();
                (n, claimer, claim)
            });
        }
    }
    let mut winners = vec![Vec::new(); 100];
    for (n, claimer, claim) in claims.join_all().await {
        match claim {
            Claim::New => winners[n].push(claimer),
            Claim::InFlight => {}
            Claim::Done(reply) => panic!("nothing was completed, yet key {n} held {reply:?}"),
        }
    }
    for (n, w) in winners.iter().enumerate() {
        assert_eq!(w.len(), 1, "key {n}: claims won by {w:?}");
    }
    // Each key's winner completes; every claim then gets its reply.
    for (n, w) in winners.iter().enumerate() {
        let store = if w[0] % 2 == 0 { &one } else { &two };
        store.complete(&format!("wx1:msg:o1:{n}"), &format!("reply {n}"), minute).await.unwrap();
    }
    one.flush().await.unwrap();
    two.flush().await.unwrap();
    for n in 0..100 {
        let k = format!("wx1:msg:o1:{n}");
        assert_eq!(one.claim(&k, minute).await.unwrap(), Claim::Done(format!("reply {n}")));
        assert_eq!(two.claim(&k, minute).await.unwrap(), Claim::Done(format!("reply {n}")));
    }
}

/// Claims and completions go to Redis in the order they were made on one instance: a claim
/// made after a completion of the same key, which is still queued, gets the reply without a
/// flush.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_after_a_queued_completion_gets_the_reply() {
    use std::time::Duration;
    use wemp_store::{Claim, DedupStore};
    let Some((a, _, prefix)) = connect("claim-after-completion").await else { return };
    let minute = Duration::from_secs(60);
    let store = Arc::new(RedisDedupStore::new(a.clone(), &prefix));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let s = store.clone();
        tasks.spawn(async move {
            let k = format!("wx1:msg:o1:{n}");
            assert_eq!(s.claim(&k, minute).await.unwrap(), Claim::New);
            s.complete(&k, &format!("reply {n}"), minute).await.unwrap();
            assert_eq!(s.claim(&k, minute).await.unwrap(), Claim::Done(format!("reply {n}")));
        });
    }
    tasks.join_all().await;
    cleanup(a, &prefix).await;
}

/// Stores with different prefixes on one Redis never see each other's keys.
#[tokio::test(flavor = "multi_thread")]
async fn prefixes_isolate() {
    let Some((a, b, prefix)) = connect("prefixes").await else { return };
    let one = RedisDedupStore::new(a.clone(), format!("{prefix}one:"));
    let two = RedisDedupStore::new(b, format!("{prefix}two:"));
    let minute = std::time::Duration::from_secs(60);
    use wemp_store::{Claim, DedupStore};
    assert_eq!(one.claim("wx1:msg:o1:1", minute).await.unwrap(), Claim::New);
    assert_eq!(two.claim("wx1:msg:o1:1", minute).await.unwrap(), Claim::New);
    cleanup(a, &prefix).await;
}

/// The fallback wrapper over Redis, as the server runs it: two instances, each with its
/// own memory fallback, sharing Redis.
#[tokio::test(flavor = "multi_thread")]
async fn fallback_dedup() {
    use wemp_store::FallbackDedupStore;
    use wemp_store::memory::MemoryDedupStore;
    let Some((a, b, prefix)) = connect("fallback").await else { return };
    let instance =
        |conn| FallbackDedupStore::new(RedisDedupStore::new(conn, &prefix), MemoryDedupStore::default());
    let (one, two) = (Arc::new(instance(a.clone())), Arc::new(instance(b)));
    suite::dedup(one.clone(), two.clone()).await;
    assert!(!one.is_degraded() && !two.is_degraded());
    cleanup(a, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn component() {
    let Some((a, b, prefix)) = connect("component").await else { return };
    suite::component(
        Arc::new(RedisSessionStore::new(a.clone(), &prefix)),
        Arc::new(RedisSessionStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// An instance claiming with the Lua script (Redis before 7.0) and one claiming with `SET …
/// NX … GET` share their keys: each sees the other's claims and replies.
#[tokio::test(flavor = "multi_thread")]
async fn dedup_script_and_set_get_instances_together() {
    let Some((a, b, prefix)) = connect("dedup-script").await else { return };
    suite::dedup(
        Arc::new(RedisDedupStore::new(a.clone(), &prefix).claim_by_script()),
        Arc::new(RedisDedupStore::new(b, &prefix)),
    )
    .await;
    cleanup(a, &prefix).await;
}

/// Against a Redis that refuses `SET` with both `NX` and `GET` (as Redis before 7.0 does,
/// played by a proxy in front of the test Redis), claims fall back to the Lua script after
/// the first refusal, and keep the contract.
#[tokio::test(flavor = "multi_thread")]
async fn dedup_falls_back_to_a_script_where_set_nx_get_is_refused() {
    let Some((a, b, prefix)) = connect("dedup-old-redis").await else { return };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let old = old_redis::Proxy::start(&url).await;
    let through_old = RedisConnection::connect(&old.url()).await.unwrap();
    let store = Arc::new(RedisDedupStore::new(through_old, &prefix));
    suite::dedup(store.clone(), Arc::new(RedisDedupStore::new(b, &prefix))).await;
    assert_eq!(old.refused(), 1, "one refused SET … NX … GET, then the script");
    // The store keeps claiming by script.
    use wemp_store::{Claim, DedupStore};
    assert_eq!(store.claim("wx1:msg:o1:old", std::time::Duration::from_secs(60)).await.unwrap(), Claim::New);
    assert_eq!(old.refused(), 1);
    cleanup(a, &prefix).await;
}

/// A TCP proxy to a Redis that answers `SET` with both `NX` and `GET` with the syntax error
/// of Redis before 7.0, and forwards every other command.
mod old_redis {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    pub(crate) struct Proxy {
        port: u16,
        refused: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Proxy {
        pub(crate) async fn start(upstream_url: &str) -> Self {
            let info = redis::Client::open(upstream_url).unwrap().get_connection_info().clone();
            let redis::ConnectionAddr::Tcp(host, port) = info.addr else {
                panic!("the test Redis must be reached over TCP: {upstream_url}")
            };
            let upstream = format!("{host}:{port}");
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let refused = Arc::new(AtomicUsize::new(0));
            let counter = refused.clone();
            let task = tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let server = TcpStream::connect(&upstream).await.unwrap();
                    tokio::spawn(relay(client, server, counter.clone()));
                }
            });
            Self { port, refused, task }
        }

        pub(crate) fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// `SET … NX … GET` commands refused so far.
        pub(crate) fn refused(&self) -> usize {
            self.refused.load(Ordering::SeqCst)
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Commands one at a time: each forwarded and its reply relayed, or refused.
    async fn relay(client: TcpStream, server: TcpStream, refused: Arc<AtomicUsize>) {
        let (client_read, mut client_write) = client.into_split();
        let (server_read, mut server_write) = server.into_split();
        let (mut client_read, mut server_read) = (BufReader::new(client_read), BufReader::new(server_read));
        loop {
            let mut request = Vec::new();
            let mut args = Vec::new();
            if read_frame(&mut client_read, &mut request, &mut args).await.is_err() {
                return;
            }
            let is = |word: &str| args.iter().any(|a| a.eq_ignore_ascii_case(word.as_bytes()));
            let reply =
                if args.first().is_some_and(|c| c.eq_ignore_ascii_case(b"SET")) && is("NX") && is("GET") {
                    refused.fetch_add(1, Ordering::SeqCst);
                    b"-ERR syntax error\r\n".to_vec()
                } else {
                    let mut reply = Vec::new();
                    if server_write.write_all(&request).await.is_err()
                        || read_frame(&mut server_read, &mut reply, &mut Vec::new()).await.is_err()
                    {
                        return;
                    }
                    reply
                };
            if client_write.write_all(&reply).await.is_err() {
                return;
            }
        }
    }

    /// Reads one RESP2 value into `raw`, and its bulk strings into `bulks`.
    async fn read_frame(
        r: &mut (impl AsyncBufRead + Unpin),
        raw: &mut Vec<u8>,
        bulks: &mut Vec<Vec<u8>>,
    ) -> std::io::Result<()> {
        let mut left = 1i64;
        while left > 0 {
            left -= 1;
            let start = raw.len();
            if r.read_until(b'\n', raw).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = &raw[start..];
            let n: i64 = std::str::from_utf8(&line[1..line.len() - 2]).unwrap_or("0").parse().unwrap_or(0);
            match line[0] {
                b'*' => left += n.max(0),
                b'$' if n >= 0 => {
                    let mut data = vec![0; usize::try_from(n).unwrap() + 2];
                    r.read_exact(&mut data).await?;
                    raw.extend_from_slice(&data);
                    data.truncate(data.len() - 2);
                    bulks.push(data);
                }
                _ => {}
            }
        }
        Ok(())
    }
}
