//! [`Note`]: what a check found, kept without an allocation where it can be.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// The bytes a written note keeps inline: every note admission writes but one naming a long
/// path (the request's) or a long appid. 54 makes a [`Check`](super::Check) 64 bytes.
const INLINE: usize = 54;

/// What a check found: one sentence, no secret. It reads as a `str` (it derefs to one, and
/// displays, compares and serializes as one); it is built from a `&'static str`
/// (shared, not copied for every request), a `String`, or copied from a `&str`
/// ([`Note::copied`]).
///
/// The notes admission writes for a passed check (the account, the timestamp's age, the
/// `Encrypt`'s length, the decrypted appid) are kept inline, in the note itself, when they
/// fit: a kept admission allocates nothing for them.
///
/// ```
/// use wemp_proto::admission::Note;
/// let note = Note::from("signature, timestamp and nonce present");
/// assert_eq!(note, "signature, timestamp and nonce present");
/// assert_eq!(note.len(), 38);
/// assert_eq!(Note::from(format!("{} s from server time", 3)).to_string(), "3 s from server time");
/// ```
#[derive(Clone)]
pub struct Note(Repr);

#[derive(Clone)]
enum Repr {
    /// A fixed sentence.
    Shared(&'static str),
    /// A written note that fits: `bytes[..len]`, always whole UTF-8 (written only by
    /// [`Note::push_str`], a whole `str` at a time).
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Any other: a refusal's message, a note read back, a long written one.
    Owned(String),
}

impl Note {
    /// An empty note to write into, inline until it outgrows [`INLINE`].
    pub(super) const fn written() -> Self {
        Self(Repr::Inline { len: 0, bytes: [0; INLINE] })
    }

    /// `text` copied: inline when it fits, else into a `String`.
    pub fn copied(text: &str) -> Self {
        match text.len() {
            len @ ..=INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..len].copy_from_slice(text.as_bytes());
                // At most INLINE, which fits a u8.
                Self(Repr::Inline { len: len as u8, bytes })
            }
            _ => Self(Repr::Owned(text.to_owned())),
        }
    }

    /// Appends `text`: inline while it fits, else (once) moved to a `String`. Inlined, so
    /// that a constant piece is copied by a few moves rather than a call to `memcpy`.
    #[inline]
    pub(super) fn push_str(&mut self, text: &str) {
        if let Repr::Inline { len, bytes } = &mut self.0 {
            let at = usize::from(*len);
            let end = at + text.len();
            if let Some(room) = bytes.get_mut(at..end) {
                room.copy_from_slice(text.as_bytes());
                // At most INLINE, which fits a u8.
                *len = end as u8;
                return;
            }
        }
        self.push_str_owned(text);
    }

    /// [`Note::push_str`] where `text` does not fit inline: the note moves to a `String`.
    #[cold]
    #[inline(never)]
    fn push_str_owned(&mut self, text: &str) {
        match &mut self.0 {
            Repr::Owned(owned) => owned.push_str(text),
            _ => {
                let mut owned = String::with_capacity(2 * INLINE + text.len());
                owned.push_str(self.as_str());
                owned.push_str(text);
                self.0 = Repr::Owned(owned);
            }
        }
    }

    /// Appends `n` in decimal, as its `Display` does.
    #[inline]
    pub(super) fn push_uint(&mut self, n: u64) {
        self.push_str(itoa::Buffer::new().format(n));
    }

    /// The note's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Shared(text) => text,
            // Whole UTF-8 by construction: the check cannot fail, and costs a pass over
            // the bytes (see `as_bytes`).
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Owned(text) => text,
        }
    }

    /// The note's text as bytes (UTF-8), without the pass over them that [`Note::as_str`]
    /// makes of an inline note: for a writer that copies them as they are.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Shared(text) => text.as_bytes(),
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Owned(text) => text.as_bytes(),
        }
    }
}

impl Deref for Note {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Note {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Note {
    fn from(text: &'static str) -> Self {
        Self(Repr::Shared(text))
    }
}

impl From<String> for Note {
    fn from(text: String) -> Self {
        Self(Repr::Owned(text))
    }
}

impl From<Cow<'static, str>> for Note {
    fn from(text: Cow<'static, str>) -> Self {
        match text {
            Cow::Borrowed(text) => text.into(),
            Cow::Owned(text) => text.into(),
        }
    }
}

impl fmt::Write for Note {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_str(text);
        Ok(())
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Note {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Note {}

impl PartialEq<str> for Note {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Note {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Note {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl serde::Serialize for Note {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Note {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_note_reads_as_what_was_written_inline_or_not() {
        let chinese = ["中文", "路径"].repeat(10);
        for pieces in [
            &["path ", "\"/wechat\"", " selects account ", "wx62656e6368776d70"][..],
            &["x"; INLINE],
            &["x"; INLINE + 1],
            &chinese,
            &[""],
        ] {
            let mut note = Note::written();
            for piece in pieces {
                note.push_str(piece);
            }
            let text = pieces.concat();
            assert_eq!(note.as_str(), text);
            assert_eq!(note.as_bytes(), text.as_bytes());
            assert_eq!(note, Note::from(text.clone()));
            assert_eq!(matches!(note.0, Repr::Inline { .. }), text.len() <= INLINE, "{text}");
            let copied = Note::copied(&text);
            assert_eq!(copied.as_str(), text);
            assert_eq!(matches!(copied.0, Repr::Inline { .. }), text.len() <= INLINE, "{text}");
        }
        let mut note = Note::from("fixed");
        note.push_str(" then more");
        assert_eq!(note, "fixed then more");
    }

    #[test]
    fn a_note_is_a_str_to_serde_and_debug() {
        let mut written = Note::written();
        written.push_str("12 s from server time");
        for note in
            [written, Note::from("12 s from server time"), Note::from("12 s from server time".to_owned())]
        {
            assert_eq!(serde_json::to_string(&note).unwrap(), "\"12 s from server time\"");
            assert_eq!(serde_json::from_str::<Note>("\"12 s from server time\"").unwrap(), note);
            assert_eq!(format!("{note:?}"), format!("{:?}", "12 s from server time"));
        }
    }
}
