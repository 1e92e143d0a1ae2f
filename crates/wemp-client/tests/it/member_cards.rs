//! Member cards (会员卡) against the fake platform: activation through the API and through
//! the activation form, the member's card read back, and points, balance and custom fields
//! updated.

use serde_json::{Value, json};
use wemp_client::api::cards::{
    ActivationForm, Card, CardType, Figure, FormField, FormFields, FormLink, MemberActivation, MemberNotify,
    MemberUpdate, RichField, RichFieldType, UserCardStatus,
};
use wemp_client::{Client, ErrCode, Error};
use wemp_testkit::platform::FakePlatform;

use crate::setup;

fn body(platform: &FakePlatform, path: &str) -> Value {
    platform.last_request(path).unwrap_or_else(|| panic!("no request to {path}")).json().unwrap()
}

/// Creates and approves a member card with points, balance and one custom field.
async fn member_card(platform: &FakePlatform, client: &Client) -> String {
    let card = Card::new(
        CardType::MemberCard,
        json!({
            "base_info": {
                "logo_url": "http://mmbiz.qpic.cn/logo.png", "brand_name": "Teahouse",
                "code_type": "CODE_TYPE_TEXT", "title": "Tea club", "color": "Color010",
                "notice": "Show at the till", "description": "Members only",
                "sku": { "quantity": 100 }, "date_info": { "type": "DATE_TYPE_PERMANENT" },
            },
            "prerogative": "10% off", "supply_bonus": true, "supply_balance": true, "wx_activate": true,
            "custom_field1": { "name_type": "FIELD_NAME_TYPE_LEVEL" },
        }),
    );
    let id = client.cards().create(&card).await.unwrap();
    assert!(platform.review_card(&id, true));
    id
}

fn code_of<T: std::fmt::Debug>(r: wemp_client::Result<T>) -> Option<ErrCode> {
    r.unwrap_err().code()
}

#[tokio::test]
async fn a_member_card_is_activated_read_and_updated() {
    let (platform, client) = setup().await;
    let id = member_card(&platform, &client).await;
    let held = platform.give_card(&id, "o1").unwrap();

    let before = client.cards().member_info(&id, &held.code).await.unwrap();
    assert_eq!(body(&platform, "/card/membercard/userinfo/get"), json!({ "card_id": id, "code": held.code }));
    assert_eq!((before.openid.as_str(), before.has_active, before.bonus), ("o1", false, 0));
    assert_eq!(before.user_card_status, Some(UserCardStatus::Normal));

    let activation = MemberActivation {
        card_id: Some(id.clone()),
        init_bonus: Some(100),
        init_bonus_record: Some("welcome".into()),
        init_balance: Some(500),
        init_custom_field_value1: Some("白银".into()),
        activate_begin_time: Some(1_700_000_000),
        activate_end_time: Some(1_800_000_000),
        ..MemberActivation::new(&held.code, "M-0001")
    };
    client.cards().activate_member(&activation).await.unwrap();
    assert_eq!(
        body(&platform, "/card/membercard/activate"),
        json!({ "code": held.code, "card_id": id, "membership_number": "M-0001", "init_bonus": 100,
                "init_bonus_record": "welcome", "init_balance": 500, "init_custom_field_value1": "白银",
                "activate_begin_time": 1_700_000_000, "activate_end_time": 1_800_000_000 })
    );
    let member = platform.member(&id, &held.code).unwrap();
    assert_eq!(member.custom_field_values[0].as_deref(), Some("白银"));
    assert_eq!(member.activate_time, Some((1_700_000_000, 1_800_000_000)));
    let info = client.cards().member_info(&id, &held.code).await.unwrap();
    assert_eq!(
        (info.has_active, info.membership_number.as_str(), info.bonus, info.balance),
        (true, "M-0001", 100, Some(500))
    );
    assert_eq!(info.nickname, "");

    // Points by an amount, balance to a value; WeChat notifies points and balance by default.
    let spend = MemberUpdate {
        bonus: Some(Figure::Add(30)),
        record_bonus: Some("消费30元，获得30积分".into()),
        balance: Some(Figure::Set(200)),
        custom_field_value1: Some("黄金".into()),
        ..MemberUpdate::new(&id, &held.code)
    };
    let updated = client.cards().update_member(&spend).await.unwrap();
    assert_eq!(
        body(&platform, "/card/membercard/updateuser"),
        json!({ "code": held.code, "card_id": id, "add_bonus": 30, "record_bonus": "消费30元，获得30积分",
                "balance": 200, "custom_field_value1": "黄金" })
    );
    assert_eq!((updated.result_bonus, updated.result_balance, updated.openid.as_str()), (130, 200, "o1"));
    let notices = platform.member(&id, &held.code).unwrap().notices;
    assert_eq!(
        notices,
        vec![
            json!({ "field": "bonus", "value": 130, "record": "消费30元，获得30积分" }),
            json!({ "field": "balance", "value": 200, "record": null }),
        ],
        "custom fields are not notified unless asked"
    );

    // Notifications as asked: none for points, one for the custom field.
    let quiet = MemberUpdate {
        bonus: Some(Figure::Add(-130)),
        custom_field_value1: Some("白金".into()),
        notify: Some(MemberNotify {
            bonus: false,
            balance: false,
            custom_field1: true,
            ..MemberNotify::default()
        }),
        ..MemberUpdate::new(&id, &held.code)
    };
    assert_eq!(client.cards().update_member(&quiet).await.unwrap().result_bonus, 0);
    assert_eq!(
        body(&platform, "/card/membercard/updateuser")["notify_optional"]["is_notify_custom_field1"],
        true
    );
    let notices = platform.member(&id, &held.code).unwrap().notices;
    assert_eq!(notices.last(), Some(&json!({ "field": "custom_field1", "value": "白金" })));
    assert_eq!(notices.len(), 3);
    // Below zero: refused, and nothing changes.
    let overdraw = MemberUpdate { bonus: Some(Figure::Add(-1)), ..MemberUpdate::new(&id, &held.code) };
    assert_eq!(code_of(client.cards().update_member(&overdraw).await), Some(ErrCode(47001)));
    assert_eq!(client.cards().member_info(&id, &held.code).await.unwrap().bonus, 0);

    // Activating again changes the membership number and keeps the figures.
    client
        .cards()
        .activate_member(&MemberActivation {
            init_bonus: Some(999),
            ..MemberActivation::new(&held.code, "M-0002")
        })
        .await
        .unwrap();
    let again = client.cards().member_info(&id, &held.code).await.unwrap();
    assert_eq!((again.membership_number.as_str(), again.bonus, again.balance), ("M-0002", 0, Some(200)));
}

#[tokio::test]
async fn the_activation_form_is_set_and_filled_in_inside_wechat() {
    let (platform, client) = setup().await;
    let id = member_card(&platform, &client).await;
    let held = platform.give_card(&id, "o1").unwrap();

    let form = ActivationForm {
        card_id: id.clone(),
        required_form: Some(FormFields {
            can_modify: false,
            common_field_id_list: vec![FormField::Mobile, FormField::Name],
            custom_field_list: vec!["Favourite tea".into()],
            rich_field_list: vec![],
        }),
        optional_form: Some(FormFields {
            can_modify: true,
            common_field_id_list: vec![FormField::Birthday],
            rich_field_list: vec![RichField {
                kind: RichFieldType::Radio,
                name: "Cup size".into(),
                values: vec!["S".into(), "L".into()],
            }],
            ..FormFields::default()
        }),
        service_statement: Some(FormLink { name: "Terms".into(), url: "https://example.com/terms".into() }),
        bind_old_card: None,
    };
    client.cards().set_activation_form(&form).await.unwrap();
    let sent = body(&platform, "/card/membercard/activateuserform/set");
    assert_eq!(
        sent,
        json!({
            "card_id": id,
            "required_form": { "can_modify": false,
                "common_field_id_list": ["USER_FORM_INFO_FLAG_MOBILE", "USER_FORM_INFO_FLAG_NAME"],
                "custom_field_list": ["Favourite tea"] },
            "optional_form": { "can_modify": true, "common_field_id_list": ["USER_FORM_INFO_FLAG_BIRTHDAY"],
                "rich_field_list": [{ "type": "FORM_FIELD_RADIO", "name": "Cup size", "values": ["S", "L"] }] },
            "service_statement": { "name": "Terms", "url": "https://example.com/terms" },
        })
    );
    assert_eq!(platform.activation_form(&id), Some(sent));

    // The user fills it in inside WeChat: required answers are required, and only the
    // form's fields are asked.
    let (mobile, name) =
        (("USER_FORM_INFO_FLAG_MOBILE", "15521328888"), ("USER_FORM_INFO_FLAG_NAME", "Weixin"));
    let tea = ("Favourite tea", "oolong");
    assert_eq!(platform.fill_member_form(&id, &held.code, &[mobile], &[tea]), Err(41011));
    assert_eq!(platform.fill_member_form(&id, &held.code, &[mobile, name], &[]), Err(41011));
    let email = ("USER_FORM_INFO_FLAG_EMAIL", "a@b.c");
    assert_eq!(platform.fill_member_form(&id, &held.code, &[mobile, name, email], &[tea]), Err(47001));
    assert!(!client.cards().member_info(&id, &held.code).await.unwrap().has_active);
    platform
        .fill_member_form(&id, &held.code, &[mobile, name], &[("Favourite tea", "oolong"), ("Cup size", "L")])
        .unwrap();
    let info = client.cards().member_info(&id, &held.code).await.unwrap();
    assert!(info.has_active);
    assert_eq!(info.membership_number, held.code);
    assert_eq!(info.user_info.common(&FormField::Mobile), Some("15521328888"));
    assert_eq!(info.user_info.common(&FormField::Birthday), None);
    let custom: Vec<_> =
        info.user_info.custom_field_list.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect();
    assert_eq!(custom, [("Favourite tea", "oolong"), ("Cup size", "L")]);
}

#[tokio::test]
async fn member_card_errors_are_caught_early_or_answered_with_wechat_codes() {
    let (platform, client) = setup().await;
    let id = member_card(&platform, &client).await;
    let held = platform.give_card(&id, "o1").unwrap();
    platform.clear_requests();

    // Checked before sending.
    let invalid =
        |e: Error, what: &str| matches!(&e, Error::Invalid(m) if m.contains(what)) || panic!("{e:?}");
    let cards = client.cards();
    invalid(
        cards.activate_member(&MemberActivation::new(&held.code, "")).await.unwrap_err(),
        "membership_number",
    );
    let too_long = MemberActivation {
        init_custom_field_value2: Some("一二三四五".into()),
        ..MemberActivation::new(&held.code, "M-1")
    };
    invalid(
        cards.activate_member(&too_long).await.unwrap_err(),
        "init_custom_field_value2 has at most 12 bytes",
    );
    let backwards = MemberActivation {
        activate_begin_time: Some(2),
        activate_end_time: Some(1),
        ..MemberActivation::new(&held.code, "M-1")
    };
    invalid(cards.activate_member(&backwards).await.unwrap_err(), "not after");
    let record = MemberUpdate { record_bonus: Some("一".repeat(15)), ..MemberUpdate::new(&id, &held.code) };
    invalid(cards.update_member(&record).await.unwrap_err(), "record_bonus has at most 14 characters");
    invalid(cards.update_member(&MemberUpdate::new("", &held.code)).await.unwrap_err(), "card_id");
    invalid(cards.member_info(&id, "").await.unwrap_err(), "code");
    let no_form = ActivationForm { card_id: id.clone(), ..ActivationForm::default() };
    invalid(cards.set_activation_form(&no_form).await.unwrap_err(), "required_form or an optional_form");
    let crowded = ActivationForm {
        required_form: Some(FormFields {
            custom_field_list: (1..=6).map(|i| format!("q{i}")).collect(),
            ..FormFields::default()
        }),
        ..no_form.clone()
    };
    invalid(cards.set_activation_form(&crowded).await.unwrap_err(), "at most 5 fields, not 6");
    let empty_choice = ActivationForm {
        optional_form: Some(FormFields {
            rich_field_list: vec![RichField {
                kind: RichFieldType::Select,
                name: "Size".into(),
                values: vec![],
            }],
            ..FormFields::default()
        }),
        ..no_form
    };
    invalid(cards.set_activation_form(&empty_choice).await.unwrap_err(), "at least one value");
    assert!(platform.requests().is_empty(), "nothing was sent");

    // Answered by the platform.
    let update = MemberUpdate { bonus: Some(Figure::Set(5)), ..MemberUpdate::new(&id, &held.code) };
    assert_eq!(code_of(cards.update_member(&update).await), Some(ErrCode(40127)), "not activated yet");
    assert_eq!(code_of(cards.member_info(&id, "999999999999").await), Some(ErrCode(40056)));
    assert_eq!(code_of(cards.member_info("pNobody", &held.code).await), Some(ErrCode(40073)));
    let unknown = MemberActivation::new("999999999999", "M-1");
    assert_eq!(code_of(cards.activate_member(&unknown).await), Some(ErrCode(40056)));
    // A coupon is not a member card.
    let coupon = Card::new(
        CardType::Cash,
        json!({ "base_info": {
            "logo_url": "http://mmbiz.qpic.cn/logo.png", "brand_name": "Teahouse", "code_type": "CODE_TYPE_TEXT",
            "title": "¥10 off", "color": "Color010", "notice": "n", "description": "d",
            "sku": { "quantity": 1 }, "date_info": { "type": "DATE_TYPE_PERMANENT" } },
            "least_cost": 0, "reduce_cost": 1000 }),
    );
    let coupon_id = cards.create(&coupon).await.unwrap();
    assert!(platform.review_card(&coupon_id, true));
    let c = platform.give_card(&coupon_id, "o1").unwrap();
    assert_eq!(code_of(cards.member_info(&coupon_id, &c.code).await), Some(ErrCode(40071)));
    let form = ActivationForm {
        card_id: coupon_id,
        required_form: Some(FormFields {
            common_field_id_list: vec![FormField::Mobile],
            ..FormFields::default()
        }),
        ..ActivationForm::default()
    };
    assert_eq!(code_of(cards.set_activation_form(&form).await), Some(ErrCode(40071)));
    // A withdrawn member card cannot be activated.
    client.cards().make_code_unavailable(&held.code, None, None).await.unwrap();
    let err = cards.activate_member(&MemberActivation::new(&held.code, "M-1")).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(40127)));
    assert!(err.to_string().contains("invalid user-card status"), "{err}");
    assert!(err.to_string().contains("check the code's user_card_status"), "the hint: {err}");
    let unknown = cards.member_info(&id, "999999999999").await.unwrap_err().to_string();
    assert!(unknown.contains("no such card code"), "{unknown}");
}
