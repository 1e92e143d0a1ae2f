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

impl<'a> ShortId<'a> {
    /// The id as it is shown, written into `buf` when shortened: as a `&str`, a field that a
    /// subscriber can keep or write without a formatting pass (this runs for every request).
    pub(crate) fn as_str<'b>(&self, buf: &'b mut ShortBuf) -> &'b str
    where
        'a: 'b,
    {
        // Slices at char boundaries, no allocation.
        let id = self.id;
        if self.full || id.len() <= 8 {
            // At most eight bytes are at most eight chars.
            return id;
        }
        let (head_end, tail_start) = if id.is_ascii() {
            // An OpenID, as a rule: bytes are chars.
            (4, id.len() - 4)
        } else {
            if id.chars().nth(8).is_none() {
                return id;
            }
            let head_end = id.char_indices().nth(4).map_or(id.len(), |(i, _)| i);
            let tail_start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
            (head_end, tail_start)
        };
        let (head, tail) = (&id.as_bytes()[..head_end], &id.as_bytes()[tail_start..]);
        // Four chars are at most 16 bytes: head, `…` (3) and tail fit in 35.
        let len = head.len() + 3 + tail.len();
        buf.0[..head.len()].copy_from_slice(head);
        buf.0[head.len()..head.len() + 3].copy_from_slice("…".as_bytes());
        buf.0[head.len() + 3..len].copy_from_slice(tail);
        // Whole chars around a whole char: always UTF-8.
        std::str::from_utf8(&buf.0[..len]).unwrap_or(id)
    }
}

/// Room for a shortened id (see [`ShortId::as_str`]).
pub(crate) struct ShortBuf([u8; 35]);

impl ShortBuf {
    pub(crate) fn new() -> Self {
        Self([0; 35])
    }
}

impl fmt::Display for ShortId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(&mut ShortBuf::new()))
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
        // Four chars of four bytes each end: the longest shortened form.
        let wide = "𝔞𝔟𝔠𝔡𝔢𝔣𝔤𝔥𝔦";
        assert_eq!(ShortId::new(wide, false).as_str(&mut ShortBuf::new()), "𝔞𝔟𝔠𝔡…𝔣𝔤𝔥𝔦");
        assert_eq!(
            ShortId::new("oyORnuP8q7ou2gfYjqLzSIWZf0rs", false).as_str(&mut ShortBuf::new()),
            "oyOR…f0rs"
        );
    }
}
