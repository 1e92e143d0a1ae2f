//! The platform's API by area: each area is a handle borrowed from a [`Client`](crate::Client)
//! (`client.menu().create(..)`), in one file that also holds the area's endpoint paths and
//! types. The fake platform of `wemp-testkit` mirrors the areas file for file.
//!
//! | handle | area |
//! |---|---|
//! | [`Client::users`](crate::Client::users) | user information, followers, remarks, the blacklist, `changeopenid` ([`users`]) |
//! | [`Client::tags`](crate::Client::tags) | user tags and their members ([`tags`]) |
//! | [`Client::media`](crate::Client::media) | temporary media, HD voice, images for articles ([`media`]) |
//! | [`Client::material`](crate::Client::material) | permanent material ([`material`]) |
//! | [`Client::drafts`](crate::Client::drafts) | drafts of articles ([`drafts`]) |
//! | [`Client::publish`](crate::Client::publish) | free publishing of drafts ([`publish`]) |
//! | [`Client::cards`](crate::Client::cards) | cards and coupons (卡券), member cards, the card api_ticket and JS-SDK card signatures ([`cards`]) |
//! | [`Client::comments`](crate::Client::comments) | comments on mass-sent articles ([`comments`]) |
//! | [`Client::datacube`](crate::Client::datacube) | the data cube reports (数据统计) ([`datacube`]) |
//! | [`Client::kf`](crate::Client::kf) | customer service: messages, late replies, agents, sessions, chat records ([`kf`]) |
//! | [`Client::mass`](crate::Client::mass) | mass sending, and the video and article uploads it uses ([`mass`]) |
//! | [`Client::menu`](crate::Client::menu) | custom menus, conditional menus ([`menu`]) |
//! | [`Client::subscribe`](crate::Client::subscribe) | subscription notifications, one-time subscription messages, the template library ([`subscribe`]) |
//! | [`Client::templates`](crate::Client::templates) | template messages, industries, templates ([`templates`]) |
//! | [`Client::qrcode`](crate::Client::qrcode) | QR codes with scene values, short keys ([`qrcode`]) |
//! | [`Client::oauth`](crate::Client::oauth) | OAuth2 web authorization ([`oauth`]) |
//! | [`Client::jssdk`](crate::Client::jssdk) | the JS-SDK's signed `wx.config` ([`jssdk`]) |
//! | [`Client::ops`](crate::Client::ops) | IP lists, network check, quotas, `rid` lookup ([`ops`]) |

pub mod cards;
pub mod comments;
pub mod datacube;
pub mod drafts;
pub mod jssdk;
pub mod kf;
pub mod mass;
pub mod material;
pub mod media;
pub mod menu;
pub mod oauth;
pub mod ops;
pub mod publish;
pub mod qrcode;
pub mod subscribe;
pub mod tags;
pub mod templates;
pub mod users;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The sources that name platform endpoints: the areas, the tokens and tickets, the
    /// third-party platform and WeCom.
    const SOURCES: &[&str] = &[
        include_str!("cards.rs"),
        include_str!("comments.rs"),
        include_str!("datacube.rs"),
        include_str!("drafts.rs"),
        include_str!("jssdk.rs"),
        include_str!("kf.rs"),
        include_str!("mass.rs"),
        include_str!("material.rs"),
        include_str!("media.rs"),
        include_str!("menu.rs"),
        include_str!("oauth.rs"),
        include_str!("ops.rs"),
        include_str!("publish.rs"),
        include_str!("qrcode.rs"),
        include_str!("subscribe.rs"),
        include_str!("tags.rs"),
        include_str!("templates.rs"),
        include_str!("users.rs"),
        include_str!("../client.rs"),
        include_str!("../token.rs"),
        include_str!("../component.rs"),
        include_str!("../wecom.rs"),
    ];

    /// Paths that are pages a browser opens, not API calls.
    const PAGES: &[&str] = &["/cgi-bin/showqrcode"];

    #[test]
    fn the_readme_counts_the_endpoints_the_client_calls() {
        let prefixes = ["/cgi-bin/", "/sns/", "/card/", "/datacube/", "/customservice/", "/wxaapi/"];
        let mut paths = BTreeSet::new();
        for src in SOURCES {
            // String literals only, outside comments: `"/cgi-bin/…"` with no `{}` or spaces.
            for line in src.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for literal in line.split('"').skip(1).step_by(2) {
                    let api = prefixes.iter().any(|p| literal.starts_with(p) && literal.len() > p.len());
                    if api
                        && !literal.contains(['{', ' '])
                        && !literal.ends_with('/')
                        && !PAGES.contains(&literal)
                    {
                        paths.insert(literal);
                    }
                }
            }
        }
        let readme = include_str!("../../README.md");
        let claimed: usize = readme
            .split_once(" platform endpoints")
            .and_then(|(before, _)| before.rsplit(char::is_whitespace).next())
            .and_then(|n| n.parse().ok())
            .expect("README.md says \"N platform endpoints\"");
        assert_eq!(claimed, paths.len(), "README.md claims {claimed} endpoints; the sources name {paths:#?}");
    }
}
