//! Customer service (`client.kf()`) against the fake platform.

use serde_json::json;
use wemp_client::api::kf::{CsMessage, LinkArticle, MenuChoice};
use wemp_client::{ErrCode, Error, Lifts, Limit, ReplyDelivery};
use wemp_proto::Reply;
use wemp_proto::reply::{Article, Music};
use wemp_testkit::platform::{FakePlatform, PlatformConfig};

use crate::{body, builder, setup};

#[tokio::test]
async fn customer_service_messages_of_every_type() {
    let (platform, client) = setup().await;
    let cases = [
        (CsMessage::text("hi"), json!({ "touser": "o1", "msgtype": "text", "text": { "content": "hi" } })),
        (
            CsMessage::Image("m1".into()),
            json!({ "touser": "o1", "msgtype": "image", "image": { "media_id": "m1" } }),
        ),
        (
            CsMessage::Voice("m2".into()),
            json!({ "touser": "o1", "msgtype": "voice", "voice": { "media_id": "m2" } }),
        ),
        (
            CsMessage::Video {
                media_id: "v".into(),
                thumb_media_id: Some("t".into()),
                title: Some("T".into()),
                description: None,
            },
            json!({ "touser": "o1", "msgtype": "video", "video": { "media_id": "v", "thumb_media_id": "t", "title": "T" } }),
        ),
        (
            CsMessage::Music {
                title: None,
                description: None,
                music_url: "u".into(),
                hq_music_url: "h".into(),
                thumb_media_id: "t".into(),
            },
            json!({ "touser": "o1", "msgtype": "music", "music": { "musicurl": "u", "hqmusicurl": "h", "thumb_media_id": "t" } }),
        ),
        (
            CsMessage::News(LinkArticle {
                title: "a".into(),
                description: "b".into(),
                url: "c".into(),
                picurl: "d".into(),
            }),
            json!({ "touser": "o1", "msgtype": "news", "news": { "articles": [{ "title": "a", "description": "b", "url": "c", "picurl": "d" }] } }),
        ),
        (
            CsMessage::MpNews("n".into()),
            json!({ "touser": "o1", "msgtype": "mpnews", "mpnews": { "media_id": "n" } }),
        ),
        (
            CsMessage::MpNewsArticle("a1".into()),
            json!({ "touser": "o1", "msgtype": "mpnewsarticle", "mpnewsarticle": { "article_id": "a1" } }),
        ),
        (
            CsMessage::Menu {
                head: "H".into(),
                choices: vec![MenuChoice { id: "101".into(), content: "yes".into() }],
                tail: "T".into(),
            },
            json!({ "touser": "o1", "msgtype": "msgmenu", "msgmenu": { "head_content": "H", "list": [{ "id": "101", "content": "yes" }], "tail_content": "T" } }),
        ),
        (
            CsMessage::MiniProgramPage {
                title: "t".into(),
                appid: "wxa".into(),
                pagepath: "p".into(),
                thumb_media_id: "m".into(),
            },
            json!({ "touser": "o1", "msgtype": "miniprogrampage", "miniprogrampage": { "title": "t", "appid": "wxa", "pagepath": "p", "thumb_media_id": "m" } }),
        ),
    ];
    for (msg, expected) in &cases {
        client.kf().send("o1", msg).await.unwrap();
        assert_eq!(&body(&platform, "/cgi-bin/message/custom/send"), expected);
    }
    client.kf().send_as("o1", &CsMessage::text("x"), "kf1@test").await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/custom/send")["customservice"]["kf_account"], "kf1@test");
    assert_eq!(platform.sent_messages().len(), cases.len() + 1);

    client.kf().typing("o1", true).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/custom/typing"),
        json!({ "touser": "o1", "command": "Typing" })
    );
    client.kf().typing("o1", false).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/custom/typing")["command"], "CancelTyping");
}

#[tokio::test]
async fn send_reply_maps_replies_and_window_errors() {
    let platform = FakePlatform::start_with(PlatformConfig::default().cs_message_limit(2)).await;
    let client = builder(&platform).build().unwrap();
    assert_eq!(client.kf().send_reply("o1", &Reply::None).await.unwrap(), ReplyDelivery::Nothing);
    assert_eq!(platform.requests_to("/cgi-bin/message/custom/send").len(), 0);

    assert!(client.kf().send_reply("o1", &Reply::text("late")).await.unwrap().is_sent());
    assert_eq!(body(&platform, "/cgi-bin/message/custom/send")["text"]["content"], "late");
    let news = Reply::news(vec![Article::new("t", "d", "p", "u")]);
    assert_eq!(client.kf().send_reply("o1", &news).await.unwrap(), ReplyDelivery::Sent);
    assert_eq!(
        body(&platform, "/cgi-bin/message/custom/send")["news"],
        json!({ "articles": [{ "title": "t", "description": "d", "url": "u", "picurl": "p" }] })
    );
    match client.kf().send_reply("o1", &Reply::image("m")).await.unwrap() {
        ReplyDelivery::LimitReached(e) => {
            assert_eq!(e.code, ErrCode::CS_MESSAGE_LIMIT);
            assert_eq!(e.limit(), Some(Limit::CustomerServiceCount));
            assert_eq!(e.limit().unwrap().lifts(0), Lifts::WhenUserWrites);
        }
        other => panic!("{other:?}"),
    }
    platform.close_cs_window("o2");
    match client.kf().send_reply("o2", &Reply::music(Music::new("thumb"))).await.unwrap() {
        ReplyDelivery::WindowClosed(e) => {
            assert!(e.to_string().contains("48 hours"), "{e}");
            assert_eq!(e.limit(), Some(Limit::CustomerServiceWindow));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(body(&platform, "/cgi-bin/message/custom/send")["msgtype"], "music");
    let err = client.kf().send_reply("o1", &Reply::transfer_customer_service()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    client.kf().send_reply("o3", &Reply::voice("v")).await.unwrap();
    client.kf().send_reply("o3", &Reply::video("v", Some("t".into()), None)).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/custom/send")["video"],
        json!({ "media_id": "v", "title": "t" })
    );
}

#[tokio::test]
async fn kf_accounts_and_sessions() {
    let (platform, client) = setup().await;
    client.kf().add_account("kf1@test", "Alice").await.unwrap();
    assert_eq!(
        body(&platform, "/customservice/kfaccount/add"),
        json!({ "kf_account": "kf1@test", "nickname": "Alice" })
    );
    client.kf().update_account("kf1@test", "Alicia").await.unwrap();
    let list = client.kf().accounts().await.unwrap();
    assert_eq!((list[0].kf_account.as_str(), list[0].kf_nick.as_str()), ("kf1@test", "Alicia"));
    assert_eq!(client.kf().online().await.unwrap()[0].kf_account, "kf1@test");
    client.kf().create_session("kf1@test", "o1").await.unwrap();
    assert_eq!(client.kf().session_of("o1").await.unwrap().as_deref(), Some("kf1@test"));
    assert_eq!(client.kf().sessions("kf1@test").await.unwrap()[0].openid, "o1");
    assert_eq!(client.kf().waiting().await.unwrap().count, 0);
    client.kf().close_session("kf1@test", "o1").await.unwrap();
    assert_eq!(client.kf().session_of("o1").await.unwrap(), None);
    client.kf().delete_account("kf1@test").await.unwrap();
    assert_eq!(
        platform.last_request("/customservice/kfaccount/del").unwrap().query["kf_account"],
        "kf1@test"
    );
    assert_eq!(client.kf().delete_account("kf1@test").await.unwrap_err().code(), Some(ErrCode(65401)));
}
