//! Template messages (模板消息): sending, the account's industries, and its templates.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html>

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::Client;
use crate::error::Result;

/// One field of a template message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateValue {
    /// The text.
    pub value: String,
    /// `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A mini-program a template or subscription message opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgram {
    /// The mini program's AppID.
    pub appid: String,
    /// The page path.
    #[serde(default)]
    pub pagepath: String,
}

/// A template message.
///
/// ```
/// use wemp_client::api::templates::TemplateMessage;
/// let msg = TemplateMessage::new("o1", "TPL").url("https://example.com").field("first", "Hello");
/// assert_eq!(serde_json::to_value(&msg).unwrap()["data"]["first"]["value"], "Hello");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMessage {
    /// The recipient's OpenID.
    pub touser: String,
    /// The template id.
    pub template_id: String,
    /// Where a tap leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A mini-program a tap opens (preferred over `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    /// Fields by keyword.
    pub data: BTreeMap<String, TemplateValue>,
    /// Dedup id for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

impl TemplateMessage {
    /// A message with no fields yet.
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            data: BTreeMap::new(),
            client_msg_id: None,
        }
    }

    /// Sets the URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the mini program a tap opens (preferred over the URL).
    pub fn miniprogram(mut self, appid: impl Into<String>, pagepath: impl Into<String>) -> Self {
        self.miniprogram = Some(MiniProgram { appid: appid.into(), pagepath: pagepath.into() });
        self
    }

    /// Sets the dedup id WeChat uses to drop a retried send.
    pub fn client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.client_msg_id = Some(id.into());
        self
    }

    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: None });
        self
    }

    /// Adds a colored field.
    pub fn colored(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        color: impl Into<String>,
    ) -> Self {
        self.data.insert(key.into(), TemplateValue { value: value.into(), color: Some(color.into()) });
        self
    }
}

/// A template of the account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Template {
    /// The template id.
    pub template_id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Primary industry.
    #[serde(default)]
    pub primary_industry: String,
    /// Deputy industry.
    #[serde(default)]
    pub deputy_industry: String,
    /// Content with `{{key.DATA}}` placeholders.
    #[serde(default)]
    pub content: String,
    /// Example.
    #[serde(default)]
    pub example: String,
}

/// An industry class.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IndustryClass {
    /// First level.
    pub first_class: String,
    /// Second level.
    pub second_class: String,
}

/// The account's template industries.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Industry {
    /// Primary industry.
    pub primary_industry: IndustryClass,
    /// Secondary industry.
    pub secondary_industry: IndustryClass,
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const SEND: &str = "/cgi-bin/message/template/send";
    pub(super) const SET_INDUSTRY: &str = "/cgi-bin/template/api_set_industry";
    pub(super) const INDUSTRY: &str = "/cgi-bin/template/get_industry";
    pub(super) const LIST: &str = "/cgi-bin/template/get_all_private_template";
    pub(super) const ADD: &str = "/cgi-bin/template/api_add_template";
    pub(super) const DELETE: &str = "/cgi-bin/template/del_private_template";
}

impl Client {
    /// Template messages: [`TemplatesApi`].
    pub fn templates(&self) -> TemplatesApi<'_> {
        TemplatesApi(self)
    }
}

/// Template messages (`/cgi-bin/message/template/send`, `/cgi-bin/template/*`), from
/// [`Client::templates`].
#[derive(Clone, Copy, Debug)]
pub struct TemplatesApi<'c>(&'c Client);

impl TemplatesApi<'_> {
    /// Sends a template message; returns its `msgid`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn send(self, msg: &TemplateMessage) -> Result<i64> {
        #[derive(Deserialize)]
        struct M {
            msgid: i64,
        }
        Ok(self.0.post_as::<M, _>(path::SEND, &[], msg).await?.msgid)
    }

    /// Sets the account's two template industries.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn set_industry(self, industry_id1: &str, industry_id2: &str) -> Result<()> {
        self.0
            .post_ok(
                path::SET_INDUSTRY,
                &json!({ "industry_id1": industry_id1, "industry_id2": industry_id2 }),
            )
            .await
    }

    /// The account's template industries.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn industry(self) -> Result<Industry> {
        self.0.get_as(path::INDUSTRY, &[]).await
    }

    /// The account's templates.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn list(self) -> Result<Vec<Template>> {
        #[derive(Deserialize)]
        struct L {
            template_list: Vec<Template>,
        }
        Ok(self.0.get_as::<L>(path::LIST, &[]).await?.template_list)
    }

    /// Adds a template from the library; returns its id.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn add(self, template_id_short: &str, keyword_names: &[&str]) -> Result<String> {
        #[derive(Deserialize)]
        struct T {
            template_id: String,
        }
        let body = json!({ "template_id_short": template_id_short, "keyword_name_list": keyword_names });
        Ok(self.0.post_as::<T, _>(path::ADD, &[], &body).await?.template_id)
    }

    /// Deletes a template.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(self, template_id: &str) -> Result<()> {
        self.0.post_ok(path::DELETE, &json!({ "template_id": template_id })).await
    }
}
