//! A secret value (Token, EncodingAESKey, AppSecret) that never shows itself in a log line.

use std::fmt;

/// A Token, an EncodingAESKey, an AppSecret: `Debug` and `Display` print only its length,
/// so a secret cannot reach a log line or an error message by accident. Read it with
/// [`Secret::expose`] where it is really needed (signing, decrypting, an API call).
///
/// ```
/// use wemp_proto::Secret;
/// let token = Secret::new("spamtest");
/// assert_eq!(format!("{token:?} {token}"), "Secret(8 bytes) <secret: 8 bytes>");
/// assert_eq!(token.expose(), "spamtest");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The value itself; pass it on to what needs it, never to a log line.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in bytes (what `Debug` shows).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret: {} bytes>", self.0.len())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Serde for a [`Secret`] field that must be stored (a token in a shared store): the value
/// itself, written and read as a plain string. `Secret` has no `Serialize` of its own, so a
/// secret reaches JSON only where a field says so with
/// `#[serde(with = "wemp_proto::secret_serde")]`.
pub mod secret_serde {
    use super::Secret;

    /// Writes the value itself.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    /// Reads a string into a [`Secret`].
    ///
    /// # Errors
    /// When the value is not a string.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Secret::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
        for shown in [format!("{s:?}"), format!("{s}"), format!("{s:#?}")] {
            assert!(!shown.contains("abc"), "{shown}");
            assert!(shown.contains("43"), "{shown}");
        }
    }
}
