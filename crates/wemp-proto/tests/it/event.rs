//! Every event type from the official documentation examples.

use wemp_proto::event::*;
use wemp_proto::{Incoming, MsgKind};

use crate::fixtures::{load, parse_round_trip};

mod areas;
mod card;

fn event(path: &str) -> Event {
    match parse_round_trip(path) {
        Incoming::Event(e) => {
            assert_eq!(e.header().from, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
            if let Event::Unknown(u) = &e {
                assert!(u.decode_error.is_none(), "{path}: {:?}", u.decode_error);
            }
            e
        }
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn subscribe_plain_qrscene_and_trade_key() {
    let Event::Subscribe(e) = event("event/subscribe.xml") else { panic!() };
    assert_eq!((e.event_key.as_deref(), e.scene()), (None, None));
    let ev = event("event/subscribe_qrscene.xml");
    assert_eq!(ev.scene(), Some("123123"));
    let Event::Subscribe(e) = ev else { panic!() };
    assert_eq!(e.ticket.as_deref(), Some("TICKET"));
    let ev = event("event/subscribe_trade.xml");
    assert_eq!(ev.scene(), None, "last_trade_no_ is not a scene");
    assert!(ev.event_key().unwrap().starts_with("last_trade_no_"));
}

#[test]
fn unsubscribe_scan_location_click_view() {
    assert_eq!(event("event/unsubscribe.xml").kind(), EventKind::Unsubscribe);
    let ev = event("event/scan.xml");
    assert_eq!(ev.scene(), Some("SCENE_VALUE"));
    let Event::Location(l) = event("event/location.xml") else { panic!() };
    assert_eq!((l.latitude, l.longitude, l.precision), (23.137466, 113.352425, 119.38504));
    let Event::Click(c) = event("event/click.xml") else { panic!() };
    assert_eq!(c.event_key, "EVENTKEY");
    let Event::View(v) = event("event/view.xml") else { panic!() };
    assert_eq!((v.event_key.as_str(), v.menu_id.as_deref()), ("www.qq.com", Some("MENUID")));
    let Event::ViewMiniprogram(v) = event("event/view_miniprogram.xml") else { panic!() };
    assert_eq!(v.event_key, "pages/index/index");
}

#[test]
fn menu_events() {
    let Event::ScancodePush(e) = event("event/scancode_push.xml") else { panic!() };
    assert_eq!((e.scan_code_info.scan_type.as_str(), e.scan_code_info.scan_result.as_str()), ("qrcode", "1"));
    let Event::ScancodeWaitmsg(e) = event("event/scancode_waitmsg.xml") else { panic!() };
    assert_eq!(e.scan_code_info.scan_result, "2");
    let Event::PicSysphoto(e) = event("event/pic_sysphoto.xml") else { panic!() };
    assert_eq!(e.send_pics_info.count, 1);
    assert_eq!(e.send_pics_info.pic_list.items.len(), 1, "a single <item> is still a list");
    let Event::PicPhotoOrAlbum(e) = event("event/pic_photo_or_album.xml") else { panic!() };
    let md5s: Vec<_> = e.send_pics_info.pic_list.items.iter().map(|i| i.pic_md5_sum.as_str()).collect();
    assert_eq!(md5s, ["5a75aaca956d97be686719218f275c6b", "1b5f7c23b5bf75682a53e7b6d163e185"]);
    let Event::PicWeixin(e) = event("event/pic_weixin.xml") else { panic!() };
    assert_eq!(e.event_key, "6");
    let Event::LocationSelect(e) = event("event/location_select.xml") else { panic!() };
    let info = &e.send_location_info;
    assert_eq!((info.latitude, info.longitude, info.scale), (23.0, 113.0, Some(15)), "CDATA numbers");
    assert_eq!(info.label.as_deref(), Some(" 广州市海珠区客村艺苑路 106号"));
    assert_eq!(info.poiname.as_deref(), Some(""));
}

#[test]
fn location_select_numbers_are_written_as_cdata() {
    // WeChat sends SendLocationInfo's numbers as CDATA text; rendering must do the same,
    // while the header's CreateTime (and a location message's numbers) stay bare.
    let xml = parse_round_trip("event/location_select.xml").to_xml();
    assert!(xml.contains("<CreateTime>1348831860</CreateTime>"), "{xml}");
    assert!(
        xml.contains(
            "<SendLocationInfo><Location_X><![CDATA[23]]></Location_X>\
             <Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale>"
        ),
        "{xml}"
    );
    let xml = parse_round_trip("message/location.xml").to_xml();
    assert!(xml.contains("<Location_X>23.134521</Location_X>"), "{xml}");
    assert!(xml.contains("<Scale>20</Scale>"), "{xml}");
}

#[test]
fn job_events() {
    let Event::TemplateSendJobFinish(e) = event("event/templatesendjobfinish.xml") else { panic!() };
    assert_eq!((e.msg_id, e.status.as_str()), (200163836, "success"));
    let Event::MassSendJobFinish(e) = event("event/masssendjobfinish.xml") else { panic!() };
    assert_eq!((e.msg_id, e.status.as_str(), e.total_count), (1000001625, "err(30003)", 0));
    let check = e.copyright_check_result.as_ref().unwrap();
    assert_eq!((check.count, check.check_state), (2, 2));
    let items = &check.result_list.as_ref().unwrap().items;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].original_article_url.as_deref(), Some("Url_2"));
    let urls = &e.article_url_result.as_ref().unwrap().result_list.as_ref().unwrap().items;
    assert_eq!(urls[0].article_url, "Url");
    let Event::PublishJobFinish(e) = event("event/publishjobfinish.xml") else { panic!() };
    let info = &e.publish_event_info;
    assert_eq!((info.publish_id.as_str(), info.publish_status), ("2247503051", 0));
    assert_eq!(info.article_detail.as_ref().unwrap().items[0].article_url, "ARTICLE_URL");
    assert!(info.fail_idx.is_empty());
    let Event::PublishJobFinish(e) = event("event/publishjobfinish_fail.xml") else { panic!() };
    assert_eq!(e.publish_event_info.fail_idx, [1, 2]);
}

#[test]
fn subscription_message_events() {
    let Event::SubscribeMsgPopup(e) = event("event/subscribe_msg_popup_event.xml") else { panic!() };
    let statuses: Vec<_> = e.popup.list.iter().map(|l| l.status.as_str()).collect();
    assert_eq!(statuses, ["accept", "reject"]);
    assert_eq!(e.popup.list[0].popup_scene, Some(2));
    let Event::SubscribeMsgChange(e) = event("event/subscribe_msg_change_event.xml") else { panic!() };
    assert_eq!(e.change.list.len(), 1, "one <List> is a list of one");
    let Event::SubscribeMsgSent(e) = event("event/subscribe_msg_sent_event.xml") else { panic!() };
    assert_eq!(e.sent.list[0].msg_id, 1700827132819554304);
    assert_eq!(e.sent.list[0].error_code, 0);
}

#[test]
fn customer_service_events() {
    let Event::KfCreateSession(e) = event("event/kf_create_session.xml") else { panic!() };
    assert_eq!(e.kf_account, "test1@test");
    let Event::KfCloseSession(e) = event("event/kf_close_session.xml") else { panic!() };
    assert_eq!(e.kf_account, "test1@test");
    let Event::KfSwitchSession(e) = event("event/kf_switch_session.xml") else { panic!() };
    assert_eq!((e.from_kf_account.as_str(), e.to_kf_account.as_str()), ("test1@test", "test2@test"));
}

#[test]
fn account_events() {
    let Event::QualificationVerifySuccess(e) = event("event/qualification_verify_success.xml") else {
        panic!()
    };
    assert_eq!(e.expired_time, 1442401156);
    let Event::QualificationVerifyFail(e) = event("event/qualification_verify_fail.xml") else { panic!() };
    assert_eq!((e.fail_time, e.fail_reason.as_str()), (1442401122, "by time"));
    let Event::NamingVerifySuccess(e) = event("event/naming_verify_success.xml") else { panic!() };
    assert_eq!(e.expired_time, 1442401093);
    let Event::NamingVerifyFail(e) = event("event/naming_verify_fail.xml") else { panic!() };
    assert_eq!(e.fail_time, 1442401061);
    let Event::AnnualRenew(e) = event("event/annual_renew.xml") else { panic!() };
    assert_eq!(e.expired_time, 1442401004);
    let Event::VerifyExpired(e) = event("event/verify_expired.xml") else { panic!() };
    assert_eq!(e.expired_time, 1442400900);
    let Event::UserInfoModified(e) = event("event/user_info_modified.xml") else { panic!() };
    assert_eq!(e.app_id.as_deref(), Some("wx2c2769f8efd9abc2"));
    let Event::UserAuthorizationRevoke(e) = event("event/user_authorization_revoke.xml") else { panic!() };
    assert_eq!(e.revoke_info.as_deref(), Some("301"));
}

#[test]
fn wecom_events_are_typed_with_their_agent_id() {
    // WeCom's senders are members' UserIDs (or `sys`), not OpenIDs.
    let event = |path: &str| match parse_round_trip(path) {
        Incoming::Event(e) => e,
        other => panic!("{path}: {other:?}"),
    };
    let Event::EnterAgent(e) = event("event/enter_agent.xml") else { panic!() };
    assert_eq!(e.header.agent_id.as_deref(), Some("1"));
    let Event::ChangeContact(e) = event("event/change_contact.xml") else { panic!() };
    assert_eq!(e.change(), wemp_proto::event::ChangeType::UpdateTag);
    assert_eq!((e.tag_id.as_deref(), e.add_user_items.as_deref()), (Some("1"), Some("zhangsan,lisi")));
    let Event::BatchJobResult(e) = event("event/batch_job_result.xml") else { panic!() };
    assert_eq!((e.batch_job.job_type.as_str(), e.batch_job.errcode), ("sync_user", 0));
    let Event::TaskcardClick(e) = event("event/taskcard_click.xml") else { panic!() };
    assert_eq!((e.event_key.as_str(), e.task_id.as_str()), ("key111", "taskid111"));
    assert_eq!(e.header.agent_id.as_deref(), Some("1"));
}

#[test]
fn event_names_match_case_insensitively() {
    for (wire, kind) in
        [("scan", EventKind::Scan), ("Subscribe", EventKind::Subscribe), ("click", EventKind::Click)]
    {
        assert_eq!(EventKind::from_wire(wire), kind);
    }
    let xml = load("event/click.xml").replace("CLICK", "click");
    let Incoming::Event(Event::Click(c)) = Incoming::parse(&xml).unwrap() else { panic!() };
    assert_eq!(c.event_key, "EVENTKEY");
}

#[test]
fn unknown_future_event_keeps_everything() {
    let xml = load("event/unknown_future.xml");
    let msg = Incoming::parse(&xml).unwrap();
    assert_eq!(msg.kind(), MsgKind::Event);
    let Incoming::Event(Event::Unknown(u)) = &msg else { panic!("{msg:?}") };
    assert_eq!(u.event.as_deref(), Some("holographic_wave"));
    assert_eq!(u.raw.as_str(), xml, "raw must be byte for byte");
    assert_eq!(u.field("WaveKey"), Some("w-42"));
    let colors: Vec<_> =
        u.fields.child("Detail").unwrap().children_named("Color").map(|c| c.text.as_str()).collect();
    assert_eq!(colors, ["cyan", "magenta"]);
    assert_eq!(msg.event().unwrap().kind(), EventKind::from_wire("holographic_wave"));
    assert!(matches!(msg.event().unwrap().kind(), EventKind::Other(o) if o.as_str() == "holographic_wave"));
    assert_eq!(msg.to_xml(), xml);
    assert_eq!(msg.dedup_key(), "event:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1348831860:holographic_wave:");
}

#[test]
fn event_dedup_key_uses_time_event_and_key() {
    let ev = parse_round_trip("event/click.xml");
    assert_eq!(ev.dedup_key(), "event:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1348831860:CLICK:EVENTKEY");
    assert_eq!(ev.msg_id(), None);
}

#[test]
fn every_event_kind_has_a_fixture() {
    // Keeps the fixture set complete as events are added.
    let dir = format!("{}/tests/fixtures/event", env!("CARGO_MANIFEST_DIR"));
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let xml = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Incoming::Event(e) = Incoming::parse(&xml).unwrap() {
            seen.insert(e.kind().as_str().to_owned());
        }
    }
    for wire in [
        "subscribe",
        "unsubscribe",
        "SCAN",
        "LOCATION",
        "CLICK",
        "VIEW",
        "view_miniprogram",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "TEMPLATESENDJOBFINISH",
        "MASSSENDJOBFINISH",
        "PUBLISHJOBFINISH",
        "subscribe_msg_popup_event",
        "subscribe_msg_change_event",
        "subscribe_msg_sent_event",
        "kf_create_session",
        "kf_close_session",
        "kf_switch_session",
        "qualification_verify_success",
        "qualification_verify_fail",
        "naming_verify_success",
        "naming_verify_fail",
        "annual_renew",
        "verify_expired",
        "user_info_modified",
        "user_authorization_revoke",
        "card_pass_check",
        "card_not_pass_check",
        "user_get_card",
        "user_gifting_card",
        "user_del_card",
        "user_consume_card",
        "user_pay_from_pay_cell",
        "user_view_card",
        "user_enter_session_from_card",
        "update_member_card",
        "card_sku_remind",
        "card_pay_order",
        "submit_membercard_user_info",
    ] {
        assert!(seen.contains(wire), "no fixture for {wire}");
    }
    for kind in EventKind::known() {
        assert!(seen.contains(kind.as_str()), "no fixture for {kind}");
    }
}

#[test]
fn event_kinds_are_normalised_so_equality_is_case_insensitive() {
    assert_eq!(EventKind::from_wire("SUBSCRIBE"), EventKind::Subscribe);
    assert_eq!(EventKind::from_wire(" scan "), EventKind::Scan);
    assert_eq!(EventKind::from_wire("User_Stamp_Card"), EventKind::from_wire("user_stamp_card"));
    assert_eq!(EventKind::from_wire("User_Stamp_Card").as_str(), "user_stamp_card");
    assert_ne!(EventKind::from_wire("user_stamp_card"), EventKind::from_wire("user_punch_card"));
    assert_eq!(MsgKind::from_wire("HOLOGRAM"), MsgKind::from_wire("hologram"));
    assert_eq!(MsgKind::from_wire("TEXT"), MsgKind::Text);
    assert!(EventKind::known().contains(&EventKind::Subscribe));
    assert!(!EventKind::known().iter().any(|k| matches!(k, EventKind::Other(_))));
}

#[test]
fn component_pushes_in_one_second_have_their_own_dedup_keys() {
    let push = |info: &str, authorizer: &str| {
        let xml = format!(
            "<xml><AppId><![CDATA[wxcomponent]]></AppId><CreateTime>1413192760</CreateTime>\
             <InfoType><![CDATA[{info}]]></InfoType>{authorizer}</xml>"
        );
        Incoming::parse(&xml).unwrap().dedup_key()
    };
    let ticket = push("component_verify_ticket", "");
    let a = push("authorized", "<AuthorizerAppid><![CDATA[wxa]]></AuthorizerAppid>");
    let b = push("authorized", "<AuthorizerAppid><![CDATA[wxb]]></AuthorizerAppid>");
    assert_eq!(a, "event::1413192760:authorized:wxa");
    assert!(ticket != a && a != b, "{ticket} {a} {b}");
    let xml = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType>\
               <AuthorizerAppid>wxa</AuthorizerAppid><AuthorizationCode>secret-code</AuthorizationCode></xml>";
    let msg = Incoming::parse(xml).unwrap();
    assert_eq!((msg.info_type(), msg.summary().as_str()), (Some("authorized"), "authorized wxa"));
    let text = Incoming::parse("<xml><MsgType>text</MsgType><InfoType>x</InfoType></xml>").unwrap();
    assert_eq!(text.info_type(), None, "only a push without MsgType");
}
