//! Every passive reply type: the documentation examples read back field by field, and
//! rendered output that reparses to the same reply.

use wemp_proto::reply::{Music, ReplyMessage};
use wemp_proto::{Article, Incoming, Reply, ReplyContext};

use crate::fixtures::load;

fn read(path: &str) -> Reply {
    let msg = ReplyMessage::parse(&load(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = msg.header.clone().unwrap();
    assert_eq!(
        (header.to.as_str(), header.from.as_str(), header.create_time),
        ("toUser", "fromUser", 12345678)
    );
    // Render it again (as an event answer, where 8 articles are allowed) and reparse.
    let ctx = ReplyContext {
        to: header.to,
        from: header.from,
        create_time: header.create_time,
        answering_message: false,
    };
    let xml = msg.reply.to_xml(&ctx).unwrap();
    assert_eq!(ReplyMessage::parse(&xml).unwrap(), msg, "{path} re-rendered:\n{xml}");
    msg.reply
}

#[test]
fn every_reply_fixture() {
    assert_eq!(read("reply/text.xml"), Reply::text("你好"));
    assert_eq!(read("reply/image.xml"), Reply::image("media_id"));
    assert_eq!(read("reply/voice.xml"), Reply::voice("media_id"));
    assert_eq!(
        read("reply/video.xml"),
        Reply::video("media_id", Some("title".into()), Some("description".into()))
    );
    let mut music = Music::new("media_id");
    music.title = Some("TITLE".into());
    music.description = Some("DESCRIPTION".into());
    music.music_url = Some("MUSIC_Url".into());
    music.hq_music_url = Some("HQ_MUSIC_Url".into());
    assert_eq!(read("reply/music.xml"), Reply::music(music));
    assert_eq!(
        read("reply/news.xml"),
        Reply::news(vec![Article::new("title1", "description1", "picurl", "url")])
    );
    assert_eq!(read("reply/transfer_customer_service.xml"), Reply::transfer_customer_service());
    assert_eq!(read("reply/transfer_customer_service_kf.xml"), Reply::transfer_to("test1@test"));
}

#[test]
fn direction_is_swapped_and_time_in_seconds() {
    let msg = Incoming::parse(&load("message/text.xml")).unwrap();
    let ctx = ReplyContext::answering(&msg, 1_700_000_123);
    assert_eq!(ctx.to, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(ctx.from, "gh_10f6c3c3ac5a");
    assert!(ctx.answering_message);
    let xml = Reply::text("hi").to_xml(&ctx).unwrap();
    assert_eq!(
        xml,
        "<xml><ToUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></ToUserName>\
         <FromUserName><![CDATA[gh_10f6c3c3ac5a]]></FromUserName><CreateTime>1700000123</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>"
    );
}

#[test]
fn news_limit_one_for_messages_eight_for_events() {
    let article = Article::new("t", "d", "p", "u");
    let msg = Incoming::parse(&load("message/text.xml")).unwrap();
    let event = Incoming::parse(&load("event/subscribe.xml")).unwrap();
    let two = Reply::news(vec![article.clone(); 2]);
    assert!(two.to_xml(&ReplyContext::answering(&msg, 1)).is_err());
    let xml = two.to_xml(&ReplyContext::answering(&event, 1)).unwrap();
    assert!(xml.contains("<ArticleCount>2</ArticleCount>"));
    let eight = Reply::news(vec![article.clone(); 8]);
    assert!(eight.to_xml(&ReplyContext::answering(&event, 1)).is_ok());
    let nine = Reply::news(vec![article; 9]);
    let err = nine.to_xml(&ReplyContext::answering(&event, 1)).unwrap_err();
    assert_eq!(err.to_string(), "news reply has 9 articles; 8 allowed when answering an event");
}

#[test]
fn cdata_terminator_in_content_is_split() {
    let msg = Incoming::parse(&load("message/text.xml")).unwrap();
    let ctx = ReplyContext::answering(&msg, 1);
    let content = "a]]>b <![CDATA[ c ]]]]> &amp; <xml>";
    let xml = Reply::text(content).to_xml(&ctx).unwrap();
    assert!(xml.contains("<Content><![CDATA[a]]]]><![CDATA[>b"), "{xml}");
    assert_eq!(ReplyMessage::parse(&xml).unwrap().reply, Reply::text(content));
}

#[test]
fn invalid_replies_are_reported() {
    assert!(ReplyMessage::parse("<xml><MsgType>text</MsgType></xml>").is_err());
    let bad_type = "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>\
                    <MsgType>event</MsgType></xml>";
    assert!(ReplyMessage::parse(bad_type).unwrap_err().to_string().contains("not a passive reply type"));
    let miscount = load("reply/news.xml").replace("<ArticleCount>1", "<ArticleCount>2");
    assert!(ReplyMessage::parse(&miscount).unwrap_err().to_string().contains("ArticleCount says 2"));
    assert!(ReplyMessage::parse("<html>oops").is_err());
}
