//! Echoes every text message back; greets new followers.
//!
//! ```sh
//! WECHAT_APPID=wx... WECHAT_TOKEN=... WECHAT_AES_KEY=... cargo run -p wemp-server --example echo_bot
//! ```
//! Configure `http://<host>:8080/wechat` as the server URL in the console.

use wemp_server::extract::Content;
use wemp_server::{Account, EventKind, Reply, Router, WechatService};

async fn echo(Content(text): Content) -> Reply {
    Reply::text(text)
}

async fn welcome() -> Reply {
    Reply::text("Thanks for following! Say anything and I will say it back.")
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
    let router = Router::new().on_event(EventKind::Subscribe, welcome).fallback(echo);
    let service =
        WechatService::builder().account(account).router(router).metrics_path("/metrics").build()?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(%bind, "echo bot listening");
    wemp_server::serve_with_shutdown(listener, service, wemp_server::shutdown_signal()).await?;
    Ok(())
}
