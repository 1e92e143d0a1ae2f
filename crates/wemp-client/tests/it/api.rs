use std::time::Duration;

use futures_util::TryStreamExt;
use serde_json::{Value, json};
use wemp_client::MediaFile;
use wemp_client::api::drafts::DraftArticle;
use wemp_client::api::media::{Download, MediaType};
use wemp_client::api::menu::{Button, MatchRule};
use wemp_client::api::oauth::Scope;
use wemp_client::api::qrcode::{QrCode, Scene};
use wemp_client::{ErrCode, Error, Limit};
use wemp_testkit::platform::{FakePlatform, FakeUser, PlatformConfig};

use crate::{body, builder, setup};

#[tokio::test]
async fn menus_including_conditional() {
    let (platform, client) = setup().await;
    assert_eq!(client.menu().get().await.unwrap_err().code(), Some(ErrCode(46003)));
    let buttons = vec![
        Button::click("Today", "TODAY"),
        Button::parent(
            "More",
            vec![
                Button::view("Site", "https://e.com"),
                Button::miniprogram("App", "https://e.com", "wxa", "p/i"),
            ],
        ),
    ];
    client.menu().create(&buttons).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/menu/create")["button"][1]["sub_button"][1],
        json!({ "type": "miniprogram", "name": "App", "url": "https://e.com", "appid": "wxa", "pagepath": "p/i" })
    );
    // A handle is Copy and its calls own it, so calls of two areas run at once without
    // binding the handles first.
    let (menus, current) = tokio::join!(client.menu().get(), client.menu().current());
    assert_eq!(menus.unwrap().menu.button, buttons);
    assert_eq!(current.unwrap().is_menu_open, 1);

    platform.add_user(FakeUser { tags: [7].into(), ..FakeUser::new("vip") });
    platform.add_user(FakeUser::new("plain"));
    let vip = vec![Button::click("VIP", "VIP")];
    let id = client.menu().add_conditional(&vip, &MatchRule::tag(7)).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/menu/addconditional")["matchrule"], json!({ "tag_id": "7" }));
    assert_eq!(client.menu().try_match("vip").await.unwrap(), vip);
    assert_eq!(client.menu().try_match("plain").await.unwrap(), buttons);
    let menus = client.menu().get().await.unwrap();
    assert_eq!(menus.conditionalmenu.len(), 1);
    assert_eq!(menus.conditionalmenu[0].matchrule, MatchRule::tag(7));
    client.menu().delete_conditional(&id).await.unwrap();
    assert_eq!(client.menu().try_match("vip").await.unwrap(), buttons);
    client.menu().delete().await.unwrap();
    assert_eq!(platform.menu(), None);
}

#[tokio::test]
async fn menus_wechat_would_refuse_are_refused() {
    let (_platform, client) = setup().await;
    let code = |r: Result<(), Error>| r.unwrap_err().code();
    let six: Vec<Button> = (0..6).map(|i| Button::click(format!("s{i}"), "K")).collect();
    assert_eq!(code(client.menu().create(&[Button::parent("More", six)]).await), Some(ErrCode(40023)));
    // Top-level names at most 16 bytes, sub-buttons' at most 60.
    assert_eq!(code(client.menu().create(&[Button::click("六个汉字太长", "K")]).await), Some(ErrCode(40018)));
    let long_sub = Button::click("x".repeat(61), "K");
    assert_eq!(
        code(client.menu().create(&[Button::parent("More", vec![long_sub])]).await),
        Some(ErrCode(40025))
    );
    assert_eq!(code(client.menu().create(&[Button::parent("Empty", vec![])]).await), Some(ErrCode(40017)));
    let long_key = Button::click("k", "k".repeat(129));
    assert_eq!(code(client.menu().create(&[long_key]).await), Some(ErrCode(40019)));
    client.menu().create(&[Button::click("四个汉字", "K")]).await.unwrap();
    let four: Vec<Button> = (0..4).map(|i| Button::click(format!("b{i}"), "K")).collect();
    let err = client.menu().add_conditional(&four, &MatchRule::tag(1)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40016)));
}

#[tokio::test]
async fn users_pages_stream_and_tags() {
    let platform = FakePlatform::start_with(PlatformConfig::default().user_page_size(10)).await;
    let client = builder(&platform).build().unwrap();
    for i in 0..25 {
        platform.add_user(FakeUser::new(format!("o{i:02}")));
    }
    let all: Vec<String> = client.users().followers().try_collect().await.unwrap();
    assert_eq!(all, (0..25).map(|i| format!("o{i:02}")).collect::<Vec<_>>());
    let pages = platform.requests_to("/cgi-bin/user/get");
    let nexts: Vec<_> = pages.iter().map(|r| r.query["next_openid"].clone()).collect();
    assert_eq!(nexts, ["", "o09", "o19", "o24"]);

    let info = client.users().info("o03").await.unwrap();
    assert_eq!((info.subscribe, info.openid.as_str()), (1, "o03"));
    assert_eq!(platform.last_request("/cgi-bin/user/info").unwrap().query["openid"], "o03");
    assert_eq!(client.users().info("nobody").await.unwrap_err().code(), Some(ErrCode(40003)));
    let infos = client.users().batch_info(&["o01", "o02"]).await.unwrap();
    assert_eq!(infos.iter().map(|u| u.openid.as_str()).collect::<Vec<_>>(), ["o01", "o02"]);
    assert_eq!(
        body(&platform, "/cgi-bin/user/info/batchget")["user_list"][1],
        json!({ "openid": "o02", "lang": "zh_CN" })
    );
    client.users().set_remark("o01", "friend").await.unwrap();
    assert_eq!(platform.user("o01").unwrap().remark, "friend");

    let tag = client.tags().create("vip").await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/tags/create"), json!({ "tag": { "name": "vip" } }));
    client.tags().tag(tag.id, &["o01", "o02", "o03"]).await.unwrap();
    client.tags().untag(tag.id, &["o03"]).await.unwrap();
    assert_eq!(client.tags().of_user("o01").await.unwrap(), [tag.id]);
    assert_eq!(client.tags().list().await.unwrap()[0].count, 2);
    let members: Vec<String> = client.tags().users(tag.id).try_collect().await.unwrap();
    assert_eq!(members, ["o01", "o02"]);
    client.tags().rename(tag.id, "gold").await.unwrap();
    assert_eq!(client.tags().list().await.unwrap()[0].name, "gold");
    client.tags().delete(tag.id).await.unwrap();
    assert!(client.tags().list().await.unwrap().is_empty());

    client.users().block(&["o05", "o06"]).await.unwrap();
    client.users().unblock(&["o06"]).await.unwrap();
    let blocked: Vec<String> = client.users().blacklist().try_collect().await.unwrap();
    assert_eq!(blocked, ["o05"]);
    assert_eq!(client.users().blacklist_page("").await.unwrap().total, Some(1));
}

#[tokio::test]
async fn batch_tagging_takes_at_most_50_users() {
    let (platform, client) = setup().await;
    let ids: Vec<String> = (0..51).map(|i| format!("o{i:02}")).collect();
    for id in &ids {
        platform.add_user(FakeUser::new(id.clone()));
    }
    let tag = client.tags().create("many").await.unwrap();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let err = client.tags().tag(tag.id, &refs).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40032)));
    assert_eq!(client.tags().untag(tag.id, &refs).await.unwrap_err().code(), Some(ErrCode(40032)));
    // An unknown tag is 45159 (45059 is a user past the 20 tags a user can have).
    assert_eq!(client.tags().tag(999, &refs[..1]).await.unwrap_err().code(), Some(ErrCode(45159)));
    client.tags().tag(tag.id, &refs[..50]).await.unwrap();
    assert_eq!(client.tags().list().await.unwrap()[0].count, 50);
}

#[tokio::test]
async fn user_stream_surfaces_errors() {
    let (platform, client) = setup().await;
    platform.inject("/cgi-bin/user/get", wemp_testkit::platform::Fault::QUOTA);
    let result: Result<Vec<String>, _> = client.users().followers().try_collect().await;
    assert_eq!(result.unwrap_err().code(), Some(ErrCode::QUOTA_EXCEEDED));
}

#[tokio::test]
async fn change_openid_maps_the_old_accounts_followers_and_checks_its_limits_before_sending() {
    const PATH: &str = "/cgi-bin/changeopenid";
    let (platform, client) = setup().await;
    platform.add_migration("wxold", "old-1", "new-1");
    platform.add_migration("wxold", "old-2", "new-2");

    let changed = client.users().change_openid("wxold", &["old-1", "stranger", "old-2"]).await.unwrap();
    assert_eq!(
        body(&platform, PATH),
        json!({ "from_appid": "wxold", "openid_list": ["old-1", "stranger", "old-2"] })
    );
    let pairs: Vec<_> = changed.iter().map(|c| (c.ori_openid.as_str(), c.new_openid.as_deref())).collect();
    assert_eq!(pairs, [("old-1", Some("new-1")), ("stranger", None), ("old-2", Some("new-2"))]);
    assert_eq!(changed[0].err_msg.as_deref(), Some("ok"));
    assert_eq!(changed[1].err_msg.as_deref(), Some("ori_openid error"));

    // 100 OpenIDs is the most a call takes.
    let many: Vec<String> = (0..101).map(|i| format!("old-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let changed = client.users().change_openid("wxold", &many[..100]).await.unwrap();
    assert_eq!(changed.len(), 100);
    assert_eq!(changed.iter().filter(|c| c.new_openid.is_some()).count(), 2);

    // WeChat refuses an account the followers did not migrate from, with a hint.
    let err = client.users().change_openid("wxother", &["old-1"]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(63178)));
    assert!(err.to_string().contains("15 days"), "{err}");

    // Outside the documented limits nothing is sent.
    let sent = platform.requests_to(PATH).len();
    for (from, openids, says) in [
        ("wxold", &many[..], "1 to 100 OpenIDs per call, not 101"),
        ("wxold", &[][..], "not 0"),
        ("", &many[..1], "from_appid"),
    ] {
        let err = client.users().change_openid(from, openids).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains(says)), "{err}");
    }
    assert_eq!(platform.requests_to(PATH).len(), sent);
}

#[tokio::test]
async fn hd_voice_of_a_jssdk_recording_streams_the_speex_and_refuses_other_ids() {
    const PATH: &str = "/cgi-bin/media/get/jssdk";
    let (platform, client) = setup().await;
    let (amr, speex) = (b"#!AMR\n8k".to_vec(), b"Speex   16k voice".to_vec());
    let server_id = platform.page_voice(amr.clone(), speex.clone());

    let mut out = Vec::new();
    let got = client.media().download_hd_voice(&server_id, &mut out).await.unwrap();
    assert_eq!(
        got,
        Download::Written { bytes: speex.len() as u64, content_type: Some("voice/speex".into()) }
    );
    assert_eq!(out, speex);
    let call = platform.last_request(PATH).unwrap();
    assert_eq!((call.method.as_str(), call.query["media_id"].as_str()), ("GET", server_id.as_str()));
    assert!(call.access_token().is_some());
    // The same id through media/get is the 8 kHz amr.
    let mut out = Vec::new();
    client.media().download(&server_id, &mut out).await.unwrap();
    assert_eq!(out, amr);

    // Media uploaded through the API has no HD voice; nothing is written for an error.
    let image = client
        .media()
        .upload(MediaType::Image, MediaFile::from_bytes("a.jpg", vec![0xFF, 0xD8]))
        .await
        .unwrap();
    let mut out = Vec::new();
    for id in [image.media_id.as_str(), "missing"] {
        let err = client.media().download_hd_voice(id, &mut out).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrCode(40007)));
        assert!(err.to_string().contains("wx.uploadVoice"), "{err}");
    }
    assert!(out.is_empty());

    let sent = platform.requests_to(PATH).len();
    let err = client.media().download_hd_voice("", &mut out).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("serverId")), "{err}");
    assert_eq!(platform.requests_to(PATH).len(), sent);
}

#[tokio::test]
async fn temporary_media_upload_and_streamed_download() {
    let (platform, client) = setup().await;
    let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
    let up =
        client.media().upload(MediaType::Image, MediaFile::from_bytes("a.jpg", jpeg.clone())).await.unwrap();
    assert_eq!(up.kind, "image");
    let req = platform.last_request("/cgi-bin/media/upload").unwrap();
    assert_eq!(req.query["type"], "image");
    assert_eq!(req.parts[0].name, "media");
    assert_eq!(req.parts[0].file_name.as_deref(), Some("a.jpg"));
    assert_eq!(req.parts[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(platform.media(&up.media_id).unwrap().data, jpeg);

    let mut out = Vec::new();
    let got = client.media().download(&up.media_id, &mut out).await.unwrap();
    assert_eq!(got, Download::Written { bytes: jpeg.len() as u64, content_type: Some("image/jpeg".into()) });
    assert_eq!(out, jpeg);

    // From a path; a thumbnail answers with thumb_media_id.
    let dir = std::env::temp_dir().join(format!("wemp-client-test-{}", std::process::id()));
    tokio::fs::create_dir_all(&dir).await.unwrap();
    let path = dir.join("t.jpg");
    tokio::fs::write(&path, b"thumb").await.unwrap();
    let thumb =
        client.media().upload(MediaType::Thumb, MediaFile::from_path(&path).await.unwrap()).await.unwrap();
    assert_eq!(platform.media(&thumb.media_id).unwrap().data, &b"thumb"[..]);
    tokio::fs::remove_dir_all(&dir).await.unwrap();

    let video =
        client.media().upload(MediaType::Video, MediaFile::from_bytes("v.mp4", vec![0; 16])).await.unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        client.media().download(&video.media_id, &mut out).await.unwrap(),
        Download::VideoUrl(_)
    ));
    assert!(out.is_empty());
    let err = client.media().download("missing", &mut out).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40007)));

    // An upload retried after a token error resends the whole body.
    platform.inject_times("/cgi-bin/media/upload", wemp_testkit::platform::Fault::ErrCode(42001), 1);
    let again =
        client.media().upload(MediaType::Voice, MediaFile::from_bytes("a.mp3", vec![9; 4])).await.unwrap();
    assert_eq!(platform.media(&again.media_id).unwrap().data, vec![9; 4]);

    let url = client.media().upload_image(MediaFile::from_bytes("p.png", vec![1])).await.unwrap();
    assert!(url.starts_with("http://mmbiz.qpic.cn/"), "{url}");
}

#[tokio::test]
async fn permanent_material_drafts_and_publishing() {
    let (platform, client) = setup().await;
    let img = client
        .material()
        .add(MediaType::Image, MediaFile::from_bytes("i.png", vec![7; 3]), None)
        .await
        .unwrap();
    assert!(img.url.is_some());
    let vid = client
        .material()
        .add(MediaType::Video, MediaFile::from_bytes("v.mp4", vec![0; 3]), Some(("T", "I")))
        .await
        .unwrap();
    let desc = &platform.last_request("/cgi-bin/material/add_material").unwrap().parts[1];
    assert_eq!(desc.name, "description");
    assert_eq!(
        serde_json::from_slice::<Value>(&desc.data).unwrap(),
        json!({ "title": "T", "introduction": "I" })
    );
    let count = client.material().count().await.unwrap();
    assert_eq!((count.image_count, count.video_count), (1, 1));
    let mut out = Vec::new();
    assert!(matches!(
        client.material().get(&img.media_id, &mut out).await.unwrap(),
        Download::Written { bytes: 3, .. }
    ));
    assert_eq!(out, vec![7; 3]);
    assert_eq!(body(&platform, "/cgi-bin/material/get_material"), json!({ "media_id": img.media_id }));
    match client.material().get(&vid.media_id, &mut out).await.unwrap() {
        Download::Video { title, .. } => assert_eq!(title, "T"),
        other => panic!("{other:?}"),
    }
    let page = client.material().list(MediaType::Image, 0, 20).await.unwrap();
    assert_eq!((page.total_count, page.item[0].media_id.as_str()), (1, img.media_id.as_str()));
    client.material().delete(&img.media_id).await.unwrap();
    assert_eq!(client.material().count().await.unwrap().image_count, 0);

    let article = DraftArticle::new("Title", "<p>hi</p>", &img.media_id);
    let draft = client.drafts().add(std::slice::from_ref(&article)).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/draft/add")["articles"][0]["title"], "Title");
    assert_eq!(client.drafts().get(&draft).await.unwrap(), std::slice::from_ref(&article));
    let edited = DraftArticle { author: Some("me".into()), ..article.clone() };
    client.drafts().update(&draft, 0, &edited).await.unwrap();
    assert_eq!(client.drafts().get(&draft).await.unwrap()[0].author.as_deref(), Some("me"));
    assert_eq!(client.drafts().count().await.unwrap(), 1);
    assert_eq!(
        client.drafts().list(0, 20, false).await.unwrap().item[0].media_id.as_deref(),
        Some(draft.as_str())
    );

    let ticket = client.publish().submit(&draft).await.unwrap();
    let status = client.publish().status(&ticket.publish_id).await.unwrap();
    assert_eq!(status.publish_status, 0);
    let article_id = status.article_id.unwrap();
    assert_eq!(client.publish().article(&article_id).await.unwrap()[0].title, "Title");
    assert_eq!(client.publish().list(0, 20, false).await.unwrap().total_count, 1);
    client.publish().delete(&article_id, 0).await.unwrap();
    assert_eq!(client.drafts().count().await.unwrap(), 0);
    let second = client.drafts().add(&[article]).await.unwrap();
    client.drafts().delete(&second).await.unwrap();
    assert_eq!(client.drafts().get(&second).await.unwrap_err().code(), Some(ErrCode(40007)));
}

#[tokio::test]
async fn qr_codes_and_short_keys() {
    let (platform, client) = setup().await;
    let t =
        client.qrcode().create(&QrCode::temporary(Scene::Id(42), Duration::from_secs(600))).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/qrcode/create"),
        json!({ "expire_seconds": 600, "action_name": "QR_SCENE", "action_info": { "scene": { "scene_id": 42 } } })
    );
    assert_eq!(t.expire_seconds, Some(600));
    let p = client.qrcode().create(&QrCode::permanent(Scene::Str("shop/1".into()))).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/qrcode/create")["action_name"], "QR_LIMIT_STR_SCENE");
    assert_eq!(p.expire_seconds, None);
    let url = client.qrcode().image_url(&p.ticket);
    assert!(url.starts_with(&format!("{}/cgi-bin/showqrcode?ticket=", platform.url())));
    let image = reqwest::get(&url).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/jpeg");

    let key = client.qrcode().short_key("long data", Duration::from_secs(3600)).await.unwrap();
    let data = client.qrcode().fetch_short_key(&key).await.unwrap();
    assert_eq!((data.long_data.as_str(), data.expire_seconds), ("long data", 3600));
}

#[tokio::test]
async fn oauth_code_exchange_refresh_userinfo_and_check() {
    let (platform, client) = setup().await;
    platform.set_oauth_user(FakeUser { nickname: "Ann".into(), ..FakeUser::new("o-ann") });
    let url = client.oauth().authorize_url("http://app.local/cb", Scope::UserInfo, "xyz");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.get(&url).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://app.local/cb?code="), "{location}");
    assert!(location.ends_with("&state=xyz"));
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap();

    let token = client
        .oauth()
        .exchange_code(code)
        .await
        .unwrap_or_else(|e| panic!("{e} {location} {:?}", platform.requests()));
    assert_eq!((token.openid.as_str(), token.scope.as_str()), ("o-ann", "snsapi_userinfo"));
    let q = &platform.last_request("/sns/oauth2/access_token").unwrap().query;
    assert_eq!((q["grant_type"].as_str(), q["appid"].clone()), ("authorization_code", platform.appid()));
    assert!(!format!("{token:?}").contains(token.access_token.expose()));
    assert_eq!(
        client.oauth().exchange_code(code).await.unwrap_err().code(),
        Some(ErrCode::INVALID_CODE),
        "codes are single-use"
    );

    assert_eq!(client.oauth().user_info(&token).await.unwrap().nickname, "Ann");
    assert!(client.oauth().check_token(&token).await.unwrap());
    let refreshed = client.oauth().refresh_token(token.refresh_token.expose()).await.unwrap();
    assert_ne!(refreshed.access_token, token.access_token);
    platform.advance(Duration::from_secs(7200));
    assert!(!client.oauth().check_token(&refreshed).await.unwrap());

    let base = client.oauth().exchange_code(&platform.oauth_code("o-ann", "snsapi_base")).await.unwrap();
    platform.advance(Duration::from_secs(1));
    assert_eq!(client.oauth().user_info(&base).await.unwrap_err().code(), Some(ErrCode::API_UNAUTHORIZED));
}

#[tokio::test]
async fn jssdk_config_is_signed_with_the_cached_ticket() {
    let (platform, client) = setup().await;
    let cfg = client.jssdk().config("https://e.com/page?a=1#frag").await.unwrap();
    let ticket = client.jsapi_ticket().await.unwrap();
    assert_eq!(
        cfg.signature,
        wemp_client::api::jssdk::sign(&ticket, &cfg.nonce_str, cfg.timestamp, "https://e.com/page?a=1")
    );
    assert_eq!(cfg.timestamp, platform.now_ms() / 1000);
    assert_eq!(cfg.app_id, platform.appid());
    assert_eq!(platform.requests_to("/cgi-bin/ticket/getticket").len(), 1);
    assert_eq!(serde_json::to_value(&cfg).unwrap()["nonceStr"], cfg.nonce_str);
}

#[tokio::test]
async fn operations() {
    let (platform, client) = setup().await;
    assert!(!client.ops().callback_ips().await.unwrap().is_empty());
    assert!(!client.ops().api_domain_ips().await.unwrap().is_empty());
    let check = client.ops().check_network("all", "DEFAULT").await.unwrap();
    assert_eq!((check.dns.len(), check.ping.len()), (1, 1));
    assert_eq!(
        body(&platform, "/cgi-bin/callback/check"),
        json!({ "action": "all", "check_operator": "DEFAULT" })
    );
    client.ops().clear_quota().await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/clear_quota"), json!({ "appid": platform.appid() }));
    let quota = client.ops().quota("/cgi-bin/getcallbackip").await.unwrap();
    assert_eq!(quota.used, 1);

    platform.inject_times("/cgi-bin/get_api_domain_ip", wemp_testkit::platform::Fault::QUOTA, 1);
    let err = client.ops().api_domain_ips().await.unwrap_err();
    assert_eq!(err.limit(), Some(Limit::DailyQuota), "{err}");
    assert!(err.to_string().contains("resets at 00:00 China time"), "{err}");
    let Error::Api(e) = err else { panic!() };
    let info = client.ops().rid(e.rid().unwrap()).await.unwrap();
    assert_eq!(info.request_url, "/cgi-bin/get_api_domain_ip");
}

#[tokio::test]
async fn generic_escape_hatch_injects_the_token_and_keeps_the_retry_rules() {
    let (platform, client) = setup().await;
    platform.script("/cgi-bin/not/typed", json!({ "errcode": 0, "answer": 42 }));
    platform.inject_times("/cgi-bin/not/typed", wemp_testkit::platform::Fault::BUSY, 1);
    let v: Value = client.get("/cgi-bin/not/typed", &[("x", "1")]).await.unwrap();
    assert_eq!(v["answer"], 42);
    let reqs = platform.requests_to("/cgi-bin/not/typed");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].query["x"], "1");
    assert!(reqs[1].access_token().is_some());

    let v: Value = client.post_json("/cgi-bin/not/typed", &json!({ "k": "v" })).await.unwrap();
    assert_eq!(v["answer"], 42);
    assert_eq!(body(&platform, "/cgi-bin/not/typed"), json!({ "k": "v" }));

    platform.script("/cgi-bin/up", json!({ "ok": true }));
    let form = wemp_client::Upload::new().text("a", "b").file("f", MediaFile::from_bytes("x.bin", vec![1]));
    let v: Value = client.upload("/cgi-bin/up", &[("type", "x")], &form).await.unwrap();
    assert_eq!(v["ok"], true);
    let parts = platform.last_request("/cgi-bin/up").unwrap().parts;
    assert_eq!((parts[0].name.as_str(), &parts[0].data[..]), ("a", &b"b"[..]));

    let err = client.get::<Value>("/cgi-bin/unknown", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40066)));
    platform.script("/cgi-bin/bad", json!({ "n": "x" }));
    #[derive(serde::Deserialize, Debug)]
    struct N {
        #[allow(dead_code)]
        n: u32,
    }
    assert!(matches!(client.get::<N>("/cgi-bin/bad", &[]).await.unwrap_err(), Error::Decode { .. }));
}

/// A download that keeps arriving, just slowly, is not cut off by the client's timeout (which
/// bounds every wait for data, not the whole file); a download whose data stops is.
#[tokio::test]
async fn a_slow_download_completes_and_a_stalled_one_times_out() {
    use wemp_testkit::platform::Fault;
    let platform = FakePlatform::start().await;
    let client = builder(&platform).timeout(Duration::from_millis(300)).build().unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let up =
        client.media().upload(MediaType::Image, MediaFile::from_bytes("big.jpg", big.clone())).await.unwrap();

    // Ten pieces, 100 ms apart: about a second in all, three times the timeout.
    platform.inject_times("/cgi-bin/media/get", Fault::Trickle(Duration::from_millis(100)), 1);
    let mut out = Vec::new();
    let got = client.media().download(&up.media_id, &mut out).await.unwrap();
    assert!(matches!(got, Download::Written { bytes: 100_000, .. }), "{got:?}");
    assert_eq!(out, big);

    // Pieces 500 ms apart: the data stops for longer than the timeout.
    platform.inject_times("/cgi-bin/media/get", Fault::Trickle(Duration::from_millis(500)), 1);
    let err = client.media().download(&up.media_id, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(&err, Error::Http { source, .. } if source.is_timeout()), "{err:?}");

    // An API call is still bounded as a whole.
    platform.inject_times("/cgi-bin/get_api_domain_ip", Fault::Delay(Duration::from_secs(1)), 1);
    let err = client.ops().api_domain_ips().await.unwrap_err();
    assert!(matches!(&err, Error::Http { source, .. } if source.is_timeout()), "{err:?}");
}
