//! Client tests against the fake platform in `wemp-testkit`.

mod api;
mod card_tickets;
mod cards;
mod comments;
mod component;
mod datacube;
mod kf;
mod mass;
mod member_cards;
mod subscribe;
mod templates;
mod token;
mod wecom;

use std::time::Duration;

use serde_json::Value;
use wemp_client::{Client, ClientBuilder, RetryPolicy};
use wemp_testkit::platform::FakePlatform;

/// A builder pointed at `platform`, judging expiry by the platform's clock, with fast
/// backoff so retries do not slow the tests.
pub(crate) fn builder(platform: &FakePlatform) -> ClientBuilder {
    let clock = platform.clock();
    Client::builder(platform.appid())
        .secret(platform.secret())
        .all_base_urls(platform.url())
        .clock(move || clock.now_ms())
        .retry_policy(RetryPolicy::new(3, Duration::from_millis(1)))
}

pub(crate) async fn setup() -> (FakePlatform, Client) {
    let platform = FakePlatform::start().await;
    let client = builder(&platform).build().unwrap();
    (platform, client)
}

/// The JSON body of the last request to `path`, which must be a POST carrying the token.
pub(crate) fn body(platform: &FakePlatform, path: &str) -> Value {
    let r = platform.last_request(path).unwrap_or_else(|| panic!("no request to {path}"));
    assert_eq!(r.method, "POST", "{path}");
    assert!(r.access_token().is_some(), "{path} carries the token");
    r.json().unwrap()
}

/// The shared Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`), or `None` after printing
/// why the calling test skips.
pub(crate) async fn shared_redis() -> Option<wemp_store::redis::ConnectionManager> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    match tokio::time::timeout(Duration::from_secs(5), wemp_store::redis::connect(&url)).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            eprintln!("skipping: cannot connect to Redis at {url}: {e}");
            None
        }
        Err(_) => {
            eprintln!("skipping: Redis at {url} did not answer within 5 s");
            None
        }
    }
}
