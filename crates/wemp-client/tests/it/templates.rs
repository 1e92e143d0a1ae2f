//! Template messages (`client.templates()`) against the fake platform.

use serde_json::json;
use wemp_client::ErrCode;
use wemp_client::api::templates::TemplateMessage;

use crate::{body, setup};

#[tokio::test]
async fn template_messages_industries_and_templates() {
    let (platform, client) = setup().await;
    client.templates().set_industry("1", "4").await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/template/api_set_industry"),
        json!({ "industry_id1": "1", "industry_id2": "4" })
    );
    assert!(client.templates().industry().await.unwrap().primary_industry.second_class.contains('1'));
    let id = client.templates().add("TM00015", &["name", "time"]).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/template/api_add_template")["keyword_name_list"],
        json!(["name", "time"])
    );
    assert_eq!(client.templates().list().await.unwrap()[0].template_id, id);

    let msg = TemplateMessage::new("o1", &id)
        .url("https://e.com")
        .field("first", "hi")
        .colored("remark", "r", "#FF0000");
    let msgid = client.templates().send(&msg).await.unwrap();
    assert!(msgid > 0);
    assert_eq!(
        body(&platform, "/cgi-bin/message/template/send"),
        json!({ "touser": "o1", "template_id": id, "url": "https://e.com",
                "data": { "first": { "value": "hi" }, "remark": { "value": "r", "color": "#FF0000" } } })
    );
    client.templates().delete(&id).await.unwrap();
    let err = client.templates().send(&msg).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40037)));
    assert!(err.to_string().contains("no such template id"), "{err}");

    // A mini program and a dedup id ride along when set.
    let id = client.templates().add("TM00015", &[]).await.unwrap();
    let msg = TemplateMessage::new("o1", &id)
        .miniprogram("wxa", "pages/i")
        .client_msg_id("m-1")
        .field("first", "x");
    client.templates().send(&msg).await.unwrap();
    let sent = body(&platform, "/cgi-bin/message/template/send");
    assert_eq!(sent["miniprogram"], json!({ "appid": "wxa", "pagepath": "pages/i" }));
    assert_eq!(sent["client_msg_id"], "m-1");
}
