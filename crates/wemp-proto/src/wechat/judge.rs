//! How WeChat reads a server's answer: what makes it show the user its error banner
//! ([`ERROR_BANNER`]), and what deviates from the docs but is accepted in practice.
//!
//! ```
//! use wemp_proto::wechat::judge;
//! use wemp_proto::reply::ReplyMessage;
//! use wemp_proto::{Header, Reply};
//! let now = 1_700_000_000;
//! let header = Header { to: "o1".into(), from: "gh_1".into(), create_time: now * 1000, agent_id: None };
//! let reply = ReplyMessage { header: Some(header), reply: Reply::text("hi") };
//! let verdict = judge::reply(&reply, "o1", "gh_1", true, now);
//! assert!(!verdict.user_sees_error());
//! assert_eq!(verdict.warnings, [judge::Problem::CreateTimeMillis { create_time: now * 1000 }]);
//! assert!(verdict.warnings[0].to_string().contains("milliseconds"));
//! ```
//!
//! Each finding is a [`Problem`] with its parameters: its `Display` (and its JSON, a string)
//! is English; [`Problem::code`] names its kind for words in another language.

use crate::envelope::Mode;
use crate::reply::{ReplyContext, ReplyMessage};

/// What WeChat shows the user when the server fails to answer properly.
pub const ERROR_BANNER: &str = "该公众号暂时无法提供服务，请稍后再试";

/// Something WeChat refuses about a reply (it shows [`ERROR_BANNER`]) or notices but
/// accepts (a warning). `Display` words it in English; serialized, it is that string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// ToUserName and FromUserName are swapped.
    Swapped {
        /// The user's OpenID (the expected ToUserName).
        openid: String,
        /// The account's original id (the expected FromUserName).
        account: String,
    },
    /// ToUserName is not the user's OpenID.
    WrongTo {
        /// What the reply says.
        found: String,
        /// The user's OpenID.
        expected: String,
    },
    /// FromUserName is not the account's original id.
    WrongFrom {
        /// What the reply says.
        found: String,
        /// The account's original id.
        expected: String,
    },
    /// A reply WeChat refuses as written: a news reply beyond the article limits (one
    /// answering a message, eight otherwise), an empty media id.
    Invalid {
        /// What is wrong.
        error: crate::reply::ReplyError,
    },
    /// The request came in safe mode but the reply is not encrypted.
    NotEncrypted,
    /// The request came in plain mode but the reply is encrypted.
    Encrypted,
    /// A warning: CreateTime in milliseconds.
    CreateTimeMillis {
        /// The reply's CreateTime.
        create_time: i64,
    },
    /// A warning: CreateTime more than an hour from now.
    CreateTimeFar {
        /// The reply's CreateTime.
        create_time: i64,
        /// Now, in seconds.
        now: i64,
    },
    /// A warning: a Mini Program answered with a passive reply, which WeChat drops.
    MiniprogramPassive,
}

impl Problem {
    /// The kind, for words in another language: `wrong-direction-swapped`, `wrong-to`,
    /// `wrong-from`, `news-limits`, `invalid-reply`, `not-encrypted`, `encrypted`, `create-time-ms`,
    /// `create-time-far`, `miniprogram-passive`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Swapped { .. } => "wrong-direction-swapped",
            Self::WrongTo { .. } => "wrong-to",
            Self::WrongFrom { .. } => "wrong-from",
            Self::Invalid { error: crate::reply::ReplyError::ArticleCount { .. } } => "news-limits",
            Self::Invalid { .. } => "invalid-reply",
            Self::NotEncrypted => "not-encrypted",
            Self::Encrypted => "encrypted",
            Self::CreateTimeMillis { .. } => "create-time-ms",
            Self::CreateTimeFar { .. } => "create-time-far",
            Self::MiniprogramPassive => "miniprogram-passive",
        }
    }

    /// One example of every problem, and of every [`ReplyError`](crate::reply::ReplyError)
    /// inside [`Problem::Invalid`] (a news reply beyond the limits both answering a message
    /// and an event), for tests that hold each kind to its words in another language: a
    /// new kind added here reaches every such test at once.
    ///
    /// ```
    /// use wemp_proto::wechat::Problem;
    ///
    /// let codes: Vec<&str> = Problem::examples().iter().map(Problem::code).collect();
    /// assert!(codes.contains(&"wrong-direction-swapped") && codes.contains(&"miniprogram-passive"));
    /// ```
    pub fn examples() -> Vec<Self> {
        use crate::reply::ReplyError;
        // Every variant is named here without a wildcard: a new one does not compile until
        // it has an example below.
        fn listed(p: &Problem) {
            match p {
                Problem::Swapped { .. }
                | Problem::WrongTo { .. }
                | Problem::WrongFrom { .. }
                | Problem::Invalid {
                    error:
                        ReplyError::ArticleCount { .. }
                        | ReplyError::EmptyField { .. }
                        | ReplyError::InvalidChar { .. },
                }
                | Problem::NotEncrypted
                | Problem::Encrypted
                | Problem::CreateTimeMillis { .. }
                | Problem::CreateTimeFar { .. }
                | Problem::MiniprogramPassive => {}
            }
        }
        let s = String::from;
        let articles = |count, limit, answering_message| Self::Invalid {
            error: ReplyError::ArticleCount { count, limit, answering_message },
        };
        let all = vec![
            Self::Swapped { openid: s("o_user"), account: s("gh_account") },
            Self::WrongTo { found: s("o_other"), expected: s("o_user") },
            Self::WrongFrom { found: s("gh_other"), expected: s("gh_account") },
            articles(2, 1, true),
            articles(9, 8, false),
            Self::Invalid { error: ReplyError::EmptyField { field: "MediaId" } },
            Self::Invalid { error: ReplyError::InvalidChar { field: s("Content"), ch: '\u{1}' } },
            Self::NotEncrypted,
            Self::Encrypted,
            Self::CreateTimeMillis { create_time: 1_700_000_000_000 },
            Self::CreateTimeFar { create_time: 1, now: 1_700_000_000 },
            Self::MiniprogramPassive,
        ];
        all.iter().for_each(listed);
        all
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Swapped { openid, account } => write!(
                f,
                "wrong direction: ToUserName/FromUserName are swapped (a reply goes To the user {openid} From \
                 the account {account})"
            ),
            Self::WrongTo { found, expected } => {
                write!(f, "wrong direction: ToUserName is {found:?}, expected the user's OpenID {expected:?}")
            }
            Self::WrongFrom { found, expected } => write!(
                f,
                "wrong direction: FromUserName is {found:?}, expected the account's original id {expected:?}"
            ),
            Self::Invalid { error: error @ crate::reply::ReplyError::ArticleCount { .. } } => {
                write!(f, "news article limits: {error}")
            }
            Self::Invalid { error } => write!(f, "invalid reply: {error}"),
            Self::NotEncrypted => f.write_str("the request came in safe mode but the reply is not encrypted"),
            Self::Encrypted => f.write_str("the request came in plain mode but the reply is encrypted"),
            Self::CreateTimeMillis { create_time } => write!(
                f,
                "CreateTime {create_time} is in milliseconds; the docs say seconds since the epoch (WeChat \
                 shows the reply anyway)"
            ),
            Self::CreateTimeFar { create_time, now } => write!(
                f,
                "CreateTime {create_time} is more than an hour from now ({now}); the docs say the current time \
                 in seconds (WeChat shows the reply anyway)"
            ),
            Self::MiniprogramPassive => f.write_str(
                "a Mini Program takes no passive reply but a transfer to customer service: WeChat drops this \
                 one and the user sees nothing; answer `success` and send it through the customer-service API \
                 (cgi-bin/message/custom/send)",
            ),
        }
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// WeChat's verdict on a readable reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    /// What makes WeChat show [`ERROR_BANNER`] instead of the reply; empty when it is shown.
    pub problems: Vec<Problem>,
    /// What deviates from the docs although WeChat shows the reply anyway.
    pub warnings: Vec<Problem>,
}

impl Judgement {
    /// Whether the user sees [`ERROR_BANNER`].
    pub fn user_sees_error(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// What WeChat refuses about a readable reply's mode: plain to a safe-mode request, or
/// encrypted to a plain one (WeChat shows [`ERROR_BANNER`] for both). For replies only, not
/// for `success`.
pub fn mode_problems(request: Mode, encrypted: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    if request == Mode::Safe && !encrypted {
        problems.push(Problem::NotEncrypted);
    }
    if request == Mode::Plain && encrypted {
        problems.push(Problem::Encrypted);
    }
    problems
}

/// Judges a decoded reply as WeChat does: its direction (To the user's `openid`, From the
/// account's original id `account`) and the news article limits (one when
/// `answering_message`, else eight) are problems; a `CreateTime` in milliseconds or far from
/// `now` is a warning — the docs say seconds, but WeChat shows such replies (node `wechat`
/// writes milliseconds; node-webot/wechat#175).
pub fn reply(
    message: &ReplyMessage,
    openid: &str,
    account: &str,
    answering_message: bool,
    now: i64,
) -> Judgement {
    let mut verdict = Judgement::default();
    let Some(header) = &message.header else { return verdict };
    let problems = &mut verdict.problems;
    if header.to == account && header.from == openid {
        problems.push(Problem::Swapped { openid: openid.to_owned(), account: account.to_owned() });
    } else {
        if header.to != openid {
            problems.push(Problem::WrongTo { found: header.to.clone(), expected: openid.to_owned() });
        }
        if header.from != account {
            problems.push(Problem::WrongFrom { found: header.from.clone(), expected: account.to_owned() });
        }
    }
    let ctx =
        ReplyContext { to: openid.to_owned(), from: account.to_owned(), create_time: now, answering_message };
    if let Err(e) = message.reply.validate(&ctx) {
        problems.push(Problem::Invalid { error: e });
    }
    if header.create_time > 100_000_000_000 {
        verdict.warnings.push(Problem::CreateTimeMillis { create_time: header.create_time });
    } else if (header.create_time - now).abs() > 3600 {
        verdict.warnings.push(Problem::CreateTimeFar { create_time: header.create_time, now });
    }
    verdict
}

/// Why a 2xx answer could not be read as a reply (WeChat shows [`ERROR_BANNER`]).
/// `Display` words it in English.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreadable {
    /// The encrypted reply's MsgSignature is wrong.
    BadSignature,
    /// The encrypted reply does not decrypt.
    NoDecrypt {
        /// Why, in English.
        detail: String,
        /// WeChat's reference code (`-40007` …).
        code: i32,
    },
    /// The encrypted envelope is invalid.
    Envelope {
        /// Why, in English.
        detail: String,
    },
    /// The reply is not XML.
    Xml {
        /// The parser's error.
        detail: String,
        /// The body's first 80 characters.
        snippet: String,
    },
    /// XML, but not a passive reply.
    NotReply {
        /// Why, in English.
        detail: String,
        /// The body's first 80 characters.
        snippet: String,
    },
    /// Anything else.
    Other {
        /// The error, in English.
        detail: String,
    },
}

impl Unreadable {
    /// The kind, for words in another language: `bad-signature`, `no-decrypt`, `envelope`,
    /// `xml`, `not-reply`, `other`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature => "bad-signature",
            Self::NoDecrypt { .. } => "no-decrypt",
            Self::Envelope { .. } => "envelope",
            Self::Xml { .. } => "xml",
            Self::NotReply { .. } => "not-reply",
            Self::Other { .. } => "other",
        }
    }

    /// One example of every kind, for tests that hold each to its words in another
    /// language (as [`Problem::examples`]).
    pub fn examples() -> Vec<Self> {
        // Every variant without a wildcard: a new one does not compile until it has an example.
        fn listed(u: &Unreadable) {
            match u {
                Unreadable::BadSignature
                | Unreadable::NoDecrypt { .. }
                | Unreadable::Envelope { .. }
                | Unreadable::Xml { .. }
                | Unreadable::NotReply { .. }
                | Unreadable::Other { .. } => {}
            }
        }
        let s = String::from;
        let all = vec![
            Self::BadSignature,
            Self::NoDecrypt { detail: s("bad padding"), code: -40007 },
            Self::Envelope { detail: s("no <Encrypt>") },
            Self::Xml { detail: s("unexpected end"), snippet: s("<xm") },
            Self::NotReply { detail: s("no MsgType"), snippet: s("<xml/>") },
            Self::Other { detail: s("odd") },
        ];
        all.iter().for_each(listed);
        all
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadSignature => f.write_str(
                "bad MsgSignature in the encrypted reply: sign sha1(sort(token, TimeStamp, Nonce, Encrypt)) over \
                 the reply's own TimeStamp and Nonce",
            ),
            Self::NoDecrypt { detail, code } => write!(f, "the encrypted reply does not decrypt ({detail}); {code}"),
            Self::Envelope { detail } => write!(f, "invalid encrypted reply: {detail}"),
            Self::Xml { detail, snippet } => write!(f, "invalid XML in the reply ({detail}): {snippet:?}"),
            Self::NotReply { detail, snippet } => write!(f, "not a valid passive reply ({detail}): {snippet:?}"),
            Self::Other { detail } => write!(f, "unusable reply: {detail}"),
        }
    }
}

/// Explains why a 2xx answer could not be read as a reply (WeChat shows [`ERROR_BANNER`]):
/// `error` from [`super::Platform::open_reply`], `body` the answer.
pub fn unreadable(error: &crate::Error, body: &str) -> Unreadable {
    use crate::Error as E;
    let snippet: String = body.chars().take(80).collect();
    match error {
        E::Verify(_) => Unreadable::BadSignature,
        E::Decrypt(d) => Unreadable::NoDecrypt { detail: d.to_string(), code: error.reference_code().code() },
        E::Envelope(env) => Unreadable::Envelope { detail: env.to_string() },
        E::Xml(x) | E::ReplyParse(crate::reply::ReplyParseError::Xml(x)) => {
            Unreadable::Xml { detail: x.to_string(), snippet }
        }
        E::ReplyParse(p) => Unreadable::NotReply { detail: p.to_string(), snippet },
        other => Unreadable::Other { detail: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Article;
    use crate::{Header, Reply};

    fn msg(to: &str, from: &str, create_time: i64, reply: Reply) -> ReplyMessage {
        ReplyMessage {
            header: Some(Header { to: to.into(), from: from.into(), create_time, agent_id: None }),
            reply,
        }
    }

    #[test]
    fn replies_are_checked_for_direction_time_and_news_limits() {
        let now = 1_700_000_000;
        let ok = msg("o1", "gh_1", now, Reply::text("hi"));
        assert_eq!(reply(&ok, "o1", "gh_1", true, now), Judgement::default());
        let swapped = msg("gh_1", "o1", now, Reply::text("hi"));
        assert!(reply(&swapped, "o1", "gh_1", true, now).problems[0].to_string().contains("swapped"));
        let wrong_to = msg("o2", "gh_1", now, Reply::text("hi"));
        assert!(reply(&wrong_to, "o1", "gh_1", true, now).problems[0].to_string().contains("ToUserName"));
        // Milliseconds deviate from the docs, but WeChat shows the reply: a warning only.
        let ms = reply(&msg("o1", "gh_1", now * 1000, Reply::text("hi")), "o1", "gh_1", true, now);
        assert!(!ms.user_sees_error(), "{ms:?}");
        assert!(ms.warnings[0].to_string().contains("milliseconds"), "{ms:?}");
        let late = reply(&msg("o1", "gh_1", now - 7200, Reply::text("hi")), "o1", "gh_1", true, now);
        assert!(!late.user_sees_error() && late.warnings[0].to_string().contains("an hour"), "{late:?}");
        let article = Article::new("t", "d", "p", "u");
        let two = msg("o1", "gh_1", now, Reply::news(vec![article.clone(), article]));
        assert!(reply(&two, "o1", "gh_1", true, now).problems[0].to_string().contains("news article limits"));
        assert!(!reply(&two, "o1", "gh_1", false, now).user_sees_error());
        let none = ReplyMessage { header: None, reply: Reply::None };
        assert_eq!(reply(&none, "o1", "gh_1", true, now), Judgement::default());
    }

    #[test]
    fn a_reply_in_the_wrong_mode_is_refused() {
        assert_eq!(mode_problems(Mode::Safe, false), [Problem::NotEncrypted]);
        assert!(Problem::NotEncrypted.to_string().contains("not encrypted"));
        assert_eq!(mode_problems(Mode::Plain, true), [Problem::Encrypted]);
        assert!(Problem::Encrypted.to_string().contains("is encrypted"));
        assert!(mode_problems(Mode::Compatible, false).is_empty());
        assert!(mode_problems(Mode::Safe, true).is_empty());
    }
}
