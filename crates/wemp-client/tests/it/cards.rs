//! 卡券 against the fake platform: cards are created, reviewed, delivered by QR code and
//! taken by users; their codes are queried, redeemed and withdrawn.

use std::time::Duration;

use serde_json::{Value, json};
use wemp_client::api::cards::{Card, CardQrCode, CardStatus, CardType, UserCardStatus};
use wemp_client::{Client, ErrCode, Error};
use wemp_testkit::platform::{FakePlatform, Fault};

use crate::setup;

fn body(platform: &FakePlatform, path: &str) -> Value {
    let r = platform.last_request(path).unwrap_or_else(|| panic!("no request to {path}"));
    assert_eq!(r.method, "POST", "{path}");
    assert!(r.access_token().is_some(), "{path} carries the token");
    r.json().unwrap()
}

fn code_of(err: Error) -> Option<ErrCode> {
    err.code()
}

/// A ¥10-off cash coupon valid for 30 days from when it is taken.
fn cash(quantity: i64) -> Card {
    Card::new(
        CardType::Cash,
        json!({
            "base_info": {
                "logo_url": "http://mmbiz.qpic.cn/logo.png", "brand_name": "Teahouse",
                "code_type": "CODE_TYPE_QRCODE", "title": "¥10 off", "color": "Color010",
                "notice": "Show at the till", "description": "One per order",
                "sku": { "quantity": quantity }, "get_limit": 2,
                "date_info": { "type": "DATE_TYPE_FIX_TERM", "fixed_term": 30, "fixed_begin_term": 0 },
            },
            "least_cost": 5000, "reduce_cost": 1000,
        }),
    )
}

/// Creates and approves a cash card.
async fn approved(platform: &FakePlatform, client: &Client, quantity: i64) -> String {
    let id = client.cards().create(&cash(quantity)).await.unwrap();
    assert!(platform.review_card(&id, true));
    id
}

#[tokio::test]
async fn cards_are_created_read_listed_updated_restocked_and_deleted() {
    let (platform, client) = setup().await;
    let card = cash(100);
    let id = client.cards().create(&card).await.unwrap();
    assert_eq!(body(&platform, "/card/create"), card.to_json());
    assert!(id.starts_with('p') && id.len() == 28, "{id}");

    let read = client.cards().get(&id).await.unwrap();
    assert_eq!(body(&platform, "/card/get"), json!({ "card_id": id }));
    assert_eq!(read.card_type, CardType::Cash);
    assert_eq!(
        (read.id(), read.status(), read.title()),
        (Some(id.as_str()), Some(CardStatus::NotVerify), Some("¥10 off"))
    );
    assert_eq!(read.quantity(), Some(100));
    assert_eq!(read.definition["reduce_cost"], 1000);
    assert_eq!(read.base_info().unwrap()["sku"]["total_quantity"], 100);

    // A second card, approved; the list filters by state and pages.
    let other = approved(&platform, &client, 5).await;
    let all = client.cards().list(0, 10, &[]).await.unwrap();
    assert_eq!(body(&platform, "/card/batchget"), json!({ "offset": 0, "count": 10 }));
    assert_eq!((all.card_ids.clone(), all.total), (vec![id.clone(), other.clone()], 2));
    let ok = client.cards().list(0, 10, &[CardStatus::VerifyOk, CardStatus::Dispatch]).await.unwrap();
    assert_eq!(
        body(&platform, "/card/batchget")["status_list"],
        json!(["CARD_STATUS_VERIFY_OK", "CARD_STATUS_DISPATCH"])
    );
    assert_eq!((ok.card_ids, ok.total), (vec![other.clone()], 1));
    let second = client.cards().list(1, 1, &[]).await.unwrap();
    assert_eq!((second.card_ids, second.total), (vec![other.clone()], 2));

    // A description change keeps the review; a title change sends the card back to it.
    let changes = json!({ "base_info": { "description": "Two per order" } });
    assert!(!client.cards().update(&other, &CardType::Cash, &changes).await.unwrap());
    assert_eq!(body(&platform, "/card/update"), json!({ "card_id": other, "cash": changes }));
    let after = client.cards().get(&other).await.unwrap();
    assert_eq!(after.base_info().unwrap()["description"], "Two per order");
    assert_eq!((after.title(), after.status()), (Some("¥10 off"), Some(CardStatus::VerifyOk)));
    let retitled = json!({ "base_info": { "title": "¥12 off" } });
    assert!(client.cards().update(&other, &CardType::Cash, &retitled).await.unwrap());
    let after = client.cards().get(&other).await.unwrap();
    assert_eq!((after.title(), after.status()), (Some("¥12 off"), Some(CardStatus::NotVerify)));
    let wrong_type = client.cards().update(&other, &CardType::Groupon, &changes).await.unwrap_err();
    assert_eq!(wrong_type.code(), Some(ErrCode(40071)));

    client.cards().modify_stock(&id, 20).await.unwrap();
    assert_eq!(body(&platform, "/card/modifystock"), json!({ "card_id": id, "increase_stock_value": 20 }));
    client.cards().modify_stock(&id, -50).await.unwrap();
    assert_eq!(body(&platform, "/card/modifystock"), json!({ "card_id": id, "reduce_stock_value": 50 }));
    let stock = platform.card(&id).unwrap();
    assert_eq!((stock.quantity, stock.total_quantity), (70, 70));
    assert_eq!(client.cards().get(&id).await.unwrap().quantity(), Some(70));
    let too_many = client.cards().modify_stock(&id, -71).await.unwrap_err();
    assert_eq!(too_many.code(), Some(ErrCode(40122)));
    assert_eq!(platform.card(&id).unwrap().quantity, 70);

    client.cards().delete(&id).await.unwrap();
    assert_eq!(body(&platform, "/card/delete"), json!({ "card_id": id }));
    assert_eq!(client.cards().get(&id).await.unwrap().status(), Some(CardStatus::Delete));
    let deleted = client.cards().list(0, 10, &[CardStatus::Delete]).await.unwrap();
    assert_eq!(deleted.card_ids, std::slice::from_ref(&id));
    assert_eq!(client.cards().modify_stock(&id, 1).await.map_err(code_of).unwrap_err(), Some(ErrCode(40078)));
    assert_eq!(platform.give_card(&id, "o1"), Err(40078));
}

#[tokio::test]
async fn card_definitions_are_checked_as_documented() {
    let (platform, client) = setup().await;
    let create = |card: Card| {
        let client = client.clone();
        async move { client.cards().create(&card).await.map_err(code_of).unwrap_err() }
    };
    let with = |path: &[&str], value: Value| {
        let mut card = cash(10);
        let mut slot = &mut card.definition;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = value;
        card
    };
    let mut unknown = cash(10);
    unknown.card_type = CardType::Other("PAPER_CLIP".into());
    assert_eq!(create(unknown).await, Some(ErrCode(40071)));
    assert_eq!(create(with(&["base_info", "title"], Value::Null)).await, Some(ErrCode(41011)));
    assert_eq!(create(with(&["reduce_cost"], Value::Null)).await, Some(ErrCode(41011)));
    assert_eq!(
        create(with(&["base_info", "code_type"], json!("CODE_TYPE_SMOKE"))).await,
        Some(ErrCode(40072))
    );
    assert_eq!(
        create(with(&["base_info", "title"], json!("一二三四五六七八九十"))).await,
        Some(ErrCode(45021))
    );
    let backwards =
        json!({ "type": "DATE_TYPE_FIX_TIME_RANGE", "begin_timestamp": 200, "end_timestamp": 100 });
    assert_eq!(create(with(&["base_info", "date_info"], backwards)).await, Some(ErrCode(40100)));
    // Nine characters is the limit, not over it.
    client.cards().create(&with(&["base_info", "title"], json!("一二三四五六七八九"))).await.unwrap();

    // Unknown cards, everywhere.
    let nobody = "pNoSuchCard";
    assert_eq!(client.cards().get(nobody).await.map_err(code_of).unwrap_err(), Some(ErrCode(40073)));
    assert_eq!(client.cards().delete(nobody).await.map_err(code_of).unwrap_err(), Some(ErrCode(40073)));
    let err = client.cards().update(nobody, &CardType::Cash, &json!({})).await.unwrap_err();
    assert!(err.to_string().starts_with("/card/update failed with errcode 40073: invalid card id"), "{err}");
    let qr = client.cards().create_qrcode(&CardQrCode::new(nobody)).await.map_err(code_of).unwrap_err();
    assert_eq!(qr, Some(ErrCode(40073)));

    // Refused before sending.
    for count in [0, 51] {
        let err = client.cards().list(0, count, &[]).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains("1 to 50")), "{err:?}");
    }
    assert!(matches!(client.cards().modify_stock("p1", 0).await.unwrap_err(), Error::Invalid(_)));
    let short = CardQrCode::new("p1").expire(Duration::from_secs(30));
    assert!(
        matches!(client.cards().create_qrcode(&short).await.unwrap_err(), Error::Invalid(m) if m.contains("60 to 1800"))
    );
    assert!(matches!(client.cards().user_cards("", None).await.unwrap_err(), Error::Invalid(_)));
    for path in ["/card/batchget", "/card/modifystock", "/card/user/getcardlist"] {
        assert!(platform.requests_to(path).is_empty(), "{path}");
    }
    assert_eq!(platform.requests_to("/card/qrcode/create").len(), 1, "only the unknown card's");

    // Answered by the platform: its own checks, and the token check every API makes.
    let raw = |path: &'static str, body: Value| {
        let client = client.clone();
        async move { client.post_json::<Value, _>(path, &body).await.map_err(code_of) }
    };
    assert_eq!(
        raw("/card/batchget", json!({ "offset": 0, "count": 51 })).await.unwrap_err(),
        Some(ErrCode(47001))
    );
    assert_eq!(raw("/card/batchget", json!({ "offset": 0, "count": 50 })).await.unwrap()["total_num"], 1);
    assert_eq!(raw("/card/create", json!({ "nothing": 1 })).await.unwrap_err(), Some(ErrCode(47001)));
    let url = format!("{}/card/get?access_token=bogus", platform.url());
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "card_id": nobody }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errcode"], 40001);
}

#[tokio::test]
async fn codes_are_taken_queried_redeemed_once_and_listed() {
    let (platform, client) = setup().await;
    let id = approved(&platform, &client, 3).await;
    let now = platform.now_ms() / 1000;
    let a = platform.give_card(&id, "o1").unwrap();
    let b = platform.give_card(&id, "o1").unwrap();
    assert_eq!(a.code.len(), 12);
    assert_ne!(a.code, b.code);
    assert_eq!(platform.give_card(&id, "o1"), Err(45033), "get_limit is 2");
    assert_eq!(platform.card(&id).unwrap().quantity, 1);

    // The user's page gets the encrypted code; the server decrypts it.
    let code = client.cards().decrypt_code(&a.encrypt_code).await.unwrap();
    assert_eq!(body(&platform, "/card/code/decrypt"), json!({ "encrypt_code": a.encrypt_code }));
    assert_eq!(code, a.code);
    let again = platform.encrypt_card_code(&a.code);
    assert_ne!(again, a.encrypt_code);
    assert_eq!(client.cards().decrypt_code(&again).await.unwrap(), a.code);

    let info = client.cards().get_code(&a.code, None, true).await.unwrap();
    assert_eq!(body(&platform, "/card/code/get"), json!({ "code": a.code, "check_consume": true }));
    assert_eq!((info.openid.as_str(), info.card_id.as_str()), ("o1", id.as_str()));
    assert_eq!((info.begin_time, info.end_time), (now, now + 30 * 86_400));
    assert_eq!((info.can_consume, info.user_card_status), (Some(true), Some(UserCardStatus::Normal)));
    let listed = client.cards().user_cards("o1", None).await.unwrap();
    assert_eq!(body(&platform, "/card/user/getcardlist"), json!({ "openid": "o1" }));
    let codes: Vec<_> = listed.cards.iter().map(|c| (c.card_id.as_str(), c.code.as_str())).collect();
    assert_eq!(codes, [(id.as_str(), a.code.as_str()), (id.as_str(), b.code.as_str())]);
    assert!(!listed.has_share_card);

    let consumed = client.cards().consume_code(&a.code, None).await.unwrap();
    assert_eq!(body(&platform, "/card/code/consume"), json!({ "code": a.code }));
    assert_eq!((consumed.openid.as_str(), consumed.card_id.as_str()), ("o1", id.as_str()));
    assert_eq!(platform.card_code(&id, &a.code).unwrap().status, "CONSUMED");
    // Twice: refused, as WeChat does.
    let twice = client.cards().consume_code(&a.code, Some(&id)).await.unwrap_err();
    assert_eq!(twice.code(), Some(ErrCode(40099)));
    assert!(twice.to_string().contains("invalid code, this code has consumed."), "{twice}");
    assert_eq!(body(&platform, "/card/code/consume"), json!({ "code": a.code, "card_id": id }));
    // With check_consume the query fails the same way; without, it reports the state.
    let checked = client.cards().get_code(&a.code, Some(&id), true).await.unwrap_err();
    assert_eq!(checked.code(), Some(ErrCode(40099)));
    let state = client.cards().get_code(&a.code, Some(&id), false).await.unwrap();
    assert_eq!((state.can_consume, state.user_card_status), (Some(false), Some(UserCardStatus::Consumed)));
    let left: Vec<_> =
        client.cards().user_cards("o1", Some(&id)).await.unwrap().cards.into_iter().map(|c| c.code).collect();
    assert_eq!(left, std::slice::from_ref(&b.code));

    // Withdrawn: unavailable, then neither redeemable nor listed.
    client.cards().make_code_unavailable(&b.code, None, Some("refunded")).await.unwrap();
    assert_eq!(body(&platform, "/card/code/unavailable"), json!({ "code": b.code, "reason": "refunded" }));
    let withdrawn = platform.card_code(&id, &b.code).unwrap();
    assert_eq!(
        (withdrawn.status.as_str(), withdrawn.unavailable_reason.as_deref()),
        ("UNAVAILABLE", Some("refunded"))
    );
    assert_eq!(
        client.cards().consume_code(&b.code, None).await.map_err(code_of).unwrap_err(),
        Some(ErrCode(40127))
    );
    let state = client.cards().get_code(&b.code, None, false).await.unwrap();
    assert_eq!(state.user_card_status, Some(UserCardStatus::Unavailable));
    let again = client.cards().make_code_unavailable(&b.code, None, None).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrCode(40127)));
    assert!(client.cards().user_cards("o1", None).await.unwrap().cards.is_empty());

    // A code the user deleted from their wallet.
    let c = platform.give_card(&id, "o2").unwrap();
    assert!(platform.user_deletes_card(&id, &c.code));
    assert_eq!(
        client.cards().get_code(&c.code, None, true).await.map_err(code_of).unwrap_err(),
        Some(ErrCode(40127))
    );
    assert_eq!(platform.give_card(&id, "o3"), Err(45031), "the stock is used up");

    // Deleting the card leaves the codes users hold usable.
    let d = {
        client.cards().modify_stock(&id, 1).await.unwrap();
        platform.give_card(&id, "o3").unwrap()
    };
    client.cards().delete(&id).await.unwrap();
    client.cards().consume_code(&d.code, None).await.unwrap();
}

#[tokio::test]
async fn unknown_and_custom_codes_and_bad_encrypt_codes_are_refused() {
    let (platform, client) = setup().await;
    let id = approved(&platform, &client, 10).await;
    let a = platform.give_card(&id, "o1").unwrap();

    let code = |e: Error| e.code();
    assert_eq!(
        client.cards().get_code("999999999999", None, true).await.map_err(code).unwrap_err(),
        Some(ErrCode(40056))
    );
    assert_eq!(
        client.cards().consume_code("999999999999", None).await.map_err(code).unwrap_err(),
        Some(ErrCode(40056))
    );
    let unknown = client.cards().make_code_unavailable("999999999999", None, None).await.unwrap_err();
    assert!(unknown.to_string().contains("40056: invalid serial code"), "{unknown}");
    assert_eq!(
        client.cards().get_code(&a.code, Some("pNoSuchCard"), true).await.map_err(code).unwrap_err(),
        Some(ErrCode(40073))
    );
    assert_eq!(
        client.cards().user_cards("o1", Some("pNoSuchCard")).await.map_err(code).unwrap_err(),
        Some(ErrCode(40073))
    );

    // Encrypt codes that are not the platform's, or name nothing it issued.
    for bad in ["not-base64!".to_owned(), platform.encrypt_card_code("123456789012")] {
        let err = client.cards().decrypt_code(&bad).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrCode(40075)), "{bad}");
    }

    // A custom-code card: its codes are found only with the card id.
    let mut custom = cash(10);
    custom.definition["base_info"]["use_custom_code"] = json!(true);
    let custom_id = client.cards().create(&custom).await.unwrap();
    assert_eq!(platform.give_card_code(&custom_id, "o1", "MY-0001"), Err(40078), "not reviewed yet");
    client.cards().set_test_whitelist(&["o1"], &["tester_wxid"]).await.unwrap();
    assert_eq!(
        body(&platform, "/card/testwhitelist/set"),
        json!({ "openid": ["o1"], "username": ["tester_wxid"] })
    );
    let (openids, usernames) = platform.card_test_whitelist();
    assert_eq!(
        (openids.into_iter().collect::<Vec<_>>(), usernames.into_iter().collect::<Vec<_>>()),
        (vec!["o1".to_owned()], vec!["tester_wxid".to_owned()])
    );
    let mine = platform.give_card_code(&custom_id, "o1", "MY-0001").unwrap();
    assert_eq!(mine.code, "MY-0001");
    assert_eq!(platform.give_card_code(&custom_id, "o1", "MY-0001"), Err(40116));
    assert_eq!(platform.give_card(&custom_id, "o1"), Err(41011));
    assert_eq!(platform.give_card_code(&custom_id, "o2", "MY-0002"), Err(40078), "o2 is not whitelisted");
    assert_eq!(
        client.cards().consume_code("MY-0001", None).await.map_err(code).unwrap_err(),
        Some(ErrCode(40056))
    );
    client.cards().consume_code("MY-0001", Some(&custom_id)).await.unwrap();
    assert_eq!(client.cards().decrypt_code(&mine.encrypt_code).await.unwrap(), "MY-0001");

    // The whitelist is replaced, not extended.
    client.cards().set_test_whitelist(&[], &[]).await.unwrap();
    assert_eq!(platform.give_card_code(&custom_id, "o1", "MY-0003"), Err(40078));

    // Faults reach the caller with WeChat's code.
    platform.inject_times("/card/code/consume", Fault::ErrCode(45030), 1);
    let b = platform.give_card(&id, "o2").unwrap();
    assert_eq!(
        client.cards().consume_code(&b.code, None).await.map_err(code).unwrap_err(),
        Some(ErrCode(45030))
    );
    assert_eq!(platform.card_code(&id, &b.code).unwrap().status, "NORMAL");
}

#[tokio::test]
async fn card_qr_codes_deliver_the_card_with_their_channel() {
    let (platform, client) = setup().await;
    let id = approved(&platform, &client, 10).await;

    let qr = CardQrCode::new(&id).outer_str("poster").expire(Duration::from_secs(1800));
    let ticket = client.cards().create_qrcode(&qr).await.unwrap();
    assert_eq!(
        body(&platform, "/card/qrcode/create"),
        json!({ "action_name": "QR_CARD", "expire_seconds": 1800,
                "action_info": { "card": { "card_id": id, "outer_str": "poster" } } })
    );
    assert_eq!(ticket.expire_seconds, Some(1800));
    assert!(ticket.url.starts_with("http://weixin.qq.com/q/"), "{}", ticket.url);
    assert!(ticket.show_qrcode_url.starts_with("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQ"));
    assert_eq!(client.cards().get(&id).await.unwrap().status(), Some(CardStatus::Dispatch), "delivered");
    // The ticket turns into an image like any QR-code ticket.
    let image = reqwest::get(client.qrcode().image_url(&ticket.ticket)).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/jpeg");

    // Scans hand out the card; the channel value comes back from code/get.
    let got = platform.scan_card_qrcode(&ticket.ticket, "o1").unwrap();
    let other = platform.scan_card_qrcode(&ticket.ticket, "o2").unwrap();
    assert_ne!(got.code, other.code);
    let info = client.cards().get_code(&got.code, None, true).await.unwrap();
    assert_eq!((info.openid.as_str(), info.outer_str.as_deref()), ("o1", Some("poster")));
    platform.advance(Duration::from_secs(1800));
    assert_eq!(platform.scan_card_qrcode(&ticket.ticket, "o3"), Err(40079), "expired");

    // A single-use QR code, bound to one user.
    let once = CardQrCode::new(&id).openid("o4").unique_code(true);
    let ticket = client.cards().create_qrcode(&once).await.unwrap();
    assert_eq!(ticket.expire_seconds, None);
    assert_eq!(platform.scan_card_qrcode(&ticket.ticket, "o5"), Err(40053));
    platform.scan_card_qrcode(&ticket.ticket, "o4").unwrap();
    assert_eq!(platform.scan_card_qrcode(&ticket.ticket, "o4"), Err(40099));

    // A custom-code card needs its code in the QR code.
    let mut custom = cash(10);
    custom.definition["base_info"]["use_custom_code"] = json!(true);
    let custom_id = client.cards().create(&custom).await.unwrap();
    let missing = client.cards().create_qrcode(&CardQrCode::new(&custom_id)).await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrCode(40053)));
    platform.review_card(&custom_id, true);
    let with_code = client.cards().create_qrcode(&CardQrCode::new(&custom_id).code("VIP-7")).await.unwrap();
    assert_eq!(platform.scan_card_qrcode(&with_code.ticket, "o6").unwrap().code, "VIP-7");
    let info = client.cards().get_code("VIP-7", Some(&custom_id), false).await.unwrap();
    assert_eq!((info.openid.as_str(), info.user_card_status), ("o6", Some(UserCardStatus::Normal)));
}
