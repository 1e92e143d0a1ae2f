//! Events (`MsgType=event`): the [`Event`] enum, its open [`EventKind`] and the event types.
//!
//! `Event` values are matched case-insensitively (WeChat sends `subscribe` but `SCAN`);
//! an event not modelled here arrives as [`Event::Unknown`] with every field and the raw XML.
//!
//! Card (卡券), 扫一扫 product, e-invoice, store and Wi-Fi, and Mini Program events live in
//! their own files and are re-exported here. `docs/events.md` lists every event name peers
//! type and which of them wemp types.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>

use std::fmt;

use crate::field::{FieldError, Fields, record, tag, top_level};
use crate::message::{Header, OtherKind, Unknown};
use crate::xml::Document;

mod card;
mod invoice;
mod product;
mod store;
mod wecom;
mod wxa;

pub use invoice::UserAuthorizeInvoice;
pub use product::{
    UserScanProduct, UserScanProductAsync, UserScanProductEnterSession, UserScanProductVerifyAction,
};
pub use store::{PoiCheckNotify, WifiConnected};
pub use wxa::{UserEnterTempsession, WeappAuditDelay, WeappAuditFail, WeappAuditSuccess};

pub use card::{
    CardNotPassCheck, CardPassCheck, CardPayOrder, CardSkuRemind, SubmitMembercardUserInfo, UpdateMemberCard,
    UserConsumeCard, UserDelCard, UserEnterSessionFromCard, UserGetCard, UserGiftingCard, UserPayFromPayCell,
    UserViewCard,
};
pub use wecom::{BatchJob, BatchJobResult, ChangeContact, ChangeType, EnterAgent, TaskcardClick};

record! {
    /// `ScanCodeInfo` of the scancode menu events.
    pub struct ScanCodeInfo {
        /// Scanner type, usually `qrcode`.
        "ScanType" => scan_type: String,
        /// The decoded content.
        "ScanResult" => scan_result: String,
    }

    /// `SendPicsInfo` of the picture menu events.
    pub struct SendPicsInfo {
        /// Number of pictures.
        "Count" => count: u32,
        /// The pictures.
        "PicList" => pic_list: PicList,
    }

    /// `PicList`: one `item` per picture (one or many).
    pub struct PicList {
        /// The pictures.
        "item" => items: Vec<PicItem>,
    }

    /// One picture of a `PicList`.
    pub struct PicItem {
        /// MD5 of the picture.
        "PicMd5Sum" => pic_md5_sum: String,
    }

    /// `SendLocationInfo` of the `location_select` event. Its numbers arrive as CDATA text
    /// (unlike the bare ones of a `location` message) and are written back the same way.
    pub struct SendLocationInfo {
        /// Latitude.
        "Location_X" => latitude: f64 [cdata],
        /// Longitude.
        "Location_Y" => longitude: f64 [cdata],
        /// Map zoom level.
        "Scale" => scale: Option<u32> [cdata],
        /// Place description.
        "Label" => label: Option<String>,
        /// Point of interest name.
        "Poiname" => poiname: Option<String>,
    }

    /// `CopyrightCheckResult` of `MASSSENDJOBFINISH`.
    pub struct CopyrightCheckResult {
        /// Number of articles checked.
        "Count" => count: u32,
        /// Per-article results.
        "ResultList" => result_list: Option<CopyrightResultList>,
        /// Overall state: 1 not reprinted (can send), 2 reprinted (can send), 3 reprinted
        /// (cannot send).
        "CheckState" => check_state: u32,
    }

    /// `ResultList` of a copyright check.
    pub struct CopyrightResultList {
        /// Per-article results.
        "item" => items: Vec<CopyrightResult>,
    }

    /// One article's copyright check.
    pub struct CopyrightResult {
        /// Position of the article, from 1.
        "ArticleIdx" => article_idx: u32,
        /// Whether the user declared it original.
        "UserDeclareState" => user_declare_state: u32,
        /// Audit state.
        "AuditState" => audit_state: u32,
        /// URL of the original article, when similar.
        "OriginalArticleUrl" => original_article_url: Option<String>,
        /// Type of the original article.
        "OriginalArticleType" => original_article_type: Option<u32>,
        /// Whether it may be reprinted.
        "CanReprint" => can_reprint: Option<u32>,
        /// Whether the content must be replaced.
        "NeedReplaceContent" => need_replace_content: Option<u32>,
        /// Whether the source must be shown.
        "NeedShowReprintSource" => need_show_reprint_source: Option<u32>,
    }

    /// `ArticleUrlResult` of `MASSSENDJOBFINISH`.
    pub struct ArticleUrlResult {
        /// Number of articles.
        "Count" => count: u32,
        /// Per-article URLs.
        "ResultList" => result_list: Option<ArticleUrlList>,
    }

    /// `ResultList` of article URLs.
    pub struct ArticleUrlList {
        /// One per article.
        "item" => items: Vec<ArticleUrl>,
    }

    /// One published article's URL.
    pub struct ArticleUrl {
        /// Position of the article, from 1.
        "ArticleIdx" => article_idx: u32,
        /// Its URL.
        "ArticleUrl" => article_url: String,
    }

    /// `PublishEventInfo` of `PUBLISHJOBFINISH`.
    pub struct PublishEventInfo {
        /// The publish job id.
        "publish_id" => publish_id: String,
        /// 0 success, 1 publishing, 2 original check failed, 3 general failure, 4 rejected by
        /// the platform, 5 deleted after success, 6 banned after success.
        "publish_status" => publish_status: u32,
        /// The article id, on success.
        "article_id" => article_id: Option<String>,
        /// The articles published.
        "article_detail" => article_detail: Option<ArticleDetail>,
        /// Positions of the articles that failed the original check (repeated element).
        "fail_idx" => fail_idx: Vec<u32>,
    }

    /// `article_detail` of a publish result.
    pub struct ArticleDetail {
        /// Number of articles.
        "count" => count: u32,
        /// One per article.
        "item" => items: Vec<PublishedArticle>,
    }

    /// One published article.
    pub struct PublishedArticle {
        /// Position of the article, from 1.
        "idx" => idx: u32,
        /// Its URL.
        "article_url" => article_url: String,
    }

    /// `SubscribeMsgPopupEvent`: the user's choices in a subscription popup.
    pub struct SubscribeMsgPopup {
        /// One `List` per template (one or many).
        "List" => list: Vec<SubscribeMsgPopupItem>,
    }

    /// One template's choice in a popup.
    pub struct SubscribeMsgPopupItem {
        /// Template id.
        "TemplateId" => template_id: String,
        /// `accept` or `reject`.
        "SubscribeStatusString" => status: String,
        /// 1 from a profile page, 2 from an article.
        "PopupScene" => popup_scene: Option<u32>,
    }

    /// `SubscribeMsgChangeEvent`: the user changed a subscription in settings.
    pub struct SubscribeMsgChange {
        /// One `List` per template (one or many).
        "List" => list: Vec<SubscribeMsgChangeItem>,
    }

    /// One template's change.
    pub struct SubscribeMsgChangeItem {
        /// Template id.
        "TemplateId" => template_id: String,
        /// `reject` (WeChat only reports refusals here).
        "SubscribeStatusString" => status: String,
    }

    /// `SubscribeMsgSentEvent`: delivery results of subscription messages.
    pub struct SubscribeMsgSent {
        /// One `List` per message (one or many).
        "List" => list: Vec<SubscribeMsgSentItem>,
    }

    /// One subscription message's delivery result.
    pub struct SubscribeMsgSentItem {
        /// Template id.
        "TemplateId" => template_id: String,
        /// The message id.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgID" => msg_id: u64,
        /// 0 on success.
        "ErrorCode" => error_code: i64,
        /// `success`, `fail:user refuse`, `fail:system error`.
        "ErrorStatus" => error_status: String,
    }
}

top_level! {
    /// The user followed the account (`subscribe`), possibly by scanning a QR code.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct Subscribe ["event", "subscribe"] {
        /// `qrscene_<scene>` when following through a parametric QR code.
        "EventKey" => event_key: Option<String>,
        /// The QR code's ticket.
        "Ticket" => ticket: Option<String>,
    }

    /// The user unfollowed (`unsubscribe`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct Unsubscribe ["event", "unsubscribe"] {
        /// Usually empty.
        "EventKey" => event_key: Option<String>,
    }

    /// A follower scanned a parametric QR code (`SCAN`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct Scan ["event", "SCAN"] {
        /// The scene value (no prefix).
        "EventKey" => event_key: String,
        /// The QR code's ticket.
        "Ticket" => ticket: Option<String>,
    }

    /// Periodic location report (`LOCATION`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct LocationReport ["event", "LOCATION"] {
        /// Latitude.
        "Latitude" => latitude: f64,
        /// Longitude.
        "Longitude" => longitude: f64,
        /// Precision.
        "Precision" => precision: f64,
    }

    /// A click on a menu button (`CLICK`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct Click ["event", "CLICK"] {
        /// The button's key.
        "EventKey" => event_key: String,
    }

    /// A click on a menu link (`VIEW`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html>
    pub struct View ["event", "VIEW"] {
        /// The URL opened.
        "EventKey" => event_key: String,
        /// The menu's id (for conditional menus).
        "MenuId" => menu_id: Option<String>,
    }

    /// A click on a menu button that opens a mini program (`view_miniprogram`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct ViewMiniprogram ["event", "view_miniprogram"] {
        /// The page path opened.
        "EventKey" => event_key: String,
        /// The menu's id.
        "MenuId" => menu_id: Option<String>,
    }

    /// Menu scan, result pushed (`scancode_push`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct ScancodePush ["event", "scancode_push"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// What was scanned.
        "ScanCodeInfo" => scan_code_info: ScanCodeInfo,
    }

    /// Menu scan with a "receiving" prompt (`scancode_waitmsg`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct ScancodeWaitmsg ["event", "scancode_waitmsg"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// What was scanned.
        "ScanCodeInfo" => scan_code_info: ScanCodeInfo,
    }

    /// Menu camera (`pic_sysphoto`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct PicSysphoto ["event", "pic_sysphoto"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// The pictures sent.
        "SendPicsInfo" => send_pics_info: SendPicsInfo,
    }

    /// Menu camera or album (`pic_photo_or_album`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct PicPhotoOrAlbum ["event", "pic_photo_or_album"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// The pictures sent.
        "SendPicsInfo" => send_pics_info: SendPicsInfo,
    }

    /// Menu WeChat album (`pic_weixin`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct PicWeixin ["event", "pic_weixin"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// The pictures sent.
        "SendPicsInfo" => send_pics_info: SendPicsInfo,
    }

    /// Menu location picker (`location_select`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Custom_Menu_Push_Events.html>
    pub struct LocationSelect ["event", "location_select"] {
        /// The button's key.
        "EventKey" => event_key: String,
        /// The location chosen.
        "SendLocationInfo" => send_location_info: SendLocationInfo,
    }

    /// A template message's delivery result (`TEMPLATESENDJOBFINISH`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html>
    pub struct TemplateSendJobFinish ["event", "TEMPLATESENDJOBFINISH"] {
        /// The template message's id (note the spelling `MsgID`).
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgID" => msg_id: u64,
        /// `success`, `failed:user block`, `failed: system failed`.
        "Status" => status: String,
    }

    /// A mass send's result (`MASSSENDJOBFINISH`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Batch_Sends_and_Originality_Checks.html>
    pub struct MassSendJobFinish ["event", "MASSSENDJOBFINISH"] {
        /// The mass message's id.
        #[serde(serialize_with = "crate::field::u64_as_string")]
        "MsgID" => msg_id: u64,
        /// `send success`, `send fail` or `err(num)`.
        "Status" => status: String,
        /// Followers targeted.
        "TotalCount" => total_count: u64,
        /// Followers left after filtering.
        "FilterCount" => filter_count: u64,
        /// Deliveries that succeeded.
        "SentCount" => sent_count: u64,
        /// Deliveries that failed.
        "ErrorCount" => error_count: u64,
        /// Originality check.
        "CopyrightCheckResult" => copyright_check_result: Option<CopyrightCheckResult>,
        /// URLs of the published articles.
        "ArticleUrlResult" => article_url_result: Option<ArticleUrlResult>,
    }

    /// A free publish job's result (`PUBLISHJOBFINISH`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Publish/Callback_on_finish.html>
    pub struct PublishJobFinish ["event", "PUBLISHJOBFINISH"] {
        /// The result.
        "PublishEventInfo" => publish_event_info: PublishEventInfo,
    }

    /// Subscription popup choices (`subscribe_msg_popup_event`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Subscription_Messages/api.html>
    pub struct SubscribeMsgPopupEvent ["event", "subscribe_msg_popup_event"] {
        /// The choices.
        "SubscribeMsgPopupEvent" => popup: SubscribeMsgPopup,
    }

    /// Subscription changes (`subscribe_msg_change_event`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Subscription_Messages/api.html>
    pub struct SubscribeMsgChangeEvent ["event", "subscribe_msg_change_event"] {
        /// The changes.
        "SubscribeMsgChangeEvent" => change: SubscribeMsgChange,
    }

    /// Subscription message deliveries (`subscribe_msg_sent_event`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Subscription_Messages/api.html>
    pub struct SubscribeMsgSentEvent ["event", "subscribe_msg_sent_event"] {
        /// The deliveries.
        "SubscribeMsgSentEvent" => sent: SubscribeMsgSent,
    }

    /// A customer-service agent took the conversation (`kf_create_session`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Customer_Service/Session_control.html>
    pub struct KfCreateSession ["event", "kf_create_session"] {
        /// The agent's account.
        "KfAccount" => kf_account: String,
    }

    /// A customer-service agent closed the conversation (`kf_close_session`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Customer_Service/Session_control.html>
    pub struct KfCloseSession ["event", "kf_close_session"] {
        /// The agent's account.
        "KfAccount" => kf_account: String,
    }

    /// The conversation moved between agents (`kf_switch_session`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Customer_Service/Session_control.html>
    pub struct KfSwitchSession ["event", "kf_switch_session"] {
        /// The previous agent.
        "FromKfAccount" => from_kf_account: String,
        /// The new agent.
        "ToKfAccount" => to_kf_account: String,
    }

    /// Qualification verification passed (`qualification_verify_success`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct QualificationVerifySuccess ["event", "qualification_verify_success"] {
        /// When the verification expires (seconds).
        "ExpiredTime" => expired_time: i64,
    }

    /// Qualification verification failed (`qualification_verify_fail`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct QualificationVerifyFail ["event", "qualification_verify_fail"] {
        /// When it failed (seconds).
        "FailTime" => fail_time: i64,
        /// Why.
        "FailReason" => fail_reason: String,
    }

    /// Name verification passed (`naming_verify_success`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct NamingVerifySuccess ["event", "naming_verify_success"] {
        /// When the verification expires (seconds).
        "ExpiredTime" => expired_time: i64,
    }

    /// Name verification failed (`naming_verify_fail`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct NamingVerifyFail ["event", "naming_verify_fail"] {
        /// When it failed (seconds).
        "FailTime" => fail_time: i64,
        /// Why.
        "FailReason" => fail_reason: String,
    }

    /// Annual re-verification is due (`annual_renew`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct AnnualRenew ["event", "annual_renew"] {
        /// When the verification expires (seconds).
        "ExpiredTime" => expired_time: i64,
    }

    /// Verification expired (`verify_expired`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Wechat_Accreditation_Event_Push.html>
    pub struct VerifyExpired ["event", "verify_expired"] {
        /// When it expired (seconds).
        "ExpiredTime" => expired_time: i64,
    }

    /// A user changed the profile they authorized (`user_info_modified`).
    pub struct UserInfoModified ["event", "user_info_modified"] {
        /// The user's OpenID.
        "OpenID" => open_id: Option<String>,
        /// The appid concerned.
        "AppID" => app_id: Option<String>,
    }

    /// A user revoked an authorization (`user_authorization_revoke`).
    pub struct UserAuthorizationRevoke ["event", "user_authorization_revoke"] {
        /// The user's OpenID.
        "OpenID" => open_id: Option<String>,
        /// The appid concerned.
        "AppID" => app_id: Option<String>,
        /// What was revoked.
        "RevokeInfo" => revoke_info: Option<String>,
    }

    /// A user who had authorized the account closed their WeChat account
    /// (`user_authorization_cancellation`): delete what you hold about them.
    ///
    /// Official reference: <https://developers.weixin.qq.com/miniprogram/security/basic/listen.html>
    pub struct UserAuthorizationCancellation ["event", "user_authorization_cancellation"] {
        /// The user's OpenID.
        "OpenID" => open_id: Option<String>,
        /// The appid concerned.
        "AppID" => app_id: Option<String>,
    }
}

impl Subscribe {
    /// The QR scene when the user followed through a parametric QR code: the text after
    /// `qrscene_`. Other `EventKey` values (such as `last_trade_no_…`) are not scenes.
    pub fn scene(&self) -> Option<&str> {
        self.event_key.as_deref().and_then(|k| k.strip_prefix("qrscene_"))
    }
}

impl Scan {
    /// The QR scene (`EventKey` carries it without a prefix).
    pub fn scene(&self) -> &str {
        self.event_key.strip_prefix("qrscene_").unwrap_or(&self.event_key)
    }
}

macro_rules! events {
    ($( $(#[$meta:meta])* $variant:ident($ty:ident) = $wire:literal, )*) => {
        /// An event; the variant follows the `Event` value, matched case-insensitively.
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        #[serde(tag = "event", rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Event {
            $( $(#[$meta])* $variant($ty), )*
            /// An event not modelled here (or whose fields did not decode).
            Unknown(Unknown),
        }

        /// The `Event` value: an open set.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[non_exhaustive]
        pub enum EventKind {
            $( $(#[$meta])* $variant, )*
            /// Any other value, normalised to ASCII lowercase (see [`OtherKind`]).
            Other(OtherKind),
        }

        /// Each event's `Event` value and the tags of its fields (for tests that build every
        /// event's XML).
        #[cfg(test)]
        pub(crate) const EVENT_TAGS: &[(&str, &[&str])] = &[$( ($wire, $ty::TAGS), )*];

        impl EventKind {
            const ALL: &[Self] = &[$( Self::$variant, )*];

            /// Every event wemp models, in declaration order.
            pub fn known() -> &'static [Self] {
                Self::ALL
            }

            /// Reads an `Event` value case-insensitively.
            pub fn from_wire(s: &str) -> Self {
                // As WeChat writes it, by one `match`; else searched case-insensitively.
                match s {
                    $( $wire => return Self::$variant, )*
                    _ => {}
                }
                let s = crate::trim(s);
                Self::ALL
                    .iter()
                    .find(|k| k.as_str().eq_ignore_ascii_case(s))
                    .cloned()
                    .unwrap_or_else(|| Self::Other(OtherKind::new(s)))
            }

            /// WeChat's spelling of the value (an unmodelled one in ASCII lowercase).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(s) => s.as_str(),
                }
            }

            /// [`as_str`](Self::as_str) to keep: a modelled kind's spelling borrowed, an
            /// unmodelled one's copied.
            pub fn to_cow(&self) -> std::borrow::Cow<'static, str> {
                match self {
                    $( Self::$variant => std::borrow::Cow::Borrowed($wire), )*
                    Self::Other(s) => std::borrow::Cow::Owned(s.as_str().to_owned()),
                }
            }
        }

        impl Event {
            /// Types the event in an already parsed document; an event that is not modelled,
            /// or whose fields do not decode, becomes [`Event::Unknown`].
            pub fn from_document(doc: &Document) -> Self {
                Self::typed(&doc.root).unwrap_or_else(|e| Self::Unknown(Unknown::from_document(doc, e)))
            }

            /// The typed event `fields` (a document's root, or a flat document's leaves) hold;
            /// otherwise why not: `None` for an event not modelled, else the field that does
            /// not decode.
            pub(crate) fn typed(fields: &impl Fields) -> Result<Self, Option<FieldError>> {
                let wire = fields.text(tag!("Event")).unwrap_or_default();
                match EventKind::from_wire(wire) {
                    $( EventKind::$variant => $ty::read(fields).map(Self::$variant).map_err(Some), )*
                    EventKind::Other(_) => Err(None),
                }
            }

            /// The event's kind.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( Self::$variant(_) => EventKind::$variant, )*
                    Self::Unknown(u) => EventKind::from_wire(u.event.as_deref().unwrap_or_default()),
                }
            }

            /// The event's header.
            pub fn header(&self) -> &Header {
                match self {
                    $( Self::$variant(e) => &e.header, )*
                    Self::Unknown(u) => &u.header,
                }
            }

            /// Writes the event back as XML (an unknown one exactly as it arrived).
            pub fn to_xml(&self) -> String {
                match self {
                    $( Self::$variant(e) => e.to_xml(), )*
                    Self::Unknown(u) => u.raw.as_str().to_owned(),
                }
            }
        }
    };
}

events! {
    /// `subscribe`
    Subscribe(Subscribe) = "subscribe",
    /// `unsubscribe`
    Unsubscribe(Unsubscribe) = "unsubscribe",
    /// `SCAN`
    Scan(Scan) = "SCAN",
    /// `LOCATION`
    Location(LocationReport) = "LOCATION",
    /// `CLICK`
    Click(Click) = "CLICK",
    /// `VIEW`
    View(View) = "VIEW",
    /// `view_miniprogram`
    ViewMiniprogram(ViewMiniprogram) = "view_miniprogram",
    /// `scancode_push`
    ScancodePush(ScancodePush) = "scancode_push",
    /// `scancode_waitmsg`
    ScancodeWaitmsg(ScancodeWaitmsg) = "scancode_waitmsg",
    /// `pic_sysphoto`
    PicSysphoto(PicSysphoto) = "pic_sysphoto",
    /// `pic_photo_or_album`
    PicPhotoOrAlbum(PicPhotoOrAlbum) = "pic_photo_or_album",
    /// `pic_weixin`
    PicWeixin(PicWeixin) = "pic_weixin",
    /// `location_select`
    LocationSelect(LocationSelect) = "location_select",
    /// `TEMPLATESENDJOBFINISH`
    TemplateSendJobFinish(TemplateSendJobFinish) = "TEMPLATESENDJOBFINISH",
    /// `MASSSENDJOBFINISH`
    MassSendJobFinish(MassSendJobFinish) = "MASSSENDJOBFINISH",
    /// `PUBLISHJOBFINISH`
    PublishJobFinish(PublishJobFinish) = "PUBLISHJOBFINISH",
    /// `subscribe_msg_popup_event`
    SubscribeMsgPopup(SubscribeMsgPopupEvent) = "subscribe_msg_popup_event",
    /// `subscribe_msg_change_event`
    SubscribeMsgChange(SubscribeMsgChangeEvent) = "subscribe_msg_change_event",
    /// `subscribe_msg_sent_event`
    SubscribeMsgSent(SubscribeMsgSentEvent) = "subscribe_msg_sent_event",
    /// `kf_create_session`
    KfCreateSession(KfCreateSession) = "kf_create_session",
    /// `kf_close_session`
    KfCloseSession(KfCloseSession) = "kf_close_session",
    /// `kf_switch_session`
    KfSwitchSession(KfSwitchSession) = "kf_switch_session",
    /// `qualification_verify_success`
    QualificationVerifySuccess(QualificationVerifySuccess) = "qualification_verify_success",
    /// `qualification_verify_fail`
    QualificationVerifyFail(QualificationVerifyFail) = "qualification_verify_fail",
    /// `naming_verify_success`
    NamingVerifySuccess(NamingVerifySuccess) = "naming_verify_success",
    /// `naming_verify_fail`
    NamingVerifyFail(NamingVerifyFail) = "naming_verify_fail",
    /// `annual_renew`
    AnnualRenew(AnnualRenew) = "annual_renew",
    /// `verify_expired`
    VerifyExpired(VerifyExpired) = "verify_expired",
    /// `user_info_modified`
    UserInfoModified(UserInfoModified) = "user_info_modified",
    /// `user_authorization_revoke`
    UserAuthorizationRevoke(UserAuthorizationRevoke) = "user_authorization_revoke",
    /// `user_authorization_cancellation`
    UserAuthorizationCancellation(UserAuthorizationCancellation) = "user_authorization_cancellation",
    /// `user_scan_product` (扫一扫)
    UserScanProduct(UserScanProduct) = "user_scan_product",
    /// `user_scan_product_enter_session` (扫一扫)
    UserScanProductEnterSession(UserScanProductEnterSession) = "user_scan_product_enter_session",
    /// `user_scan_product_async` (扫一扫)
    UserScanProductAsync(UserScanProductAsync) = "user_scan_product_async",
    /// `user_scan_product_verify_action` (扫一扫)
    UserScanProductVerifyAction(UserScanProductVerifyAction) = "user_scan_product_verify_action",
    /// `user_authorize_invoice` (电子发票)
    UserAuthorizeInvoice(UserAuthorizeInvoice) = "user_authorize_invoice",
    /// `poi_check_notify` (门店)
    PoiCheckNotify(PoiCheckNotify) = "poi_check_notify",
    /// `WifiConnected`
    WifiConnected(WifiConnected) = "WifiConnected",
    /// `user_enter_tempsession` (Mini Program customer service)
    UserEnterTempsession(UserEnterTempsession) = "user_enter_tempsession",
    /// `weapp_audit_success` (Mini Program code review)
    WeappAuditSuccess(WeappAuditSuccess) = "weapp_audit_success",
    /// `weapp_audit_fail` (Mini Program code review)
    WeappAuditFail(WeappAuditFail) = "weapp_audit_fail",
    /// `weapp_audit_delay` (Mini Program code review)
    WeappAuditDelay(WeappAuditDelay) = "weapp_audit_delay",
    /// `card_pass_check`
    CardPassCheck(CardPassCheck) = "card_pass_check",
    /// `card_not_pass_check`
    CardNotPassCheck(CardNotPassCheck) = "card_not_pass_check",
    /// `user_get_card`
    UserGetCard(UserGetCard) = "user_get_card",
    /// `user_gifting_card`
    UserGiftingCard(UserGiftingCard) = "user_gifting_card",
    /// `user_del_card`
    UserDelCard(UserDelCard) = "user_del_card",
    /// `user_consume_card`
    UserConsumeCard(UserConsumeCard) = "user_consume_card",
    /// `user_pay_from_pay_cell`
    UserPayFromPayCell(UserPayFromPayCell) = "user_pay_from_pay_cell",
    /// `user_view_card`
    UserViewCard(UserViewCard) = "user_view_card",
    /// `user_enter_session_from_card`
    UserEnterSessionFromCard(UserEnterSessionFromCard) = "user_enter_session_from_card",
    /// `update_member_card`
    UpdateMemberCard(UpdateMemberCard) = "update_member_card",
    /// `card_sku_remind`
    CardSkuRemind(CardSkuRemind) = "card_sku_remind",
    /// `card_pay_order`
    CardPayOrder(CardPayOrder) = "card_pay_order",
    /// `submit_membercard_user_info`
    SubmitMembercardUserInfo(SubmitMembercardUserInfo) = "submit_membercard_user_info",
    /// `enter_agent` (WeCom)
    EnterAgent(EnterAgent) = "enter_agent",
    /// `change_contact` (WeCom)
    ChangeContact(ChangeContact) = "change_contact",
    /// `batch_job_result` (WeCom)
    BatchJobResult(BatchJobResult) = "batch_job_result",
    /// `taskcard_click` (WeCom)
    TaskcardClick(TaskcardClick) = "taskcard_click",
}

impl Event {
    /// The `EventKey`, for the events that carry one (card events carry none: see
    /// [`Event::card_id`] and [`Event::user_card_code`]).
    pub fn event_key(&self) -> Option<&str> {
        match self {
            Self::Subscribe(e) => e.event_key.as_deref(),
            Self::Unsubscribe(e) => e.event_key.as_deref(),
            Self::Scan(e) => Some(&e.event_key),
            Self::Click(e) => Some(&e.event_key),
            Self::View(e) => Some(&e.event_key),
            Self::ViewMiniprogram(e) => Some(&e.event_key),
            Self::ScancodePush(e) => Some(&e.event_key),
            Self::ScancodeWaitmsg(e) => Some(&e.event_key),
            Self::PicSysphoto(e) => Some(&e.event_key),
            Self::PicPhotoOrAlbum(e) => Some(&e.event_key),
            Self::PicWeixin(e) => Some(&e.event_key),
            Self::LocationSelect(e) => Some(&e.event_key),
            Self::TaskcardClick(e) => Some(&e.event_key),
            Self::Unknown(u) => u.field("EventKey"),
            _ => None,
        }
    }

    /// The QR scene of a `subscribe` through a QR code or of a `SCAN`.
    pub fn scene(&self) -> Option<&str> {
        match self {
            Self::Subscribe(e) => e.scene(),
            Self::Scan(e) => Some(e.scene()),
            _ => None,
        }
    }

    /// The `CardId` of a card event (an unknown event's `CardId` too, if it has one).
    pub fn card_id(&self) -> Option<&str> {
        match self {
            Self::CardPassCheck(e) => Some(&e.card_id),
            Self::CardNotPassCheck(e) => Some(&e.card_id),
            Self::UserGetCard(e) => Some(&e.card_id),
            Self::UserGiftingCard(e) => Some(&e.card_id),
            Self::UserDelCard(e) => Some(&e.card_id),
            Self::UserConsumeCard(e) => Some(&e.card_id),
            Self::UserPayFromPayCell(e) => Some(&e.card_id),
            Self::UserViewCard(e) => Some(&e.card_id),
            Self::UserEnterSessionFromCard(e) => Some(&e.card_id),
            Self::UpdateMemberCard(e) => Some(&e.card_id),
            Self::CardSkuRemind(e) => Some(&e.card_id),
            Self::SubmitMembercardUserInfo(e) => Some(&e.card_id),
            Self::Unknown(u) => u.field("CardId"),
            _ => None,
        }
    }

    /// The `UserCardCode` (one user's copy of a card) of a card event that concerns one
    /// (an unknown event's too, if it has one).
    pub fn user_card_code(&self) -> Option<&str> {
        match self {
            Self::UserGetCard(e) => Some(&e.user_card_code),
            Self::UserGiftingCard(e) => Some(&e.user_card_code),
            Self::UserDelCard(e) => Some(&e.user_card_code),
            Self::UserConsumeCard(e) => Some(&e.user_card_code),
            Self::UserPayFromPayCell(e) => Some(&e.user_card_code),
            Self::UserViewCard(e) => Some(&e.user_card_code),
            Self::UserEnterSessionFromCard(e) => Some(&e.user_card_code),
            Self::UpdateMemberCard(e) => Some(&e.user_card_code),
            Self::SubmitMembercardUserInfo(e) => Some(&e.user_card_code),
            Self::Unknown(u) => u.field("UserCardCode"),
            _ => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
