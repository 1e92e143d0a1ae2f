//! What a WeChat user can send: every message and event type the simulators post, built
//! into the typed [`Incoming`]. `wemp sim` and the web console both describe their actions
//! with [`Message`], so each type is built in one place.
//!
//! ```
//! use wemp_proto::{Header, Incoming};
//! use wemp_proto::wechat::{EventMessage, Message};
//! let header = Header { to: "gh_1".into(), from: "o1".into(), create_time: 1_700_000_000, agent_id: None };
//! let text = Message::Text { content: "hello".into() }.build(header.clone(), 42);
//! assert_eq!(text.msg_id(), Some(42));
//! let click = Message::Event(EventMessage::Click { key: "V1001".into() }).build(header, 43);
//! assert!(matches!(click, Incoming::Event(_)));
//! ```

// Each value is built field by field, as code outside this crate has to (the message
// types are `#[non_exhaustive]`), so the builders read like the docs' field lists.
#![allow(clippy::field_reassign_with_default)]

use crate::event::{
    Click, LocationReport, LocationSelect, PicItem, PicList, PicPhotoOrAlbum, PicSysphoto, PicWeixin, Scan,
    ScanCodeInfo, ScancodePush, ScancodeWaitmsg, SendLocationInfo, SendPicsInfo, Subscribe, Unsubscribe,
    View, ViewMiniprogram,
};
use crate::message::{Image, Link, Location, MiniProgramPage, ShortVideo, Text, Video, Voice};
use crate::xml::Element;
use crate::{Event, Header, Incoming};

/// One message or event a user sends, with its fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A text message.
    Text {
        /// What the user types.
        content: String,
    },
    /// An image message.
    Image {
        /// MediaId of the picture.
        media_id: String,
        /// PicUrl of the picture.
        pic_url: String,
    },
    /// A voice message.
    Voice {
        /// MediaId of the recording.
        media_id: String,
        /// Audio format.
        format: String,
        /// Speech recognition result (as when recognition is enabled).
        recognition: Option<String>,
    },
    /// A video message.
    Video {
        /// MediaId of the video.
        media_id: String,
        /// MediaId of its thumbnail.
        thumb_media_id: String,
    },
    /// A short video message.
    ShortVideo {
        /// MediaId of the video.
        media_id: String,
        /// MediaId of its thumbnail.
        thumb_media_id: String,
    },
    /// A shared location.
    Location {
        /// Latitude (`Location_X`).
        lat: f64,
        /// Longitude (`Location_Y`).
        lon: f64,
        /// Map zoom level (`Scale`).
        scale: u32,
        /// Place description (`Label`).
        label: String,
    },
    /// A shared link.
    Link {
        /// The URL.
        url: String,
        /// Title.
        title: String,
        /// Description.
        description: String,
    },
    /// A Mini Program card, as a user sends it into a Mini Program's customer-service
    /// conversation (`miniprogrampage`).
    MiniProgramPage {
        /// Card title.
        title: String,
        /// The Mini Program's appid.
        app_id: String,
        /// Page path inside the Mini Program.
        page_path: String,
    },
    /// An event (`MsgType=event`).
    Event(EventMessage),
}

/// One event type, with its fields.
#[derive(Clone, Debug, PartialEq)]
pub enum EventMessage {
    /// The user follows the account, with a scene when through a parametric QR code.
    Subscribe {
        /// QR scene (sent as `EventKey=qrscene_<scene>`).
        scene: Option<String>,
        /// QR ticket (sent with a scene only).
        ticket: String,
    },
    /// The user unfollows.
    Unsubscribe,
    /// A follower scans a parametric QR code (`SCAN`).
    Scan {
        /// The scene value.
        scene: String,
        /// QR ticket.
        ticket: String,
    },
    /// A menu button click (`CLICK`).
    Click {
        /// The button's key.
        key: String,
    },
    /// A menu link (`VIEW`).
    View {
        /// The URL opened.
        url: String,
        /// MenuId of a conditional menu.
        menu_id: Option<String>,
    },
    /// A periodic location report (`LOCATION`).
    Location {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// Precision.
        precision: f64,
    },
    /// A menu button that opens a mini program (`view_miniprogram`).
    ViewMiniprogram {
        /// The page path.
        path: String,
    },
    /// Menu scan, result pushed (`scancode_push`).
    ScancodePush {
        /// The button's key.
        key: String,
        /// What was scanned.
        result: String,
    },
    /// Menu scan with a waiting prompt (`scancode_waitmsg`).
    ScancodeWaitmsg {
        /// The button's key.
        key: String,
        /// What was scanned.
        result: String,
    },
    /// Menu camera (`pic_sysphoto`).
    PicSysphoto {
        /// The button's key.
        key: String,
        /// Pictures sent.
        count: u32,
    },
    /// Menu camera or album (`pic_photo_or_album`).
    PicPhotoOrAlbum {
        /// The button's key.
        key: String,
        /// Pictures sent.
        count: u32,
    },
    /// Menu WeChat album (`pic_weixin`).
    PicWeixin {
        /// The button's key.
        key: String,
        /// Pictures sent.
        count: u32,
    },
    /// Menu location picker (`location_select`).
    LocationSelect {
        /// The button's key.
        key: String,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// Place description.
        label: String,
    },
    /// Any other event, by its `Event` value and fields — how to send what WeChat pushes
    /// without a user action (card, template, mass-send, customer-service events …) or an
    /// event wemp does not model yet. It arrives typed when wemp knows it and its fields
    /// decode, otherwise as [`Event::Unknown`] with every field.
    Other {
        /// The `Event` value, as WeChat spells it (`user_get_card`).
        event: String,
        /// Further elements under `<xml>`, in order (`("CardId", "p1…")`), as text.
        fields: Vec<(String, String)>,
    },
}

impl Message {
    /// Whether this is an ordinary message (it carries a `MsgId`), not an event.
    pub fn is_message(&self) -> bool {
        !matches!(self, Self::Event(_))
    }

    /// A short name for reports (`text`, `event CLICK`, …).
    pub fn label(&self) -> String {
        match self {
            Self::Text { .. } => "text".into(),
            Self::Image { .. } => "image".into(),
            Self::Voice { .. } => "voice".into(),
            Self::Video { .. } => "video".into(),
            Self::ShortVideo { .. } => "shortvideo".into(),
            Self::Location { .. } => "location".into(),
            Self::Link { .. } => "link".into(),
            Self::MiniProgramPage { .. } => "miniprogrampage".into(),
            Self::Event(e) => format!("event {}", e.wire_name()),
        }
    }

    /// Builds the message from `header` (the user to the account); `msg_id` is its `MsgId`
    /// (events carry none and ignore it).
    pub fn build(&self, header: Header, msg_id: u64) -> Incoming {
        match self {
            Self::Text { content } => {
                let mut m = Text::default();
                m.header = header;
                m.content = content.clone();
                m.id = msg_id;
                Incoming::Text(m)
            }
            Self::Image { media_id, pic_url } => {
                let mut m = Image::default();
                m.header = header;
                m.media_id = media_id.clone();
                m.pic_url = pic_url.clone();
                m.id = msg_id;
                Incoming::Image(m)
            }
            Self::Voice { media_id, format, recognition } => {
                let mut m = Voice::default();
                m.header = header;
                m.media_id = media_id.clone();
                m.format = format.clone();
                m.recognition = recognition.clone();
                m.id = msg_id;
                Incoming::Voice(m)
            }
            Self::Video { media_id, thumb_media_id } => {
                let mut m = Video::default();
                m.header = header;
                m.media_id = media_id.clone();
                m.thumb_media_id = thumb_media_id.clone();
                m.id = msg_id;
                Incoming::Video(m)
            }
            Self::ShortVideo { media_id, thumb_media_id } => {
                let mut m = ShortVideo::default();
                m.header = header;
                m.media_id = media_id.clone();
                m.thumb_media_id = thumb_media_id.clone();
                m.id = msg_id;
                Incoming::ShortVideo(m)
            }
            Self::Location { lat, lon, scale, label } => {
                let mut m = Location::default();
                m.header = header;
                m.latitude = *lat;
                m.longitude = *lon;
                m.scale = *scale;
                m.label = label.clone();
                m.id = msg_id;
                Incoming::Location(m)
            }
            Self::Link { url, title, description } => {
                let mut m = Link::default();
                m.header = header;
                m.url = url.clone();
                m.title = title.clone();
                m.description = description.clone();
                m.id = msg_id;
                Incoming::Link(m)
            }
            Self::MiniProgramPage { title, app_id, page_path } => {
                let mut m = MiniProgramPage::default();
                m.header = header;
                m.title = title.clone();
                m.app_id = app_id.clone();
                m.page_path = page_path.clone();
                m.thumb_url = Some("https://mmbiz.qpic.cn/sim/thumb".into());
                m.thumb_media_id = Some("sim_thumb_media_id".into());
                m.id = msg_id;
                Incoming::MiniProgramPage(m)
            }
            Self::Event(e) => Incoming::Event(e.build(header)),
        }
    }
}

fn pics(count: u32) -> SendPicsInfo {
    let mut info = SendPicsInfo::default();
    info.count = count;
    let mut list = PicList::default();
    list.items = (0..count)
        .map(|i| {
            let mut item = PicItem::default();
            item.pic_md5_sum = format!("{:032x}", u128::from(i) + 0x1b5f7c23b5bf75682a53e7b6d163e185);
            item
        })
        .collect();
    info.pic_list = list;
    info
}

/// Whether `name` can name an element of a WeChat message: ASCII letters, digits, `_`, `-`
/// and `.`, not starting with a digit, `-` or `.` (every name WeChat uses is of this kind).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn scan_info(result: &str) -> ScanCodeInfo {
    let mut info = ScanCodeInfo::default();
    info.scan_type = "qrcode".into();
    info.scan_result = result.into();
    info
}

impl EventMessage {
    /// WeChat's spelling of the `Event` value.
    pub fn wire_name(&self) -> &str {
        match self {
            Self::Other { event, .. } => event,
            Self::Subscribe { .. } => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Scan { .. } => "SCAN",
            Self::Click { .. } => "CLICK",
            Self::View { .. } => "VIEW",
            Self::Location { .. } => "LOCATION",
            Self::ViewMiniprogram { .. } => "view_miniprogram",
            Self::ScancodePush { .. } => "scancode_push",
            Self::ScancodeWaitmsg { .. } => "scancode_waitmsg",
            Self::PicSysphoto { .. } => "pic_sysphoto",
            Self::PicPhotoOrAlbum { .. } => "pic_photo_or_album",
            Self::PicWeixin { .. } => "pic_weixin",
            Self::LocationSelect { .. } => "location_select",
        }
    }

    /// Builds the event from `header`.
    ///
    /// # Panics
    ///
    /// For an [`EventMessage::Other`] field whose name is not an XML name (check names with
    /// [`is_xml_name`] first).
    pub fn build(&self, header: Header) -> Event {
        match self {
            Self::Subscribe { scene, ticket } => {
                let mut e = Subscribe::default();
                e.header = header;
                if let Some(scene) = scene {
                    e.event_key = Some(format!("qrscene_{scene}"));
                    e.ticket = Some(ticket.clone());
                }
                Event::Subscribe(e)
            }
            Self::Unsubscribe => {
                let mut e = Unsubscribe::default();
                e.header = header;
                e.event_key = Some(String::new());
                Event::Unsubscribe(e)
            }
            Self::Scan { scene, ticket } => {
                let mut e = Scan::default();
                e.header = header;
                e.event_key = scene.clone();
                e.ticket = Some(ticket.clone());
                Event::Scan(e)
            }
            Self::Click { key } => {
                let mut e = Click::default();
                e.header = header;
                e.event_key = key.clone();
                Event::Click(e)
            }
            Self::View { url, menu_id } => {
                let mut e = View::default();
                e.header = header;
                e.event_key = url.clone();
                e.menu_id = menu_id.clone();
                Event::View(e)
            }
            Self::Location { lat, lon, precision } => {
                let mut e = LocationReport::default();
                e.header = header;
                e.latitude = *lat;
                e.longitude = *lon;
                e.precision = *precision;
                Event::Location(e)
            }
            Self::ViewMiniprogram { path } => {
                let mut e = ViewMiniprogram::default();
                e.header = header;
                e.event_key = path.clone();
                Event::ViewMiniprogram(e)
            }
            Self::ScancodePush { key, result } => {
                let mut e = ScancodePush::default();
                e.header = header;
                e.event_key = key.clone();
                e.scan_code_info = scan_info(result);
                Event::ScancodePush(e)
            }
            Self::ScancodeWaitmsg { key, result } => {
                let mut e = ScancodeWaitmsg::default();
                e.header = header;
                e.event_key = key.clone();
                e.scan_code_info = scan_info(result);
                Event::ScancodeWaitmsg(e)
            }
            Self::PicSysphoto { key, count } => {
                let mut e = PicSysphoto::default();
                e.header = header;
                e.event_key = key.clone();
                e.send_pics_info = pics(*count);
                Event::PicSysphoto(e)
            }
            Self::PicPhotoOrAlbum { key, count } => {
                let mut e = PicPhotoOrAlbum::default();
                e.header = header;
                e.event_key = key.clone();
                e.send_pics_info = pics(*count);
                Event::PicPhotoOrAlbum(e)
            }
            Self::PicWeixin { key, count } => {
                let mut e = PicWeixin::default();
                e.header = header;
                e.event_key = key.clone();
                e.send_pics_info = pics(*count);
                Event::PicWeixin(e)
            }
            Self::LocationSelect { key, lat, lon, label } => {
                let mut e = LocationSelect::default();
                e.header = header;
                e.event_key = key.clone();
                let mut info = SendLocationInfo::default();
                info.latitude = *lat;
                info.longitude = *lon;
                info.scale = Some(15);
                info.label = Some(label.clone());
                info.poiname = Some(String::new());
                e.send_location_info = info;
                Event::LocationSelect(e)
            }
            Self::Other { event, fields } => {
                let mut xml = Element::new("xml")
                    .with(Element::cdata("ToUserName", header.to))
                    .with(Element::cdata("FromUserName", header.from))
                    .with(Element::bare("CreateTime", header.create_time.to_string()))
                    .with(Element::cdata("MsgType", "event"))
                    .with(Element::cdata("Event", event.clone()));
                for (name, value) in fields {
                    assert!(is_xml_name(name), "{name:?} is not an XML element name");
                    xml = xml.with(Element::cdata(name.clone(), value.clone()));
                }
                match Incoming::parse(&xml.to_xml()) {
                    Ok(Incoming::Event(e)) => e,
                    other => unreachable!("an event with MsgType=event parses as one: {other:?}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header { to: "gh_1".into(), from: "o1".into(), create_time: 1_700_000_000, agent_id: None }
    }

    fn other(event: &str, fields: &[(&str, &str)]) -> EventMessage {
        EventMessage::Other {
            event: event.into(),
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn other_events_arrive_typed_when_known() {
        let e = other(
            "user_get_card",
            &[("CardId", "pCard1"), ("UserCardCode", "12312312"), ("IsGiveByFriend", "0")],
        )
        .build(header());
        let Event::UserGetCard(card) = &e else { panic!("{e:?}") };
        assert_eq!((card.card_id.as_str(), card.user_card_code.as_str()), ("pCard1", "12312312"));
        assert_eq!(card.is_give_by_friend, Some(0));
        assert_eq!(e.header().from, "o1");
    }

    #[test]
    fn other_events_wemp_does_not_know_keep_every_field() {
        let msg = other("user_stamp_card", &[("StampCount", "3"), ("Note", "a ]]> b")]);
        assert_eq!(msg.wire_name(), "user_stamp_card");
        let Event::Unknown(u) = msg.build(header()) else { panic!("not unknown") };
        assert_eq!(u.event.as_deref(), Some("user_stamp_card"));
        assert_eq!((u.field("StampCount"), u.field("Note")), (Some("3"), Some("a ]]> b")));
        // A known event whose fields do not decode still arrives, as Unknown.
        let Event::Unknown(u) = other("card_pay_order", &[("Fee", "not a number")]).build(header()) else {
            panic!("typed although Fee does not decode")
        };
        assert!(u.decode_error.is_some());
    }

    #[test]
    fn element_names() {
        for ok in ["CardId", "Location_X", "a", "_x", "a-b.c1"] {
            assert!(is_xml_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", ".a", "a b", "a<b", "卡", "a=b"] {
            assert!(!is_xml_name(bad), "{bad}");
        }
    }
}
