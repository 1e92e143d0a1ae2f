//! Custom menus, including conditional (personalized) menus.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html>

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::Result;

/// A menu button: a leaf with a `type`, or a parent with `sub_button`s.
///
/// ```
/// use wemp_client::api::menu::Button;
/// let menu = vec![
///     Button::click("Today", "V1001_TODAY"),
///     Button::parent("More", vec![Button::view("Site", "https://example.com")]),
/// ];
/// assert_eq!(serde_json::to_value(&menu[1]).unwrap()["sub_button"][0]["type"], "view");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// `click`, `view`, `miniprogram`, `scancode_push`, `pic_sysphoto`, `location_select`,
    /// `media_id`, `article_id`, …; `None` for a parent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The label.
    pub name: String,
    /// Event key (`click` and the other event types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// URL (`view`, and the fallback of `miniprogram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Media id (`media_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Article id (`article_id`, `article_view_limited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_id: Option<String>,
    /// Mini program AppID (`miniprogram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// Mini program page (`miniprogram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
    /// Children (at most 5) of a parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<Self>,
}

impl Button {
    /// A leaf of any type with an event key.
    pub fn event(kind: impl Into<String>, name: impl Into<String>, key: impl Into<String>) -> Self {
        Self { kind: Some(kind.into()), name: name.into(), key: Some(key.into()), ..Self::default() }
    }

    /// A `click` button.
    pub fn click(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self::event("click", name, key)
    }

    /// A `view` (link) button.
    pub fn view(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self { kind: Some("view".into()), name: name.into(), url: Some(url.into()), ..Self::default() }
    }

    /// A `miniprogram` button, with a URL for clients without mini programs.
    pub fn miniprogram(
        name: impl Into<String>,
        url: impl Into<String>,
        appid: impl Into<String>,
        pagepath: impl Into<String>,
    ) -> Self {
        Self {
            kind: Some("miniprogram".into()),
            name: name.into(),
            url: Some(url.into()),
            appid: Some(appid.into()),
            pagepath: Some(pagepath.into()),
            ..Self::default()
        }
    }

    /// A parent of up to five buttons.
    pub fn parent(name: impl Into<String>, children: Vec<Self>) -> Self {
        Self { name: name.into(), sub_button: children, ..Self::default() }
    }
}

/// Who sees a conditional menu. Sent as strings; `menu/get` may answer with numbers
/// (as in WeChat's documented example), which read as their decimal strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRule {
    /// Users with this tag.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::string_or_number"
    )]
    pub tag_id: Option<String>,
    /// `1` iOS, `2` Android, `3` others.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::string_or_number"
    )]
    pub client_platform_type: Option<String>,
}

impl MatchRule {
    /// Users with `tag_id`.
    pub fn tag(tag_id: i64) -> Self {
        Self { tag_id: Some(tag_id.to_string()), ..Self::default() }
    }
}

/// The menus as `menu/get` returns them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Menus {
    /// The default menu.
    pub menu: MenuButtons,
    /// Conditional menus.
    #[serde(default)]
    pub conditionalmenu: Vec<ConditionalMenu>,
}

/// A menu's buttons.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MenuButtons {
    /// The buttons.
    pub button: Vec<Button>,
    /// Its id.
    #[serde(default)]
    pub menuid: Option<Value>,
}

/// A conditional menu.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConditionalMenu {
    /// The buttons.
    pub button: Vec<Button>,
    /// Who sees it.
    pub matchrule: MatchRule,
    /// Its id.
    pub menuid: Value,
}

/// The menu currently in effect (`get_current_selfmenu_info`), as set through the API or
/// the admin console.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SelfMenuInfo {
    /// 1 when a menu is shown.
    pub is_menu_open: u8,
    /// The menu, in the console's format.
    #[serde(default)]
    pub selfmenu_info: Option<Value>,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const CREATE: &str = "/cgi-bin/menu/create";
    pub(super) const GET: &str = "/cgi-bin/menu/get";
    pub(super) const DELETE: &str = "/cgi-bin/menu/delete";
    pub(super) const CURRENT: &str = "/cgi-bin/get_current_selfmenu_info";
    pub(super) const ADD_CONDITIONAL: &str = "/cgi-bin/menu/addconditional";
    pub(super) const DELETE_CONDITIONAL: &str = "/cgi-bin/menu/delconditional";
    pub(super) const TRY_MATCH: &str = "/cgi-bin/menu/trymatch";
}

impl Client {
    /// Custom menus: [`MenuApi`].
    pub fn menu(&self) -> MenuApi<'_> {
        MenuApi(self)
    }
}

/// Custom menus (`/cgi-bin/menu/*`), from [`Client::menu`].
#[derive(Clone, Copy, Debug)]
pub struct MenuApi<'c>(&'c Client);

impl MenuApi<'_> {
    /// Creates the default menu (up to 3 buttons).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create(self, buttons: &[Button]) -> Result<()> {
        self.0.post_ok(path::CREATE, &json!({ "button": buttons })).await
    }

    /// The default and conditional menus.
    ///
    /// # Errors
    /// As [`Client::get`] (46003 when there is no menu).
    pub async fn get(self) -> Result<Menus> {
        self.0.get_as(path::GET, &[]).await
    }

    /// Deletes every menu, conditional ones included.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self) -> Result<()> {
        self.0.get_ok(path::DELETE, &[]).await
    }

    /// The menu currently in effect, as set through the API or the admin console.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn current(self) -> Result<SelfMenuInfo> {
        self.0.get_as(path::CURRENT, &[]).await
    }

    /// Adds a conditional menu; returns its id.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add_conditional(self, buttons: &[Button], rule: &MatchRule) -> Result<String> {
        #[derive(Deserialize)]
        struct Id {
            menuid: Value,
        }
        let id: Id = self
            .0
            .post_as(path::ADD_CONDITIONAL, &[], &json!({ "button": buttons, "matchrule": rule }))
            .await?;
        Ok(match id.menuid {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// Deletes a conditional menu.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_conditional(self, menuid: &str) -> Result<()> {
        self.0.post_ok(path::DELETE_CONDITIONAL, &json!({ "menuid": menuid })).await
    }

    /// The menu a user (OpenID or WeChat id) would see.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn try_match(self, user_id: &str) -> Result<Vec<Button>> {
        #[derive(Deserialize)]
        struct B {
            button: Vec<Button>,
        }
        Ok(self.0.post_as::<B, _>(path::TRY_MATCH, &[], &json!({ "user_id": user_id })).await?.button)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_read_the_documented_get_answer_with_numeric_match_rules() {
        // The `menu/get` answer of WeChat's documentation: the match rule's values are
        // numbers there, while `addconditional` takes them as strings.
        let answer = json!({
            "menu": { "button": [{ "type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC", "sub_button": [] }], "menuid": 208396938 },
            "conditionalmenu": [{
                "button": [{ "type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC", "sub_button": [] }],
                "matchrule": { "group_id": 2, "sex": 1, "country": "中国", "province": "广东", "city": "广州", "client_platform_type": 2 },
                "menuid": 208396993
            }]
        });
        let menus: Menus = serde_json::from_value(answer).unwrap();
        assert_eq!(menus.conditionalmenu[0].matchrule.client_platform_type.as_deref(), Some("2"));
        let tagged: MatchRule = serde_json::from_value(json!({ "tag_id": 7 })).unwrap();
        assert_eq!(tagged, MatchRule::tag(7));
        assert_eq!(serde_json::to_value(&tagged).unwrap(), json!({ "tag_id": "7" }));
    }
}
