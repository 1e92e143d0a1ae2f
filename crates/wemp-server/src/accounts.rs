//! The accounts a service answers for, changed while it serves.
//!
//! A [`WechatService`](crate::WechatService) starts with the accounts given to its builder.
//! Accounts can be added and removed while it runs ([`LiveAccounts::add`],
//! [`LiveAccounts::remove`]): the set is rebuilt, checked by [`Accounts::new`] and swapped
//! whole, so each request is admitted by [`wemp_proto::admission::admit`] over one
//! consistent set and deliveries already running keep theirs.
//!
//! With an [`AccountSource`] (the authorizers of an Open Platform third-party platform,
//! kept in a store shared by several instances), a request for a path segment that no
//! account answers on asks the source once before it is refused, so an instance that
//! did not see an account being added still serves it. Those look-ups are rate-limited and
//! their misses remembered for a while, so junk paths cost no store round trip; and
//! [`LiveAccounts::refresh`] (run periodically by [`LiveAccounts::spawn_refresh`]) takes
//! the source's set as a whole, dropping accounts removed elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use wemp_proto::admission::{Account, Accounts, AccountsError};

use crate::handler::BoxError;

/// Where accounts added at run time come from: asked when a request names a path segment
/// that no account answers on, and for the whole set on [`LiveAccounts::refresh`].
#[async_trait::async_trait]
pub trait AccountSource: Send + Sync + 'static {
    /// The account answering on path segment `segment` now, if the source has one.
    ///
    /// # Errors
    /// The source cannot be read (the request is then refused as for an unknown account).
    async fn find(&self, segment: &str) -> Result<Option<Account>, BoxError>;

    /// Every account the source has now.
    ///
    /// # Errors
    /// The source cannot be read (the accounts in service are then kept).
    async fn all(&self) -> Result<Vec<Account>, BoxError>;
}

/// How long a segment that the source did not know is answered without asking it again.
const MISS_TTL: Duration = Duration::from_secs(30);
/// How many unknown segments are remembered (then the memory starts over).
const MISS_CAPACITY: usize = 10_000;
/// How many look-ups the source gets per second at most, all segments together.
const LOOKUPS_PER_SECOND: u32 = 20;
/// The longest segment looked up (an appid has 18 characters).
const SEGMENT_LIMIT: usize = 64;

/// The accounts of a running service: the builder's, plus those added while it serves.
/// Cheap to clone; every clone changes the same set. Get it with
/// [`WechatService::accounts`](crate::WechatService::accounts).
#[derive(Clone)]
pub struct LiveAccounts {
    inner: Arc<Registry>,
}

struct Registry {
    /// The builder's accounts, always served, first.
    fixed: Vec<Account>,
    /// The accounts added at run time, by appid.
    added: Mutex<BTreeMap<Box<str>, Account>>,
    /// The set in effect (`None` while it is empty).
    current: RwLock<Option<Arc<Accounts>>>,
    source: Option<Arc<dyn AccountSource>>,
    misses: Mutex<Misses>,
}

#[derive(Default)]
struct Misses {
    /// Segments the source did not know, and when it said so.
    unknown: HashMap<Box<str>, Instant>,
    /// The current second of the look-up budget and what is left of it.
    window: Option<Instant>,
    left: u32,
}

impl std::fmt::Debug for LiveAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAccounts")
            .field("current", &self.current())
            .field("source", &self.inner.source.is_some())
            .finish()
    }
}

/// Why an account cannot be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// It would answer on the path segment of another account, or repeat an appid.
    #[error("cannot add account {appid}: {source}")]
    Clash {
        /// The account's appid.
        appid: String,
        /// What [`Accounts::new`] refused.
        #[source]
        source: AccountsError,
    },
}

/// Why no account answers a request (the server answers 404 with this reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unknown {
    pub(crate) segment: String,
    pub(crate) why: &'static str,
}

impl LiveAccounts {
    /// Starts with `fixed` (checked with [`Accounts::new`] unless empty) and, optionally, a
    /// source of accounts added at run time.
    pub(crate) fn new(
        fixed: Vec<Account>,
        source: Option<Arc<dyn AccountSource>>,
    ) -> Result<Self, AccountsError> {
        let current = if fixed.is_empty() { None } else { Some(Arc::new(Accounts::new(fixed.clone())?)) };
        Ok(Self {
            inner: Arc::new(Registry {
                fixed,
                added: Mutex::default(),
                current: RwLock::new(current),
                source,
                misses: Mutex::default(),
            }),
        })
    }

    /// The set in effect now (`None` while no account is configured or added).
    pub fn current(&self) -> Option<Arc<Accounts>> {
        self.inner.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The account with this appid, when it is served now.
    pub fn get(&self, appid: &str) -> Option<Arc<Account>> {
        self.current().and_then(|a| a.by_appid(appid).cloned())
    }

    /// Adds `account`, or replaces the added account with its appid (a new key, say).
    ///
    /// # Errors
    /// [`AddError::Clash`] when it would answer on another account's path segment or is
    /// one of the builder's accounts; the set in effect is then unchanged.
    pub fn add(&self, account: Account) -> Result<(), AddError> {
        let mut added = self.inner.added.lock().unwrap_or_else(|e| e.into_inner());
        let appid: Box<str> = account.appid().into();
        let previous = added.insert(appid.clone(), account);
        if let Err(source) = self.publish(&added) {
            match previous {
                Some(p) => added.insert(appid.clone(), p),
                None => added.remove(&appid),
            };
            return Err(AddError::Clash { appid: appid.into(), source });
        }
        drop(added);
        self.inner.misses.lock().unwrap_or_else(|e| e.into_inner()).unknown.remove(&*appid);
        Ok(())
    }

    /// Removes the added account with this appid; returns whether there was one (the
    /// builder's accounts are never removed).
    pub fn remove(&self, appid: &str) -> bool {
        let mut added = self.inner.added.lock().unwrap_or_else(|e| e.into_inner());
        if added.remove(appid).is_none() {
            return false;
        }
        // Fewer accounts cannot clash.
        let _ = self.publish(&added);
        true
    }

    /// The appids of the accounts added at run time, in order.
    pub fn added(&self) -> Vec<String> {
        self.inner.added.lock().unwrap_or_else(|e| e.into_inner()).keys().map(|k| k.to_string()).collect()
    }

    /// Takes the source's accounts as the added set (dropping those it no longer has);
    /// returns how many are served from it. Without a source, does nothing.
    ///
    /// # Errors
    /// The source cannot be read: the accounts in service are kept.
    pub async fn refresh(&self) -> Result<usize, BoxError> {
        let Some(source) = &self.inner.source else { return Ok(0) };
        let accounts = source.all().await?;
        let mut added = self.inner.added.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::new();
        for a in accounts {
            next.insert(Box::<str>::from(a.appid()), a);
        }
        // One clashing account must not keep the others out: leave it out, and say so.
        loop {
            match self.publish(&next) {
                Ok(()) => break,
                Err(AccountsError::DuplicatePath { segment, .. }) => {
                    let Some(appid) =
                        next.values().find(|a| a.path() == segment).map(|a| a.appid().to_owned())
                    else {
                        break;
                    };
                    tracing::warn!(
                        appid,
                        segment,
                        "account from the source answers on a taken path segment; not served"
                    );
                    next.remove(appid.as_str());
                }
                Err(AccountsError::DuplicateAppid { appid, .. }) => {
                    tracing::warn!(
                        appid,
                        "account from the source is one of the configured accounts; not served twice"
                    );
                    next.remove(appid.as_str());
                }
                Err(_) => break,
            }
        }
        let n = next.len();
        *added = next;
        Ok(n)
    }

    /// Runs [`LiveAccounts::refresh`] every `period` until the returned task is aborted.
    pub fn spawn_refresh(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e, "cannot refresh the accounts from their source; keeping those in service");
                }
            }
        })
    }

    /// Rebuilds and swaps the set from the builder's accounts and `added`.
    fn publish(&self, added: &BTreeMap<Box<str>, Account>) -> Result<(), AccountsError> {
        let all: Vec<Account> = self.inner.fixed.iter().chain(added.values()).cloned().collect();
        let next = if all.is_empty() { None } else { Some(Arc::new(Accounts::new(all)?)) };
        *self.inner.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// The set a request for `path` is admitted over: the current one, after asking the
    /// source when a source is configured and no account answers on the path's last
    /// segment.
    pub(crate) async fn for_path(&self, path: &str) -> Result<Arc<Accounts>, Unknown> {
        let current = self.current();
        // The last segment, looked for only where it is used: with no source, in the refusal of
        // a server with no account (callgrind: ~180 instructions a request for nothing).
        let segment = || path.rsplit('/').find(|s| !s.is_empty());
        let Some(source) = &self.inner.source else {
            return current
                .ok_or_else(|| Unknown { segment: segment().unwrap_or_default().into(), why: "none" });
        };
        let Some(segment) = segment() else {
            return current.ok_or(Unknown { segment: String::new(), why: "none" });
        };
        if let Some(c) = &current
            && c.iter().any(|a| a.path() == segment)
        {
            return Ok(c.clone());
        }
        if segment.len() > SEGMENT_LIMIT
            || !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Unknown { segment: segment.into(), why: "malformed" });
        }
        if !self.may_look_up(segment) {
            return Err(Unknown { segment: segment.into(), why: "unknown" });
        }
        match source.find(segment).await {
            Ok(Some(account)) if account.path() == segment => {
                let appid = account.appid().to_owned();
                if let Err(e) = self.add(account) {
                    tracing::warn!(error = %e, "account from the source cannot be served");
                    return Err(Unknown { segment: segment.into(), why: "clash" });
                }
                tracing::info!(appid, "account loaded from its source on first request");
                self.current().ok_or(Unknown { segment: segment.into(), why: "none" })
            }
            Ok(_) => {
                self.remember_miss(segment);
                Err(Unknown { segment: segment.into(), why: "unknown" })
            }
            Err(e) => {
                tracing::warn!(error = %e, segment, "cannot ask the account source");
                Err(Unknown { segment: segment.into(), why: "source" })
            }
        }
    }

    /// Whether `segment` may be looked up now: not a recent miss, and within the budget.
    fn may_look_up(&self, segment: &str) -> bool {
        let now = Instant::now();
        let mut m = self.inner.misses.lock().unwrap_or_else(|e| e.into_inner());
        if m.unknown.get(segment).is_some_and(|at| now.duration_since(*at) < MISS_TTL) {
            return false;
        }
        if m.window.is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1)) {
            m.window = Some(now);
            m.left = LOOKUPS_PER_SECOND;
        }
        if m.left == 0 {
            return false;
        }
        m.left -= 1;
        true
    }

    fn remember_miss(&self, segment: &str) {
        let mut m = self.inner.misses.lock().unwrap_or_else(|e| e.into_inner());
        if m.unknown.len() >= MISS_CAPACITY {
            m.unknown.clear();
        }
        m.unknown.insert(segment.into(), Instant::now());
    }
}

impl Unknown {
    /// The refusal's message.
    pub(crate) fn message(&self) -> String {
        let seg = &self.segment;
        match self.why {
            "malformed" => format!("no account answers at path segment {seg:?}: not an appid"),
            "source" => format!(
                "no account answers at path segment {seg:?} now: the account source cannot be read (see the server log)"
            ),
            "clash" => format!("account {seg:?} clashes with a configured account (see the server log)"),
            "none" => "no account is configured or authorized yet".to_owned(),
            _ => format!(
                "no account answers at path segment {seg:?}: it is neither a configured account nor one the \
                 account source (the authorizers of the third-party platform) knows"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Source {
        known: Mutex<Vec<Account>>,
        asked: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl AccountSource for Source {
        async fn find(&self, segment: &str) -> Result<Option<Account>, BoxError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(self.known.lock().unwrap().iter().find(|a| a.path() == segment).cloned())
        }
        async fn all(&self) -> Result<Vec<Account>, BoxError> {
            Ok(self.known.lock().unwrap().clone())
        }
    }

    fn source(known: Vec<Account>) -> Arc<Source> {
        Arc::new(Source { known: Mutex::new(known), asked: AtomicUsize::new(0) })
    }

    #[tokio::test]
    async fn added_accounts_are_served_and_removed_while_the_fixed_stay() {
        let live = LiveAccounts::new(vec![Account::new("wxfixed", "tok").with_path("wechat")], None).unwrap();
        live.add(Account::new("wxa", "ctok")).unwrap();
        let set = live.for_path("/wechat/wxa").await.unwrap();
        assert_eq!(set.by_path("/wechat/wxa").unwrap().appid(), "wxa");
        assert_eq!(set.by_path("/wechat").unwrap().appid(), "wxfixed");
        // A clash leaves the set as it was.
        let err = live.add(Account::new("wxb", "ctok").with_path("wechat")).unwrap_err();
        assert!(err.to_string().contains("wxb"), "{err}");
        assert_eq!(live.current().unwrap().len(), 2);
        assert!(live.remove("wxa"));
        assert!(!live.remove("wxfixed"), "the builder's accounts stay");
        assert_eq!(live.current().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_miss_asks_the_source_once_and_remembers_what_it_did_not_know() {
        let src = source(vec![Account::new("wxauth", "ctok")]);
        let live = LiveAccounts::new(Vec::new(), Some(src.clone())).unwrap();
        assert!(live.current().is_none());
        let set = live.for_path("/wechat/wxauth").await.unwrap();
        assert_eq!(set.by_appid("wxauth").unwrap().path(), "wxauth");
        live.for_path("/wechat/wxauth").await.unwrap();
        assert_eq!(src.asked.load(Ordering::SeqCst), 1, "found once, then served from the set");
        let miss = live.for_path("/wechat/wxjunk").await.unwrap_err();
        assert_eq!(miss.why, "unknown");
        assert!(miss.message().contains("wxjunk"), "{}", miss.message());
        live.for_path("/wechat/wxjunk").await.unwrap_err();
        assert_eq!(src.asked.load(Ordering::SeqCst), 2, "a miss is remembered");
        let junk = live.for_path("/wechat/%3Cscript%3E").await.unwrap_err();
        assert_eq!(junk.why, "malformed");
        assert_eq!(src.asked.load(Ordering::SeqCst), 2, "junk never reaches the source");
        // Many distinct segments at once: the source is asked at most its budget.
        for i in 0..100 {
            let _ = live.for_path(&format!("/wechat/wx{i}")).await;
        }
        assert!(src.asked.load(Ordering::SeqCst) <= 2 + LOOKUPS_PER_SECOND as usize);
    }

    #[tokio::test]
    async fn refresh_takes_the_sources_set_and_leaves_out_a_clash() {
        let src = source(vec![Account::new("wx1", "ctok"), Account::new("wx2", "ctok")]);
        let live =
            LiveAccounts::new(vec![Account::new("wxfixed", "tok").with_path("wechat")], Some(src.clone()))
                .unwrap();
        assert_eq!(live.refresh().await.unwrap(), 2);
        assert_eq!(live.added(), ["wx1", "wx2"]);
        *src.known.lock().unwrap() =
            vec![Account::new("wx2", "ctok"), Account::new("wx3", "ctok").with_path("wechat")];
        assert_eq!(live.refresh().await.unwrap(), 1, "wx1 was removed elsewhere; wx3 clashes");
        assert_eq!(live.added(), ["wx2"]);
        assert_eq!(live.current().unwrap().by_path("/wechat").unwrap().appid(), "wxfixed");
    }
}
