//! `wemp log`: the message log `serve` writes, as a table or as JSON lines.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use wemp_proto::reply::ReplyMessage;
use wemp_store::{DeliveryRecord, LogQuery, MessageLog, RecordOutcome, StoreError};

use crate::term::{Style, cell, clip, display_width};

/// Which entries to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this OpenID.
    pub user: Option<String>,
    /// Only entries at most this old.
    pub since: Option<Duration>,
    /// Only this `MsgType` or event (`text`, `image`, `event`, `subscribe`, `CLICK` …).
    pub kind: Option<String>,
    /// At most the last this many (before following).
    pub last: usize,
}

impl Filter {
    /// The store query (the kind is matched here, as it may name an event).
    pub fn query(&self, now_ms: i64) -> LogQuery {
        LogQuery {
            openid: self.user.clone(),
            since_ms: self
                .since
                .map(|d| now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            ..LogQuery::default()
        }
    }

    /// Whether `entry` is of the kind asked for.
    pub fn kind_matches(&self, entry: &DeliveryRecord) -> bool {
        self.kind.as_ref().is_none_or(|k| {
            entry.msg_type.as_ref().is_some_and(|t| t.eq_ignore_ascii_case(k))
                || entry.event.as_ref().is_some_and(|e| e.eq_ignore_ascii_case(k))
        })
    }
}

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    // The one system clock (wemp_proto::clock); this name stays for the call sites.
    wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock)
}

const PAGE: usize = 1000;

/// The last `filter.last` matching entries, oldest first, with their row ids.
///
/// # Errors
/// The store fails.
pub async fn read(
    log: &dyn MessageLog,
    filter: &Filter,
    now_ms: i64,
) -> Result<Vec<(i64, DeliveryRecord)>, StoreError> {
    Ok(read_with_cursor(log, filter, now_ms).await?.0)
}

/// As [`read`], plus the id of the last entry looked at (matching or not): where `--follow`
/// goes on.
///
/// # Errors
/// The store fails.
pub async fn read_with_cursor(
    log: &dyn MessageLog,
    filter: &Filter,
    now_ms: i64,
) -> Result<(Vec<(i64, DeliveryRecord)>, Option<i64>), StoreError> {
    let mut query = filter.query(now_ms);
    query.limit = Some(PAGE);
    let mut kept: VecDeque<(i64, DeliveryRecord)> = VecDeque::new();
    loop {
        let page = log.entries(&query).await?;
        let n = page.len();
        if let Some((id, _)) = page.last() {
            query.after_id = Some(*id);
        }
        for row in page {
            if filter.kind_matches(&row.1) {
                kept.push_back(row);
                if kept.len() > filter.last.max(1) {
                    kept.pop_front();
                }
            }
        }
        if n < PAGE {
            break;
        }
    }
    Ok((kept.into(), query.after_id))
}

/// What `--follow` has to show after a poll.
#[derive(Clone, Debug, PartialEq)]
pub enum Followed {
    /// An entry not shown before.
    New(i64, DeliveryRecord),
    /// An entry shown before, which later deliveries of its message joined: its attempts
    /// (and the outcome of the delivery that answered) as they are now.
    Updated(i64, DeliveryRecord),
}

/// `wemp log --follow`: new entries as they are logged, and retries joining an entry shown
/// already as an update of that entry (same id), not as an entry of their own.
#[derive(Debug)]
pub struct Follow {
    after: Option<i64>,
    started_ms: i64,
    /// Entries shown within the merge window, by merge key.
    shown: std::collections::HashMap<String, (i64, DeliveryRecord)>,
}

impl Follow {
    /// Follows on after row `after` (the first read's cursor), the entries of that read
    /// (`first`) already shown; `--since` counts back from `started_ms`, the first read's
    /// time.
    pub fn new(after: Option<i64>, started_ms: i64, first: &[(i64, DeliveryRecord)]) -> Self {
        let mut follow = Self { after, started_ms, shown: std::collections::HashMap::new() };
        for (id, e) in first {
            follow.remember(*id, e);
        }
        follow
    }

    fn remember(&mut self, id: i64, e: &DeliveryRecord) {
        if let Some(key) = e.merge_key() {
            self.shown.insert(key.to_owned(), (id, e.clone()));
        }
    }

    /// Reads what was logged since the last poll.
    ///
    /// # Errors
    /// The store fails.
    pub async fn poll(&mut self, log: &dyn MessageLog, filter: &Filter) -> Result<Vec<Followed>, StoreError> {
        let mut query = filter.query(self.started_ms);
        query.after_id = self.after;
        query.limit = Some(PAGE);
        let rows = log.query(&query).await?;
        self.after = rows.last().map(|(id, _)| *id).or(self.after);
        // Entries shown no longer get retries.
        let horizon = now_ms().saturating_sub(wemp_store::log::MERGE_WINDOW_MS);
        self.shown.retain(|_, (_, e)| e.received_at_ms >= horizon);
        // The entries shown, then the new rows: `merge` folds each row into its message's
        // entry. A retry of a message never shown here (its first delivery came before the
        // follow started, or was filtered out) is left out.
        let mut input: Vec<(i64, DeliveryRecord)> = self.shown.values().cloned().collect();
        input.sort_by_key(|(id, _)| *id);
        let mut heads: std::collections::HashSet<String> = self.shown.keys().cloned().collect();
        for (id, row) in rows {
            match row.merge_key() {
                Some(key) if !heads.contains(key) => {
                    if row.is_follow_up() {
                        continue;
                    }
                    heads.insert(key.to_owned());
                }
                _ => {}
            }
            input.push((id, row));
        }
        let mut out = Vec::new();
        for (id, e) in wemp_store::merge(input) {
            let before = e.merge_key().and_then(|k| self.shown.get(k)).filter(|(shown, _)| *shown == id);
            match before {
                Some((_, was)) if *was == e => {}
                Some(_) => {
                    self.remember(id, &e);
                    out.push(Followed::Updated(id, e));
                }
                None if filter.kind_matches(&e) => {
                    self.remember(id, &e);
                    out.push(Followed::New(id, e));
                }
                None => {}
            }
        }
        Ok(out)
    }
}

/// The time zone `wemp log` shows times in: the local one (`TZ`, else the system's), or UTC
/// with `--utc`.
#[derive(Clone, Debug)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// UTC.
    pub fn utc() -> Self {
        Self(jiff::tz::TimeZone::UTC)
    }

    /// This machine's zone: the `TZ` variable (an IANA name such as `Asia/Shanghai`, a POSIX
    /// rule such as `CST-8`, or `:/path/to/tzfile`), else `/etc/localtime`; UTC when neither
    /// can be read.
    pub fn local() -> Self {
        Self(jiff::tz::TimeZone::system())
    }

    /// A fixed offset from UTC, in hours (for tests).
    pub fn fixed_hours(hours: i8) -> Self {
        Self(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(hours)))
    }

    /// The name shown in the table header: the IANA name when known, else the offset now
    /// (`UTC+08:00`).
    pub fn label(&self) -> String {
        match self.0.iana_name() {
            Some("UTC" | "Etc/UTC" | "Etc/Universal" | "Etc/Zulu" | "Zulu" | "Universal") => "UTC".into(),
            Some(name) => name.to_owned(),
            None => {
                let offset = self.0.to_offset(jiff::Timestamp::now());
                if offset == jiff::tz::Offset::UTC {
                    "UTC".into()
                } else {
                    let secs = offset.seconds();
                    let sign = if secs < 0 { '-' } else { '+' };
                    let secs = secs.unsigned_abs();
                    format!("UTC{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60)
                }
            }
        }
    }

    /// The width of the time column: the times, or the header naming the zone when longer
    /// (`time (America/Argentina/Buenos_Aires)`).
    fn width(&self) -> usize {
        W_TIME.max(display_width(&format!("time ({})", self.label())))
    }

    fn zoned(&self, ms: i64) -> Option<jiff::Zoned> {
        jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(self.0.clone()))
    }

    /// `YYYY-MM-DD HH:MM:SS` in this zone of a time in ms since the epoch.
    pub fn format(&self, ms: i64) -> String {
        self.zoned(ms).map_or_else(|| format!("({ms} ms)"), |z| z.strftime("%Y-%m-%d %H:%M:%S").to_string())
    }

    /// RFC 3339 with this zone's offset (`2026-12-03T15:25:13+08:00`), for JSON.
    pub fn rfc3339(&self, ms: i64) -> String {
        self.zoned(ms)
            .map_or_else(|| format!("({ms} ms)"), |z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a time in ms since the epoch.
pub fn format_time(ms: i64) -> String {
    Zone::utc().format(ms)
}

/// The reply of an entry in readable form: `(no reply)`, the text, `[news, 1 article(s)]` …
pub fn reply_text(entry: &DeliveryRecord) -> String {
    match &entry.reply_xml {
        None => "(none)".into(),
        Some(xml) => match ReplyMessage::parse(xml) {
            Ok(m) => crate::sim::chat::render_reply(&m.reply),
            Err(_) => format!("(unreadable reply: {} bytes)", xml.len()),
        },
    }
}

fn reply_type(entry: &DeliveryRecord) -> Option<String> {
    let xml = entry.reply_xml.as_ref()?;
    let m = ReplyMessage::parse(xml).ok()?;
    Some(m.reply.msg_type().unwrap_or("none").to_owned())
}

/// One entry as a JSON object: the record as the store keeps it (`msg_id` as a string:
/// MsgIds exceed 2^53; `query` and `headers` as objects; `attempts`), plus the entry's `id`,
/// `received_at` (RFC 3339 with the offset of `zone`), the reply read back (`reply_type`,
/// `reply`) and `latency_ms`.
pub fn to_json(id: i64, e: &DeliveryRecord, zone: &Zone) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_else(|err| json!({ "error": err.to_string() }));
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(id));
        m.insert("received_at".into(), json!(zone.rfc3339(e.received_at_ms)));
        m.insert("type".into(), json!(e.msg_type));
        m.insert("reply_type".into(), json!(reply_type(e)));
        m.insert("reply".into(), json!(reply_text(e)));
        m.insert("latency_ms".into(), json!(e.latency_ms()));
    }
    v
}

/// The widths of the table's columns, in terminal cells. OpenIDs (28 characters) are shown
/// whole, so they can be pasted into `--user`.
const W_TIME: usize = 19;
const W_OPENID: usize = 28;
const W_MSG_ID: usize = 19;
const W_TYPE: usize = 20;
const W_MODE: usize = 10;
const W_DEDUP: usize = 6;
const W_MS: usize = 6;
const W_MESSAGE: usize = 24;

/// The header line of the table, naming the time zone of its times.
pub fn table_header(style: Style, zone: &Zone) -> String {
    style.bold(&format!(
        "{}  {}  {}  {}  {}  {}  {:>W_MS$}  {}  reply",
        cell(&format!("time ({})", zone.label()), zone.width()),
        cell("openid", W_OPENID),
        cell("msg_id", W_MSG_ID),
        cell("type", W_TYPE),
        cell("mode", W_MODE),
        cell("dedup", W_DEDUP),
        "ms",
        cell("message", W_MESSAGE),
    ))
}

/// One table row; columns are measured in terminal cells, so Chinese text (two cells a
/// character) does not shift the columns after it.
pub fn table_row(e: &DeliveryRecord, style: Style, zone: &Zone) -> String {
    let kind = match &e.event {
        Some(ev) => format!("event/{ev}"),
        None => e.msg_type.as_deref().unwrap_or("-").to_owned(),
    };
    // Whole, never clipped (a longer one pushes the row right rather than losing its end).
    let openid = clip(e.openid.as_deref().unwrap_or("-"), usize::MAX);
    let openid = format!("{openid}{}", " ".repeat(W_OPENID.saturating_sub(display_width(&openid))));
    let mut row = format!(
        "{}  {openid}  {}  {}  {}  {}  {:>W_MS$}  {}  {}",
        cell(&zone.format(e.received_at_ms), zone.width()),
        cell(&e.msg_id.map(|m| m.to_string()).unwrap_or_else(|| "-".into()), W_MSG_ID),
        cell(&kind, W_TYPE),
        cell(e.mode.map_or("-", wemp_proto::Mode::as_str), W_MODE),
        cell(e.dedup.map_or("-", wemp_store::DedupOutcome::as_str), W_DEDUP),
        e.latency_ms(),
        cell(e.summary.as_deref().unwrap_or_default(), W_MESSAGE),
        clip(&reply_text(e), 60),
    );
    if e.attempts > 1 {
        let _ = write!(row, "  {}", style.yellow(&format!("[{} attempts]", e.attempts)));
    }
    if e.outcome != RecordOutcome::Answered {
        let _ = write!(row, "  {}", style.yellow(&format!("[{}]", e.outcome.label())));
    }
    if let Some(r) = &e.rejection {
        let code = r.code.map(|c| format!("{c} ")).unwrap_or_default();
        let _ = write!(row, "  {}", style.red(&clip(&format!("{code}{}", r.message), 80)));
    } else if let Some(err) = &e.error {
        let _ = write!(row, "  {}", style.red(&clip(err, 80)));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_civil() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_time(951_825_600_000), "2000-02-29 12:00:00");
    }

    #[test]
    fn times_follow_the_zone() {
        let beijing = Zone::fixed_hours(8);
        assert_eq!(beijing.format(1_700_000_000_000), "2023-11-15 06:13:20");
        assert_eq!(beijing.rfc3339(1_700_000_000_000), "2023-11-15T06:13:20+08:00");
        assert_eq!(beijing.label(), "UTC+08:00");
        assert_eq!(Zone::utc().label(), "UTC");
        assert_eq!(Zone::utc().rfc3339(0), "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn chinese_text_keeps_the_columns_in_place() {
        let row = |summary: &str, openid: &str| {
            let mut e = DeliveryRecord::new(0, 1_700_000_000_000);
            e.openid = Some(openid.into());
            e.msg_type = Some("text".into());
            e.summary = Some(summary.into());
            table_row(&e, Style::default(), &Zone::utc())
        };
        let openid = "oABCDEFGHIJKLMNOPQRSTUVWXYZ0";
        let en = row("order status please", openid);
        let zh = row("我想查询一下我的订单状态谢谢", openid);
        assert!(en.contains(openid) && zh.contains(openid), "whole OpenIDs:\n{en}\n{zh}");
        // The reply column starts in the same terminal cell whatever the message's script.
        let reply_at = |r: &str| display_width(&r[..r.find("(none)").unwrap()]);
        assert_eq!(reply_at(&en), reply_at(&zh), "\n{en}\n{zh}");
        let header = table_header(Style::default(), &Zone::utc());
        assert_eq!(
            display_width(&header[..header.find("reply").unwrap()]),
            reply_at(&en),
            "\n{header}\n{en}"
        );
    }

    /// `wemp log --since 1h --follow` when nothing is that recent: following must print only
    /// what arrives, not the whole older log.
    #[tokio::test]
    async fn following_after_an_empty_since_window_skips_older_entries() {
        let log = wemp_store::memory::MemoryMessageLog::default();
        let entry = |ms: i64, id: u64| {
            let mut e = DeliveryRecord::new(0, ms);
            e.openid = Some("a".into());
            e.msg_id = Some(id);
            e.msg_type = Some("text".into());
            e
        };
        log.append(&[entry(1_000, 1), entry(2_000, 2)]).await.unwrap();
        let f = Filter { last: 50, since: Some(Duration::from_secs(3600)), ..Filter::default() };
        let now = 10_000_000;
        let (rows, cursor) = read_with_cursor(&log, &f, now).await.unwrap();
        assert!(rows.is_empty());
        log.append(&[entry(now + 1, 3)]).await.unwrap();
        let mut follow = Follow::new(cursor, now, &rows);
        let got: Vec<_> = follow
            .poll(&log, &f)
            .await
            .unwrap()
            .into_iter()
            .map(|f| match f {
                Followed::New(_, e) => e.msg_id,
                Followed::Updated(..) => None,
            })
            .collect();
        assert_eq!(got, [Some(3)]);
    }

    /// Retries of an entry shown already update it (same id, attempts counted); a retry of
    /// a message never shown is not an entry of its own.
    #[tokio::test]
    async fn following_shows_retries_joining_their_entry() {
        let log = wemp_store::memory::MemoryMessageLog::default();
        let now = now_ms();
        let delivery = |key: &str, dedup: wemp_store::DedupOutcome| {
            let mut e = DeliveryRecord::new(0, now);
            e.openid = Some("o".into());
            e.msg_type = Some("text".into());
            e.dedup_key = Some(key.into());
            e.dedup = Some(dedup);
            e
        };
        use wemp_store::DedupOutcome::{Cached, New};
        log.append(&[delivery("wx:msg:o:0", New)]).await.unwrap();
        let f = Filter { last: 50, ..Filter::default() };
        let (rows, cursor) = read_with_cursor(&log, &f, now).await.unwrap();
        let mut follow = Follow::new(cursor, now, &rows);
        log.append(&[delivery("wx:msg:o:1", New)]).await.unwrap();
        let first = follow.poll(&log, &f).await.unwrap();
        let [Followed::New(id, e)] = first.as_slice() else { panic!("{first:?}") };
        assert_eq!(e.attempts, 1);
        log.append(&[delivery("wx:msg:o:1", Cached)]).await.unwrap();
        let second = follow.poll(&log, &f).await.unwrap();
        assert!(
            matches!(second.as_slice(), [Followed::Updated(i, e)] if i == id && e.attempts == 2),
            "{second:?}"
        );
        // A retry of a message whose first delivery is not shown (logged before the rows
        // read, or deleted) is no entry of its own.
        log.append(&[delivery("wx:msg:o:1", Cached), delivery("wx:msg:o:9", Cached)]).await.unwrap();
        let third = follow.poll(&log, &f).await.unwrap();
        assert!(
            matches!(third.as_slice(), [Followed::Updated(i, e)] if i == id && e.attempts == 3),
            "{third:?}"
        );
        // Nothing new: nothing to show.
        assert_eq!(follow.poll(&log, &f).await.unwrap(), []);
        let _ = rows;
    }

    #[tokio::test]
    async fn read_keeps_the_last_matching() {
        let log = wemp_store::memory::MemoryMessageLog::default();
        let mut entries = Vec::new();
        for i in 0..5u64 {
            let mut e = DeliveryRecord::new(0, 1000 + i as i64);
            e.openid = Some(if i % 2 == 0 { "a".into() } else { "b".into() });
            e.msg_id = Some(i);
            e.msg_type = Some(if i == 4 { "event".into() } else { "text".into() });
            e.event = (i == 4).then(|| "subscribe".into());
            entries.push(e);
        }
        log.append(&entries).await.unwrap();
        let f = Filter { last: 2, ..Filter::default() };
        let got: Vec<_> = read(&log, &f, 2000).await.unwrap().into_iter().map(|(_, e)| e.msg_id).collect();
        assert_eq!(got, [Some(3), Some(4)]);
        let f = Filter { last: 10, user: Some("a".into()), kind: Some("text".into()), ..Filter::default() };
        let got: Vec<_> = read(&log, &f, 2000).await.unwrap().into_iter().map(|(_, e)| e.msg_id).collect();
        assert_eq!(got, [Some(0), Some(2)]);
        let f = Filter { last: 10, kind: Some("SUBSCRIBE".into()), ..Filter::default() };
        assert_eq!(read(&log, &f, 2000).await.unwrap().len(), 1);
        let f = Filter { last: 10, since: Some(Duration::from_millis(2)), ..Filter::default() };
        let got: Vec<_> = read(&log, &f, 1005).await.unwrap().into_iter().map(|(_, e)| e.msg_id).collect();
        assert_eq!(got, [Some(3), Some(4)]);
    }
}
