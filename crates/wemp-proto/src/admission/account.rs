//! Accounts: who a callback server answers for, and the set of them.

use std::sync::Arc;

use crate::{Cipher, KeyError, Mode, Secret};

/// What kind of WeChat account an [`Account`] is: admission, replies and the API differ.
///
/// - An Official Account is signed with `signature` (and `msg_signature` when encrypted),
///   verifies its URL with a plain `echostr` and takes passive XML replies.
/// - A WeCom (企业微信) application is always encrypted and signed with `msg_signature`
///   only; its URL verification sends an **encrypted** `echostr` whose plaintext is the
///   answer; the ReceiveId inside every envelope is the corpid (the account's
///   [`Account::appid`]).
/// - A Mini Program's message push is signed like an Official Account, comes as XML or JSON
///   (`{"ToUserName", "Encrypt"}` in safe mode) and takes no passive reply: the server
///   answers `success` and sends replies through the customer-service API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// 公众号, an Official Account (the default).
    #[default]
    OfficialAccount,
    /// 企业微信, a WeCom application.
    Wecom,
    /// 小程序, a Mini Program's message push.
    Miniprogram,
}

/// A kind in words, for messages: `Official Account`, `WeCom app`, `Mini Program`.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::OfficialAccount => "Official Account",
        Kind::Wecom => "WeCom app",
        Kind::Miniprogram => "Mini Program",
    }
}

impl Kind {
    /// The snake_case name (`official_account`, `wecom`, `miniprogram`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OfficialAccount => "official_account",
            Self::Wecom => "wecom",
            Self::Miniprogram => "miniprogram",
        }
    }
}

/// The key of an account's state ([`Account::key`]) from its appid and, for a WeCom app,
/// its AgentID: `wx…`, or `ww…/1000002`. The API client's late-reply sink finds a client by
/// the same key, so both sides compute it here.
///
/// ```
/// assert_eq!(wemp_proto::admission::app_key("wx1", None), "wx1");
/// assert_eq!(wemp_proto::admission::app_key("ww1", Some("1000002")), "ww1/1000002");
/// ```
pub fn app_key(appid: &str, agentid: Option<&str>) -> String {
    match agentid {
        Some(agent) => format!("{appid}/{agent}"),
        None => appid.to_owned(),
    }
}

/// Whether the WeChat console accepts `token` as a Token: 3–32 ASCII letters and digits.
///
/// ```
/// assert!(wemp_proto::admission::token_is_valid("spamtest"));
/// assert!(!wemp_proto::admission::token_is_valid("ab"));
/// assert!(!wemp_proto::admission::token_is_valid("with space"));
/// ```
pub fn token_is_valid(token: &str) -> bool {
    (3..=32).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One account a callback server answers for: its kind, appid, Token, EncodingAESKey
/// (for compatible and safe mode), original id (`gh_…`), the path segment that selects it
/// and the message encryption mode set in the WeChat console.
///
/// The secrets are [`Secret`]s, so `Debug` never shows them.
///
/// ```
/// use wemp_proto::Mode;
/// use wemp_proto::admission::Account;
/// let account = Account::new("wx2c2769f8efd9abc2", "spamtest")
///     .with_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")?
///     .with_original_id("gh_10f6c3c3ac5a")
///     .with_mode(Mode::Safe);
/// assert_eq!(account.appid(), "wx2c2769f8efd9abc2");
/// assert!(account.requires_encryption());
/// assert!(!format!("{account:?}").contains("spamtest"));
/// # Ok::<(), wemp_proto::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Account {
    kind: Kind,
    appid: Box<str>,
    token: Secret,
    aes_key: Option<Secret>,
    cipher: Option<Cipher>,
    app_secret: Option<Secret>,
    original_id: Option<Box<str>>,
    path: Box<str>,
    mode: Option<Mode>,
    agentid: Option<Box<str>>,
    /// [`Account::key`], made once: each delivery's record holds it.
    key: Arc<str>,
}

impl Account {
    /// An Official Account with its appid and the Token set in the console (plain mode only
    /// until a key is added). The path segment it answers on defaults to the appid; the
    /// mode is undeclared (see [`Account::with_mode`]).
    pub fn new(appid: impl Into<String>, token: impl Into<Secret>) -> Self {
        let appid: Box<str> = appid.into().into_boxed_str();
        Self {
            kind: Kind::OfficialAccount,
            path: appid.clone(),
            key: Arc::from(&*appid),
            appid,
            token: token.into(),
            aes_key: None,
            cipher: None,
            app_secret: None,
            original_id: None,
            mode: None,
            agentid: None,
        }
    }

    /// A WeCom (企业微信) application: its corpid (the ReceiveId of its envelopes — the
    /// suite id for a service provider's suite callback), the Token and EncodingAESKey of its
    /// callback settings. WeCom only sends encrypted callbacks, so the mode is
    /// [`Mode::Safe`]; the path segment defaults to the corpid.
    ///
    /// ```
    /// use wemp_proto::admission::{Account, Kind};
    /// let app = Account::wecom("wx49f0ab532d5d035a", "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")?
    ///     .with_agentid("1");
    /// assert_eq!(app.kind(), Kind::Wecom);
    /// assert_eq!(app.corpid(), Some("wx49f0ab532d5d035a"));
    /// # Ok::<(), wemp_proto::KeyError>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyError`] (`-40004`) when the key is not 43 base64 characters.
    pub fn wecom(
        corpid: impl Into<String>,
        token: impl Into<Secret>,
        encoding_aes_key: &str,
    ) -> Result<Self, KeyError> {
        Self::new(corpid, token).with_kind(Kind::Wecom).with_mode(Mode::Safe).with_aes_key(encoding_aes_key)
    }

    /// A Mini Program's message push: its appid and the Token of its push settings (add
    /// the key with [`Account::with_aes_key`] for safe mode).
    pub fn miniprogram(appid: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self::new(appid, token).with_kind(Kind::Miniprogram)
    }

    /// Adds the console's EncodingAESKey, enabling compatible and safe mode.
    ///
    /// # Errors
    /// [`KeyError`] (`-40004`) when the key is not 43 base64 characters.
    pub fn with_aes_key(mut self, encoding_aes_key: &str) -> Result<Self, KeyError> {
        self.cipher = Some(Cipher::new(encoding_aes_key, &self.appid)?);
        self.aes_key = Some(Secret::new(encoding_aes_key));
        Ok(self)
    }

    /// Adds an already built cipher (its appid should be this account's).
    #[must_use]
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The AppSecret, for the API (never used by admission).
    #[must_use]
    pub fn with_app_secret(mut self, app_secret: impl Into<Secret>) -> Self {
        self.app_secret = Some(app_secret.into());
        self
    }

    /// The account's original id (`gh_…`), used to pick the account by `ToUserName` when
    /// several share one URL and one Token.
    #[must_use]
    pub fn with_original_id(mut self, original_id: impl Into<String>) -> Self {
        self.original_id = Some(original_id.into().into_boxed_str());
        self
    }

    /// The last path segment that selects this account when several share a server
    /// (default: the appid), e.g. `shop` for `https://example.com/wechat/shop`.
    #[must_use]
    pub fn with_path(mut self, segment: impl Into<String>) -> Self {
        self.path = segment.into().into_boxed_str();
        self
    }

    /// The message encryption mode set in the WeChat console, enforced for this account:
    /// in [`Mode::Compatible`] and [`Mode::Safe`] only requests with `encrypt_type=aes` and
    /// a valid `msg_signature` are admitted, and only their encrypted part is trusted; a
    /// plain body is refused even when other accounts on the server are plain. In
    /// [`Mode::Plain`] (and when no mode is declared) every mode is admitted, so switching
    /// the console to an encrypted mode loses no message.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// What kind of account this is (default: an Official Account).
    #[must_use]
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// A WeCom application's AgentID (its messages carry it in `AgentID`; replies and
    /// `message/send` go out for it).
    #[must_use]
    pub fn with_agentid(mut self, agentid: impl Into<String>) -> Self {
        self.agentid = Some(agentid.into().into_boxed_str());
        self.key = app_key(&self.appid, self.agentid()).into();
        self
    }

    /// The AgentID of a WeCom application, if configured.
    pub fn agentid(&self) -> Option<&str> {
        self.agentid.as_deref()
    }

    /// The key the server keeps this account's state under (deduplication, sessions, the
    /// late-reply sink): its appid, or `corpid/agentid` for a WeCom application with an
    /// AgentID, since several apps of one corp share the corpid ([`app_key`]).
    pub fn key(&self) -> String {
        (*self.key).to_owned()
    }

    /// [`Account::key`] without a copy: the account's own, shared.
    pub fn shared_key(&self) -> Arc<str> {
        self.key.clone()
    }

    /// The length of [`Account::key`].
    pub fn key_len(&self) -> usize {
        self.appid.len() + self.agentid().map_or(0, |agent| 1 + agent.len())
    }

    /// Appends [`Account::key`] to `out` (a key built in place, with no string of its own).
    pub fn push_key(&self, out: &mut String) {
        out.push_str(&self.appid);
        if let Some(agent) = self.agentid() {
            out.push('/');
            out.push_str(agent);
        }
    }

    /// The corpid of a WeCom application (its [`Account::appid`]); `None` for other kinds.
    pub fn corpid(&self) -> Option<&str> {
        (self.kind == Kind::Wecom).then_some(&*self.appid)
    }

    /// The kind of account.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The appid — for a WeCom application, the corpid (the ReceiveId its envelopes carry).
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The Token.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// The EncodingAESKey as configured, if set with [`Account::with_aes_key`].
    pub fn aes_key(&self) -> Option<&Secret> {
        self.aes_key.as_ref()
    }

    /// The cipher of the EncodingAESKey, if one is configured.
    pub fn cipher(&self) -> Option<&Cipher> {
        self.cipher.as_ref()
    }

    /// The AppSecret, if configured.
    pub fn app_secret(&self) -> Option<&Secret> {
        self.app_secret.as_ref()
    }

    /// The original id (`gh_…`), if configured.
    pub fn original_id(&self) -> Option<&str> {
        self.original_id.as_deref()
    }

    /// The path segment selecting this account.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The declared mode, if any.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// Whether an EncodingAESKey is configured.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Whether only encrypted requests are admitted (a compatible- or safe-mode account).
    pub fn requires_encryption(&self) -> bool {
        self.mode.is_some_and(Mode::is_encrypted)
    }
}

/// A set of accounts cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// No account at all.
    #[error("no account configured")]
    Empty,
    /// Two accounts answer on the same path segment.
    #[error(
        "accounts {first} and {second} both answer on path segment {segment:?}: give one of them another path"
    )]
    DuplicatePath {
        /// The segment.
        segment: String,
        /// The index of the first account with it.
        first: usize,
        /// The index of the second.
        second: usize,
    },
    /// Two accounts have the same appid (two WeCom apps: the same corpid and AgentID).
    #[error("accounts {first} and {second} are both {kind} {appid:?}: each account is configured once", kind = kind_name(*.kind))]
    DuplicateAppid {
        /// The appid (a WeCom app's `corpid/agentid`, as [`Account::key`]).
        appid: String,
        /// The kind of the second account.
        kind: Kind,
        /// The index of the first account with it.
        first: usize,
        /// The index of the second.
        second: usize,
    },
}

/// The accounts of one callback server: at least one, no two answering on the same path
/// segment, no appid twice.
///
/// ```
/// use wemp_proto::admission::{Account, Accounts, AccountsError};
/// let both = Accounts::new(vec![Account::new("wx1", "token1"), Account::new("wx2", "token2")])?;
/// assert_eq!(both.by_path("/wechat/wx2").map(|a| a.appid()), Some("wx2"));
/// let clash = Accounts::new(vec![Account::new("wx1", "token1"), Account::new("wx2", "t2").with_path("wx1")]);
/// assert!(matches!(clash, Err(AccountsError::DuplicatePath { .. })));
/// # Ok::<(), AccountsError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Accounts {
    accounts: Vec<Arc<Account>>,
}

impl Accounts {
    /// Checks and holds `accounts`, in order (the first is the default where one is needed).
    ///
    /// # Errors
    /// [`AccountsError::Empty`], [`AccountsError::DuplicatePath`] or
    /// [`AccountsError::DuplicateAppid`].
    pub fn new(accounts: impl IntoIterator<Item = Account>) -> Result<Self, AccountsError> {
        let accounts: Vec<Arc<Account>> = accounts.into_iter().map(Arc::new).collect();
        if accounts.is_empty() {
            return Err(AccountsError::Empty);
        }
        for (second, b) in accounts.iter().enumerate() {
            if let Some(first) = accounts[..second].iter().position(|a| a.path() == b.path()) {
                return Err(AccountsError::DuplicatePath { segment: b.path().to_owned(), first, second });
            }
            // Apps of one WeCom corp share the corpid and differ by AgentID.
            let same = |a: &Arc<Account>| {
                let both_apps = a.kind() == Kind::Wecom && b.kind() == Kind::Wecom;
                let distinct_agents = matches!((a.agentid(), b.agentid()), (Some(x), Some(y)) if x != y);
                !a.appid().is_empty() && a.appid() == b.appid() && !(both_apps && distinct_agents)
            };
            if let Some(first) = accounts[..second].iter().position(same) {
                return Err(AccountsError::DuplicateAppid { appid: b.key(), kind: b.kind(), first, second });
            }
        }
        Ok(Self { accounts })
    }

    /// The accounts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter()
    }

    /// How many there are (at least one).
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Always false: a set holds at least one account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account a request path selects: the only one when there is one, else the one
    /// whose [`Account::path`] is the path's last non-empty segment.
    pub fn by_path(&self, path: &str) -> Option<&Arc<Account>> {
        if let [only] = self.accounts.as_slice() {
            return Some(only);
        }
        let segment = path.rsplit('/').find(|s| !s.is_empty())?;
        self.accounts.iter().find(|a| a.path() == segment)
    }

    /// The account with this original id (`gh_…`).
    pub fn by_original_id(&self, original_id: &str) -> Option<&Arc<Account>> {
        self.accounts.iter().find(|a| a.original_id() == Some(original_id))
    }

    /// The account with this appid.
    pub fn by_appid(&self, appid: &str) -> Option<&Arc<Account>> {
        self.accounts.iter().find(|a| a.appid() == appid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_key_appends_what_key_returns() {
        for account in [Account::new("wx1", "token1"), Account::new("ww1", "token1").with_agentid("1000002")]
        {
            let mut key = "k:".to_owned();
            account.push_key(&mut key);
            assert_eq!(key, format!("k:{}", account.key()));
            assert_eq!(account.key_len(), account.key().len());
        }
        assert_eq!(Account::new("ww1", "t").with_agentid("7").key(), "ww1/7");
    }

    #[test]
    fn duplicates_are_refused_with_their_indexes() {
        assert_eq!(Accounts::new(Vec::new()).unwrap_err(), AccountsError::Empty);
        let err = Accounts::new(vec![
            Account::new("wx1", "token1").with_path("shop"),
            Account::new("wx2", "token2"),
            Account::new("wx3", "token3").with_path("shop"),
        ])
        .unwrap_err();
        assert_eq!(err, AccountsError::DuplicatePath { segment: "shop".into(), first: 0, second: 2 });
        assert!(err.to_string().contains("path segment \"shop\""), "{err}");
        let err = Accounts::new(vec![
            Account::new("wx1", "token1").with_path("a"),
            Account::new("wx1", "token2").with_path("b"),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            AccountsError::DuplicateAppid {
                appid: "wx1".into(),
                kind: Kind::OfficialAccount,
                first: 0,
                second: 1
            }
        );
        assert!(err.to_string().contains("both Official Account \"wx1\""), "{err}");
        // Two apps of one WeCom corp: the same corpid, distinct AgentIDs, distinct paths.
        let app = |agent: &str, path: &str| {
            Account::wecom("ww0123456789abcdef", "token1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
                .unwrap()
                .with_agentid(agent)
                .with_path(path)
        };
        let both = Accounts::new(vec![app("1000002", "hr"), app("1000003", "ops")]).unwrap();
        let keys: Vec<String> = both.iter().map(|a| a.key()).collect();
        assert_eq!(keys, ["ww0123456789abcdef/1000002", "ww0123456789abcdef/1000003"]);
        let err = Accounts::new(vec![app("1000002", "hr"), app("1000002", "ops")]).unwrap_err();
        assert!(err.to_string().contains("both WeCom app \"ww0123456789abcdef/1000002\""), "{err}");
    }

    #[test]
    fn the_only_account_takes_every_path() {
        let one = Accounts::new(vec![Account::new("wx1", "token1")]).unwrap();
        assert_eq!(one.by_path("/anything").map(|a| a.appid()), Some("wx1"));
        let two = Accounts::new(vec![Account::new("wx1", "t1"), Account::new("wx2", "t2")]).unwrap();
        assert!(two.by_path("/anything").is_none());
        assert_eq!(two.by_path("/w/wx1/").map(|a| a.appid()), Some("wx1"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = Account::new("wx1", "tokentoken")
            .with_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .unwrap()
            .with_app_secret("appsecretappsecret");
        let shown = format!("{a:?}");
        for secret in ["tokentoken", "abcdefghijklmnopqrstuvwxyz", "appsecretappsecret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
