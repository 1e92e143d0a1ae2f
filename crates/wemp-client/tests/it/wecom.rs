//! A WeCom application's client: `gettoken` per app, shared through the token store, and
//! `message/send`.

use std::sync::Arc;
use std::time::Duration;

use wemp_client::wecom::{Recipients, WecomMessage};
use wemp_client::{Client, Error, MemoryTokenStore, ReplyDelivery, RetryPolicy, TokenStore};
use wemp_proto::Reply;
use wemp_testkit::platform::FakePlatform;

fn wecom(platform: &FakePlatform, store: Option<Arc<dyn TokenStore>>) -> Client {
    let clock = platform.clock();
    let mut b = Client::builder(platform.corpid())
        .secret(platform.corp_secret())
        .wecom(platform.agentid())
        .all_base_urls(platform.url())
        .clock(move || clock.now_ms())
        .retry_policy(RetryPolicy::new(3, Duration::from_millis(1)));
    if let Some(s) = store {
        b = b.store(s);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_wecom_token_and_send_text_markdown_and_cards() {
    let platform = FakePlatform::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let (a, b) = (wecom(&platform, Some(store.clone())), wecom(&platform, Some(store)));
    assert_eq!(a.agentid(), Some(platform.agentid().as_str()));

    let to = Recipients::users(["zhangsan", "lisi"]).parties(["2"]).tags(["7"]);
    a.wecom_send(&to, &WecomMessage::text("hello")).await.unwrap();
    b.wecom_send(&Recipients::users(["zhangsan"]), &WecomMessage::markdown("**done**")).await.unwrap();
    let card =
        WecomMessage::textcard("Build", "<div class=\"gray\">passed</div>", "https://ci.example.com/1");
    b.wecom_send(&Recipients::everyone(), &card).await.unwrap();
    assert_eq!(platform.requests_to("/cgi-bin/gettoken").len(), 1, "the second client read the store");
    assert_eq!(a.token_fetches() + b.token_fetches(), 1);

    let sent = platform.wecom_messages();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0]["touser"], "zhangsan|lisi");
    assert_eq!((sent[0]["toparty"].as_str(), sent[0]["totag"].as_str()), (Some("2"), Some("7")));
    assert_eq!(sent[0]["text"]["content"], "hello");
    assert_eq!(sent[0]["agentid"].to_string(), platform.agentid());
    assert_eq!(sent[1]["markdown"]["content"], "**done**");
    assert_eq!(sent[2]["touser"], "@all");
    assert_eq!(sent[2]["textcard"]["url"], "https://ci.example.com/1");

    // The secret never reaches a request's query string except gettoken's, and never Debug.
    assert!(!format!("{a:?}").contains(&platform.corp_secret()));

    // A late reply to a member goes through message/send; an expired token is refreshed.
    platform.advance(Duration::from_secs(7200));
    assert_eq!(a.kf().send_reply("wangwu", &Reply::text("late")).await.unwrap(), ReplyDelivery::Sent);
    let last = platform.wecom_messages().pop().unwrap();
    assert_eq!((last["touser"].as_str(), last["text"]["content"].as_str()), (Some("wangwu"), Some("late")));
    assert!(matches!(
        a.kf().send_reply("wangwu", &Reply::TransferCustomerService { kf_account: None }).await,
        Err(Error::Invalid(_))
    ));
    // Nothing went to the Official Account's customer-service API.
    assert!(platform.sent_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_and_no_recipient_are_clear_errors() {
    let platform = FakePlatform::start().await;
    let bad = Client::builder(platform.corpid())
        .secret("wrong")
        .wecom(platform.agentid())
        .all_base_urls(platform.url())
        .build()
        .unwrap();
    let err = bad.wecom_send(&Recipients::users(["u"]), &WecomMessage::text("x")).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.0), Some(40001), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    let ok = wecom(&platform, None);
    let err = ok.wecom_send(&Recipients::default(), &WecomMessage::text("x")).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    // An Official Account's client is not a WeCom client.
    let oa = Client::builder(platform.appid())
        .secret(platform.secret())
        .all_base_urls(platform.url())
        .build()
        .unwrap();
    assert!(matches!(
        oa.wecom_send(&Recipients::users(["u"]), &WecomMessage::text("x")).await,
        Err(Error::Invalid(_))
    ));
}

/// Two apps of one corp: each Secret gets its app's own token, cached under its own key, and
/// a token is good for its own app's `agentid` only (`301002` for another's, as on WeCom).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_app_of_a_corp_has_its_own_token() {
    let platform = FakePlatform::start().await;
    platform.add_wecom_app("1000003", "ops-secret");
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let corp = wecom(&platform, Some(store.clone()));
    let app = |secret: &str, agent: &str| {
        Client::builder(platform.corpid())
            .secret(secret)
            .wecom(agent)
            .all_base_urls(platform.url())
            .store(store.clone())
            .build()
            .unwrap()
    };
    let ops = app("ops-secret", "1000003");
    corp.wecom_send(&Recipients::users(["a"]), &WecomMessage::text("corp")).await.unwrap();
    ops.wecom_send(&Recipients::users(["b"]), &WecomMessage::text("ops")).await.unwrap();
    let (t1, t2) = (corp.access_token().await.unwrap(), ops.access_token().await.unwrap());
    assert_ne!(t1.secret(), t2.secret(), "one store, one token per app");
    assert_eq!(platform.wecom_token_app(t1.secret()).as_deref(), Some(platform.agentid().as_str()));
    assert_eq!(platform.wecom_token_app(t2.secret()).as_deref(), Some("1000003"));
    let sent: Vec<String> = platform
        .wecom_messages()
        .iter()
        .map(|m| m["agentid"].to_string().trim_matches('"').to_owned())
        .collect();
    assert_eq!(sent, [platform.agentid(), "1000003".to_owned()]);

    // The second app's Secret with the first app's AgentID: its token is refused for it.
    let mixed = app("ops-secret", &platform.agentid());
    let err = mixed.wecom_send(&Recipients::users(["c"]), &WecomMessage::text("x")).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.0), Some(301002), "{err}");
    // An AgentID the corp has no app for.
    let nobody = app("ops-secret", "1000009");
    let err = nobody.wecom_send(&Recipients::users(["c"]), &WecomMessage::text("x")).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.0), Some(40056), "{err}");
    assert_eq!(platform.wecom_messages().len(), 2);
}
