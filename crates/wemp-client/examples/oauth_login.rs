//! An axum app doing the OAuth2 web-authorization dance against the fake platform.
//!
//! `GET /login` redirects to the authorize page; the (fake) platform approves and
//! redirects back to `/callback?code=…&state=…`, which exchanges the code and greets the
//! user by nickname. The `main` function plays the browser.
//!
//! `cargo run -p wemp-client --example oauth_login`

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use wemp_client::Client;
use wemp_client::api::oauth::Scope;
use wemp_testkit::platform::{FakePlatform, FakeUser};

struct App {
    client: Client,
    base: String,
    /// The `state` issued with the redirect (one per session in a real app).
    state: String,
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: String,
}

async fn login(State(app): State<Arc<App>>) -> Redirect {
    let redirect_uri = format!("{}/callback", app.base);
    Redirect::to(&app.client.oauth().authorize_url(&redirect_uri, Scope::UserInfo, &app.state))
}

async fn callback(State(app): State<Arc<App>>, Query(cb): Query<Callback>) -> Response {
    if cb.state != app.state {
        return (StatusCode::BAD_REQUEST, "state mismatch").into_response();
    }
    let Some(code) = cb.code else {
        return (StatusCode::FORBIDDEN, "the user declined").into_response();
    };
    let result = async {
        let token = app.client.oauth().exchange_code(&code).await?;
        app.client.oauth().user_info(&token).await
    }
    .await;
    match result {
        Ok(user) => format!("Hello, {} ({})", user.nickname, user.openid).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = FakePlatform::start().await;
    platform.set_oauth_user(FakeUser { nickname: "Ann".into(), ..FakeUser::new("o-ann") });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let client =
        Client::builder(platform.appid()).secret(platform.secret()).all_base_urls(platform.url()).build()?;
    let app = Arc::new(App { client, base: base.clone(), state: "s-7f3a".into() });
    let router = Router::new().route("/login", get(login)).route("/callback", get(callback)).with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The browser: follows /login → authorize page → /callback.
    let page = reqwest::get(format!("{base}/login")).await?.text().await?;
    eprintln!("{page}");
    assert_eq!(page, "Hello, Ann (o-ann)");
    Ok(())
}
