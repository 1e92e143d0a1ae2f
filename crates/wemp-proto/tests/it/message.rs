//! Every ordinary message type from the official documentation examples.

use wemp_proto::message::*;
use wemp_proto::{Incoming, MsgKind};

use crate::fixtures::{load, parse_round_trip};

fn header_ok(h: &Header) {
    assert_eq!(h.to, "gh_10f6c3c3ac5a");
    assert_eq!(h.from, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(h.create_time, 1348831860);
}

#[test]
fn text() {
    let Incoming::Text(m) = parse_round_trip("message/text.xml") else { panic!() };
    header_ok(&m.header);
    assert_eq!(m.content, "this is a test");
    assert_eq!(m.id, 1234567890123456);
    assert_eq!(m.msg_data_id.as_deref(), Some("2247483651"));
    assert_eq!(m.idx.as_deref(), Some("1"));
    assert_eq!(m.biz_msg_menu_id, None);
}

#[test]
fn text_from_menu_message_with_id_beyond_2_pow_53() {
    let msg = parse_round_trip("message/text_menu.xml");
    assert_eq!(msg.msg_id(), Some(6054768590064713728));
    let Incoming::Text(m) = msg else { panic!() };
    assert_eq!(m.content, "满意");
    assert_eq!(m.biz_msg_menu_id.as_deref(), Some("101"));
    assert!(m.id > (1u64 << 53));
}

#[test]
fn image() {
    let Incoming::Image(m) = parse_round_trip("message/image.xml") else { panic!() };
    header_ok(&m.header);
    assert_eq!(m.pic_url, "http://mmbiz.qpic.cn/mmbiz/this");
    assert_eq!(m.media_id, "media_id");
    assert_eq!(m.id, 1234567890123456);
}

#[test]
fn voice_with_16k_and_with_recognition() {
    let Incoming::Voice(m) = parse_round_trip("message/voice.xml") else { panic!() };
    assert_eq!((m.media_id.as_str(), m.format.as_str()), ("media_id", "amr"));
    assert_eq!(m.media_id_16k.as_deref(), Some("media_id_16k"));
    assert_eq!(m.recognition, None);
    let Incoming::Voice(m) = parse_round_trip("message/voice_recognition.xml") else { panic!() };
    assert_eq!(m.recognition.as_deref(), Some("腾讯微信团队"));
    assert_eq!(m.media_id_16k, None);
}

#[test]
fn video_and_shortvideo() {
    let Incoming::Video(m) = parse_round_trip("message/video.xml") else { panic!() };
    assert_eq!((m.media_id.as_str(), m.thumb_media_id.as_str()), ("media_id", "thumb_media_id"));
    let msg = parse_round_trip("message/shortvideo.xml");
    assert_eq!(msg.kind(), MsgKind::ShortVideo);
    let Incoming::ShortVideo(m) = msg else { panic!() };
    assert_eq!(m.thumb_media_id, "thumb_media_id");
}

#[test]
fn location_numbers_are_bare() {
    let Incoming::Location(m) = parse_round_trip("message/location.xml") else { panic!() };
    assert_eq!(m.latitude, 23.134521);
    assert_eq!(m.longitude, 113.358803);
    assert_eq!(m.scale, 20);
    assert_eq!(m.label, "位置信息");
}

#[test]
fn link() {
    let Incoming::Link(m) = parse_round_trip("message/link.xml") else { panic!() };
    assert_eq!(m.title, "公众平台官网链接");
    assert_eq!(m.description, "公众平台官网链接");
    assert_eq!(m.url, "url");
}

#[test]
fn miniprogrampage() {
    let Incoming::MiniProgramPage(m) = parse_round_trip("message/miniprogrampage.xml") else { panic!() };
    assert_eq!((m.title.as_str(), m.app_id.as_str(), m.page_path.as_str()), ("Title", "AppId", "PagePath"));
    assert_eq!(m.thumb_url.as_deref(), Some("ThumbUrl"));
}

#[test]
fn unknown_message_type_keeps_raw_byte_for_byte() {
    let xml = load("message/unknown_future.xml");
    let msg = Incoming::parse(&xml).unwrap();
    let Incoming::Unknown(u) = &msg else { panic!("{msg:?}") };
    assert_eq!(u.msg_type, "hologram");
    assert_eq!(u.raw.as_str(), xml);
    assert_eq!(u.field("HoloId"), Some("h-1"));
    assert_eq!(msg.kind(), MsgKind::from_wire("hologram"));
    assert!(matches!(msg.kind(), MsgKind::Other(o) if o.as_str() == "hologram"));
    assert_eq!(msg.msg_id(), Some(9223372036854775999));
    assert_eq!(msg.to_xml(), xml);
    assert_eq!(Incoming::parse(&msg.to_xml()).unwrap(), msg);
    assert!(msg.dedup_key().starts_with("msg:oyORnuP8q7ou2gfYjqLzSIWZf0rs:"));
}

#[test]
fn known_type_with_undecodable_field_falls_back_to_unknown() {
    let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>\
               <MsgType>text</MsgType><Content>x</Content><MsgId>not-a-number</MsgId></xml>";
    let Incoming::Unknown(u) = Incoming::parse(xml).unwrap() else { panic!() };
    assert!(u.decode_error.as_deref().unwrap().contains("MsgId"), "{:?}", u.decode_error);
    assert_eq!(u.raw.as_str(), xml);
}

#[test]
fn msg_type_is_case_insensitive_and_trimmed() {
    let xml = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime> 1 </CreateTime>\
               <MsgType>TEXT</MsgType><Content> keep spaces </Content><MsgId>5</MsgId></xml>";
    let Incoming::Text(t) = Incoming::parse(xml).unwrap() else { panic!() };
    assert_eq!(t.content, " keep spaces ");
    assert_eq!(t.header.create_time, 1);
}

#[test]
fn dedup_key_includes_user_for_messages() {
    let a = parse_round_trip("message/text.xml");
    assert_eq!(a.dedup_key(), "msg:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1234567890123456");
}

#[test]
fn push_dedup_key_appends_what_dedup_key_returns() {
    let garbled = Incoming::parse(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
         <CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[hi]]></Content><MsgId>12ab</MsgId></xml>",
    )
    .unwrap();
    for msg in [parse_round_trip("message/text.xml"), parse_round_trip("event/click.xml"), garbled] {
        let mut key = "wx1:".to_owned();
        msg.push_dedup_key(&mut key);
        assert_eq!(key, format!("wx1:{}", msg.dedup_key()));
    }
    // A message's key fits the room it asks for, the longest MsgId included.
    let longest = Incoming::parse(&format!(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
         <MsgType>text</MsgType><Content>hi</Content><MsgId>{}</MsgId></xml>",
        u64::MAX
    ))
    .unwrap();
    assert_eq!(longest.dedup_key().len(), longest.dedup_key_room());
}

#[test]
fn messages_whose_fields_do_not_decode_keep_apart_in_dedup() {
    let text = |id: &str, created: &str| {
        Incoming::parse(&format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[hi]]></Content><MsgId>{id}</MsgId></xml>"
        ))
        .unwrap()
    };
    // A garbled MsgId: the message arrives as Unknown, keyed on the MsgId as written.
    let (a, b) = (text("12ab", "1700000000"), text("12ac", "1700000000"));
    assert!(matches!(a, Incoming::Unknown(_)), "{a:?}");
    assert_ne!(a.dedup_key(), b.dedup_key());
    assert_eq!(a.dedup_key(), text("12ab", "1700000000").dedup_key(), "a retry shares the key");
    assert_eq!(a.dedup_key(), "msg:o1:12ab");
    // A garbled CreateTime on an event: keyed on the CreateTime as written.
    let event = |created: &str| {
        Incoming::parse(&format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
             <Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[K]]></EventKey></xml>"
        ))
        .unwrap()
    };
    let (c, d) = (event("17000000x1"), event("17000000x2"));
    assert_ne!(c.dedup_key(), d.dedup_key(), "{}", c.dedup_key());
    assert_eq!(c.dedup_key(), event("17000000x1").dedup_key());
}

#[test]
fn malformed_xml_is_an_error_with_reference_code() {
    let err = Incoming::parse("<xml><MsgType>text</xml>").unwrap_err();
    assert_eq!(err.reference_code().code(), -40002);
    let err = Incoming::parse("<!DOCTYPE x [<!ENTITY a 'b'>]><xml/>").unwrap_err();
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
}

#[test]
fn json_output_names_the_kind() {
    let msg = parse_round_trip("message/text.xml");
    let json = serde_json::to_value(&msg).unwrap();
    assert_eq!(json["kind"], "text");
    assert_eq!(json["content"], "this is a test");
    assert_eq!(json["from"], "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
}

#[test]
fn a_message_taken_from_its_document_is_the_message_read_from_it() {
    let text = crate::fixtures::load("message/text.xml");
    let mut docs: Vec<String> = ["event", "message"]
        .iter()
        .flat_map(|dir| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir);
            std::fs::read_dir(dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        })
        .collect();
    // Text messages that do not decode as such, and one whose ids come twice.
    docs.push(text.replace("<MsgId>", "<MsgId>x"));
    docs.push(text.replace("<Content>", "<Contents>").replace("</Content>", "</Contents>"));
    docs.push(text.replace("<FromUserName>", "<ToUserName>a</ToUserName><FromUserName>"));
    docs.push(text.replace("</xml>", "<Content>second</Content></xml>"));
    let mut taken = 0;
    for xml in &docs {
        let doc = wemp_proto::Document::parse(xml).unwrap();
        let mut took = doc.clone();
        let msg = Incoming::take_from_document(&mut took);
        assert_eq!(msg, Incoming::from_document(&doc), "{xml}");
        assert_eq!(took.raw.as_str(), xml);
        if let Incoming::Text(t) = &msg {
            // What it took is gone from the document; the rest is as it was.
            assert_eq!(took.root.text_of("Content"), Some(""), "{xml}");
            assert!(!t.content.is_empty() && !t.header.from.is_empty(), "{xml}");
            taken += 1;
        } else {
            assert_eq!(took, doc, "{xml}");
        }
    }
    assert!(taken >= 4, "{taken}");
}
