//! 扫一扫 product, e-invoice, store and Wi-Fi, and Mini Program events: one fixture per event
//! in the documented shape, each typed and written back unchanged.

use wemp_proto::event::*;

use super::event;
use crate::fixtures::load;

#[test]
fn scan_product_events() {
    let Event::UserScanProduct(e) = event("event/user_scan_product.xml") else { panic!() };
    assert_eq!((e.key_standard.as_str(), e.key_str.as_str()), ("ean13", "6901481811083"));
    assert_eq!(
        (e.country.as_deref(), e.province.as_deref(), e.city.as_deref()),
        (Some("中国"), Some("广东"), Some("揭阳"))
    );
    assert_eq!((e.sex, e.scene, e.ext_info.as_deref()), (Some(1), Some(2), Some("123")));
    let Event::UserScanProductEnterSession(e) = event("event/user_scan_product_enter_session.xml") else {
        panic!()
    };
    assert_eq!((e.key_str.as_str(), e.ext_info.as_deref()), ("6901481811083", Some("123")));
    let Event::UserScanProductAsync(e) = event("event/user_scan_product_async.xml") else { panic!() };
    assert_eq!(e.region_code, "445200");
    let Event::UserScanProductVerifyAction(e) = event("event/user_scan_product_verify_action.xml") else {
        panic!()
    };
    assert_eq!(e.result, "verify_ok");
}

#[test]
fn invoice_authorization() {
    let Event::UserAuthorizeInvoice(e) = event("event/user_authorize_invoice.xml") else { panic!() };
    assert_eq!(e.succ_order_id.as_deref(), Some("1202933957956"));
    assert_eq!(
        (e.authorize_app_id.as_deref(), e.source.as_deref()),
        (Some("wx1234567890abcdef"), Some("web"))
    );
}

#[test]
fn store_review_and_wifi_connection() {
    let Event::PoiCheckNotify(e) = event("event/poi_check_notify.xml") else { panic!() };
    assert_eq!(
        (e.uniq_id.as_str(), e.poi_id.as_deref(), e.result.as_str()),
        ("123adb", Some("123123"), "fail")
    );
    let Event::WifiConnected(e) = event("event/wificonnected.xml") else { panic!() };
    assert_eq!((e.connect_time, e.shop_id.as_deref(), e.place_id.as_deref()), (0, Some("429620"), None));
    assert_eq!(e.device_no.as_deref(), Some("00:1f:7a:ad:5c:a8"));
    // Peers that read the store as `PlaceId` (an older name) are served too.
    let xml = load("event/wificonnected.xml").replace("ShopId", "PlaceId");
    let wemp_proto::Incoming::Event(Event::WifiConnected(e)) = wemp_proto::Incoming::parse(&xml).unwrap()
    else {
        panic!()
    };
    assert_eq!((e.shop_id.as_deref(), e.place_id.as_deref()), (None, Some("429620")));
    // The event name arrives in CamelCase; the kind matches it in any case.
    assert_eq!(EventKind::from_wire("wificonnected"), EventKind::WifiConnected);
}

#[test]
fn mini_program_events() {
    let Event::UserEnterTempsession(e) = event("event/user_enter_tempsession.xml") else { panic!() };
    assert_eq!(e.session_from.as_deref(), Some("sessionFrom"));
    let Event::WeappAuditSuccess(e) = event("event/weapp_audit_success.xml") else { panic!() };
    assert_eq!(e.succ_time, 1488856741);
    let Event::WeappAuditFail(e) = event("event/weapp_audit_fail.xml") else { panic!() };
    assert_eq!((e.fail_time, e.screen_shot.as_deref()), (1488856591, Some("xxx|yyy|zzz")));
    assert!(e.reason.contains("<br>"), "{}", e.reason);
    let Event::WeappAuditDelay(e) = event("event/weapp_audit_delay.xml") else { panic!() };
    assert_eq!(e.delay_time, 1488856591);
    let Event::UserAuthorizationCancellation(e) = event("event/user_authorization_cancellation.xml") else {
        panic!()
    };
    assert_eq!(e.open_id.as_deref(), Some("oyORnuP8q7ou2gfYjqLzSIWZf0rs"));
}

#[test]
fn a_typed_event_missing_a_required_field_still_arrives() {
    // `weapp_audit_fail` without its `FailTime`: kept whole as Unknown, with the reason.
    let xml = load("event/weapp_audit_fail.xml").replace("<FailTime>1488856591</FailTime>", "");
    let wemp_proto::Incoming::Event(Event::Unknown(u)) = wemp_proto::Incoming::parse(&xml).unwrap() else {
        panic!()
    };
    assert_eq!(u.event.as_deref(), Some("weapp_audit_fail"));
    assert!(u.decode_error.as_deref().is_some_and(|e| e.contains("FailTime")), "{:?}", u.decode_error);
    assert_eq!(u.raw.as_str(), xml);
}

#[test]
fn the_events_docs_list_as_not_typed_arrive_as_unknown_with_their_fields() {
    // docs/events.md lists these as not typed; typing one means updating that page.
    for name in [
        "merchant_order",
        "ShakearoundUserShake",
        "ShakearoundLotteryBind",
        "update_invoice_status",
        "submit_invoice_title",
        "wxa_media_check",
        "wxa_nickname_audit",
        "wxa_category_audit",
        "wxa_privacy_apply",
        "wxa_illegal_record",
        "wxa_appeal_record",
        "wx_verify_pay_succ",
        "wx_verify_dispatch",
        "trade_manage_remind_shipping",
        "trade_manage_order_settlement",
        "open_product_order_pay",
        "sys_approval_change",
    ] {
        assert!(
            matches!(EventKind::from_wire(name), EventKind::Other(_)),
            "{name} is typed: update docs/events.md"
        );
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>\
             <Event><![CDATA[{name}]]></Event><transaction_id><![CDATA[42000001]]></transaction_id></xml>"
        );
        let wemp_proto::Incoming::Event(Event::Unknown(u)) = wemp_proto::Incoming::parse(&xml).unwrap()
        else {
            panic!("{name}")
        };
        assert_eq!((u.event.as_deref(), u.field("transaction_id")), (Some(name), Some("42000001")));
        assert_eq!(u.raw.as_str(), xml);
    }
    // Hardware-device pushes have their own MsgType: an Unknown message, not an event.
    let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
               <CreateTime>1700000000</CreateTime><MsgType><![CDATA[device_event]]></MsgType>\
               <Event><![CDATA[bind]]></Event><DeviceID><![CDATA[d1]]></DeviceID></xml>";
    let wemp_proto::Incoming::Unknown(u) = wemp_proto::Incoming::parse(xml).unwrap() else { panic!() };
    assert_eq!(
        (u.msg_type.as_str(), u.event.as_deref(), u.field("DeviceID")),
        ("device_event", Some("bind"), Some("d1"))
    );
}
