//! 数据统计 (`POST /datacube/…`) on the fake platform.
//!
//! The reports are computed from what happened: [`StatEvent`]s you record with
//! [`FakePlatform::record_stat`] (follows, messages users sent, article reads, shares and
//! favourites, WeChat's calls to your server) and the articles the platform mass-sent. As on
//! the real platform, dates are China Standard Time days, a report only covers days before
//! the platform clock's today, weekly and monthly rows are dated on the Monday or the 1st
//! within the range and only for periods that are over, a malformed date answers 61500 and
//! a reversed or too long range 61501 (spans as in the official overview tables).
//!
//! Simplifications: `getusersummary` gives a zero row with `user_source` 0 for a day
//! without follows (as reported by developers); `getarticlesummary` reports every article
//! read that day (the real one drops articles with fewer than three reads, shares and
//! favourites); per-source rows of `getuserread(hour)` carry only article-page reads and
//! shares, the [`ALL_SOURCES`] row everything.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::support::{civil, day_of, days_from_civil, fail, fmt_date, guard, hour_of, parse_date, weekday};
use super::{Answer, FakePlatform, Recorded, World};

/// `user_source` of the row that sums every entry point in `getuserread(hour)`.
pub const ALL_SOURCES: u32 = 99_999_999;

/// Something the data cube reports count. `at_ms` is on the platform clock (ms since the
/// Unix epoch); the reports group by its China Standard Time day and hour.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatEvent {
    /// A user followed the account (`getusersummary`, `getusercumulate`).
    Follow {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// `user_source`: 0 other, 1 search, 17 business card, 30 QR code, …
        source: u32,
    },
    /// A user unfollowed the account.
    Unfollow {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// `user_source` the unfollow is counted under.
        source: u32,
    },
    /// A user sent the account a message (`getupstreammsg*`).
    Message {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// 1 text, 2 image, 3 voice, 4 video, 6 link.
        msg_type: u32,
    },
    /// A user read a mass-sent article (`getarticlesummary`, `getarticletotal`,
    /// `getuserread*`).
    ArticleRead {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// The mass message.
        msg_data_id: i64,
        /// The article in it, from 0.
        index: u32,
        /// Entry point: 0 chat, 1 friends, 2 Moments, 4 history page, 5 other, 6 Top
        /// Stories, 7 Search.
        source: u32,
        /// A read of the "read more" (original) page rather than the article page.
        original: bool,
    },
    /// A user shared a mass-sent article (`getusershare*` and the article reports).
    ArticleShare {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// The mass message.
        msg_data_id: i64,
        /// The article in it, from 0.
        index: u32,
        /// Where the sharer was reading it (as [`StatEvent::ArticleRead`]'s `source`).
        source: u32,
        /// Where it was shared: 1 to a friend, 2 to Moments, 255 other.
        scene: u32,
    },
    /// A user added a mass-sent article to favourites.
    ArticleFavorite {
        /// When.
        at_ms: i64,
        /// Who.
        openid: String,
        /// The mass message.
        msg_data_id: i64,
        /// The article in it, from 0.
        index: u32,
    },
    /// WeChat called the account's server (`getinterfacesummary*`).
    Callback {
        /// When.
        at_ms: i64,
        /// Whether the call failed.
        failed: bool,
        /// How long it took, ms.
        cost_ms: u64,
    },
}

impl StatEvent {
    fn at_ms(&self) -> i64 {
        match self {
            Self::Follow { at_ms, .. }
            | Self::Unfollow { at_ms, .. }
            | Self::Message { at_ms, .. }
            | Self::ArticleRead { at_ms, .. }
            | Self::ArticleShare { at_ms, .. }
            | Self::ArticleFavorite { at_ms, .. }
            | Self::Callback { at_ms, .. } => *at_ms,
        }
    }

    fn day(&self) -> i64 {
        day_of(self.at_ms())
    }

    fn hour(&self) -> i64 {
        hour_of(self.at_ms())
    }

    /// The article an article event is about.
    fn article(&self) -> Option<(i64, u32)> {
        match self {
            Self::ArticleRead { msg_data_id, index, .. }
            | Self::ArticleShare { msg_data_id, index, .. }
            | Self::ArticleFavorite { msg_data_id, index, .. } => Some((*msg_data_id, *index)),
            _ => None,
        }
    }
}

/// The recorded events.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    events: Vec<StatEvent>,
}

impl FakePlatform {
    /// Records something the data cube reports count.
    pub fn record_stat(&self, event: StatEvent) {
        self.world().stats.events.push(event);
    }
}

/// Reports and their maximum spans in days (the official overview tables).
const REPORTS: [(&str, i64); 17] = [
    ("getusersummary", 7),
    ("getusercumulate", 7),
    ("getarticlesummary", 1),
    ("getarticletotal", 1),
    ("getuserread", 3),
    ("getuserreadhour", 1),
    ("getusershare", 7),
    ("getusersharehour", 1),
    ("getupstreammsg", 7),
    ("getupstreammsghour", 1),
    ("getupstreammsgweek", 30),
    ("getupstreammsgmonth", 30),
    ("getupstreammsgdist", 15),
    ("getupstreammsgdistweek", 30),
    ("getupstreammsgdistmonth", 30),
    ("getinterfacesummary", 30),
    ("getinterfacesummaryhour", 1),
];

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    let name = r.path.strip_prefix("/datacube/")?;
    let &(name, max) = REPORTS.iter().find(|(n, _)| *n == name)?;
    let answer = match guard(w, method, r) {
        Err(answer) => answer,
        Ok(body) => {
            let date = |key: &str| body.get(key).and_then(Value::as_str).and_then(parse_date);
            match (date("begin_date"), date("end_date")) {
                (Some(begin), Some(end)) if begin <= end && end - begin < max => {
                    let today = day_of(w.now_ms);
                    json!({ "list": report(w, name, begin, end, today) })
                }
                (Some(_), Some(_)) => fail(61501),
                _ => fail(61500),
            }
        }
    };
    Some(Answer::Json(answer))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Period {
    Day,
    Week,
    Month,
}

/// The periods a report covers: `(first day, last day)`, dated within `begin..=end` and
/// over before `today`.
fn periods(period: Period, begin: i64, end: i64, today: i64) -> Vec<(i64, i64)> {
    (begin..=end)
        .filter_map(|d| match period {
            Period::Day => Some((d, d)),
            Period::Week => (weekday(d) == 0).then_some((d, d + 6)),
            Period::Month => {
                let (y, m, day) = civil(d);
                let next = if m == 12 { days_from_civil(y + 1, 1, 1) } else { days_from_civil(y, m + 1, 1) };
                (day == 1).then_some((d, next - 1))
            }
        })
        .filter(|&(_, last)| last < today)
        .collect()
}

fn report(w: &World, name: &str, begin: i64, end: i64, today: i64) -> Vec<Value> {
    let events = &w.stats.events;
    let days = periods(Period::Day, begin, end, today);
    match name {
        "getusersummary" => user_summary(events, &days),
        "getusercumulate" => user_cumulate(events, &days),
        "getarticlesummary" => article_summary(w, &days),
        "getarticletotal" => article_total(w, &days, today),
        "getuserread" => user_read(events, &days, false),
        "getuserreadhour" => user_read(events, &days, true),
        "getusershare" => user_share(events, &days, false),
        "getusersharehour" => user_share(events, &days, true),
        "getupstreammsg" => upstream(events, &days, false),
        "getupstreammsghour" => upstream(events, &days, true),
        "getupstreammsgweek" => upstream(events, &periods(Period::Week, begin, end, today), false),
        "getupstreammsgmonth" => upstream(events, &periods(Period::Month, begin, end, today), false),
        "getupstreammsgdist" => upstream_dist(events, &days),
        "getupstreammsgdistweek" => upstream_dist(events, &periods(Period::Week, begin, end, today)),
        "getupstreammsgdistmonth" => upstream_dist(events, &periods(Period::Month, begin, end, today)),
        "getinterfacesummary" => interface(events, &days, false),
        _ => interface(events, &days, true),
    }
}

fn in_period(e: &StatEvent, (first, last): (i64, i64)) -> bool {
    (first..=last).contains(&e.day())
}

/// A row with `ref_date` (and `ref_hour` for hourly rows) followed by `fields`.
fn row(day: i64, hour: Option<i64>, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert("ref_date".into(), json!(fmt_date(day)));
    if let Some(h) = hour {
        m.insert("ref_hour".into(), json!(h * 100));
    }
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m)
}

/// The hours to split a day's events by: one `None` for daily reports, else each hour
/// with events.
fn hours<'a>(events: impl Iterator<Item = &'a StatEvent>, hourly: bool) -> Vec<Option<i64>> {
    if !hourly {
        return vec![None];
    }
    events.map(StatEvent::hour).collect::<BTreeSet<_>>().into_iter().map(Some).collect()
}

fn user_summary(events: &[StatEvent], days: &[(i64, i64)]) -> Vec<Value> {
    let mut rows = Vec::new();
    for &p in days {
        let mut by_source: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for e in events.iter().filter(|e| in_period(e, p)) {
            match e {
                StatEvent::Follow { source, .. } => by_source.entry(*source).or_default().0 += 1,
                StatEvent::Unfollow { source, .. } => by_source.entry(*source).or_default().1 += 1,
                _ => {}
            }
        }
        if by_source.is_empty() {
            by_source.insert(0, (0, 0));
        }
        for (source, (new, cancel)) in by_source {
            rows.push(row(
                p.0,
                None,
                json!({ "user_source": source, "new_user": new, "cancel_user": cancel }),
            ));
        }
    }
    rows
}

fn user_cumulate(events: &[StatEvent], days: &[(i64, i64)]) -> Vec<Value> {
    days.iter()
        .map(|&(day, _)| {
            let (mut follows, mut unfollows) = (0u64, 0u64);
            for e in events.iter().filter(|e| e.day() <= day) {
                match e {
                    StatEvent::Follow { .. } => follows += 1,
                    StatEvent::Unfollow { .. } => unfollows += 1,
                    _ => {}
                }
            }
            row(day, None, json!({ "cumulate_user": follows.saturating_sub(unfollows) }))
        })
        .collect()
}

/// Reads, shares and favourites of some events.
#[derive(Default)]
struct Tally<'a> {
    read: BTreeSet<&'a str>,
    reads: u64,
    ori: BTreeSet<&'a str>,
    oris: u64,
    share: BTreeSet<&'a str>,
    shares: u64,
    fav: BTreeSet<&'a str>,
    favs: u64,
}

impl<'a> Tally<'a> {
    fn of(events: impl Iterator<Item = &'a StatEvent>) -> Self {
        let mut t = Self::default();
        for e in events {
            match e {
                StatEvent::ArticleRead { openid, original: false, .. } => {
                    t.read.insert(openid);
                    t.reads += 1;
                }
                StatEvent::ArticleRead { openid, original: true, .. } => {
                    t.ori.insert(openid);
                    t.oris += 1;
                }
                StatEvent::ArticleShare { openid, .. } => {
                    t.share.insert(openid);
                    t.shares += 1;
                }
                StatEvent::ArticleFavorite { openid, .. } => {
                    t.fav.insert(openid);
                    t.favs += 1;
                }
                _ => {}
            }
        }
        t
    }

    fn is_empty(&self) -> bool {
        self.reads + self.oris + self.shares + self.favs == 0
    }

    /// The article-page and share figures (what every `user_source` row has).
    fn page_json(&self) -> Value {
        json!({
            "int_page_read_user": self.read.len(), "int_page_read_count": self.reads,
            "share_user": self.share.len(), "share_count": self.shares,
        })
    }

    fn json(&self) -> Value {
        let mut v = self.page_json();
        v["ori_page_read_user"] = json!(self.ori.len());
        v["ori_page_read_count"] = json!(self.oris);
        v["add_to_fav_user"] = json!(self.fav.len());
        v["add_to_fav_count"] = json!(self.favs);
        v
    }
}

fn msgid(msg_data_id: i64, index: u32) -> String {
    format!("{msg_data_id}_{}", u64::from(index) + 1)
}

fn article_summary(w: &World, days: &[(i64, i64)]) -> Vec<Value> {
    let events = &w.stats.events;
    let mut rows = Vec::new();
    for &p in days {
        let articles: BTreeSet<(i64, u32)> =
            events.iter().filter(|e| in_period(e, p)).filter_map(StatEvent::article).collect();
        for (id, index) in articles {
            let t = Tally::of(events.iter().filter(|e| in_period(e, p) && e.article() == Some((id, index))));
            let mut v =
                row(p.0, None, json!({ "msgid": msgid(id, index), "title": w.news.title(id, index) }));
            if let (Value::Object(r), Value::Object(f)) = (&mut v, t.json()) {
                r.extend(f);
            }
            rows.push(v);
        }
    }
    rows
}

fn article_total(w: &World, days: &[(i64, i64)], today: i64) -> Vec<Value> {
    let events = &w.stats.events;
    let mut rows = Vec::new();
    for &(day, _) in days {
        for (&id, news) in w.news.sent.iter().filter(|(_, n)| day_of(n.at_ms) == day) {
            for (i, article) in news.articles.iter().enumerate().filter(|(_, a)| !a.deleted) {
                let index = i as u32;
                let about = |e: &&StatEvent| e.article() == Some((id, index));
                // A figure per day from the day of sending, for up to 7 days.
                let details: Vec<Value> = (day..(day + 7).min(today))
                    .map(|stat_day| {
                        let upto = || events.iter().filter(about).filter(move |e| e.day() <= stat_day);
                        let mut d = Tally::of(upto()).json();
                        d["stat_date"] = json!(fmt_date(stat_day));
                        d["target_user"] = json!(news.target_user);
                        let from = |keep: &dyn Fn(u32) -> bool| {
                            Tally::of(upto().filter(|e| {
                                matches!(e, StatEvent::ArticleRead { source, original: false, .. } if keep(*source))
                            }))
                        };
                        for (key, t) in [
                            ("session", from(&|s| s == 0)),
                            ("hist_msg", from(&|s| s == 4)),
                            ("feed", from(&|s| s == 2)),
                            ("friends", from(&|s| s == 1)),
                            ("other", from(&|s| !matches!(s, 0 | 1 | 2 | 4))),
                        ] {
                            d[format!("int_page_from_{key}_read_user")] = json!(t.read.len());
                            d[format!("int_page_from_{key}_read_count")] = json!(t.reads);
                        }
                        let to_feed = |keep: &dyn Fn(u32) -> bool| {
                            Tally::of(upto().filter(|e| {
                                matches!(e, StatEvent::ArticleShare { source, scene: 2, .. } if keep(*source))
                            }))
                        };
                        for (key, t) in [
                            ("session", to_feed(&|s| s == 0)),
                            ("feed", to_feed(&|s| s == 2)),
                            ("other", to_feed(&|s| !matches!(s, 0 | 2))),
                        ] {
                            d[format!("feed_share_from_{key}_user")] = json!(t.share.len());
                            d[format!("feed_share_from_{key}_cnt")] = json!(t.shares);
                        }
                        d
                    })
                    .collect();
                let fields = json!({ "msgid": msgid(id, index), "title": article.title, "details": details });
                rows.push(row(day, None, fields));
            }
        }
    }
    rows
}

fn user_read(events: &[StatEvent], days: &[(i64, i64)], hourly: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for &p in days {
        let of_day = || events.iter().filter(move |e| in_period(e, p) && e.article().is_some());
        for hour in hours(of_day(), hourly) {
            let of_hour = || of_day().filter(move |e| hour.is_none_or(|h| e.hour() == h));
            let all = Tally::of(of_hour());
            if all.is_empty() {
                continue;
            }
            let mut v = all.json();
            v["user_source"] = json!(ALL_SOURCES);
            rows.push(row(p.0, hour, v));
            let sources: BTreeSet<u32> = of_hour()
                .filter_map(|e| match e {
                    StatEvent::ArticleRead { source, original: false, .. }
                    | StatEvent::ArticleShare { source, .. } => Some(*source),
                    _ => None,
                })
                .collect();
            for s in sources {
                let t = Tally::of(of_hour().filter(|e| {
                    matches!(e, StatEvent::ArticleRead { source, original: false, .. }
                        | StatEvent::ArticleShare { source, .. } if *source == s)
                }));
                let mut v = t.page_json();
                v["user_source"] = json!(s);
                rows.push(row(p.0, hour, v));
            }
        }
    }
    rows
}

fn user_share(events: &[StatEvent], days: &[(i64, i64)], hourly: bool) -> Vec<Value> {
    fn share(e: &StatEvent) -> Option<(u32, &str)> {
        match e {
            StatEvent::ArticleShare { openid, scene, .. } => Some((*scene, openid.as_str())),
            _ => None,
        }
    }
    tally_by(
        events,
        days,
        hourly,
        share,
        |scene, users, count| json!({ "share_scene": scene, "share_count": count, "share_user": users }),
    )
}

fn upstream(events: &[StatEvent], periods: &[(i64, i64)], hourly: bool) -> Vec<Value> {
    fn message(e: &StatEvent) -> Option<(u32, &str)> {
        match e {
            StatEvent::Message { openid, msg_type, .. } => Some((*msg_type, openid.as_str())),
            _ => None,
        }
    }
    tally_by(
        events,
        periods,
        hourly,
        message,
        |msg_type, users, count| json!({ "msg_type": msg_type, "msg_user": users, "msg_count": count }),
    )
}

/// One row per period (and hour, if `hourly`) and key: the events `select` gives a
/// `(key, openid)` for, as distinct users and a count.
fn tally_by<'a>(
    events: &'a [StatEvent],
    periods: &[(i64, i64)],
    hourly: bool,
    select: impl Fn(&'a StatEvent) -> Option<(u32, &'a str)> + Copy,
    fields: impl Fn(u32, usize, u64) -> Value,
) -> Vec<Value> {
    let mut rows = Vec::new();
    for &p in periods {
        let chosen = || events.iter().filter(move |e| in_period(e, p) && select(e).is_some());
        for hour in hours(chosen(), hourly) {
            let mut by_key: BTreeMap<u32, (BTreeSet<&str>, u64)> = BTreeMap::new();
            for e in chosen().filter(|e| hour.is_none_or(|h| e.hour() == h)) {
                if let Some((key, openid)) = select(e) {
                    let t = by_key.entry(key).or_default();
                    t.0.insert(openid);
                    t.1 += 1;
                }
            }
            for (key, (users, count)) in by_key {
                rows.push(row(p.0, hour, fields(key, users.len(), count)));
            }
        }
    }
    rows
}

fn upstream_dist(events: &[StatEvent], periods: &[(i64, i64)]) -> Vec<Value> {
    let mut rows = Vec::new();
    for &p in periods {
        let mut per_user: BTreeMap<&str, u64> = BTreeMap::new();
        for e in events.iter().filter(|e| in_period(e, p)) {
            if let StatEvent::Message { openid, .. } = e {
                *per_user.entry(openid).or_default() += 1;
            }
        }
        let mut by_interval: BTreeMap<u32, u64> = BTreeMap::new();
        for n in per_user.into_values() {
            let interval = match n {
                1..=5 => 1,
                6..=10 => 2,
                _ => 3,
            };
            *by_interval.entry(interval).or_default() += 1;
        }
        for (interval, users) in by_interval {
            rows.push(row(p.0, None, json!({ "count_interval": interval, "msg_user": users })));
        }
    }
    rows
}

fn interface(events: &[StatEvent], days: &[(i64, i64)], hourly: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for &p in days {
        let calls =
            || events.iter().filter(move |e| in_period(e, p) && matches!(e, StatEvent::Callback { .. }));
        for hour in hours(calls(), hourly) {
            let (mut count, mut failed, mut total, mut max) = (0u64, 0u64, 0u64, 0u64);
            for e in calls().filter(|e| hour.is_none_or(|h| e.hour() == h)) {
                if let StatEvent::Callback { failed: f, cost_ms, .. } = e {
                    count += 1;
                    failed += u64::from(*f);
                    total += cost_ms;
                    max = max.max(*cost_ms);
                }
            }
            if count > 0 {
                let fields = json!({
                    "callback_count": count, "fail_count": failed,
                    "total_time_cost": total, "max_time_cost": max,
                });
                rows.push(row(p.0, hour, fields));
            }
        }
    }
    rows
}
