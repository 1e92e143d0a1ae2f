//! One Official Account's credentials as the server needs them.

use std::fmt;

use wemp_proto::{Cipher, KeyError};

/// An Official Account served by a [`crate::WechatService`]: appid, Token and, for
/// compatible and safe mode, the EncodingAESKey.
///
/// `Debug` never shows the token or the key.
///
/// ```
/// use wemp_server::Account;
/// let account = Account::new("wx2c2769f8efd9abc2", "spamtest")
///     .with_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")?
///     .with_original_id("gh_10f6c3c3ac5a");
/// assert_eq!(account.appid(), "wx2c2769f8efd9abc2");
/// assert!(!format!("{account:?}").contains("spamtest"));
/// # Ok::<(), wemp_proto::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Account {
    appid: Box<str>,
    token: Box<str>,
    cipher: Option<Cipher>,
    original_id: Option<Box<str>>,
    path: Box<str>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("appid", &self.appid)
            .field("original_id", &self.original_id)
            .field("path", &self.path)
            .field("token_len", &self.token.len())
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

impl Account {
    /// An account with its appid and the Token set in the console (plain mode only until a
    /// key is added). The path segment it answers on defaults to the appid.
    pub fn new(appid: impl Into<String>, token: impl Into<String>) -> Self {
        let appid: Box<str> = appid.into().into_boxed_str();
        let token = token.into().into_boxed_str();
        let token_ok = (3..=32).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric());
        if !token_ok {
            tracing::warn!(
                appid = %appid,
                token_len = token.len(),
                "the console accepts only Tokens of 3-32 characters [A-Za-z0-9]; check the configured Token"
            );
        }
        Self { path: appid.clone(), appid, token, cipher: None, original_id: None }
    }

    /// Adds the console's EncodingAESKey, enabling compatible and safe mode.
    ///
    /// # Errors
    /// [`KeyError`] (`-40004`) when the key is not 43 base64 characters.
    pub fn with_aes_key(mut self, encoding_aes_key: &str) -> Result<Self, KeyError> {
        self.cipher = Some(Cipher::new(encoding_aes_key, &self.appid)?);
        Ok(self)
    }

    /// Adds an already built cipher (its appid should be this account's).
    #[must_use]
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The account's original id (`gh_…`), used to pick the account by `ToUserName` when
    /// several share one URL.
    #[must_use]
    pub fn with_original_id(mut self, original_id: impl Into<String>) -> Self {
        self.original_id = Some(original_id.into().into_boxed_str());
        self
    }

    /// The last path segment that selects this account when several share a server
    /// (default: the appid), e.g. `shop` for `https://example.com/wechat/shop`.
    #[must_use]
    pub fn with_path(mut self, segment: impl Into<String>) -> Self {
        self.path = segment.into().into_boxed_str();
        self
    }

    /// The appid.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The original id (`gh_…`), if configured.
    pub fn original_id(&self) -> Option<&str> {
        self.original_id.as_deref()
    }

    /// The path segment selecting this account.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether an EncodingAESKey is configured.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) fn cipher(&self) -> Option<&Cipher> {
        self.cipher.as_ref()
    }
}
