//! 数据统计 (data cube): user, article, message and interface analysis, `POST /datacube/…`.
//!
//! Every report takes a `begin_date` and an `end_date` (`YYYY-MM-DD`, both inclusive) and
//! answers `{"list": [...]}`. Each report allows a maximum span of days per call
//! ([`Report::max_days`]); the client checks the span before sending anything, so an
//! over-long range fails with [`Error::Invalid`] naming the report and its limit instead of
//! WeChat's `61501 date range error`. Dates are [`Date`]s, the calendar date in China
//! Standard Time (UTC+8), which is the zone WeChat's statistics use.
//!
//! ```
//! use wemp_client::api::datacube::{Date, Report};
//!
//! let begin: Date = "2024-01-01".parse().unwrap();
//! let end = begin.add_days(6).unwrap();
//! assert!(Report::UserSummary.check(begin, end).is_ok());        // 7 days: allowed
//! let err = Report::UserRead.check(begin, end).unwrap_err();     // at most 3
//! assert!(err.to_string().contains("getuserread allows at most 3 days"), "{err}");
//! ```
//!
//! Official references (the overview pages list the maximum spans):
//! - <https://developers.weixin.qq.com/doc/offiaccount/Analytics/User_Analysis_Data_Interface.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Analytics/Graphic_Analysis_Data_Interface.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Analytics/Message_analysis_data_interface.html>
//! - <https://developers.weixin.qq.com/doc/offiaccount/Analytics/Analytics_API.html>
//! - per report: `https://developers.weixin.qq.com/doc/service/api/wedata/{user,news,mess}/api_<name>`
//!
//! Where the sources disagree:
//! - The overview table gives `getupstreammsgdistweek` and `getupstreammsgdistmonth` a span
//!   of 30 days, while their per-report pages say "跨度不超过15天" (an apparent copy of the
//!   `getupstreammsgdist` text). This client follows the table (30).
//! - `getuserread` allows 3 days in the article overview table (as copied by third-party
//!   mirrors of the old docs); the newer per-report pages only say the end date may be
//!   yesterday at the latest. This client follows the table (3).
//! - The newer pages mark the article reports (`getarticlesummary`, `getarticletotal`,
//!   `getuserread*`, `getusershare*`) as no longer maintained in favour of the
//!   `/datacube/getarticleread`-style APIs; they still answer as documented here.
//! - WeChat answers `{"list": null}` or leaves `list` out when there is no data (reported on
//!   the developer forum); both arrive here as an empty `Vec`.
//!
//! Result rows keep every documented field; fields WeChat adds later are kept in `extra`
//! rather than breaking the parse, and documented counters that a row leaves out read as 0.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::{Error, Result};

/// A calendar date (`YYYY-MM-DD`, years 1 to 9999), as the data cube reports use it.
///
/// ```
/// use wemp_client::api::datacube::Date;
///
/// let d: Date = "2024-02-28".parse().unwrap();
/// assert_eq!(d.add_days(1).unwrap().to_string(), "2024-02-29");
/// assert_eq!(d.days_until("2024-03-01".parse().unwrap()), 2);
/// assert!("2023-02-29".parse::<Date>().is_err());
/// assert!("2024-2-1".parse::<Date>().is_err());
/// // 2023-11-14 22:13:20 UTC is already the 15th in Beijing.
/// assert_eq!(Date::from_unix_ms(1_700_000_000_000).to_string(), "2023-11-15");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    // Field order matters: the derived `Ord` compares year, then month, then day.
    year: u16,
    month: u8,
    day: u8,
}

/// China Standard Time, the zone of WeChat's statistics: UTC+8, no daylight saving.
const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

impl Date {
    /// A date from its parts.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the parts do not name a day (month 13, February 30th, year 0).
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return Err(invalid_date(year, month, day));
        }
        let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let last = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day > last {
            return Err(invalid_date(year, month, day));
        }
        Ok(Self { year, month, day })
    }

    /// The year.
    pub const fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub const fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub const fn day(self) -> u8 {
        self.day
    }

    /// The date in China Standard Time (UTC+8) of an instant given in milliseconds since
    /// the Unix epoch — for example `Date::from_unix_ms(now).add_days(-1)` is "yesterday",
    /// the latest date WeChat has statistics for. Instants outside the years 1 to 9999
    /// saturate to the first or last day.
    pub fn from_unix_ms(ms: i64) -> Self {
        let days = ms.saturating_add(CST_OFFSET_MS).div_euclid(DAY_MS);
        Self::from_days_since_epoch(days).unwrap_or(if days < 0 { Self::MIN } else { Self::MAX })
    }

    const MIN: Self = Self { year: 1, month: 1, day: 1 };
    const MAX: Self = Self { year: 9999, month: 12, day: 31 };

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, if it is within the years 1 to 9999.
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        // Howard Hinnant's civil_from_days.
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let year = u16::try_from(year).ok().filter(|y| (1..=9999).contains(y))?;
        Some(Self { year, month: u8::try_from(month).ok()?, day: u8::try_from(day).ok()? })
    }

    /// The date `n` days later (earlier for negative `n`), if it is within the years 1 to
    /// 9999.
    pub fn add_days(self, n: i64) -> Option<Self> {
        Self::from_days_since_epoch(self.days_since_epoch().checked_add(n)?)
    }

    /// How many days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(self, later: Self) -> i64 {
        later.days_since_epoch() - self.days_since_epoch()
    }
}

fn invalid_date(year: u16, month: u8, day: u8) -> Error {
    Error::Invalid(format!("{year:04}-{month:02}-{day:02} is not a calendar date"))
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = Error;

    /// Parses exactly `YYYY-MM-DD` (the form WeChat sends and expects).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Invalid(format!("{s:?} is not a date of the form YYYY-MM-DD"));
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| b[r].iter().fold(0u16, |n, c| n * 10 + u16::from(c - b'0'));
        let (year, month, day) = (num(0..4), num(5..7), num(8..10));
        // Month and day have two digits, so they fit in a u8.
        Self::new(year, month as u8, day as u8)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The endpoints of this area, in one place.
mod path {
    pub(super) const USER_SUMMARY: &str = "/datacube/getusersummary";
    pub(super) const USER_CUMULATE: &str = "/datacube/getusercumulate";
    pub(super) const ARTICLE_SUMMARY: &str = "/datacube/getarticlesummary";
    pub(super) const ARTICLE_TOTAL: &str = "/datacube/getarticletotal";
    pub(super) const USER_READ: &str = "/datacube/getuserread";
    pub(super) const USER_READ_HOUR: &str = "/datacube/getuserreadhour";
    pub(super) const USER_SHARE: &str = "/datacube/getusershare";
    pub(super) const USER_SHARE_HOUR: &str = "/datacube/getusersharehour";
    pub(super) const UPSTREAM_MSG: &str = "/datacube/getupstreammsg";
    pub(super) const UPSTREAM_MSG_HOUR: &str = "/datacube/getupstreammsghour";
    pub(super) const UPSTREAM_MSG_WEEK: &str = "/datacube/getupstreammsgweek";
    pub(super) const UPSTREAM_MSG_MONTH: &str = "/datacube/getupstreammsgmonth";
    pub(super) const UPSTREAM_MSG_DIST: &str = "/datacube/getupstreammsgdist";
    pub(super) const UPSTREAM_MSG_DIST_WEEK: &str = "/datacube/getupstreammsgdistweek";
    pub(super) const UPSTREAM_MSG_DIST_MONTH: &str = "/datacube/getupstreammsgdistmonth";
    pub(super) const INTERFACE_SUMMARY: &str = "/datacube/getinterfacesummary";
    pub(super) const INTERFACE_SUMMARY_HOUR: &str = "/datacube/getinterfacesummaryhour";
}

/// The data cube reports, with their paths and maximum spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Report {
    /// `getusersummary`: follows and unfollows per day and source (7 days).
    UserSummary,
    /// `getusercumulate`: total followers per day (7 days).
    UserCumulate,
    /// `getarticlesummary`: per-article reading on one day (1 day).
    ArticleSummary,
    /// `getarticletotal`: cumulative figures of the articles sent on one day (1 day).
    ArticleTotal,
    /// `getuserread`: reading per day and entry point (3 days).
    UserRead,
    /// `getuserreadhour`: reading per hour (1 day).
    UserReadHour,
    /// `getusershare`: shares per day and scene (7 days).
    UserShare,
    /// `getusersharehour`: shares per hour (1 day).
    UserShareHour,
    /// `getupstreammsg`: messages users sent, per day and type (7 days).
    UpstreamMsg,
    /// `getupstreammsghour`: messages per hour (1 day).
    UpstreamMsgHour,
    /// `getupstreammsgweek`: messages per week, dated on Mondays (30 days).
    UpstreamMsgWeek,
    /// `getupstreammsgmonth`: messages per month, dated on the 1st (30 days).
    UpstreamMsgMonth,
    /// `getupstreammsgdist`: users by messages sent per day (15 days).
    UpstreamMsgDist,
    /// `getupstreammsgdistweek`: users by messages sent per week (30 days; see the module
    /// notes on the disagreeing sources).
    UpstreamMsgDistWeek,
    /// `getupstreammsgdistmonth`: users by messages sent per month (30 days; see the module
    /// notes).
    UpstreamMsgDistMonth,
    /// `getinterfacesummary`: callbacks to your server per day (30 days).
    InterfaceSummary,
    /// `getinterfacesummaryhour`: callbacks per hour (1 day).
    InterfaceSummaryHour,
}

impl Report {
    /// Every report.
    pub const ALL: [Self; 17] = [
        Self::UserSummary,
        Self::UserCumulate,
        Self::ArticleSummary,
        Self::ArticleTotal,
        Self::UserRead,
        Self::UserReadHour,
        Self::UserShare,
        Self::UserShareHour,
        Self::UpstreamMsg,
        Self::UpstreamMsgHour,
        Self::UpstreamMsgWeek,
        Self::UpstreamMsgMonth,
        Self::UpstreamMsgDist,
        Self::UpstreamMsgDistWeek,
        Self::UpstreamMsgDistMonth,
        Self::InterfaceSummary,
        Self::InterfaceSummaryHour,
    ];

    /// WeChat's name of the report (`getusersummary`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::UserSummary => "getusersummary",
            Self::UserCumulate => "getusercumulate",
            Self::ArticleSummary => "getarticlesummary",
            Self::ArticleTotal => "getarticletotal",
            Self::UserRead => "getuserread",
            Self::UserReadHour => "getuserreadhour",
            Self::UserShare => "getusershare",
            Self::UserShareHour => "getusersharehour",
            Self::UpstreamMsg => "getupstreammsg",
            Self::UpstreamMsgHour => "getupstreammsghour",
            Self::UpstreamMsgWeek => "getupstreammsgweek",
            Self::UpstreamMsgMonth => "getupstreammsgmonth",
            Self::UpstreamMsgDist => "getupstreammsgdist",
            Self::UpstreamMsgDistWeek => "getupstreammsgdistweek",
            Self::UpstreamMsgDistMonth => "getupstreammsgdistmonth",
            Self::InterfaceSummary => "getinterfacesummary",
            Self::InterfaceSummaryHour => "getinterfacesummaryhour",
        }
    }

    /// The API path (`/datacube/getusersummary`).
    pub const fn path(self) -> &'static str {
        match self {
            Self::UserSummary => path::USER_SUMMARY,
            Self::UserCumulate => path::USER_CUMULATE,
            Self::ArticleSummary => path::ARTICLE_SUMMARY,
            Self::ArticleTotal => path::ARTICLE_TOTAL,
            Self::UserRead => path::USER_READ,
            Self::UserReadHour => path::USER_READ_HOUR,
            Self::UserShare => path::USER_SHARE,
            Self::UserShareHour => path::USER_SHARE_HOUR,
            Self::UpstreamMsg => path::UPSTREAM_MSG,
            Self::UpstreamMsgHour => path::UPSTREAM_MSG_HOUR,
            Self::UpstreamMsgWeek => path::UPSTREAM_MSG_WEEK,
            Self::UpstreamMsgMonth => path::UPSTREAM_MSG_MONTH,
            Self::UpstreamMsgDist => path::UPSTREAM_MSG_DIST,
            Self::UpstreamMsgDistWeek => path::UPSTREAM_MSG_DIST_WEEK,
            Self::UpstreamMsgDistMonth => path::UPSTREAM_MSG_DIST_MONTH,
            Self::InterfaceSummary => path::INTERFACE_SUMMARY,
            Self::InterfaceSummaryHour => path::INTERFACE_SUMMARY_HOUR,
        }
    }

    /// The most days one call may cover, both ends included (1 means `begin == end`).
    pub const fn max_days(self) -> u32 {
        match self {
            Self::ArticleSummary
            | Self::ArticleTotal
            | Self::UserReadHour
            | Self::UserShareHour
            | Self::UpstreamMsgHour
            | Self::InterfaceSummaryHour => 1,
            Self::UserRead => 3,
            Self::UserSummary | Self::UserCumulate | Self::UserShare | Self::UpstreamMsg => 7,
            Self::UpstreamMsgDist => 15,
            Self::UpstreamMsgWeek
            | Self::UpstreamMsgMonth
            | Self::UpstreamMsgDistWeek
            | Self::UpstreamMsgDistMonth
            | Self::InterfaceSummary => 30,
        }
    }

    /// Checks that `begin..=end` is a range this report accepts.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `begin` is after `end` or the range spans more than
    /// [`max_days`](Self::max_days).
    pub fn check(self, begin: Date, end: Date) -> Result<()> {
        let days = begin.days_until(end) + 1;
        if days < 1 {
            return Err(Error::Invalid(format!(
                "{}: begin_date {begin} is after end_date {end}",
                self.name()
            )));
        }
        let max = self.max_days();
        if days > i64::from(max) {
            return Err(Error::Invalid(format!(
                "{name} allows at most {max} day{s} per call, but {begin}..={end} spans {days} days \
                 (WeChat would answer 61501 date range error); split the range",
                name = self.name(),
                s = if max == 1 { "" } else { "s" },
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fields of a row that this crate does not know (WeChat adds fields over time).
pub type Extra = BTreeMap<String, Value>;

/// A row of `getusersummary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The day.
    pub ref_date: Date,
    /// Where the users came from: 0 other (total of the other sources), 1 search, 17
    /// business card, 30 QR code, 57 account name in an article, 100 WeChat ads, 161
    /// reprinted by others, 149 mini program, 200 Channels, 201 live stream, …
    #[serde(default)]
    pub user_source: u32,
    /// New followers.
    #[serde(default)]
    pub new_user: u64,
    /// Unfollows (`new_user - cancel_user` is the net growth).
    #[serde(default)]
    pub cancel_user: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A row of `getusercumulate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserCumulate {
    /// The day.
    pub ref_date: Date,
    /// Followers in all at the end of the day.
    #[serde(default)]
    pub cumulate_user: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A row of `getarticlesummary`: one article's reading on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleSummary {
    /// The day.
    pub ref_date: Date,
    /// `<msg_data_id>_<n>`: the mass message's `msg_data_id` and the article's position in
    /// it, counted from 1 (see [`ArticleSummary::article`]).
    pub msgid: String,
    /// The article's title.
    #[serde(default)]
    pub title: String,
    /// Readers of the article page.
    #[serde(default)]
    pub int_page_read_user: u64,
    /// Reads of the article page.
    #[serde(default)]
    pub int_page_read_count: u64,
    /// Readers of the "read more" (original) page; 0 when there is none.
    #[serde(default)]
    pub ori_page_read_user: u64,
    /// Reads of the original page.
    #[serde(default)]
    pub ori_page_read_count: u64,
    /// Users who shared it.
    #[serde(default)]
    pub share_user: u64,
    /// Shares.
    #[serde(default)]
    pub share_count: u64,
    /// Users who added it to favourites.
    #[serde(default)]
    pub add_to_fav_user: u64,
    /// Additions to favourites.
    #[serde(default)]
    pub add_to_fav_count: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ArticleSummary {
    /// The `msg_data_id` and the 0-based article index (as the comment APIs take them)
    /// parsed from [`msgid`](Self::msgid).
    pub fn article(&self) -> Option<(i64, u32)> {
        parse_msgid(&self.msgid)
    }
}

fn parse_msgid(msgid: &str) -> Option<(i64, u32)> {
    let (id, n) = msgid.split_once('_')?;
    let n: u32 = n.parse().ok()?;
    Some((id.parse().ok()?, n.checked_sub(1)?))
}

/// A row of `getarticletotal`: an article sent on the requested day, with a cumulative
/// figure for each day since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleTotal {
    /// The day the article was sent.
    pub ref_date: Date,
    /// `<msg_data_id>_<n>` as in [`ArticleSummary::msgid`].
    pub msgid: String,
    /// The article's title.
    #[serde(default)]
    pub title: String,
    /// One entry per day since sending (up to 7 days).
    #[serde(default)]
    pub details: Vec<ArticleTotalDetail>,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ArticleTotal {
    /// The `msg_data_id` and 0-based article index parsed from [`msgid`](Self::msgid).
    pub fn article(&self) -> Option<(i64, u32)> {
        parse_msgid(&self.msgid)
    }
}

/// The cumulative figures of an article up to [`stat_date`](Self::stat_date).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleTotalDetail {
    /// The day the figures were taken (`ref_date` of the row is the day of sending).
    pub stat_date: Date,
    /// Users the message was delivered to (about the number of followers).
    #[serde(default)]
    pub target_user: u64,
    /// Readers of the article page.
    #[serde(default)]
    pub int_page_read_user: u64,
    /// Reads of the article page.
    #[serde(default)]
    pub int_page_read_count: u64,
    /// Readers of the original page.
    #[serde(default)]
    pub ori_page_read_user: u64,
    /// Reads of the original page.
    #[serde(default)]
    pub ori_page_read_count: u64,
    /// Users who shared it.
    #[serde(default)]
    pub share_user: u64,
    /// Shares.
    #[serde(default)]
    pub share_count: u64,
    /// Users who added it to favourites.
    #[serde(default)]
    pub add_to_fav_user: u64,
    /// Additions to favourites.
    #[serde(default)]
    pub add_to_fav_count: u64,
    /// Readers coming from the account's chat.
    #[serde(default)]
    pub int_page_from_session_read_user: u64,
    /// Reads from the account's chat.
    #[serde(default)]
    pub int_page_from_session_read_count: u64,
    /// Readers coming from the history page.
    #[serde(default)]
    pub int_page_from_hist_msg_read_user: u64,
    /// Reads from the history page.
    #[serde(default)]
    pub int_page_from_hist_msg_read_count: u64,
    /// Readers coming from Moments.
    #[serde(default)]
    pub int_page_from_feed_read_user: u64,
    /// Reads from Moments.
    #[serde(default)]
    pub int_page_from_feed_read_count: u64,
    /// Readers coming from a friend's forward.
    #[serde(default)]
    pub int_page_from_friends_read_user: u64,
    /// Reads from friends' forwards.
    #[serde(default)]
    pub int_page_from_friends_read_count: u64,
    /// Readers coming from elsewhere.
    #[serde(default)]
    pub int_page_from_other_read_user: u64,
    /// Reads from elsewhere.
    #[serde(default)]
    pub int_page_from_other_read_count: u64,
    /// Users who shared it to Moments from the account's chat.
    #[serde(default)]
    pub feed_share_from_session_user: u64,
    /// Shares to Moments from the account's chat.
    #[serde(default)]
    pub feed_share_from_session_cnt: u64,
    /// Users who shared it to Moments from Moments.
    #[serde(default)]
    pub feed_share_from_feed_user: u64,
    /// Shares to Moments from Moments.
    #[serde(default)]
    pub feed_share_from_feed_cnt: u64,
    /// Users who shared it to Moments from elsewhere.
    #[serde(default)]
    pub feed_share_from_other_user: u64,
    /// Shares to Moments from elsewhere.
    #[serde(default)]
    pub feed_share_from_other_cnt: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `user_source` of the row that sums every entry point in `getuserread(hour)`.
pub const ALL_SOURCES: u32 = 99_999_999;

/// A row of `getuserread` or `getuserreadhour`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRead {
    /// The day.
    pub ref_date: Date,
    /// The hour as WeChat writes it (`0`, `100`, … `2300`; `getuserreadhour` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_hour: Option<u32>,
    /// Where readers came from: [`ALL_SOURCES`] all, 0 chat, 1 friends, 2 Moments, 4
    /// history page, 5 other, 6 Top Stories, 7 Search. Original-page and favourite figures
    /// are only given on the [`ALL_SOURCES`] row.
    #[serde(default)]
    pub user_source: u32,
    /// Readers of article pages.
    #[serde(default)]
    pub int_page_read_user: u64,
    /// Reads of article pages.
    #[serde(default)]
    pub int_page_read_count: u64,
    /// Readers of original pages.
    #[serde(default)]
    pub ori_page_read_user: u64,
    /// Reads of original pages.
    #[serde(default)]
    pub ori_page_read_count: u64,
    /// Users who shared.
    #[serde(default)]
    pub share_user: u64,
    /// Shares.
    #[serde(default)]
    pub share_count: u64,
    /// Users who added to favourites.
    #[serde(default)]
    pub add_to_fav_user: u64,
    /// Additions to favourites.
    #[serde(default)]
    pub add_to_fav_count: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl UserRead {
    /// The hour of day (0–23) of an hourly row.
    pub fn hour(&self) -> Option<u32> {
        self.ref_hour.map(|h| h / 100)
    }
}

/// A row of `getusershare` or `getusersharehour`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserShare {
    /// The day.
    pub ref_date: Date,
    /// The hour (`0`…`2300`; `getusersharehour` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_hour: Option<u32>,
    /// Where it was shared: 1 to a friend, 2 to Moments, 255 other.
    #[serde(default)]
    pub share_scene: u32,
    /// Shares.
    #[serde(default)]
    pub share_count: u64,
    /// Users who shared.
    #[serde(default)]
    pub share_user: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl UserShare {
    /// The hour of day (0–23) of an hourly row.
    pub fn hour(&self) -> Option<u32> {
        self.ref_hour.map(|h| h / 100)
    }
}

/// A row of `getupstreammsg`, `…hour`, `…week` or `…month`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamMsg {
    /// The day; for weekly and monthly rows the Monday or the 1st that starts the period.
    pub ref_date: Date,
    /// The hour (`0`…`2300`; `getupstreammsghour` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_hour: Option<u32>,
    /// 1 text, 2 image, 3 voice, 4 video, 6 third-party app message (link).
    #[serde(default)]
    pub msg_type: u32,
    /// Users who sent messages of this type.
    #[serde(default)]
    pub msg_user: u64,
    /// Messages sent.
    #[serde(default)]
    pub msg_count: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl UpstreamMsg {
    /// The hour of day (0–23) of an hourly row.
    pub fn hour(&self) -> Option<u32> {
        self.ref_hour.map(|h| h / 100)
    }
}

/// A row of `getupstreammsgdist`, `…week` or `…month`: how many users sent how many
/// messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamMsgDist {
    /// The day, or the Monday or the 1st that starts the period.
    pub ref_date: Date,
    /// Messages per user in the period: 0 none, 1 one to five, 2 six to ten, 3 more than ten.
    #[serde(default)]
    pub count_interval: u32,
    /// Users in this interval.
    #[serde(default)]
    pub msg_user: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A row of `getinterfacesummary` or `getinterfacesummaryhour`: how WeChat's calls to your
/// server went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterfaceSummary {
    /// The day.
    pub ref_date: Date,
    /// The hour (`0`…`2300`; `getinterfacesummaryhour` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_hour: Option<u32>,
    /// Messages your server answered passively (calls to the callback URL).
    #[serde(default)]
    pub callback_count: u64,
    /// Calls that failed.
    #[serde(default)]
    pub fail_count: u64,
    /// Total time of the calls, ms (divide by `callback_count` for the mean).
    #[serde(default)]
    pub total_time_cost: u64,
    /// The slowest call, ms.
    #[serde(default)]
    pub max_time_cost: u64,
    /// Undocumented fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InterfaceSummary {
    /// The hour of day (0–23) of an hourly row.
    pub fn hour(&self) -> Option<u32> {
        self.ref_hour.map(|h| h / 100)
    }
}

#[derive(Deserialize)]
struct List<T> {
    // A missing `list` is `None` too.
    list: Option<Vec<T>>,
}

impl Client {
    /// The data cube reports: [`DataCubeApi`].
    pub fn datacube(&self) -> DataCubeApi<'_> {
        DataCubeApi(self)
    }
}

/// The data cube reports (`/datacube/*`), from [`Client::datacube`].
#[derive(Clone, Copy, Debug)]
pub struct DataCubeApi<'c>(&'c Client);

impl DataCubeApi<'_> {
    /// Any data cube report, decoded into your own row type (the typed methods below
    /// cover every documented report). The span is checked before the request.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a range the report does not accept (nothing is sent);
    /// otherwise as [`Client::get`] (`61500` date format error, `61501` date range error,
    /// `61503` data not ready).
    pub async fn report<T: DeserializeOwned>(self, report: Report, begin: Date, end: Date) -> Result<Vec<T>> {
        report.check(begin, end)?;
        let body = json!({ "begin_date": begin, "end_date": end });
        let list: List<T> = self.0.post_as(report.path(), &[], &body).await?;
        Ok(list.list.unwrap_or_default())
    }

    /// Follows and unfollows per day and source (`getusersummary`, at most 7 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_summary(self, begin: Date, end: Date) -> Result<Vec<UserSummary>> {
        self.report(Report::UserSummary, begin, end).await
    }

    /// Followers in all at the end of each day (`getusercumulate`, at most 7 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_cumulate(self, begin: Date, end: Date) -> Result<Vec<UserCumulate>> {
        self.report(Report::UserCumulate, begin, end).await
    }

    /// Each mass-sent article's reading on one day (`getarticlesummary`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn article_summary(self, begin: Date, end: Date) -> Result<Vec<ArticleSummary>> {
        self.report(Report::ArticleSummary, begin, end).await
    }

    /// The articles sent on one day with their cumulative figures since
    /// (`getarticletotal`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn article_total(self, begin: Date, end: Date) -> Result<Vec<ArticleTotal>> {
        self.report(Report::ArticleTotal, begin, end).await
    }

    /// Reading per day and entry point (`getuserread`, at most 3 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_read(self, begin: Date, end: Date) -> Result<Vec<UserRead>> {
        self.report(Report::UserRead, begin, end).await
    }

    /// Reading per hour and entry point (`getuserreadhour`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_read_hour(self, begin: Date, end: Date) -> Result<Vec<UserRead>> {
        self.report(Report::UserReadHour, begin, end).await
    }

    /// Shares per day and scene (`getusershare`, at most 7 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_share(self, begin: Date, end: Date) -> Result<Vec<UserShare>> {
        self.report(Report::UserShare, begin, end).await
    }

    /// Shares per hour and scene (`getusersharehour`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn user_share_hour(self, begin: Date, end: Date) -> Result<Vec<UserShare>> {
        self.report(Report::UserShareHour, begin, end).await
    }

    /// Messages users sent, per day and type (`getupstreammsg`, at most 7 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsg>> {
        self.report(Report::UpstreamMsg, begin, end).await
    }

    /// Messages per hour and type (`getupstreammsghour`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_hour(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsg>> {
        self.report(Report::UpstreamMsgHour, begin, end).await
    }

    /// Messages per week and type (`getupstreammsgweek`, at most 30 days): rows are dated on
    /// the Mondays within the range, for weeks that are over.
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_week(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsg>> {
        self.report(Report::UpstreamMsgWeek, begin, end).await
    }

    /// Messages per month and type (`getupstreammsgmonth`, at most 30 days): rows are dated
    /// on the 1st of each month within the range, for months that are over.
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_month(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsg>> {
        self.report(Report::UpstreamMsgMonth, begin, end).await
    }

    /// Users by messages sent per day (`getupstreammsgdist`, at most 15 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_dist(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsgDist>> {
        self.report(Report::UpstreamMsgDist, begin, end).await
    }

    /// Users by messages sent per week (`getupstreammsgdistweek`, at most 30 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_dist_week(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsgDist>> {
        self.report(Report::UpstreamMsgDistWeek, begin, end).await
    }

    /// Users by messages sent per month (`getupstreammsgdistmonth`, at most 30 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn upstream_msg_dist_month(self, begin: Date, end: Date) -> Result<Vec<UpstreamMsgDist>> {
        self.report(Report::UpstreamMsgDistMonth, begin, end).await
    }

    /// WeChat's calls to your server per day (`getinterfacesummary`, at most 30 days).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn interface_summary(self, begin: Date, end: Date) -> Result<Vec<InterfaceSummary>> {
        self.report(Report::InterfaceSummary, begin, end).await
    }

    /// WeChat's calls to your server per hour (`getinterfacesummaryhour`, 1 day).
    ///
    /// # Errors
    /// As [`DataCubeApi::report`].
    pub async fn interface_summary_hour(self, begin: Date, end: Date) -> Result<Vec<InterfaceSummary>> {
        self.report(Report::InterfaceSummaryHour, begin, end).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_leap_years_and_eras() {
        let epoch = Date::new(1970, 1, 1).unwrap();
        assert_eq!(epoch.days_since_epoch(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().days_since_epoch(), 11_017);
        for days in (-719_162..=2_932_896).step_by(997) {
            let d = Date::from_days_since_epoch(days).unwrap();
            assert_eq!(d.days_since_epoch(), days, "{d}");
            assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
        }
        assert_eq!(Date::from_days_since_epoch(-719_163), None);
        assert_eq!(Date::from_days_since_epoch(2_932_897), None);
        assert_eq!(Date::MIN.days_since_epoch(), -719_162);
        assert_eq!(Date::MAX.days_since_epoch(), 2_932_896);
        assert_eq!(Date::from_unix_ms(i64::MIN), Date::MIN);
        assert_eq!(Date::from_unix_ms(i64::MAX), Date::MAX);
    }

    #[test]
    fn parsing_is_strict() {
        for bad in [
            "",
            "2024-1-01",
            "2024-01-1",
            "20240101",
            "2024/01/01",
            "+024-01-01",
            "2024-01-01 ",
            "0000-01-01",
        ] {
            let err = bad.parse::<Date>().unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{bad:?}");
        }
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("1900-02-29".parse::<Date>().is_err());
        assert!("2000-02-29".parse::<Date>().is_ok());
        assert!("2024-04-31".parse::<Date>().is_err());
        assert!(Date::new(2024, 13, 1).is_err());
        let d: Date = serde_json::from_value(json!("2014-12-07")).unwrap();
        assert_eq!(serde_json::to_value(d).unwrap(), json!("2014-12-07"));
        assert!(serde_json::from_value::<Date>(json!("2014-12-32")).is_err());
    }

    #[test]
    fn spans_follow_the_documented_table() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        for r in Report::ALL {
            let max = i64::from(r.max_days());
            let begin = d("2024-12-20");
            assert!(r.check(begin, begin.add_days(max - 1).unwrap()).is_ok(), "{r}");
            let err = r.check(begin, begin.add_days(max).unwrap()).unwrap_err().to_string();
            assert!(err.contains(r.name()) && err.contains(&format!("at most {max} day")), "{err}");
            assert!(r.check(begin, begin.add_days(-1).unwrap()).unwrap_err().to_string().contains("after"));
            assert_eq!(r.path(), format!("/datacube/{}", r.name()));
        }
        assert_eq!(Report::UserRead.max_days(), 3);
        assert_eq!(Report::UpstreamMsgDist.max_days(), 15);
        assert_eq!(Report::InterfaceSummary.max_days(), 30);
    }

    #[test]
    fn rows_keep_unknown_fields_and_default_missing_counters() {
        let row: UserRead = serde_json::from_value(json!({
            "ref_date": "2020-02-18", "user_source": 0, "int_page_read_user": 3,
            "int_page_read_count": 5, "brand_new_field": [1, 2],
        }))
        .unwrap();
        assert_eq!((row.int_page_read_count, row.ori_page_read_user, row.ref_hour), (5, 0, None));
        assert_eq!(row.extra["brand_new_field"], json!([1, 2]));
        let list: List<UserSummary> = serde_json::from_value(json!({ "list": null })).unwrap();
        assert!(list.list.unwrap_or_default().is_empty());
        let row: ArticleSummary =
            serde_json::from_value(json!({ "ref_date": "2014-12-08", "msgid": "10000050_1" })).unwrap();
        assert_eq!(row.article(), Some((10_000_050, 0)));
        assert_eq!(parse_msgid("12003_0"), None);
    }
}
