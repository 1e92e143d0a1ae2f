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

use std::borrow::Cow;
use std::fmt;

use crate::crypto::{Cipher, EncryptError};
use crate::signature;
use crate::xml::{Attrs, Document, Element, Pieces, Sink, XmlError, flat, walk};
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
        let outline = Outline::of(&document.root);
        let encrypt = outline.encrypt()?.to_owned();
        let to_user_name = outline.to_user_name.map(Cow::into_owned);
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

/// What admission reads of an inbound body's top level — the first `ToUserName`, `Encrypt`
/// and `AgentID`, and whether there is a `MsgType` (compatible mode's plain fields) — found
/// in one pass of the parser without building the tree ([`Outline::scan`]), or read from a
/// tree ([`Outline::of`]). Texts are borrowed from the body where it allows.
#[derive(Debug, Default)]
pub(crate) struct Outline<'x> {
    /// The first `ToUserName`'s text.
    pub(crate) to_user_name: Option<Cow<'x, str>>,
    /// The first `Encrypt`'s text, as sent.
    pub(crate) encrypt: Option<Cow<'x, str>>,
    /// The first `AgentID`'s text (WeCom).
    pub(crate) agent_id: Option<Cow<'x, str>>,
    /// Whether a `MsgType` is there.
    pub(crate) msg_type: bool,
}

impl<'x> Outline<'x> {
    /// Parses `xml` as [`Document::parse`] does — the same documents are refused with the
    /// same errors — keeping only the outline.
    pub(crate) fn scan(xml: &'x str) -> Result<Self, XmlError> {
        // The usual envelope, a root with leaves only, without the general parser.
        let mut outline = Self::default();
        let flat = flat(xml, |name, text, _| {
            let slot = match name {
                "ToUserName" => &mut outline.to_user_name,
                "Encrypt" => &mut outline.encrypt,
                "AgentID" => &mut outline.agent_id,
                "MsgType" => {
                    outline.msg_type = true;
                    return;
                }
                _ => return,
            };
            if slot.is_none() {
                *slot = Some(Cow::Borrowed(text));
            }
        });
        if flat.is_some() {
            return Ok(outline);
        }
        let mut scan = Scan::default();
        walk(xml, &mut scan)?;
        Ok(scan.outline)
    }

    /// The outline of a parsed document.
    pub(crate) fn of(root: &'x Element) -> Self {
        let text = |name| root.text_of(name).map(Cow::Borrowed);
        Self {
            to_user_name: text("ToUserName"),
            encrypt: text("Encrypt"),
            agent_id: text("AgentID"),
            msg_type: root.child("MsgType").is_some(),
        }
    }

    /// The outline owning its texts.
    pub(crate) fn into_owned(self) -> Outline<'static> {
        let own = |t: Option<Cow<'x, str>>| t.map(|t| Cow::Owned(t.into_owned()));
        Outline {
            to_user_name: own(self.to_user_name),
            encrypt: own(self.encrypt),
            agent_id: own(self.agent_id),
            msg_type: self.msg_type,
        }
    }

    /// The `Encrypt` text, trimmed: what `msg_signature` covers and what decrypts.
    ///
    /// # Errors
    /// [`EnvelopeError::MissingEncrypt`] when there is no `Encrypt`,
    /// [`EnvelopeError::EmptyEncrypt`] when it is empty.
    pub(crate) fn encrypt(&self) -> Result<&str, EnvelopeError> {
        let encrypt = self.encrypt.as_deref().map(crate::trim).ok_or(EnvelopeError::MissingEncrypt)?;
        if encrypt.is_empty() {
            return Err(EnvelopeError::EmptyEncrypt);
        }
        Ok(encrypt)
    }
}

#[derive(Clone, Copy)]
enum Field {
    ToUserName,
    Encrypt,
    AgentId,
}

/// The receiver of [`walk`] behind [`Outline::scan`].
#[derive(Default)]
struct Scan<'x> {
    outline: Outline<'x>,
    /// The top-level element whose text is being read: which, its pieces, whether it has
    /// children, and how deep inside it the parser is.
    reading: Option<(Field, Pieces<'x>, bool, usize)>,
}

impl<'x> Scan<'x> {
    fn slot(&mut self, field: Field) -> &mut Option<Cow<'x, str>> {
        match field {
            Field::ToUserName => &mut self.outline.to_user_name,
            Field::Encrypt => &mut self.outline.encrypt,
            Field::AgentId => &mut self.outline.agent_id,
        }
    }
}

impl<'x> Sink<'x> for Scan<'x> {
    fn open(&mut self, depth: usize, name: &'x str, _attrs: Attrs, empty: bool) {
        if let Some((_, _, has_children, inside)) = &mut self.reading {
            *has_children = true;
            if !empty {
                *inside += 1;
            }
            return;
        }
        if depth != 1 {
            return;
        }
        let field = match name {
            "ToUserName" => Field::ToUserName,
            "Encrypt" => Field::Encrypt,
            "AgentID" => Field::AgentId,
            "MsgType" => {
                self.outline.msg_type = true;
                return;
            }
            _ => return,
        };
        if self.slot(field).is_some() {
            return;
        }
        if empty {
            *self.slot(field) = Some(Cow::Borrowed(""));
        } else {
            self.reading = Some((field, Pieces::default(), false, 0));
        }
    }

    fn text(&mut self, piece: Cow<'x, str>, cdata: bool) {
        if let Some((_, pieces, has_children, 0)) = &mut self.reading {
            pieces.push(piece, cdata, *has_children);
        }
    }

    fn close(&mut self) {
        match self.reading.take() {
            Some((field, pieces, has_children, 0)) => {
                *self.slot(field) = Some(pieces.finish(has_children).0);
            }
            Some((field, pieces, has_children, inside)) => {
                self.reading = Some((field, pieces, has_children, inside - 1));
            }
            None => {}
        }
    }
}

/// The markup of an encrypted reply, around its encrypt text, signature, timestamp and
/// nonce (written as they are: base64, hex and the server's own digits).
const ENVELOPE: [&str; 5] = [
    "<xml><Encrypt><![CDATA[",
    "]]></Encrypt><MsgSignature><![CDATA[",
    "]]></MsgSignature><TimeStamp>",
    "</TimeStamp><Nonce><![CDATA[",
    "]]></Nonce></xml>",
];

/// The bytes of [`ENVELOPE`].
const ENVELOPE_MARKUP: usize =
    ENVELOPE[0].len() + ENVELOPE[1].len() + ENVELOPE[2].len() + ENVELOPE[3].len() + ENVELOPE[4].len();

/// An encrypted reply after its signature.
fn write_envelope_tail(out: &mut String, timestamp: &str, nonce: &str) {
    out.push_str(ENVELOPE[2]);
    out.push_str(timestamp);
    out.push_str(ENVELOPE[3]);
    out.push_str(nonce);
    out.push_str(ENVELOPE[4]);
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

    /// [`EncryptedReply::seal`], then [`EncryptedReply::to_xml`], in one string: the
    /// ciphertext is encoded straight into the envelope and signed where it lies. The same
    /// bytes as `seal(..)?.to_xml()`.
    ///
    /// # Errors
    /// [`EncryptError`] when the message is too long to encrypt.
    pub fn seal_xml(
        cipher: &Cipher,
        token: &str,
        xml: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<String, EncryptError> {
        let encrypt_len = cipher.encrypted_len(xml.len());
        let mut out =
            String::with_capacity(ENVELOPE_MARKUP + encrypt_len + 40 + timestamp.len() + nonce.len());
        out.push_str(ENVELOPE[0]);
        let start = out.len();
        cipher.encrypt_into(xml, random, &mut out)?;
        let digest = signature::msg_digest(token, timestamp, nonce, &out[start..]);
        out.push_str(ENVELOPE[1]);
        signature::hex_into(&digest, &mut out);
        write_envelope_tail(&mut out, timestamp, nonce);
        Ok(out)
    }

    /// The envelope as XML.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(
            ENVELOPE_MARKUP
                + self.encrypt.len()
                + self.msg_signature.len()
                + self.timestamp.len()
                + self.nonce.len(),
        );
        out.push_str(ENVELOPE[0]);
        out.push_str(&self.encrypt);
        out.push_str(ENVELOPE[1]);
        out.push_str(&self.msg_signature);
        write_envelope_tail(&mut out, &self.timestamp, &self.nonce);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The outline found in one pass is the one read from the tree, and both refuse the same
    /// documents with the same error.
    fn same_outline(xml: &str) {
        let scanned = Outline::scan(xml);
        let parsed = Document::parse(xml);
        match (&scanned, &parsed) {
            (Ok(scanned), Ok(doc)) => {
                let read = Outline::of(&doc.root);
                assert_eq!(scanned.to_user_name, read.to_user_name, "{xml:?}");
                assert_eq!(scanned.encrypt, read.encrypt, "{xml:?}");
                assert_eq!(scanned.agent_id, read.agent_id, "{xml:?}");
                assert_eq!(scanned.msg_type, read.msg_type, "{xml:?}");
                assert_eq!(scanned.encrypt(), read.encrypt(), "{xml:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{xml:?}"),
            _ => panic!("{xml:?}: scanned {scanned:?}, parsed {parsed:?}"),
        }
    }

    #[test]
    fn outline_reads_the_first_top_level_fields() {
        let xml = "<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  <Encrypt>\n  <![CDATA[abc]]>\n  </Encrypt>\n                     <Encrypt>second</Encrypt><AgentID>7</AgentID><MsgType/></xml>";
        let outline = Outline::scan(xml).unwrap();
        assert_eq!(outline.to_user_name.as_deref(), Some("gh_1"));
        assert_eq!(outline.encrypt(), Ok("abc"));
        assert_eq!(outline.agent_id.as_deref(), Some("7"));
        assert!(outline.msg_type);
        // Borrowed from the body: a single text or CDATA section is not copied.
        assert!(matches!(outline.encrypt, Some(Cow::Borrowed(_))));
        for xml in [
            xml,
            "<xml><a><Encrypt>deep</Encrypt></a></xml>",
            "<xml><Encrypt/></xml>",
            "<xml><Encrypt> </Encrypt></xml>",
            "<xml><Encrypt>a<b>c</b>d</Encrypt><ToUserName>x&amp;y</ToUserName></xml>",
            "<xml><Encrypt>a<b/>d<c><Encrypt>e</Encrypt></c>f</Encrypt></xml>",
            "<xml><Encrypt>\n<b/>\n</Encrypt></xml>",
            "<Encrypt>root</Encrypt>",
            "<xml><Encrypt>x</Encrypt></xml><trailing/>",
            "<xml><Encrypt>x</Other></xml>",
            "<!DOCTYPE x><xml/>",
        ] {
            same_outline(xml);
        }
        assert_eq!(
            Outline::scan("<xml><a><Encrypt>x</Encrypt></a></xml>").unwrap().encrypt(),
            Err(EnvelopeError::MissingEncrypt)
        );
        assert_eq!(
            Outline::scan("<xml><Encrypt> </Encrypt></xml>").unwrap().encrypt(),
            Err(EnvelopeError::EmptyEncrypt)
        );
    }

    /// The outline through the general parser only.
    fn walked(xml: &str) -> Result<Outline<'_>, XmlError> {
        let mut scan = Scan::default();
        walk(xml, &mut scan)?;
        Ok(scan.outline)
    }

    /// Where [`flat`] reads a body, its outline is the general parser's.
    fn same_as_walked(xml: &str) {
        let scanned = Outline::scan(xml);
        let walked = walked(xml);
        match (&scanned, &walked) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.to_user_name, b.to_user_name, "{xml:?}");
                assert_eq!(a.encrypt, b.encrypt, "{xml:?}");
                assert_eq!(a.agent_id, b.agent_id, "{xml:?}");
                assert_eq!(a.msg_type, b.msg_type, "{xml:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{xml:?}"),
            _ => panic!("{xml:?}: scanned {scanned:?}, walked {walked:?}"),
        }
    }

    proptest! {
        #[test]
        fn flat_outline_is_the_walked_one(
            ws in "[ \n]{0,2}",
            leaves in proptest::collection::vec(
                ("(ToUserName|Encrypt|AgentID|MsgType|a_1)", "[a-zA-Z0-9+/= \n]{0,8}", any::<bool>()),
                0..6,
            ),
        ) {
            let mut xml = format!("{ws}<xml>");
            for (name, text, cdata) in &leaves {
                if *cdata {
                    xml.push_str(&format!("{ws}<{name}><![CDATA[{text}]]></{name}>"));
                } else {
                    xml.push_str(&format!("<{name}>{text}</{name}>{ws}"));
                }
            }
            xml.push_str(&format!("</xml>{ws}"));
            same_as_walked(&xml);
        }

        #[test]
        fn outline_agrees_with_the_tree(
            inner in "(<(Encrypt|ToUserName|AgentID|MsgType|a)>|</(Encrypt|ToUserName|AgentID|MsgType|a)>|<(Encrypt|a)/>|<!\\[CDATA\\[|\\]\\]>|&(amp|lt|x|#65);|[a-z \n]{0,3}){0,24}",
        ) {
            same_outline(&inner);
            same_outline(&format!("<xml>{inner}</xml>"));
            same_as_walked(&inner);
            same_as_walked(&format!("<xml>{inner}</xml>"));
        }

        #[test]
        fn outline_agrees_on_any_input(input in any::<String>()) {
            same_outline(&input);
            same_as_walked(&input);
        }
    }
}
