//! Answers custom-menu clicks, QR-code follows and a few text commands, mounted inside a
//! larger axum app next to a health check.
//!
//! ```sh
//! WECHAT_APPID=wx... WECHAT_TOKEN=... WECHAT_AES_KEY=... cargo run -p wemp-server --example menu_bot
//! ```
//! WeChat calls only ports 80 and 443 of a public host: put a reverse proxy in front
//! (docs/deploy.md) and configure its URL, `https://your.domain/wechat`, in the console.

use std::time::Duration;

use wemp_server::extract::{Captures, ClickKey, OpenId, QrScene};
use wemp_server::{Account, Article, Ctx, EventKind, FallThrough, Reply, Router, WechatService};

async fn today(ClickKey(key): ClickKey) -> Reply {
    Reply::text(format!("You clicked {key}: today's pick is on its way."))
}

async fn news() -> Reply {
    Reply::news(vec![Article::new(
        "What's new",
        "Our latest article",
        "https://example.com/cover.jpg",
        "https://example.com/latest",
    )])
}

async fn followed_via_qr(QrScene(scene): QrScene) -> Reply {
    Reply::text(format!("Welcome! You scanned the code for campaign {scene}."))
}

async fn followed() -> Reply {
    Reply::text("Welcome! Tap the menu below to get started.")
}

async fn order_status(captures: Captures) -> Reply {
    Reply::text(format!("Order {} has shipped.", captures.get(1).unwrap_or("?")))
}

/// Slow work: answers `success` at once and sends the result later through the late sink.
async fn report(ctx: Ctx) -> Reply {
    ctx.defer();
    tokio::time::sleep(Duration::from_secs(8)).await;
    Reply::text("Your monthly report is ready.")
}

/// Only for the admin; everyone else falls through to the next rule.
async fn admin(OpenId(openid): OpenId) -> Result<Reply, FallThrough> {
    if std::env::var("ADMIN_OPENID").is_ok_and(|admin| admin == openid) {
        Ok(Reply::text("admin: all systems nominal"))
    } else {
        Err(FallThrough)
    }
}

async fn help() -> Reply {
    Reply::text("Try: order 123, report, status — or use the menu.")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let appid = std::env::var("WECHAT_APPID").unwrap_or_else(|_| "wx2c2769f8efd9abc2".into());
    let token = std::env::var("WECHAT_TOKEN").unwrap_or_else(|_| "spamtest".into());
    let mut account = Account::new(appid, token);
    if let Ok(key) = std::env::var("WECHAT_AES_KEY") {
        account = account.with_aes_key(&key)?;
    }
    let router = Router::new()
        .on_event_key("V1001_TODAY_MUSIC", today)
        .on_event_key_prefix("NEWS_", news)
        .on_event(EventKind::Subscribe, followed_via_qr)
        .on_event(EventKind::Subscribe, followed)
        .on_event(EventKind::Scan, followed_via_qr)
        .on_text_regex(r"^order (\d+)$", order_status)
        .on_text("report", report)
        .on_text("status", admin)
        .fallback(help);
    let service =
        WechatService::builder().account(account).router(router).metrics_path("/metrics").build()?;
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .nest_service("/wechat", service.clone().into_router());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    axum::serve(listener, app).with_graceful_shutdown(wemp_server::shutdown_signal()).await?;
    service.drain(Duration::from_secs(30)).await;
    Ok(())
}
