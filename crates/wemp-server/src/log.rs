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
        let chars = self.id.chars().count();
        if self.full || chars <= 8 {
            return f.write_str(self.id);
        }
        let head: String = self.id.chars().take(4).collect();
        let tail: String = self.id.chars().skip(chars - 4).collect();
        write!(f, "{head}…{tail}")
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
    }
}
