use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use wemp_client::{ErrCode, Error, MemoryTokenStore, RemoteToken, TokenStore};
use wemp_testkit::platform::{FakePlatform, Fault, PlatformConfig};

use crate::{builder, setup};

const IPS: &str = "/cgi-bin/getcallbackip";

async fn ips(client: &wemp_client::Client) -> Result<Value, Error> {
    client.get::<Value>(IPS, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_calls_with_an_expired_token_fetch_once() {
    let (platform, client) = setup().await;
    ips(&client).await.unwrap();
    assert_eq!(platform.token_requests(), 1);
    platform.advance(Duration::from_secs(7200));

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { ips(&client).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(platform.token_requests(), 2, "exactly one fetch for 1,000 callers");
    assert_eq!(platform.answered_with(42001), 0, "no call went out with the expired token");
    assert_eq!(platform.requests_to(IPS).len(), 1001);
    assert_eq!(client.token_fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_clients_sharing_a_store_refresh_once() {
    let platform = FakePlatform::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    // The classic endpoint: a second fetch would retire the first token, so any double
    // refresh would show up as 40001s later.
    let clients: Vec<_> =
        (0..3).map(|_| builder(&platform).classic_token().store(store.clone()).build().unwrap()).collect();
    for c in &clients {
        ips(c).await.unwrap();
    }
    assert_eq!(platform.token_requests(), 1, "the second and third client read the store");

    platform.advance(Duration::from_secs(7200));
    let barrier = Arc::new(tokio::sync::Barrier::new(30));
    let mut tasks = Vec::new();
    for c in &clients {
        for _ in 0..10 {
            let (c, barrier) = (c.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                ips(&c).await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(platform.token_requests(), 2, "one refresh across the three clients");
    assert_eq!(platform.answered_with(40001), 0);
    assert_eq!(platform.answered_with(42001), 0);
    let fetched: u64 = clients.iter().map(wemp_client::Client::token_fetches).sum();
    assert_eq!(fetched, 2);

    // Long after: everyone still uses the one token, which the platform still accepts.
    platform.advance(Duration::from_secs(600));
    for c in &clients {
        ips(c).await.unwrap();
    }
    assert_eq!(platform.answered_with(40001), 0);
}

#[tokio::test]
async fn a_stale_40001_for_a_replaced_token_causes_no_second_refresh() {
    let platform = FakePlatform::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let a = builder(&platform).classic_token().store(store.clone()).build().unwrap();
    let b = builder(&platform).classic_token().store(store.clone()).build().unwrap();
    ips(&a).await.unwrap();
    ips(&b).await.unwrap();
    assert_eq!(platform.token_requests(), 1);

    platform.revoke_tokens();
    ips(&a).await.unwrap();
    assert_eq!(platform.token_requests(), 2, "a refreshed after its 40001");
    // b still holds the revoked token: its 40001 is stale; the store already has the new one.
    ips(&b).await.unwrap();
    assert_eq!(platform.token_requests(), 2, "no second refresh");
    assert_eq!(platform.answered_with(40001), 2);
    let tokens: Vec<_> =
        platform.requests_to(IPS).iter().map(|r| r.access_token().unwrap().to_owned()).collect();
    assert_eq!(tokens.len(), 6);
    assert_eq!(tokens[4], tokens[0], "b's stale call used the revoked token");
    assert_eq!(tokens[5], tokens[3], "b retried with the token a fetched");
    assert_ne!(tokens[0], tokens[3]);
}

#[tokio::test]
async fn token_errors_are_retried_once_never_looped() {
    let (platform, client) = setup().await;
    platform.inject(IPS, Fault::ErrCode(40001));
    let err = ips(&client).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::INVALID_CREDENTIAL));
    assert_eq!(platform.requests_to(IPS).len(), 2, "one retry");

    platform.clear_faults();
    platform.inject_times(IPS, Fault::ErrCode(42001), 1);
    ips(&client).await.unwrap();
    assert_eq!(platform.requests_to(IPS).len(), 4);
}

#[tokio::test]
async fn system_busy_is_retried_with_a_bound() {
    let (platform, client) = setup().await;
    platform.inject_times(IPS, Fault::BUSY, 2);
    ips(&client).await.unwrap();
    assert_eq!(platform.requests_to(IPS).len(), 3);

    platform.inject(IPS, Fault::BUSY);
    let err = ips(&client).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode::SYSTEM_BUSY));
    assert_eq!(platform.requests_to(IPS).len(), 3 + 4, "first try plus three retries");

    // The token endpoint's -1 is retried too.
    platform.clear_faults();
    platform.advance(Duration::from_secs(7200));
    platform.inject_times("/cgi-bin/stable_token", Fault::BUSY, 2);
    ips(&client).await.unwrap();
    assert_eq!(platform.requests_to("/cgi-bin/stable_token").len(), 1 + 3);
}

#[tokio::test]
async fn configuration_errors_are_never_retried_and_say_what_to_do() {
    let (platform, client) = setup().await;
    ips(&client).await.unwrap();
    for (code, words) in [
        (40164, "whitelist"),
        (45009, "quota"),
        (48001, "not authorized"),
        (40013, "AppID"),
        (40125, "AppSecret"),
    ] {
        platform.clear_requests();
        platform.inject_times(IPS, Fault::ErrCode(code), 1);
        let err = ips(&client).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrCode(code)));
        assert!(err.to_string().contains(words), "{err}");
        assert_eq!(platform.requests_to(IPS).len(), 1, "{code} not retried");
    }

    // At the token endpoint too.
    let fresh = builder(&platform).build().unwrap();
    platform.inject("/cgi-bin/stable_token", Fault::IP_NOT_WHITELISTED);
    let err = ips(&fresh).await.unwrap_err();
    assert!(matches!(&err, Error::Api(e) if e.path == "/cgi-bin/stable_token"), "{err:?}");
    assert!(err.to_string().contains("add this server's outbound IP address to the IP whitelist"));
    assert_eq!(platform.requests_to("/cgi-bin/stable_token").len(), 1, "not retried");
}

#[tokio::test]
async fn wrong_credentials_are_reported() {
    let platform = FakePlatform::start().await;
    let client = builder(&platform).secret("wrong").build().unwrap();
    assert_eq!(ips(&client).await.unwrap_err().code(), Some(ErrCode::INVALID_APPSECRET));
    let client = builder(&platform).classic_token().secret("wrong").build().unwrap();
    assert_eq!(ips(&client).await.unwrap_err().code(), Some(ErrCode::INVALID_APPSECRET));
    assert!(wemp_client::Client::builder("wx1").build().is_err(), "no secret, no stable provider");
}

#[tokio::test]
async fn tokens_refresh_proactively_at_80_percent() {
    let platform = FakePlatform::start().await;
    let client = builder(&platform).classic_token().build().unwrap();
    ips(&client).await.unwrap();
    platform.advance(Duration::from_secs(5000));
    ips(&client).await.unwrap();
    assert_eq!(platform.token_requests(), 1);
    platform.advance(Duration::from_secs(900)); // 5,900 s of 7,200: past 80 %
    ips(&client).await.unwrap();
    assert_eq!(platform.token_requests(), 2);
    let reqs = platform.requests_to(IPS);
    assert_ne!(reqs[1].access_token(), reqs[2].access_token());

    // The stable endpoint answers with the same token until it rolls over: one attempt,
    // then the client keeps the valid token without asking again.
    let platform = FakePlatform::start().await;
    let client = builder(&platform).build().unwrap();
    ips(&client).await.unwrap();
    platform.advance(Duration::from_secs(6000));
    for _ in 0..5 {
        ips(&client).await.unwrap();
    }
    assert_eq!(platform.token_requests(), 2);
    platform.advance(Duration::from_secs(1200));
    ips(&client).await.unwrap();
    assert_eq!(platform.token_requests(), 3, "expired: a new stable token");
    assert_eq!(platform.answered_with(42001) + platform.answered_with(40001), 0);
}

#[tokio::test]
async fn classic_fetch_retires_the_previous_token_after_the_overlap() {
    let platform =
        FakePlatform::start_with(PlatformConfig::default().overlap(Duration::from_secs(300))).await;
    let client = builder(&platform).classic_token().build().unwrap();
    ips(&client).await.unwrap();
    let mine = platform.requests_to(IPS)[0].access_token().unwrap().to_owned();
    let _other_process = platform.issue_classic_token();
    platform.advance(Duration::from_secs(299));
    assert!(platform.token_is_valid(&mine));
    ips(&client).await.unwrap();
    platform.advance(Duration::from_secs(2));
    assert!(!platform.token_is_valid(&mine));
    ips(&client).await.unwrap();
    assert_eq!(platform.answered_with(40001), 1);
    assert_eq!(platform.token_requests(), 2);
}

#[tokio::test]
async fn stable_token_is_shared_by_separate_stores() {
    let platform = FakePlatform::start().await;
    let a = builder(&platform).build().unwrap();
    let b = builder(&platform).build().unwrap();
    let (ta, tb) = (a.access_token().await.unwrap(), b.access_token().await.unwrap());
    assert_eq!(ta, tb, "separate processes receive the same stable token");
    assert!(format!("{ta:?}").starts_with("AccessToken(Secret("), "{ta:?}");
    assert!(!format!("{ta:?}").contains(ta.secret()));
}

#[tokio::test]
async fn remote_provider_asks_another_service() {
    let platform = FakePlatform::start().await;
    let token = platform.issue_classic_token();
    let hits = Arc::new(AtomicUsize::new(0));
    let hits2 = hits.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::get(move || {
            hits2.fetch_add(1, Ordering::SeqCst);
            let token = token.clone();
            async move { axum::Json(serde_json::json!({ "access_token": token, "expires_in": 7200 })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token?service=wemp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let clock = platform.clock();
    let client = wemp_client::Client::builder(platform.appid())
        .remote_token(RemoteToken::new(url).bearer("s3cret"))
        .base_url(platform.url())
        .clock(move || clock.now_ms())
        .build()
        .unwrap();
    ips(&client).await.unwrap();
    ips(&client).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(platform.token_requests(), 0);
}

#[tokio::test]
async fn jsapi_ticket_uses_the_same_machinery() {
    let (platform, client) = setup().await;
    let t1 = client.jsapi_ticket().await.unwrap();
    assert_eq!(client.jsapi_ticket().await.unwrap(), t1);
    assert_eq!(platform.requests_to("/cgi-bin/ticket/getticket").len(), 1);
    assert_eq!(platform.last_request("/cgi-bin/ticket/getticket").unwrap().query["type"], "jsapi");
    platform.advance(Duration::from_secs(7200));
    let t2 = client.jsapi_ticket().await.unwrap();
    assert_ne!(t1, t2);
    assert_eq!(platform.requests_to("/cgi-bin/ticket/getticket").len(), 2);
}

#[tokio::test]
async fn transport_failures_are_typed_and_never_leak_the_token() {
    let platform = FakePlatform::start().await;
    let client = builder(&platform).timeout(Duration::from_millis(300)).build().unwrap();
    let token = client.access_token().await.unwrap();

    platform.inject_times(IPS, Fault::Drop, 1);
    let err = ips(&client).await.unwrap_err();
    assert!(matches!(&err, Error::Http { path, .. } if path == IPS), "{err:?}");
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains(token.secret()), "{shown}");
    assert!(!shown.contains("access_token="), "{shown}");

    platform.inject_times(IPS, Fault::Delay(Duration::from_secs(5)), 1);
    let err = ips(&client).await.unwrap_err();
    assert!(matches!(&err, Error::Http { source, .. } if source.is_timeout()), "{err:?}");
    assert!(!format!("{err:?}").contains(token.secret()));
    assert!(!format!("{client:?}").contains(token.secret()));
    ips(&client).await.unwrap();
}
