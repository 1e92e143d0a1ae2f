//! The card api_ticket and the JS-SDK's card signatures against the fake platform: the
//! ticket is cached and shared like the jsapi_ticket, and the platform takes the signed
//! `wx.addCard` and `wx.chooseCard` arguments as WeChat does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wemp_client::api::cards::{Card, CardExt, CardType, ChooseCard, MAX_CARD_NONCE_LEN, card_signature};
use wemp_client::{Error, MemoryTokenStore, TokenStore};
use wemp_testkit::platform::FakePlatform;

use crate::{builder, setup};

/// The card signature computed apart from the client: every ordering of the values is
/// tried and the one in ascending order kept, then joined and hashed here.
fn expected(values: &[&str]) -> String {
    let mut best: Option<Vec<&str>> = None;
    let mut order: Vec<usize> = (0..values.len()).collect();
    permute(&mut order, 0, &mut |o| {
        let candidate: Vec<&str> = o.iter().map(|&i| values[i]).collect();
        if candidate.windows(2).all(|w| w[0].as_bytes() <= w[1].as_bytes()) {
            best = Some(candidate);
        }
    });
    let joined: String = best.expect("some ordering is sorted").concat();
    Sha1::digest(joined.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn permute(order: &mut Vec<usize>, k: usize, visit: &mut dyn FnMut(&[usize])) {
    if k == order.len() {
        visit(order);
        return;
    }
    for i in k..order.len() {
        order.swap(k, i);
        permute(order, k + 1, visit);
        order.swap(k, i);
    }
}

fn wx_card_requests(platform: &FakePlatform) -> usize {
    platform
        .requests_to("/cgi-bin/ticket/getticket")
        .iter()
        .filter(|r| r.query.get("type").map(String::as_str) == Some("wx_card"))
        .count()
}

fn card(card_type: CardType, base: Value) -> Card {
    let mut definition = json!({
        "base_info": {
            "logo_url": "http://mmbiz.qpic.cn/logo.png", "brand_name": "Teahouse",
            "code_type": "CODE_TYPE_QRCODE", "title": "Tea card", "color": "Color010",
            "notice": "Show at the till", "description": "One per order",
            "sku": { "quantity": 10 },
            "date_info": { "type": "DATE_TYPE_PERMANENT" },
        },
        "least_cost": 5000, "reduce_cost": 1000,
    });
    if let Value::Object(extra) = base {
        definition["base_info"].as_object_mut().unwrap().extend(extra);
    }
    if card_type == CardType::Gift {
        definition["gift"] = json!("A pot of tea");
    }
    Card::new(card_type, definition)
}

#[test]
fn the_documented_example_and_an_independent_computation_agree() {
    // 附录4's worked example: sha1("12314048966881434008071ojZ8…pjZ8…").
    let values =
        ["1434008071", "1404896688", "pjZ8Yt1XGILfi-FUsewpnnolGgZk", "ojZ8YtyVyr30HheH3CM73y7h4jJE", "123"];
    assert_eq!(expected(&values), "f137ab68b7f8112d20ee528ab6074564e2796250");
    assert_eq!(card_signature(&values), "f137ab68b7f8112d20ee528ab6074564e2796250");
    let ext = CardExt::sign(values[3], values[2], Some(values[0]), None, 1_404_896_688, values[4]).unwrap();
    assert_eq!(ext.signature, "f137ab68b7f8112d20ee528ab6074564e2796250");
    assert_eq!(
        serde_json::from_str::<Value>(&ext.to_json_string()).unwrap(),
        json!({ "code": "1434008071", "timestamp": "1404896688", "nonce_str": "123",
                "signature": "f137ab68b7f8112d20ee528ab6074564e2796250" })
    );
    // Sorting is by bytes: upper case before lower case, digits before both.
    assert_eq!(card_signature(&["b", "B", "1"]), expected(&["b", "B", "1"]));
    let long = "x".repeat(MAX_CARD_NONCE_LEN + 1);
    assert!(
        matches!(CardExt::sign("t", "p1", None, None, 1, &long), Err(Error::Invalid(m)) if m.contains("32"))
    );
    assert!(matches!(CardExt::sign("t", "", None, None, 1, "n"), Err(Error::Invalid(_))));
    assert!(matches!(ChooseCard::sign("t", "wx1", None, None, None, 1, ""), Err(Error::Invalid(_))));
}

#[tokio::test]
async fn the_api_ticket_is_cached_and_shared_through_the_store_apart_from_the_jsapi_ticket() {
    let platform = FakePlatform::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let a = builder(&platform).store(store.clone()).build().unwrap();
    let b = builder(&platform).store(store.clone()).build().unwrap();

    let ticket = a.cards().api_ticket().await.unwrap();
    assert!(ticket.starts_with("wxcard_"), "{ticket}");
    assert_eq!(b.cards().api_ticket().await.unwrap(), ticket, "the second client reads the shared one");
    assert_eq!(a.cards().api_ticket().await.unwrap(), ticket);
    assert_eq!(wx_card_requests(&platform), 1);
    let last = platform.last_request("/cgi-bin/ticket/getticket").unwrap();
    assert_eq!((last.method.as_str(), last.access_token().is_some()), ("GET", true));

    // The jsapi_ticket is another ticket in another store entry.
    let jsapi = a.jsapi_ticket().await.unwrap();
    assert_ne!(jsapi, ticket);
    assert_eq!(b.cards().api_ticket().await.unwrap(), ticket);
    assert_eq!(platform.requests_to("/cgi-bin/ticket/getticket").len(), 2);
    assert_eq!(
        store
            .get(&format!("wemp:card_api_ticket:{}", platform.appid()))
            .await
            .unwrap()
            .unwrap()
            .value
            .expose(),
        ticket
    );

    // Expired: fetched again, once, and the new one shared.
    platform.advance(Duration::from_secs(7200));
    let fresh = b.cards().api_ticket().await.unwrap();
    assert_ne!(fresh, ticket);
    assert_eq!(a.cards().api_ticket().await.unwrap(), fresh);
    assert_eq!(wx_card_requests(&platform), 2);
}

#[tokio::test]
async fn a_signed_card_ext_lets_the_user_take_the_card_once() {
    let (platform, client) = setup().await;
    let id = client.cards().create(&card(CardType::Cash, json!({}))).await.unwrap();
    assert!(platform.review_card(&id, true));

    let ext = client.cards().card_ext(&id, None, None).await.unwrap();
    let ticket = client.cards().api_ticket().await.unwrap();
    assert_eq!(ext.signature, expected(&[&ticket, &ext.timestamp, &id, "", "", &ext.nonce_str]));
    assert_eq!(ext.timestamp, (platform.now_ms() / 1000).to_string());
    assert!(!ext.nonce_str.is_empty() && ext.nonce_str.len() <= MAX_CARD_NONCE_LEN);
    let mut with_channel = ext.clone();
    with_channel.outer_str = Some("poster".into()); // not signed: may be set afterwards
    let grant = platform.add_card(&id, &with_channel.to_json_string(), "o1").unwrap();
    assert_eq!(client.cards().decrypt_code(&grant.encrypt_code).await.unwrap(), grant.code);
    assert_eq!(platform.card_code(&id, &grant.code).unwrap().outer_str.as_deref(), Some("poster"));

    // The same timestamp and nonce work once; a changed value breaks the signature.
    let replay = platform.add_card(&id, &ext.to_json_string(), "o2").unwrap_err();
    assert!(replay.starts_with("addCard:fail") && replay.contains("duplicate"), "{replay}");
    let mut forged = client.cards().card_ext(&id, None, None).await.unwrap();
    forged.timestamp = (platform.now_ms() / 1000 + 1).to_string();
    assert_eq!(
        platform.add_card(&id, &forged.to_json_string(), "o2").unwrap_err(),
        "addCard:fail signature error"
    );
    // Signed for another card.
    let other = client.cards().card_ext("pOther", None, None).await.unwrap();
    assert_eq!(
        platform.add_card(&id, &other.to_json_string(), "o2").unwrap_err(),
        "addCard:fail signature error"
    );

    // A custom-code card bound to one user: code and openid are signed.
    let bound = card(CardType::Cash, json!({ "use_custom_code": true, "bind_openid": true }));
    let bound_id = client.cards().create(&bound).await.unwrap();
    assert!(platform.review_card(&bound_id, true));
    let ext = client.cards().card_ext(&bound_id, Some("VIP-9"), Some("o3")).await.unwrap();
    assert_eq!(ext.signature, expected(&[&ticket, &ext.timestamp, &bound_id, "VIP-9", "o3", &ext.nonce_str]));
    assert_eq!(
        platform.add_card(&bound_id, &ext.to_json_string(), "o4").unwrap_err(),
        "addCard:fail openid not match"
    );
    assert_eq!(platform.add_card(&bound_id, &ext.to_json_string(), "o3").unwrap().code, "VIP-9");

    // Checked before anything is fetched.
    platform.clear_requests();
    assert!(matches!(client.cards().card_ext("", None, None).await, Err(Error::Invalid(_))));
    assert!(platform.requests().is_empty());
}

#[tokio::test]
async fn choose_card_is_signed_with_the_app_id_and_lists_the_users_cards() {
    let (platform, client) = setup().await;
    let cash = client.cards().create(&card(CardType::Cash, json!({}))).await.unwrap();
    let gift = client.cards().create(&card(CardType::Gift, json!({}))).await.unwrap();
    for id in [&cash, &gift] {
        assert!(platform.review_card(id, true));
    }
    let a = platform.give_card(&cash, "o1").unwrap();
    let b = platform.give_card(&gift, "o1").unwrap();
    platform.give_card(&cash, "o2").unwrap();

    let args = client.cards().choose_card(None, Some(&CardType::Cash), None).await.unwrap();
    let ticket = client.cards().api_ticket().await.unwrap();
    let ts = args.timestamp.to_string();
    assert_eq!(args.card_sign, expected(&[&ticket, &platform.appid(), "", &ts, &args.nonce_str, "", "CASH"]));
    let js = serde_json::to_value(&args).unwrap();
    assert_eq!(
        (js["cardType"].as_str(), js["signType"].as_str(), js["shopId"].as_str()),
        (Some("CASH"), Some("SHA1"), Some(""))
    );
    let chosen = platform.choose_card(&js, "o1").unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].0, cash);
    assert_eq!(client.cards().decrypt_code(&chosen[0].1).await.unwrap(), a.code);

    // All of the user's cards; one card; a tampered argument.
    let all = client.cards().choose_card(None, None, None).await.unwrap();
    let mut codes = Vec::new();
    for (_, encrypted) in platform.choose_card(&serde_json::to_value(&all).unwrap(), "o1").unwrap() {
        codes.push(client.cards().decrypt_code(&encrypted).await.unwrap());
    }
    codes.sort();
    let mut want = vec![a.code.clone(), b.code.clone()];
    want.sort();
    assert_eq!(codes, want);
    let one = client.cards().choose_card(Some("shop-1"), None, Some(&gift)).await.unwrap();
    let one_js = serde_json::to_value(&one).unwrap();
    assert_eq!(platform.choose_card(&one_js, "o1").unwrap().len(), 1);
    let mut tampered = one_js.clone();
    tampered["cardId"] = json!(cash);
    assert_eq!(platform.choose_card(&tampered, "o1").unwrap_err(), "chooseCard:fail signature error");
}

/// Two processes' clients on one Redis, asking at once: one api_ticket fetch between them.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_on_one_redis_fetch_the_api_ticket_once() {
    let Some(conn) = crate::shared_redis().await else { return };
    let prefix = format!("wemp-test:card-ticket:{:016x}:", rand::random::<u64>());
    let store = || -> Arc<dyn TokenStore> {
        Arc::new(wemp_store::redis::RedisTokenStore::new(conn.clone(), prefix.clone()))
    };
    let platform = FakePlatform::start().await;
    let a = builder(&platform).store(store()).build().unwrap();
    let b = builder(&platform).store(store()).build().unwrap();
    let (ca, cb) = (a.cards(), b.cards());
    let (ta, tb) = tokio::join!(ca.api_ticket(), cb.api_ticket());
    assert_eq!(ta.unwrap(), tb.unwrap());
    assert_eq!(wx_card_requests(&platform), 1);
    let left = store();
    for kind in ["access_token", "card_api_ticket"] {
        let key = format!("wemp:{kind}:{}", platform.appid());
        let current = left.get(&key).await.unwrap().expect("stored in Redis");
        assert!(left.invalidate(&key, current.value.expose()).await.unwrap());
    }
}
