//! The account's custom menu, as the console renders it under the chat.
//!
//! The shape is WeChat's own `menu/create` body, so the same `[menu]` section of a config
//! can be posted to the platform unchanged:
//!
//! ```toml
//! [[menu.button]]
//! type = "click"
//! name = "今日歌曲"
//! key = "V1001_TODAY_MUSIC"
//!
//! [[menu.button]]
//! name = "菜单"
//! [[menu.button.sub_button]]
//! type = "view"
//! name = "搜索"
//! url = "https://www.soso.com/"
//! [[menu.button.sub_button]]
//! type = "click"
//! name = "赞一下我们"
//! key = "V1001_GOOD"
//! ```
//!
//! See <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html>.

use serde::{Deserialize, Serialize};

/// At most this many buttons in the bottom bar.
pub const MAX_BUTTONS: usize = 3;
/// At most this many sub-buttons under one button.
pub const MAX_SUB_BUTTONS: usize = 5;
/// A top-level button's name may take at most this many bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 16;
/// A sub-button's name may take at most this many bytes (UTF-8).
pub const MAX_SUB_NAME_BYTES: usize = 60;
/// A `key` may take at most this many bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// A `url` may take at most this many bytes.
pub const MAX_URL_BYTES: usize = 1024;

/// `[menu]`: the bottom menu of the account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// The buttons of the bottom bar, left to right (at most 3).
    #[serde(default)]
    pub button: Vec<MenuButton>,
}

/// What a menu button does when tapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ButtonKind {
    /// Sends a `CLICK` event with the button's `key`.
    Click,
    /// Opens `url` and sends a `VIEW` event.
    View,
}

/// One button: a leaf (`type` set) or a group of sub-buttons (`sub_button` set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuButton {
    /// `click` or `view`; unset for a group.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ButtonKind>,
    /// The label shown.
    pub name: String,
    /// The `EventKey` of a `click` button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The page a `view` button opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The buttons of a group (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<Self>,
}

impl MenuButton {
    /// A `click` button sending `key`.
    pub fn click(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self { kind: Some(ButtonKind::Click), name: name.into(), key: Some(key.into()), ..Self::default() }
    }

    /// A `view` button opening `url`.
    pub fn view(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self { kind: Some(ButtonKind::View), name: name.into(), url: Some(url.into()), ..Self::default() }
    }

    /// A group of sub-buttons.
    pub fn group(name: impl Into<String>, sub_button: Vec<Self>) -> Self {
        Self { name: name.into(), sub_button, ..Self::default() }
    }
}

/// Why a menu would be refused by WeChat.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("menu.{path}: {problem}")]
pub struct MenuError {
    /// Where: `button[1].sub_button[0].key`.
    pub path: String,
    /// What is wrong.
    pub problem: MenuProblem,
}

/// What is wrong with a menu (its English is its `Display`; the CLI words it in Chinese too).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MenuProblem {
    /// More top-level buttons than WeChat allows.
    #[error("{n} buttons; WeChat allows at most {max}")]
    TooManyButtons {
        /// How many there are.
        n: usize,
        /// How many WeChat allows.
        max: usize,
    },
    /// A group (a button with sub-buttons) with a type.
    #[error("a button with sub_button is a group and takes no type")]
    GroupWithType,
    /// More sub-buttons than WeChat allows.
    #[error("{n} sub-buttons; WeChat allows at most {max}")]
    TooManySubButtons {
        /// How many there are.
        n: usize,
        /// How many WeChat allows.
        max: usize,
    },
    /// A sub-button with sub-buttons.
    #[error("sub-buttons cannot have sub-buttons")]
    NestedSubButtons,
    /// An empty value.
    #[error("empty")]
    Empty,
    /// A value longer than WeChat allows, in bytes.
    #[error("{bytes} bytes; WeChat allows at most {max}")]
    TooLong {
        /// Its length in bytes.
        bytes: usize,
        /// What WeChat allows.
        max: usize,
    },
    /// A button without type or sub-buttons.
    #[error("missing: set type = \"click\" or \"view\", or add sub_button")]
    MissingType,
    /// A click button without a key.
    #[error("a click button needs a key")]
    NoKey,
    /// A view button's url is not http(s).
    #[error("{0:?} is not an http(s) URL")]
    NotHttpUrl(String),
    /// A view button without a url.
    #[error("a view button needs a url")]
    NoUrl,
}

impl Menu {
    /// Checks the limits WeChat enforces on `menu/create`.
    ///
    /// # Errors
    /// The first [`MenuError`] found, naming the button.
    pub fn validate(&self) -> Result<(), MenuError> {
        if self.button.len() > MAX_BUTTONS {
            return Err(MenuError {
                path: "button".into(),
                problem: MenuProblem::TooManyButtons { n: self.button.len(), max: MAX_BUTTONS },
            });
        }
        for (i, b) in self.button.iter().enumerate() {
            let path = format!("button[{i}]");
            check_button(b, &path, MAX_NAME_BYTES)?;
            if b.sub_button.is_empty() {
                continue;
            }
            if b.kind.is_some() {
                return Err(MenuError { path: format!("{path}.type"), problem: MenuProblem::GroupWithType });
            }
            if b.sub_button.len() > MAX_SUB_BUTTONS {
                return Err(MenuError {
                    path: format!("{path}.sub_button"),
                    problem: MenuProblem::TooManySubButtons { n: b.sub_button.len(), max: MAX_SUB_BUTTONS },
                });
            }
            for (j, s) in b.sub_button.iter().enumerate() {
                let sub = format!("{path}.sub_button[{j}]");
                if !s.sub_button.is_empty() {
                    return Err(MenuError {
                        path: format!("{sub}.sub_button"),
                        problem: MenuProblem::NestedSubButtons,
                    });
                }
                check_button(s, &sub, MAX_SUB_NAME_BYTES)?;
            }
        }
        Ok(())
    }

    /// Whether the menu has no buttons.
    pub fn is_empty(&self) -> bool {
        self.button.is_empty()
    }
}

fn check_button(b: &MenuButton, path: &str, max_name: usize) -> Result<(), MenuError> {
    let err = |field: &str, problem: MenuProblem| MenuError { path: format!("{path}.{field}"), problem };
    if b.name.trim().is_empty() {
        return Err(err("name", MenuProblem::Empty));
    }
    if b.name.len() > max_name {
        return Err(err("name", MenuProblem::TooLong { bytes: b.name.len(), max: max_name }));
    }
    match b.kind {
        None if b.sub_button.is_empty() => Err(err("type", MenuProblem::MissingType)),
        None => Ok(()),
        Some(ButtonKind::Click) => match b.key.as_deref() {
            None | Some("") => Err(err("key", MenuProblem::NoKey)),
            Some(k) if k.len() > MAX_KEY_BYTES => {
                Err(err("key", MenuProblem::TooLong { bytes: k.len(), max: MAX_KEY_BYTES }))
            }
            Some(_) => Ok(()),
        },
        Some(ButtonKind::View) => match b.url.as_deref() {
            Some(u) if u.len() > MAX_URL_BYTES => {
                Err(err("url", MenuProblem::TooLong { bytes: u.len(), max: MAX_URL_BYTES }))
            }
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(()),
            Some(u) => Err(err("url", MenuProblem::NotHttpUrl(u.to_owned()))),
            None => Err(err("url", MenuProblem::NoUrl)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapper {
        menu: Menu,
    }

    #[test]
    fn reads_wechat_shape_from_toml() {
        let src = r#"
[[menu.button]]
type = "click"
name = "今日歌曲"
key = "V1001_TODAY_MUSIC"

[[menu.button]]
name = "菜单"
[[menu.button.sub_button]]
type = "view"
name = "搜索"
url = "https://www.soso.com/"
[[menu.button.sub_button]]
type = "click"
name = "赞一下我们"
key = "V1001_GOOD"
"#;
        let menu = toml::from_str::<Wrapper>(src).unwrap().menu;
        menu.validate().unwrap();
        assert_eq!(menu.button[0], MenuButton::click("今日歌曲", "V1001_TODAY_MUSIC"));
        assert_eq!(
            menu.button[1],
            MenuButton::group(
                "菜单",
                vec![
                    MenuButton::view("搜索", "https://www.soso.com/"),
                    MenuButton::click("赞一下我们", "V1001_GOOD")
                ]
            )
        );
        let json = serde_json::to_value(&menu).unwrap();
        assert_eq!(json["button"][1]["sub_button"][0]["type"], "view");
        assert!(json["button"][0].get("sub_button").is_none());
    }

    #[test]
    fn a_view_url_over_1024_bytes_is_refused_as_wechat_does() {
        let url = format!("https://example.com/{}", "a".repeat(1024 - 20));
        assert_eq!(url.len(), 1024);
        let mut menu = Menu { button: vec![MenuButton::view("v", url.clone())] };
        menu.validate().unwrap();
        menu.button = vec![MenuButton::view("v", format!("{url}b"))];
        let e = menu.validate().unwrap_err();
        assert_eq!(e.path, "button[0].url");
        assert!(e.problem.to_string().contains("1025 bytes; WeChat allows at most 1024"), "{e}");
        menu.button = vec![MenuButton::group("g", vec![MenuButton::view("v", format!("{url}b"))])];
        assert_eq!(menu.validate().unwrap_err().path, "button[0].sub_button[0].url");
    }

    #[test]
    fn validation_names_the_button() {
        let mut menu = Menu { button: vec![MenuButton::click("a", "")] };
        assert_eq!(menu.validate().unwrap_err().path, "button[0].key");
        menu.button = vec![MenuButton::group("g", vec![MenuButton::view("v", "ftp://x")])];
        assert_eq!(
            menu.validate().unwrap_err().to_string(),
            "menu.button[0].sub_button[0].url: \"ftp://x\" is not an http(s) URL"
        );
        menu.button = vec![MenuButton::click("a", "k"); 4];
        assert!(menu.validate().unwrap_err().problem.to_string().contains("at most 3"));
        menu.button = vec![MenuButton::group("g", vec![MenuButton::click("a", "k"); 6])];
        assert!(menu.validate().unwrap_err().problem.to_string().contains("at most 5"));
        menu.button = vec![MenuButton::click("一二三四五六", "k")];
        assert_eq!(menu.validate().unwrap_err().path, "button[0].name");
        menu.button = vec![MenuButton { name: "x".into(), ..MenuButton::default() }];
        assert_eq!(menu.validate().unwrap_err().path, "button[0].type");
    }
}
