//! Sends a template message through the fake platform.
//!
//! `cargo run -p wemp-client --example send_template`

use wemp_client::Client;
use wemp_client::api::templates::TemplateMessage;
use wemp_testkit::platform::FakePlatform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = FakePlatform::start().await;
    let client =
        Client::builder(platform.appid()).secret(platform.secret()).all_base_urls(platform.url()).build()?;

    let template_id = client.templates().add("TM00015", &["order", "time"]).await?;
    let msg = TemplateMessage::new("o-user", &template_id)
        .url("https://shop.example/orders/42")
        .field("first", "Your order has shipped")
        .field("keyword1", "#42")
        .colored("remark", "Thank you!", "#173177");
    let msgid = client.templates().send(&msg).await?;

    tracing::info!(msgid, "sent");
    let sent = platform.sent_messages();
    assert_eq!(sent[0]["data"]["first"]["value"], "Your order has shipped");
    eprintln!("sent template message {msgid}: {}", sent[0]);
    Ok(())
}
