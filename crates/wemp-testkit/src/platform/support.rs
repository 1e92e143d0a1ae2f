//! Shared by the data cube and comment endpoints: the checks every API call passes first,
//! the errmsgs of their errcodes, and calendar arithmetic in China Standard Time (the zone
//! of WeChat's statistics).

use axum::http::Method;
use serde_json::{Value, json};

use super::{Recorded, World, err};

/// The token check, scripted answers, the method and the JSON body, in that order (as
/// `api::dispatch` does for the other endpoints). `Err` is the answer to send.
pub(super) fn guard(w: &World, method: &Method, r: &Recorded) -> Result<Value, Value> {
    let code = w.check_token(r.access_token());
    if code != 0 {
        return Err(err(code));
    }
    if let Some(v) = w.scripted.get(&r.path) {
        return Err(v.clone());
    }
    if *method != Method::POST {
        return Err(fail(43002));
    }
    if r.body.is_empty() {
        return Err(fail(44002));
    }
    match r.json() {
        Some(v @ Value::Object(_)) => Ok(v),
        _ => Err(fail(47001)),
    }
}

/// `{errcode, errmsg}` with WeChat's errmsg for the codes of these endpoints (and the
/// `rid: fake-<code>` suffix that `rid/get` understands).
pub(super) fn fail(code: i64) -> Value {
    let msg = match code {
        43002 => "require POST method",
        44002 => "empty post data",
        47001 => "data format error",
        61500 => "date format error",
        61501 => "date range error",
        88000 => "without comment privilege",
        88001 => "msg_data is not exists",
        88002 => "article is limit for safety",
        88003 => "elected comment upper limit",
        88004 => "comment was deleted by user",
        88005 => "already reply",
        88007 => "reply content beyond max len or content len is zero",
        88008 => "comment is not exists",
        88010 => "count range error. cout <= 0 or count > 50",
        _ => return err(code),
    };
    json!({ "errcode": code, "errmsg": format!("{msg} rid: fake-{code}") })
}

/// A string field of a JSON body (empty when absent).
pub(super) fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A query parameter (empty when absent).
pub(super) fn q(r: &Recorded, key: &str) -> String {
    r.query.get(key).cloned().unwrap_or_default()
}

/// `base` with the fields of `extra` added.
pub(super) fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// Unix seconds of a platform instant in milliseconds.
pub(super) fn secs(ms: i64) -> i64 {
    ms / 1000
}

const CST_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The day (days since 1970-01-01) of an instant, in China Standard Time.
pub(super) fn day_of(ms: i64) -> i64 {
    (ms + CST_MS).div_euclid(DAY_MS)
}

/// The hour of day (0–23) of an instant, in China Standard Time.
pub(super) fn hour_of(ms: i64) -> i64 {
    (ms + CST_MS).rem_euclid(DAY_MS) / 3_600_000
}

/// 0 for Monday … 6 for Sunday (1970-01-01 was a Thursday).
pub(super) fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). The fake keeps its own
/// calendar rather than borrowing `wemp_client::api::datacube::Date`: a date bug shared with the
/// client under test would pass every test.
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The civil date of a day (Howard Hinnant's algorithm).
pub(super) fn civil(day: i64) -> (i64, i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` as WeChat writes dates.
pub(super) fn fmt_date(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses exactly `YYYY-MM-DD` naming a real day.
pub(super) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if y == 0 || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil(day) == (y, m, d)).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29").map(fmt_date).as_deref(), Some("2024-02-29"));
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "2024-01-00", "abcd-01-01", "0000-01-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let monday = parse_date("2024-01-01").unwrap();
        assert_eq!(weekday(monday), 0);
        assert_eq!(weekday(monday + 6), 6);
        // 2023-11-14T22:13:20Z is 06:13 on the 15th in Beijing.
        assert_eq!(fmt_date(day_of(1_700_000_000_000)), "2023-11-15");
        assert_eq!(hour_of(1_700_000_000_000), 6);
    }
}
