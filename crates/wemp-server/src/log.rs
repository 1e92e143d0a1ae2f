//! Log helpers: shortened OpenIDs.

use std::fmt;

/// An OpenID for logs: `oyOR…f0rs` unless full ids were asked for.
pub(crate) struct ShortId<'a> {
    id: &'a str,
    full: bool,
}

impl<'a> ShortId<'a> {
    pub(crate) fn new(id: &'a str, full: bool) -> Self {
        Self { id, full }
    }
}

impl fmt::Display for ShortId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Slices at char boundaries, no allocation: this runs for every request whose span
        // is recorded.
        let id = self.id;
        let head_end = id.char_indices().nth(4).map_or(id.len(), |(i, _)| i);
        let tail_start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
        if self.full || id.chars().nth(8).is_none() {
            return f.write_str(id);
        }
        f.write_str(&id[..head_end])?;
        f.write_str("…")?;
        f.write_str(&id[tail_start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_unless_full() {
        assert_eq!(ShortId::new("oyORnuP8q7ou2gfYjqLzSIWZf0rs", false).to_string(), "oyOR…f0rs");
        assert_eq!(
            ShortId::new("oyORnuP8q7ou2gfYjqLzSIWZf0rs", true).to_string(),
            "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        );
        assert_eq!(ShortId::new("o1", false).to_string(), "o1");
        assert_eq!(ShortId::new("o1234567", false).to_string(), "o1234567");
        assert_eq!(ShortId::new("o12345678", false).to_string(), "o123…5678");
        assert_eq!(ShortId::new("用户一二三四五六七", false).to_string(), "用户一二…四五六七");
    }
}
