//! The messages and events `wemp sim` can send: the command-line grammar, turned into
//! [`wemp_proto::wechat::Message`], which builds them (the web console builds the same way).

use wemp_proto::admission::Kind;
use wemp_proto::wechat::{EventMessage, Message};
use wemp_proto::{Event, Header, Incoming};

/// One message or event type, with its fields (a `sim send` subcommand).
#[derive(Clone, Debug, PartialEq, clap::Subcommand)]
pub enum MessageSpec {
    /// A text message: `text 订单 42` (the rest of the line, no quotes needed).
    Text {
        /// What the user types: the words are joined with single spaces.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        content: Vec<String>,
    },
    /// An image message.
    Image {
        /// MediaId of the picture.
        #[arg(long, default_value = "sim_image_media_id")]
        media_id: String,
        /// PicUrl of the picture.
        #[arg(long, default_value = "https://mmbiz.qpic.cn/sim/0")]
        pic_url: String,
    },
    /// A voice message.
    Voice {
        /// MediaId of the recording.
        #[arg(long, default_value = "sim_voice_media_id")]
        media_id: String,
        /// Audio format.
        #[arg(long, default_value = "amr")]
        format: String,
        /// Speech recognition result (as when recognition is enabled).
        #[arg(long)]
        recognition: Option<String>,
    },
    /// A video message.
    Video {
        /// MediaId of the video.
        #[arg(long, default_value = "sim_video_media_id")]
        media_id: String,
        /// MediaId of its thumbnail.
        #[arg(long, default_value = "sim_thumb_media_id")]
        thumb_media_id: String,
    },
    /// A short video message.
    Shortvideo {
        /// MediaId of the video.
        #[arg(long, default_value = "sim_shortvideo_media_id")]
        media_id: String,
        /// MediaId of its thumbnail.
        #[arg(long, default_value = "sim_thumb_media_id")]
        thumb_media_id: String,
    },
    /// A shared location: `location 23.13 113.26`.
    #[command(allow_negative_numbers = true)]
    Location {
        /// Latitude (Location_X).
        lat: f64,
        /// Longitude (Location_Y).
        lon: f64,
        /// Map zoom level.
        #[arg(long, default_value_t = 15)]
        scale: u32,
        /// Place description.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// A shared link: `link https://example.com`.
    Link {
        /// The URL.
        url: String,
        /// Title.
        #[arg(long, default_value = "A link")]
        title: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// A Mini Program card sent into a Mini Program's customer-service conversation.
    Miniprogrampage {
        /// Card title.
        #[arg(long, default_value = "A page")]
        title: String,
        /// The Mini Program's appid.
        #[arg(long, default_value = "wx_sim_miniprogram")]
        app_id: String,
        /// Page path inside the Mini Program.
        #[arg(long, default_value = "pages/index/index")]
        page_path: String,
    },
    /// An event (`MsgType=event`).
    #[command(subcommand)]
    Event(EventSpec),
    /// Any XML from a file (`-` for stdin), sent as is.
    Raw {
        /// The file holding the message XML.
        file: String,
    },
}

/// One event type, with its fields.
#[derive(Clone, Debug, PartialEq, clap::Subcommand)]
pub enum EventSpec {
    /// The user follows the account, with --scene through a parametric QR code.
    Subscribe {
        /// QR scene (sent as `EventKey=qrscene_<scene>`).
        #[arg(long)]
        scene: Option<String>,
        /// QR ticket (with --scene).
        #[arg(long, default_value = "sim_ticket")]
        ticket: String,
    },
    /// The user unfollows.
    Unsubscribe,
    /// A follower scans a parametric QR code (`SCAN`).
    #[command(alias = "SCAN")]
    Scan {
        /// The scene value.
        scene: String,
        /// QR ticket.
        #[arg(long, default_value = "sim_ticket")]
        ticket: String,
    },
    /// A menu button click (`CLICK`).
    #[command(alias = "CLICK")]
    Click {
        /// The button's key.
        key: String,
    },
    /// A menu link (`VIEW`).
    #[command(alias = "VIEW")]
    View {
        /// The URL opened.
        url: String,
        /// MenuId of a conditional menu.
        #[arg(long)]
        menu_id: Option<String>,
    },
    /// A periodic location report (`LOCATION`).
    #[command(allow_negative_numbers = true)]
    #[command(alias = "LOCATION")]
    Location {
        /// Latitude.
        #[arg(default_value_t = 23.137466)]
        lat: f64,
        /// Longitude.
        #[arg(default_value_t = 113.352425)]
        lon: f64,
        /// Precision.
        #[arg(long, default_value_t = 119.385040)]
        precision: f64,
    },
    /// A menu button that opens a mini program (`view_miniprogram`).
    #[command(alias = "view_miniprogram")]
    ViewMiniprogram {
        /// The page path.
        path: String,
    },
    /// Menu scan, result pushed (`scancode_push`).
    #[command(alias = "scancode_push")]
    ScancodePush {
        /// The button's key.
        key: String,
        /// What was scanned.
        result: String,
    },
    /// Menu scan with a waiting prompt (`scancode_waitmsg`).
    #[command(alias = "scancode_waitmsg")]
    ScancodeWaitmsg {
        /// The button's key.
        key: String,
        /// What was scanned.
        result: String,
    },
    /// Menu camera (`pic_sysphoto`).
    #[command(alias = "pic_sysphoto")]
    PicSysphoto {
        /// The button's key.
        key: String,
        /// Pictures sent.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Menu camera or album (`pic_photo_or_album`).
    #[command(alias = "pic_photo_or_album")]
    PicPhotoOrAlbum {
        /// The button's key.
        key: String,
        /// Pictures sent.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Menu WeChat album (`pic_weixin`).
    #[command(alias = "pic_weixin")]
    PicWeixin {
        /// The button's key.
        key: String,
        /// Pictures sent.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Menu location picker (`location_select`).
    #[command(allow_negative_numbers = true)]
    #[command(alias = "location_select")]
    LocationSelect {
        /// The button's key.
        key: String,
        /// Latitude.
        #[arg(default_value_t = 23.137466)]
        lat: f64,
        /// Longitude.
        #[arg(default_value_t = 113.352425)]
        lon: f64,
        /// Place description.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Any other event, by name with its fields: what WeChat pushes without a user action
    /// (card, template, mass-send, customer-service events …) or an event wemp does not
    /// model yet: `other user_get_card -f CardId=pCard1 -f UserCardCode=12312312`.
    Other {
        /// The `Event` value, as WeChat spells it.
        event: String,
        /// A further element, `NAME=VALUE` (repeatable, kept in order).
        #[arg(short, long = "field", value_name = "NAME=VALUE", value_parser = field)]
        fields: Vec<(String, String)>,
    },
}

/// A message `wemp sim` cannot build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A `--field` is not `NAME=VALUE`.
    #[error("{0:?} is not NAME=VALUE")]
    NotNameValue(String),
    /// A `--field`'s name cannot name an element.
    #[error("{0:?} is not an element name (letters, digits, '_', '-', '.'; not starting with a digit)")]
    NotElementName(String),
    /// The file of a raw message cannot be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file (`-` for standard input).
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The raw message is not acceptable XML.
    #[error("{file}: {source}")]
    Parse {
        /// The file (`-` for standard input).
        file: String,
        /// Why.
        source: wemp_proto::Error,
    },
}

/// `NAME=VALUE`, NAME an element name.
fn field(arg: &str) -> Result<(String, String), BuildError> {
    let (name, value) = arg.split_once('=').ok_or_else(|| BuildError::NotNameValue(arg.to_owned()))?;
    if !wemp_proto::wechat::compose::is_xml_name(name) {
        return Err(BuildError::NotElementName(name.to_owned()));
    }
    Ok((name.to_owned(), value.to_owned()))
}

impl MessageSpec {
    /// A text message saying `content`.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text { content: vec![content.into()] }
    }

    /// Whether this is an ordinary message (it carries a `MsgId`), not an event.
    pub fn is_message(&self) -> bool {
        !matches!(self, Self::Event(_) | Self::Raw { .. })
    }

    /// A short name for reports (`text`, `event CLICK`, …).
    pub fn label(&self) -> String {
        self.to_message().map_or_else(|| "raw".into(), |m| m.label())
    }

    /// The message this spec describes; `None` for [`MessageSpec::Raw`] (XML sent as is).
    pub fn to_message(&self) -> Option<Message> {
        Some(match self {
            Self::Text { content } => Message::Text { content: content.join(" ") },
            Self::Image { media_id, pic_url } => {
                Message::Image { media_id: media_id.clone(), pic_url: pic_url.clone() }
            }
            Self::Voice { media_id, format, recognition } => Message::Voice {
                media_id: media_id.clone(),
                format: format.clone(),
                recognition: recognition.clone(),
            },
            Self::Video { media_id, thumb_media_id } => {
                Message::Video { media_id: media_id.clone(), thumb_media_id: thumb_media_id.clone() }
            }
            Self::Shortvideo { media_id, thumb_media_id } => {
                Message::ShortVideo { media_id: media_id.clone(), thumb_media_id: thumb_media_id.clone() }
            }
            Self::Location { lat, lon, scale, label } => {
                Message::Location { lat: *lat, lon: *lon, scale: *scale, label: label.clone() }
            }
            Self::Link { url, title, description } => {
                Message::Link { url: url.clone(), title: title.clone(), description: description.clone() }
            }
            Self::Miniprogrampage { title, app_id, page_path } => Message::MiniProgramPage {
                title: title.clone(),
                app_id: app_id.clone(),
                page_path: page_path.clone(),
            },
            Self::Event(e) => Message::Event(e.to_event()),
            Self::Raw { .. } => return None,
        })
    }

    /// Builds the message from `header` (the user to the account) with `msg_id`.
    ///
    /// # Errors
    /// Only for [`MessageSpec::Raw`]: the file cannot be read or is not acceptable XML.
    pub fn build(&self, header: Header, msg_id: u64) -> Result<Incoming, BuildError> {
        if let Some(message) = self.to_message() {
            return Ok(message.build(header, msg_id));
        }
        let Self::Raw { file } = self else { unreachable!("only Raw has no Message") };
        let xml = if file == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(file)
        }
        .map_err(|source| BuildError::Read { file: file.clone(), source })?;
        Incoming::parse(&xml).map_err(|source| BuildError::Parse { file: file.clone(), source })
    }
}

impl EventSpec {
    /// The event this spec describes.
    pub fn to_event(&self) -> EventMessage {
        match self {
            Self::Subscribe { scene, ticket } => {
                EventMessage::Subscribe { scene: scene.clone(), ticket: ticket.clone() }
            }
            Self::Unsubscribe => EventMessage::Unsubscribe,
            Self::Scan { scene, ticket } => {
                EventMessage::Scan { scene: scene.clone(), ticket: ticket.clone() }
            }
            Self::Click { key } => EventMessage::Click { key: key.clone() },
            Self::View { url, menu_id } => EventMessage::View { url: url.clone(), menu_id: menu_id.clone() },
            Self::Location { lat, lon, precision } => {
                EventMessage::Location { lat: *lat, lon: *lon, precision: *precision }
            }
            Self::ViewMiniprogram { path } => EventMessage::ViewMiniprogram { path: path.clone() },
            Self::ScancodePush { key, result } => {
                EventMessage::ScancodePush { key: key.clone(), result: result.clone() }
            }
            Self::ScancodeWaitmsg { key, result } => {
                EventMessage::ScancodeWaitmsg { key: key.clone(), result: result.clone() }
            }
            Self::PicSysphoto { key, count } => EventMessage::PicSysphoto { key: key.clone(), count: *count },
            Self::PicPhotoOrAlbum { key, count } => {
                EventMessage::PicPhotoOrAlbum { key: key.clone(), count: *count }
            }
            Self::PicWeixin { key, count } => EventMessage::PicWeixin { key: key.clone(), count: *count },
            Self::LocationSelect { key, lat, lon, label } => {
                EventMessage::LocationSelect { key: key.clone(), lat: *lat, lon: *lon, label: label.clone() }
            }
            Self::Other { event, fields } => {
                EventMessage::Other { event: event.clone(), fields: fields.clone() }
            }
        }
    }

    /// WeChat's spelling of the `Event` value.
    pub fn wire_name(&self) -> String {
        self.to_event().wire_name().to_owned()
    }

    /// Builds the event from `header`.
    pub fn build(&self, header: Header) -> Event {
        self.to_event().build(header)
    }
}

/// One of every message and event type `kind` of account receives, as `wemp sim check`
/// sends them: an Official Account's; a WeCom app's (the messages and menu events it shares
/// with Official Accounts, and `enter_agent`); a Mini Program's customer-service messages
/// (text, image, card, and `user_enter_tempsession`).
pub fn every_type(kind: Kind) -> Vec<MessageSpec> {
    let all = official_account_types();
    match kind {
        Kind::Wecom => {
            let shared = all.into_iter().filter(|spec| {
                !matches!(
                    spec,
                    MessageSpec::Shortvideo { .. }
                        | MessageSpec::Event(
                            EventSpec::Scan { .. }
                                | EventSpec::ViewMiniprogram { .. }
                                | EventSpec::Subscribe { scene: Some(_), .. }
                        )
                )
            });
            let enter = MessageSpec::Event(EventSpec::Other {
                event: "enter_agent".into(),
                fields: vec![("EventKey".into(), String::new())],
            });
            shared.chain([enter]).collect()
        }
        Kind::Miniprogram => vec![
            MessageSpec::text("hello"),
            MessageSpec::Image {
                media_id: "sim_image_media_id".into(),
                pic_url: "https://mmbiz.qpic.cn/sim/0".into(),
            },
            MessageSpec::Miniprogrampage {
                title: "A page".into(),
                app_id: "wx_sim_miniprogram".into(),
                page_path: "pages/index/index".into(),
            },
            MessageSpec::Event(EventSpec::Other {
                event: "user_enter_tempsession".into(),
                fields: vec![("SessionFrom".into(), "sim".into())],
            }),
        ],
        _ => all,
    }
}

fn official_account_types() -> Vec<MessageSpec> {
    vec![
        MessageSpec::text("hello"),
        MessageSpec::Image {
            media_id: "sim_image_media_id".into(),
            pic_url: "https://mmbiz.qpic.cn/sim/0".into(),
        },
        MessageSpec::Voice { media_id: "sim_voice_media_id".into(), format: "amr".into(), recognition: None },
        MessageSpec::Video { media_id: "sim_video_media_id".into(), thumb_media_id: "sim_thumb".into() },
        MessageSpec::Shortvideo {
            media_id: "sim_shortvideo_media_id".into(),
            thumb_media_id: "sim_thumb".into(),
        },
        MessageSpec::Location { lat: 23.134521, lon: 113.358803, scale: 20, label: "Guangzhou".into() },
        MessageSpec::Link {
            url: "https://example.com/".into(),
            title: "A link".into(),
            description: "shared".into(),
        },
        MessageSpec::Event(EventSpec::Subscribe { scene: None, ticket: "sim_ticket".into() }),
        MessageSpec::Event(EventSpec::Subscribe { scene: Some("123".into()), ticket: "sim_ticket".into() }),
        MessageSpec::Event(EventSpec::Scan { scene: "123".into(), ticket: "sim_ticket".into() }),
        MessageSpec::Event(EventSpec::Location { lat: 23.137466, lon: 113.352425, precision: 119.385040 }),
        MessageSpec::Event(EventSpec::Click { key: "V1001_HELP".into() }),
        MessageSpec::Event(EventSpec::View { url: "https://example.com/".into(), menu_id: None }),
        MessageSpec::Event(EventSpec::ViewMiniprogram { path: "pages/index/index".into() }),
        MessageSpec::Event(EventSpec::ScancodePush { key: "rselfmenu_0_1".into(), result: "hello".into() }),
        MessageSpec::Event(EventSpec::ScancodeWaitmsg {
            key: "rselfmenu_0_0".into(),
            result: "hello".into(),
        }),
        MessageSpec::Event(EventSpec::PicSysphoto { key: "rselfmenu_1_0".into(), count: 1 }),
        MessageSpec::Event(EventSpec::PicPhotoOrAlbum { key: "rselfmenu_1_1".into(), count: 2 }),
        MessageSpec::Event(EventSpec::PicWeixin { key: "rselfmenu_1_2".into(), count: 1 }),
        MessageSpec::Event(EventSpec::LocationSelect {
            key: "rselfmenu_2_0".into(),
            lat: 23.104105,
            lon: 113.320107,
            label: "Guangzhou".into(),
        }),
        MessageSpec::Event(EventSpec::Unsubscribe),
    ]
}

#[cfg(test)]
mod tests {
    use wemp_proto::{EventKind, MsgKind};

    use super::*;

    fn header() -> Header {
        Header { to: "gh_1".into(), from: "o1".into(), create_time: 1_700_000_000, agent_id: None }
    }

    #[test]
    fn every_type_round_trips_through_the_parser_as_its_typed_variant() {
        let kinds = [Kind::OfficialAccount, Kind::Wecom, Kind::Miniprogram];
        for spec in kinds.into_iter().flat_map(every_type) {
            let built = spec.build(header(), 42).unwrap();
            let parsed = Incoming::parse(&built.to_xml()).unwrap();
            assert!(!matches!(parsed, Incoming::Unknown(_)), "{} parsed as unknown", spec.label());
            if let Incoming::Event(e) = &parsed {
                assert!(!matches!(e, Event::Unknown(_)), "{} parsed as unknown event: {e:?}", spec.label());
                assert!(!matches!(e.kind(), EventKind::Other(_)), "{}", spec.label());
            }
            assert_eq!(parsed, built, "{}", spec.label());
            assert_eq!(parsed.header(), &header());
        }
    }

    #[test]
    fn messages_carry_the_msg_id_and_events_do_not() {
        let text = MessageSpec::text("hi").build(header(), 7).unwrap();
        assert_eq!(text.msg_id(), Some(7));
        assert_eq!(text.kind(), MsgKind::Text);
        let sub = MessageSpec::Event(EventSpec::Subscribe { scene: Some("42".into()), ticket: "t".into() })
            .build(header(), 7)
            .unwrap();
        assert_eq!(sub.msg_id(), None);
        assert_eq!(sub.event().unwrap().scene(), Some("42"));
    }
}
