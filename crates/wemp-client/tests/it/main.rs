//! Client tests against the fake platform in `wemp-testkit`.

mod api;
mod card_tickets;
mod cards;
mod comments;
mod component;
mod datacube;
mod member_cards;
mod token;
mod wecom;

use std::time::Duration;

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
