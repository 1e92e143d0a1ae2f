//! Dedup of WeChat's retries and the cache of finished replies.
//!
//! WeChat retries a POST that got no answer within 5 seconds, up to three tries in all, and
//! retries may land on different instances. The server claims each delivery's key before
//! running a handler: the first claim wins ([`Claim::New`]); a claim while the winner runs
//! sees [`Claim::InFlight`] and waits for the result with [`DedupStore::wait`]; a claim after
//! it finished gets the stored reply ([`Claim::Done`]).
//!
//! A store that answers without waiting (the memory store) also answers a claim and a
//! completion at once, with no future: [`DedupStore::claim_ticket_now`] and
//! [`DedupStore::complete_claimed_now`] give `Some(answer)`, or `None` (the default) for
//! "ask the async method". The server tries them first, so a delivery on the memory store
//! makes no boxed future for its claim and its completion. A store that writes completions
//! behind (the Redis store while Redis answers, and a `FallbackDedupStore` over it) completes
//! at once too: no boxed future and no timer for the completion.

use std::time::Duration;

use tokio::time::Instant;

use crate::Result;

/// The outcome of claiming a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody had this key: the caller owns it and must [`DedupStore::complete`] or
    /// [`DedupStore::release`] it.
    New,
    /// Another delivery of the same message is being handled now.
    InFlight,
    /// The message was handled; this is the reply that was sent (plain XML or `success`).
    Done(String),
}

/// What a store may hand back with a claim so that completing it costs less: for
/// [`MemoryDedupStore`](crate::memory::MemoryDedupStore), the key's keyed fingerprint, so
/// that [`DedupStore::complete_claimed`] does not hash the key a second time, and where the
/// claim left the key, so that it need not look the key up. Opaque: only the store that
/// made it reads it, and any other store ignores it. Two tickets are equal when they stand
/// for the same key in the same store (where the key was is only a hint).
#[derive(Clone, Copy, Default)]
pub struct Ticket {
    /// The store that made it (0: none).
    pub(crate) store: u64,
    pub(crate) fingerprint: [u64; 2],
    /// Where the key was when the ticket was made (the memory store's slot number); checked
    /// before it is used.
    pub(crate) slot: u32,
}

impl Ticket {
    /// No ticket: the store works from the key.
    pub const NONE: Self = Self { store: 0, fingerprint: [0; 2], slot: 0 };
}

impl PartialEq for Ticket {
    fn eq(&self, other: &Self) -> bool {
        (self.store, self.fingerprint) == (other.store, other.fingerprint)
    }
}

impl Eq for Ticket {}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.store == 0 { "Ticket(none)" } else { "Ticket(..)" })
    }
}

/// Claims, completions and waits, shared by every delivery of a message.
///
/// Keys arrive fully namespaced by the caller (`<appid>:msg:<openid>:<msgid>`).
#[async_trait::async_trait]
pub trait DedupStore: Send + Sync + 'static {
    /// Claims `key`. An in-flight claim expires after `in_flight_ttl` (so a crashed owner
    /// does not block the key forever).
    async fn claim(&self, key: &str, in_flight_ttl: Duration) -> Result<Claim>;

    /// [`DedupStore::claim`] as a future of the store's own type, not boxed: for a caller that
    /// knows the store's type, such as a [`FallbackDedupStore`](crate::FallbackDedupStore)
    /// over it, which then holds the claim in its own future instead of allocating one a
    /// claim. Answers as `claim` does. The default is `claim` (boxed);
    /// `redis::RedisDedupStore` overrides it.
    fn claim_unboxed(&self, key: &str, in_flight_ttl: Duration) -> impl Future<Output = Result<Claim>> + Send
    where
        Self: Sized,
    {
        async move { self.claim(key, in_flight_ttl).await }
    }

    /// Stores the reply that was sent for `key`, kept for at least `ttl`, and wakes waiters.
    ///
    /// A store may write it behind (`redis::RedisDedupStore` does while
    /// Redis answers): it returns once the reply is queued, and until the write lands a
    /// claim of the key elsewhere still sees [`Claim::InFlight`] (and waits for the reply)
    /// where it would see [`Claim::Done`]. [`DedupStore::flush`] waits for such writes.
    async fn complete(&self, key: &str, reply: &str, ttl: Duration) -> Result<()>;

    /// [`DedupStore::claim`], with a [`Ticket`] for [`DedupStore::complete_claimed`]. The
    /// default gives [`Ticket::NONE`]; the memory store gives the key's fingerprint.
    async fn claim_ticket(&self, key: &str, in_flight_ttl: Duration) -> Result<(Claim, Ticket)> {
        Ok((self.claim(key, in_flight_ttl).await?, Ticket::NONE))
    }

    /// [`DedupStore::complete`], given the [`Ticket`] that claiming `key` gave (the default
    /// ignores it). Pass only the ticket of this key's claim: a store that reads its ticket
    /// completes the key the ticket stands for.
    async fn complete_claimed(&self, key: &str, ticket: Ticket, reply: &str, ttl: Duration) -> Result<()> {
        let _ = ticket;
        self.complete(key, reply, ttl).await
    }

    /// [`DedupStore::claim_ticket`] answered at once, without a future, by a store that
    /// can: `Some` with what `claim_ticket` would give (the claim is made), or `None`
    /// when the store must wait for the answer (nothing is done: call `claim_ticket`).
    ///
    /// The default is `None`, so a store that implements only the async methods works as
    /// before; [`MemoryDedupStore`](crate::memory::MemoryDedupStore) always answers. A store
    /// that answers here answers as `claim_ticket` would (they share their code), and a
    /// caller may use either for any claim. The server calls this first and
    /// `claim_ticket` only on `None`:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use wemp_store::{Claim, DedupStore, Result, Ticket};
    /// async fn claim(store: &dyn DedupStore, key: &str, ttl: Duration) -> Result<(Claim, Ticket)> {
    ///     match store.claim_ticket_now(key, ttl) {
    ///         Some(answered) => answered,
    ///         None => store.claim_ticket(key, ttl).await,
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// `Some(Err(_))` when the store answered at once with a failure, as `claim_ticket`
    /// would have.
    fn claim_ticket_now(&self, key: &str, in_flight_ttl: Duration) -> Option<Result<(Claim, Ticket)>> {
        let _ = (key, in_flight_ttl);
        None
    }

    /// [`DedupStore::complete_claimed`] done at once, without a future, by a store that can:
    /// `Some` once the reply is stored (as `complete_claimed` would store it, waiters woken),
    /// or `None` when the store must wait (nothing is done: call `complete_claimed`).
    ///
    /// The default is `None`; [`MemoryDedupStore`](crate::memory::MemoryDedupStore) always
    /// completes here, `redis::RedisDedupStore` queues the reply for its writer here while
    /// Redis answers (as `complete_claimed` would), and a
    /// [`FallbackDedupStore`](crate::FallbackDedupStore) over the two completes here while
    /// its primary answers. As with [`DedupStore::claim_ticket_now`], the server calls this
    /// first and `complete_claimed` only on `None`.
    ///
    /// `now` is the caller's reading of tokio's clock, taken moments before (the server's
    /// is when the handler ended, read for its latency anyway): a store that keeps its own
    /// expiry times counts `ttl` from it instead of reading the clock again (the memory
    /// store; tokio's clock, so that a test's paused time holds). The others ignore it.
    ///
    /// # Errors
    ///
    /// `Some(Err(_))` when the store failed at once, as `complete_claimed` would have.
    fn complete_claimed_now(
        &self,
        key: &str,
        ticket: Ticket,
        reply: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<Result<()>> {
        let _ = (key, ticket, reply, ttl, now);
        None
    }

    /// Gives up a claim without a reply (so a later retry runs the handler again).
    async fn release(&self, key: &str) -> Result<()>;

    /// Waits up to `timeout` for `key` to be completed; `None` if it was not (or was
    /// released) by then.
    async fn wait(&self, key: &str, timeout: Duration) -> Result<Option<String>>;

    /// Waits until every completion made before this call is stored (see
    /// [`DedupStore::complete`]); at once for a store that writes in place (the default).
    /// The server calls it when it drains at shutdown.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
