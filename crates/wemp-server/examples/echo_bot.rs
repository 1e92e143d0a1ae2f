//! The bot of the README: answers `help` and `order <n>` (from a shared "database"), greets
//! new followers, echoes other text, and leaves events it does not know unanswered.
//!
//! ```sh
//! WECHAT_APPID=wx... WECHAT_TOKEN=... WECHAT_AES_KEY=... cargo run -p wemp-server --example echo_bot
//! wemp sim send http://127.0.0.1:8080/wechat --token "$WECHAT_TOKEN" text "order 42"   # in another terminal
//! ```
//!
//! It listens on 127.0.0.1:8080 (`BIND` to change). WeChat calls only ports 80 and 443 of a
//! public host: put a reverse proxy in front and configure its URL
//! (`https://your.domain/wechat`) in the WeChat console; docs/deploy.md shows how.
//! Log lines go to standard error: a failing handler, a reply that missed the deadline and
//! every refused request are logged there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wemp_server::extract::{Captures, OpenId};
use wemp_server::{Account, EventKind, Incoming, Reply, Router, WechatService};

/// Stands in for your database pool (`sqlx::PgPool`, `deadpool_postgres::Pool`, a Redis
/// client, …): anything cheap to clone that handlers share.
#[derive(Clone, Default)]
struct Db {
    orders: Arc<Mutex<HashMap<u64, String>>>,
}

impl Db {
    async fn order_status(&self, id: u64) -> Option<String> {
        self.orders.lock().ok()?.get(&id).cloned()
    }
}

async fn help() -> Reply {
    Reply::text("Send \"order 42\" to track an order.")
}

/// A handler that needs the database takes it as an argument; the router gets a closure
/// that hands it a clone (see `main`). `Err` is logged and answered with `success`.
async fn order(db: Db, captures: Captures) -> Result<Reply, std::num::ParseIntError> {
    let id: u64 = captures.get(1).unwrap_or_default().parse()?;
    Ok(match db.order_status(id).await {
        Some(status) => Reply::text(format!("Order {id}: {status}")),
        None => Reply::text(format!("No order {id}.")),
    })
}

async fn welcome(OpenId(user): OpenId) -> Reply {
    tracing::info!(%user, "new follower");
    Reply::text("Thanks for following! Send \"help\" to see what I can do.")
}

/// Everything no rule took: text is echoed, other messages get a hint, and events (location
/// reports, menu views, …) get no answer, so a follower is never told "I did not
/// understand" for opening the chat.
async fn fallback(message: Incoming) -> Reply {
    match message {
        Incoming::Text(text) => Reply::text(text.content),
        Incoming::Event(_) => Reply::None,
        _ => Reply::text("I can read text for now: send \"help\"."),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without a subscriber, handler errors and late replies would go unseen.
    tracing_subscriber::fmt().with_env_filter("info").init();
    let appid = std::env::var("WECHAT_APPID").unwrap_or_else(|_| "wx2c2769f8efd9abc2".into());
    let token = std::env::var("WECHAT_TOKEN").unwrap_or_else(|_| "spamtest".into());
    let mut account = Account::new(appid, token);
    if let Ok(key) = std::env::var("WECHAT_AES_KEY") {
        account = account.with_aes_key(&key)?;
    }
    let db = Db::default();
    db.orders.lock().map_err(|_| "poisoned")?.insert(42, "on its way".into());

    let router = Router::new()
        .on_text("help", help)
        .on_text_regex(r"^order (\d+)$", move |c: Captures| order(db.clone(), c))
        .on_event(EventKind::Subscribe, welcome)
        .fallback(fallback);
    let service =
        WechatService::builder().account(account).router(router).metrics_path("/metrics").build()?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(%bind, "bot listening at /wechat");
    wemp_server::serve_with_shutdown(listener, service, wemp_server::shutdown_signal()).await?;
    Ok(())
}
