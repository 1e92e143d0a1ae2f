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
//! assert!(verdict.warnings[0].contains("milliseconds"));
//! ```

use crate::envelope::Mode;
use crate::reply::{ReplyContext, ReplyMessage};

/// What WeChat shows the user when the server fails to answer properly.
pub const ERROR_BANNER: &str = "该公众号暂时无法提供服务，请稍后再试";

/// WeChat's verdict on a readable reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    /// What makes WeChat show [`ERROR_BANNER`] instead of the reply; empty when it is shown.
    pub problems: Vec<String>,
    /// What deviates from the docs although WeChat shows the reply anyway.
    pub warnings: Vec<String>,
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
pub fn mode_problems(request: Mode, encrypted: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if request == Mode::Safe && !encrypted {
        problems.push("the request came in safe mode but the reply is not encrypted".to_owned());
    }
    if request == Mode::Plain && encrypted {
        problems.push("the request came in plain mode but the reply is encrypted".to_owned());
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
        problems.push(format!(
            "wrong direction: ToUserName/FromUserName are swapped (a reply goes To the user {openid} From \
             the account {account})"
        ));
    } else {
        if header.to != openid {
            problems.push(format!(
                "wrong direction: ToUserName is {:?}, expected the user's OpenID {openid:?}",
                header.to
            ));
        }
        if header.from != account {
            problems.push(format!(
                "wrong direction: FromUserName is {:?}, expected the account's original id {account:?}",
                header.from
            ));
        }
    }
    let ctx =
        ReplyContext { to: openid.to_owned(), from: account.to_owned(), create_time: now, answering_message };
    if let Err(e) = message.reply.validate(&ctx) {
        problems.push(format!("news article limits: {e}"));
    }
    if header.create_time > 100_000_000_000 {
        verdict.warnings.push(format!(
            "CreateTime {} is in milliseconds; the docs say seconds since the epoch (WeChat shows the reply \
             anyway)",
            header.create_time
        ));
    } else if (header.create_time - now).abs() > 3600 {
        verdict.warnings.push(format!(
            "CreateTime {} is more than an hour from now ({now}); the docs say the current time in seconds \
             (WeChat shows the reply anyway)",
            header.create_time
        ));
    }
    verdict
}

/// Explains why a 2xx answer could not be read as a reply (WeChat shows [`ERROR_BANNER`]):
/// `error` from [`super::Platform::open_reply`], `body` the answer.
pub fn unreadable(error: &crate::Error, body: &str) -> String {
    use crate::Error as E;
    let snippet: String = body.chars().take(80).collect();
    match error {
        E::Verify(_) => "bad MsgSignature in the encrypted reply: sign sha1(sort(token, TimeStamp, Nonce, \
                         Encrypt)) over the reply's own TimeStamp and Nonce"
            .to_owned(),
        E::Decrypt(d) => {
            format!("the encrypted reply does not decrypt ({d}); {}", error.reference_code().code())
        }
        E::Envelope(env) => format!("invalid encrypted reply: {env}"),
        E::Xml(x) | E::ReplyParse(crate::reply::ReplyParseError::Xml(x)) => {
            format!("invalid XML in the reply ({x}): {snippet:?}")
        }
        E::ReplyParse(p) => format!("not a valid passive reply ({p}): {snippet:?}"),
        other => format!("unusable reply: {other}"),
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
        assert!(reply(&swapped, "o1", "gh_1", true, now).problems[0].contains("swapped"));
        let wrong_to = msg("o2", "gh_1", now, Reply::text("hi"));
        assert!(reply(&wrong_to, "o1", "gh_1", true, now).problems[0].contains("ToUserName"));
        // Milliseconds deviate from the docs, but WeChat shows the reply: a warning only.
        let ms = reply(&msg("o1", "gh_1", now * 1000, Reply::text("hi")), "o1", "gh_1", true, now);
        assert!(!ms.user_sees_error(), "{ms:?}");
        assert!(ms.warnings[0].contains("milliseconds"), "{ms:?}");
        let late = reply(&msg("o1", "gh_1", now - 7200, Reply::text("hi")), "o1", "gh_1", true, now);
        assert!(!late.user_sees_error() && late.warnings[0].contains("an hour"), "{late:?}");
        let article = Article::new("t", "d", "p", "u");
        let two = msg("o1", "gh_1", now, Reply::news(vec![article.clone(), article]));
        assert!(reply(&two, "o1", "gh_1", true, now).problems[0].contains("news article limits"));
        assert!(!reply(&two, "o1", "gh_1", false, now).user_sees_error());
        let none = ReplyMessage { header: None, reply: Reply::None };
        assert_eq!(reply(&none, "o1", "gh_1", true, now), Judgement::default());
    }

    #[test]
    fn a_reply_in_the_wrong_mode_is_refused() {
        assert!(mode_problems(Mode::Safe, false)[0].contains("not encrypted"));
        assert!(mode_problems(Mode::Plain, true)[0].contains("is encrypted"));
        assert!(mode_problems(Mode::Compatible, false).is_empty());
        assert!(mode_problems(Mode::Safe, true).is_empty());
    }
}
