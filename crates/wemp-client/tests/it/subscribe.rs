//! Subscription notifications and one-time subscription messages (`client.subscribe()`)
//! against the fake platform.

use serde_json::json;
use wemp_client::api::subscribe::{OnceMessage, SubscribeMessage};
use wemp_client::{ErrCode, Error};
use wemp_testkit::platform::FakeUser;

use crate::{body, setup};

#[tokio::test]
async fn from_the_template_library_to_a_sent_notification() {
    let (platform, client) = setup().await;
    let sub = client.subscribe();
    let categories = sub.categories().await.unwrap();
    assert_eq!(categories.iter().map(|c| c.id).collect::<Vec<_>>(), [616, 627]);

    let page = sub.pub_titles(&[616], 0, 2).await.unwrap();
    let r = platform.last_request("/wxaapi/newtmpl/getpubtemplatetitles").unwrap();
    assert_eq!(
        (r.query["ids"].as_str(), r.query["start"].as_str(), r.query["limit"].as_str()),
        ("616", "0", "2")
    );
    assert_eq!((page.count, page.data.len()), (3, 2));
    assert_eq!((page.data[0].tid, page.data[0].category_id.as_deref()), (99, Some("616")));
    let rest = sub.pub_titles(&[616, 627], 2, 30).await.unwrap();
    assert_eq!(rest.data.iter().map(|t| t.tid).collect::<Vec<_>>(), [101, 200]);
    assert_eq!(rest.data[0].kind, 3, "a long-term title");
    assert_eq!(sub.pub_titles(&[999], 0, 10).await.unwrap_err().code(), Some(ErrCode(200019)));
    for (ids, limit) in [(&[][..], 10), (&[616][..], 0), (&[616][..], 31)] {
        let err = sub.pub_titles(ids, 0, limit).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{ids:?} {limit}: {err}");
    }

    let keywords = sub.pub_keywords(99).await.unwrap();
    assert_eq!(platform.last_request("/wxaapi/newtmpl/getpubtemplatekeywords").unwrap().query["tid"], "99");
    assert_eq!(keywords.len(), 4);
    assert_eq!((keywords[2].kid, keywords[2].rule.as_str()), (3, "time"));
    let err = sub.pub_keywords(5).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(200014)));
    assert!(err.to_string().contains("pub_titles"), "{err}");

    // 2–5 distinct keywords and a scene description of at most 15 characters, checked first.
    let asked = platform.requests_to("/wxaapi/newtmpl/addtemplate").len();
    for (kids, desc) in [
        (&[1][..], "付款"),
        (&[1, 2, 3, 4, 1, 2][..], "付款"),
        (&[1, 1][..], "付款"),
        (&[1, 3][..], ""),
        (&[1, 3][..], "一二三四五六七八九十一二三四五六"),
    ] {
        let err = sub.add_template(99, kids, desc).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{kids:?} {desc}: {err}");
    }
    assert_eq!(platform.requests_to("/wxaapi/newtmpl/addtemplate").len(), asked);
    let err = sub.add_template(100, &[1, 4], "线路").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(200020)), "title 100 has no keyword 4");
    assert!(err.to_string().contains("pub_keywords"), "{err}");

    let id = sub.add_template(99, &[1, 3], "一二三四五六七八九十一二三四五").await.unwrap();
    assert_eq!(
        body(&platform, "/wxaapi/newtmpl/addtemplate"),
        json!({ "tid": "99", "kidList": [1, 3], "sceneDesc": "一二三四五六七八九十一二三四五" })
    );
    let templates = sub.templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].pri_tmpl_id, id);
    assert_eq!(templates[0].content, "名称:{{thing1.DATA}}\n时间:{{time3.DATA}}\n");

    let msg = SubscribeMessage::new("o1", &id).field("thing1", "地铁乘车").field("time3", "2026-12-04 18:00");
    sub.send(&msg).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/subscribe/bizsend"),
        json!({ "touser": "o1", "template_id": id,
                "data": { "thing1": { "value": "地铁乘车" }, "time3": { "value": "2026-12-04 18:00" } } })
    );
    let wrong = SubscribeMessage::new("o1", &id).field("thing1", "x").field("thing2", "y");
    let err = sub.send(&wrong).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(47003)));
    assert!(err.to_string().contains("names the field"), "{err}");

    sub.delete_template(&id).await.unwrap();
    assert_eq!(body(&platform, "/wxaapi/newtmpl/deltemplate"), json!({ "priTmplId": id }));
    assert!(sub.templates().await.unwrap().is_empty());
    assert_eq!(sub.send(&msg).await.unwrap_err().code(), Some(ErrCode(40037)));
}

#[tokio::test]
async fn a_one_time_consent_allows_one_message() {
    let (platform, client) = setup().await;
    platform.set_oauth_user(FakeUser::new("o-ann"));
    let sub = client.subscribe();
    let url = sub.authorize_url(1000, "TPL_ONCE", "https://app.example/cb?x=1", "order 42").unwrap();
    assert_eq!(
        url,
        format!(
            "{}/mp/subscribemsg?action=get_confirm&appid={}&scene=1000&template_id=TPL%5FONCE\
             &redirect_url=https%3A%2F%2Fapp%2Eexample%2Fcb%3Fx%3D1&reserved=order%2042#wechat_redirect",
            platform.url(),
            platform.appid()
        )
    );

    // The user opens the page in WeChat and consents; WeChat redirects with the consent.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(&url).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "https://app.example/cb?x=1&openid=o-ann&action=confirm&template_id=TPL_ONCE&scene=1000&reserved=order%2042"
    );

    let msg = OnceMessage::new("o-ann", "TPL_ONCE", 1000, "订单已发货", "您的订单 42 已发货")
        .url("https://app.example/o/42");
    sub.send_once(&msg).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/template/subscribe"),
        json!({ "touser": "o-ann", "template_id": "TPL_ONCE", "url": "https://app.example/o/42", "scene": "1000",
                "title": "订单已发货", "data": { "content": { "value": "您的订单 42 已发货" } } })
    );
    // One consent, one message; another scene has no consent.
    let err = sub.send_once(&msg).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(43101)));
    assert!(err.to_string().contains("authorize_url"), "{err}");
    let other = OnceMessage::new("o-ann", "TPL_ONCE", 7, "订单已发货", "x");
    assert_eq!(sub.send_once(&other).await.unwrap_err().code(), Some(ErrCode(43101)));

    // The documented limits, checked before anything is sent.
    let sent = platform.requests_to("/cgi-bin/message/template/subscribe").len();
    let long_title = "一二三四五六七八九十一二三四五六";
    let long_body = "字".repeat(201);
    for bad in [
        OnceMessage::new("o-ann", "TPL_ONCE", 10_001, "t", "c"),
        OnceMessage::new("o-ann", "TPL_ONCE", 1, long_title, "c"),
        OnceMessage::new("o-ann", "TPL_ONCE", 1, "", "c"),
        OnceMessage::new("o-ann", "TPL_ONCE", 1, "t", long_body.as_str()),
    ] {
        let err = sub.send_once(&bad).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad:?}: {err}");
    }
    assert!(OnceMessage::new("o", "T", 10_000, &long_title[..45], "字".repeat(200)).check().is_ok());
    assert_eq!(platform.requests_to("/cgi-bin/message/template/subscribe").len(), sent);
    let long_reserved = "r".repeat(129);
    for (scene, template, redirect, reserved) in [
        (10_001, "T", "https://a.example/", ""),
        (1, "", "https://a.example/", ""),
        (1, "T", "", ""),
        (1, "T", "https://a.example/", long_reserved.as_str()),
    ] {
        let err = sub.authorize_url(scene, template, redirect, reserved).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{scene} {template} {redirect} {reserved}: {err}");
    }
    assert!(sub.authorize_url(10_000, "T", "https://a.example/", &"r".repeat(128)).is_ok());
}
