//! Operations: WeChat's IP ranges, network checks, API quotas, request lookup by `rid`.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/openApi/clear_quota.html>

use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::error::Result;

/// One DNS result of a network check.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DnsResult {
    /// The resolved IP.
    pub ip: String,
    /// Its operator.
    pub real_operator: String,
}

/// One ping result of a network check.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PingResult {
    /// The pinged IP.
    pub ip: String,
    /// From which operator.
    pub from_operator: String,
    /// Packet loss (`"0%"`).
    pub package_loss: String,
    /// Round trip (`"1.2ms"`).
    pub time: String,
}

/// The result of [`OpsApi::check_network`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NetworkCheck {
    /// DNS results.
    #[serde(default)]
    pub dns: Vec<DnsResult>,
    /// Ping results.
    #[serde(default)]
    pub ping: Vec<PingResult>,
}

/// An API's daily quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Quota {
    /// Calls allowed per day.
    pub daily_limit: u64,
    /// Calls made today.
    pub used: u64,
    /// Calls left today.
    pub remain: u64,
}

/// A failed request, looked up by its `rid`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RidInfo {
    /// When it was made, Unix seconds.
    pub invoke_time: i64,
    /// How long it took.
    pub cost_in_ms: i64,
    /// The path called.
    pub request_url: String,
    /// What was sent.
    pub request_body: String,
    /// What was answered.
    pub response_body: String,
    /// From which IP.
    pub client_ip: String,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const CALLBACK_IPS: &str = "/cgi-bin/getcallbackip";
    pub(super) const API_DOMAIN_IPS: &str = "/cgi-bin/get_api_domain_ip";
    pub(super) const CHECK_NETWORK: &str = "/cgi-bin/callback/check";
    pub(super) const CLEAR_QUOTA: &str = "/cgi-bin/clear_quota";
    pub(super) const QUOTA: &str = "/cgi-bin/openapi/quota/get";
    pub(super) const RID: &str = "/cgi-bin/openapi/rid/get";
}

impl Client {
    /// Operations: [`OpsApi`].
    pub fn ops(&self) -> OpsApi<'_> {
        OpsApi(self)
    }
}

/// Operations (IP lists, network check, quotas, `rid` lookup), from [`Client::ops`].
#[derive(Clone, Copy, Debug)]
pub struct OpsApi<'c>(&'c Client);

impl OpsApi<'_> {
    /// The IP ranges WeChat's callbacks come from.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn callback_ips(self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct L {
            ip_list: Vec<String>,
        }
        Ok(self.0.get_as::<L>(path::CALLBACK_IPS, &[]).await?.ip_list)
    }

    /// The IPs of `api.weixin.qq.com`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn api_domain_ips(self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct L {
            ip_list: Vec<String>,
        }
        Ok(self.0.get_as::<L>(path::API_DOMAIN_IPS, &[]).await?.ip_list)
    }

    /// Checks WeChat's reach to the callback URL: `action` is `all`, `dns` or `ping`;
    /// `operator` is `DEFAULT`, `CHINANET`, `UNICOM` or `CAP`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn check_network(self, action: &str, operator: &str) -> Result<NetworkCheck> {
        self.0
            .post_as(path::CHECK_NETWORK, &[], &json!({ "action": action, "check_operator": operator }))
            .await
    }

    /// Resets the account's API call counts (itself limited to a few times a month).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn clear_quota(self) -> Result<()> {
        self.0.post_ok(path::CLEAR_QUOTA, &json!({ "appid": self.0.appid() })).await
    }

    /// The daily quota of one API (`cgi_path` like `/cgi-bin/message/custom/send`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn quota(self, cgi_path: &str) -> Result<Quota> {
        #[derive(Deserialize)]
        struct Q {
            quota: Quota,
        }
        Ok(self.0.post_as::<Q, _>(path::QUOTA, &[], &json!({ "cgi_path": cgi_path })).await?.quota)
    }

    /// Looks up a failed request by the `rid` from its `errmsg` (see [`ApiError::rid`](crate::ApiError::rid)).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn rid(self, rid: &str) -> Result<RidInfo> {
        #[derive(Deserialize)]
        struct R {
            request: RidInfo,
        }
        Ok(self.0.post_as::<R, _>(path::RID, &[], &json!({ "rid": rid })).await?.request)
    }
}
