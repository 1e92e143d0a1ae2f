//! Subscription notifications (订阅通知) and one-time subscription messages (一次性订阅消息):
//! sending, the account's templates, and the public template library they are chosen
//! from (categories, titles, keywords).
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Subscription_Messages/api.html>

use std::collections::BTreeMap;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::templates::{MiniProgram, TemplateValue};
use crate::client::Client;
use crate::error::{Error, Result};

/// A subscription notification (`bizsend`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeMessage {
    /// The recipient's OpenID.
    pub touser: String,
    /// The template id.
    pub template_id: String,
    /// Where a tap leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// A mini-program a tap opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    /// Fields by keyword: `{"thing1": {"value": "…"}}`.
    pub data: BTreeMap<String, TemplateValue>,
}

impl SubscribeMessage {
    /// A notification with no fields yet.
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            page: None,
            miniprogram: None,
            data: BTreeMap::new(),
        }
    }

    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: None });
        self
    }
}

/// A subscription-notification template of the account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscribeTemplate {
    /// The template id.
    #[serde(rename = "priTmplId")]
    pub pri_tmpl_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Content.
    #[serde(default)]
    pub content: String,
    /// Example.
    #[serde(default)]
    pub example: String,
    /// 2 one-time, 3 long-term.
    #[serde(rename = "type", default)]
    pub kind: i64,
}

/// A category of the account, for [`SubscribeApi::pub_titles`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Category {
    /// The category id.
    pub id: i64,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A template title of the public library.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PubTitle {
    /// The title id (`tid`), for [`SubscribeApi::pub_keywords`] and [`SubscribeApi::add_template`].
    pub tid: i64,
    /// The title.
    #[serde(default)]
    pub title: String,
    /// 2 one-time, 3 long-term.
    #[serde(rename = "type", default)]
    pub kind: i64,
    /// The category (a string or a number in WeChat's answers).
    #[serde(rename = "categoryId", default, deserialize_with = "crate::serde_util::string_or_number")]
    pub category_id: Option<String>,
}

/// A page of public template titles.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PubTitles {
    /// Titles in all, across pages.
    #[serde(default)]
    pub count: u64,
    /// This page.
    #[serde(default)]
    pub data: Vec<PubTitle>,
}

/// A keyword of a public template title.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PubKeyword {
    /// The keyword id, for [`SubscribeApi::add_template`].
    pub kid: i64,
    /// The keyword.
    #[serde(default)]
    pub name: String,
    /// An example value.
    #[serde(default)]
    pub example: String,
    /// The value's type (`thing`, `number`, `time`, …), the prefix of its data key.
    #[serde(default)]
    pub rule: String,
}

/// A one-time subscription message (`/cgi-bin/message/template/subscribe`), sent once per
/// consent a user gave on the page of [`SubscribeApi::authorize_url`].
///
/// ```
/// use wemp_client::api::subscribe::OnceMessage;
/// let msg = OnceMessage::new("o1", "TPL", 1000, "Order shipped", "Your parcel left the depot")
///     .url("https://example.com/track");
/// let body = serde_json::to_value(&msg).unwrap();
/// assert_eq!(body["scene"], "1000");
/// assert_eq!(body["data"]["content"]["value"], "Your parcel left the depot");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnceMessage {
    /// The recipient's OpenID (the one the consent redirect carried).
    pub touser: String,
    /// The template id the user consented to.
    pub template_id: String,
    /// Where a tap leads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A mini program a tap opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    /// The scene value of the consent (0–10,000), sent as a string.
    #[serde(serialize_with = "scene_as_string")]
    pub scene: u32,
    /// The title (at most 15 characters).
    pub title: String,
    /// `{"content": {"value": …, "color": …}}`: the body (at most 200 characters).
    pub data: BTreeMap<String, TemplateValue>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with passes a reference
fn scene_as_string<S: serde::Serializer>(scene: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&scene.to_string())
}

impl OnceMessage {
    /// A message for `touser` under the consent to `template_id` in `scene`.
    pub fn new(
        touser: impl Into<String>,
        template_id: impl Into<String>,
        scene: u32,
        title: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        let body = TemplateValue { value: content.into(), color: None };
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            scene,
            title: title.into(),
            data: BTreeMap::from([("content".to_owned(), body)]),
        }
    }

    /// Sets the URL a tap opens.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the mini program a tap opens.
    pub fn miniprogram(mut self, appid: impl Into<String>, pagepath: impl Into<String>) -> Self {
        self.miniprogram = Some(MiniProgram { appid: appid.into(), pagepath: pagepath.into() });
        self
    }

    /// Sets the color of the body (`#RRGGBB`).
    pub fn color(mut self, color: impl Into<String>) -> Self {
        if let Some(body) = self.data.get_mut("content") {
            body.color = Some(color.into());
        }
        self
    }

    /// Whether the documented limits hold: scene 0–10,000, a title of 1–15 characters, a
    /// body of 1–200 characters.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the limit.
    pub fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(format!("one-time subscription message: {m}")));
        check_scene(self.scene)?;
        let title = self.title.chars().count();
        if !(1..=MAX_TITLE_CHARS).contains(&title) {
            return invalid(format!("the title has 1 to 15 characters, not {title}"));
        }
        let content = self.data.get("content").map_or(0, |v| v.value.chars().count());
        if !(1..=MAX_CONTENT_CHARS).contains(&content) {
            return invalid(format!("the content has 1 to 200 characters, not {content}"));
        }
        Ok(())
    }
}

/// The highest scene value of a one-time subscription.
pub const MAX_SCENE: u32 = 10_000;
/// The most bytes of the `reserved` value a consent carries back.
pub const MAX_RESERVED_BYTES: usize = 128;
/// The most characters of a one-time message's title.
pub const MAX_TITLE_CHARS: usize = 15;
/// The most characters of a one-time message's body.
pub const MAX_CONTENT_CHARS: usize = 200;
/// The most keywords of a template chosen from the library (the fewest is 2).
pub const MAX_KEYWORDS: usize = 5;
/// The most characters of a template's scene description.
pub const MAX_SCENE_DESC_CHARS: usize = 15;
/// The most titles one [`SubscribeApi::pub_titles`] page holds.
pub const MAX_TITLES_PAGE: u32 = 30;

fn check_scene(scene: u32) -> Result<()> {
    if scene > MAX_SCENE {
        return Err(Error::Invalid(format!("one-time subscription: the scene is 0 to 10000, not {scene}")));
    }
    Ok(())
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const SEND: &str = "/cgi-bin/message/subscribe/bizsend";
    pub(super) const TEMPLATES: &str = "/wxaapi/newtmpl/gettemplate";
    pub(super) const CATEGORIES: &str = "/wxaapi/newtmpl/getcategory";
    pub(super) const PUB_TITLES: &str = "/wxaapi/newtmpl/getpubtemplatetitles";
    pub(super) const PUB_KEYWORDS: &str = "/wxaapi/newtmpl/getpubtemplatekeywords";
    pub(super) const ADD_TEMPLATE: &str = "/wxaapi/newtmpl/addtemplate";
    pub(super) const DELETE_TEMPLATE: &str = "/wxaapi/newtmpl/deltemplate";
    pub(super) const SEND_ONCE: &str = "/cgi-bin/message/template/subscribe";
    /// On the `mp.weixin.qq.com` host.
    pub(super) const CONSENT_PAGE: &str = "/mp/subscribemsg";
}

impl Client {
    /// Subscription notifications and one-time subscription messages: [`SubscribeApi`].
    pub fn subscribe(&self) -> SubscribeApi<'_> {
        SubscribeApi(self)
    }
}

/// Subscription notifications (`/cgi-bin/message/subscribe/bizsend`, `/wxaapi/newtmpl/*`)
/// and one-time subscription messages, from [`Client::subscribe`].
#[derive(Clone, Copy, Debug)]
pub struct SubscribeApi<'c>(&'c Client);

impl SubscribeApi<'_> {
    /// Sends a subscription notification (`POST /cgi-bin/message/subscribe/bizsend`).
    ///
    /// # Errors
    /// As [`Client::get`] (43101 the user has not subscribed, 47003 a field breaks its
    /// template's rules).
    pub async fn send(self, msg: &SubscribeMessage) -> Result<()> {
        self.0.post_ok(path::SEND, msg).await
    }

    /// The account's subscription-notification templates.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn templates(self) -> Result<Vec<SubscribeTemplate>> {
        #[derive(Deserialize)]
        struct L {
            data: Vec<SubscribeTemplate>,
        }
        Ok(self.0.get_as::<L>(path::TEMPLATES, &[]).await?.data)
    }

    /// The account's categories, whose public templates it may choose from.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn categories(self) -> Result<Vec<Category>> {
        #[derive(Deserialize)]
        struct L {
            #[serde(default)]
            data: Vec<Category>,
        }
        Ok(self.0.get_as::<L>(path::CATEGORIES, &[]).await?.data)
    }

    /// A page of the public template titles of `category_ids`: `limit` (1–30) of them
    /// from the 0-based `start`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no category or a `limit` outside 1–30, before sending;
    /// otherwise as [`Client::get`] (200016–200019 for bad paging or categories).
    pub async fn pub_titles(self, category_ids: &[i64], start: u32, limit: u32) -> Result<PubTitles> {
        if category_ids.is_empty() {
            return Err(Error::Invalid("subscription templates: name at least one category".into()));
        }
        if !(1..=MAX_TITLES_PAGE).contains(&limit) {
            return Err(Error::Invalid(format!("subscription templates: limit is 1 to 30, not {limit}")));
        }
        let ids = category_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let (start, limit) = (start.to_string(), limit.to_string());
        self.0.get_as(path::PUB_TITLES, &[("ids", &ids), ("start", &start), ("limit", &limit)]).await
    }

    /// The keywords of public template title `tid`.
    ///
    /// # Errors
    /// As [`Client::get`] (200014 unknown `tid`).
    pub async fn pub_keywords(self, tid: i64) -> Result<Vec<PubKeyword>> {
        #[derive(Deserialize)]
        struct L {
            #[serde(default)]
            data: Vec<PubKeyword>,
        }
        Ok(self.0.get_as::<L>(path::PUB_KEYWORDS, &[("tid", &tid.to_string())]).await?.data)
    }

    /// Adds public template `tid` with 2–5 of its keywords (`kid`s, in the order shown) to
    /// the account; `scene_desc` (1–15 characters) says what it is for. Returns the
    /// template id for [`SubscribeMessage`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for fewer than 2 or more than 5 keywords, a repeated keyword, or
    /// a scene description that is empty or over 15 characters, before sending; otherwise
    /// as [`Client::get`] (200012 the account has its 50 templates, 200014 unknown `tid`,
    /// 200020 keywords not of that title).
    pub async fn add_template(self, tid: i64, kids: &[i64], scene_desc: &str) -> Result<String> {
        let invalid = |m: String| Err(Error::Invalid(format!("subscription template: {m}")));
        if !(2..=MAX_KEYWORDS).contains(&kids.len()) {
            return invalid(format!("choose 2 to 5 keywords, not {}", kids.len()));
        }
        if kids.iter().enumerate().any(|(i, k)| kids[..i].contains(k)) {
            return invalid(format!("the keywords {kids:?} repeat one"));
        }
        let desc = scene_desc.chars().count();
        if !(1..=MAX_SCENE_DESC_CHARS).contains(&desc) {
            return invalid(format!("the scene description has 1 to 15 characters, not {desc}"));
        }
        #[derive(Deserialize)]
        struct T {
            #[serde(rename = "priTmplId")]
            pri_tmpl_id: String,
        }
        let body = json!({ "tid": tid.to_string(), "kidList": kids, "sceneDesc": scene_desc });
        Ok(self.0.post_as::<T, _>(path::ADD_TEMPLATE, &[], &body).await?.pri_tmpl_id)
    }

    /// Deletes a template of the account.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_template(self, pri_tmpl_id: &str) -> Result<()> {
        self.0.post_ok(path::DELETE_TEMPLATE, &json!({ "priTmplId": pri_tmpl_id })).await
    }

    /// The page (on `mp.weixin.qq.com`) where a user consents to receive one message of
    /// one-time subscription template `template_id`. WeChat then redirects to
    /// `redirect_url` with `openid`, `template_id`, `action` (`confirm` or `cancel`),
    /// `scene` and `reserved` (your state, returned as given); the redirect domain must be
    /// one of the account's business domains. Built locally, no request is made.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a scene above 10,000, an empty template id or redirect URL,
    /// or a `reserved` of more than 128 bytes.
    pub fn authorize_url(
        self,
        scene: u32,
        template_id: &str,
        redirect_url: &str,
        reserved: &str,
    ) -> Result<String> {
        check_scene(scene)?;
        if template_id.is_empty() || redirect_url.is_empty() {
            return Err(Error::Invalid(
                "one-time subscription: the template id and redirect URL are required".into(),
            ));
        }
        if reserved.len() > MAX_RESERVED_BYTES {
            return Err(Error::Invalid(format!(
                "one-time subscription: reserved is at most 128 bytes, not {}",
                reserved.len()
            )));
        }
        let enc = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        Ok(format!(
            "{}{}?action=get_confirm&appid={}&scene={scene}&template_id={}&redirect_url={}&reserved={}#wechat_redirect",
            self.0.inner.mp_base,
            path::CONSENT_PAGE,
            enc(&self.0.inner.appid),
            enc(template_id),
            enc(redirect_url),
            enc(reserved),
        ))
    }

    /// Sends a one-time subscription message, once per consent.
    ///
    /// # Errors
    /// [`Error::Invalid`] when [`OnceMessage::check`] fails, before sending; otherwise as
    /// [`Client::get`] (43101 no unused consent for this user, template and scene).
    pub async fn send_once(self, msg: &OnceMessage) -> Result<()> {
        msg.check()?;
        self.0.post_ok(path::SEND_ONCE, msg).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn library_answers_read_as_documented() {
        // The documented example gives categoryId as a string, its table as a number.
        let titles: PubTitles = serde_json::from_value(json!({
            "errcode": 0, "errmsg": "ok", "count": 55,
            "data": [{ "tid": 99, "title": "付款成功通知", "type": 2, "categoryId": "616" },
                     { "tid": 100, "title": "x", "type": 3, "categoryId": 616 }]
        }))
        .unwrap();
        assert_eq!(titles.count, 55);
        assert!(titles.data.iter().all(|t| t.category_id.as_deref() == Some("616")));
        let kw: PubKeyword = serde_json::from_value(
            json!({ "kid": 1, "name": "物品名称", "example": "名称", "rule": "thing" }),
        )
        .unwrap();
        assert_eq!((kw.kid, kw.rule.as_str()), (1, "thing"));
    }
}
