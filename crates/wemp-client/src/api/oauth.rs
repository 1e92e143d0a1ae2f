//! OAuth2 web authorization: the authorize URL, code → user token, refresh, user info.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html>

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use wemp_proto::Secret;

use crate::client::{Client, decode};
use crate::component::ComponentClient;
use crate::error::{Error, Result};

/// The authorize URL of `appid`; with `component_appid` when a third-party platform asks on
/// the account's behalf (代公众号发起网页授权).
fn authorize_url(
    open_base: &str,
    appid: &str,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
    component_appid: Option<&str>,
) -> String {
    let component = component_appid.map(|c| format!("&component_appid={c}")).unwrap_or_default();
    format!(
        "{open_base}{}?appid={appid}&redirect_uri={}&response_type=code&scope={}&state={}{component}#wechat_redirect",
        path::AUTHORIZE,
        utf8_percent_encode(redirect_uri, NON_ALPHANUMERIC),
        scope.as_str(),
        utf8_percent_encode(state, NON_ALPHANUMERIC),
    )
}

/// What the page asks the user for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `snsapi_base`: silent, OpenID only.
    Base,
    /// `snsapi_userinfo`: asks consent, allows [`OAuthApi::user_info`].
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

/// A user's web-authorization token. `Debug` hides the tokens (they are [`Secret`]s).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UserToken {
    /// The user access token (not the account's access_token).
    #[serde(deserialize_with = "wemp_proto::secret_serde::deserialize")]
    pub access_token: Secret,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Refreshes the token for 30 days.
    #[serde(deserialize_with = "wemp_proto::secret_serde::deserialize")]
    pub refresh_token: Secret,
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

/// The endpoints of this area, in one place.
mod path {
    /// On `open.weixin.qq.com`.
    pub(super) const AUTHORIZE: &str = "/connect/oauth2/authorize";
    pub(super) const ACCESS_TOKEN: &str = "/sns/oauth2/access_token";
    pub(super) const REFRESH_TOKEN: &str = "/sns/oauth2/refresh_token";
    pub(super) const USER_INFO: &str = "/sns/userinfo";
    pub(super) const CHECK_TOKEN: &str = "/sns/auth";
    pub(super) const COMPONENT_ACCESS_TOKEN: &str = "/sns/oauth2/component/access_token";
    pub(super) const COMPONENT_REFRESH_TOKEN: &str = "/sns/oauth2/component/refresh_token";
}

impl Client {
    /// OAuth2 web authorization: [`OAuthApi`].
    pub fn oauth(&self) -> OAuthApi<'_> {
        OAuthApi(self)
    }

    fn secret(&self) -> Result<&str> {
        self.inner.secret.as_ref().map(wemp_proto::Secret::expose).ok_or_else(|| {
            Error::Invalid("OAuth2 code exchange needs the AppSecret; set ClientBuilder::secret".into())
        })
    }
}

/// OAuth2 web authorization (`/connect/oauth2/authorize`, `/sns/*`), from [`Client::oauth`].
#[derive(Clone, Copy, Debug)]
pub struct OAuthApi<'c>(&'c Client);

impl OAuthApi<'_> {
    /// The authorize URL to redirect the user's browser to.
    ///
    /// ```
    /// use wemp_client::{Client, api::oauth::Scope};
    /// let client = Client::new("wx123", "secret").unwrap();
    /// let url = client.oauth().authorize_url("https://example.com/cb?x=1", Scope::UserInfo, "st");
    /// assert_eq!(url, "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx123\
    ///     &redirect_uri=https%3A%2F%2Fexample%2Ecom%2Fcb%3Fx%3D1&response_type=code\
    ///     &scope=snsapi_userinfo&state=st#wechat_redirect");
    /// ```
    pub fn authorize_url(self, redirect_uri: &str, scope: Scope, state: &str) -> String {
        let inner = &self.0.inner;
        authorize_url(&inner.open_base, &inner.appid, redirect_uri, scope, state, None)
    }

    /// Exchanges the `code` from the redirect for a user token.
    ///
    /// # Errors
    /// [`Error::Invalid`] without an AppSecret; [`Error::Api`] (40029 for a used or
    /// expired code) and the transport errors of [`Client::get`].
    pub async fn exchange_code(self, code: &str) -> Result<UserToken> {
        let query = [
            ("appid", self.0.inner.appid.as_str()),
            ("secret", self.0.secret()?),
            ("code", code),
            ("grant_type", "authorization_code"),
        ];
        decode(path::ACCESS_TOKEN, self.0.execute_plain(path::ACCESS_TOKEN, &query).await?)
    }

    /// Refreshes a user token.
    ///
    /// # Errors
    /// As [`OAuthApi::exchange_code`].
    pub async fn refresh_token(self, refresh_token: &str) -> Result<UserToken> {
        let query = [
            ("appid", self.0.inner.appid.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        decode(path::REFRESH_TOKEN, self.0.execute_plain(path::REFRESH_TOKEN, &query).await?)
    }

    /// The user's profile (needs the `snsapi_userinfo` scope).
    ///
    /// # Errors
    /// As [`OAuthApi::exchange_code`].
    pub async fn user_info(self, token: &UserToken) -> Result<OAuthUser> {
        let query = [
            ("access_token", token.access_token.expose()),
            ("openid", token.openid.as_str()),
            ("lang", "zh_CN"),
        ];
        decode(path::USER_INFO, self.0.execute_plain(path::USER_INFO, &query).await?)
    }

    /// Whether a user token is still valid.
    ///
    /// # Errors
    /// Transport errors, and WeChat errors other than an invalid or expired token.
    pub async fn check_token(self, token: &UserToken) -> Result<bool> {
        let query = [("access_token", token.access_token.expose()), ("openid", token.openid.as_str())];
        match self.0.execute_plain(path::CHECK_TOKEN, &query).await {
            Ok(_) => Ok(true),
            Err(Error::Api(e)) if e.code.is_token_error() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Web authorization on behalf of an authorizer (代公众号发起网页授权): the page names the
/// platform (`component_appid`), and the code is exchanged with the component token.
impl ComponentClient {
    /// The authorize URL for a user of the account `authorizer_appid`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wemp_client::{api::oauth::Scope, component::ComponentClient};
    /// use wemp_store::{ComponentState, memory::MemorySessionStore};
    /// let state = ComponentState::new(Arc::new(MemorySessionStore::new()), "wxcomp");
    /// let c = ComponentClient::builder("wxcomp", "secret", state).build()?;
    /// assert_eq!(
    ///     c.oauth_authorize_url("wxa", "https://example.com/cb", Scope::Base, "st"),
    ///     "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxa\
    ///      &redirect_uri=https%3A%2F%2Fexample%2Ecom%2Fcb&response_type=code&scope=snsapi_base\
    ///      &state=st&component_appid=wxcomp#wechat_redirect",
    /// );
    /// # Ok::<(), wemp_client::Error>(())
    /// ```
    pub fn oauth_authorize_url(
        &self,
        authorizer_appid: &str,
        redirect_uri: &str,
        scope: Scope,
        state: &str,
    ) -> String {
        let api = self.api();
        authorize_url(&api.inner.open_base, authorizer_appid, redirect_uri, scope, state, Some(self.appid()))
    }

    /// Exchanges the `code` from the redirect for a user token
    /// (`/sns/oauth2/component/access_token`, with the component token).
    ///
    /// # Errors
    /// As [`OAuthApi::exchange_code`], and [`Error::NoVerifyTicket`].
    pub async fn oauth_exchange_code(&self, authorizer_appid: &str, code: &str) -> Result<UserToken> {
        let query = [
            ("appid", authorizer_appid),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("component_appid", self.appid()),
        ];
        self.api().get_as(path::COMPONENT_ACCESS_TOKEN, &query).await
    }

    /// Refreshes a user token obtained on behalf of `authorizer_appid`
    /// (`/sns/oauth2/component/refresh_token`).
    ///
    /// # Errors
    /// As [`ComponentClient::oauth_exchange_code`].
    pub async fn oauth_refresh_user_token(
        &self,
        authorizer_appid: &str,
        refresh_token: &str,
    ) -> Result<UserToken> {
        let query = [
            ("appid", authorizer_appid),
            ("grant_type", "refresh_token"),
            ("component_appid", self.appid()),
            ("refresh_token", refresh_token),
        ];
        self.api().get_as(path::COMPONENT_REFRESH_TOKEN, &query).await
    }
}
