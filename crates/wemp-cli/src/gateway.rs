//! `wemp serve` as a gateway in front of an app in any language (docs/gateway.md): the API
//! proxy (`[api_proxy]`) and forwarding (`[gateway]`, `--forward`) built from the
//! configuration.

use wemp_server::{ApiProxy, Forward, Handler, RuleService};

use crate::config::Config;
use crate::serve::account_id;

/// The forwarder of `serve`: on when `gateway.forward` (`--forward`, `WEMP_FORWARD`) is set;
/// each account appears in the JSON by its name (else its id) and its appid.
///
/// # Errors
/// The HTTP client cannot be built.
pub fn forward(cfg: &Config) -> Result<Option<Forward>, String> {
    let Some(url) = &cfg.gateway.forward else { return Ok(None) };
    let mut f = Forward::with_timeout(url.clone(), cfg.gateway.forward_timeout)
        .map_err(|e| format!("forwarding to {url}: {e}"))?;
    if let Some(secret) = &cfg.gateway.forward_secret {
        f = f.secret(secret.expose());
    }
    if let Some(text) = &cfg.gateway.fallback_text {
        f = f.fallback_text(text.clone());
    }
    for (i, a) in cfg.accounts.iter().enumerate() {
        let id = account_id(cfg, i);
        let name = a.name.clone().unwrap_or_else(|| id.clone());
        f = f.account_names(id, name, a.appid.clone());
    }
    Ok(Some(f))
}

/// The fallback of the rules' router when forwarding: a message no rule answers goes to
/// the app (see [`crate::serve::ServedRules::with_fallback`]).
pub fn forwarding(forward: &Forward) -> RuleService {
    Handler::into_service(forward.handler())
}

/// The API proxy of `serve`: on when `api_proxy.token` (`WEMP_API_PROXY_TOKEN`) is set, over
/// the API clients of the accounts that have an AppSecret (`clients`, as [`crate::serve::api_clients`]
/// built them; each is known by its account's name and its id). `None` when off.
pub fn api_proxy(cfg: &Config, clients: &[wemp_client::Client]) -> Option<ApiProxy> {
    let token = cfg.api_proxy.token.as_ref()?.expose().to_owned();
    let mut proxy = ApiProxy::new(token);
    for client in clients {
        let names = (0..cfg.accounts.len())
            .find(|&i| account_id(cfg, i) == client.appid())
            .and_then(|i| cfg.accounts[i].name.clone());
        proxy = proxy.account(names, client.clone());
    }
    Some(proxy)
}
