//! The Open Platform client against the fake platform: tickets pushed over HTTP to a
//! receiver that admits them with `wemp_proto::admission::admit` and stores them in a
//! `ComponentState`, then the component token, the authorization flow and the authorizer's
//! client.

use std::sync::Arc;
use std::time::Duration;

use wemp_client::api::oauth::Scope;
use wemp_client::component::{AuthType, ComponentClient};
use wemp_client::{ErrCode, Error, RetryPolicy, TokenStore};
use wemp_proto::admission::{Account, Accounts, Policy, Request, Verdict, admit};
use wemp_proto::component::{ComponentEvent, ComponentPush};
use wemp_proto::{Mode, Secret};
use wemp_store::memory::{MemorySessionStore, MemoryTokenStore};
use wemp_store::{ComponentState, SessionStore};
use wemp_testkit::platform::FakePlatform;

/// A stand-in for the server's authorization event URL: admits the push with the
/// component's account, stores the ticket, records authorization codes, removes
/// withdrawn authorizers; answers `success`.
struct Receiver {
    url: String,
    codes: Arc<std::sync::Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receiver(platform: &FakePlatform, state: ComponentState) -> Receiver {
    let account = Account::new(platform.component_appid(), platform.component_token())
        .with_aes_key(&platform.component_aes_key())
        .unwrap()
        .with_mode(Mode::Safe)
        .with_path("component");
    let accounts = Arc::new(Accounts::new([account]).unwrap());
    let codes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = codes.clone();
    let handler = move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let (accounts, state, seen) = (accounts.clone(), state.clone(), seen.clone());
        async move {
            let now = wemp_client::Clock::now_ms(&wemp_client::SystemClock);
            let query = uri.query().unwrap_or_default();
            let a =
                admit(&accounts, &Policy::default(), now / 1000, &Request::post(uri.path(), query, &body));
            let Verdict::Message { xml, .. } = a.verdict else {
                return (axum::http::StatusCode::FORBIDDEN, format!("{:?}", a.refusal()));
            };
            match ComponentPush::parse(&xml).unwrap().event {
                ComponentEvent::VerifyTicket { ticket } => {
                    state.save_ticket(&ticket, now).await.unwrap();
                }
                ComponentEvent::Authorized(g) | ComponentEvent::UpdateAuthorized(g) => {
                    seen.lock().unwrap().push(g.authorization_code.expose().to_owned());
                }
                ComponentEvent::Unauthorized { authorizer_appid } => {
                    state.remove_authorizer(&authorizer_appid).await.unwrap();
                }
                _ => {}
            }
            (axum::http::StatusCode::OK, "success".to_owned())
        }
    };
    let app = axum::Router::new().route("/component", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/component", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, codes, server }
}

fn component(platform: &FakePlatform, state: ComponentState, store: Arc<dyn TokenStore>) -> ComponentClient {
    let clock = platform.clock();
    ComponentClient::builder(platform.component_appid(), platform.component_secret(), state)
        .client(|b| {
            b.all_base_urls(platform.url())
                .store(store)
                .clock(move || clock.now_ms())
                .retry_policy(RetryPolicy::new(3, Duration::from_millis(1)))
        })
        .push_url("https://example.com/component")
        .build()
        .unwrap()
}

/// A platform, memory state, a receiver that got the first ticket, and a client.
async fn setup() -> (FakePlatform, ComponentState, Receiver, ComponentClient) {
    let platform = FakePlatform::start().await;
    let state = memory_state(&platform);
    let rx = receiver(&platform, state.clone()).await;
    assert_eq!(platform.push_ticket(&rx.url).await.body, "success");
    let c = component(&platform, state.clone(), Arc::new(MemoryTokenStore::new()));
    (platform, state, rx, c)
}

fn memory_state(platform: &FakePlatform) -> ComponentState {
    ComponentState::new(Arc::new(MemorySessionStore::new()), platform.component_appid())
}

#[tokio::test]
async fn no_ticket_yet_is_a_clear_error_and_the_pushed_ticket_gets_the_token() {
    let platform = FakePlatform::start().await;
    let state = memory_state(&platform);
    let c = component(&platform, state.clone(), Arc::new(MemoryTokenStore::new()));
    let err = c.component_token().await.unwrap_err();
    assert!(matches!(err, Error::NoVerifyTicket { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("every 10 minutes to https://example.com/component"), "{text}");
    assert!(platform.requests_to("/cgi-bin/component/api_component_token").is_empty());

    let rx = receiver(&platform, state.clone()).await;
    let pushed = platform.push_ticket(&rx.url).await;
    assert_eq!((pushed.status, pushed.body.as_str()), (200, "success"));
    assert_eq!(state.ticket().await.unwrap().unwrap().ticket.expose(), pushed.value);

    let token = c.component_token().await.unwrap();
    let call = platform.last_request("/cgi-bin/component/api_component_token").unwrap();
    let body = call.json().unwrap();
    assert_eq!(body["component_verify_ticket"], pushed.value.as_str());
    assert_eq!(body["component_appsecret"], platform.component_secret().as_str());
    assert!(!format!("{token:?}").contains(token.secret()), "Debug hides the token");

    // A stale ticket (another one was pushed and not stored) is WeChat's 61006, with a hint.
    platform.revoke_component_tokens();
    {
        let w = platform.push_ticket("http://127.0.0.1:9/nowhere").await;
        assert_eq!(w.status, 0, "{w:?}");
    }
    let err = c.pre_auth_code().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::COMPONENT_TICKET_INVALID), "{err}");
    assert!(err.to_string().contains("pushes a new one every 10"), "{err}");
}

#[tokio::test]
async fn a_refused_component_token_is_replaced_once() {
    let (platform, _state, _rx, c) = setup().await;
    let first = c.component_token().await.unwrap();
    platform.revoke_component_tokens();
    let code = c.pre_auth_code().await.unwrap();
    assert!(code.pre_auth_code.expose().starts_with("preauthcode@@@"), "{code:?}");
    assert!(!format!("{code:?}").contains("preauthcode@@@"), "{code:?}");
    let calls = platform.requests_to("/cgi-bin/component/api_create_preauthcode");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].errcode, Some(40001));
    assert_eq!(calls[0].query["component_access_token"], first.secret());
    assert_ne!(calls[1].query["component_access_token"], first.secret());
    assert_eq!(c.token_fetches(), 2);
}

/// Two processes' clients on one Redis: one component token fetch between them.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_on_one_redis_share_the_component_token() {
    let Some(conn) = crate::shared_redis().await else { return };
    let prefix = format!("wemp-test:component:{:016x}:", rand::random::<u64>());
    let sessions = || -> Arc<dyn SessionStore> {
        Arc::new(wemp_store::redis::RedisSessionStore::new(conn.clone(), prefix.clone()))
    };
    let tokens = || -> Arc<dyn TokenStore> {
        Arc::new(wemp_store::redis::RedisTokenStore::new(conn.clone(), prefix.clone()))
    };
    let platform = FakePlatform::start().await;
    let rx = receiver(&platform, ComponentState::new(sessions(), platform.component_appid())).await;
    platform.push_ticket(&rx.url).await;

    let a = component(&platform, ComponentState::new(sessions(), platform.component_appid()), tokens());
    let b = component(&platform, ComponentState::new(sessions(), platform.component_appid()), tokens());
    let (ta, tb) = tokio::join!(a.component_token(), b.component_token());
    assert_eq!(ta.unwrap(), tb.unwrap());
    assert_eq!(platform.requests_to("/cgi-bin/component/api_component_token").len(), 1);
    assert_eq!(a.token_fetches() + b.token_fetches(), 1);

    // An authorizer stored by one is served by the other, with the token it stored.
    let code = platform.authorization_code(&platform.appid());
    a.query_auth(&code).await.unwrap();
    let users = b.client_for(&platform.appid()).unwrap().ops().callback_ips().await.unwrap();
    assert!(!users.is_empty());
    assert!(
        platform.requests_to("/cgi-bin/component/api_authorizer_token").is_empty(),
        "query_auth's token is shared"
    );

    let left = sessions();
    for what in ["ticket", "authorizers", &format!("authorizer:{}", platform.appid())] {
        left.delete(&format!("wemp:component:{}:{what}", platform.component_appid())).await.unwrap();
    }
}

/// Two processes' clients on one SQLite file (the default of `wemp serve`): the ticket and
/// the component token are shared through it, and one of them fetches.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_on_one_sqlite_file_share_the_ticket_and_the_component_token() {
    let path = std::env::temp_dir().join(format!("wemp-component-{:016x}.db", rand::random::<u64>()));
    let open = || async { wemp_store::sqlite::SqliteDatabase::open(&path).await.unwrap() };
    let platform = FakePlatform::start().await;
    let instance = |db: wemp_store::sqlite::SqliteDatabase| {
        let sessions: Arc<dyn SessionStore> = Arc::new(db.session_store());
        let tokens: Arc<dyn TokenStore> = Arc::new(wemp_store::SessionTokenStore::new(sessions.clone()));
        component(&platform, ComponentState::new(sessions, platform.component_appid()), tokens)
    };
    let (a, b) = (instance(open().await), instance(open().await));
    let db = open().await;
    let rx =
        receiver(&platform, ComponentState::new(Arc::new(db.session_store()), platform.component_appid()))
            .await;
    assert_eq!(platform.push_ticket(&rx.url).await.body, "success");

    let (ta, tb) = tokio::join!(a.component_token(), b.component_token());
    assert_eq!(ta.unwrap(), tb.unwrap());
    assert_eq!(platform.requests_to("/cgi-bin/component/api_component_token").len(), 1);

    // A third process, started later, uses the stored token without fetching.
    let c = instance(open().await);
    c.pre_auth_code().await.unwrap();
    assert_eq!(c.token_fetches(), 0);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn the_authorization_flow_stores_the_authorizer_and_its_client_calls_the_api() {
    let (platform, state, rx, c) = setup().await;

    // The authorization page, followed as a browser would: back to the redirect with auth_code.
    let pre = c.pre_auth_code().await.unwrap();
    let page =
        c.authorize_url(pre.pre_auth_code.expose(), "https://example.com/cb?x=1", AuthType::OfficialAccount);
    assert!(page.contains("/cgi-bin/componentloginpage?component_appid=wx00000000000c0mp1&"), "{page}");
    assert!(page.ends_with("&auth_type=1"), "{page}");
    let mobile = c.mobile_authorize_url(pre.pre_auth_code.expose(), "https://example.com/cb", AuthType::Both);
    assert!(mobile.contains("/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&"), "{mobile}");
    assert!(mobile.ends_with("&auth_type=3#wechat_redirect"), "{mobile}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(&page).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://example.com/cb?x=1&auth_code="), "{location}");
    let code = location.split("auth_code=").nth(1).unwrap().split('&').next().unwrap();
    let code = percent_encoding::percent_decode_str(code).decode_utf8().unwrap().into_owned();

    // No authorizer yet: its client says so.
    let appid = platform.appid();
    let err = c.client_for(&appid).unwrap().ops().callback_ips().await.unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err:?}");

    let auth = c.query_auth(&code).await.unwrap();
    assert_eq!((auth.authorizer_appid.as_str(), auth.func_scopes.as_slice()), (appid.as_str(), &[1, 15][..]));
    let stored = state.authorizer(&appid).await.unwrap().unwrap();
    assert_eq!(stored.refresh_token.expose(), platform.authorizer(&appid).unwrap().refresh_token);

    // A normal Client with the authorizer's token: a real API call.
    let client = c.client_for(&appid).unwrap();
    let ips = client.ops().callback_ips().await.unwrap();
    assert!(!ips.is_empty());
    let call = platform.last_request("/cgi-bin/getcallbackip").unwrap();
    assert!(platform.token_is_valid(call.access_token().unwrap()));

    // Its token expires: a new one from the stored refresh token (rotated and persisted).
    platform.rotate_refresh_tokens(true);
    platform.advance(Duration::from_secs(7200));
    client.ops().callback_ips().await.unwrap();
    let refreshes = platform.requests_to("/cgi-bin/component/api_authorizer_token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].json().unwrap()["authorizer_refresh_token"], stored.refresh_token.expose());
    let rotated = platform.authorizer(&appid).unwrap().refresh_token;
    assert_ne!(rotated, stored.refresh_token.expose());
    assert_eq!(state.authorizer(&appid).await.unwrap().unwrap().refresh_token.expose(), rotated);
    // A client built afresh (another process) refreshes with the rotated token and succeeds.
    let other = component(&platform, state.clone(), Arc::new(MemoryTokenStore::new()));
    other.client_for(&appid).unwrap().ops().callback_ips().await.unwrap();

    // The profile is recorded.
    let info = c.authorizer_info(&appid).await.unwrap();
    assert_eq!(info.service_type, Some(2));
    assert!(info.raw.pointer("/authorization_info/authorizer_refresh_token").is_none(), "never returned");
    let stored = state.authorizer(&appid).await.unwrap().unwrap();
    assert_eq!(stored.nick_name, info.nick_name);
    assert_eq!(stored.user_name.as_deref().map(|u| u.starts_with("gh_")), Some(true));

    // Withdrawn: the push removes it, and its client says so.
    let pushed = platform.push_unauthorized(&rx.url, &appid).await;
    assert_eq!(pushed.body, "success");
    assert_eq!(state.authorizer(&appid).await.unwrap(), None);
    assert!(!c.remove_authorizer(&appid).await.unwrap(), "already gone");
    platform.advance(Duration::from_secs(7200));
    let err = c.client_for(&appid).unwrap().ops().callback_ips().await.unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn an_authorized_push_carries_a_code_query_auth_accepts() {
    let (platform, state, rx, c) = setup().await;
    let pushed = platform.push_authorized(&rx.url, "wx5555555555555555").await;
    assert_eq!(pushed.body, "success");
    let code = rx.codes.lock().unwrap().pop().unwrap();
    assert_eq!(code, pushed.value);
    c.query_auth(&code).await.unwrap();
    assert_eq!(state.authorizers().await.unwrap()[0].appid, "wx5555555555555555");
    // A code works once.
    let err = c.query_auth(&code).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.0), Some(61010));
    // A wrong refresh token is WeChat's 61023, with what to do.
    let stored = state.authorizer("wx5555555555555555").await.unwrap().unwrap();
    let mut broken = stored.clone();
    broken.refresh_token = Secret::new("refreshtoken@@@wrong");
    state.save_authorizer(broken).await.unwrap();
    platform.advance(Duration::from_secs(7200));
    let err = c.client_for("wx5555555555555555").unwrap().access_token().await.unwrap_err();
    assert!(err.to_string().contains("authorize the third-party platform again"), "{err}");
}

#[tokio::test]
async fn oauth_on_behalf_of_an_authorizer() {
    let (platform, _state, _rx, c) = setup().await;
    platform.set_oauth_user(wemp_testkit::platform::FakeUser::new("oUser1"));
    let url = c.oauth_authorize_url(&platform.appid(), "https://example.com/cb", Scope::UserInfo, "s1");
    assert!(url.contains("&component_appid=wx00000000000c0mp1#wechat_redirect"), "{url}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(&url).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let token = c.oauth_exchange_code(&platform.appid(), &code).await.unwrap();
    assert_eq!(token.openid, "oUser1");
    let call = platform.last_request("/sns/oauth2/component/access_token").unwrap();
    assert_eq!(call.query["component_appid"], "wx00000000000c0mp1");
    assert!(call.query.contains_key("component_access_token") && !call.query.contains_key("secret"));
    let again = c.oauth_refresh_user_token(&platform.appid(), token.refresh_token.expose()).await.unwrap();
    assert_eq!(again.openid, "oUser1");
}

/// An answer that does not decode is reported without its body: component answers carry
/// authorizers' tokens.
#[tokio::test]
async fn an_undecodable_component_answer_never_shows_its_tokens() {
    let (platform, _state, _rx, c) = setup().await;
    platform.script(
        "/cgi-bin/component/api_query_auth",
        serde_json::json!({ "authorization_info": {
            "authorizer_appid": 42,
            "authorizer_access_token": "ACCESS_LEAK",
            "authorizer_refresh_token": "refreshtoken@@@LEAK",
        }}),
    );
    let err = c.query_auth("queryauthcode@@@x").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("LEAK"), "{shown}");
    assert!(shown.contains("/cgi-bin/component/api_query_auth"), "{shown}");
}
