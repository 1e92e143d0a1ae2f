//! 卡券 (cards and coupons): create and manage cards, deliver them by QR code, and follow one
//! user's copy of a card — its *code* — through decryption, queries, redemption (核销) and
//! withdrawal.
//!
//! A **card** (`card_id`) is the definition every user's copy shares: its type, title, stock
//! and validity. A **code** is one user's copy of it: system-assigned unless the card was
//! created with `use_custom_code`, in which case every code call must also name the card.
//! Pages and links that WeChat opens for a user (the card's custom URL, `wx.addCard`) carry
//! the code encrypted (`encrypt_code`); [`CardsApi::decrypt_code`] turns it back into the
//! code the other calls take.
//!
//! **Member cards** (会员卡, `MEMBER_CARD`) are activated per code, through the API
//! ([`CardsApi::activate_member`], 接口激活) or by the user filling in the form
//! [`CardsApi::set_activation_form`] sets (一键激活); [`CardsApi::member_info`] reads a member's
//! points, balance and answers, and [`CardsApi::update_member`] changes them after a purchase.
//!
//! **Pages** that hand out cards with the JS-SDK (`wx.addCard`, `wx.chooseCard`) sign their
//! arguments with the card **api_ticket** ([`CardsApi::api_ticket`]; not the jsapi_ticket of
//! `wx.config`): [`CardsApi::card_ext`] and [`CardsApi::choose_card`] make the signed arguments,
//! [`card_signature`] is the algorithm.
//!
//! ```no_run
//! use serde_json::json;
//! use wemp_client::api::cards::{Card, CardQrCode, CardType};
//! # async fn demo(client: wemp_client::Client) -> wemp_client::Result<()> {
//! let card = Card::new(CardType::Cash, json!({
//!     "base_info": {
//!         "logo_url": "http://mmbiz.qpic.cn/logo.png", "brand_name": "Teahouse",
//!         "code_type": "CODE_TYPE_QRCODE", "title": "¥10 off", "color": "Color010",
//!         "notice": "Show at the till", "description": "One per order",
//!         "sku": { "quantity": 500 },
//!         "date_info": { "type": "DATE_TYPE_FIX_TERM", "fixed_term": 30, "fixed_begin_term": 0 },
//!     },
//!     "least_cost": 5000, "reduce_cost": 1000,
//! }));
//! let card_id = client.cards().create(&card).await?;
//! let qr = client.cards().create_qrcode(&CardQrCode::new(&card_id).outer_str("poster")).await?;
//! println!("print this: {}", qr.show_qrcode_url);
//!
//! // At the till: check the code the user shows, then redeem it.
//! let info = client.cards().get_code("110201201245", None, true).await?;
//! if info.can_consume == Some(true) {
//!     client.cards().consume_code("110201201245", None).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! Official references:
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Create_a_Coupon_Voucher_or_Card.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Distributing_Coupons_Vouchers_and_Cards.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Redeeming_a_coupon_voucher_or_card.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Managing_Coupons_Vouchers_and_Cards.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Card_coupons_error_code.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Membership_Cards/Create_a_membership_card.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Membership_Cards/Manage_Member_Card.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html> (附录4: the card
//!   api_ticket, `cardExt` and the card signatures)
//!
//! The errcodes you will meet most (from the card error table; the errmsgs in quotes are the
//! ones the platform is reported to send): `40056` no such code ("invalid serial code"),
//! `40073` no such card ("invalid card id"), `40075` an `encrypt_code` that does not decrypt,
//! `40099` the code was already redeemed ("invalid code, this code has consumed."), `40127`
//! the user deleted the card, is giving it away, or it was made unavailable, `41012` the
//! `card_id` a custom-code card needs is missing, `45031` out of stock.
//!
//! Where the sources disagree:
//! - `card/code/get` answers in two shapes. The current page puts `can_consume` (a boolean),
//!   `user_card_status` and `outer_str` next to `card`; the older page, and the SDKs copied
//!   from it, put `user_card_status` and `can_consume` (a string, `"true"`) inside `card`.
//!   [`CardCodeInfo`] reads either.
//! - What `check_consume` does when left out is not documented: wechatpy leaves it out to
//!   mean `true`, WxJava always sends it. This client always sends it. With `true`, a code
//!   that cannot be redeemed is an error (`40099`, `40127`); with `false` the answer is
//!   `errcode 0` and the state is in `user_card_status` (developers were caught out by this
//!   on the community forum).
//! - `card/code/unavailable`: the page marks `reason` optional; WxJava refuses to call
//!   without one. This client takes it as an `Option`.
//! - `card/qrcode/create`'s `expire_seconds` is 60–1800; left out, the current page says the
//!   code lives 365 days, older SDK comments say it is permanent.
//! - `card/user/getcardlist` is documented to list the user's cards; developers report that
//!   only cards in the normal state appear (not redeemed or unavailable ones).
//! - `cardExt.timestamp`: the JS-SDK appendix says to pass it as a string, the Mini Program
//!   `wx.addCard` page types it as a number. It is signed as its decimal text either way;
//!   [`CardExt`] sends the string.
//! - `card/membercard/userinfo/get`: the example answer has no `balance`, the field table
//!   and SDKs have it; [`MemberInfo::balance`] is an `Option`.
//! - `card/membercard/updateuser` takes `bonus` (the new value) and `add_bonus` (the change),
//!   likewise for the balance, without saying which wins when both are sent; [`Figure`]
//!   sends one of the two.
//! - The activation form's field names: the documentation's table has
//!   `USER_FORM_INFO_FLAG_EDUCATION_BACKGRO` (sic); some SDKs send `…_BACKGROUND`,
//!   `…_CAREER` and `…_DETAIL_LOCATION`. [`FormField`] follows the table and keeps any other
//!   spelling as [`FormField::Other`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::client::{Client, Ticket, nonce_str};
use crate::error::{Error, Result};

/// The most cards one [`CardsApi::list`] call may ask for ("count 最大为50").
pub const MAX_CARDS_PER_PAGE: u32 = 50;

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this client does not know yet, as WeChat wrote it.
            Other(String),
        }

        impl $name {
            /// WeChat's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Ok(Self::from(String::deserialize(d)?.as_str()))
            }
        }
    };
}

string_enum! {
    /// A card's type (`card_type`). The definition sits under the type's name in lower case
    /// ([`CardType::key`]): a `CASH` card's fields are under `"cash"`.
    pub enum CardType {
        /// `GROUPON` 团购券: a group-buying voucher (`deal_detail`).
        Groupon => "GROUPON",
        /// `CASH` 代金券: money off (`least_cost`, `reduce_cost`, in fen).
        Cash => "CASH",
        /// `DISCOUNT` 折扣券: a percentage off (`discount`).
        Discount => "DISCOUNT",
        /// `GIFT` 兑换券: a gift (`gift`).
        Gift => "GIFT",
        /// `GENERAL_COUPON` 优惠券: any other offer (`default_detail`).
        GeneralCoupon => "GENERAL_COUPON",
        /// `MEMBER_CARD` 会员卡 (`prerogative`, bonus and balance settings).
        MemberCard => "MEMBER_CARD",
        /// `SCENIC_TICKET` 景点门票.
        ScenicTicket => "SCENIC_TICKET",
        /// `MOVIE_TICKET` 电影票.
        MovieTicket => "MOVIE_TICKET",
        /// `BOARDING_PASS` 飞机票.
        BoardingPass => "BOARDING_PASS",
        /// `MEETING_TICKET` 会议门票.
        MeetingTicket => "MEETING_TICKET",
        /// `BUS_TICKET` 汽车票.
        BusTicket => "BUS_TICKET",
    }
}

impl CardType {
    /// The key the type's definition sits under: the type in lower case (`"general_coupon"`).
    pub fn key(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

string_enum! {
    /// A card's review and delivery state (`base_info.status`, and the `status_list` filter
    /// of [`CardsApi::list`]).
    pub enum CardStatus {
        /// `CARD_STATUS_NOT_VERIFY` 待审核: waiting for review (a new or re-reviewed card).
        NotVerify => "CARD_STATUS_NOT_VERIFY",
        /// `CARD_STATUS_VERIFY_FAIL` 审核失败.
        VerifyFail => "CARD_STATUS_VERIFY_FAIL",
        /// `CARD_STATUS_VERIFY_OK` 通过审核.
        VerifyOk => "CARD_STATUS_VERIFY_OK",
        /// `CARD_STATUS_DELETE` 卡券被商户删除.
        Delete => "CARD_STATUS_DELETE",
        /// `CARD_STATUS_DISPATCH` 在公众平台投放过的卡券: delivered at least once.
        Dispatch => "CARD_STATUS_DISPATCH",
    }
}

string_enum! {
    /// The state of one user's code (`user_card_status`).
    pub enum UserCardStatus {
        /// `NORMAL` 正常: can be redeemed.
        Normal => "NORMAL",
        /// `CONSUMED` 已核销.
        Consumed => "CONSUMED",
        /// `EXPIRE` 已过期.
        Expire => "EXPIRE",
        /// `GIFTING` 转赠中: the user is giving it to a friend.
        Gifting => "GIFTING",
        /// `GIFT_TIMEOUT` 转赠超时.
        GiftTimeout => "GIFT_TIMEOUT",
        /// `DELETE` 已删除: the user deleted it.
        Delete => "DELETE",
        /// `UNAVAILABLE` 已失效: made unavailable with [`CardsApi::make_code_unavailable`].
        Unavailable => "UNAVAILABLE",
    }
}

/// A card definition: its type and everything under the type's key — `base_info`,
/// `advanced_info` and the type's own fields. The definition is large and varies by type
/// and over time, so it stays JSON; the type is typed.
///
/// As created ([`CardsApi::create`]) and as read back ([`CardsApi::get`], where
/// `base_info` also carries the card's `id`, `status` and current `sku`).
///
/// ```
/// use serde_json::json;
/// use wemp_client::api::cards::{Card, CardStatus, CardType};
///
/// let card = Card::new(CardType::GeneralCoupon, json!({ "base_info": { "title": "Free tea" } }));
/// assert_eq!(
///     card.to_json(),
///     json!({ "card": { "card_type": "GENERAL_COUPON", "general_coupon": { "base_info": { "title": "Free tea" } } } })
/// );
/// let read = Card::from_json(&json!({ "card": { "card_type": "GENERAL_COUPON", "general_coupon": {
///     "base_info": { "id": "pFS7Fjg8kV1I", "status": "CARD_STATUS_VERIFY_OK", "title": "Free tea" },
/// } } }))
/// .unwrap();
/// assert_eq!((read.id(), read.status()), (Some("pFS7Fjg8kV1I"), Some(CardStatus::VerifyOk)));
/// assert_eq!(read.title(), Some("Free tea"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// The type.
    pub card_type: CardType,
    /// The object under [`CardType::key`].
    pub definition: Value,
}

impl Card {
    /// A card of `card_type` defined by `definition` (the object under the type's key).
    pub fn new(card_type: CardType, definition: Value) -> Self {
        Self { card_type, definition }
    }

    /// The `card/create` body: `{"card": {"card_type": …, "<key>": definition}}`.
    pub fn to_json(&self) -> Value {
        json!({ "card": self.inner_json() })
    }

    fn inner_json(&self) -> Value {
        let mut card = Map::new();
        card.insert("card_type".into(), json!(self.card_type.as_str()));
        card.insert(self.card_type.key(), self.definition.clone());
        Value::Object(card)
    }

    /// Reads a card from `{"card": {...}}` or the inner `{"card_type": …, "<key>": {...}}`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when there is no `card_type` or nothing under its key.
    pub fn from_json(v: &Value) -> Result<Self> {
        let inner = v.get("card").filter(|c| c.is_object()).unwrap_or(v);
        let Some(t) = inner.get("card_type").and_then(Value::as_str) else {
            return Err(Error::Invalid("a card needs a card_type".into()));
        };
        let card_type = CardType::from(t);
        match inner.get(card_type.key()) {
            Some(d @ Value::Object(_)) => Ok(Self { definition: d.clone(), card_type }),
            _ => Err(Error::Invalid(format!("a {t} card keeps its definition under {:?}", card_type.key()))),
        }
    }

    /// `base_info`, if the definition has one.
    pub fn base_info(&self) -> Option<&Value> {
        self.definition.get("base_info")
    }

    fn base_str(&self, field: &str) -> Option<&str> {
        self.base_info()?.get(field)?.as_str()
    }

    /// The card id (`base_info.id`, in cards read back).
    pub fn id(&self) -> Option<&str> {
        self.base_str("id")
    }

    /// The review state (`base_info.status`, in cards read back).
    pub fn status(&self) -> Option<CardStatus> {
        self.base_str("status").map(CardStatus::from)
    }

    /// The title (`base_info.title`).
    pub fn title(&self) -> Option<&str> {
        self.base_str("title")
    }

    /// The stock left (`base_info.sku.quantity`).
    pub fn quantity(&self) -> Option<i64> {
        self.base_info()?.get("sku")?.get("quantity")?.as_i64()
    }
}

impl Serialize for Card {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Card {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::from_json(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A page of card ids ([`CardsApi::list`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardIdPage {
    /// The card ids on this page (`card_id_list`).
    #[serde(rename = "card_id_list", default, deserialize_with = "crate::serde_util::null_as_empty")]
    pub card_ids: Vec<String>,
    /// How many cards match the filter in all (`total_num`).
    #[serde(rename = "total_num", default)]
    pub total: u64,
}

/// A QR code that gives whoever scans it one card (`action_name` `QR_CARD`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardQrCode {
    /// The card.
    pub card_id: String,
    /// The code to give: required for cards with `use_custom_code`, left out otherwise.
    pub code: Option<String>,
    /// Only this user may take it: required for cards with `bind_openid`.
    pub openid: Option<String>,
    /// Each scan gets a new code and the QR code can be taken from once (`is_unique_code`).
    pub is_unique_code: Option<bool>,
    /// A channel value for statistics, pushed back in the `user_get_card` event's `OuterStr`.
    pub outer_str: Option<String>,
    /// How long the QR code lives (60 s to 30 min); `None` for the platform's default (see
    /// the module notes).
    pub expire: Option<Duration>,
}

impl CardQrCode {
    /// A QR code for `card_id` with the defaults.
    pub fn new(card_id: impl Into<String>) -> Self {
        Self { card_id: card_id.into(), ..Self::default() }
    }

    /// Gives this code (custom-code cards).
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Only `openid` may take it.
    pub fn openid(mut self, openid: impl Into<String>) -> Self {
        self.openid = Some(openid.into());
        self
    }

    /// One taker only, with a fresh code.
    pub fn unique_code(mut self, unique: bool) -> Self {
        self.is_unique_code = Some(unique);
        self
    }

    /// Tags takers with a channel value.
    pub fn outer_str(mut self, outer_str: impl Into<String>) -> Self {
        self.outer_str = Some(outer_str.into());
        self
    }

    /// Expires the QR code after `expire` (60 s to 30 min).
    pub fn expire(mut self, expire: Duration) -> Self {
        self.expire = Some(expire);
        self
    }

    /// The request body.
    pub fn to_json(&self) -> Value {
        let mut card = json!({ "card_id": self.card_id });
        let optional = [("code", &self.code), ("openid", &self.openid), ("outer_str", &self.outer_str)];
        for (key, value) in optional {
            if let Some(v) = value {
                card[key] = json!(v);
            }
        }
        if let Some(unique) = self.is_unique_code {
            card["is_unique_code"] = json!(unique);
        }
        let mut body = json!({ "action_name": "QR_CARD", "action_info": { "card": card } });
        if let Some(e) = self.expire {
            body["expire_seconds"] = json!(e.as_secs());
        }
        body
    }
}

/// A created card QR code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardQrTicket {
    /// The ticket; [`QrCodesApi::image_url`](crate::api::qrcode::QrCodesApi::image_url) turns it into the image URL.
    pub ticket: String,
    /// The lifetime in seconds, when WeChat states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_seconds: Option<u64>,
    /// The URL the QR code encodes (to draw your own image).
    pub url: String,
    /// A page showing the QR code.
    #[serde(default)]
    pub show_qrcode_url: String,
}

/// What [`CardsApi::get_code`] learns about a code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CardCodeInfo {
    /// The user holding the code.
    pub openid: String,
    /// The card.
    pub card_id: String,
    /// From when the code may be used, Unix seconds (0 when not stated).
    pub begin_time: i64,
    /// Until when the code may be used, Unix seconds (0 when not stated).
    pub end_time: i64,
    /// Whether the code can be redeemed now.
    pub can_consume: Option<bool>,
    /// The code's state.
    pub user_card_status: Option<UserCardStatus>,
    /// The channel value the user got the card through.
    pub outer_str: Option<String>,
}

impl<'de> Deserialize<'de> for CardCodeInfo {
    /// Reads both documented shapes (see the module notes): the state next to `card` or
    /// inside it, `can_consume` as a boolean or as `"true"`/`"false"`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let card = v.get("card").unwrap_or(&Value::Null);
        let pick = |key: &str| v.get(key).filter(|x| !x.is_null()).or_else(|| card.get(key));
        let text = |key: &str| pick(key).and_then(Value::as_str).map(str::to_owned);
        let int = |key: &str| pick(key).and_then(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok()));
        let can_consume = match pick("can_consume") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            Some(other) => {
                return Err(serde::de::Error::custom(format!("can_consume is not a boolean: {other}")));
            }
        };
        Ok(Self {
            openid: text("openid").unwrap_or_default(),
            card_id: text("card_id").unwrap_or_default(),
            begin_time: int("begin_time").unwrap_or(0),
            end_time: int("end_time").unwrap_or(0),
            can_consume,
            user_card_status: text("user_card_status").map(|s| UserCardStatus::from(s.as_str())),
            outer_str: text("outer_str"),
        })
    }
}

/// A redeemed code ([`CardsApi::consume_code`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConsumedCode {
    /// The user who held it.
    pub openid: String,
    /// The card it belonged to.
    pub card_id: String,
}

impl<'de> Deserialize<'de> for ConsumedCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            card_id: String,
        }
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            openid: String,
            card: Option<Inner>,
        }
        let o = Outer::deserialize(d)?;
        Ok(Self { openid: o.openid, card_id: o.card.map(|c| c.card_id).unwrap_or_default() })
    }
}

/// One card in a user's card wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCard {
    /// The user's code.
    pub code: String,
    /// The card.
    pub card_id: String,
}

/// A user's cards of this account ([`CardsApi::user_cards`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCards {
    /// The cards (`card_list`).
    #[serde(rename = "card_list", default, deserialize_with = "crate::serde_util::null_as_empty")]
    pub cards: Vec<UserCard>,
    /// Whether the user holds a friend's shared card (朋友的券) of this account.
    #[serde(default)]
    pub has_share_card: bool,
}

/// The card signature of the JS-SDK's card calls (`wx.addCard`'s `cardExt.signature`,
/// `wx.chooseCard`'s `cardSign`): SHA-1, in lower-case hex, of the values sorted as strings
/// (byte order) and joined without separators. Values left out of a call are left out here
/// too (an empty string changes nothing).
///
/// Not the `wx.config` signature ([`jssdk::sign`](crate::api::jssdk::sign)): that one signs
/// `key=value` pairs with the jsapi_ticket; this one signs bare values with the card
/// api_ticket ([`CardsApi::api_ticket`]).
///
/// ```
/// // The worked example of the JS-SDK documentation (附录4, 签名说明).
/// let sig = wemp_client::api::cards::card_signature(&[
///     "1434008071",                   // code
///     "1404896688",                   // timestamp
///     "pjZ8Yt1XGILfi-FUsewpnnolGgZk", // card_id
///     "ojZ8YtyVyr30HheH3CM73y7h4jJE", // api_ticket
///     "123",                          // nonce_str
/// ]);
/// assert_eq!(sig, "f137ab68b7f8112d20ee528ab6074564e2796250");
/// ```
pub fn card_signature(values: &[&str]) -> String {
    // The same construction as the callback signature: sorted, joined, SHA-1.
    wemp_proto::signature::sha1_sorted(&mut values.to_vec())
}

/// The most characters a card signature's `nonce_str` may have ("不长于32位").
pub const MAX_CARD_NONCE_LEN: usize = 32;

/// `wx.addCard`'s `cardExt` for one card: what the page passes as the card's `cardExt`,
/// serialized with [`CardExt::to_json_string`]. Made by [`CardsApi::card_ext`].
///
/// `code` and `openid` are signed; `outer_str` and `fixed_begintimestamp` are not, so they
/// may be set after signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardExt {
    /// The code to give (`use_custom_code` cards only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The only user who may take it (`bind_openid` cards only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Unix seconds, as a string (the JS-SDK appendix: "最终需要转换为字符串形式").
    pub timestamp: String,
    /// A random string of at most [`MAX_CARD_NONCE_LEN`] characters.
    pub nonce_str: String,
    /// When the user took the card in your own system, Unix seconds in UTC+8
    /// (`DATE_TYPE_FIX_TERM` cards only); not signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_begintimestamp: Option<i64>,
    /// A channel value, pushed back in the `user_get_card` event; not signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_str: Option<String>,
    /// [`card_signature`] of the api_ticket, `timestamp`, `card_id`, `code`, `openid` and
    /// `nonce_str`.
    pub signature: String,
}

impl CardExt {
    /// Signs a `cardExt` for `card_id` with the card `api_ticket`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `card_id` or `nonce_str`, or a `nonce_str` longer
    /// than [`MAX_CARD_NONCE_LEN`].
    pub fn sign(
        api_ticket: &str,
        card_id: &str,
        code: Option<&str>,
        openid: Option<&str>,
        timestamp: i64,
        nonce_str: &str,
    ) -> Result<Self> {
        non_empty("a cardExt's card_id", card_id)?;
        check_nonce(nonce_str)?;
        let timestamp = timestamp.to_string();
        let signature = card_signature(&[
            api_ticket,
            &timestamp,
            card_id,
            code.unwrap_or_default(),
            openid.unwrap_or_default(),
            nonce_str,
        ]);
        Ok(Self {
            code: code.map(str::to_owned),
            openid: openid.map(str::to_owned),
            timestamp,
            nonce_str: nonce_str.to_owned(),
            fixed_begintimestamp: None,
            outer_str: None,
            signature,
        })
    }

    /// The JSON string `wx.addCard` takes as `cardExt`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn check_nonce(nonce_str: &str) -> Result<()> {
    non_empty("a card signature's nonce_str", nonce_str)?;
    if nonce_str.chars().count() > MAX_CARD_NONCE_LEN {
        return Err(Error::Invalid(format!(
            "a card signature's nonce_str has at most {MAX_CARD_NONCE_LEN} characters, not {}",
            nonce_str.chars().count()
        )));
    }
    Ok(())
}

/// The signed arguments of `wx.chooseCard` (serialized in its camelCase: `shopId`,
/// `cardType`, `cardId`, `timestamp`, `nonceStr`, `signType`, `cardSign`). Made by
/// [`CardsApi::choose_card`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChooseCard {
    /// The store (门店) whose cards to list; empty for all (signed as `location_id`).
    pub shop_id: String,
    /// The card type to list; empty for all.
    pub card_type: String,
    /// The card to list; empty for all.
    pub card_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// A random string.
    pub nonce_str: String,
    /// Always `SHA1`.
    pub sign_type: String,
    /// [`card_signature`] of the api_ticket, AppID, `shopId`, `timestamp`, `nonceStr`,
    /// `cardId` and `cardType`.
    pub card_sign: String,
}

impl ChooseCard {
    /// Signs `wx.chooseCard`'s arguments for the account `appid` with the card `api_ticket`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `nonce_str` or one longer than
    /// [`MAX_CARD_NONCE_LEN`].
    pub fn sign(
        api_ticket: &str,
        appid: &str,
        shop_id: Option<&str>,
        card_type: Option<&CardType>,
        card_id: Option<&str>,
        timestamp: i64,
        nonce_str: &str,
    ) -> Result<Self> {
        check_nonce(nonce_str)?;
        let shop_id = shop_id.unwrap_or_default().to_owned();
        let card_type = card_type.map(|t| t.as_str().to_owned()).unwrap_or_default();
        let card_id = card_id.unwrap_or_default().to_owned();
        let card_sign = card_signature(&[
            api_ticket,
            appid,
            &shop_id,
            &timestamp.to_string(),
            nonce_str,
            &card_id,
            &card_type,
        ]);
        Ok(Self {
            shop_id,
            card_type,
            card_id,
            timestamp,
            nonce_str: nonce_str.to_owned(),
            sign_type: "SHA1".into(),
            card_sign,
        })
    }
}

/// The most bytes of a member card's `custom_field` value ("限制为4个汉字，12字节").
pub const MAX_CUSTOM_FIELD_VALUE_BYTES: usize = 12;
/// The most characters of `record_bonus` and `record_balance` ("不超过14个汉字").
pub const MAX_RECORD_CHARS: usize = 14;
/// The most custom fields, and separately rich fields, one activation form may have
/// ("至多定义五个自定义选项").
pub const MAX_CUSTOM_FORM_FIELDS: usize = 5;

/// Activating a user's member card (`card/membercard/activate`, 接口激活): the
/// membership number shown on the card and the member's starting figures.
///
/// ```
/// use wemp_client::api::cards::MemberActivation;
/// let activation = MemberActivation {
///     init_bonus: Some(100),
///     init_custom_field_value1: Some("白银".into()),
///     ..MemberActivation::new("916679873278", "M-0001")
/// };
/// assert_eq!(serde_json::to_value(&activation).unwrap()["init_bonus"], 100);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemberActivation {
    /// The user's code of the member card.
    pub code: String,
    /// The card: required for `use_custom_code` cards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// The membership number shown on the card (may equal the code).
    pub membership_number: String,
    /// A background picture for this member's card (a URL from `media/uploadimg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_pic_url: Option<String>,
    /// Valid from, Unix seconds (default: the card's `date_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_begin_time: Option<i64>,
    /// Valid until, Unix seconds (default: the card's `date_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_end_time: Option<i64>,
    /// Starting bonus points (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_bonus: Option<i64>,
    /// Why the member starts with these points (积分同步说明).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_bonus_record: Option<String>,
    /// Starting balance, in fen (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_balance: Option<i64>,
    /// Starting value of the card's `custom_field1` (at most
    /// [`MAX_CUSTOM_FIELD_VALUE_BYTES`] bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_custom_field_value1: Option<String>,
    /// Starting value of `custom_field2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_custom_field_value2: Option<String>,
    /// Starting value of `custom_field3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_custom_field_value3: Option<String>,
}

impl MemberActivation {
    /// Activates `code` with `membership_number`, everything else left to the defaults.
    pub fn new(code: impl Into<String>, membership_number: impl Into<String>) -> Self {
        Self { code: code.into(), membership_number: membership_number.into(), ..Self::default() }
    }

    fn check(&self) -> Result<()> {
        non_empty("card/membercard/activate's code", &self.code)?;
        non_empty("card/membercard/activate's membership_number", &self.membership_number)?;
        if let (Some(begin), Some(end)) = (self.activate_begin_time, self.activate_end_time)
            && end <= begin
        {
            return Err(Error::Invalid(format!(
                "card/membercard/activate: activate_end_time {end} is not after activate_begin_time {begin}"
            )));
        }
        let values =
            [&self.init_custom_field_value1, &self.init_custom_field_value2, &self.init_custom_field_value3];
        check_custom_values("card/membercard/activate", "init_custom_field_value", values)
    }
}

fn check_custom_values(api: &str, name: &str, values: [&Option<String>; 3]) -> Result<()> {
    for (i, value) in values.into_iter().enumerate() {
        if let Some(v) = value.as_deref().filter(|v| v.len() > MAX_CUSTOM_FIELD_VALUE_BYTES) {
            return Err(Error::Invalid(format!(
                "{api}: {name}{n} has at most {MAX_CUSTOM_FIELD_VALUE_BYTES} bytes (4 Chinese characters), \
                 not {len} ({v:?})",
                n = i + 1,
                len = v.len(),
            )));
        }
    }
    Ok(())
}

string_enum! {
    /// A profile field WeChat formats itself in a member card's activation form
    /// (`common_field_id_list`), and the `name` of a filled-in one in
    /// [`MemberInfo::user_info`]. The field table of the documentation is followed; some
    /// SDKs also send `USER_FORM_INFO_FLAG_EDUCATION_BACKGROUND`, `…_CAREER` and
    /// `…_DETAIL_LOCATION`, which read back as [`FormField::Other`].
    pub enum FormField {
        /// `USER_FORM_INFO_FLAG_MOBILE` 手机号.
        Mobile => "USER_FORM_INFO_FLAG_MOBILE",
        /// `USER_FORM_INFO_FLAG_SEX` 性别.
        Sex => "USER_FORM_INFO_FLAG_SEX",
        /// `USER_FORM_INFO_FLAG_NAME` 姓名.
        Name => "USER_FORM_INFO_FLAG_NAME",
        /// `USER_FORM_INFO_FLAG_BIRTHDAY` 生日.
        Birthday => "USER_FORM_INFO_FLAG_BIRTHDAY",
        /// `USER_FORM_INFO_FLAG_IDCARD` 身份证.
        IdCard => "USER_FORM_INFO_FLAG_IDCARD",
        /// `USER_FORM_INFO_FLAG_EMAIL` 邮箱.
        Email => "USER_FORM_INFO_FLAG_EMAIL",
        /// `USER_FORM_INFO_FLAG_LOCATION` 详细地址.
        Location => "USER_FORM_INFO_FLAG_LOCATION",
        /// `USER_FORM_INFO_FLAG_EDUCATION_BACKGRO` 教育背景 (sic).
        Education => "USER_FORM_INFO_FLAG_EDUCATION_BACKGRO",
        /// `USER_FORM_INFO_FLAG_INDUSTRY` 行业.
        Industry => "USER_FORM_INFO_FLAG_INDUSTRY",
        /// `USER_FORM_INFO_FLAG_INCOME` 收入.
        Income => "USER_FORM_INFO_FLAG_INCOME",
        /// `USER_FORM_INFO_FLAG_HABIT` 兴趣爱好.
        Habit => "USER_FORM_INFO_FLAG_HABIT",
    }
}

string_enum! {
    /// How a rich custom field of an activation form is answered (`rich_field_list.type`).
    pub enum RichFieldType {
        /// `FORM_FIELD_RADIO`: one of the values, as radio buttons.
        Radio => "FORM_FIELD_RADIO",
        /// `FORM_FIELD_SELECT`: one of the values, from a list.
        Select => "FORM_FIELD_SELECT",
        /// `FORM_FIELD_CHECK_BOX`: any of the values.
        CheckBox => "FORM_FIELD_CHECK_BOX",
    }
}

/// A custom field with given answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RichField {
    /// How it is answered.
    #[serde(rename = "type")]
    pub kind: RichFieldType,
    /// The question.
    pub name: String,
    /// The answers to choose from.
    pub values: Vec<String>,
}

/// The fields of one part (required or optional) of an activation form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FormFields {
    /// Whether the member may change these fields after activating (your server then gets
    /// the `update_member_card` event).
    pub can_modify: bool,
    /// Fields WeChat formats (and fills in from the user's profile where it can).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub common_field_id_list: Vec<FormField>,
    /// Free-text questions of your own (at most [`MAX_CUSTOM_FORM_FIELDS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_field_list: Vec<String>,
    /// Questions with given answers (at most [`MAX_CUSTOM_FORM_FIELDS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rich_field_list: Vec<RichField>,
}

/// A link shown on the activation form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FormLink {
    /// Its text.
    pub name: String,
    /// Where it goes.
    pub url: String,
}

/// A member card's activation form (`card/membercard/activateuserform/set`, 一键激活 /
/// 开卡字段): what the user fills in when they activate the card inside WeChat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActivationForm {
    /// The member card.
    pub card_id: String,
    /// The fields the user must fill in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_form: Option<FormFields>,
    /// The fields the user may fill in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional_form: Option<FormFields>,
    /// A link to the membership terms (服务声明).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_statement: Option<FormLink>,
    /// A link for existing members to bind their card (绑定老会员).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_old_card: Option<FormLink>,
}

impl ActivationForm {
    fn check(&self) -> Result<()> {
        const API: &str = "card/membercard/activateuserform/set";
        non_empty("card/membercard/activateuserform/set's card_id", &self.card_id)?;
        if self.required_form.is_none() && self.optional_form.is_none() {
            return Err(Error::Invalid(format!("{API} needs a required_form or an optional_form")));
        }
        let forms = [("required_form", &self.required_form), ("optional_form", &self.optional_form)];
        for (name, form) in forms {
            let Some(form) = form else { continue };
            for (list, len) in [
                ("custom_field_list", form.custom_field_list.len()),
                ("rich_field_list", form.rich_field_list.len()),
            ] {
                if len > MAX_CUSTOM_FORM_FIELDS {
                    return Err(Error::Invalid(format!(
                        "{API}: {name}.{list} has at most {MAX_CUSTOM_FORM_FIELDS} fields, not {len}"
                    )));
                }
            }
            if let Some(f) = form.rich_field_list.iter().find(|f| f.name.is_empty() || f.values.is_empty()) {
                return Err(Error::Invalid(format!(
                    "{API}: {name}'s rich field {:?} needs a name and at least one value",
                    f.name
                )));
            }
        }
        Ok(())
    }
}

/// A filled-in field of a member's activation form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldValue {
    /// The field: a [`FormField`] spelling for `common_field_list`, your question for
    /// `custom_field_list`.
    pub name: String,
    /// The answer.
    #[serde(default)]
    pub value: String,
    /// The answers of a check-box field.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::serde_util::null_as_empty"
    )]
    pub value_list: Vec<String>,
}

/// What a member filled in on the activation form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberForm {
    /// Fields WeChat formats.
    #[serde(default, deserialize_with = "crate::serde_util::null_as_empty")]
    pub common_field_list: Vec<FieldValue>,
    /// Your own questions.
    #[serde(default, deserialize_with = "crate::serde_util::null_as_empty")]
    pub custom_field_list: Vec<FieldValue>,
}

impl MemberForm {
    /// The answer to a formatted field.
    pub fn common(&self, field: &FormField) -> Option<&str> {
        self.common_field_list.iter().find(|f| f.name == field.as_str()).map(|f| f.value.as_str())
    }
}

/// A member's card (`card/membercard/userinfo/get`, 拉取会员信息).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member.
    #[serde(default)]
    pub openid: String,
    /// Their nickname.
    #[serde(default)]
    pub nickname: String,
    /// The membership number set on activation.
    #[serde(default)]
    pub membership_number: String,
    /// Bonus points.
    #[serde(default)]
    pub bonus: i64,
    /// Balance, in fen (not in the documented example; absent when the card keeps none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<i64>,
    /// `MALE`, `FEMALE` or `UNKNOWN`.
    #[serde(default)]
    pub sex: String,
    /// What they filled in on the activation form.
    #[serde(default)]
    pub user_info: MemberForm,
    /// The state of their code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_card_status: Option<UserCardStatus>,
    /// Whether the card is activated.
    #[serde(default)]
    pub has_active: bool,
}

/// A change of a member's bonus points or balance: to a value, or by an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Set it to this value (`bonus` / `balance`).
    Set(i64),
    /// Add this amount, or take it away when negative (`add_bonus` / `add_balance`).
    Add(i64),
}

/// What changes on a member's card (`card/membercard/updateuser`, 更新会员信息), after a
/// purchase for example; `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberUpdate {
    /// The member's code.
    pub code: String,
    /// The member card.
    pub card_id: String,
    /// A new background picture for this member's card.
    pub background_pic_url: Option<String>,
    /// Bonus points.
    pub bonus: Option<Figure>,
    /// Why the points changed, shown to the member (at most [`MAX_RECORD_CHARS`] characters).
    pub record_bonus: Option<String>,
    /// Balance, in fen.
    pub balance: Option<Figure>,
    /// Why the balance changed (at most [`MAX_RECORD_CHARS`] characters).
    pub record_balance: Option<String>,
    /// New value of the card's `custom_field1` (at most [`MAX_CUSTOM_FIELD_VALUE_BYTES`]
    /// bytes).
    pub custom_field_value1: Option<String>,
    /// New value of `custom_field2`.
    pub custom_field_value2: Option<String>,
    /// New value of `custom_field3`.
    pub custom_field_value3: Option<String>,
    /// Which changes WeChat tells the member about (`notify_optional`); `None` for WeChat's
    /// defaults ([`MemberNotify::default`]).
    pub notify: Option<MemberNotify>,
}

/// Which changes of [`CardsApi::update_member`] WeChat tells the member about in a template
/// message (`notify_optional`). The default is WeChat's: points and balance yes, custom
/// fields no.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MemberNotify {
    /// Points (`is_notify_bonus`).
    #[serde(rename = "is_notify_bonus")]
    pub bonus: bool,
    /// Balance (`is_notify_balance`).
    #[serde(rename = "is_notify_balance")]
    pub balance: bool,
    /// `custom_field1` (`is_notify_custom_field1`).
    #[serde(rename = "is_notify_custom_field1")]
    pub custom_field1: bool,
    /// `custom_field2`.
    #[serde(rename = "is_notify_custom_field2")]
    pub custom_field2: bool,
    /// `custom_field3`.
    #[serde(rename = "is_notify_custom_field3")]
    pub custom_field3: bool,
}

impl Default for MemberNotify {
    fn default() -> Self {
        Self { bonus: true, balance: true, custom_field1: false, custom_field2: false, custom_field3: false }
    }
}

impl MemberUpdate {
    /// An update of `code` of `card_id` that changes nothing yet.
    pub fn new(card_id: impl Into<String>, code: impl Into<String>) -> Self {
        Self { card_id: card_id.into(), code: code.into(), ..Self::default() }
    }

    fn check(&self) -> Result<()> {
        const API: &str = "card/membercard/updateuser";
        non_empty("card/membercard/updateuser's code", &self.code)?;
        non_empty("card/membercard/updateuser's card_id", &self.card_id)?;
        for (name, record) in [("record_bonus", &self.record_bonus), ("record_balance", &self.record_balance)]
        {
            let n = record.as_deref().map_or(0, |r| r.chars().count());
            if n > MAX_RECORD_CHARS {
                return Err(Error::Invalid(format!(
                    "{API}: {name} has at most {MAX_RECORD_CHARS} characters, not {n}"
                )));
            }
        }
        let values = [&self.custom_field_value1, &self.custom_field_value2, &self.custom_field_value3];
        check_custom_values(API, "custom_field_value", values)
    }

    /// The request body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({ "code": self.code, "card_id": self.card_id });
        let mut put = |key: &str, value: Value| {
            body[key] = value;
        };
        if let Some(url) = &self.background_pic_url {
            put("background_pic_url", json!(url));
        }
        for (set, add, figure) in
            [("bonus", "add_bonus", self.bonus), ("balance", "add_balance", self.balance)]
        {
            match figure {
                Some(Figure::Set(v)) => put(set, json!(v)),
                Some(Figure::Add(v)) => put(add, json!(v)),
                None => {}
            }
        }
        let texts = [
            ("record_bonus", &self.record_bonus),
            ("record_balance", &self.record_balance),
            ("custom_field_value1", &self.custom_field_value1),
            ("custom_field_value2", &self.custom_field_value2),
            ("custom_field_value3", &self.custom_field_value3),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                put(key, json!(v));
            }
        }
        if let Some(notify) = self.notify {
            put("notify_optional", json!(notify));
        }
        body
    }
}

/// The member's figures after [`CardsApi::update_member`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdated {
    /// Bonus points now.
    #[serde(default)]
    pub result_bonus: i64,
    /// Balance now, in fen.
    #[serde(default)]
    pub result_balance: i64,
    /// The member.
    #[serde(default)]
    pub openid: String,
}

/// `{"code": code}` plus `card_id` when given.
fn code_body(code: &str, card_id: Option<&str>) -> Value {
    let mut body = json!({ "code": code });
    if let Some(id) = card_id {
        body["card_id"] = json!(id);
    }
    body
}

fn non_empty(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const CREATE: &str = "/card/create";
    pub(super) const GET: &str = "/card/get";
    pub(super) const BATCH_GET: &str = "/card/batchget";
    pub(super) const UPDATE: &str = "/card/update";
    pub(super) const DELETE: &str = "/card/delete";
    pub(super) const MODIFY_STOCK: &str = "/card/modifystock";
    pub(super) const TEST_WHITELIST: &str = "/card/testwhitelist/set";
    pub(super) const QRCODE: &str = "/card/qrcode/create";
    pub(super) const CODE_DECRYPT: &str = "/card/code/decrypt";
    pub(super) const CODE_GET: &str = "/card/code/get";
    pub(super) const CODE_CONSUME: &str = "/card/code/consume";
    pub(super) const CODE_UNAVAILABLE: &str = "/card/code/unavailable";
    pub(super) const USER_CARDS: &str = "/card/user/getcardlist";
    pub(super) const MEMBER_ACTIVATE: &str = "/card/membercard/activate";
    pub(super) const MEMBER_FORM: &str = "/card/membercard/activateuserform/set";
    pub(super) const MEMBER_INFO: &str = "/card/membercard/userinfo/get";
    pub(super) const MEMBER_UPDATE: &str = "/card/membercard/updateuser";
}

impl Client {
    /// Cards and coupons (`/card/*`): [`CardsApi`].
    pub fn cards(&self) -> CardsApi<'_> {
        CardsApi(self)
    }
}

/// Cards and coupons (`/card/*`), from [`Client::cards`].
#[derive(Clone, Copy, Debug)]
pub struct CardsApi<'c>(&'c Client);

impl CardsApi<'_> {
    /// Creates a card (`POST /card/create`); returns its `card_id`. The card starts
    /// waiting for review ([`CardStatus::NotVerify`]); until it passes, only users on the
    /// test whitelist ([`CardsApi::set_test_whitelist`]) can take it.
    ///
    /// # Errors
    /// As [`Client::get`]: `40071` unknown card type, `40072` unknown `code_type`, `41011` a
    /// required field is missing, `45021` a field is too long, `40100` a bad date range.
    pub async fn create(self, card: &Card) -> Result<String> {
        #[derive(Deserialize)]
        struct Created {
            card_id: String,
        }
        Ok(self.0.post_as::<Created, _>(path::CREATE, &[], &card.to_json()).await?.card_id)
    }

    /// A card's definition and state (`POST /card/get`).
    ///
    /// # Errors
    /// As [`Client::get`]: `40073` no such card.
    pub async fn get(self, card_id: &str) -> Result<Card> {
        #[derive(Deserialize)]
        struct Got {
            card: Card,
        }
        Ok(self.0.post_as::<Got, _>(path::GET, &[], &json!({ "card_id": card_id })).await?.card)
    }

    /// One page of the account's card ids (`POST /card/batchget`): `count` ids (1 to
    /// [`MAX_CARDS_PER_PAGE`]) from position `offset`, only of the given states when
    /// `statuses` is not empty.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `count` of 0 or above [`MAX_CARDS_PER_PAGE`] (nothing is
    /// sent); otherwise as [`Client::get`].
    pub async fn list(self, offset: u32, count: u32, statuses: &[CardStatus]) -> Result<CardIdPage> {
        if count == 0 || count > MAX_CARDS_PER_PAGE {
            return Err(Error::Invalid(format!(
                "card/batchget takes a count of 1 to {MAX_CARDS_PER_PAGE}, not {count}"
            )));
        }
        let mut body = json!({ "offset": offset, "count": count });
        if !statuses.is_empty() {
            body["status_list"] = json!(statuses.iter().map(CardStatus::as_str).collect::<Vec<_>>());
        }
        self.0.post_as(path::BATCH_GET, &[], &body).await
    }

    /// Changes a card (`POST /card/update`): `changes` holds the fields to change, as they
    /// sit under the type's key (`{"base_info": {"description": …}}`). Returns `send_check`:
    /// whether the change sends the card back to review.
    ///
    /// # Errors
    /// As [`Client::get`]: `40073` no such card (reported for unknown ids), `45021` a field
    /// is too long.
    pub async fn update(self, card_id: &str, card_type: &CardType, changes: &Value) -> Result<bool> {
        #[derive(Deserialize)]
        struct Updated {
            #[serde(default)]
            send_check: bool,
        }
        let mut body = Map::new();
        body.insert("card_id".into(), json!(card_id));
        body.insert(card_type.key(), changes.clone());
        Ok(self.0.post_as::<Updated, _>(path::UPDATE, &[], &body).await?.send_check)
    }

    /// Deletes a card (`POST /card/delete`). Nobody can take it any more; codes users
    /// already hold stay in their wallets and can still be redeemed.
    ///
    /// # Errors
    /// As [`Client::get`]: `40073` no such card.
    pub async fn delete(self, card_id: &str) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "card_id": card_id })).await
    }

    /// Adds `delta` to a card's stock, or takes `-delta` away (`POST /card/modifystock`,
    /// `increase_stock_value` / `reduce_stock_value`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `delta` of 0 (nothing is sent); otherwise as [`Client::get`]:
    /// `40073` no such card, `40122` an invalid stock quantity (不合法的库存数量).
    pub async fn modify_stock(self, card_id: &str, delta: i64) -> Result<()> {
        let mut body = json!({ "card_id": card_id });
        match delta {
            0 => return Err(Error::Invalid("card/modifystock needs a nonzero change".into())),
            d if d > 0 => body["increase_stock_value"] = json!(d),
            d => body["reduce_stock_value"] = json!(d.unsigned_abs()),
        }
        self.0.post_ok(path::MODIFY_STOCK, &body).await
    }

    /// Sets who may take cards still waiting for review (`POST /card/testwhitelist/set`):
    /// users by OpenID and by WeChat ID (`username`, 微信号).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_test_whitelist(self, openids: &[&str], usernames: &[&str]) -> Result<()> {
        self.0.post_ok(path::TEST_WHITELIST, &json!({ "openid": openids, "username": usernames })).await
    }

    /// Creates a QR code that gives one card (`POST /card/qrcode/create`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an `expire` outside 60 s to 30 min or an empty `card_id`
    /// (nothing is sent); otherwise as [`Client::get`]: `40073` no such card, `40053` invalid
    /// `action_info` (check `code` and `openid` against the card's `use_custom_code` and
    /// `bind_openid`).
    pub async fn create_qrcode(self, qr: &CardQrCode) -> Result<CardQrTicket> {
        non_empty("card/qrcode/create's card_id", &qr.card_id)?;
        if let Some(e) = qr.expire.filter(|e| !(60..=1800).contains(&e.as_secs())) {
            return Err(Error::Invalid(format!(
                "card/qrcode/create takes an expire_seconds of 60 to 1800, not {}",
                e.as_secs()
            )));
        }
        self.0.post_as(path::QRCODE, &[], &qr.to_json()).await
    }

    /// The code behind an `encrypt_code` (`POST /card/code/decrypt`), as a card's custom
    /// URL or `wx.addCard` hands it over. Pass it as received, `+` and `/` included (decode
    /// the URL's percent-escapes first).
    ///
    /// # Errors
    /// As [`Client::get`]: `40075` the encrypt_code does not decrypt.
    pub async fn decrypt_code(self, encrypt_code: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Decrypted {
            code: String,
        }
        let body = json!({ "encrypt_code": encrypt_code });
        Ok(self.0.post_as::<Decrypted, _>(path::CODE_DECRYPT, &[], &body).await?.code)
    }

    /// A code's holder, validity and state (`POST /card/code/get`). `card_id` is required
    /// for custom-code cards. With `check_consume`, a code that cannot be redeemed is an
    /// error; without it, its state comes back in [`CardCodeInfo::user_card_status`].
    ///
    /// # Errors
    /// As [`Client::get`]: `40056` no such code, `40073` no such card; with
    /// `check_consume`, `40099` already redeemed and `40127` deleted by the user, being
    /// given away or made unavailable.
    pub async fn get_code(
        self,
        code: &str,
        card_id: Option<&str>,
        check_consume: bool,
    ) -> Result<CardCodeInfo> {
        let mut body = code_body(code, card_id);
        body["check_consume"] = json!(check_consume);
        self.0.post_as(path::CODE_GET, &[], &body).await
    }

    /// Redeems (核销) a code (`POST /card/code/consume`); this cannot be undone. `card_id`
    /// is required for custom-code cards. Calling [`CardsApi::get_code`] with
    /// `check_consume` first is what the documentation recommends.
    ///
    /// # Errors
    /// As [`Client::get`]: `40056` no such code, `40099` already redeemed, `40127`
    /// deleted by the user, being given away or made unavailable.
    pub async fn consume_code(self, code: &str, card_id: Option<&str>) -> Result<ConsumedCode> {
        non_empty("card/code/consume's code", code)?;
        self.0.post_as(path::CODE_CONSUME, &[], &code_body(code, card_id)).await
    }

    /// Makes a user's code unavailable (`POST /card/code/unavailable`), for example after
    /// a refund; this cannot be undone. `card_id` is required for custom-code cards.
    ///
    /// # Errors
    /// As [`CardsApi::consume_code`].
    pub async fn make_code_unavailable(
        self,
        code: &str,
        card_id: Option<&str>,
        reason: Option<&str>,
    ) -> Result<()> {
        non_empty("card/code/unavailable's code", code)?;
        let mut body = code_body(code, card_id);
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.0.post_ok(path::CODE_UNAVAILABLE, &body).await
    }

    /// The cards of this account in a user's wallet (`POST /card/user/getcardlist`), of one
    /// card only when `card_id` is given.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `openid` (nothing is sent); otherwise as
    /// [`Client::get`].
    pub async fn user_cards(self, openid: &str, card_id: Option<&str>) -> Result<UserCards> {
        non_empty("card/user/getcardlist's openid", openid)?;
        let mut body = json!({ "openid": openid });
        if let Some(id) = card_id {
            body["card_id"] = json!(id);
        }
        self.0.post_as(path::USER_CARDS, &[], &body).await
    }

    /// The card api_ticket (`GET /cgi-bin/ticket/getticket?type=wx_card`) that signs the
    /// JS-SDK's card calls: cached, shared through the client's token store and refreshed
    /// exactly like the access token and the jsapi_ticket (its own store entry), so every
    /// process of the account shares one ticket. The documentation warns that fetching it
    /// is strictly limited and that it must be cached.
    ///
    /// # Errors
    /// As [`Client::jsapi_ticket`].
    pub async fn api_ticket(self) -> Result<String> {
        self.0.ticket(Ticket::Card).await
    }

    /// A signed `cardExt` for `wx.addCard` of `card_id`, with a fresh timestamp and nonce and
    /// the cached api_ticket. Give `code` for `use_custom_code` cards and `openid` for
    /// `bind_openid` cards.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `card_id` (nothing is sent); otherwise as
    /// [`CardsApi::api_ticket`].
    pub async fn card_ext(self, card_id: &str, code: Option<&str>, openid: Option<&str>) -> Result<CardExt> {
        non_empty("a cardExt's card_id", card_id)?;
        let ticket = self.api_ticket().await?;
        CardExt::sign(&ticket, card_id, code, openid, self.0.now_ms() / 1000, &nonce_str())
    }

    /// Signed arguments for `wx.chooseCard`, with a fresh timestamp and nonce and the cached
    /// api_ticket: the user's cards of this account, of one store, type or card when given.
    ///
    /// # Errors
    /// As [`CardsApi::api_ticket`].
    pub async fn choose_card(
        self,
        shop_id: Option<&str>,
        card_type: Option<&CardType>,
        card_id: Option<&str>,
    ) -> Result<ChooseCard> {
        let ticket = self.api_ticket().await?;
        let now = self.0.now_ms() / 1000;
        ChooseCard::sign(&ticket, self.0.appid(), shop_id, card_type, card_id, now, &nonce_str())
    }

    /// Activates a user's member card (`POST /card/membercard/activate`, 接口激活): sets
    /// the membership number and the starting figures. Calling it again for an activated
    /// card changes its membership number.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `code` or `membership_number`, an end time not after
    /// the begin time, or a custom field value over [`MAX_CUSTOM_FIELD_VALUE_BYTES`]
    /// (nothing is sent); otherwise as [`Client::get`]: `40056` no such code, `40073` no
    /// such card, `40127` a code deleted, given away or made unavailable, `45061` called too
    /// often.
    pub async fn activate_member(self, activation: &MemberActivation) -> Result<()> {
        activation.check()?;
        self.0.post_ok(path::MEMBER_ACTIVATE, activation).await
    }

    /// Sets the form users fill in to activate a member card inside WeChat
    /// (`POST /card/membercard/activateuserform/set`, 开卡字段); the card must be created
    /// with `wx_activate`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `card_id`, no form at all, more than
    /// [`MAX_CUSTOM_FORM_FIELDS`] custom or rich fields in a form, or a rich field without a
    /// name or values (nothing is sent); otherwise as [`Client::get`]: `40073` no such card.
    pub async fn set_activation_form(self, form: &ActivationForm) -> Result<()> {
        form.check()?;
        self.0.post_ok(path::MEMBER_FORM, form).await
    }

    /// A member's card: points, balance, activation form and state
    /// (`POST /card/membercard/userinfo/get`, 拉取会员信息).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `card_id` or `code` (both are required; nothing is
    /// sent); otherwise as [`Client::get`]: `40056` no such code, `40073` no such card.
    pub async fn member_info(self, card_id: &str, code: &str) -> Result<MemberInfo> {
        non_empty("card/membercard/userinfo/get's card_id", card_id)?;
        non_empty("card/membercard/userinfo/get's code", code)?;
        self.0.post_as(path::MEMBER_INFO, &[], &json!({ "card_id": card_id, "code": code })).await
    }

    /// Changes a member's points, balance, custom fields or background
    /// (`POST /card/membercard/updateuser`, 更新会员信息); WeChat tells the member in a
    /// template message as [`MemberUpdate::notify`] says.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty `code` or `card_id`, a record over
    /// [`MAX_RECORD_CHARS`] characters or a custom field value over
    /// [`MAX_CUSTOM_FIELD_VALUE_BYTES`] bytes (nothing is sent); otherwise as
    /// [`Client::get`]: `40056` no such code, `40073` no such card, `40127` a code deleted,
    /// given away or made unavailable.
    pub async fn update_member(self, update: &MemberUpdate) -> Result<MemberUpdated> {
        update.check()?;
        self.0.post_as(path::MEMBER_UPDATE, &[], &update.to_json()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_info_reads_the_documented_answer() {
        // The `card/membercard/userinfo/get` example of WeChat's documentation, with a
        // check-box answer as SDKs model it.
        let info: MemberInfo = serde_json::from_value(json!({
            "errcode": 0, "errmsg": "ok", "openid": "obLatjjwDolFjRRd3doGIdwNqRXw", "nickname": "Fourier",
            "membership_number": "316510891298", "bonus": 460, "sex": "MALE",
            "user_info": {
                "common_field_list": [
                    { "name": "USER_FORM_INFO_FLAG_MOBILE", "value": "15521328888" },
                    { "name": "USER_FORM_INFO_FLAG_NAME", "value": "Weixin" },
                ],
                "custom_field_list": [{ "name": "职业", "value": "", "value_list": ["赛车手", "旅行家"] }],
            },
            "user_card_status": "NORMAL",
        }))
        .unwrap();
        assert_eq!((info.bonus, info.balance, info.has_active), (460, None, false));
        assert_eq!(info.user_info.common(&FormField::Name), Some("Weixin"));
        assert_eq!(info.user_info.custom_field_list[0].value_list, ["赛车手", "旅行家"]);
        assert_eq!(info.user_card_status, Some(UserCardStatus::Normal));
        let bare: MemberInfo =
            serde_json::from_value(json!({ "user_info": { "custom_field_list": null } })).unwrap();
        assert!(bare.user_info.custom_field_list.is_empty());
    }

    #[test]
    fn member_updates_send_one_figure_each_and_the_notify_defaults_are_wechats() {
        let update = MemberUpdate {
            bonus: Some(Figure::Set(10)),
            balance: Some(Figure::Add(-5)),
            notify: Some(MemberNotify::default()),
            ..MemberUpdate::new("p1", "c1")
        };
        assert_eq!(
            update.to_json(),
            json!({ "code": "c1", "card_id": "p1", "bonus": 10, "add_balance": -5, "notify_optional": {
                "is_notify_bonus": true, "is_notify_balance": true, "is_notify_custom_field1": false,
                "is_notify_custom_field2": false, "is_notify_custom_field3": false } })
        );
        let activation = MemberActivation::new("c1", "M1");
        assert_eq!(
            serde_json::to_value(&activation).unwrap(),
            json!({ "code": "c1", "membership_number": "M1" })
        );
    }

    #[test]
    fn code_info_reads_both_documented_shapes() {
        let current: CardCodeInfo = serde_json::from_value(json!({
            "errcode": 0, "errmsg": "ok",
            "card": { "card_id": "pbLatjk4T4Hx", "begin_time": 1_457_452_800, "end_time": 1_463_155_199 },
            "openid": "obLatjm43RA5", "can_consume": true, "user_card_status": "NORMAL", "outer_str": "12b",
        }))
        .unwrap();
        assert_eq!(
            current,
            CardCodeInfo {
                openid: "obLatjm43RA5".into(),
                card_id: "pbLatjk4T4Hx".into(),
                begin_time: 1_457_452_800,
                end_time: 1_463_155_199,
                can_consume: Some(true),
                user_card_status: Some(UserCardStatus::Normal),
                outer_str: Some("12b".into()),
            }
        );
        let older: CardCodeInfo = serde_json::from_value(json!({
            "errcode": 0, "errmsg": "ok", "openid": "oFS7Fjl0",
            "card": { "card_id": "pFS7Fjg8", "begin_time": 1_404_205_036, "end_time": 1_404_205_036,
                      "user_card_status": "GIFTING", "can_consume": "false" },
        }))
        .unwrap();
        assert_eq!((older.can_consume, older.user_card_status), (Some(false), Some(UserCardStatus::Gifting)));
        assert_eq!((older.card_id.as_str(), older.outer_str), ("pFS7Fjg8", None));
        let bad = serde_json::from_value::<CardCodeInfo>(json!({ "can_consume": 3 }));
        assert!(bad.is_err());
    }

    #[test]
    fn enums_keep_unknown_values_and_cards_round_trip() {
        assert_eq!(CardType::from("LUCKY_MONEY"), CardType::Other("LUCKY_MONEY".into()));
        assert_eq!(CardType::from("LUCKY_MONEY").key(), "lucky_money");
        assert_eq!(serde_json::to_value(UserCardStatus::GiftTimeout).unwrap(), json!("GIFT_TIMEOUT"));
        let card = Card::new(CardType::MemberCard, json!({ "base_info": { "sku": { "quantity": 7 } } }));
        let back: Card = serde_json::from_value(card.to_json()["card"].clone()).unwrap();
        assert_eq!((back.card_type.key(), back.quantity()), ("member_card".to_owned(), Some(7)));
        assert!(Card::from_json(&json!({ "card": { "card_type": "CASH", "groupon": {} } })).is_err());
        let qr = CardQrCode::new("p1").code("c1").unique_code(false).expire(Duration::from_secs(600));
        assert_eq!(
            qr.to_json(),
            json!({ "action_name": "QR_CARD", "expire_seconds": 600,
                    "action_info": { "card": { "card_id": "p1", "code": "c1", "is_unique_code": false } } })
        );
    }
}
