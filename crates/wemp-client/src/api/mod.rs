//! The platform's API by area: each area is a handle borrowed from a [`Client`](crate::Client)
//! (`client.menu().create(..)`), in one file that also holds the area's endpoint paths and
//! types. The fake platform of `wemp-testkit` mirrors the areas file for file.
//!
//! | handle | area |
//! |---|---|
//! | [`Client::menu`](crate::Client::menu) | custom menus, conditional menus ([`menu`]) |

pub mod menu;
