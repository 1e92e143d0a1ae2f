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
