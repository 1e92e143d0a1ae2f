//! The accounts the console plays WeChat for, with WeChat's side of each: the configured
//! ones ([`ConsoleConfig::accounts`](crate::ConsoleConfig::accounts)) and — once
//! [`Console::live_accounts`](crate::Console::live_accounts) names the server's registry —
//! those the server adds while it runs (a third-party platform's authorizers). The added
//! ones are read from the server's [`LiveAccounts`] whenever its set changed, never copied
//! into a list of the console's own.

use std::sync::{Arc, Mutex, OnceLock};

use wemp_client::callback::{Schedule, Simulator};
use wemp_proto::admission::Accounts;
use wemp_server::LiveAccounts;

use crate::config::ConsoleAccount;

/// The accounts played now, each with its WeChat side at the same index.
#[derive(Debug)]
pub(crate) struct Played {
    pub(crate) accounts: Arc<[ConsoleAccount]>,
    pub(crate) wechat: Vec<Simulator>,
}

/// The server's registry and where its accounts are reached.
struct Live {
    accounts: LiveAccounts,
    /// The callback URL the added accounts' path segments are appended to.
    endpoint: String,
}

/// The console's accounts: see the module's documentation.
pub(crate) struct AccountBook {
    configured: Arc<Played>,
    schedule: Schedule,
    live: OnceLock<Live>,
    /// The accounts played for the server's set last seen.
    seen: Mutex<Option<Seen>>,
}

/// The server's set of accounts (swapped whole on every change, so its pointer says whether
/// it changed) and the accounts played for it.
type Seen = (Option<Arc<Accounts>>, Arc<Played>);

impl std::fmt::Debug for AccountBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountBook")
            .field("configured", &self.configured.accounts.len())
            .field("live", &self.live.get().map(|l| &l.endpoint))
            .finish_non_exhaustive()
    }
}

impl AccountBook {
    pub(crate) fn new(configured: Played, schedule: Schedule) -> Self {
        Self { configured: Arc::new(configured), schedule, live: OnceLock::new(), seen: Mutex::default() }
    }

    /// Plays the accounts `accounts` adds at `endpoint/<segment>` too; `false` when a
    /// registry was named before (it stays).
    pub(crate) fn follow(&self, accounts: LiveAccounts, endpoint: String) -> bool {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        self.live.set(Live { accounts, endpoint }).is_ok()
    }

    /// The accounts played now: the configured ones first, then those the server added, in
    /// the order of their appids.
    pub(crate) fn now(&self) -> Arc<Played> {
        let Some(live) = self.live.get() else { return self.configured.clone() };
        let current = live.accounts.current();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((set, played)) = &*seen
            && same(set.as_ref(), current.as_ref())
        {
            return played.clone();
        }
        let played = Arc::new(self.with_added(live));
        *seen = Some((current, played.clone()));
        played
    }

    fn with_added(&self, live: &Live) -> Played {
        let mut accounts: Vec<ConsoleAccount> = self.configured.accounts.to_vec();
        let mut wechat = self.configured.wechat.clone();
        for appid in live.accounts.added() {
            let Some(account) = live.accounts.get(&appid) else { continue };
            let endpoint = format!("{}/{}", live.endpoint, account.path());
            let added = ConsoleAccount::new(endpoint, account);
            if accounts.iter().any(|a| a.id == added.id) {
                continue;
            }
            match crate::callback(&added, self.schedule) {
                Ok(w) => {
                    accounts.push(added);
                    wechat.push(w);
                }
                Err(e) => tracing::warn!(appid, error = %e, "the console cannot play this account"),
            }
        }
        Played { accounts: accounts.into(), wechat }
    }
}

fn same(a: Option<&Arc<Accounts>>, b: Option<&Arc<Accounts>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
