//! Customer service (`client.kf()`) against the fake platform.

use std::time::Duration;

use serde_json::{Value, json};
use wemp_client::api::kf::{CsMessage, LinkArticle, MenuChoice};
use wemp_client::{ErrCode, Error, Lifts, Limit, MediaFile, ReplyDelivery};
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

#[tokio::test]
async fn chat_records_page_through_a_day_and_their_limits_are_checked_first() {
    let (platform, client) = setup().await;
    let start = platform.now_ms() / 1000;
    client.kf().send("o1", &CsMessage::text("hello")).await.unwrap();
    client.kf().send_as("o2", &CsMessage::Image("m1".into()), "kf1@test").await.unwrap();
    platform.advance(Duration::from_secs(3600));
    client.kf().send("o1", &CsMessage::text("an hour later")).await.unwrap();
    // A message that did not go out is no record.
    platform.close_cs_window("o3");
    client.kf().send("o3", &CsMessage::text("closed")).await.unwrap_err();
    let end = start + 86_400;

    let first = client.kf().records(start, end, 1, 2).await.unwrap();
    assert_eq!(
        body(&platform, "/customservice/msgrecord/getmsglist"),
        json!({ "starttime": start, "endtime": end, "msgid": 1, "number": 2 })
    );
    assert_eq!(first.number, 2);
    assert_eq!((first.recordlist[0].openid.as_str(), first.recordlist[0].text.as_str()), ("o1", "hello"));
    let image = &first.recordlist[1];
    assert_eq!((image.text.as_str(), image.worker.as_str(), image.opercode), ("[image]", "kf1@test", 2002));
    let second = client.kf().records(start, end, first.msgid, 2).await.unwrap();
    assert_eq!(second.number, 1, "fewer than asked: the range is exhausted");
    assert_eq!(second.recordlist[0].text, "an hour later");
    assert_eq!(second.recordlist[0].time, start + 3600);
    // The first hour alone.
    let early = client.kf().records(start, start + 1800, 1, 10_000).await.unwrap();
    assert_eq!(early.recordlist.len(), 2);

    // The documented limits fail before any request.
    let asked = platform.requests_to("/customservice/msgrecord/getmsglist").len();
    for (s, e, msgid, number, says) in [
        (start, start + 86_401, 1, 10, "24 hours"),
        (start, start, 1, 10, "comes after"),
        (start + 10, start, 1, 10, "comes after"),
        (start, end, 0, 10, "msgid"),
        (start, end, 1, 0, "1 to 10000"),
        (start, end, 1, 10_001, "1 to 10000"),
    ] {
        let err = client.kf().records(s, e, msgid, number).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains(says)), "{err}");
    }
    assert_eq!(platform.requests_to("/customservice/msgrecord/getmsglist").len(), asked);
    // The platform refuses the same ranges, with the hint to query a day at a time.
    let two_days = json!({ "starttime": start, "endtime": start + 2 * 86_400, "msgid": 1, "number": 10 });
    let err =
        client.post_json::<Value, _>("/customservice/msgrecord/getmsglist", &two_days).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65417)));
    assert!(err.to_string().contains("one day at a time"), "{err}");
}

#[tokio::test]
async fn agent_avatars_and_worker_invitations() {
    let (platform, client) = setup().await;
    let kf = client.kf();
    kf.add_account("kf1@test", "Alice").await.unwrap();
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0xFF, 0xD9];
    kf.upload_avatar("kf1@test", MediaFile::from_bytes("alice.jpg", jpeg.to_vec())).await.unwrap();
    let r = platform.last_request("/customservice/kfaccount/uploadheadimg").unwrap();
    assert_eq!(r.query["kf_account"], "kf1@test");
    assert_eq!(r.parts[0].name, "media");
    assert_eq!(&r.parts[0].data[..], &jpeg[..]);
    assert!(kf.accounts().await.unwrap()[0].kf_headimgurl.starts_with("http://"));

    // Not a .jpg name: refused before sending; a .jpg that is not a JPEG: refused by WeChat.
    let err = kf.upload_avatar("kf1@test", MediaFile::from_bytes("a.png", jpeg.to_vec())).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("JPEG")), "{err}");
    let err = kf.upload_avatar("kf1@test", MediaFile::from_bytes("a.jpg", Vec::new())).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("empty")), "{err}");
    let err = kf.upload_avatar("kf1", MediaFile::from_bytes("a.jpg", jpeg.to_vec())).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("prefix@wechat_id")), "{err}");
    assert_eq!(platform.requests_to("/customservice/kfaccount/uploadheadimg").len(), 1);
    let png = MediaFile::from_bytes("b.jpg", b"\x89PNG\r\n".to_vec());
    assert_eq!(kf.upload_avatar("kf1@test", png).await.unwrap_err().code(), Some(ErrCode(40005)));
    let err = kf.upload_avatar("kf9@test", MediaFile::from_bytes("a.jpg", jpeg.to_vec())).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65401)));
    assert!(err.to_string().contains("client.kf().accounts()"), "{err}");

    // An invitation waits 7 days, one at a time; once accepted the account has its worker.
    kf.invite_worker("kf1@test", "alice_wx").await.unwrap();
    assert_eq!(
        body(&platform, "/customservice/kfaccount/inviteworker"),
        json!({ "kf_account": "kf1@test", "invite_wx": "alice_wx" })
    );
    let account = kf.accounts().await.unwrap().remove(0);
    assert_eq!(
        (account.invite_wx.as_deref(), account.invite_status.as_deref()),
        (Some("alice_wx"), Some("waiting"))
    );
    assert_eq!(account.invite_expire_time, Some(platform.now_ms() / 1000 + 7 * 86_400));
    let err = kf.invite_worker("kf1@test", "bob_wx").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(65411)));
    assert!(err.to_string().contains("7 days"), "{err}");
    platform.advance(Duration::from_secs(7 * 86_400 + 1));
    assert_eq!(kf.accounts().await.unwrap()[0].invite_status.as_deref(), Some("expired"));
    assert!(!platform.accept_kf_invitation("kf1@test"), "an expired invitation cannot be accepted");
    kf.invite_worker("kf1@test", "alice_wx").await.unwrap();
    assert!(platform.accept_kf_invitation("kf1@test"));
    let account = kf.accounts().await.unwrap().remove(0);
    assert_eq!((account.kf_wx.as_deref(), account.invite_status), (Some("alice_wx"), None));
    assert_eq!(kf.invite_worker("kf1@test", "alice_wx").await.unwrap_err().code(), Some(ErrCode(65407)));
    assert_eq!(kf.invite_worker("kf1@test", "bob_wx").await.unwrap_err().code(), Some(ErrCode(65412)));
    assert_eq!(kf.invite_worker("kf2@test", "bob_wx").await.unwrap_err().code(), Some(ErrCode(65401)));
    for (account, wx) in [("kf1", "bob_wx"), ("@test", "bob_wx"), ("kf1@test", " ")] {
        let err = kf.invite_worker(account, wx).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{account} {wx}: {err}");
    }
    assert_eq!(platform.requests_to("/customservice/kfaccount/inviteworker").len(), 6);
}
