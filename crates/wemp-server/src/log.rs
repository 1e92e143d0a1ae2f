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
        if self.full || id.len() <= 8 {
            // At most eight bytes are at most eight chars.
            return f.write_str(id);
        }
        if id.is_ascii() {
            // An OpenID, as a rule: bytes are chars. Three writes: the eleven bytes assembled
            // and checked again as UTF-8 (`str::from_utf8`) cost more (callgrind, a message's
            // span under `wemp serve`: 263 → 230 instructions).
            f.write_str(&id[..4])?;
            f.write_str("…")?;
            return f.write_str(&id[id.len() - 4..]);
        }
        // Eight chars or fewer in more than eight bytes: as it is.
        if id.chars().nth(8).is_none() {
            return f.write_str(id);
        }
        let head_end = id.char_indices().nth(4).map_or(id.len(), |(i, _)| i);
        let tail_start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
        f.write_str(&id[..head_end])?;
        f.write_str("…")?;
        f.write_str(&id[tail_start..])
    }
}

/// A span's text field given as `Display` (unquoted by tracing's fmt subscriber), written as
/// it is: `str`'s own `Display` goes through `Formatter::pad` for a width no log field has.
pub(crate) struct Text<'a>(pub(crate) &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
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
        assert_eq!(ShortId::new("用户一二三四五六", false).to_string(), "用户一二三四五六");
        assert_eq!(ShortId::new("o1234567é", false).to_string(), "o123…567é");
        assert_eq!(ShortId::new("o12345678", true).to_string(), "o12345678");
        // Padding and width apply to neither (as before: the pieces were written as they are).
        assert_eq!(format!("[{:>12}]", ShortId::new("o12345678", false)), "[o123…5678]");
    }
}
