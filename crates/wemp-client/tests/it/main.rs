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
