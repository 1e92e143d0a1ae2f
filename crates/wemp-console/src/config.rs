//! What the console needs to know: the accounts — where the bot listens for each and its
//! keys (to sign and encrypt like WeChat) —, test users, the menu, and who may open it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wemp_client::callback::Schedule;
use wemp_proto::admission::Account;
use wemp_proto::{Mode, Secret};

use crate::menu::Menu;

/// The default mount path of the console.
pub const DEFAULT_BASE_PATH: &str = "/console";

/// The environment variable holding the admin token.
pub const TOKEN_ENV: &str = "WEMP_CONSOLE_TOKEN";

/// Everything the console shows and needs to drive the bot.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// Where the console is mounted (`/console`); no trailing slash.
    pub base_path: String,
    /// The accounts the simulator can play WeChat for, each with its own callback URL and
    /// keys; the first is the default (what the page opens with, and what API calls
    /// without `account` use). At least one; their [`ConsoleAccount::id`]s are distinct.
    pub accounts: Vec<ConsoleAccount>,
    /// The users the chat simulator can speak as.
    pub users: Vec<TestUser>,
    /// The bottom menu, shown for every account.
    pub menu: Menu,
    /// Who may open the console.
    pub access: Access,
    /// WeChat's retry schedule as the simulator follows it (5 s × 3 tries).
    pub schedule: Schedule,
}

impl ConsoleConfig {
    /// A console for the bot at `endpoint` with `account`, mounted at `/console`, with
    /// three test users, no menu, WeChat's schedule, and access for loopback only
    /// ([`Access::Loopback`]). Add more accounts with [`ConsoleConfig::with_account`].
    pub fn new(endpoint: impl Into<String>, account: impl Into<Arc<Account>>) -> Self {
        Self::from_accounts(vec![ConsoleAccount::new(endpoint, account)])
    }

    /// [`ConsoleConfig::new`] for these accounts (the first is the default).
    pub fn from_accounts(accounts: Vec<ConsoleAccount>) -> Self {
        Self {
            base_path: DEFAULT_BASE_PATH.into(),
            accounts,
            users: TestUser::defaults(),
            menu: Menu::default(),
            access: Access::Loopback,
            schedule: Schedule::default(),
        }
    }

    /// Adds another account the page can switch to.
    #[must_use]
    pub fn with_account(mut self, account: ConsoleAccount) -> Self {
        self.accounts.push(account);
        self
    }

    /// The account named `id`, or the default (first) one when `id` is `None` or empty.
    pub fn account(&self, id: Option<&str>) -> Option<&ConsoleAccount> {
        match id.filter(|i| !i.is_empty()) {
            None => self.accounts.first(),
            Some(id) => self.accounts.iter().find(|a| a.id == id),
        }
    }
}

/// One account the console plays WeChat for: a view over the server's
/// [`Account`] — its keys, mode and original id are the
/// account's own, never copied — plus what only the console needs: the callback URL its
/// messages go to, the URL to paste into the WeChat console and a display name.
///
/// There is deliberately nothing here the page shows that the account does not have, and
/// the AppSecret the account may hold never reaches the page.
#[derive(Clone, Debug)]
pub struct ConsoleAccount {
    /// How the page, the API (`account=`) and the live log name the account. Records from
    /// the server ([`wemp_server::DeliveryRecord::appid`]) and the message log
    /// ([`wemp_store::DeliveryRecord::appid`]) are matched to the account with this id, so use
    /// the id the server knows the account by (its appid, the default).
    pub id: String,
    /// The bot's callback URL for this account as the simulator reaches it
    /// (`http://127.0.0.1:8080/wechat`). Its path also tells the live log which account
    /// a request is for.
    pub endpoint: String,
    /// The URL to paste into the WeChat console, as seen from outside (behind a proxy, on
    /// port 80/443); [`ConsoleAccount::endpoint`] when unset.
    pub public_url: Option<String>,
    /// A display name.
    pub name: Option<String>,
    account: Arc<Account>,
}

/// The `ToUserName` the simulator writes for an account without an original id.
pub const PLACEHOLDER_ORIGINAL_ID: &str = "gh_000000000000";

impl ConsoleAccount {
    /// The console's view of `account` at `endpoint`; its id is the appid (`default` when
    /// that is empty).
    pub fn new(endpoint: impl Into<String>, account: impl Into<Arc<Account>>) -> Self {
        let account = account.into();
        let id = match account.appid() {
            "" => "default".to_owned(),
            appid => appid.to_owned(),
        };
        Self { id, endpoint: endpoint.into(), public_url: None, name: None, account }
    }

    /// The same account with another id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The same account with a display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The account itself.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The mode messages are sent in: the account's declared mode, plain when undeclared.
    pub fn mode(&self) -> Mode {
        self.account.mode().unwrap_or(Mode::Plain)
    }

    /// The original id (`gh_…`) put in `ToUserName`: the account's, else
    /// [`PLACEHOLDER_ORIGINAL_ID`].
    pub fn original_id(&self) -> &str {
        self.account.original_id().unwrap_or(PLACEHOLDER_ORIGINAL_ID)
    }

    /// The third-party platform (its component appid) this account is an authorizer of:
    /// its messages are sealed with the platform's key for the platform's appid, not its
    /// own. `None` for an account of its own.
    pub fn component_appid(&self) -> Option<&str> {
        let sealed_for = self.account.cipher()?.appid();
        (sealed_for != self.account.appid()
            && self.account.kind() == wemp_proto::admission::Kind::OfficialAccount)
            .then_some(sealed_for)
    }

    /// The EncodingAESKey with all but its first and last 4 characters hidden.
    pub fn masked_aes_key(&self) -> Option<String> {
        self.account.aes_key().map(|k| mask(k.expose()))
    }

    /// The URL shown on the setup page.
    pub fn public_url(&self) -> &str {
        self.public_url.as_deref().unwrap_or(&self.endpoint)
    }

    /// The path of [`ConsoleAccount::endpoint`] (`/wechat`), without the query.
    pub fn path(&self) -> &str {
        url_path(&self.endpoint)
    }

    /// What the page calls the account: its name, else its original id, else its id.
    pub fn label(&self) -> &str {
        [self.name.as_deref(), self.account.original_id()]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .unwrap_or(&self.id)
    }
}

/// The path of a URL (`http://h:1/a/b?q` → `/a/b`), or the string itself when it is a
/// path already.
pub(crate) fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r.find('/').map_or("/", |i| &r[i..]));
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// The only item of `it`, if there is exactly one.
fn only<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// The account a server or message-log record is for: the only account; else the one with
/// `id` (the appid the server knows the account by); else the one whose original id is
/// `to` (the message's `ToUserName`).
pub(crate) fn by_record<'a>(
    accounts: &'a [ConsoleAccount],
    id: Option<&str>,
    to: Option<&str>,
) -> Option<&'a ConsoleAccount> {
    if let [one] = accounts {
        return Some(one);
    }
    id.and_then(|id| accounts.iter().find(|a| a.id == id)).or_else(|| by_original_id(accounts, to?))
}

fn by_original_id<'a>(accounts: &'a [ConsoleAccount], to: &str) -> Option<&'a ConsoleAccount> {
    let to = to.trim();
    only(accounts.iter().filter(|a| !to.is_empty() && a.account.original_id() == Some(to)))
}

/// `abcd••••…••••EFG1`: a secret shown only by its ends.
pub(crate) fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "•".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "•".repeat(chars.len() - 8))
}

/// A user the chat simulator can speak as.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestUser {
    /// The OpenID sent as `FromUserName`.
    pub openid: String,
    /// A display name.
    pub name: String,
}

impl TestUser {
    /// A user.
    pub fn new(openid: impl Into<String>, name: impl Into<String>) -> Self {
        Self { openid: openid.into(), name: name.into() }
    }

    /// Three OpenID-shaped test users.
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new("oWempTestUser000000000000001", "Alice"),
            Self::new("oWempTestUser000000000000002", "Bob"),
            Self::new("oWempTestUser000000000000003", "小明"),
        ]
    }
}

/// Who may open the console.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Anyone who reaches it through a loopback host name, without a proxy in between —
    /// the default when the server listens on loopback.
    Loopback,
    /// Only browsers that entered this admin token once (kept in a cookie).
    Token(Secret),
    /// Nobody: the server listens beyond loopback and no token is configured.
    Disabled,
}

impl Access {
    /// The policy for a server listening on `listen`: a configured token (non-empty)
    /// always applies; without one the console is open on loopback and disabled elsewhere.
    pub fn for_listener(listen: SocketAddr, token: Option<String>) -> Self {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(t) => Self::Token(Secret::new(t.trim())),
            None if listen.ip().is_loopback() => Self::Loopback,
            None => Self::Disabled,
        }
    }

    /// [`Access::for_listener`] with the token from [`TOKEN_ENV`] when `token` is unset.
    pub fn from_env(listen: SocketAddr, token: Option<String>) -> Self {
        Self::for_listener(listen, token.or_else(|| std::env::var(TOKEN_ENV).ok()))
    }
}

/// WeChat's schedule with a different per-try timeout (for demos; WeChat's is 5 s).
pub fn schedule(timeout: Duration, tries: u32) -> Schedule {
    Schedule { timeout, tries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_policy_follows_the_listener() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(Access::for_listener(lo, None), Access::Loopback);
        assert_eq!(Access::for_listener(lo6, None), Access::Loopback);
        assert_eq!(Access::for_listener(any, None), Access::Disabled);
        assert_eq!(Access::for_listener(any, Some("  ".into())), Access::Disabled);
        assert_eq!(Access::for_listener(any, Some("s3cret".into())), Access::Token("s3cret".into()));
        assert_eq!(Access::for_listener(lo, Some("s3cret".into())), Access::Token("s3cret".into()));
        let shown = format!("{:?}", Access::Token("s3cret".into()));
        assert!(!shown.contains("s3cret") && shown.starts_with("Token("), "{shown}");
    }

    fn account(id: &str, endpoint: &str, gh: &str) -> ConsoleAccount {
        ConsoleAccount::new(endpoint, Account::new("", "Tok123").with_original_id(gh)).with_id(id)
    }

    #[test]
    fn records_find_their_account() {
        let accounts = [
            account("demo", "http://127.0.0.1:8080/wechat", "gh_demo"),
            account("shop", "http://127.0.0.1:8080/wechat/shop", "gh_shop"),
        ];
        let id = |a: Option<&ConsoleAccount>| a.map(|a| a.id.clone());
        // Records: by the server's appid, else ToUserName.
        assert_eq!(id(by_record(&accounts, Some("shop"), None)), Some("shop".into()));
        assert_eq!(id(by_record(&accounts, Some("wx_gone"), Some("gh_demo"))), Some("demo".into()));
        assert_eq!(id(by_record(&accounts, Some("wx_gone"), None)), None);
        // One account: everything is its.
        assert_eq!(id(by_record(&accounts[1..], Some(""), None)), Some("shop".into()));
        // Two accounts sharing an original id: it tells nothing.
        let twins = [account("a", "http://h/a", "gh_same"), account("b", "http://h/b", "gh_same")];
        assert_eq!(id(by_record(&twins, None, Some("gh_same"))), None);
    }

    #[test]
    fn accounts_are_named_and_selected() {
        assert_eq!(ConsoleAccount::new("http://h/w", Account::new("", "Tok123")).id, "default");
        let account = Account::new("wx0123456789abcdef", "Tok123").with_original_id("gh_shop");
        let a = ConsoleAccount::new("http://127.0.0.1:8080/wechat/shop?x=1", account.clone());
        assert_eq!((a.id.as_str(), a.label(), a.path()), ("wx0123456789abcdef", "gh_shop", "/wechat/shop"));
        let a = a.with_name("shop");
        assert_eq!((a.id.as_str(), a.label(), a.path()), ("wx0123456789abcdef", "shop", "/wechat/shop"));
        assert_eq!(
            ConsoleAccount::new("http://h/w", Account::new("", "Tok123")).original_id(),
            PLACEHOLDER_ORIGINAL_ID
        );
        assert_eq!(a.mode(), Mode::Plain, "an undeclared mode is sent as plain");
        assert_eq!(a.public_url(), a.endpoint);
        assert_eq!(url_path("http://h:1"), "/");
        assert_eq!(url_path("/p#f"), "/p");
        let c = ConsoleConfig::new("http://h/wechat", Account::new("", "Tok123")).with_account(a);
        assert_eq!(c.account(None).unwrap().id, "default");
        assert_eq!(c.account(Some("")).unwrap().id, "default");
        assert_eq!(c.account(Some("wx0123456789abcdef")).unwrap().path(), "/wechat/shop");
        assert!(c.account(Some("nope")).is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_masks() {
        let account = Account::new("wx1", "tok3n")
            .with_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .unwrap()
            .with_app_secret("appS3cret");
        let a = ConsoleAccount::new("http://h/w", account);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("tok3n") && !dbg.contains("abcdefghij") && !dbg.contains("appS3cret"), "{dbg}");
        let masked = a.masked_aes_key().unwrap();
        assert!(masked.starts_with("abcd") && masked.ends_with("DEFG"), "{masked}");
        assert_eq!(masked.chars().count(), 43);
        assert!(!masked.contains("efgh"));
        assert_eq!(mask("short"), "•••••");
    }
}
