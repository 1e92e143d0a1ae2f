//! `wemp serve` as a gateway in front of an app in any language (docs/gateway.md): the API
//! proxy (`[api_proxy]`) built from the configured accounts.

use wemp_server::ApiProxy;

use crate::config::Config;
use crate::serve::account_id;

/// The API proxy of `serve`: on when `api_proxy.token` (`WEMP_API_PROXY_TOKEN`) is set, over
/// the API clients of the accounts that have an AppSecret (`clients`, as [`crate::serve::api_clients`]
/// built them; each is known by its account's name and its id). `None` when off.
pub fn api_proxy(cfg: &Config, clients: &[wemp_client::Client]) -> Option<ApiProxy> {
    let token = cfg.api_proxy.token.clone()?;
    let mut proxy = ApiProxy::new(token);
    for client in clients {
        let names = (0..cfg.accounts.len())
            .find(|&i| account_id(cfg, i) == client.appid())
            .and_then(|i| cfg.accounts[i].name.clone());
        proxy = proxy.account(names, client.clone());
    }
    Some(proxy)
}
