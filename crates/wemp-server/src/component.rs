//! An Open Platform third-party platform (第三方平台) served by a [`WechatService`](crate::WechatService): its
//! authorization events, and its authorizers as accounts added while the service runs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wemp_client::component::ComponentClient;
//! use wemp_server::{Component, Router, WechatService};
//! use wemp_store::{ComponentState, memory::MemorySessionStore};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let state = ComponentState::new(Arc::new(MemorySessionStore::new()), "wx0123456789abcdef");
//! let client = ComponentClient::builder("wx0123456789abcdef", "the-appsecret", state).build()?;
//! let component = Component::new(client, "CompToken1", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")?;
//! // The authorizers, at /wechat/<authorizer appid>; found in the state on first request.
//! let service = WechatService::builder()
//!     .account_source_arc(component.source())
//!     .router(Router::new())
//!     .build()?;
//! // The authorization events (授权事件接收 URL), at /component.
//! let pushes = WechatService::builder()
//!     .account(component.account("component"))
//!     .handler_service(component.push_handler(service.accounts().clone()))
//!     .build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/wechat/{appid}", service)
//!     .route_service("/component", pushes);
//! # drop(app); Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use wemp_client::component::ComponentClient;
use wemp_proto::component::{ComponentEvent, ComponentPush};
use wemp_proto::{Cipher, Incoming, KeyError, Mode, Reply, Secret};
use wemp_store::component::{Authorizer, CodeClaim};

use crate::accounts::{AccountSource, LiveAccounts};
use crate::handler::{BoxError, BoxHandler};
use crate::{Account, Inbound};

/// A third-party platform: its client (component token, authorizers' clients), Token
/// and key. Cheap to clone.
#[derive(Clone)]
pub struct Component {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: ComponentClient,
    token: Secret,
    cipher: Cipher,
    full_network_release: bool,
}

/// How long one caller may hold an authorization code while exchanging it (then another
/// may claim it): longer than the exchange and the profile call take.
const EXCHANGE_LEASE: Duration = Duration::from_secs(30);
/// How often a caller waiting for another's exchange looks again.
const EXCHANGE_POLL: Duration = Duration::from_millis(100);

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("appid", &self.appid())
            .field("full_network_release", &self.inner.full_network_release)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// The platform of `client`, with the Token and EncodingAESKey of its message checks.
    ///
    /// # Errors
    /// [`KeyError`] when the key is not 43 base64 characters.
    pub fn new(client: ComponentClient, token: impl Into<Secret>, aes_key: &str) -> Result<Self, KeyError> {
        let cipher = Cipher::new(aes_key, client.appid())?;
        Ok(Self {
            inner: Arc::new(Inner { client, token: token.into(), cipher, full_network_release: false }),
        })
    }

    /// Answer WeChat's automated full-network-release cases (全网发布) before the rules:
    /// see [`Component::release_tests`].
    #[must_use]
    pub fn with_full_network_release(self, yes: bool) -> Self {
        Self { inner: Arc::new(Inner { full_network_release: yes, ..(*self.inner).clone() }) }
    }

    /// The component appid.
    pub fn appid(&self) -> &str {
        self.inner.client.appid()
    }

    /// The client (component token, pre_auth_code, authorizers' clients).
    pub fn client(&self) -> &ComponentClient {
        &self.inner.client
    }

    /// The account receiving the authorization events, at path segment `segment`: the
    /// component's appid, Token and key, safe mode.
    pub fn account(&self, segment: &str) -> Account {
        Account::new(self.appid(), self.inner.token.clone())
            .with_cipher(self.inner.cipher.clone())
            .with_mode(Mode::Safe)
            .with_path(segment)
    }

    /// An authorizer as an account: its appid (and path segment), the component's Token and
    /// cipher (the ReceiveId of its messages is the component appid), safe mode.
    pub fn authorizer_account(&self, authorizer: &Authorizer) -> Account {
        let account = Account::new(authorizer.appid.clone(), self.inner.token.clone())
            .with_cipher(self.inner.cipher.clone())
            .with_mode(Mode::Safe);
        match &authorizer.user_name {
            Some(gh) => account.with_original_id(gh.clone()),
            None => account,
        }
    }

    /// Whether `account` is one of this platform's authorizers (sealed with its cipher,
    /// not the platform's own push account).
    pub fn serves(&self, account: &Account) -> bool {
        account.appid() != self.appid() && account.cipher().is_some_and(|c| c.appid() == self.appid())
    }

    /// The authorizers stored in the platform's state, as an [`AccountSource`] for
    /// [`crate::WechatServiceBuilder::account_source_arc`].
    pub fn source(&self) -> Arc<dyn AccountSource> {
        Arc::new(Source(self.clone()))
    }

    /// The API client of authorizer `appid` (its token from the stored refresh token;
    /// calls for an account that has not authorized the platform fail with
    /// [`wemp_client::Error::NotAuthorized`]); `None` for what is not an appid.
    pub fn client_for(&self, appid: &str) -> Option<wemp_client::Client> {
        let appid_like =
            appid.len() == 18 && appid.starts_with("wx") && appid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !appid_like || appid == self.appid() {
            return None;
        }
        self.inner.client.client_for(appid).ok()
    }

    /// [`Component::client_for`] as a lookup, for
    /// [`crate::ApiProxy::more_accounts`] and [`crate::CustomerServiceSink::more_clients`].
    pub fn clients(&self) -> crate::ClientLookup {
        let me = self.clone();
        Arc::new(move |appid: &str| me.client_for(appid))
    }

    /// The handler of the authorization events: `component_verify_ticket` is stored;
    /// `authorized` and `updateauthorized` are answered at once, then exchanged
    /// (`api_query_auth`), stored and added to `accounts`; `unauthorized` is forgotten and
    /// removed. Give it to [`crate::WechatServiceBuilder::handler_service`] of a service
    /// whose one account is [`Component::account`].
    pub fn push_handler(&self, accounts: LiveAccounts) -> BoxHandler {
        let handler = PushHandler { component: self.clone(), accounts };
        BoxHandler::new(tower::service_fn(move |inbound| handler.clone().handle(inbound)))
    }

    /// Wraps `rules` with the answers to WeChat's full-network-release cases (when switched
    /// on with [`Component::with_full_network_release`]), for this platform's authorizers
    /// only: the text `TESTCOMPONENT_MSG_TYPE_TEXT` gets `TESTCOMPONENT_MSG_TYPE_TEXT_callback`;
    /// `QUERY_AUTH_CODE:<code>` gets no reply, then the code is exchanged (`api_query_auth`)
    /// and `<code>_from_api` sent as a customer-service message with the authorizer's
    /// token; an event gets `<event>from_callback`. Everything else goes to `rules`.
    pub fn release_tests(&self, rules: BoxHandler) -> BoxHandler {
        if !self.inner.full_network_release {
            return rules;
        }
        let handler = ReleaseTests { component: self.clone(), rules };
        BoxHandler::new(tower::service_fn(move |inbound| handler.clone().handle(inbound)))
    }

    /// Exchanges an authorization code (`auth_code` of the authorization page's redirect,
    /// or an `authorized` push's), stores the authorizer (with its profile, when the
    /// platform gives it), adds it to `accounts` and returns it.
    ///
    /// WeChat exchanges a code once, but the push and the redirect carry the same one (often
    /// to different instances) and a reload of the page brings it again: the codes are
    /// claimed and their outcome kept in the platform's state
    /// ([`wemp_store::ComponentState::claim_code`]), so a code exchanged by any instance
    /// sharing the store lately is answered with the authorizer it became, and a code
    /// another instance is exchanging now is waited for, not exchanged again.
    ///
    /// # Errors
    /// The platform refuses the code ([`wemp_client::Error::Api`], 61010 for one that
    /// expired or was used elsewhere), a call or the store fails, or another instance held
    /// the code for longer than its lease without finishing.
    pub async fn authorize(&self, accounts: &LiveAccounts, code: &str) -> Result<Authorizer, BoxError> {
        let client = &self.inner.client;
        let state = client.state();
        let deadline = tokio::time::Instant::now() + EXCHANGE_LEASE * 2;
        let appid = loop {
            match state.claim_code(code, EXCHANGE_LEASE).await? {
                CodeClaim::Exchanged(appid) => break appid,
                CodeClaim::Claimed => {
                    let appid = match client.query_auth(code).await {
                        Ok(a) => a.authorizer_appid,
                        Err(e) => {
                            if let Err(release) = state.release_code(code).await {
                                tracing::warn!(error = %release, "cannot give up the authorization code's claim; it lapses with its lease");
                            }
                            return Err(e.into());
                        }
                    };
                    if let Err(e) = client.authorizer_info(&appid).await {
                        tracing::warn!(appid, error = %e, "cannot read the authorizer's profile; serving it without");
                    }
                    state.code_exchanged(code, &appid).await?;
                    break appid;
                }
                CodeClaim::Exchanging if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(EXCHANGE_POLL).await;
                }
                CodeClaim::Exchanging => {
                    return Err("the authorization code is still being exchanged by another instance".into());
                }
                other => return Err(format!("unexpected claim on the authorization code: {other:?}").into()),
            }
        };
        let stored = state.authorizer(&appid).await?;
        let authorizer = stored.ok_or_else(|| format!("authorizer {appid} was not stored"))?;
        accounts.add(self.authorizer_account(&authorizer))?;
        tracing::info!(appid, scopes = ?authorizer.func_scopes, "authorizer added");
        Ok(authorizer)
    }
}

struct Source(Component);

#[async_trait::async_trait]
impl AccountSource for Source {
    async fn find(&self, segment: &str) -> Result<Option<Account>, BoxError> {
        let found = self.0.inner.client.state().authorizer(segment).await?;
        Ok(found.map(|a| self.0.authorizer_account(&a)))
    }

    async fn all(&self) -> Result<Vec<Account>, BoxError> {
        let all = self.0.inner.client.state().authorizers().await?;
        Ok(all.iter().map(|a| self.0.authorizer_account(a)).collect())
    }
}

#[derive(Clone)]
struct PushHandler {
    component: Component,
    accounts: LiveAccounts,
}

impl PushHandler {
    async fn handle(self, inbound: Inbound) -> Result<Reply, BoxError> {
        let xml = inbound.message().to_xml();
        let push = ComponentPush::parse(&xml)?;
        let component = &self.component;
        if push.component_appid != component.appid() {
            return Err(format!(
                "push for component {:?} arrived at component {}'s URL",
                push.component_appid,
                component.appid()
            )
            .into());
        }
        let state = component.inner.client.state();
        match push.event {
            ComponentEvent::VerifyTicket { ticket } => {
                // When it arrived here: its age is what matters (CreateTime is WeChat's clock).
                let now_ms = wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock);
                state.save_ticket(&ticket, now_ms).await?;
                tracing::debug!("component_verify_ticket stored");
            }
            ComponentEvent::Authorized(grant) | ComponentEvent::UpdateAuthorized(grant) => {
                // `success` now; the exchange may take longer than WeChat waits.
                let code = grant.authorization_code.expose().to_owned();
                let (component, accounts) = (component.clone(), self.accounts.clone());
                let appid = grant.authorizer_appid.clone();
                tokio::spawn(async move {
                    if let Err(e) = component.authorize(&accounts, &code).await {
                        tracing::error!(appid, error = %e, "authorization not completed (api_query_auth)");
                    }
                });
            }
            ComponentEvent::Unauthorized { authorizer_appid } => {
                component.inner.client.remove_authorizer(&authorizer_appid).await?;
                self.accounts.remove(&authorizer_appid);
                tracing::info!(appid = authorizer_appid, "authorizer removed (unauthorized)");
            }
            other => {
                tracing::info!(info_type = other.info_type(), "component push not handled; answered success");
            }
        }
        Ok(Reply::None)
    }
}

/// The text of the full-network-release message case.
const RELEASE_TEXT: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
/// The prefix of the full-network-release API case.
const RELEASE_QUERY: &str = "QUERY_AUTH_CODE:";

#[derive(Clone)]
struct ReleaseTests {
    component: Component,
    rules: BoxHandler,
}

impl ReleaseTests {
    async fn handle(self, inbound: Inbound) -> Result<Reply, BoxError> {
        if !self.component.serves(inbound.account()) {
            return tower::ServiceExt::oneshot(self.rules, inbound).await;
        }
        if let Incoming::Event(event) = inbound.message() {
            inbound.ctx().set_rule_name("full_network_release");
            // The Event value as it came (`LOCATION`), as the test case expects it back.
            let name = match event {
                wemp_proto::Event::Unknown(u) => u.event.clone().unwrap_or_default(),
                other => other.kind().as_str().to_owned(),
            };
            return Ok(Reply::text(format!("{name}from_callback")));
        }
        match inbound.text() {
            Some(RELEASE_TEXT) => {
                inbound.ctx().set_rule_name("full_network_release");
                Ok(Reply::text(format!("{RELEASE_TEXT}_callback")))
            }
            Some(text) if text.starts_with(RELEASE_QUERY) => {
                inbound.ctx().set_rule_name("full_network_release");
                let code = text[RELEASE_QUERY.len()..].trim().to_owned();
                let openid = inbound.openid().to_owned();
                tokio::spawn(async move {
                    let sent = async {
                        let client = &self.component.inner.client;
                        let appid = client.query_auth(&code).await?.authorizer_appid;
                        let client = client.client_for(&appid)?;
                        client.kf().send_reply(&openid, &Reply::text(format!("{code}_from_api"))).await?;
                        Ok::<_, BoxError>(())
                    };
                    if let Err(e) = sent.await {
                        tracing::error!(error = %e, "full-network-release API case failed");
                    }
                });
                Ok(Reply::None)
            }
            _ => tower::ServiceExt::oneshot(self.rules, inbound).await,
        }
    }
}
