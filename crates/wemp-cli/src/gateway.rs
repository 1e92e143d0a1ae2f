//! `wemp serve` as a gateway in front of an app in any language (docs/gateway.md): the API
//! proxy (`[api_proxy]`) and forwarding (`[gateway]`, `--forward`) built from the
//! configuration.

use wemp_server::{ApiProxy, Forward, Handler, RELAY_TARGET, Relay, RuleService};

use crate::config::Config;

/// The target of a `forward` (`gateway.forward`, a rule's `forward`) that means "through the
/// relay clients connected to `<path>/relay`" rather than a URL.
pub const RELAY: &str = RELAY_TARGET;

/// Why a `forward` target or the gateway cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// `"relay"` without `gateway.forward_secret`.
    #[error(
        "\"relay\" needs gateway.forward_secret (or WEMP_FORWARD_SECRET): relay clients prove they know it \
         before they get any message"
    )]
    RelayNeedsSecret,
    /// A URL beyond loopback without `gateway.forward_secret`.
    #[error(
        "forwarding to {0:?}, beyond loopback, needs a shared secret to sign with \
         (gateway.forward_secret or WEMP_FORWARD_SECRET) so the app can trust what it gets"
    )]
    UrlNeedsSecret(String),
    /// Neither `"relay"` nor an `http://`/`https://` URL with a host.
    #[error("{0:?} is not an http:// or https:// URL, nor \"relay\"")]
    NotATarget(String),
    /// `"relay"` named on reload by a server started without a relay hub.
    #[error(
        "\"relay\" is served only when configured at start (with gateway.forward_secret): restart `wemp serve`"
    )]
    RelayNotStarted,
    /// The HTTP client of forwarding cannot be built.
    #[error("the HTTP client of forwarding: {0}")]
    Client(#[source] std::sync::Arc<reqwest::Error>),
}

impl GatewayError {
    /// The error as a [`Wording`](crate::i18n::Wording), for the config check's problems.
    pub fn message(&self) -> crate::i18n::Wording {
        self.worded(false)
    }

    /// As [`GatewayError::message`], after "missing: " (for the field that is missing).
    pub fn message_missing(&self) -> crate::i18n::Wording {
        self.worded(true)
    }

    fn worded(&self, missing: bool) -> crate::i18n::Wording {
        use crate::i18n::{Arg, Msg, Wording};
        let prefix = if missing {
            Arg::Wording(Box::new(Msg::CfgMissingPrefix.into()))
        } else {
            Arg::Text(String::new())
        };
        match self {
            Self::RelayNeedsSecret => Wording::new(Msg::CfgRelayNeedsSecret).arg("prefix", prefix),
            Self::UrlNeedsSecret(url) => {
                Wording::new(Msg::CfgUrlNeedsSecret).arg("prefix", prefix).with("url", url)
            }
            Self::NotATarget(t) => Wording::new(Msg::CfgNotATarget).with("target", t),
            Self::RelayNotStarted => Msg::CfgRelayNotStarted.into(),
            Self::Client(e) => Wording::new(Msg::CfgForwardClient).with("error", e),
        }
    }

    /// Whether what is missing is only the shared secret (the target itself is fine).
    pub fn needs_secret(&self) -> bool {
        matches!(self, Self::RelayNeedsSecret | Self::UrlNeedsSecret(_))
    }
}

/// Whether `target` is a usable `forward` value: `"relay"` or an `http://`/`https://` URL
/// with a host. `secret` is whether `gateway.forward_secret` is set: the relay always needs
/// it (its endpoint is public), a URL beyond loopback too.
///
/// # Errors
/// Why the target cannot be used ([`GatewayError::needs_secret`] when only the secret is
/// missing), ready to print after the field's name.
pub fn check_target(target: &str, secret: bool) -> Result<(), GatewayError> {
    if target == RELAY {
        return if secret { Ok(()) } else { Err(GatewayError::RelayNeedsSecret) };
    }
    match reqwest::Url::parse(target) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if !secret && !crate::config::is_loopback_url(target) {
                return Err(GatewayError::UrlNeedsSecret(target.to_owned()));
            }
            Ok(())
        }
        _ => Err(GatewayError::NotATarget(target.to_owned())),
    }
}

/// Forwarding as `serve` runs it: one [`Forward`] configured from `[gateway]` (secret,
/// fallback text, timeout, account names, one connection pool and one set of counters),
/// pointed at each target the config names — `gateway.forward` and the rules' `forward` —
/// and the relay hub when any of them is `"relay"`. Rules compiled on reload use the running
/// gateway (`[gateway]` changes need a restart).
#[derive(Clone, Debug)]
pub struct Gateway {
    base: Forward,
    relay: Option<Relay>,
    default: Option<Forward>,
}

impl Gateway {
    /// The gateway of `cfg`: a relay hub when `gateway.forward` or a rule's `forward` is
    /// `"relay"` (and a secret is set).
    ///
    /// # Errors
    /// [`GatewayError::Client`]: the HTTP client cannot be built; a `gateway.forward` the
    /// config check let through cannot be used.
    pub fn of(cfg: &Config) -> Result<Self, GatewayError> {
        let g = &cfg.gateway;
        let mut base =
            Forward::with_timeout(RELAY, g.forward_timeout).map_err(|e| GatewayError::Client(e.into()))?;
        if let Some(secret) = &g.forward_secret {
            base = base.secret(secret.expose());
        }
        if let Some(text) = &g.fallback_text {
            base = base.fallback_text(text.clone());
        }
        for (i, a) in cfg.accounts.iter().enumerate() {
            // By key: two apps of one WeCom corp share the corpid, not the key.
            let key = crate::serve::account_key(cfg, i);
            let name = a.name.clone().unwrap_or_else(|| key.clone());
            base = base.account_names(key, name, a.appid.clone());
        }
        let relay = match &g.forward_secret {
            Some(secret) if uses_relay(cfg) => Some(Relay::new(secret.expose())),
            _ => None,
        };
        let mut me = Self { base, relay, default: None };
        me.default = match &g.forward {
            Some(target) => Some(me.forward(target)?),
            None => None,
        };
        Ok(me)
    }

    /// The forwarder to `target` (a URL or `"relay"`).
    ///
    /// # Errors
    /// `"relay"` on a gateway without a relay hub (none was configured at start).
    pub fn forward(&self, target: &str) -> Result<Forward, GatewayError> {
        if target != RELAY {
            return Ok(self.base.to_url(target));
        }
        match &self.relay {
            Some(relay) => Ok(self.base.to_relay(relay.clone())),
            None => Err(GatewayError::RelayNotStarted),
        }
    }

    /// The forwarder of `gateway.forward`, if set: messages no rule answers go to it.
    pub fn default_forward(&self) -> Option<&Forward> {
        self.default.as_ref()
    }

    /// The relay hub, when the config uses the relay.
    pub fn relay(&self) -> Option<&Relay> {
        self.relay.as_ref()
    }

    /// Appends the forwarding counters (shared by every target) in Prometheus text format.
    pub fn write_prometheus(&self, out: &mut String) {
        self.base.write_prometheus(out);
    }
}

/// Whether `gateway.forward` or a rule's `forward` is `"relay"`.
pub fn uses_relay(cfg: &Config) -> bool {
    cfg.gateway.forward.as_deref() == Some(RELAY)
        || cfg.rules.iter().any(|r| r.forward.as_deref() == Some(RELAY))
}

/// The fallback of the rules' router when forwarding: a message no rule answers goes to
/// the app (see [`crate::serve::ServedRules::with_fallback`]).
pub fn forwarding(forward: &Forward) -> RuleService {
    Handler::into_service(forward.handler())
}

/// The relay endpoint of account `i`'s callback path (`/wechat` → `/wechat/relay`).
pub fn relay_path(cfg: &Config, i: usize) -> String {
    format!("{}/relay", cfg.account_path(i).trim_end_matches('/'))
}

/// The relay endpoint of each callback path of `cfg`, without repeats.
pub fn relay_paths(cfg: &Config) -> Vec<String> {
    let mut paths: Vec<String> = (0..cfg.accounts.len().max(1)).map(|i| relay_path(cfg, i)).collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The API proxy of `serve`: on when `api_proxy.token` (`WEMP_API_PROXY_TOKEN`) is set, over
/// the API clients of the accounts that have an AppSecret (`clients`, as [`crate::serve::api_clients`]
/// built them; each is known by its account's name, its id and — a WeCom app — `corpid/agentid`).
/// `None` when off.
pub fn api_proxy(
    cfg: &Config,
    clients: &[wemp_client::Client],
    more: Option<wemp_server::ClientLookup>,
) -> Option<ApiProxy> {
    let token = cfg.api_proxy.token.as_ref()?.expose().to_owned();
    let mut proxy = ApiProxy::new(token);
    // A third-party platform's authorizers, by appid in X-Wemp-Account.
    if let Some(more) = more {
        proxy = proxy.more_accounts(more);
    }
    for client in clients {
        // By the account's key, not its appid: the apps of one WeCom corp share the corpid.
        let key = wemp_proto::admission::app_key(client.appid(), client.agentid());
        let names = (0..cfg.accounts.len())
            .find(|&i| crate::serve::account_key(cfg, i) == key)
            .and_then(|i| cfg.accounts[i].name.clone());
        proxy = proxy.account(names, client.clone());
    }
    Some(proxy)
}
