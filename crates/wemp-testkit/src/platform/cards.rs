//! 卡券 (`/card/…`) on the fake platform: card definitions, their stock and review state,
//! card QR codes, and the codes users hold.
//!
//! **Cards.** `card/create` checks the definition as the documentation describes it (known
//! `card_type`, 40071; the definition under the type's lower-case key with a `base_info`
//! holding `logo_url`, `brand_name`, `code_type`, `title`, `color`, `notice`,
//! `description`, `sku.quantity` and `date_info`, plus the type's own required field —
//! `deal_detail`, `reduce_cost`, `discount`, `gift`, `default_detail`, `prerogative` —
//! else 41011; a known `code_type`, 40072; `title` at most 9 characters and `brand_name` at
//! most 12, else 45021; a `DATE_TYPE_FIX_TIME_RANGE` that ends after it begins, 40100) and
//! answers a fresh `card_id`. A new card waits for review (`CARD_STATUS_NOT_VERIFY`) until
//! [`FakePlatform::review_card`]; `card/update` of the title, brand name or logo sends it
//! back (`send_check: true`). `card/delete` marks it `CARD_STATUS_DELETE`: it stays listed
//! and readable, nobody can take it any more (40078), and codes already held still work, as
//! documented. An unknown `card_id` is 40073 everywhere.
//!
//! **Codes.** Users get codes through [`FakePlatform::give_card`] (or
//! [`FakePlatform::give_card_code`] for `use_custom_code` cards) and
//! [`FakePlatform::scan_card_qrcode`], which check what the platform checks when a user
//! takes a card: the card is approved (or the user is on the test whitelist, by OpenID),
//! stock is left (45031, and the stock goes down), the user's `get_limit` is not reached
//! (45033). A code's validity follows the card's `date_info` (`DATE_TYPE_PERMANENT`:
//! 0 to 2147483647). `card/code/get`, `consume` and `unavailable` find a code by `code`
//! alone, or by `card_id` and `code` (a custom code is only found with its `card_id`;
//! otherwise 40056), and refuse a redeemed code with 40099 and a deleted or unavailable one
//! with 40127 (`code/get` only when `check_consume` is true, which is what an absent
//! `check_consume` means here, as wechatpy assumes). `card/user/getcardlist` lists the
//! user's codes in the `NORMAL` state.
//!
//! **encrypt_code.** The fake encrypts a code as WeChat's message crypto does
//! (`WXBizMsgCrypt`: AES-256-CBC over random bytes, length, the code and the AppID, then
//! base64) under a key of its own, made when the platform starts. [`CardGrant`] carries it,
//! as `wx.addCard` and a card's custom URL would, and [`FakePlatform::encrypt_card_code`]
//! makes more; `card/code/decrypt` opens it and answers 40075 when it does not open, names
//! another AppID, or names a code the platform never issued.
//!
//! **The card api_ticket and the JS-SDK.** `ticket/getticket?type=wx_card` answers a
//! ticket that stays the same until it expires (the token lifetime). [`FakePlatform::add_card`]
//! and [`FakePlatform::choose_card`] play a page's `wx.addCard` and `wx.chooseCard`: they check
//! the signature against the current api_ticket as the JS-SDK appendix describes (the sorted
//! values, SHA-1) and answer as the JS API does (`addCard:fail signature error`, …).
//!
//! **Member cards.** `card/membercard/activate` needs a `membership_number` and a code of a
//! `MEMBER_CARD` card in the `NORMAL` state (40071 for another card type, as 40056/40099/
//! 40127 for codes); the starting points, balance and custom field values (at most 12 bytes,
//! else 45021) apply on the first activation, and activating again changes the membership
//! number. `activateuserform/set` keeps the card's form (at most five custom and five rich
//! fields per part, formatted fields named `USER_FORM_INFO_FLAG_…`, else 47001), and
//! [`FakePlatform::fill_member_form`] plays a user filling it in inside WeChat.
//! `userinfo/get` needs both `card_id` and `code` (41011). `updateuser` sets or changes the
//! points and balance (`bonus` wins over `add_bonus` when both are sent), checks the records
//! (at most 14 characters, 45021), and notes the template messages WeChat would send as
//! `notify_optional` asks (points and balance by default, custom fields only when asked) in
//! [`FakeMember::notices`].
//!
//! Choices the documentation leaves open, made here: a count outside 1–50 in
//! `card/batchget`, an `expire_seconds` outside 60–1800 and an unknown `date_info.type`
//! are 47001; a `card/qrcode/create` other than `QR_CARD`, or for a custom-code card without
//! `code` or a `bind_openid` card without `openid`, is 40053; changing a deleted card is
//! 40078; taking more stock away than is left is 40122; `card/testwhitelist/set` replaces
//! the whitelist; `has_share_card` is always false (friends' shared cards are not modelled);
//! codes do not expire; a member card's code that is not activated cannot be updated (40127);
//! points or a balance below zero are 47001; an activation with only one of
//! `activate_begin_time` and `activate_end_time` is 41011, and one ending before it begins
//! 40100; `fill_member_form` activates the card with its code as the membership number;
//! `sex` is always `UNKNOWN`.

use std::collections::{BTreeSet, HashMap};

use axum::http::Method;
use serde_json::{Map, Value, json};
use wemp_proto::crypto::Cipher;

use super::support::{fail as common_fail, guard};
use super::{Answer, FakePlatform, Recorded, World, ok};

const PATHS: [&str; 17] = [
    "/card/create",
    "/card/get",
    "/card/batchget",
    "/card/update",
    "/card/delete",
    "/card/modifystock",
    "/card/testwhitelist/set",
    "/card/qrcode/create",
    "/card/code/decrypt",
    "/card/code/get",
    "/card/code/consume",
    "/card/code/unavailable",
    "/card/user/getcardlist",
    "/card/membercard/activate",
    "/card/membercard/activateuserform/set",
    "/card/membercard/userinfo/get",
    "/card/membercard/updateuser",
];

const CARD_TYPES: [(&str, &str); 11] = [
    ("GROUPON", "deal_detail"),
    ("CASH", "reduce_cost"),
    ("DISCOUNT", "discount"),
    ("GIFT", "gift"),
    ("GENERAL_COUPON", "default_detail"),
    ("MEMBER_CARD", "prerogative"),
    ("SCENIC_TICKET", ""),
    ("MOVIE_TICKET", ""),
    ("BOARDING_PASS", ""),
    ("MEETING_TICKET", ""),
    ("BUS_TICKET", ""),
];

const CODE_TYPES: [&str; 6] = [
    "CODE_TYPE_TEXT",
    "CODE_TYPE_BARCODE",
    "CODE_TYPE_QRCODE",
    "CODE_TYPE_ONLY_QRCODE",
    "CODE_TYPE_ONLY_BARCODE",
    "CODE_TYPE_NONE",
];

const REQUIRED_BASE_INFO: [&str; 7] =
    ["logo_url", "brand_name", "code_type", "title", "color", "notice", "description"];

/// Changing these sends an approved card back to review (the fake's reading of "修改部分字段
/// 后会重新提交审核").
const REVIEWED_FIELDS: [&str; 3] = ["title", "brand_name", "logo_url"];

const VERIFY_OK: &str = "CARD_STATUS_VERIFY_OK";
const DISPATCH: &str = "CARD_STATUS_DISPATCH";
const DELETED: &str = "CARD_STATUS_DELETE";
const NOT_VERIFY: &str = "CARD_STATUS_NOT_VERIFY";

/// A card as the fake platform holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeCard {
    /// `card_id`.
    pub card_id: String,
    /// `card_type` (`CASH`, `MEMBER_CARD`, …).
    pub card_type: String,
    /// The object under the type's lower-case key, as created and updated.
    pub definition: Value,
    /// `CARD_STATUS_NOT_VERIFY`, `CARD_STATUS_VERIFY_OK`, `CARD_STATUS_DELETE`, …
    pub status: String,
    /// Stock left.
    pub quantity: i64,
    /// Stock in all (created, plus increases, minus reductions).
    pub total_quantity: i64,
}

impl FakeCard {
    fn base(&self, field: &str) -> Option<&Value> {
        self.definition.get("base_info")?.get(field)
    }

    fn flag(&self, field: &str) -> bool {
        self.base(field).and_then(Value::as_bool).unwrap_or(false)
    }

    fn custom_code(&self) -> bool {
        self.flag("use_custom_code")
    }
}

/// One user's code of a card, as the fake platform holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCardCode {
    /// The card.
    pub card_id: String,
    /// The code.
    pub code: String,
    /// The holder.
    pub openid: String,
    /// `NORMAL`, `CONSUMED`, `UNAVAILABLE`, `DELETE`.
    pub status: String,
    /// The channel value it was taken through (a QR code's `outer_str`).
    pub outer_str: Option<String>,
    /// Valid from, Unix seconds.
    pub begin_time: i64,
    /// Valid until, Unix seconds.
    pub end_time: i64,
    /// The `reason` given when it was made unavailable.
    pub unavailable_reason: Option<String>,
}

/// A code a user just took, with its `encrypt_code` (as `wx.addCard` hands it to a page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardGrant {
    /// The card.
    pub card_id: String,
    /// The code.
    pub code: String,
    /// The code, encrypted for `card/code/decrypt`.
    pub encrypt_code: String,
}

#[derive(Clone, Debug)]
struct QrGrant {
    card_id: String,
    code: Option<String>,
    openid: Option<String>,
    unique: bool,
    outer_str: Option<String>,
    expires_at_ms: Option<i64>,
    used: bool,
}

/// The card side of the world.
#[derive(Default)]
pub(super) struct CardDesk {
    cards: Vec<FakeCard>,
    codes: Vec<FakeCardCode>,
    whitelist: (BTreeSet<String>, BTreeSet<String>),
    qrcodes: HashMap<String, QrGrant>,
    key: Option<[u8; 32]>,
    /// The card api_ticket and when it expires.
    api_ticket: Option<(String, i64)>,
    /// `(timestamp, nonce_str)` pairs of `cardExt`s already used.
    ext_used: BTreeSet<(String, String)>,
    /// Member cards' activation forms, by card.
    forms: HashMap<String, Value>,
    /// Member state, by card and code.
    members: HashMap<(String, String), FakeMember>,
}

impl CardDesk {
    fn card(&self, card_id: &str) -> Option<&FakeCard> {
        self.cards.iter().find(|c| c.card_id == card_id)
    }

    fn card_mut(&mut self, card_id: &str) -> Option<&mut FakeCard> {
        self.cards.iter_mut().find(|c| c.card_id == card_id)
    }

    fn cipher(&mut self, appid: &str) -> Cipher {
        let key = *self.key.get_or_insert_with(rand::random);
        Cipher::from_key(key, appid)
    }
}

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    if r.path == "/cgi-bin/ticket/getticket" && r.query.get("type").map(String::as_str) == Some("wx_card") {
        return Some(Answer::Json(api_ticket(w, r)));
    }
    let path = PATHS.iter().find(|p| **p == r.path)?;
    let answer = match guard(w, method, r) {
        Ok(body) => handle(w, path, &body).unwrap_or_else(fail),
        Err(answer) => answer,
    };
    Some(Answer::Json(answer))
}

/// `{errcode, errmsg}` with the errmsgs reported from the real platform where known.
fn fail(code: i64) -> Value {
    let msg = match code {
        40003 => "invalid openid",
        40053 => "invalid action info",
        40056 => "invalid serial code",
        40071 => "invalid card type",
        40072 => "invalid code type",
        40073 => "invalid card id",
        40075 => "invalid encrypt code",
        40078 => "invalid card status",
        40099 => "invalid code, this code has consumed.",
        40100 => "invalid time range",
        40122 => "invalid quantity",
        40127 => {
            "invalid user-card status! Hint: the card was given to user, but may be deleted or set unavailable !"
        }
        41011 => "missing required fields",
        45021 => "field length over limit",
        _ => return common_fail(code),
    };
    json!({ "errcode": code, "errmsg": format!("{msg} hint: [fake-{code}] rid: fake-{code}") })
}

fn handle(w: &mut World, path: &str, body: &Value) -> Result<Value, i64> {
    match path {
        "/card/create" => create(w, body),
        "/card/get" => get(w, body),
        "/card/batchget" => batchget(w, body),
        "/card/update" => update(w, body),
        "/card/delete" => {
            live_card(w, body, true)?.status = DELETED.into();
            Ok(ok())
        }
        "/card/modifystock" => modify_stock(w, body),
        "/card/testwhitelist/set" => {
            let list = |key: &str| -> Result<BTreeSet<String>, i64> {
                match body.get(key) {
                    None | Some(Value::Null) => Ok(BTreeSet::new()),
                    Some(Value::Array(a)) => {
                        a.iter().map(|v| v.as_str().map(str::to_owned).ok_or(47001)).collect()
                    }
                    Some(_) => Err(47001),
                }
            };
            w.cards.whitelist = (list("openid")?, list("username")?);
            Ok(ok())
        }
        "/card/qrcode/create" => qrcode(w, body),
        "/card/code/decrypt" => {
            let encrypted = body["encrypt_code"].as_str().filter(|s| !s.is_empty()).ok_or(41011)?;
            let code = decrypt(w, encrypted).ok_or(40075)?;
            Ok(json!({ "errcode": 0, "errmsg": "ok", "code": code }))
        }
        "/card/code/get" => {
            let check = match body.get("check_consume") {
                None | Some(Value::Null) => true,
                Some(v) => v.as_bool().ok_or(47001)?,
            };
            let i = find_code(w, body)?;
            let code = &w.cards.codes[i];
            if check {
                redeemable(code)?;
            }
            let mut answer = json!({
                "errcode": 0, "errmsg": "ok", "openid": code.openid,
                "card": { "card_id": code.card_id, "begin_time": code.begin_time, "end_time": code.end_time },
                "can_consume": code.status == "NORMAL", "user_card_status": code.status,
            });
            if let Some(outer) = &code.outer_str {
                answer["outer_str"] = json!(outer);
            }
            Ok(answer)
        }
        "/card/code/consume" => {
            let i = find_code(w, body)?;
            let code = &mut w.cards.codes[i];
            redeemable(code)?;
            code.status = "CONSUMED".into();
            Ok(
                json!({ "errcode": 0, "errmsg": "ok", "card": { "card_id": code.card_id }, "openid": code.openid }),
            )
        }
        "/card/code/unavailable" => {
            let i = find_code(w, body)?;
            let code = &mut w.cards.codes[i];
            redeemable(code)?;
            code.status = "UNAVAILABLE".into();
            code.unavailable_reason = body["reason"].as_str().map(str::to_owned);
            Ok(ok())
        }
        "/card/membercard/activate" => activate(w, body),
        "/card/membercard/activateuserform/set" => set_form(w, body),
        "/card/membercard/userinfo/get" => member_info(w, body),
        "/card/membercard/updateuser" => update_member(w, body),
        _ => user_cards(w, body),
    }
}

/// The card named by `card_id` (40073 when unknown; 40078 when deleted, unless `deleted_ok`).
fn live_card<'w>(w: &'w mut World, body: &Value, deleted_ok: bool) -> Result<&'w mut FakeCard, i64> {
    let id = body["card_id"].as_str().filter(|s| !s.is_empty()).ok_or(41011)?;
    let card = w.cards.card_mut(id).ok_or(40073)?;
    if !deleted_ok && card.status == DELETED {
        return Err(40078);
    }
    Ok(card)
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

fn check_lengths(base: &Value) -> Result<(), i64> {
    if chars(base.get("title")) > 9 || chars(base.get("brand_name")) > 12 {
        return Err(45021);
    }
    Ok(())
}

fn create(w: &mut World, body: &Value) -> Result<Value, i64> {
    let card = body.get("card").filter(|c| c.is_object()).ok_or(47001)?;
    let card_type = card["card_type"].as_str().ok_or(41011)?;
    let (_, own_field) = CARD_TYPES.iter().find(|(t, _)| *t == card_type).ok_or(40071)?;
    let definition = card.get(card_type.to_ascii_lowercase()).filter(|d| d.is_object()).ok_or(41011)?;
    let base = definition.get("base_info").filter(|b| b.is_object()).ok_or(41011)?;
    for field in REQUIRED_BASE_INFO {
        if base[field].as_str().is_none_or(str::is_empty) {
            return Err(41011);
        }
    }
    if !own_field.is_empty() && definition.get(*own_field).is_none_or(Value::is_null) {
        return Err(41011);
    }
    if !CODE_TYPES.contains(&base["code_type"].as_str().unwrap_or_default()) {
        return Err(40072);
    }
    check_lengths(base)?;
    let quantity = base["sku"]["quantity"].as_i64().ok_or(41011)?;
    if quantity < 0 {
        return Err(40122);
    }
    validity(&base["date_info"], 0)?;
    let card_id = format!("p{}", random_id(27));
    w.cards.cards.push(FakeCard {
        card_id: card_id.clone(),
        card_type: card_type.to_owned(),
        definition: definition.clone(),
        status: NOT_VERIFY.into(),
        quantity,
        total_quantity: quantity,
    });
    Ok(json!({ "errcode": 0, "errmsg": "ok", "card_id": card_id }))
}

/// A code's `(begin_time, end_time)` under `date_info` when taken at `now_s`.
fn validity(date_info: &Value, now_s: i64) -> Result<(i64, i64), i64> {
    const DAY: i64 = 86_400;
    match date_info["type"].as_str().ok_or(41011)? {
        "DATE_TYPE_FIX_TIME_RANGE" => {
            let begin = date_info["begin_timestamp"].as_i64().ok_or(41011)?;
            let end = date_info["end_timestamp"].as_i64().ok_or(41011)?;
            if end <= begin {
                return Err(40100);
            }
            Ok((begin, end))
        }
        "DATE_TYPE_FIX_TERM" => {
            let term = date_info["fixed_term"].as_i64().filter(|t| *t > 0).ok_or(41011)?;
            let begin = now_s + date_info["fixed_begin_term"].as_i64().unwrap_or(0).max(0) * DAY;
            Ok((begin, begin + term * DAY))
        }
        "DATE_TYPE_PERMANENT" => Ok((0, i64::from(i32::MAX))),
        _ => Err(47001),
    }
}

fn get(w: &mut World, body: &Value) -> Result<Value, i64> {
    let card = live_card(w, body, true)?;
    let mut definition = card.definition.clone();
    let base = &mut definition["base_info"];
    base["id"] = json!(card.card_id);
    base["status"] = json!(card.status);
    base["sku"] = json!({ "quantity": card.quantity, "total_quantity": card.total_quantity });
    let mut inner = Map::new();
    inner.insert("card_type".into(), json!(card.card_type));
    inner.insert(card.card_type.to_ascii_lowercase(), definition);
    Ok(json!({ "errcode": 0, "errmsg": "ok", "card": inner }))
}

fn batchget(w: &World, body: &Value) -> Result<Value, i64> {
    let (Some(offset), Some(count)) = (body["offset"].as_u64(), body["count"].as_u64()) else {
        return Err(47001);
    };
    if count == 0 || count > 50 {
        return Err(47001);
    }
    let statuses: Option<Vec<&str>> = match body.get("status_list") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.iter().map(|s| s.as_str().ok_or(47001)).collect::<Result<_, _>>()?),
        Some(_) => return Err(47001),
    };
    let matching: Vec<&str> = w
        .cards
        .cards
        .iter()
        .filter(|c| statuses.as_ref().is_none_or(|s| s.is_empty() || s.contains(&c.status.as_str())))
        .map(|c| c.card_id.as_str())
        .collect();
    let page: Vec<&str> = matching
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(count as usize)
        .copied()
        .collect();
    Ok(json!({ "errcode": 0, "errmsg": "ok", "card_id_list": page, "total_num": matching.len() }))
}

fn merge(into: &mut Value, changes: &Value) {
    match (into, changes) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn update(w: &mut World, body: &Value) -> Result<Value, i64> {
    let card = live_card(w, body, false)?;
    let key = card.card_type.to_ascii_lowercase();
    let mut keys = body.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| *k != "card_id");
    let (Some(only), None) = (keys.next(), keys.next()) else { return Err(40071) };
    if *only != key {
        return Err(40071);
    }
    let changes = body[&key].as_object().ok_or(47001)?;
    let base_changes = changes.get("base_info").and_then(Value::as_object);
    if let Some(b) = base_changes {
        check_lengths(&Value::Object(b.clone()))?;
    }
    let send_check = base_changes
        .is_some_and(|b| REVIEWED_FIELDS.iter().any(|f| b.get(*f).is_some_and(|v| Some(v) != card.base(f))));
    merge(&mut card.definition, &body[&key]);
    if send_check {
        card.status = NOT_VERIFY.into();
    }
    Ok(json!({ "errcode": 0, "errmsg": "ok", "send_check": send_check }))
}

fn modify_stock(w: &mut World, body: &Value) -> Result<Value, i64> {
    let amount = |key: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or(47001),
    };
    let (increase, reduce) = (amount("increase_stock_value")?, amount("reduce_stock_value")?);
    if increase.is_none() && reduce.is_none() {
        return Err(41011);
    }
    let card = live_card(w, body, false)?;
    let delta = increase.unwrap_or(0) - reduce.unwrap_or(0);
    if card.quantity + delta < 0 {
        return Err(40122);
    }
    card.quantity += delta;
    card.total_quantity += delta;
    Ok(ok())
}

fn qrcode(w: &mut World, body: &Value) -> Result<Value, i64> {
    if body["action_name"].as_str() != Some("QR_CARD") {
        return Err(40053);
    }
    let info = body["action_info"].get("card").filter(|c| c.is_object()).ok_or(40053)?;
    let expire = match body.get("expire_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|s| (60..=1800).contains(s)).ok_or(47001)?),
    };
    let text = |key: &str| info[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let now = w.now_ms;
    let card = live_card(w, info, false)?;
    if (card.custom_code() && text("code").is_none())
        || (card.flag("bind_openid") && text("openid").is_none())
    {
        return Err(40053);
    }
    if card.status == VERIFY_OK {
        card.status = DISPATCH.into();
    }
    let grant = QrGrant {
        card_id: card.card_id.clone(),
        code: text("code"),
        openid: text("openid"),
        unique: info["is_unique_code"].as_bool().unwrap_or(false),
        outer_str: text("outer_str"),
        expires_at_ms: expire.map(|s| now + s * 1000),
        used: false,
    };
    let short = random_id(22);
    let ticket = format!("gQ{}", random_id(40));
    w.cards.qrcodes.insert(ticket.clone(), grant);
    // The account QR-code store backs /cgi-bin/showqrcode, so the ticket gives an image.
    w.qrcodes.insert(ticket.clone(), body.clone());
    let encoded = percent_encoding::utf8_percent_encode(&ticket, percent_encoding::NON_ALPHANUMERIC);
    let mut answer = json!({
        "errcode": 0, "errmsg": "ok", "ticket": ticket,
        "url": format!("http://weixin.qq.com/q/{short}"),
        "show_qrcode_url": format!("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={encoded}"),
    });
    if let Some(s) = expire {
        answer["expire_seconds"] = json!(s);
    }
    Ok(answer)
}

fn decrypt(w: &mut World, encrypted: &str) -> Option<String> {
    let appid = w.cfg().appid.clone();
    let code = w.cards.cipher(&appid).decrypt(encrypted).ok()?;
    w.cards.codes.iter().any(|c| c.code == code).then_some(code)
}

/// The code a `card/code/*` body names.
fn find_code(w: &World, body: &Value) -> Result<usize, i64> {
    let code = body["code"].as_str().filter(|s| !s.is_empty()).ok_or(41011)?;
    let desk = &w.cards;
    let found = match body["card_id"].as_str().filter(|s| !s.is_empty()) {
        Some(card_id) => {
            desk.card(card_id).ok_or(40073)?;
            desk.codes.iter().position(|c| c.card_id == card_id && c.code == code)
        }
        None => desk
            .codes
            .iter()
            .position(|c| c.code == code && desk.card(&c.card_id).is_some_and(|card| !card.custom_code())),
    };
    found.ok_or(40056)
}

/// 0 when the code can be redeemed, else why not.
fn redeemable(code: &FakeCardCode) -> Result<(), i64> {
    match code.status.as_str() {
        "NORMAL" => Ok(()),
        "CONSUMED" => Err(40099),
        _ => Err(40127),
    }
}

fn user_cards(w: &World, body: &Value) -> Result<Value, i64> {
    let openid = body["openid"].as_str().filter(|s| !s.is_empty()).ok_or(40003)?;
    let card_id = body["card_id"].as_str().filter(|s| !s.is_empty());
    if let Some(id) = card_id {
        w.cards.card(id).ok_or(40073)?;
    }
    let list: Vec<Value> = w
        .cards
        .codes
        .iter()
        .filter(|c| c.openid == openid && c.status == "NORMAL" && card_id.is_none_or(|id| c.card_id == id))
        .map(|c| json!({ "code": c.code, "card_id": c.card_id }))
        .collect();
    Ok(json!({ "errcode": 0, "errmsg": "ok", "card_list": list, "has_share_card": false }))
}

/// A member card's member state, as the fake platform holds it (per card and code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeMember {
    /// Whether the card is activated (`has_active`).
    pub activated: bool,
    /// The membership number set on activation.
    pub membership_number: String,
    /// Bonus points.
    pub bonus: i64,
    /// Balance, in fen.
    pub balance: i64,
    /// The values of the card's `custom_field1` to `3`.
    pub custom_field_values: [Option<String>; 3],
    /// This member's background picture.
    pub background_pic_url: Option<String>,
    /// Valid from / until, when activation set them.
    pub activate_time: Option<(i64, i64)>,
    /// The filled-in activation form: `{"common_field_list": [...], "custom_field_list": [...]}`.
    pub user_info: Value,
    /// The template messages WeChat would have sent the member about changes:
    /// `{"field": "bonus"|"balance"|"custom_field1"…, "value": …, "record": …}`.
    pub notices: Vec<Value>,
}

/// A member card named by `card_id` (40073 unknown, 40071 not a member card).
fn member_card<'w>(w: &'w World, card_id: &str) -> Result<&'w FakeCard, i64> {
    let card = w.cards.card(card_id).ok_or(40073)?;
    if card.card_type != "MEMBER_CARD" {
        return Err(40071);
    }
    Ok(card)
}

/// The member-card code a `card/membercard/*` body names, and its card: `code` is required,
/// and `card_id` too when `card_id_required`.
fn member_code(w: &World, body: &Value, card_id_required: bool) -> Result<(String, String), i64> {
    if card_id_required && body["card_id"].as_str().is_none_or(str::is_empty) {
        return Err(41011);
    }
    let i = find_code(w, body)?;
    let code = &w.cards.codes[i];
    member_card(w, &code.card_id)?;
    Ok((code.card_id.clone(), code.code.clone()))
}

fn custom_values(body: &Value, prefix: &str) -> Result<[Option<String>; 3], i64> {
    let mut out: [Option<String>; 3] = Default::default();
    for (i, slot) in out.iter_mut().enumerate() {
        match &body[format!("{prefix}{}", i + 1)] {
            Value::Null => {}
            Value::String(s) if s.len() <= 12 => *slot = Some(s.clone()),
            Value::String(_) => return Err(45021),
            // A number is accepted and shown as written, as developers report WeChat does.
            Value::Number(n) => *slot = Some(n.to_string()),
            _ => return Err(47001),
        }
    }
    Ok(out)
}

fn int(body: &Value, key: &str) -> Result<Option<i64>, i64> {
    match &body[key] {
        Value::Null => Ok(None),
        v => v.as_i64().map(Some).ok_or(47001),
    }
}

fn activate(w: &mut World, body: &Value) -> Result<Value, i64> {
    let number = body["membership_number"].as_str().filter(|s| !s.is_empty()).ok_or(41011)?.to_owned();
    let (card_id, code) = member_code(w, body, false)?;
    let i = find_code(w, body)?;
    redeemable(&w.cards.codes[i])?;
    let time = match (int(body, "activate_begin_time")?, int(body, "activate_end_time")?) {
        (Some(b), Some(e)) if e <= b => return Err(40100),
        (Some(b), Some(e)) => Some((b, e)),
        (None, None) => None,
        _ => return Err(41011),
    };
    let values = custom_values(body, "init_custom_field_value")?;
    let (bonus, balance) = (int(body, "init_bonus")?, int(body, "init_balance")?);
    let member = w.cards.members.entry((card_id, code)).or_default();
    if !member.activated {
        member.bonus = bonus.unwrap_or(0);
        member.balance = balance.unwrap_or(0);
        member.custom_field_values = values;
        member.activated = true;
    }
    member.membership_number = number;
    if let Some(url) = body["background_pic_url"].as_str() {
        member.background_pic_url = Some(url.to_owned());
    }
    if time.is_some() {
        member.activate_time = time;
    }
    Ok(ok())
}

fn set_form(w: &mut World, body: &Value) -> Result<Value, i64> {
    let card_id = body["card_id"].as_str().filter(|s| !s.is_empty()).ok_or(41011)?;
    member_card(w, card_id)?;
    let forms: Vec<&Value> =
        ["required_form", "optional_form"].iter().map(|k| &body[*k]).filter(|f| !f.is_null()).collect();
    if forms.is_empty() {
        return Err(41011);
    }
    for form in forms {
        let list = |key: &str| match &form[key] {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => Ok(a.clone()),
            _ => Err(47001),
        };
        if !form.is_object() || list("custom_field_list")?.len() > 5 || list("rich_field_list")?.len() > 5 {
            return Err(47001);
        }
        let known = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("USER_FORM_INFO_FLAG_"));
        if !list("common_field_id_list")?.iter().all(known) {
            return Err(47001);
        }
    }
    w.cards.forms.insert(card_id.to_owned(), body.clone());
    Ok(ok())
}

fn member_info(w: &World, body: &Value) -> Result<Value, i64> {
    let (card_id, code) = member_code(w, body, true)?;
    let held = w.cards.codes.iter().find(|c| c.card_id == card_id && c.code == code).ok_or(40056)?;
    let member = w.cards.members.get(&(card_id, code)).cloned().unwrap_or_default();
    let nickname = w.users.get(&held.openid).map(|u| u.nickname.clone()).unwrap_or_default();
    let user_info = if member.user_info.is_null() {
        json!({ "common_field_list": [], "custom_field_list": [] })
    } else {
        member.user_info.clone()
    };
    Ok(json!({
        "errcode": 0, "errmsg": "ok", "openid": held.openid, "nickname": nickname,
        "membership_number": member.membership_number, "bonus": member.bonus, "balance": member.balance,
        "sex": "UNKNOWN", "user_info": user_info, "user_card_status": held.status,
        "has_active": member.activated,
    }))
}

fn update_member(w: &mut World, body: &Value) -> Result<Value, i64> {
    let (card_id, code) = member_code(w, body, true)?;
    let i = find_code(w, body)?;
    redeemable(&w.cards.codes[i])?;
    let openid = w.cards.codes[i].openid.clone();
    let record = |key: &str| match &body[key] {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= 14 => Ok(Some(s.clone())),
        Value::String(_) => Err(45021),
        _ => Err(47001),
    };
    let (record_bonus, record_balance) = (record("record_bonus")?, record("record_balance")?);
    let values = custom_values(body, "custom_field_value")?;
    let figures =
        [(int(body, "bonus")?, int(body, "add_bonus")?), (int(body, "balance")?, int(body, "add_balance")?)];
    let flag = |key: &str, default: bool| body["notify_optional"][key].as_bool().unwrap_or(default);
    let notify = [
        flag("is_notify_bonus", true),
        flag("is_notify_balance", true),
        flag("is_notify_custom_field1", false),
        flag("is_notify_custom_field2", false),
        flag("is_notify_custom_field3", false),
    ];
    let member = w.cards.members.get_mut(&(card_id, code)).filter(|m| m.activated).ok_or(40127)?;
    let mut results = [member.bonus, member.balance];
    for (result, (set, add)) in results.iter_mut().zip(figures) {
        // The full value wins over the change when both are sent.
        let next = set.unwrap_or(*result + add.unwrap_or(0));
        if next < 0 {
            return Err(47001);
        }
        *result = next;
    }
    for (n, (field, record)) in [("bonus", record_bonus), ("balance", record_balance)].into_iter().enumerate()
    {
        let was = if n == 0 { member.bonus } else { member.balance };
        if results[n] != was && notify[n] {
            member.notices.push(json!({ "field": field, "value": results[n], "record": record }));
        }
    }
    [member.bonus, member.balance] = results;
    for (n, value) in values.into_iter().enumerate() {
        if let Some(v) = value {
            if notify[2 + n] && member.custom_field_values[n].as_ref() != Some(&v) {
                member.notices.push(json!({ "field": format!("custom_field{}", n + 1), "value": v }));
            }
            member.custom_field_values[n] = Some(v);
        }
    }
    if let Some(url) = body["background_pic_url"].as_str() {
        member.background_pic_url = Some(url.to_owned());
    }
    Ok(json!({
        "errcode": 0, "errmsg": "ok", "result_bonus": results[0], "result_balance": results[1], "openid": openid,
    }))
}

/// `GET /cgi-bin/ticket/getticket?type=wx_card`: the card api_ticket, the same until it
/// expires (the token lifetime).
fn api_ticket(w: &mut World, r: &Recorded) -> Value {
    let code = w.check_token(r.access_token());
    if code != 0 {
        return super::err(code);
    }
    if let Some(v) = w.scripted.get(&r.path) {
        return v.clone();
    }
    let now = w.now_ms;
    let (ticket, expires) = match w.cards.api_ticket.clone() {
        Some((t, exp)) if exp > now => (t, exp),
        _ => {
            let fresh = (format!("wxcard_{}", random_id(40)), now + w.lifetime_ms());
            w.cards.api_ticket = Some(fresh.clone());
            fresh
        }
    };
    json!({ "errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": (expires - now) / 1000 })
}

/// The current card api_ticket, if one was issued and has not expired.
fn current_ticket(w: &World) -> Option<String> {
    w.cards.api_ticket.clone().filter(|(_, exp)| *exp > w.now_ms).map(|(t, _)| t)
}

fn sha1_sorted(values: &[&str]) -> String {
    wemp_proto::signature::sha1_sorted(&mut values.to_vec())
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len).map(|_| ALPHABET[usize::from(rand::random::<u8>() % 64)] as char).collect()
}

/// A user takes a card: the checks and bookkeeping of every way of getting one.
fn take(
    w: &mut World,
    card_id: &str,
    openid: &str,
    code: Option<&str>,
    outer_str: Option<String>,
) -> Result<CardGrant, i64> {
    let now_s = w.now_ms / 1000;
    let whitelisted = w.cards.whitelist.0.contains(openid);
    let desk = &mut w.cards;
    let card = desk.card(card_id).ok_or(40073)?;
    let approved = card.status == VERIFY_OK || card.status == DISPATCH;
    if card.status == DELETED || !(approved || whitelisted) {
        return Err(40078);
    }
    let code = match (card.custom_code(), code) {
        (true, Some(c)) if !c.is_empty() => {
            if desk.codes.iter().any(|x| x.card_id == card_id && x.code == c) {
                return Err(40116);
            }
            c.to_owned()
        }
        (true, _) => return Err(41011),
        (false, Some(_)) => return Err(40116),
        (false, None) => loop {
            let c = (100_000_000_000 + rand::random::<u64>() % 900_000_000_000).to_string();
            if !desk.codes.iter().any(|x| x.code == c) {
                break c;
            }
        },
    };
    if card.quantity <= 0 {
        return Err(45031);
    }
    let limit = card.base("get_limit").and_then(Value::as_u64).unwrap_or(0);
    let held = desk.codes.iter().filter(|c| c.card_id == card_id && c.openid == openid).count() as u64;
    if limit > 0 && held >= limit {
        return Err(45033);
    }
    let (begin_time, end_time) = validity(&card.base("date_info").cloned().unwrap_or_default(), now_s)?;
    desk.card_mut(card_id).expect("found above").quantity -= 1;
    desk.codes.push(FakeCardCode {
        card_id: card_id.to_owned(),
        code: code.clone(),
        openid: openid.to_owned(),
        status: "NORMAL".into(),
        outer_str,
        begin_time,
        end_time,
        unavailable_reason: None,
    });
    let encrypt_code = encrypt(w, &code);
    Ok(CardGrant { card_id: card_id.to_owned(), code, encrypt_code })
}

fn encrypt(w: &mut World, code: &str) -> String {
    let appid = w.cfg().appid.clone();
    w.cards.cipher(&appid).encrypt(code, rand::random()).expect("a card code fits the envelope")
}

impl FakePlatform {
    /// Passes (`true`) or fails the review of a card: its status becomes
    /// `CARD_STATUS_VERIFY_OK` or `CARD_STATUS_VERIFY_FAIL`. Returns whether the card exists
    /// and is not deleted.
    pub fn review_card(&self, card_id: &str, pass: bool) -> bool {
        let mut w = self.world();
        match w.cards.card_mut(card_id).filter(|c| c.status != DELETED) {
            Some(card) => {
                card.status = if pass { VERIFY_OK } else { "CARD_STATUS_VERIFY_FAIL" }.into();
                true
            }
            None => false,
        }
    }

    /// User `openid` takes a card with a system-assigned code (as by `wx.addCard` or from a
    /// message). `Err` is the errcode the platform would refuse with: 40073 no such card,
    /// 40078 deleted, or not approved and the user not on the test whitelist, 41011 a
    /// custom-code card (use [`give_card_code`](Self::give_card_code)), 45031 out of stock,
    /// 45033 the card's `get_limit` reached.
    pub fn give_card(&self, card_id: &str, openid: &str) -> Result<CardGrant, i64> {
        take(&mut self.world(), card_id, openid, None, None)
    }

    /// User `openid` takes code `code` of a `use_custom_code` card. Errors as
    /// [`give_card`](Self::give_card), plus 40116 when the code was given already or the card
    /// does not use custom codes.
    pub fn give_card_code(&self, card_id: &str, openid: &str, code: &str) -> Result<CardGrant, i64> {
        take(&mut self.world(), card_id, openid, Some(code), None)
    }

    /// User `openid` scans a card QR code: takes its card with the QR code's code and
    /// `outer_str`. Errors as [`give_card`](Self::give_card), plus 40053 an unknown ticket or
    /// one bound to another user, 40079 an expired one, 40099 a single-use one (with a fixed
    /// code or `is_unique_code`) already used.
    pub fn scan_card_qrcode(&self, ticket: &str, openid: &str) -> Result<CardGrant, i64> {
        let mut w = self.world();
        let grant = w.cards.qrcodes.get(ticket).cloned().ok_or(40053)?;
        if grant.openid.as_deref().is_some_and(|o| o != openid) {
            return Err(40053);
        }
        if grant.expires_at_ms.is_some_and(|t| w.now_ms >= t) {
            return Err(40079);
        }
        let single_use = grant.unique || grant.code.is_some();
        if single_use && grant.used {
            return Err(40099);
        }
        let taken = take(&mut w, &grant.card_id, openid, grant.code.as_deref(), grant.outer_str.clone())?;
        if let Some(g) = w.cards.qrcodes.get_mut(ticket) {
            g.used = true;
        }
        Ok(taken)
    }

    /// `code` encrypted as the platform hands codes to pages (`encrypt_code`; see the module
    /// notes). Every call gives a different string; each decrypts to `code`.
    pub fn encrypt_card_code(&self, code: &str) -> String {
        encrypt(&mut self.world(), code)
    }

    /// The user deletes a code from their wallet (its status becomes `DELETE`); returns
    /// whether there was such a code in the `NORMAL` state.
    pub fn user_deletes_card(&self, card_id: &str, code: &str) -> bool {
        let mut w = self.world();
        let found = w.cards.codes.iter_mut().find(|c| c.card_id == card_id && c.code == code);
        match found.filter(|c| c.status == "NORMAL") {
            Some(c) => {
                c.status = "DELETE".into();
                true
            }
            None => false,
        }
    }

    /// A card as the platform holds it (deleted cards included).
    pub fn card(&self, card_id: &str) -> Option<FakeCard> {
        self.world().cards.card(card_id).cloned()
    }

    /// A code of a card as the platform holds it.
    pub fn card_code(&self, card_id: &str, code: &str) -> Option<FakeCardCode> {
        self.world().cards.codes.iter().find(|c| c.card_id == card_id && c.code == code).cloned()
    }

    /// The card test whitelist: OpenIDs and WeChat IDs.
    pub fn card_test_whitelist(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        self.world().cards.whitelist.clone()
    }

    /// A member card's member state (`None` before it was activated or updated).
    pub fn member(&self, card_id: &str, code: &str) -> Option<FakeMember> {
        self.world().cards.members.get(&(card_id.to_owned(), code.to_owned())).cloned()
    }

    /// The activation form set for a member card (`card/membercard/activateuserform/set`'s
    /// body).
    pub fn activation_form(&self, card_id: &str) -> Option<Value> {
        self.world().cards.forms.get(card_id).cloned()
    }

    /// The holder of `code` fills in the card's activation form inside WeChat (一键激活):
    /// `common` answers formatted fields (`USER_FORM_INFO_FLAG_…`), `custom` the card's own
    /// questions. The card is activated with its code as the membership number (unless it is
    /// already activated). `Err`: 40073 no form was set for the card, 40056 no such code,
    /// 41011 a required field is unanswered, 47001 a field the form does not ask.
    pub fn fill_member_form(
        &self,
        card_id: &str,
        code: &str,
        common: &[(&str, &str)],
        custom: &[(&str, &str)],
    ) -> Result<(), i64> {
        let mut w = self.world();
        let form = w.cards.forms.get(card_id).cloned().ok_or(40073)?;
        if !w.cards.codes.iter().any(|c| c.card_id == card_id && c.code == code) {
            return Err(40056);
        }
        let asked = |part: &str, list: &str| -> Vec<String> {
            form[part][list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let rich = |part: &str| -> Vec<String> {
            form[part]["rich_field_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["name"].as_str())
                .map(str::to_owned)
                .collect()
        };
        let (mut all_common, mut all_custom) = (Vec::new(), Vec::new());
        for part in ["required_form", "optional_form"] {
            all_common.extend(asked(part, "common_field_id_list"));
            all_custom.extend(asked(part, "custom_field_list"));
            all_custom.extend(rich(part));
        }
        let answered =
            |given: &[(&str, &str)], name: &str| given.iter().any(|(n, v)| *n == name && !v.is_empty());
        let required_common = asked("required_form", "common_field_id_list");
        let mut required_custom = asked("required_form", "custom_field_list");
        required_custom.extend(rich("required_form"));
        if !required_common.iter().all(|f| answered(common, f))
            || !required_custom.iter().all(|f| answered(custom, f))
        {
            return Err(41011);
        }
        if !common.iter().all(|(n, _)| all_common.iter().any(|f| f == n))
            || !custom.iter().all(|(n, _)| all_custom.iter().any(|f| f == n))
        {
            return Err(47001);
        }
        let list = |given: &[(&str, &str)]| -> Vec<Value> {
            given.iter().map(|(n, v)| json!({ "name": n, "value": v, "value_list": [] })).collect()
        };
        let member = w.cards.members.entry((card_id.to_owned(), code.to_owned())).or_default();
        member.user_info = json!({ "common_field_list": list(common), "custom_field_list": list(custom) });
        if !member.activated {
            member.activated = true;
            member.membership_number = code.to_owned();
        }
        Ok(())
    }

    /// User `openid` takes a card through `wx.addCard` with `card_ext` (the JSON string a
    /// page passes as `cardExt`), checked as WeChat checks it: the `signature` must be the
    /// SHA-1 of the sorted values of the current card api_ticket, `timestamp`, `card_id`,
    /// `code`, `openid` and `nonce_str`; a `timestamp` and `nonce_str` pair works once; an
    /// `openid` in the ext must be the taker's. Then as [`give_card`](Self::give_card) (or
    /// [`give_card_code`](Self::give_card_code) with the ext's `code`). `Err` is the
    /// JS-SDK's `errMsg` (`addCard:fail …`).
    pub fn add_card(&self, card_id: &str, card_ext: &str, openid: &str) -> Result<CardGrant, String> {
        let fail = |why: &str| format!("addCard:fail {why}");
        let mut w = self.world();
        let ext: Value = serde_json::from_str(card_ext).map_err(|_| fail("invalid cardExt"))?;
        let text = |key: &str| match &ext[key] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let (timestamp, nonce, code, bound) =
            (text("timestamp"), text("nonce_str"), text("code"), text("openid"));
        let ticket = current_ticket(&w).ok_or_else(|| fail("signature error"))?;
        let expected = sha1_sorted(&[&ticket, &timestamp, card_id, &code, &bound, &nonce]);
        if timestamp.is_empty() || ext["signature"].as_str() != Some(expected.as_str()) {
            return Err(fail("signature error"));
        }
        if !bound.is_empty() && bound != openid {
            return Err(fail("openid not match"));
        }
        if !w.cards.ext_used.insert((timestamp, nonce)) {
            return Err(fail("duplicate timestamp and nonce_str"));
        }
        let outer = ext["outer_str"].as_str().map(str::to_owned);
        let code = (!code.is_empty()).then_some(code);
        take(&mut w, card_id, openid, code.as_deref(), outer).map_err(|c| fail(&format!("errcode {c}")))
    }

    /// User `openid` opens `wx.chooseCard` with `args` (`shopId`, `cardType`, `cardId`,
    /// `timestamp`, `nonceStr`, `signType`, `cardSign`), checked as WeChat checks it:
    /// `signType` `SHA1` and `cardSign` the SHA-1 of the sorted values of the current card
    /// api_ticket, the AppID, `shopId`, `timestamp`, `nonceStr`, `cardId` and `cardType`.
    /// Returns the user's codes in the `NORMAL` state of the named card or type (all when
    /// empty) as `(card_id, encrypt_code)`, what the page receives. `Err` is the JS-SDK's
    /// `errMsg` (`chooseCard:fail …`).
    pub fn choose_card(&self, args: &Value, openid: &str) -> Result<Vec<(String, String)>, String> {
        let fail = |why: &str| format!("chooseCard:fail {why}");
        let mut w = self.world();
        let text = |key: &str| match &args[key] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let ticket = current_ticket(&w).ok_or_else(|| fail("signature error"))?;
        let appid = w.cfg().appid.clone();
        let (shop, kind, card_id) = (text("shopId"), text("cardType"), text("cardId"));
        let expected =
            sha1_sorted(&[&ticket, &appid, &shop, &text("timestamp"), &text("nonceStr"), &card_id, &kind]);
        if text("signType") != "SHA1" || text("cardSign") != expected {
            return Err(fail("signature error"));
        }
        let chosen: Vec<(String, String)> = w
            .cards
            .codes
            .iter()
            .filter(|c| c.openid == openid && c.status == "NORMAL")
            .filter(|c| card_id.is_empty() || c.card_id == card_id)
            .filter(|c| kind.is_empty() || w.cards.card(&c.card_id).is_some_and(|k| k.card_type == kind))
            .map(|c| (c.card_id.clone(), c.code.clone()))
            .collect();
        Ok(chosen.into_iter().map(|(card, code)| (card, encrypt(&mut w, &code))).collect())
    }
}
