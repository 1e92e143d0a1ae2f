//! Mass sending (`client.mass()`) against the fake platform.

use serde_json::json;
use wemp_client::ErrCode;
use wemp_client::api::mass::MassContent;

use crate::{body, setup};

#[tokio::test]
async fn mass_sending() {
    let (platform, client) = setup().await;
    let sent = client.mass().send_to_tag(Some(2), &MassContent::MpNews("n1".into())).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/sendall"),
        json!({ "filter": { "is_to_all": false, "tag_id": 2 }, "msgtype": "mpnews", "mpnews": { "media_id": "n1" }, "send_ignore_reprint": 0 })
    );
    client.mass().send_to_tag(None, &MassContent::Text("all".into())).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/mass/sendall")["filter"], json!({ "is_to_all": true }));
    client.mass().send_to_users(&["o1", "o2"], &MassContent::Video("v".into())).await.unwrap();
    assert_eq!(
        body(&platform, "/cgi-bin/message/mass/send"),
        json!({ "touser": ["o1", "o2"], "msgtype": "mpvideo", "mpvideo": { "media_id": "v" } })
    );
    client.mass().preview("o1", &MassContent::Image("i".into())).await.unwrap();
    assert_eq!(body(&platform, "/cgi-bin/message/mass/preview")["image"]["media_id"], "i");
    assert_eq!(client.mass().status(sent.msg_id).await.unwrap(), "SEND_SUCCESS");
    client.mass().delete(sent.msg_id, None).await.unwrap();
    assert_eq!(client.mass().status(sent.msg_id).await.unwrap_err().code(), Some(ErrCode(40007)));
    client.mass().set_speed(2).await.unwrap();
    assert_eq!(client.mass().speed().await.unwrap().speed, 2);
}
