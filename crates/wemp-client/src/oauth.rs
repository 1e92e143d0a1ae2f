//! OAuth2 web authorization: the authorize URL, code → user token, refresh, user info.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html>

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::client::{Client, decode};
use crate::error::{Error, Result};

/// What the page asks the user for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `snsapi_base`: silent, OpenID only.
    Base,
    /// `snsapi_userinfo`: asks consent, allows [`Client::oauth_user_info`].
    UserInfo,
}

impl Scope {
    /// The scope string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Base => "snsapi_base",
            Self::UserInfo => "snsapi_userinfo",
        }
    }
}

/// A user's web-authorization token. `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct UserToken {
    /// The user access token (not the account's access_token).
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Refreshes the token for 30 days.
    pub refresh_token: String,
    /// The user's OpenID.
    pub openid: String,
    /// Granted scopes, comma separated.
    pub scope: String,
    /// 1 for a snapshot-page virtual user.
    #[serde(default)]
    pub is_snapshotuser: u8,
    /// UnionID, when bound to an open platform account.
    #[serde(default)]
    pub unionid: Option<String>,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A user's profile from `snsapi_userinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OAuthUser {
    /// OpenID.
    pub openid: String,
    /// Nickname.
    #[serde(default)]
    pub nickname: String,
    /// Avatar URL.
    #[serde(default)]
    pub headimgurl: String,
    /// Privileges.
    #[serde(default)]
    pub privilege: Vec<String>,
    /// UnionID.
    #[serde(default)]
    pub unionid: Option<String>,
}

impl Client {
    /// The authorize URL to redirect the user's browser to.
    ///
    /// ```
    /// use wemp_client::{Client, oauth::Scope};
    /// let client = Client::new("wx123", "secret").unwrap();
    /// let url = client.authorize_url("https://example.com/cb?x=1", Scope::UserInfo, "st");
    /// assert_eq!(url, "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx123\
    ///     &redirect_uri=https%3A%2F%2Fexample%2Ecom%2Fcb%3Fx%3D1&response_type=code\
    ///     &scope=snsapi_userinfo&state=st#wechat_redirect");
    /// ```
    pub fn authorize_url(&self, redirect_uri: &str, scope: Scope, state: &str) -> String {
        format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
            self.inner.open_base,
            self.inner.appid,
            utf8_percent_encode(redirect_uri, NON_ALPHANUMERIC),
            scope.as_str(),
            utf8_percent_encode(state, NON_ALPHANUMERIC),
        )
    }

    fn secret(&self) -> Result<&str> {
        self.inner.secret.as_deref().ok_or_else(|| {
            Error::Invalid("OAuth2 code exchange needs the AppSecret; set ClientBuilder::secret".into())
        })
    }

    /// Exchanges the `code` from the redirect for a user token.
    ///
    /// # Errors
    /// [`Error::Invalid`] without an AppSecret; [`Error::Api`] (40029 for a used or
    /// expired code) and the transport errors of [`Client::get`].
    pub async fn exchange_code(&self, code: &str) -> Result<UserToken> {
        const PATH: &str = "/sns/oauth2/access_token";
        let query = [
            ("appid", self.inner.appid.as_str()),
            ("secret", self.secret()?),
            ("code", code),
            ("grant_type", "authorization_code"),
        ];
        decode(PATH, self.execute_plain(PATH, &query).await?)
    }

    /// Refreshes a user token.
    ///
    /// # Errors
    /// As [`Client::exchange_code`].
    pub async fn refresh_user_token(&self, refresh_token: &str) -> Result<UserToken> {
        const PATH: &str = "/sns/oauth2/refresh_token";
        let query = [
            ("appid", self.inner.appid.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        decode(PATH, self.execute_plain(PATH, &query).await?)
    }

    /// The user's profile (needs the `snsapi_userinfo` scope).
    ///
    /// # Errors
    /// As [`Client::exchange_code`].
    pub async fn oauth_user_info(&self, token: &UserToken) -> Result<OAuthUser> {
        const PATH: &str = "/sns/userinfo";
        let query = [
            ("access_token", token.access_token.as_str()),
            ("openid", token.openid.as_str()),
            ("lang", "zh_CN"),
        ];
        decode(PATH, self.execute_plain(PATH, &query).await?)
    }

    /// Whether a user token is still valid.
    ///
    /// # Errors
    /// Transport errors, and WeChat errors other than an invalid or expired token.
    pub async fn check_user_token(&self, token: &UserToken) -> Result<bool> {
        let query = [("access_token", token.access_token.as_str()), ("openid", token.openid.as_str())];
        match self.execute_plain("/sns/auth", &query).await {
            Ok(_) => Ok(true),
            Err(Error::Api(e)) if e.code.is_token_error() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
