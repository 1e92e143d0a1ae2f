//! The Open Platform's (第三方平台, "component") authorization pushes.
//!
//! WeChat posts these to a third-party platform's 授权事件接收 URL: encrypted bodies
//! `<xml><AppId>component appid</AppId><Encrypt>…</Encrypt></xml>` signed like a safe-mode
//! message (`signature`, `msg_signature`, `encrypt_type=aes`) with the platform's Token,
//! encrypted with its EncodingAESKey for the component appid (the ReceiveId). The
//! plaintext has `InfoType` where a message has `MsgType`. Admission is the ordinary
//! [`admit`](crate::admission::admit) with an [`Account`](crate::admission::Account) whose
//! appid is the component appid; [`ComponentPush::parse`] reads what it accepted; the
//! answer is `success`. [`Platform::component_post`](crate::wechat::Platform::component_post)
//! seals one as WeChat does.
//!
//! ```
//! use wemp_proto::component::{ComponentEvent, ComponentPush};
//! let push = ComponentPush::parse(
//!     "<xml><AppId>wxcomponent</AppId><CreateTime>1413192605</CreateTime>\
//!      <InfoType>component_verify_ticket</InfoType>\
//!      <ComponentVerifyTicket>ticket@@@abc</ComponentVerifyTicket></xml>",
//! )?;
//! assert_eq!(push.component_appid, "wxcomponent");
//! let ComponentEvent::VerifyTicket { ticket } = &push.event else { panic!() };
//! assert_eq!(ticket.expose(), "ticket@@@abc");
//! # Ok::<(), wemp_proto::component::ComponentError>(())
//! ```

use crate::Secret;
use crate::xml::{Document, Element, RawXml, XmlError};

/// `InfoType` of the ticket WeChat pushes every 10 minutes.
pub const VERIFY_TICKET: &str = "component_verify_ticket";
/// `InfoType` of a new authorization.
pub const AUTHORIZED: &str = "authorized";
/// `InfoType` of a changed authorization (other function scopes).
pub const UPDATE_AUTHORIZED: &str = "updateauthorized";
/// `InfoType` of a withdrawn authorization.
pub const UNAUTHORIZED: &str = "unauthorized";

/// One authorization push, decrypted and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentPush {
    /// `AppId`: the third-party platform's own appid.
    pub component_appid: String,
    /// `CreateTime`, Unix seconds (0 when absent).
    pub create_time: i64,
    /// What the push says.
    pub event: ComponentEvent,
}

/// An authorization (new or changed) as the push reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `AuthorizerAppid`: the account that authorized the platform.
    pub authorizer_appid: String,
    /// `AuthorizationCode`: exchange it with `api_query_auth` for the authorizer's tokens.
    /// `Debug` shows only its length.
    pub authorization_code: Secret,
    /// `AuthorizationCodeExpiredTime`, Unix seconds (0 when absent).
    pub expires_at: i64,
    /// `PreAuthCode`: the pre-authorization code the authorization page was opened with.
    pub pre_auth_code: String,
}

/// What an authorization push says, by `InfoType`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ComponentEvent {
    /// `component_verify_ticket`: the ticket for `api_component_token` (valid about 12 h).
    VerifyTicket {
        /// `ComponentVerifyTicket`. `Debug` shows only its length.
        ticket: Secret,
    },
    /// `authorized`: an account authorized the platform.
    Authorized(Grant),
    /// `updateauthorized`: an account changed what it authorized.
    UpdateAuthorized(Grant),
    /// `unauthorized`: an account withdrew its authorization.
    Unauthorized {
        /// `AuthorizerAppid`.
        authorizer_appid: String,
    },
    /// Any other `InfoType` (fast registration, product notifications …), or a known one
    /// missing a field it needs: every field and the raw XML, nothing dropped.
    Unknown {
        /// `InfoType` as sent.
        info_type: String,
        /// Why a known `InfoType` fell back here (the field that was missing), if it did.
        decode_error: Option<String>,
        /// The whole document.
        fields: Element,
        /// Exactly what arrived (after decryption).
        raw: RawXml,
    },
}

impl ComponentEvent {
    /// The `InfoType` this event is sent with.
    pub fn info_type(&self) -> &str {
        match self {
            Self::VerifyTicket { .. } => VERIFY_TICKET,
            Self::Authorized(_) => AUTHORIZED,
            Self::UpdateAuthorized(_) => UPDATE_AUTHORIZED,
            Self::Unauthorized { .. } => UNAUTHORIZED,
            Self::Unknown { info_type, .. } => info_type,
        }
    }

    /// The authorizer the event is about (none for the ticket and unknown events).
    pub fn authorizer_appid(&self) -> Option<&str> {
        match self {
            Self::Authorized(g) | Self::UpdateAuthorized(g) => Some(&g.authorizer_appid),
            Self::Unauthorized { authorizer_appid } => Some(authorizer_appid),
            _ => None,
        }
    }
}

/// A body that is not an authorization push.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// Not acceptable XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// No `<AppId>`, or it is empty.
    #[error("no <AppId> in the authorization push (the third-party platform's appid)")]
    MissingAppId,
    /// No `<InfoType>`, or it is empty: perhaps an ordinary message (`MsgType`) sent to the
    /// authorization event URL.
    #[error("no <InfoType> in the authorization push{hint}")]
    MissingInfoType {
        /// ` (it has a MsgType: …)` when the body is a message.
        hint: String,
    },
}

impl ComponentPush {
    /// Reads a decrypted push.
    ///
    /// # Errors
    /// [`ComponentError`] when the XML is not acceptable or `AppId` / `InfoType` is missing.
    /// A known `InfoType` lacking one of its fields is read as [`ComponentEvent::Unknown`]
    /// with the reason, not refused.
    pub fn parse(xml: &str) -> Result<Self, ComponentError> {
        Self::from_document(&Document::parse(xml)?)
    }

    /// Reads an already parsed push (what admission's verdict holds).
    ///
    /// # Errors
    /// As [`ComponentPush::parse`].
    pub fn from_document(doc: &Document) -> Result<Self, ComponentError> {
        let root = &doc.root;
        let text = |name: &str| root.text_of(name).map(str::trim).filter(|t| !t.is_empty());
        let component_appid = text("AppId").ok_or(ComponentError::MissingAppId)?.to_owned();
        let Some(info_type) = text("InfoType") else {
            let hint = text("MsgType").map(|m| format!(" (it has a MsgType: {m})")).unwrap_or_default();
            return Err(ComponentError::MissingInfoType { hint });
        };
        let create_time = text("CreateTime").and_then(|t| t.parse().ok()).unwrap_or(0);
        let unknown = |decode_error: Option<String>| ComponentEvent::Unknown {
            info_type: info_type.to_owned(),
            decode_error,
            fields: root.clone(),
            raw: doc.raw.clone(),
        };
        let need = |name: &'static str| text(name).ok_or_else(|| format!("missing <{name}>"));
        let grant = || -> Result<Grant, String> {
            Ok(Grant {
                authorizer_appid: need("AuthorizerAppid")?.to_owned(),
                authorization_code: Secret::new(need("AuthorizationCode")?),
                expires_at: text("AuthorizationCodeExpiredTime").and_then(|t| t.parse().ok()).unwrap_or(0),
                pre_auth_code: text("PreAuthCode").unwrap_or_default().to_owned(),
            })
        };
        let event = match info_type {
            VERIFY_TICKET => match need("ComponentVerifyTicket") {
                Ok(t) => ComponentEvent::VerifyTicket { ticket: Secret::new(t) },
                Err(e) => unknown(Some(e)),
            },
            AUTHORIZED => grant().map_or_else(|e| unknown(Some(e)), ComponentEvent::Authorized),
            UPDATE_AUTHORIZED => grant().map_or_else(|e| unknown(Some(e)), ComponentEvent::UpdateAuthorized),
            UNAUTHORIZED => match need("AuthorizerAppid") {
                Ok(a) => ComponentEvent::Unauthorized { authorizer_appid: a.to_owned() },
                Err(e) => unknown(Some(e)),
            },
            _ => unknown(None),
        };
        Ok(Self { component_appid, create_time, event })
    }

    /// The plaintext XML as WeChat writes it (what [`ComponentPush::parse`] reads back; an
    /// unknown event is written exactly as it arrived).
    pub fn to_xml(&self) -> String {
        if let ComponentEvent::Unknown { raw, .. } = &self.event {
            return raw.as_str().to_owned();
        }
        let mut root = Element::new("xml")
            .with(Element::cdata("AppId", &self.component_appid))
            .with(Element::bare("CreateTime", self.create_time.to_string()))
            .with(Element::cdata("InfoType", self.event.info_type()));
        match &self.event {
            ComponentEvent::VerifyTicket { ticket } => {
                root = root.with(Element::cdata("ComponentVerifyTicket", ticket.expose()));
            }
            ComponentEvent::Authorized(g) | ComponentEvent::UpdateAuthorized(g) => {
                root = root
                    .with(Element::cdata("AuthorizerAppid", &g.authorizer_appid))
                    .with(Element::cdata("AuthorizationCode", g.authorization_code.expose()))
                    .with(Element::bare("AuthorizationCodeExpiredTime", g.expires_at.to_string()))
                    .with(Element::cdata("PreAuthCode", &g.pre_auth_code));
            }
            ComponentEvent::Unauthorized { authorizer_appid } => {
                root = root.with(Element::cdata("AuthorizerAppid", authorizer_appid));
            }
            ComponentEvent::Unknown { .. } => {}
        }
        root.to_xml()
    }
}

/// The elements of a push that hold a credential: the ticket and the authorization code.
const SECRET_ELEMENTS: [&str; 2] = ["ComponentVerifyTicket", "AuthorizationCode"];

/// `xml` (a push's plaintext) with the ticket and the authorization code masked as
/// `***`, for logs and the message log.
///
/// ```
/// let xml = "<xml><InfoType>authorized</InfoType><AuthorizationCode><![CDATA[code@@@x]]></AuthorizationCode></xml>";
/// assert_eq!(
///     wemp_proto::component::redacted(xml),
///     "<xml><InfoType>authorized</InfoType><AuthorizationCode>***</AuthorizationCode></xml>"
/// );
/// ```
pub fn redacted(xml: &str) -> String {
    let mut out = xml.to_owned();
    for tag in SECRET_ELEMENTS {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut from = 0;
        while let Some(start) = out[from..].find(&open).map(|i| from + i + open.len()) {
            let Some(end) = out[start..].find(&close).map(|i| start + i) else { break };
            out.replace_range(start..end, "***");
            from = start + 3 + close.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped as the official documentation's decrypted examples (values are ours).
    const TICKET: &str = "<xml>\n<AppId>wx3a7d1c0b9e8f6a21</AppId>\n<CreateTime>1413192605</CreateTime>\n\
        <InfoType>component_verify_ticket</InfoType>\n\
        <ComponentVerifyTicket>ticket@@@Hs9kXq2LmT</ComponentVerifyTicket>\n</xml>";
    const AUTHORIZED_XML: &str = "<xml><AppId><![CDATA[wx3a7d1c0b9e8f6a21]]></AppId>\
        <CreateTime>1413192760</CreateTime><InfoType><![CDATA[authorized]]></InfoType>\
        <AuthorizerAppid><![CDATA[wxf8b4f85f3a794e77]]></AuthorizerAppid>\
        <AuthorizationCode><![CDATA[queryauthcode@@@cP4vX]]></AuthorizationCode>\
        <AuthorizationCodeExpiredTime>1413196360</AuthorizationCodeExpiredTime>\
        <PreAuthCode><![CDATA[preauthcode@@@Bq7Ri]]></PreAuthCode></xml>";

    #[test]
    fn verify_ticket() {
        let p = ComponentPush::parse(TICKET).unwrap();
        assert_eq!((p.component_appid.as_str(), p.create_time), ("wx3a7d1c0b9e8f6a21", 1_413_192_605));
        let ComponentEvent::VerifyTicket { ticket } = &p.event else { panic!("{:?}", p.event) };
        assert_eq!(ticket.expose(), "ticket@@@Hs9kXq2LmT");
        assert!(!format!("{p:?}").contains("Hs9kXq2LmT"), "Debug hides the ticket");
        assert_eq!(ComponentPush::parse(&p.to_xml()).unwrap(), p);
    }

    #[test]
    fn authorized_and_update() {
        let p = ComponentPush::parse(AUTHORIZED_XML).unwrap();
        let ComponentEvent::Authorized(g) = &p.event else { panic!("{:?}", p.event) };
        assert_eq!(g.authorizer_appid, "wxf8b4f85f3a794e77");
        assert_eq!(g.authorization_code.expose(), "queryauthcode@@@cP4vX");
        assert_eq!(g.expires_at, 1_413_196_360);
        assert_eq!(g.pre_auth_code, "preauthcode@@@Bq7Ri");
        assert_eq!(p.event.authorizer_appid(), Some("wxf8b4f85f3a794e77"));
        assert_eq!(ComponentPush::parse(&p.to_xml()).unwrap(), p);

        let update = AUTHORIZED_XML.replace("[authorized]", "[updateauthorized]");
        let p = ComponentPush::parse(&update).unwrap();
        assert!(
            matches!(&p.event, ComponentEvent::UpdateAuthorized(g) if g.authorizer_appid == "wxf8b4f85f3a794e77")
        );
        assert_eq!(p.event.info_type(), UPDATE_AUTHORIZED);
    }

    #[test]
    fn unauthorized() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1413192760</CreateTime><InfoType>unauthorized</InfoType>\
            <AuthorizerAppid>wxa</AuthorizerAppid></xml>";
        let p = ComponentPush::parse(xml).unwrap();
        assert_eq!(p.event, ComponentEvent::Unauthorized { authorizer_appid: "wxa".into() });
        assert_eq!(ComponentPush::parse(&p.to_xml()).unwrap(), p);
    }

    #[test]
    fn unknown_info_types_keep_everything() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1535442403</CreateTime>\
            <InfoType>notify_third_fasteregister</InfoType><appid>wxnew</appid><status>0</status>\
            <info><name>公司</name></info></xml>";
        let p = ComponentPush::parse(xml).unwrap();
        let ComponentEvent::Unknown { info_type, decode_error, fields, raw } = &p.event else { panic!() };
        assert_eq!(info_type, "notify_third_fasteregister");
        assert_eq!(*decode_error, None);
        assert_eq!(fields.child("info").and_then(|i| i.text_of("name")), Some("公司"));
        assert_eq!(raw.as_str(), xml);
        assert_eq!(p.to_xml(), xml);
    }

    #[test]
    fn a_known_type_missing_a_field_is_unknown_with_the_reason() {
        let xml = "<xml><AppId>wxc</AppId><InfoType>authorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>";
        let p = ComponentPush::parse(xml).unwrap();
        assert_eq!(p.create_time, 0);
        let ComponentEvent::Unknown { info_type, decode_error, .. } = &p.event else { panic!() };
        assert_eq!(info_type, "authorized");
        assert_eq!(decode_error.as_deref(), Some("missing <AuthorizationCode>"));
    }

    #[test]
    fn not_a_push() {
        assert_eq!(
            ComponentPush::parse("<xml><InfoType>authorized</InfoType></xml>"),
            Err(ComponentError::MissingAppId)
        );
        let msg = "<xml><AppId>wxc</AppId><MsgType>text</MsgType></xml>";
        let err = ComponentPush::parse(msg).unwrap_err();
        assert_eq!(err.to_string(), "no <InfoType> in the authorization push (it has a MsgType: text)");
        assert!(matches!(ComponentPush::parse("<xml>"), Err(ComponentError::Xml(_))));
    }
}
