//! Mass sending (`client.mass()`) against the fake platform.

use serde_json::json;
use wemp_client::api::drafts::DraftArticle;
use wemp_client::api::mass::{MassContent, MassMessage};
use wemp_client::api::media::MediaType;
use wemp_client::{Client, ErrCode, Error, MediaFile};
use wemp_testkit::platform::FakePlatform;

use crate::{body, setup};

/// The id of articles uploaded for mass sending, with a thumbnail cover.
async fn uploaded_news(client: &Client) -> String {
    let thumb =
        client.media().upload(MediaType::Thumb, MediaFile::from_bytes("t.jpg", vec![0xFF, 0xD8])).await;
    let article = DraftArticle::new("Launch", "<p>We launched.</p>", thumb.unwrap().media_id);
    client.mass().upload_news(&[article]).await.unwrap().media_id
}

#[tokio::test]
async fn mass_sending() {
    let (platform, client) = setup().await;
    let news = uploaded_news(&client).await;
    let sent = client.mass().send_to_tag(Some(2), &MassContent::MpNews(news.clone())).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/sendall"),
        json!({ "filter": { "is_to_all": false, "tag_id": 2 }, "msgtype": "mpnews", "mpnews": { "media_id": news }, "send_ignore_reprint": 0 })
    );
    client.mass().send_to_tag(None, &MassContent::Text("all".into())).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/mass/sendall")["filter"], json!({ "is_to_all": true }));
    client.mass().send_to_users(&["o1", "o2"], &MassContent::Card("card1".into())).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/send"),
        json!({ "touser": ["o1", "o2"], "msgtype": "wxcard", "wxcard": { "card_id": "card1" } })
    );
    client.mass().preview("o1", &MassContent::Image("i".into())).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/mass/preview")["image"]["media_id"], "i");
    assert_eq!(client.mass().status(sent.msg_id).await.unwrap(), "SEND_SUCCESS");
    client.mass().delete(sent.msg_id, None).await.unwrap();
    assert_eq!(client.mass().status(sent.msg_id).await.unwrap_err().code(), Some(ErrCode(40007)));
    client.mass().set_speed(2).await.unwrap();
    assert_eq!(client.mass().speed().await.unwrap().speed, 2);

    // Limits checked before sending: 2–10,000 users, speed levels 0–4.
    let one = client.mass().send_to_users(&["o1"], &MassContent::Text("x".into())).await.unwrap_err();
    assert!(matches!(&one, Error::Invalid(m) if m.contains("2 to 10000")), "{one}");
    let many: Vec<String> = (0..10_001).map(|i| format!("o{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = client.mass().send_to_users(&many, &MassContent::Text("x".into())).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(matches!(client.mass().set_speed(5).await.unwrap_err(), Error::Invalid(_)));
    assert_eq!(platform.requests_to("/cgi-bin/message/mass/send").len(), 1);
    assert_eq!(platform.requests_to("/cgi-bin/message/mass/speed/set").len(), 1);
}

#[tokio::test]
async fn a_mass_video_goes_from_upload_through_uploadvideo_to_the_send() {
    let (platform, client) = setup().await;
    let video = client
        .media()
        .upload(MediaType::Video, MediaFile::from_bytes("clip.mp4", vec![0, 0, 0, 0x18, b'f', b't']))
        .await
        .unwrap();
    // The upload's own id is not what a mass video names.
    let err = client.mass().send_to_tag(None, &MassContent::Video(video.media_id.clone())).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40007)));

    let mass_video =
        client.mass().upload_video(&video.media_id, "Launch", "The launch, in one minute").await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/media/uploadvideo"),
        json!({ "media_id": video.media_id, "title": "Launch", "description": "The launch, in one minute" })
    );
    assert_eq!(mass_video.kind, "video");
    assert_ne!(mass_video.media_id, video.media_id);
    assert_eq!(mass_video.created_at, platform.now_ms() / 1000);
    let content = MassContent::Video(mass_video.media_id.clone());
    let sent = client.mass().send_to_tag(Some(2), &content).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/sendall")["mpvideo"],
        json!({ "media_id": mass_video.media_id })
    );
    assert_eq!(client.mass().status(sent.msg_id).await.unwrap(), "SEND_SUCCESS");
    client.mass().send_to_users(&["o1", "o2"], &content).await.unwrap();
    client.mass().preview("o1", &content).await.unwrap();

    // Only a video upload turns into a mass video; an empty id is refused before sending.
    let image =
        client.media().upload(MediaType::Image, MediaFile::from_bytes("a.jpg", vec![0xFF, 0xD8])).await;
    let err = client.mass().upload_video(&image.unwrap().media_id, "t", "d").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40007)));
    assert_eq!(client.mass().upload_video("nope", "t", "d").await.unwrap_err().code(), Some(ErrCode(40007)));
    assert!(matches!(client.mass().upload_video(" ", "t", "d").await.unwrap_err(), Error::Invalid(_)));
    assert_eq!(platform.requests_to("/cgi-bin/media/uploadvideo").len(), 3);
}

#[tokio::test]
async fn uploadnews_takes_one_to_eight_complete_articles() {
    let (platform, client) = setup().await;
    let news = uploaded_news(&client).await;
    let sent = body(&platform, "/cgi-bin/media/uploadnews");
    assert_eq!(sent["articles"][0]["title"], "Launch");
    assert_eq!(sent["articles"][0]["content"], "<p>We launched.</p>");
    // A mass message of articles names them by that id.
    let out = client.mass().send_to_tag(None, &MassContent::MpNews(news)).await.unwrap();
    assert!(out.msg_data_id.is_some());
    assert_eq!(
        client.mass().send_to_tag(None, &MassContent::MpNews("nope".into())).await.unwrap_err().code(),
        Some(ErrCode(40007))
    );

    let cover = platform.requests_to("/cgi-bin/media/upload").len();
    assert_eq!(cover, 1);
    let thumb = sent["articles"][0]["thumb_media_id"].as_str().unwrap().to_owned();
    let article = DraftArticle::new("t", "c", &thumb);
    let asked = platform.requests_to("/cgi-bin/media/uploadnews").len();
    for (articles, says) in [
        (vec![], "1 to 8"),
        (vec![article.clone(); 9], "1 to 8"),
        (vec![DraftArticle::new("", "c", &thumb)], "title"),
        (vec![article.clone(), DraftArticle::new("t", " ", &thumb)], "article 1 has no content"),
        (vec![DraftArticle::new("t", "c", "")], "thumb_media_id"),
    ] {
        let err = client.mass().upload_news(&articles).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains(says)), "{says}: {err}");
    }
    assert_eq!(platform.requests_to("/cgi-bin/media/uploadnews").len(), asked);
    let unknown = client.mass().upload_news(&[DraftArticle::new("t", "c", "nope")]).await.unwrap_err();
    assert_eq!(unknown.code(), Some(ErrCode(40007)));
    assert_eq!(client.mass().upload_news(&vec![article; 8]).await.unwrap().kind, "news");
}

#[tokio::test]
async fn the_platform_refuses_more_than_eight_articles_with_its_hint() {
    let platform = FakePlatform::start().await;
    let client = crate::builder(&platform).build().unwrap();
    let articles: Vec<_> =
        (0..9).map(|i| json!({ "title": format!("t{i}"), "content": "c", "thumb_media_id": "x" })).collect();
    let err = client
        .post_json::<serde_json::Value, _>("/cgi-bin/media/uploadnews", &json!({ "articles": articles }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(45008)));
    assert!(err.to_string().contains("at most 8"), "{err}");
}

#[tokio::test]
async fn a_mass_message_carries_its_options_and_one_clientmsgid_sends_once() {
    let (platform, client) = setup().await;
    let news = uploaded_news(&client).await;
    let msg =
        MassMessage::new(MassContent::MpNews(news.clone())).ignore_reprint(true).client_msg_id("sale-1");
    let first = client.mass().send_to_tag(None, &msg).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/sendall"),
        json!({ "filter": { "is_to_all": true }, "msgtype": "mpnews", "mpnews": { "media_id": news },
                "send_ignore_reprint": 1, "clientmsgid": "sale-1" })
    );

    // The same send retried (a timeout, a crash before the answer was kept): refused, so
    // followers get it once; the hint says what happened.
    let again = client.mass().send_to_tag(None, &msg).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrCode(45065)));
    assert!(again.to_string().contains("sent already"), "{again}");
    assert_eq!(client.mass().status(first.msg_id).await.unwrap(), "SEND_SUCCESS");
    // Another id is another send; text carries no reprint flag.
    let text = MassMessage::new(MassContent::Text("hi".into())).client_msg_id("sale-2");
    client.mass().send_to_users(&["o1", "o2"], text).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/send"),
        json!({ "touser": ["o1", "o2"], "msgtype": "text", "text": { "content": "hi" }, "clientmsgid": "sale-2" })
    );

    // Over 64 bytes is refused before sending; the platform refuses it too.
    let requests = platform.requests().len();
    let long = MassMessage::new(MassContent::Text("x".into())).client_msg_id("c".repeat(65));
    assert!(
        matches!(client.mass().send_to_tag(None, long).await, Err(Error::Invalid(m)) if m.contains("clientmsgid"))
    );
    assert_eq!(platform.requests().len(), requests);
    let raw: Result<serde_json::Value, _> = client
        .post_json(
            "/cgi-bin/message/mass/sendall",
            &json!({ "filter": { "is_to_all": true }, "msgtype": "text",
            "text": { "content": "x" }, "clientmsgid": "c".repeat(65) }),
        )
        .await;
    assert_eq!(raw.unwrap_err().code(), Some(ErrCode(45067)));
}
