//! The encrypted envelopes of safe and compatible mode.
//!
//! Inbound: `<xml><ToUserName>…</ToUserName><Encrypt>B64</Encrypt></xml>` (compatible mode
//! adds the plain fields beside `Encrypt`; only what decrypts is trusted). Outbound:
//! `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`, signed over the reply's own
//! timestamp and nonce.
//!
//! ```
//! use wemp_proto::{Cipher, EncryptedReply};
//! let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")?;
//! let sealed = EncryptedReply::seal(&cipher, "spamtest", "<xml/>", "1409735669", "42", [7; 16])?;
//! let body = sealed.to_xml();
//! assert_eq!(EncryptedReply::parse(&body)?.open(&cipher, "spamtest")?, "<xml/>");
//! # Ok::<(), wemp_proto::Error>(())
//! ```

use std::fmt;

use crate::crypto::{Cipher, EncryptError};
use crate::signature;
use crate::xml::{Document, Element, XmlError};
use crate::{Error, ReferenceCode};

/// How a request (and so its reply) is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 明文模式: plain XML, `signature` only.
    #[default]
    Plain,
    /// 兼容模式: plain fields and `Encrypt` side by side.
    Compatible,
    /// 安全模式: only `Encrypt`.
    Safe,
}

impl Mode {
    /// The lowercase name (`plain`, `compatible`, `safe`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Compatible => "compatible",
            Self::Safe => "safe",
        }
    }

    /// Whether requests in this mode carry `Encrypt`.
    pub const fn is_encrypted(self) -> bool {
        !matches!(self, Self::Plain)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plain" | "明文" => Ok(Self::Plain),
            "compatible" | "compat" | "兼容" => Ok(Self::Compatible),
            "safe" | "aes" | "安全" => Ok(Self::Safe),
            other => Err(format!("unknown mode {other:?}: expected plain, compatible or safe")),
        }
    }
}

/// An envelope is not usable (`-40002`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not acceptable XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// No `<Encrypt>` element.
    #[error("no <Encrypt> element in the body")]
    MissingEncrypt,
    /// An `<Encrypt>` element with nothing in it.
    #[error("the <Encrypt> element is empty")]
    EmptyEncrypt,
    /// A field of an encrypted reply is missing.
    #[error("no <{0}> element in the encrypted reply")]
    MissingField(&'static str),
}

impl EnvelopeError {
    /// Always [`ReferenceCode::ParseXml`].
    pub const fn reference_code(&self) -> ReferenceCode {
        ReferenceCode::ParseXml
    }
}

/// An inbound encrypted body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `ToUserName`, the account's original id, when present.
    pub to_user_name: Option<String>,
    /// The `Encrypt` text as sent (what `msg_signature` covers).
    pub encrypt: String,
    /// The whole body, whose plain fields (compatible mode) are not to be trusted.
    pub document: Document,
}

impl Envelope {
    /// Reads an encrypted POST body.
    ///
    /// # Errors
    /// [`EnvelopeError`] for unacceptable XML or a missing `Encrypt`.
    pub fn parse(body: &str) -> Result<Self, EnvelopeError> {
        let document = Document::parse(body)?;
        Self::from_document(document)
    }

    /// Reads an already parsed body.
    ///
    /// # Errors
    /// [`EnvelopeError::MissingEncrypt`] when there is no `Encrypt`,
    /// [`EnvelopeError::EmptyEncrypt`] when it is empty.
    pub fn from_document(document: Document) -> Result<Self, EnvelopeError> {
        let encrypt =
            document.root.text_of("Encrypt").map(str::trim).ok_or(EnvelopeError::MissingEncrypt)?.to_owned();
        if encrypt.is_empty() {
            return Err(EnvelopeError::EmptyEncrypt);
        }
        let to_user_name = document.root.text_of("ToUserName").map(str::to_owned);
        Ok(Self { to_user_name, encrypt, document })
    }

    /// Whether the body also carries plain message fields (compatible mode).
    pub fn has_plain_fields(&self) -> bool {
        self.document.root.child("MsgType").is_some()
    }

    /// Verifies `msg_signature` over the `Encrypt` text, then decrypts it.
    ///
    /// # Errors
    /// [`Error::Verify`] for a bad signature, [`Error::Decrypt`] when decryption fails.
    pub fn open(
        &self,
        cipher: &Cipher,
        token: &str,
        timestamp: &str,
        nonce: &str,
        msg_signature: &str,
    ) -> Result<String, Error> {
        signature::verify_msg(token, timestamp, nonce, &self.encrypt, msg_signature)?;
        Ok(cipher.decrypt(&self.encrypt)?)
    }
}

/// The encrypted reply envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedReply {
    /// The base64 ciphertext.
    pub encrypt: String,
    /// `sha1(sort(token, timestamp, nonce, encrypt))`.
    pub msg_signature: String,
    /// The reply's own timestamp.
    pub timestamp: String,
    /// The reply's own nonce.
    pub nonce: String,
}

impl EncryptedReply {
    /// Encrypts a reply body and signs it over its own timestamp and nonce.
    ///
    /// # Errors
    /// [`EncryptError`] when the message is too long to encrypt.
    pub fn seal(
        cipher: &Cipher,
        token: &str,
        xml: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<Self, EncryptError> {
        let encrypt = cipher.encrypt(xml, random)?;
        let msg_signature = signature::sign_msg(token, timestamp, nonce, &encrypt);
        Ok(Self { encrypt, msg_signature, timestamp: timestamp.to_owned(), nonce: nonce.to_owned() })
    }

    /// The envelope as XML.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.encrypt.len() + 200);
        out.push_str("<xml><Encrypt><![CDATA[");
        out.push_str(&self.encrypt);
        out.push_str("]]></Encrypt><MsgSignature><![CDATA[");
        out.push_str(&self.msg_signature);
        out.push_str("]]></MsgSignature><TimeStamp>");
        out.push_str(&self.timestamp);
        out.push_str("</TimeStamp><Nonce><![CDATA[");
        out.push_str(&self.nonce);
        out.push_str("]]></Nonce></xml>");
        out
    }

    /// Reads an encrypted reply (as a simulator of WeChat does).
    ///
    /// # Errors
    /// [`EnvelopeError`] for unacceptable XML or a missing field.
    pub fn parse(body: &str) -> Result<Self, EnvelopeError> {
        let doc = Document::parse(body)?;
        let field = |tag: &'static str| -> Result<String, EnvelopeError> {
            doc.root.text_of(tag).map(|s| s.trim().to_owned()).ok_or(EnvelopeError::MissingField(tag))
        };
        Ok(Self {
            encrypt: field("Encrypt").map_err(|_| EnvelopeError::MissingEncrypt)?,
            msg_signature: field("MsgSignature")?,
            timestamp: field("TimeStamp")?,
            nonce: field("Nonce")?,
        })
    }

    /// Verifies the reply's own signature and decrypts it.
    ///
    /// # Errors
    /// [`Error::Verify`] for a bad signature, [`Error::Decrypt`] when decryption fails.
    pub fn open(&self, cipher: &Cipher, token: &str) -> Result<String, Error> {
        signature::verify_msg(token, &self.timestamp, &self.nonce, &self.encrypt, &self.msg_signature)?;
        Ok(cipher.decrypt(&self.encrypt)?)
    }

    /// The envelope as an element tree.
    pub fn to_element(&self) -> Element {
        Element::new("xml")
            .with(Element::cdata("Encrypt", self.encrypt.as_str()))
            .with(Element::cdata("MsgSignature", self.msg_signature.as_str()))
            .with(Element::bare("TimeStamp", self.timestamp.as_str()))
            .with(Element::cdata("Nonce", self.nonce.as_str()))
    }
}
