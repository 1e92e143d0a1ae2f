//! The data cube reports against the fake platform, which computes them from recorded
//! events. The platform clock starts at 2023-11-15 06:13 in Beijing, so "today" is the
//! 15th and the reports cover days up to the 14th.

use std::time::Duration;

use serde_json::{Value, json};
use wemp_client::api::datacube::{ALL_SOURCES, Date, Report};
use wemp_client::api::drafts::DraftArticle;
use wemp_client::api::mass::MassContent;
use wemp_client::{ErrCode, Error};
use wemp_testkit::platform::{FakePlatform, FakeUser, StatEvent};

use crate::setup;

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

/// Platform-clock ms of `hh:mm` on `date` in China Standard Time.
fn at(date: &str, hh: i64, mm: i64) -> i64 {
    (d(date).days_since_epoch() * 24 - 8 + hh) * 3_600_000 + mm * 60_000
}

fn body(platform: &FakePlatform, report: Report) -> Value {
    let r = platform.last_request(report.path()).unwrap_or_else(|| panic!("no request to {report}"));
    assert_eq!(r.method, "POST", "{report}");
    assert!(r.access_token().is_some(), "{report} carries the token");
    r.json().unwrap()
}

fn follow(platform: &FakePlatform, when: i64, openid: &str, source: u32, unfollow: bool) {
    let openid = openid.to_owned();
    platform.record_stat(if unfollow {
        StatEvent::Unfollow { at_ms: when, openid, source }
    } else {
        StatEvent::Follow { at_ms: when, openid, source }
    });
}

fn message(platform: &FakePlatform, when: i64, openid: &str, msg_type: u32, times: usize) {
    for i in 0..times {
        let at_ms = when + i as i64 * 1000;
        platform.record_stat(StatEvent::Message { at_ms, openid: openid.to_owned(), msg_type });
    }
}

#[tokio::test]
async fn datacube_user_reports_count_follows_per_day_and_source() {
    let (platform, client) = setup().await;
    follow(&platform, at("2023-11-01", 12, 0), "o0", 0, false);
    follow(&platform, at("2023-11-13", 10, 0), "o1", 30, false);
    follow(&platform, at("2023-11-13", 11, 0), "o2", 30, false);
    follow(&platform, at("2023-11-14", 9, 0), "o3", 1, false);
    follow(&platform, at("2023-11-14", 20, 0), "o1", 30, true);
    // Today (the 15th) has no statistics yet.
    follow(&platform, at("2023-11-15", 5, 0), "o4", 30, false);

    let rows = client.datacube().user_summary(d("2023-11-12"), d("2023-11-15")).await.unwrap();
    assert_eq!(
        body(&platform, Report::UserSummary),
        json!({ "begin_date": "2023-11-12", "end_date": "2023-11-15" })
    );
    let got: Vec<_> =
        rows.iter().map(|r| (r.ref_date.to_string(), r.user_source, r.new_user, r.cancel_user)).collect();
    assert_eq!(
        got,
        [
            ("2023-11-12".to_owned(), 0, 0, 0),
            ("2023-11-13".to_owned(), 30, 2, 0),
            ("2023-11-14".to_owned(), 1, 1, 0),
            ("2023-11-14".to_owned(), 30, 0, 1),
        ]
    );
    assert!(rows.iter().all(|r| r.extra.is_empty()));

    let rows = client.datacube().user_cumulate(d("2023-11-08"), d("2023-11-14")).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_date.day(), r.cumulate_user)).collect();
    assert_eq!(got, [(8, 1), (9, 1), (10, 1), (11, 1), (12, 1), (13, 3), (14, 3)]);
}

#[tokio::test]
async fn datacube_message_reports_by_day_hour_week_month_and_distribution() {
    let (platform, client) = setup().await;
    message(&platform, at("2023-11-14", 9, 5), "o1", 1, 3);
    message(&platform, at("2023-11-14", 10, 0), "o1", 2, 1);
    message(&platform, at("2023-11-14", 21, 30), "o2", 1, 7);
    message(&platform, at("2023-11-08", 12, 0), "o3", 1, 11); // the week of Monday the 6th
    message(&platform, at("2023-11-13", 12, 0), "o3", 3, 1); // this week: not over yet
    message(&platform, at("2023-10-10", 8, 0), "o1", 1, 1); // October

    let day = d("2023-11-14");
    let rows = client.datacube().upstream_msg(day, day).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_hour, r.msg_type, r.msg_user, r.msg_count)).collect();
    assert_eq!(got, [(None, 1, 2, 10), (None, 2, 1, 1)]);

    let rows = client.datacube().upstream_msg_hour(day, day).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_hour, r.hour(), r.msg_type, r.msg_count)).collect();
    assert_eq!(got, [(Some(900), Some(9), 1, 3), (Some(1000), Some(10), 2, 1), (Some(2100), Some(21), 1, 7)]);

    // Weeks are dated on their Monday and reported once they are over.
    let rows = client.datacube().upstream_msg_week(d("2023-10-16"), d("2023-11-14")).await.unwrap();
    let got: Vec<_> =
        rows.iter().map(|r| (r.ref_date.to_string(), r.msg_type, r.msg_user, r.msg_count)).collect();
    assert_eq!(got, [("2023-11-06".to_owned(), 1, 1, 11)]);

    let rows = client.datacube().upstream_msg_month(d("2023-09-20"), d("2023-10-19")).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_date.to_string(), r.msg_count)).collect();
    assert_eq!(got, [("2023-10-01".to_owned(), 1)]);

    // o1 sent 4 (1–5), o2 sent 7 (6–10).
    let rows = client.datacube().upstream_msg_dist(day, day).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.count_interval, r.msg_user)).collect();
    assert_eq!(got, [(1, 1), (2, 1)]);
    let rows = client.datacube().upstream_msg_dist_week(d("2023-10-16"), d("2023-11-14")).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_date.to_string(), r.count_interval, r.msg_user)).collect();
    assert_eq!(got, [("2023-11-06".to_owned(), 3, 1)]);
    let rows = client.datacube().upstream_msg_dist_month(d("2023-09-20"), d("2023-10-19")).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_date.to_string(), r.count_interval, r.msg_user)).collect();
    assert_eq!(got, [("2023-10-01".to_owned(), 1, 1)]);
    assert_eq!(
        body(&platform, Report::UpstreamMsgDistMonth),
        json!({ "begin_date": "2023-09-20", "end_date": "2023-10-19" })
    );
}

#[tokio::test]
async fn datacube_interface_reports_sum_the_callbacks() {
    let (platform, client) = setup().await;
    for (when, failed, cost_ms) in [
        (at("2023-11-13", 23, 59), false, 10),
        (at("2023-11-14", 8, 0), false, 100),
        (at("2023-11-14", 8, 30), true, 300),
        (at("2023-11-14", 15, 0), false, 50),
    ] {
        platform.record_stat(StatEvent::Callback { at_ms: when, failed, cost_ms });
    }
    let rows = client.datacube().interface_summary(d("2023-10-16"), d("2023-11-14")).await.unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.ref_date.day(), r.callback_count, r.fail_count, r.total_time_cost, r.max_time_cost))
        .collect();
    assert_eq!(got, [(13, 1, 0, 10, 10), (14, 3, 1, 450, 300)]);
    let day = d("2023-11-14");
    let rows = client.datacube().interface_summary_hour(day, day).await.unwrap();
    let got: Vec<_> =
        rows.iter().map(|r| (r.hour(), r.callback_count, r.fail_count, r.max_time_cost)).collect();
    assert_eq!(got, [(Some(8), 2, 1, 300), (Some(15), 1, 0, 50)]);
}

#[tokio::test]
async fn datacube_article_reports_follow_the_mass_sent_articles() {
    let (platform, client) = setup().await;
    for o in ["o1", "o2", "o3"] {
        platform.add_user(FakeUser::new(o));
    }
    let draft = client
        .drafts()
        .add(&[
            DraftArticle::new("First", "<p>1</p>", "thumb"),
            DraftArticle::new("Second", "<p>2</p>", "thumb"),
        ])
        .await
        .unwrap();
    // Sent on the 15th; two days later the 15th and the 16th have statistics.
    let sent = client.mass().send_to_tag(None, &MassContent::MpNews(draft)).await.unwrap();
    let id = sent.msg_data_id.unwrap();
    platform.advance(Duration::from_secs(2 * 86_400));

    let read = |when: i64, openid: &str, index: u32, source: u32, original: bool| StatEvent::ArticleRead {
        at_ms: when,
        openid: openid.to_owned(),
        msg_data_id: id,
        index,
        source,
        original,
    };
    let share = |when: i64, openid: &str, index: u32, source: u32, scene: u32| StatEvent::ArticleShare {
        at_ms: when,
        openid: openid.to_owned(),
        msg_data_id: id,
        index,
        source,
        scene,
    };
    for e in [
        read(at("2023-11-15", 8, 0), "o1", 0, 0, false),
        read(at("2023-11-15", 9, 0), "o1", 0, 0, false),
        read(at("2023-11-15", 9, 30), "o2", 0, 2, false),
        read(at("2023-11-15", 9, 31), "o2", 0, 2, true),
        share(at("2023-11-15", 10, 0), "o1", 0, 0, 2),
        read(at("2023-11-16", 12, 0), "o3", 1, 4, false),
        StatEvent::ArticleFavorite {
            at_ms: at("2023-11-16", 12, 1),
            openid: "o3".into(),
            msg_data_id: id,
            index: 1,
        },
        share(at("2023-11-16", 13, 0), "o2", 1, 1, 1),
    ] {
        platform.record_stat(e);
    }

    let (d15, d16) = (d("2023-11-15"), d("2023-11-16"));
    let rows = client.datacube().article_summary(d15, d15).await.unwrap();
    let [a] = &rows[..] else { panic!("{rows:?}") };
    assert_eq!((a.msgid.clone(), a.article(), a.title.as_str()), (format!("{id}_1"), Some((id, 0)), "First"));
    assert_eq!(
        (
            a.int_page_read_user,
            a.int_page_read_count,
            a.ori_page_read_user,
            a.share_count,
            a.add_to_fav_count
        ),
        (2, 3, 1, 1, 0)
    );
    let rows = client.datacube().article_summary(d16, d16).await.unwrap();
    let [b] = &rows[..] else { panic!("{rows:?}") };
    assert_eq!(
        (b.article(), b.title.as_str(), b.int_page_read_user, b.add_to_fav_user),
        (Some((id, 1)), "Second", 1, 1)
    );

    let rows = client.datacube().article_total(d15, d15).await.unwrap();
    let [first, second] = &rows[..] else { panic!("{rows:?}") };
    assert_eq!((first.title.as_str(), second.article()), ("First", Some((id, 1))));
    let dates: Vec<_> = first.details.iter().map(|x| x.stat_date.to_string()).collect();
    assert_eq!(dates, ["2023-11-15", "2023-11-16"]);
    let f = &first.details[1];
    assert_eq!((f.target_user, f.int_page_read_count, f.ori_page_read_count), (3, 3, 1));
    assert_eq!((f.int_page_from_session_read_user, f.int_page_from_session_read_count), (1, 2));
    assert_eq!((f.int_page_from_feed_read_user, f.feed_share_from_session_cnt), (1, 1));
    let (s15, s16) = (&second.details[0], &second.details[1]);
    assert_eq!(
        (s15.int_page_read_count, s16.int_page_from_hist_msg_read_user, s16.add_to_fav_count),
        (0, 1, 1)
    );
    assert_eq!((s16.share_count, s16.feed_share_from_other_cnt), (1, 0));

    let rows = client.datacube().user_read(d15, d16).await.unwrap();
    let find = |day: u8, source: u32| {
        rows.iter().find(|r| r.ref_date.day() == day && r.user_source == source).unwrap()
    };
    let all15 = find(15, ALL_SOURCES);
    assert_eq!((all15.int_page_read_user, all15.int_page_read_count, all15.ori_page_read_count), (2, 3, 1));
    let chat15 = find(15, 0);
    assert_eq!((chat15.int_page_read_count, chat15.share_user, chat15.ori_page_read_user), (2, 1, 0));
    assert_eq!(
        (find(16, 1).share_count, find(16, 4).int_page_read_user, find(16, ALL_SOURCES).add_to_fav_user),
        (1, 1, 1)
    );
    assert_eq!(rows.len(), 6);

    let rows = client.datacube().user_read_hour(d15, d15).await.unwrap();
    let all9 = rows.iter().find(|r| r.hour() == Some(9) && r.user_source == ALL_SOURCES).unwrap();
    assert_eq!((all9.int_page_read_user, all9.ori_page_read_count), (2, 1));
    let hours: std::collections::BTreeSet<_> = rows.iter().filter_map(|r| r.ref_hour).collect();
    assert_eq!(hours.into_iter().collect::<Vec<_>>(), [800, 900, 1000]);

    let rows = client.datacube().user_share(d15, d16).await.unwrap();
    let got: Vec<_> =
        rows.iter().map(|r| (r.ref_date.day(), r.share_scene, r.share_user, r.share_count)).collect();
    assert_eq!(got, [(15, 2, 1, 1), (16, 1, 1, 1)]);
    let rows = client.datacube().user_share_hour(d16, d16).await.unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.ref_hour, r.share_scene)).collect();
    assert_eq!(got, [(Some(1300), 1)]);
}

#[tokio::test]
async fn datacube_ranges_are_checked_before_sending_and_by_the_platform() {
    let (platform, client) = setup().await;
    // Over the span: refused by the client, nothing is sent.
    let err = client.datacube().user_read(d("2023-11-01"), d("2023-11-07")).await.unwrap_err();
    let Error::Invalid(msg) = &err else { panic!("{err:?}") };
    assert!(msg.contains("getuserread allows at most 3 days") && msg.contains("spans 7 days"), "{msg}");
    let err = client.datacube().interface_summary(d("2023-11-14"), d("2023-11-13")).await.unwrap_err();
    assert!(err.to_string().contains("begin_date 2023-11-14 is after end_date 2023-11-13"), "{err}");
    assert!(platform.requests_to("/datacube/getuserread").is_empty());
    assert_eq!(platform.token_requests(), 0);

    // The platform checks too, with WeChat's codes.
    let post = |path: &'static str, body: Value| {
        let client = client.clone();
        async move { client.post_json::<Value, _>(path, &body).await.err().and_then(|e| e.code()) }
    };
    let range = json!({ "begin_date": "2023-11-01", "end_date": "2023-11-07" });
    assert_eq!(post("/datacube/getuserread", range.clone()).await, Some(ErrCode(61501)));
    let reversed = json!({ "begin_date": "2023-11-02", "end_date": "2023-11-01" });
    assert_eq!(post("/datacube/getusersummary", reversed).await, Some(ErrCode(61501)));
    let bad = json!({ "begin_date": "2023-11-1", "end_date": "2023-11-01" });
    assert_eq!(post("/datacube/getusersummary", bad).await, Some(ErrCode(61500)));
    assert_eq!(post("/datacube/getnothing", range.clone()).await, Some(ErrCode(40066)));
    let err = client.get::<Value>("/datacube/getusersummary", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrCode(43002)));
    assert_eq!(post("/datacube/getusersummary", range.clone()).await, None, "7 days are fine");

    // A bad token is refused with 40001; the client refreshes and retries once.
    let url = format!("{}/datacube/getusersummary?access_token=bogus", platform.url());
    let answer: Value =
        reqwest::Client::new().post(url).json(&range).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["errcode"], 40001);
    platform.revoke_tokens();
    let before = platform.token_requests();
    client.datacube().user_summary(d("2023-11-01"), d("2023-11-07")).await.unwrap();
    assert_eq!(platform.token_requests(), before + 1);
    assert_eq!(platform.answered_with(40001), 2);

    // The generic entry point decodes into any row type.
    follow(&platform, at("2023-11-14", 9, 0), "o1", 17, false);
    let rows: Vec<Value> =
        client.datacube().report(Report::UserSummary, d("2023-11-14"), d("2023-11-14")).await.unwrap();
    assert_eq!(
        rows,
        [json!({ "ref_date": "2023-11-14", "user_source": 17, "new_user": 1, "cancel_user": 0 })]
    );
}
