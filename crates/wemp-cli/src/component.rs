//! `wemp component`: the third-party platform of `[component]` from a separate process —
//! the authorization URL (a fresh pre_auth_code, with the component token from the stored
//! ticket) and the authorizers stored in the platform's state.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;

/// How old the stored ticket may get before `doctor` warns (WeChat pushes one every 10
/// minutes).
pub const TICKET_LATE_MS: i64 = 20 * 60 * 1000;
/// How old the stored ticket may get before `doctor` fails (it is valid about 12 hours).
pub const TICKET_EXPIRED_MS: i64 = 12 * 3600 * 1000;

/// The platform of `cfg`, or why there is none.
async fn open(cfg: &Config, api_base: Option<&str>) -> Result<wemp_server::Component, String> {
    let tokens = crate::storage::token_store(&cfg.storage).await.map_err(|e| format!("token store: {e}"))?;
    crate::serve::component(cfg, api_base, tokens)
        .await?
        .ok_or_else(|| "no [component] section in the config: add the third-party platform first".to_owned())
}

/// The authorization page's URL (PC, or `mobile`), with a fresh pre_auth_code; `redirect`
/// defaults to [`default_redirect`] (the page `wemp serve` answers).
///
/// # Errors
/// No `[component]`, no redirect given nor `console.public_url` set, no ticket stored yet,
/// or the platform refused.
pub async fn authorize_url(
    cfg: &Config,
    api_base: Option<&str>,
    redirect: Option<&str>,
    mobile: bool,
) -> Result<String, String> {
    let component = open(cfg, api_base).await?;
    let redirect = match redirect {
        Some(r) => r.to_owned(),
        None => default_redirect(cfg).ok_or_else(|| {
            "give --redirect URL (where the browser returns after authorizing), or set console.public_url: \
             then it is <public origin><component.path>/authorized, the page wemp serve answers"
                .to_owned()
        })?,
    };
    let redirect = redirect.as_str();
    let client = component.client();
    let code = client.pre_auth_code().await.map_err(|e| format!("pre_auth_code: {e}"))?;
    let kind = wemp_client::component::AuthType::Both;
    Ok(if mobile {
        client.mobile_authorize_url(code.pre_auth_code.expose(), redirect, kind)
    } else {
        client.authorize_url(code.pre_auth_code.expose(), redirect, kind)
    })
}

/// Where the authorization page sends the browser back (with `auth_code`): this path under
/// `component.path` (default `/component/authorized`).
pub const AUTHORIZED_SEGMENT: &str = "authorized";

/// The path of the page `wemp serve` answers the authorization's redirect on:
/// `<component.path>/authorized`.
pub fn authorized_path(c: &crate::config::ComponentConfig) -> String {
    format!("{}/{AUTHORIZED_SEGMENT}", c.path.trim_end_matches('/'))
}

/// The redirect `authorize-url` uses without `--redirect`: the origin of
/// `console.public_url` and [`authorized_path`] (`https://bot.example.com/component/authorized`).
pub fn default_redirect(cfg: &Config) -> Option<String> {
    let c = cfg.component.as_ref()?;
    let public = cfg.console.public_url.as_deref()?;
    let (scheme, rest) = public.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}{}", authorized_path(c)))
}

/// The longest `auth_code` the page passes to WeChat (theirs are about 100 characters).
const MAX_AUTH_CODE: usize = 512;

/// The page of the authorization's redirect: exchanges `auth_code` (`api_query_auth`),
/// stores the authorizer, adds it to `accounts` and says which account authorized, in
/// Chinese or English by the browser's `Accept-Language` (Chinese without one). A missing
/// or refused code gets 400; a failure of the platform or the store 502 (503 without a
/// ticket yet). The page never shows a token or the code.
pub fn authorized_route(
    component: wemp_server::Component,
    accounts: wemp_server::LiveAccounts,
) -> axum::routing::MethodRouter {
    axum::routing::get(
        move |headers: axum::http::HeaderMap,
              query: axum::extract::Query<std::collections::HashMap<String, String>>| {
            let (component, accounts) = (component.clone(), accounts.clone());
            async move { authorized_page(&component, &accounts, &headers, query.get("auth_code")).await }
        },
    )
}

async fn authorized_page(
    component: &wemp_server::Component,
    accounts: &wemp_server::LiveAccounts,
    headers: &axum::http::HeaderMap,
    code: Option<&String>,
) -> axum::response::Response {
    use crate::i18n::{Lang, Msg};
    use axum::http::StatusCode;
    use wemp_console::escape_html as esc;
    let lang = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split([',', ';']).next())
        .map_or(Lang::Zh, |first| Lang::of_locale(first.trim()));
    let page = |status: StatusCode, title: Msg, body: String| {
        let html_lang = if lang == Lang::Zh { "zh-CN" } else { "en" };
        let title = title.get(lang);
        wemp_console::html_page(
            status,
            format!(
                "<!doctype html><html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>"
            ),
        )
    };
    let code = code
        .map(|c| c.trim())
        .filter(|c| !c.is_empty() && c.len() <= MAX_AUTH_CODE && c.bytes().all(|b| b.is_ascii_graphic()));
    let Some(code) = code else {
        return page(StatusCode::BAD_REQUEST, Msg::AuthorizeFailedTitle, esc(Msg::AuthorizeNoCode.get(lang)));
    };
    match component.authorize(accounts, code).await {
        Ok(a) => {
            let name = a.nick_name.as_deref().unwrap_or(&a.appid);
            let body = Msg::AuthorizedBody.fill(
                lang,
                &[("name", &esc(name)), ("appid", &esc(&a.appid)), ("component", &esc(component.appid()))],
            );
            page(StatusCode::OK, Msg::AuthorizedTitle, body)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the authorization's redirect was not completed");
            let (status, text) = match e.downcast_ref::<wemp_client::Error>() {
                Some(wemp_client::Error::Api(api)) if matches!(api.code.0, 61009 | 61010) => {
                    (StatusCode::BAD_REQUEST, Msg::AuthorizeCodeRefused.fill(lang, &[("code", &api.code.0)]))
                }
                Some(wemp_client::Error::NoVerifyTicket { .. }) => {
                    (StatusCode::SERVICE_UNAVAILABLE, Msg::AuthorizeFailed.fill(lang, &[("error", &e)]))
                }
                _ => (StatusCode::BAD_GATEWAY, Msg::AuthorizeFailed.fill(lang, &[("error", &e)])),
            };
            page(status, Msg::AuthorizeFailedTitle, esc(&text))
        }
    }
}

/// One authorizer as `wemp component list` (and the console's setup page) shows it.
pub type Row = wemp_console::AuthorizerSummary;

fn row(a: wemp_store::component::Authorizer) -> Row {
    Row {
        refresh_token_stored: !a.refresh_token.is_empty(),
        appid: a.appid,
        nick_name: a.nick_name,
        user_name: a.user_name,
        func_scopes: a.func_scopes,
        authorized_at_ms: a.authorized_at_ms,
    }
}

/// The platform's authorizers for the web console's setup page (read-only).
#[derive(Clone, Debug)]
pub struct ConsoleAuthorizers(pub wemp_server::Component);

#[async_trait::async_trait]
impl wemp_console::Authorizers for ConsoleAuthorizers {
    async fn list(&self) -> Result<Vec<Row>, String> {
        let all = self.0.client().state().authorizers().await.map_err(|e| format!("component state: {e}"))?;
        Ok(all.into_iter().map(row).collect())
    }
}

/// What `wemp component list` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// The component appid.
    pub component_appid: String,
    /// How old the stored verify ticket is (ms), if one is stored.
    pub ticket_age_ms: Option<i64>,
    /// The authorizers, first authorized first.
    pub authorizers: Vec<Row>,
}

/// The stored authorizers and ticket.
///
/// # Errors
/// No `[component]`, or the state cannot be read.
pub async fn list(cfg: &Config) -> Result<Listing, String> {
    let component = open(cfg, None).await?;
    let state = component.client().state();
    let now = crate::logview::now_ms();
    let ticket = state.ticket().await.map_err(|e| format!("component state: {e}"))?;
    let authorizers = state.authorizers().await.map_err(|e| format!("component state: {e}"))?;
    Ok(Listing {
        component_appid: component.appid().to_owned(),
        ticket_age_ms: ticket.map(|t| now.saturating_sub(t.received_at_ms)),
        authorizers: authorizers.into_iter().map(row).collect(),
    })
}

impl Listing {
    /// The listing as text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let ticket = match self.ticket_age_ms {
            Some(age) => format!("ticket received {} ago", age_text(age)),
            None => "no ticket yet (WeChat pushes one every 10 minutes to the 授权事件接收 URL)".to_owned(),
        };
        let _ = writeln!(s, "component {}: {ticket}", self.component_appid);
        if self.authorizers.is_empty() {
            let _ = writeln!(s, "no authorizers yet: wemp component authorize-url --redirect URL");
        }
        for a in &self.authorizers {
            let name = a.nick_name.as_deref().unwrap_or("-");
            let gh = a.user_name.as_deref().unwrap_or("-");
            let token = if a.refresh_token_stored { "refresh token stored" } else { "no refresh token" };
            let _ = writeln!(s, "{}  {name}  {gh}  scopes {:?}  {token}", a.appid, a.func_scopes);
        }
        s
    }
}

/// `3 min`, `2 h 5 min`.
pub fn age_text(ms: i64) -> String {
    let min = ms.max(0) / 60_000;
    if min < 60 { format!("{min} min") } else { format!("{} h {} min", min / 60, min % 60) }
}
