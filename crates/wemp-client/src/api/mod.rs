//! The platform's API by area: each area is a handle borrowed from a [`Client`](crate::Client)
//! (`client.menu().create(..)`), in one file that also holds the area's endpoint paths and
//! types. The fake platform of `wemp-testkit` mirrors the areas file for file.
//!
//! | handle | area |
//! |---|---|
//! | [`Client::cards`](crate::Client::cards) | cards and coupons (卡券), member cards, the card api_ticket and JS-SDK card signatures ([`cards`]) |
//! | [`Client::comments`](crate::Client::comments) | comments on mass-sent articles ([`comments`]) |
//! | [`Client::datacube`](crate::Client::datacube) | the data cube reports (数据统计) ([`datacube`]) |
//! | [`Client::kf`](crate::Client::kf) | customer service: messages, late replies, agents, sessions, chat records ([`kf`]) |
//! | [`Client::mass`](crate::Client::mass) | mass sending, and the video and article uploads it uses ([`mass`]) |
//! | [`Client::menu`](crate::Client::menu) | custom menus, conditional menus ([`menu`]) |
//! | [`Client::subscribe`](crate::Client::subscribe) | subscription notifications, one-time subscription messages, the template library ([`subscribe`]) |
//! | [`Client::templates`](crate::Client::templates) | template messages, industries, templates ([`templates`]) |

pub mod cards;
pub mod comments;
pub mod datacube;
pub mod kf;
pub mod mass;
pub mod menu;
pub mod subscribe;
pub mod templates;
