//! Article comments against the fake platform: comments live on the articles of a mass
//! send, users write them, the account manages them.

use serde_json::{Value, json};
use wemp_client::api::comments::{CommentType, MAX_COMMENTS_PER_PAGE};
use wemp_client::api::drafts::DraftArticle;
use wemp_client::api::mass::MassContent;
use wemp_client::{Client, ErrCode, Error};
use wemp_testkit::platform::{FakePlatform, FakeUser};

use crate::setup;

fn body(platform: &FakePlatform, path: &str) -> Value {
    let r = platform.last_request(path).unwrap_or_else(|| panic!("no request to {path}"));
    assert_eq!(r.method, "POST", "{path}");
    assert!(r.access_token().is_some(), "{path} carries the token");
    r.json().unwrap()
}

/// Mass-sends a draft of two articles (comments open on the first only); returns the
/// `msg_data_id` and `msg_id`.
async fn send_articles(platform: &FakePlatform, client: &Client) -> (i64, i64) {
    for o in ["o1", "o2", "o3"] {
        platform.add_user(FakeUser::new(o));
    }
    let first =
        DraftArticle { need_open_comment: Some(1), ..DraftArticle::new("First", "<p>1</p>", "thumb") };
    let draft =
        client.drafts().add(&[first, DraftArticle::new("Second", "<p>2</p>", "thumb")]).await.unwrap();
    let sent = client.mass().send_to_tag(None, &MassContent::MpNews(draft)).await.unwrap();
    (sent.msg_data_id.unwrap(), sent.msg_id)
}

#[tokio::test]
async fn comments_open_list_elect_reply_and_delete() {
    let (platform, client) = setup().await;
    let (id, _) = send_articles(&platform, &client).await;
    assert_eq!((platform.comments_open(id, 0), platform.comments_open(id, 1)), (Some(true), Some(false)));
    assert_eq!(platform.add_user_comment(id, 1, "o1", "closed"), None);

    client.comments().open(id, 1).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/comment/open"), json!({ "msg_data_id": id, "index": 1 }));
    assert_eq!(platform.comments_open(id, 1), Some(true));
    let on_second = platform.add_user_comment(id, 1, "o1", "second!").unwrap();

    let c1 = platform.add_user_comment(id, 0, "o1", "great").unwrap();
    let c2 = platform.add_user_comment(id, 0, "o2", "thanks").unwrap();
    let c3 = platform.add_user_comment(id, 0, "o3", "meh").unwrap();
    let page = client.comments().list(id, 0, 0, 20, CommentType::All).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/comment/list"),
        json!({ "msg_data_id": id, "index": 0, "begin": 0, "count": 20, "type": 0 })
    );
    assert_eq!(page.total, 3);
    let got: Vec<_> = page.comments.iter().map(|c| (c.id, c.openid.as_deref(), c.content.as_str())).collect();
    assert_eq!(got, [(c1, Some("o1"), "great"), (c2, Some("o2"), "thanks"), (c3, Some("o3"), "meh")]);
    let now = platform.now_ms() / 1000;
    assert!(page.comments.iter().all(|c| c.create_time == now && !c.elected && c.reply.is_none()));
    let other = client.comments().list(id, 1, 0, 20, CommentType::All).await.unwrap();
    assert_eq!(other.comments.iter().map(|c| c.id).collect::<Vec<_>>(), [on_second]);

    client.comments().elect(id, 0, c2).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/comment/markelect"),
        json!({ "msg_data_id": id, "index": 0, "user_comment_id": c2 })
    );
    assert!(platform.comments(id, 0).iter().any(|c| c.id == c2 && c.elected));
    let elected = client.comments().list(id, 0, 0, 20, CommentType::Elected).await.unwrap();
    assert_eq!((elected.total, elected.comments[0].id, elected.comments[0].elected), (1, c2, true));
    let normal = client.comments().list(id, 0, 0, 20, CommentType::Normal).await.unwrap();
    assert_eq!((normal.total, normal.comments.iter().map(|c| c.id).collect::<Vec<_>>()), (2, vec![c1, c3]));
    let paged = client.comments().list(id, 0, 1, 1, CommentType::All).await.unwrap();
    assert_eq!((paged.total, paged.comments.len(), paged.comments[0].id), (3, 1, c2));

    client.comments().reply(id, 0, c2, "glad you liked it").await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/comment/reply/add"),
        json!({ "msg_data_id": id, "index": 0, "user_comment_id": c2, "content": "glad you liked it" })
    );
    let listed = client.comments().list(id, 0, 0, 20, CommentType::Elected).await.unwrap();
    let reply = listed.comments[0].reply.clone().unwrap();
    assert_eq!((reply.content.as_str(), reply.create_time), ("glad you liked it", now));
    let again = client.comments().reply(id, 0, c2, "twice").await.unwrap_err();
    assert_eq!(again.code(), Some(ErrCode(88005)));

    client.comments().unelect(id, 0, c2).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/comment/unmarkelect")["user_comment_id"], c2);
    client.comments().delete_reply(id, 0, c2).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/comment/reply/delete")["user_comment_id"], c2);
    let c = platform.comments(id, 0).into_iter().find(|c| c.id == c2).unwrap();
    assert_eq!((c.elected, c.reply), (false, None));

    client.comments().delete(id, 0, c3).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/comment/delete")["user_comment_id"], c3);
    assert_eq!(platform.comments(id, 0).iter().map(|c| c.id).collect::<Vec<_>>(), [c1, c2]);
    let gone = client.comments().delete(id, 0, c3).await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrCode(88008)));

    client.comments().close(id, 0).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/comment/close"), json!({ "msg_data_id": id, "index": 0 }));
    assert_eq!(platform.comments_open(id, 0), Some(false));
    assert_eq!(platform.add_user_comment(id, 0, "o1", "too late"), None);
    assert_eq!(client.comments().list(id, 0, 0, 20, CommentType::All).await.unwrap().total, 2);
}

#[tokio::test]
async fn comment_errors_are_caught_early_or_answered_with_wechat_codes() {
    let (platform, client) = setup().await;
    let (id, msg_id) = send_articles(&platform, &client).await;
    let c = platform.add_user_comment(id, 0, "o1", "hello").unwrap();

    // Refused before sending.
    for count in [0, MAX_COMMENTS_PER_PAGE + 1] {
        let err = client.comments().list(id, 0, 0, count, CommentType::All).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains("1 to 49")), "{err:?}");
    }
    assert!(matches!(client.comments().reply(id, 0, c, "").await.unwrap_err(), Error::Invalid(_)));
    assert!(platform.requests_to("/cgi-bin/comment/list").is_empty());
    assert!(platform.requests_to("/cgi-bin/comment/reply/add").is_empty());

    // Answered by the platform.
    let code = |e: wemp_client::Error| e.code();
    let raw = |body: Value| {
        let client = client.clone();
        async move { client.post_json::<Value, _>("/cgi-bin/comment/list", &body).await }
    };
    let list = |count: u32| json!({ "msg_data_id": id, "index": 0, "begin": 0, "count": count, "type": 0 });
    assert_eq!(raw(list(50)).await.map_err(code).unwrap_err(), Some(ErrCode(88010)));
    assert_eq!(raw(list(49)).await.unwrap()["total"], 1);
    let bad_type = json!({ "msg_data_id": id, "begin": 0, "count": 5, "type": 7 });
    assert_eq!(raw(bad_type).await.map_err(code).unwrap_err(), Some(ErrCode(47001)));
    // WxJava sends msg_data_id as a string; the platform takes it, and a missing index means 0.
    let as_string = json!({ "msg_data_id": id.to_string(), "begin": 0, "count": 5, "type": 0 });
    assert_eq!(raw(as_string).await.unwrap()["comment"][0]["user_comment_id"], c);

    assert_eq!(client.comments().open(id + 1, 0).await.map_err(code).unwrap_err(), Some(ErrCode(88001)));
    assert_eq!(client.comments().open(id, 2).await.map_err(code).unwrap_err(), Some(ErrCode(88001)));
    assert_eq!(
        client.comments().elect(id, 0, c + 100).await.map_err(code).unwrap_err(),
        Some(ErrCode(88008))
    );
    let url = format!("{}/cgi-bin/comment/list?access_token=bogus", platform.url());
    let answer: Value =
        reqwest::Client::new().post(url).json(&list(5)).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["errcode"], 40001);

    // Comment permission is the account's; WeChat answers 88000 without it.
    platform.inject_times("/cgi-bin/comment/open", wemp_testkit::platform::Fault::ErrCode(88000), 1);
    let err = client.comments().open(id, 0).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(88000)));
    assert!(err.to_string().starts_with("/cgi-bin/comment/open failed with errcode 88000"), "{err}");

    // Deleting the mass message deletes its articles and their comments.
    client.mass().delete(msg_id, Some(1)).await.unwrap();
    let err = client.comments().list(id, 0, 0, 10, CommentType::All).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(88001)));
    assert!(platform.comments(id, 0).is_empty());
}
