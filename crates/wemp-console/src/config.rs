//! What the console needs to know: where the bot listens, the account's keys (to sign and
//! encrypt like WeChat), test users, the menu, and who may open it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use wemp_proto::{Cipher, KeyError, Mode};
use wemp_testkit::wechat::Schedule;

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
    /// The bot's callback URL as the simulator reaches it (`http://127.0.0.1:8080/wechat`).
    pub endpoint: String,
    /// The URL to paste into the WeChat console, as seen from outside (behind a proxy, on
    /// port 80/443); [`ConsoleConfig::endpoint`] when unset.
    pub public_url: Option<String>,
    /// The account the simulator plays WeChat for.
    pub account: AccountInfo,
    /// The users the chat simulator can speak as.
    pub users: Vec<TestUser>,
    /// The account's bottom menu.
    pub menu: Menu,
    /// Who may open the console.
    pub access: Access,
    /// WeChat's retry schedule as the simulator follows it (5 s × 3 tries).
    pub schedule: Schedule,
}

impl ConsoleConfig {
    /// A console for the bot at `endpoint` with `account`, mounted at `/console`, with
    /// three test users, no menu, WeChat's schedule, and access for loopback only
    /// ([`Access::Loopback`]).
    pub fn new(endpoint: impl Into<String>, account: AccountInfo) -> Self {
        Self {
            base_path: DEFAULT_BASE_PATH.into(),
            endpoint: endpoint.into(),
            public_url: None,
            account,
            users: TestUser::defaults(),
            menu: Menu::default(),
            access: Access::Loopback,
            schedule: Schedule::default(),
        }
    }

    /// The URL shown on the setup page.
    pub fn public_url(&self) -> &str {
        self.public_url.as_deref().unwrap_or(&self.endpoint)
    }
}

/// The keys of the account under test. There is deliberately no AppSecret here: the
/// console never needs it, so it can never reach the page.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    /// A display name.
    pub name: Option<String>,
    /// The Token set in the WeChat console.
    pub token: String,
    /// The appid (`wx…`); needed for encrypted modes.
    pub appid: String,
    /// The EncodingAESKey (43 characters), for compatible and safe mode.
    pub aes_key: Option<String>,
    /// The mode messages are sent in.
    pub mode: Mode,
    /// The account's original id (`gh_…`), put in `ToUserName`.
    pub original_id: String,
}

impl fmt::Debug for AccountInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountInfo")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("appid", &self.appid)
            .field("aes_key", &self.aes_key.as_ref().map(|_| "<redacted>"))
            .field("mode", &self.mode)
            .field("original_id", &self.original_id)
            .finish()
    }
}

impl AccountInfo {
    /// A plain-mode account with `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self { token: token.into(), original_id: "gh_000000000000".into(), ..Self::default() }
    }

    /// The cipher for encrypted modes, if a key is set.
    ///
    /// # Errors
    /// The key is not a valid EncodingAESKey.
    pub fn cipher(&self) -> Result<Option<Cipher>, KeyError> {
        self.aes_key.as_deref().map(|k| Cipher::new(k, &self.appid)).transpose()
    }

    /// The key with all but its first and last 4 characters hidden.
    pub fn masked_aes_key(&self) -> Option<String> {
        self.aes_key.as_deref().map(mask)
    }
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
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Anyone who reaches it through a loopback host name, without a proxy in between —
    /// the default when the server listens on loopback.
    Loopback,
    /// Only browsers that entered this admin token once (kept in a cookie).
    Token(String),
    /// Nobody: the server listens beyond loopback and no token is configured.
    Disabled,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loopback => f.write_str("Loopback"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

impl Access {
    /// The policy for a server listening on `listen`: a configured token (non-empty)
    /// always applies; without one the console is open on loopback and disabled elsewhere.
    pub fn for_listener(listen: SocketAddr, token: Option<String>) -> Self {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(t) => Self::Token(t.trim().to_owned()),
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
        assert_eq!(format!("{:?}", Access::Token("s3cret".into())), "Token(<redacted>)");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_masks() {
        let mut a = AccountInfo::new("tok3n");
        a.aes_key = Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("tok3n") && !dbg.contains("abcdefghij"), "{dbg}");
        let masked = a.masked_aes_key().unwrap();
        assert!(masked.starts_with("abcd") && masked.ends_with("DEFG"), "{masked}");
        assert_eq!(masked.chars().count(), 43);
        assert!(!masked.contains("efgh"));
        assert_eq!(mask("short"), "•••••");
    }
}
