//! The client's error type and WeChat's `errcode` values.

use std::fmt;

/// A WeChat `errcode`: an open set of integers, with names for the ones that matter.
///
/// ```
/// use wemp_client::ErrCode;
/// assert!(ErrCode(40001).is_token_error());
/// assert!(ErrCode::SYSTEM_BUSY.is_retryable());
/// assert!(ErrCode::IP_NOT_WHITELISTED.hint().unwrap().contains("whitelist"));
/// assert_eq!(ErrCode(12345).hint(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ErrCode(pub i64);

impl ErrCode {
    /// `-1`: system busy; try again shortly.
    pub const SYSTEM_BUSY: Self = Self(-1);
    /// `0`: success.
    pub const OK: Self = Self(0);
    /// `40001`: invalid credential (access_token invalid, replaced or not the latest).
    pub const INVALID_CREDENTIAL: Self = Self(40001);
    /// `40013`: invalid AppID.
    pub const INVALID_APPID: Self = Self(40013);
    /// `40014`: invalid access_token.
    pub const INVALID_ACCESS_TOKEN: Self = Self(40014);
    /// `40029`: invalid OAuth code (used, expired or from another account).
    pub const INVALID_CODE: Self = Self(40029);
    /// `40125`: invalid AppSecret.
    pub const INVALID_APPSECRET: Self = Self(40125);
    /// `40164`: the caller's IP is not on the account's whitelist.
    pub const IP_NOT_WHITELISTED: Self = Self(40164);
    /// `41001`: access_token missing.
    pub const ACCESS_TOKEN_MISSING: Self = Self(41001);
    /// `42001`: access_token expired.
    pub const ACCESS_TOKEN_EXPIRED: Self = Self(42001);
    /// `45009`: the daily quota of this API is used up.
    pub const QUOTA_EXCEEDED: Self = Self(45009);
    /// `45015`: the 48-hour customer-service window with this user has closed.
    pub const RESPONSE_OUT_OF_TIME: Self = Self(45015);
    /// `45047`: too many customer-service messages since the user last wrote.
    pub const CS_MESSAGE_LIMIT: Self = Self(45047);
    /// `46004`: no such user.
    pub const USER_NOT_FOUND: Self = Self(46004);
    /// `48001`: this account is not authorized for this API.
    pub const API_UNAUTHORIZED: Self = Self(48001);
    /// `61005`: the component_verify_ticket has expired (third-party platforms).
    pub const COMPONENT_TICKET_EXPIRED: Self = Self(61005);
    /// `61006`: the component_verify_ticket is not the current one (third-party platforms).
    pub const COMPONENT_TICKET_INVALID: Self = Self(61006);
    /// `61023`: the authorizer_refresh_token is invalid: the account must authorize again.
    pub const AUTHORIZER_REFRESH_TOKEN_INVALID: Self = Self(61023);

    /// Whether this is success (`0`).
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether the access_token was refused (40001, 40014, 42001): refresh and retry once.
    pub const fn is_token_error(self) -> bool {
        matches!(self.0, 40001 | 40014 | 42001)
    }

    /// Whether an identical retry may succeed (`-1`, system busy).
    pub const fn is_retryable(self) -> bool {
        self.0 == -1
    }

    /// Whether the account or server configuration is at fault (IP whitelist, AppID,
    /// AppSecret, permissions): retrying cannot help, a person must act.
    pub const fn is_configuration_error(self) -> bool {
        matches!(self.0, 40164 | 40013 | 40125 | 48001)
    }

    /// Whether a quota or rate limit refused the call (45009, 45047).
    pub const fn is_quota_error(self) -> bool {
        matches!(self.0, 45009 | 45047)
    }

    /// Whether a customer-service message cannot reach the user now (45015, 45047).
    pub const fn is_cs_window_closed(self) -> bool {
        matches!(self.0, 45015 | 45047)
    }

    /// What to do about this error, for the codes that need a person.
    pub const fn hint(self) -> Option<&'static str> {
        Some(match self.0 {
            -1 => "WeChat is busy; the call was retried with backoff and may be retried later",
            40013 => "the AppID is wrong: check the configured AppID against the account's basic settings",
            40125 => {
                "the AppSecret is wrong or was reset: copy the current AppSecret from the account's \
                 basic settings into the configuration"
            }
            40164 => {
                "add this server's outbound IP address to the IP whitelist (account settings → \
                 basic configuration → IP whitelist)"
            }
            40056 => {
                "no such card code (卡券 code): check the code; a custom-code card's code is only found \
                 together with its card_id"
            }
            40071 => "the card type does not fit this call: member-card calls take MEMBER_CARD cards only",
            40073 => "no such card_id: check the card id against the account's cards (client.cards().list())",
            40099 => "this card code was already redeemed (核销); it cannot be used again",
            40127 => {
                "the user deleted this card, is giving it to a friend, or it was made unavailable: \
                 check the code's user_card_status (client.cards().get_code() with check_consume false)"
            }
            45009 => {
                "the daily quota of this API is used up: it resets at 00:00 China time (16:00 UTC); \
                 client.ops().clear_quota() resets it early (itself limited per month)"
            }
            45015 => {
                "the user has not interacted within 48 hours: customer-service messages cannot reach them"
            }
            45047 => {
                "too many customer-service messages since the user last wrote: wait for the user \
                 to write again"
            }
            45061 => "this call was made too often for the same object: wait and try again later",
            48001 => {
                "this account is not authorized for this API: check the interface permissions \
                 page (verification or account type may be required)"
            }
            61005 | 61006 => {
                "the component_verify_ticket is expired or invalid: WeChat pushes a new one every 10 \
                 minutes to the authorization event URL; check that the pushes arrive and are answered success"
            }
            61023 => {
                "the authorizer_refresh_token is invalid: the account must authorize the third-party \
                 platform again"
            }
            40007 => {
                "the media_id is unknown or expired: temporary media lasts 3 days, and an HD voice \
                 id is the serverId that wx.uploadVoice gave the page"
            }
            63178 => {
                "from_appid is not the account the followers migrated from (WeChat's page asks for its \
                 original id gh_…, developers report its AppID works), or the migration is not \
                 complete or ended more than 15 days ago"
            }
            // Customer service, templates, subscription notifications, mass sending.
            40037 => {
                "no such template id: it was deleted, or belongs to another account (list the account's templates)"
            }
            43101 => {
                "the user has not consented: a one-time subscription message needs an unused consent of \
                 this user to this template and scene (client.subscribe().authorize_url()); a subscription \
                 notification needs the user's subscription"
            }
            45008 => "too many articles: uploadnews and a news message take at most 8",
            45065 => {
                "a mass message with this clientmsgid was sent already (WeChat keeps them for 24 hours): \
                 it is the same send, retried; look it up with client.mass().status(), or give a new send a new \
                 clientmsgid"
            }
            45066 => "a send with this clientmsgid is being retried too fast: wait a minute before retrying",
            45067 => "the clientmsgid is longer than 64 bytes",
            47003 => {
                "a template field breaks the template's rules (a missing or unknown key, an empty value, \
                 or a value too long for its type); the errmsg names the field"
            }
            65400 => {
                "the new customer-service features are not enabled: enable 客服功能 in the admin console \
                 first"
            }
            65401 => {
                "no such customer-service account: check kf_account (prefix@wechat_id) against client.kf().accounts()"
            }
            65407 => "that WeChat user already works as this customer-service account",
            65409 => {
                "the invited WeChat id is not valid: use the worker's WeChat id (微信号), not a nickname"
            }
            65411 => {
                "an invitation to this account is still waiting: wait for the answer, or until it expires (7 days)"
            }
            65412 => {
                "this customer-service account already has a bound worker; only an unbound one can invite"
            }
            65416 => "invalid query parameters: check the time range, msgid (from 1) and number (1 to 10000)",
            65417 => "the chat-record range is longer than 24 hours: query one day at a time",
            200012 => {
                "the account has its 50 subscription templates: delete one (client.subscribe().delete_template()) first"
            }
            200014 => "no such template title (tid): take one from client.subscribe().pub_titles()",
            200020 => {
                "the keywords are not 2 to 5 distinct kids of this title: take them from \
                 client.subscribe().pub_keywords()"
            }
            200021 => "the scene description (sceneDesc) is empty or longer than 15 characters",
            40001 | 40014 | 42001 => {
                "the access_token was refused; it was refreshed and the call retried once"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A platform limit that refused a call: which one, and when it lifts.
///
/// WeChat answers these with an ordinary `errcode`; [`ApiError::limit`] and [`Error::limit`]
/// name them so a caller can wait, switch channel (a template message instead of a
/// customer-service one) or tell a person, instead of matching numbers.
///
/// ```
/// use wemp_client::{ErrCode, Limit, Lifts};
/// let limit = Limit::of(ErrCode::QUOTA_EXCEEDED).unwrap();
/// assert_eq!(limit, Limit::DailyQuota);
/// // 2026-12-03 13:00 UTC is 21:00 in China; the quota resets at 00:00 China time (16:00 UTC).
/// assert_eq!(limit.lifts(1_796_302_800), Lifts::At(1_796_313_600));
/// assert_eq!(Limit::of(ErrCode(45047)).unwrap().lifts(0), Lifts::WhenUserWrites);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `45009`: the daily call quota of this API is used up. It resets at 00:00 China
    /// Standard Time (UTC+8); [`OpsApi::quota`](crate::api::ops::OpsApi::quota) shows the figures and
    /// [`OpsApi::clear_quota`](crate::api::ops::OpsApi::clear_quota) resets it early (itself limited
    /// per month).
    DailyQuota,
    /// `45015`: the user has not written to the account within 48 hours (or unfollowed), so
    /// customer-service messages cannot reach them until they write again.
    CustomerServiceWindow,
    /// `45047`: the account has sent as many customer-service messages as allowed since the
    /// user last wrote (20 at the time of writing); the count resets when the user writes.
    CustomerServiceCount,
}

/// When a [`Limit`] lifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lifts {
    /// At this instant, Unix seconds.
    At(i64),
    /// When the user next sends the account a message (or otherwise interacts).
    WhenUserWrites,
}

impl Limit {
    /// The limit an error code reports, if it is one.
    pub const fn of(code: ErrCode) -> Option<Self> {
        match code.0 {
            45009 => Some(Self::DailyQuota),
            45015 => Some(Self::CustomerServiceWindow),
            45047 => Some(Self::CustomerServiceCount),
            _ => None,
        }
    }

    /// When the limit lifts, seen from `now` (Unix seconds): the daily quota at the next
    /// 00:00 China Standard Time, the customer-service limits when the user writes.
    pub const fn lifts(self, now: i64) -> Lifts {
        const DAY: i64 = 86_400;
        const CHINA_OFFSET: i64 = 8 * 3600;
        match self {
            Self::DailyQuota => Lifts::At((now + CHINA_OFFSET).div_euclid(DAY) * DAY + DAY - CHINA_OFFSET),
            Self::CustomerServiceWindow | Self::CustomerServiceCount => Lifts::WhenUserWrites,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DailyQuota => "daily API quota used up (45009); it resets at 00:00 China time (16:00 UTC)",
            Self::CustomerServiceWindow => {
                "customer-service window closed (45015): the user has not written within 48 hours; \
                 it reopens when they write"
            }
            Self::CustomerServiceCount => {
                "customer-service message limit reached (45047) since the user last wrote; it resets \
                 when they write"
            }
        })
    }
}

/// WeChat answered with a nonzero `errcode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: ErrCode,
    /// WeChat's `errmsg` (it ends with the `rid` for [`OpsApi::rid`](crate::api::ops::OpsApi::rid)).
    pub message: String,
    /// The API path called, without the query string (so without the access_token).
    pub path: String,
}

impl ApiError {
    /// The platform limit this error reports (45009, 45015, 45047), if it is one.
    pub const fn limit(&self) -> Option<Limit> {
        Limit::of(self.code)
    }

    /// The `rid` WeChat appended to `errmsg` (`"… rid: 6475f1c4-…"`), if any.
    pub fn rid(&self) -> Option<&str> {
        let (_, rest) = self.message.rsplit_once("rid:")?;
        Some(rest.trim())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed with errcode {}: {}", self.path, self.code, self.message)?;
        if let Some(hint) = self.code.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// WeChat answered with an error code (after any retries the code allows).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete (connection, timeout, body). The URL is removed from
    /// the source so the access_token cannot leak.
    #[error("request to {path} failed: {source}")]
    Http {
        /// The API path, without the query string.
        path: String,
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from {path}: {source}")]
    Decode {
        /// The API path, without the query string.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
        /// The body received (withheld for token endpoints, which carry secrets).
        body: Box<str>,
    },
    /// The token store failed.
    #[error("token store failed")]
    Store(#[from] wemp_store::StoreError),
    /// Reading a file to upload or writing a download failed.
    #[error("I/O error")]
    Io(#[from] std::io::Error),
    /// Another process held the refresh lease and no usable token appeared in time.
    #[error("no usable {kind} after waiting {waited_ms} ms for another process to refresh it")]
    TokenWait {
        /// `"access_token"`, `"jsapi_ticket"` or `"card_api_ticket"`.
        kind: &'static str,
        /// How long the client waited.
        waited_ms: u64,
    },
    /// An Open Platform (third-party platform) has no `component_verify_ticket` yet, so it
    /// cannot get its component_access_token.
    #[error(
        "no component_verify_ticket yet for the third-party platform {component_appid}: WeChat pushes one every \
         10 minutes to {push_url}; wait for the next push (it is stored and shared once it arrives)"
    )]
    NoVerifyTicket {
        /// The component appid.
        component_appid: String,
        /// Where WeChat pushes it (the 授权事件接收 URL, as configured).
        push_url: String,
    },
    /// The account never authorized the third-party platform, or withdrew its
    /// authorization (no refresh token is stored for it).
    #[error(
        "account {authorizer_appid} has not authorized the third-party platform {component_appid} \
         (or withdrew its authorization): no refresh token is stored for it"
    )]
    NotAuthorized {
        /// The component appid.
        component_appid: String,
        /// The account's appid.
        authorizer_appid: String,
    },
    /// The call cannot be made as asked (for example a reply type that has no
    /// customer-service message form).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    /// The WeChat error code, when WeChat answered with one.
    pub fn code(&self) -> Option<ErrCode> {
        match self {
            Self::Api(e) => Some(e.code),
            _ => None,
        }
    }

    /// The platform limit that refused the call (45009, 45015, 45047), if one did.
    pub const fn limit(&self) -> Option<Limit> {
        match self {
            Self::Api(e) => e.limit(),
            _ => None,
        }
    }

    pub(crate) fn http(path: &str, source: reqwest::Error) -> Self {
        Self::Http { path: path.to_owned(), source: source.without_url() }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        for c in [40001, 40014, 42001] {
            assert!(ErrCode(c).is_token_error());
            assert!(!ErrCode(c).is_retryable());
        }
        for c in [40164, 45009, 48001, 40013, 40125, 61005, 61006, 61023] {
            let code = ErrCode(c);
            assert!(!code.is_retryable() && !code.is_token_error(), "{c}");
            assert!(code.hint().is_some(), "{c}");
        }
        assert!(ErrCode(45015).is_cs_window_closed() && ErrCode(45047).is_cs_window_closed());
        assert!(ErrCode(48001).is_configuration_error());
        assert!(ErrCode(45009).is_quota_error());
        assert!(ErrCode::OK.is_ok());
    }

    #[test]
    fn the_daily_quota_lifts_at_midnight_in_china() {
        // 2026-12-03 15:59:59 UTC is 23:59:59 in China: one second to go.
        let before = 1_796_313_599;
        assert_eq!(Limit::DailyQuota.lifts(before), Lifts::At(before + 1));
        // 16:00:00 UTC is China's midnight: the next reset is a whole day away.
        assert_eq!(Limit::DailyQuota.lifts(before + 1), Lifts::At(before + 1 + 86_400));
        // Before 1970 in China time too (div_euclid, not truncation).
        assert_eq!(Limit::DailyQuota.lifts(-1), Lifts::At(16 * 3600));
        for code in [45015, 45047] {
            assert_eq!(Limit::of(ErrCode(code)).unwrap().lifts(before), Lifts::WhenUserWrites);
        }
        assert_eq!(Limit::of(ErrCode(40001)), None);
        let err = Error::Api(ApiError {
            code: ErrCode(45009),
            message: "reach max api daily quota limit".into(),
            path: "/cgi-bin/menu/create".into(),
        });
        assert_eq!(err.limit(), Some(Limit::DailyQuota));
        assert!(err.to_string().contains("16:00 UTC"), "{err}");
    }

    #[test]
    fn display_is_actionable_and_has_the_rid() {
        let err = ApiError {
            code: ErrCode::IP_NOT_WHITELISTED,
            message: "invalid ip 1.2.3.4, not in whitelist rid: 64-ab".into(),
            path: "/cgi-bin/token".into(),
        };
        let text = err.to_string();
        assert!(text.starts_with("/cgi-bin/token failed with errcode 40164"), "{text}");
        assert!(text.contains("add this server's outbound IP address to the IP whitelist"), "{text}");
        assert_eq!(err.rid(), Some("64-ab"));
    }
}
