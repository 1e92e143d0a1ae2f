//! The WeChat side of the callback protocol: what the platform sends and how it reads the
//! answer.
//!
//! A server's code receives callbacks; this module plays the other end, sans-IO:
//! - [`Platform`] signs and encrypts a callback exactly as WeChat does and opens the reply,
//!   checking its signature;
//! - [`compose`] builds every message and event a user can send ([`Message`]);
//! - [`judge`] decides what the user sees: the reply, nothing, or WeChat's error banner
//!   ([`ERROR_BANNER`]), with warnings for what deviates from the docs but WeChat accepts.
//!
//! `wemp sim`, the console's chat simulator and the tests all use it (through one HTTP
//! driver, `wemp_client::callback`), so the server is always exercised against one
//! description of the platform. Like `async-stripe`'s test-header generator, it is
//! production code because local tools need it.
//!
//! ```
//! use wemp_proto::{Cipher, Mode, wechat::Platform};
//! let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")?;
//! let platform = Platform::new("spamtest").with_cipher(cipher);
//! let req = platform.post(Mode::Safe, "<xml><MsgType>text</MsgType></xml>", "o1", "gh_1", "1409735669", "42", [1; 16])?;
//! assert!(req.query_string().contains("encrypt_type=aes"));
//! assert!(req.body.contains("<Encrypt>"));
//! # Ok::<(), wemp_proto::Error>(())
//! ```

pub mod compose;
pub mod judge;

pub use compose::{EventMessage, Message};
pub use judge::{ERROR_BANNER, Judgement, Problem, Unreadable};

use crate::Error;
use crate::crypto::Cipher;
use crate::envelope::{EncryptedReply, Mode};
use crate::reply::ReplyMessage;
use crate::signature;
use crate::xml::{Document, Element};

/// The platform side of one account: its token and, for encrypted modes, its cipher.
#[derive(Clone, Debug)]
pub struct Platform {
    token: String,
    cipher: Option<Cipher>,
}

/// A signed request as WeChat would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    /// Query parameters in WeChat's order.
    pub query: Vec<(String, String)>,
    /// The body (empty for the verification GET).
    pub body: String,
}

impl SignedRequest {
    /// The query string, percent-encoded.
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The value of one query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A server's reply as the platform reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedReply {
    /// The decoded reply.
    pub message: ReplyMessage,
    /// Whether the reply came encrypted.
    pub encrypted: bool,
    /// The reply XML (decrypted when it was encrypted).
    pub xml: String,
}

impl Platform {
    /// A platform for an account with this token (plain mode only until a cipher is added).
    pub fn new(token: impl Into<String>) -> Self {
        Self { token: token.into(), cipher: None }
    }

    /// Adds the account's cipher, for compatible and safe mode.
    #[must_use]
    pub fn with_cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cipher, if any.
    pub fn cipher(&self) -> Option<&Cipher> {
        self.cipher.as_ref()
    }

    /// The URL verification GET's query.
    pub fn verification(&self, timestamp: &str, nonce: &str, echostr: &str) -> SignedRequest {
        let signature = signature::sign(&self.token, timestamp, nonce);
        SignedRequest {
            query: vec![
                ("signature".into(), signature),
                ("echostr".into(), echostr.into()),
                ("timestamp".into(), timestamp.into()),
                ("nonce".into(), nonce.into()),
            ],
            body: String::new(),
        }
    }

    /// A message POST in the given mode. `to` is the account's `gh_…` id, put in the
    /// envelope's `ToUserName` in encrypted modes.
    ///
    /// # Errors
    /// [`Error::NoCipher`] for an encrypted mode without a cipher; [`Error::Xml`] when `xml`
    /// is not acceptable in compatible mode (its fields are copied into the envelope).
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        &self,
        mode: Mode,
        xml: &str,
        openid: &str,
        to: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, Error> {
        let signature = signature::sign(&self.token, timestamp, nonce);
        let mut query = vec![
            ("signature".to_owned(), signature),
            ("timestamp".to_owned(), timestamp.to_owned()),
            ("nonce".to_owned(), nonce.to_owned()),
            ("openid".to_owned(), openid.to_owned()),
        ];
        if mode == Mode::Plain {
            return Ok(SignedRequest { query, body: xml.to_owned() });
        }
        let (_, encrypt, msg_signature) = self.seal(xml, timestamp, nonce, random)?;
        query.push(("encrypt_type".into(), "aes".into()));
        query.push(("msg_signature".into(), msg_signature));
        let body = match mode {
            Mode::Safe => Element::new("xml")
                .with(Element::cdata("ToUserName", to))
                .with(Element::cdata("Encrypt", encrypt))
                .to_xml(),
            _ => {
                let mut root = Document::parse(xml)?.root;
                root.children.push(Element::cdata("Encrypt", encrypt));
                root.to_xml()
            }
        };
        Ok(SignedRequest { query, body })
    }

    /// Encrypts `plaintext` with the cipher and signs the result with `msg_signature`.
    fn seal(
        &self,
        plaintext: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<(&Cipher, String, String), Error> {
        let cipher = self.cipher.as_ref().ok_or(Error::NoCipher)?;
        let encrypt = cipher.encrypt(plaintext, random)?;
        let msg_signature = signature::sign_msg(&self.token, timestamp, nonce, &encrypt);
        Ok((cipher, encrypt, msg_signature))
    }

    /// An Open Platform authorization push (`component_verify_ticket`, `authorized` …; see
    /// [`crate::component`]) as WeChat posts it to the 授权事件接收 URL: `xml` encrypted for
    /// the component appid (the cipher's appid), signed with `signature` and `msg_signature`
    /// (`encrypt_type=aes`), in the envelope `<xml><AppId>…</AppId><Encrypt>…</Encrypt></xml>`.
    ///
    /// ```
    /// use wemp_proto::{Cipher, component::ComponentPush, wechat::Platform};
    /// let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxcomponent")?;
    /// let platform = Platform::new("componenttoken").with_cipher(cipher);
    /// let xml = "<xml><AppId>wxcomponent</AppId><CreateTime>1</CreateTime>\
    ///            <InfoType>unauthorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>";
    /// let req = platform.component_post(xml, "1409735669", "42", [3; 16])?;
    /// assert!(req.body.starts_with("<xml><AppId><![CDATA[wxcomponent]]></AppId><Encrypt>"));
    /// assert_eq!(req.param("encrypt_type"), Some("aes"));
    /// # Ok::<(), wemp_proto::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoCipher`] without a cipher.
    pub fn component_post(
        &self,
        xml: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, Error> {
        let (cipher, encrypt, msg_signature) = self.seal(xml, timestamp, nonce, random)?;
        Ok(SignedRequest {
            query: vec![
                ("signature".into(), signature::sign(&self.token, timestamp, nonce)),
                ("timestamp".into(), timestamp.into()),
                ("nonce".into(), nonce.into()),
                ("encrypt_type".into(), "aes".into()),
                ("msg_signature".into(), msg_signature),
            ],
            body: Element::new("xml")
                .with(Element::cdata("AppId", cipher.appid()))
                .with(Element::cdata("Encrypt", encrypt))
                .to_xml(),
        })
    }

    /// A WeCom (企业微信) URL verification GET: `echostr` is encrypted for the corpid (the
    /// cipher's appid) and `msg_signature` covers the encrypted text; the server must answer
    /// the plaintext `echostr`.
    ///
    /// # Errors
    /// [`Error::NoCipher`] without a cipher.
    pub fn wecom_verification(
        &self,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, Error> {
        let (_, encrypted, msg_signature) = self.seal(echostr, timestamp, nonce, random)?;
        Ok(SignedRequest {
            query: vec![
                ("msg_signature".into(), msg_signature),
                ("timestamp".into(), timestamp.into()),
                ("nonce".into(), nonce.into()),
                ("echostr".into(), encrypted),
            ],
            body: String::new(),
        })
    }

    /// A WeCom message POST: always encrypted for the corpid (the cipher's appid), signed
    /// with `msg_signature` only, the envelope carrying `ToUserName` (the corpid), `Encrypt`
    /// and `AgentID` (when `agentid` is given).
    ///
    /// # Errors
    /// [`Error::NoCipher`] without a cipher.
    pub fn wecom_post(
        &self,
        xml: &str,
        agentid: Option<&str>,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, Error> {
        let (cipher, encrypt, msg_signature) = self.seal(xml, timestamp, nonce, random)?;
        let mut envelope = Element::new("xml")
            .with(Element::cdata("ToUserName", cipher.appid()))
            .with(Element::cdata("Encrypt", encrypt));
        if let Some(agent) = agentid {
            envelope = envelope.with(Element::cdata("AgentID", agent));
        }
        Ok(SignedRequest {
            query: vec![
                ("msg_signature".into(), msg_signature),
                ("timestamp".into(), timestamp.into()),
                ("nonce".into(), nonce.into()),
            ],
            body: envelope.to_xml(),
        })
    }

    /// A Mini Program push in the JSON data format: `message_xml` (a message as
    /// [`Message::build`] writes it) sent as JSON, plain, or in safe mode as
    /// `{"ToUserName": to, "Encrypt": …}` with the encrypted JSON inside. Signed as
    /// [`Platform::post`] signs (`signature`, and `msg_signature` in safe mode).
    ///
    /// # Errors
    /// [`Error::Xml`] when `message_xml` is not acceptable XML; [`Error::NoCipher`] for safe
    /// mode without a cipher.
    #[allow(clippy::too_many_arguments)]
    pub fn post_json(
        &self,
        mode: Mode,
        message_xml: &str,
        openid: &str,
        to: &str,
        timestamp: &str,
        nonce: &str,
        random: [u8; 16],
    ) -> Result<SignedRequest, Error> {
        let message = Document::parse(message_xml)?.root;
        let json = message.to_json();
        let mut req = self.post(Mode::Plain, &json, openid, to, timestamp, nonce, random)?;
        if mode == Mode::Plain {
            return Ok(req);
        }
        let (_, encrypt, msg_signature) = self.seal(&json, timestamp, nonce, random)?;
        req.query.push(("encrypt_type".into(), "aes".into()));
        req.query.push(("msg_signature".into(), msg_signature));
        let envelope = match mode {
            Mode::Safe => Element::new("xml").with(Element::cdata("ToUserName", to)),
            _ => message,
        };
        req.body = envelope.with(Element::cdata("Encrypt", encrypt)).to_json();
        Ok(req)
    }

    /// Reads a server's answer: an encrypted envelope is verified and decrypted; anything
    /// else is read as a plain reply (`success` and an empty body mean no reply).
    ///
    /// Whether the reply was encrypted is reported, not judged: a caller that sent an
    /// encrypted request checks [`OpenedReply::encrypted`] (WeChat expects the reply in the
    /// request's mode).
    ///
    /// # Errors
    /// [`Error`] when the envelope's signature is wrong, it does not decrypt, or the reply is
    /// not a valid passive reply.
    pub fn open_reply(&self, body: &str) -> Result<OpenedReply, Error> {
        let trimmed = body.trim();
        let looks_encrypted = trimmed.starts_with('<')
            && Document::parse(trimmed).map(|d| d.root.child("Encrypt").is_some()).unwrap_or(false);
        if looks_encrypted {
            let envelope = EncryptedReply::parse(trimmed)?;
            let cipher = self.cipher.as_ref().ok_or(Error::NoCipher)?;
            let xml = envelope.open(cipher, &self.token)?;
            let message = ReplyMessage::parse(&xml)?;
            return Ok(OpenedReply { message, encrypted: true, xml });
        }
        let message = ReplyMessage::parse(body)?;
        Ok(OpenedReply { message, encrypted: false, xml: body.to_owned() })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    percent_encode_into(&mut out, s);
    out
}

/// [`percent_encode`], appending to `out`.
pub fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}
