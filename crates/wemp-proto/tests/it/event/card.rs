//! Card (卡券) events: one fixture per event in the documented shape, plus the fallbacks.

use wemp_proto::event::*;
use wemp_proto::{Incoming, MsgKind};

use super::event;
use crate::fixtures::{load, parse_round_trip};

#[test]
fn review_events() {
    let Event::CardPassCheck(e) = event("event/card_pass_check.xml") else { panic!() };
    assert_eq!((e.card_id.as_str(), e.refuse_reason.as_deref()), ("pyORnuBtbZbWp2nfRNo4WcKhuE1Q", None));
    let Event::CardNotPassCheck(e) = event("event/card_not_pass_check.xml") else { panic!() };
    assert_eq!(e.refuse_reason.as_deref(), Some("卡券名称与商户资质不符"));
}

#[test]
fn user_get_card_as_a_gift_and_as_a_restore() {
    let ev = event("event/user_get_card.xml");
    assert_eq!(
        (ev.card_id(), ev.user_card_code()),
        (Some("pyORnuBtbZbWp2nfRNo4WcKhuE1Q"), Some("803117269402"))
    );
    let Event::UserGetCard(e) = ev else { panic!() };
    assert_eq!(e.is_give_by_friend, Some(1));
    assert_eq!(e.friend_user_name.as_deref(), Some("oyORnuAxBhXw0Qk6Zk8MCzT1pU4E"));
    assert_eq!(e.old_user_card_code.as_deref(), Some("512093388640"));
    assert_eq!((e.outer_id, e.outer_str.as_deref()), (Some(0), Some("poster_spring")));
    assert_eq!((e.is_restore_member_card, e.is_recommend_by_friend), (Some(0), Some(0)));
    assert_eq!(e.union_id.as_deref(), Some("oYq3Kt2UQqFq7yLr3bKCNo6Gt0cE"), "bare text reads as a string");

    // Restoring a deleted member card: no OuterStr, no OuterId, no UnionId.
    let Event::UserGetCard(e) = event("event/user_get_card_restore.xml") else { panic!() };
    assert_eq!(e.is_restore_member_card, Some(1));
    assert_eq!((e.outer_str, e.outer_id, e.union_id, e.is_recommend_by_friend), (None, None, None, None));
    assert_eq!(e.friend_user_name.as_deref(), Some(""), "sent empty when not a gift");
}

#[test]
fn user_gifting_and_deleting() {
    let Event::UserGiftingCard(e) = event("event/user_gifting_card.xml") else { panic!() };
    assert_eq!(e.user_card_code, "512093388640");
    assert_eq!((e.is_return_back, e.is_chat_room), (Some(0), Some(0)));
    assert_eq!(e.friend_user_name.as_deref(), Some("oyORnuAxBhXw0Qk6Zk8MCzT1pU4E"));
    let Event::UserDelCard(e) = event("event/user_del_card.xml") else { panic!() };
    assert_eq!(
        (e.card_id.as_str(), e.user_card_code.as_str()),
        ("pyORnuBtbZbWp2nfRNo4WcKhuE1Q", "803117269402")
    );
}

#[test]
fn user_consume_card_through_the_merchant_helper() {
    let Event::UserConsumeCard(e) = event("event/user_consume_card.xml") else { panic!() };
    assert_eq!(e.consume_source, "FROM_MOBILE_HELPER");
    assert_eq!(e.staff_open_id.as_deref(), Some("oyORnuStaff9hW2vKc1Lr0pQx3Ya"));
    assert_eq!((e.location_name.as_deref(), e.verify_code.as_deref()), (Some(""), Some("")));
    assert_eq!(e.remark_amount.as_deref(), Some(""));
    assert_eq!((e.outer_str.as_deref(), e.location_id), (Some("counter_2"), Some(0)));
    assert_eq!((e.out_trade_no, e.trans_id), (None, None));
}

#[test]
fn user_pay_from_pay_cell_amounts_in_fen() {
    let msg = parse_round_trip("event/user_pay_from_pay_cell.xml");
    let Incoming::Event(Event::UserPayFromPayCell(e)) = &msg else { panic!("{msg:?}") };
    assert_eq!((e.fee, e.original_fee), (8800, 10000), "CDATA numbers");
    assert_eq!(e.trans_id.as_deref(), Some("4200001899202311140123456789"));
    assert_eq!(e.location_id, Some(401234567));
    let xml = msg.to_xml();
    assert!(xml.contains("<Fee><![CDATA[8800]]></Fee><OriginalFee><![CDATA[10000]]></OriginalFee>"), "{xml}");
    assert!(xml.contains("<LocationId>401234567</LocationId>"), "{xml}");
    // A bare amount parses as well.
    let bare = load("event/user_pay_from_pay_cell.xml").replace("<![CDATA[8800]]>", "8800");
    let Incoming::Event(Event::UserPayFromPayCell(e)) = Incoming::parse(&bare).unwrap() else { panic!() };
    assert_eq!(e.fee, 8800);
}

#[test]
fn member_card_events() {
    let Event::UserViewCard(e) = event("event/user_view_card.xml") else { panic!() };
    assert_eq!(e.outer_str.as_deref(), Some("table_qr_12"));
    let Event::UserEnterSessionFromCard(e) = event("event/user_enter_session_from_card.xml") else {
        panic!()
    };
    assert_eq!(e.user_card_code, "270665118831");
    let Event::UpdateMemberCard(e) = event("event/update_member_card.xml") else { panic!() };
    assert_eq!((e.modify_bonus, e.modify_balance), (-120, 0));
    let Event::SubmitMembercardUserInfo(e) = event("event/submit_membercard_user_info.xml") else { panic!() };
    assert_eq!(e.card_id, "pyORnuMemberCard0000000000001");
}

#[test]
fn stock_alarm_and_coin_ledger() {
    let Event::CardSkuRemind(e) = event("event/card_sku_remind.xml") else { panic!() };
    assert_eq!(e.detail, "the card's quantity is equal to 0");
    let msg = parse_round_trip("event/card_pay_order.xml");
    let Incoming::Event(Event::CardPayOrder(e)) = &msg else { panic!("{msg:?}") };
    assert_eq!((e.order_id.as_str(), e.status.as_str()), ("405731283", "ORDER_STATUS_SUCC"));
    assert_eq!((e.create_order_time, e.pay_finish_time), (Some(1700000990), 1700001000));
    assert_eq!((e.free_coin_count, e.pay_coin_count), (200, 50));
    assert_eq!((e.refund_free_coin_count, e.refund_pay_coin_count), (0, 50));
    assert_eq!(
        (e.order_type.as_str(), e.memo.as_str(), e.receipt_info.as_str()),
        ("ORDER_TYPE_WXPAY", "充值", "")
    );
    assert_eq!(msg.event().unwrap().card_id(), None);
    let xml = msg.to_xml();
    assert!(xml.contains("<FreeCoinCount><![CDATA[200]]></FreeCoinCount>"), "{xml}");
    assert!(xml.contains("<PayFinishTime>1700001000</PayFinishTime>"), "{xml}");
}

#[test]
fn card_events_match_case_insensitively_and_keep_the_documented_layout() {
    assert_eq!(EventKind::from_wire("USER_GET_CARD"), EventKind::UserGetCard);
    assert_eq!(EventKind::from_wire(" Card_Pay_Order "), EventKind::CardPayOrder);
    assert_eq!(EventKind::UserPayFromPayCell.as_str(), "user_pay_from_pay_cell");
    // The documentation lays its samples out with spaces around each CDATA section.
    let xml = "<xml> <ToUserName> <![CDATA[gh_10f6c3c3ac5a]]> </ToUserName>\n\
               <FromUserName> <![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]> </FromUserName>\n\
               <CreateTime>1700000600</CreateTime> <MsgType> <![CDATA[event]]> </MsgType>\n\
               <Event> <![CDATA[User_View_Card]]> </Event> <CardId> <![CDATA[pyORnuMemberCard0000000000001]]> </CardId>\n\
               <UserCardCode> <![CDATA[270665118831]]> </UserCardCode> </xml>";
    let Incoming::Event(Event::UserViewCard(e)) = Incoming::parse(xml).unwrap() else { panic!() };
    assert_eq!(
        (e.header.to.as_str(), e.card_id.as_str()),
        ("gh_10f6c3c3ac5a", "pyORnuMemberCard0000000000001")
    );
    assert_eq!((e.user_card_code.as_str(), e.outer_str), ("270665118831", None));
}

#[test]
fn card_events_have_no_event_key_and_dedup_by_sender_time_event_and_card_code() {
    // FromUserName + CreateTime + the event, as the documentation recommends, plus the
    // UserCardCode: two cards received in the same second must not pass for a retry.
    let msg = parse_round_trip("event/user_get_card.xml");
    assert_eq!(msg.event().unwrap().event_key(), None);
    assert_eq!(msg.msg_id(), None);
    let code = msg.event().unwrap().user_card_code().unwrap().to_owned();
    assert_eq!(
        msg.dedup_key(),
        format!("event:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1700000100:user_get_card:{code}")
    );
    let retry = Incoming::parse(&load("event/user_get_card.xml")).unwrap();
    assert_eq!(retry.dedup_key(), msg.dedup_key(), "a retry shares the key");
    let second_card =
        Incoming::parse(&load("event/user_get_card.xml").replace(&code, "000000000001")).unwrap();
    assert_ne!(second_card.dedup_key(), msg.dedup_key(), "another card in the same second");
    let other = parse_round_trip("event/user_del_card.xml");
    assert_ne!(other.dedup_key(), msg.dedup_key());
    // Review events concern a card, not a user's copy: the CardId stands in.
    let review = parse_round_trip("event/card_pass_check.xml");
    let card = review.event().unwrap().card_id().unwrap();
    assert!(review.dedup_key().ends_with(&format!(":card_pass_check:{card}")), "{}", review.dedup_key());
}

#[test]
fn card_events_without_a_card_code_still_tell_two_pushes_of_one_second_apart() {
    let key = |xml: &str| Incoming::parse(xml).unwrap().dedup_key();
    let twice = |xml: &str, from: &str, to: &str| {
        assert!(xml.contains(from), "no {from} in {xml}");
        assert_eq!(key(xml), key(xml), "a retry (the same XML again) shares the key");
        assert_ne!(key(xml), key(&xml.replace(from, to)), "{from} → {to} is another push in the same second");
    };
    // The coin ledger: two orders, or one order moving on to its next status.
    let order = load("event/card_pay_order.xml");
    twice(&order, "<![CDATA[405731283]]>", "<![CDATA[405731284]]>");
    twice(&order, "ORDER_STATUS_SUCC", "ORDER_STATUS_FINANCE_SUCC");
    // A member card's points and its balance changed in the same second.
    twice(&load("event/update_member_card.xml"), "<ModifyBalance>0<", "<ModifyBalance>500<");
    // The chat opened from two cards whose UserCardCode arrived empty: the CardId tells.
    let empty = load("event/user_enter_session_from_card.xml").replace("270665118831", "");
    twice(&empty, "pyORnuMemberCard0000000000001", "pyORnuMemberCard0000000000002");
}

#[test]
fn unknown_card_event_keeps_everything() {
    let xml = load("event/unknown_card_event.xml");
    let msg = Incoming::parse(&xml).unwrap();
    assert_eq!(msg.kind(), MsgKind::Event);
    let Incoming::Event(ev @ Event::Unknown(u)) = &msg else { panic!("{msg:?}") };
    assert_eq!(u.event.as_deref(), Some("user_stamp_card"));
    assert!(u.decode_error.is_none());
    assert_eq!(u.raw.as_str(), xml, "raw must be byte for byte");
    assert_eq!(u.field("StampCount"), Some("3"));
    let stamps: Vec<_> =
        u.fields.child("Stamps").unwrap().children_named("Stamp").map(|s| s.text.as_str()).collect();
    assert_eq!(stamps, ["coffee", "bagel"]);
    assert_eq!(ev.kind(), EventKind::from_wire("user_stamp_card"));
    assert!(matches!(ev.kind(), EventKind::Other(o) if o.as_str() == "user_stamp_card"));
    assert_eq!(
        (ev.card_id(), ev.user_card_code()),
        (Some("pyORnuStampCard00000000000001"), Some("661209473520"))
    );
    assert_eq!(msg.to_xml(), xml);
    assert_eq!(msg.dedup_key(), "event:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1700001200:user_stamp_card:661209473520");
}

#[test]
fn card_event_that_does_not_decode_falls_back_to_unknown() {
    let xml = load("event/user_pay_from_pay_cell.xml").replace("<![CDATA[8800]]>", "<![CDATA[88.00 yuan]]>");
    let msg = Incoming::parse(&xml).unwrap();
    let Incoming::Event(ev @ Event::Unknown(u)) = &msg else { panic!("{msg:?}") };
    assert!(u.decode_error.as_deref().is_some_and(|e| e.contains("<Fee>")), "{:?}", u.decode_error);
    assert_eq!(ev.kind(), EventKind::UserPayFromPayCell, "still routed as its kind");
    assert_eq!(u.field("TransId"), Some("4200001899202311140123456789"));
    assert_eq!(u.raw.as_str(), xml);
}
