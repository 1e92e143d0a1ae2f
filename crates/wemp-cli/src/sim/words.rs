//! WeChat's verdicts in the user's language: each typed finding of the driver
//! ([`Problem`], [`Unreadable`], [`VerifyProblem`], a try's [`Exchange`], a failed
//! delivery) worded from the [`Msg`] catalogue. The English words are those of the
//! findings' own `Display` (a test holds them equal), so `--json`, which prints that
//! English, and the text output agree.

use std::time::Duration;

use wemp_proto::reply::ReplyError;

use super::{
    Delivery, DeliveryVerdict, Exchange, FailCause, Problem, Unreadable, VerifyProblem, fmt_duration,
};
use crate::i18n::{Lang, Msg};

/// One try's exchange: the timeout, the connection or TLS error, or the HTTP status with
/// the server's own reason (the first line of an error body, quoted as it is).
pub fn exchange(exchange: &Exchange, timeout: Duration, lang: Lang) -> String {
    match exchange {
        Exchange::Timeout => Msg::ExchangeTimeout.fill(lang, &[("timeout", &fmt_duration(timeout))]),
        Exchange::Connect { error } => Msg::ExchangeConnect.fill(lang, &[("error", error)]),
        Exchange::Tls { error } if error.to_ascii_lowercase().contains("certificate") => {
            Msg::ExchangeTlsCertificate.fill(lang, &[("error", error)])
        }
        Exchange::Tls { error } => Msg::ExchangeTls.fill(lang, &[("error", error)]),
        Exchange::Http { status, body, .. } => match exchange.server_reason() {
            Some(reason) => Msg::ExchangeHttpSaid
                .fill(lang, &[("status", status), ("n", &body.len()), ("reason", &reason)]),
            None => Msg::ExchangeHttp.fill(lang, &[("status", status), ("n", &body.len())]),
        },
    }
}

/// What WeChat refuses (or notices) about a reply.
pub fn problem(problem: &Problem, lang: Lang) -> String {
    match problem {
        Problem::Swapped { openid, account } => {
            Msg::ProblemSwapped.fill(lang, &[("openid", openid), ("account", account)])
        }
        Problem::WrongTo { found, expected } => {
            Msg::ProblemWrongTo.fill(lang, &[("found", found), ("expected", expected)])
        }
        Problem::WrongFrom { found, expected } => {
            Msg::ProblemWrongFrom.fill(lang, &[("found", found), ("expected", expected)])
        }
        Problem::Invalid { error } => match error {
            ReplyError::ArticleCount { count, limit, answering_message } => {
                let what = if *answering_message { Msg::AnsweringMessage } else { Msg::AnsweringEvent };
                Msg::ProblemArticles
                    .fill(lang, &[("count", count), ("limit", limit), ("what", &what.get(lang))])
            }
            ReplyError::EmptyField { field } => Msg::ProblemEmptyField.fill(lang, &[("field", field)]),
            ReplyError::InvalidChar { field, ch } => {
                let ch = format!("U+{:04X}", u32::from(*ch));
                Msg::ProblemInvalidChar.fill(lang, &[("field", field), ("ch", &ch)])
            }
            other => other.to_string(),
        },
        Problem::NotEncrypted => Msg::ProblemNotEncrypted.get(lang).to_owned(),
        Problem::Encrypted => Msg::ProblemEncrypted.get(lang).to_owned(),
        Problem::CreateTimeMillis { create_time } => {
            Msg::ProblemCreateTimeMs.fill(lang, &[("t", create_time)])
        }
        Problem::CreateTimeFar { create_time, now } => {
            Msg::ProblemCreateTimeFar.fill(lang, &[("t", create_time), ("now", now)])
        }
        Problem::MiniprogramPassive => Msg::ProblemMiniprogramPassive.get(lang).to_owned(),
        other => other.to_string(),
    }
}

/// Why a 2xx answer is not a usable reply.
pub fn unreadable(why: &Unreadable, lang: Lang) -> String {
    match why {
        Unreadable::BadSignature => Msg::UnreadableSignature.get(lang).to_owned(),
        Unreadable::NoDecrypt { detail, code } => {
            Msg::UnreadableDecrypt.fill(lang, &[("detail", detail), ("code", code)])
        }
        Unreadable::Envelope { detail } => Msg::UnreadableEnvelope.fill(lang, &[("detail", detail)]),
        Unreadable::Xml { detail, snippet } => {
            Msg::UnreadableXml.fill(lang, &[("detail", detail), ("snippet", snippet)])
        }
        Unreadable::NotReply { detail, snippet } => {
            Msg::UnreadableNotReply.fill(lang, &[("detail", detail), ("snippet", snippet)])
        }
        Unreadable::Other { detail } => Msg::UnreadableOther.fill(lang, &[("detail", detail)]),
        other => other.to_string(),
    }
}

/// Why the delivery failed: each problem of a refused reply, or the one reason there was
/// no usable answer. Empty when the user sees the reply.
pub fn failures(delivery: &Delivery, timeout: Duration, lang: Lang) -> Vec<String> {
    match &delivery.outcome {
        DeliveryVerdict::Reply { problems, .. } => problems.iter().map(|p| problem(p, lang)).collect(),
        DeliveryVerdict::Failed { reason, cause } => vec![match cause {
            FailCause::NoAnswer { tries } => {
                let last = delivery
                    .attempts
                    .last()
                    .map(|a| exchange(&a.exchange, timeout, lang))
                    .unwrap_or_default();
                Msg::AllTriesFailed.fill(lang, &[("n", tries), ("last", &last)])
            }
            FailCause::Unreadable(why) => unreadable(why, lang),
            FailCause::Unsigned { error } => Msg::CannotSign.fill(lang, &[("error", error)]),
            _ => reason.clone(),
        }],
    }
}

/// Why WeChat would refuse a URL verification, or what it notices.
pub fn verify_problem(problem: &VerifyProblem, lang: Lang) -> String {
    match problem {
        VerifyProblem::Unsigned { error } => Msg::CannotSign.fill(lang, &[("error", error)]),
        VerifyProblem::Unreachable { exchange: e, timeout } => {
            Msg::VerifyUnreachable.fill(lang, &[("exchange", &exchange(e, *timeout, lang))])
        }
        VerifyProblem::Tls { exchange: e, timeout } => exchange(e, *timeout, lang),
        VerifyProblem::WrongStatus { status, said } => {
            let hint = match status {
                404 => Msg::Hint404.get(lang),
                401 | 403 => Msg::Hint403.get(lang),
                405 => Msg::Hint405.get(lang),
                s if *s >= 500 => Msg::Hint5xx.get(lang),
                _ => "",
            };
            let said = said.as_ref().map(|r| Msg::ItSaid.fill(lang, &[("reason", r)])).unwrap_or_default();
            Msg::VerifyWrongStatus.fill(lang, &[("status", status), ("hint", &hint), ("said", &said)])
        }
        VerifyProblem::Whitespace { body } => Msg::VerifyWhitespace.fill(lang, &[("body", body)]),
        VerifyProblem::Quoted { body } => Msg::VerifyQuoted.fill(lang, &[("body", body)]),
        VerifyProblem::InXml => Msg::VerifyInXml.get(lang).to_owned(),
        VerifyProblem::InJson => Msg::VerifyInJson.get(lang).to_owned(),
        VerifyProblem::Extra { snippet } => Msg::VerifyExtra.fill(lang, &[("snippet", snippet)]),
        VerifyProblem::Mismatch { snippet } => {
            let what =
                snippet.as_ref().map_or_else(|| Msg::EmptyBody.get(lang).to_owned(), |s| format!("{s:?}"));
            Msg::VerifyMismatch.fill(lang, &[("what", &what)])
        }
        VerifyProblem::EchoedEncrypted => Msg::VerifyEchoedEncrypted.get(lang).to_owned(),
        VerifyProblem::ContentType { content_type } => {
            Msg::VerifyContentType.fill(lang, &[("ct", content_type)])
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Attempt;

    fn http(status: u16, body: &str) -> Exchange {
        Exchange::Http { status, content_type: Some("text/plain".into()), body: body.into() }
    }

    /// The English words are the findings' own `Display`, which `--json` prints.
    #[test]
    fn english_words_are_the_findings_display() {
        let s = String::from;
        let problems = Problem::examples();
        for p in &problems {
            assert_eq!(problem(p, Lang::En), p.to_string());
            assert_ne!(problem(p, Lang::Zh), p.to_string(), "{p:?} has no Chinese");
        }
        let unreadables = Unreadable::examples();
        for u in &unreadables {
            assert_eq!(unreadable(u, Lang::En), u.to_string());
            assert_ne!(unreadable(u, Lang::Zh), u.to_string(), "{u:?} has no Chinese");
        }
        let t = Duration::from_secs(5);
        let verify = [
            VerifyProblem::Unsigned { error: s("bad key") },
            VerifyProblem::Unreachable { exchange: Exchange::Timeout, timeout: t },
            VerifyProblem::Unreachable { exchange: Exchange::Connect { error: s("refused") }, timeout: t },
            VerifyProblem::Tls {
                exchange: Exchange::Tls { error: s("invalid peer certificate") },
                timeout: t,
            },
            VerifyProblem::WrongStatus { status: 403, said: Some(s("token 验证失败")) },
            VerifyProblem::WrongStatus { status: 404, said: None },
            VerifyProblem::WrongStatus { status: 405, said: None },
            VerifyProblem::WrongStatus { status: 502, said: None },
            VerifyProblem::WrongStatus { status: 302, said: None },
            VerifyProblem::Whitespace { body: s("1 \n") },
            VerifyProblem::Quoted { body: s("\"1\"") },
            VerifyProblem::InXml,
            VerifyProblem::InJson,
            VerifyProblem::Extra { snippet: s("ok 1") },
            VerifyProblem::Mismatch { snippet: None },
            VerifyProblem::Mismatch { snippet: Some(s("fail")) },
            VerifyProblem::EchoedEncrypted,
            VerifyProblem::ContentType { content_type: s("text/html") },
        ];
        for v in &verify {
            assert_eq!(verify_problem(v, Lang::En), v.to_string());
            assert_ne!(verify_problem(v, Lang::Zh), v.to_string(), "{v:?} has no Chinese");
        }
        for e in [Exchange::Timeout, http(403, "token 验证失败\nmore"), http(200, "success")] {
            assert_eq!(exchange(&e, t, Lang::En), e.describe(t));
        }
    }

    #[test]
    fn a_delivery_without_an_answer_names_its_tries_and_the_last() {
        let attempt =
            |exchange| Attempt { number: 3, started: Duration::ZERO, elapsed: Duration::ZERO, exchange };
        let delivery = Delivery {
            mode: wemp_proto::Mode::Plain,
            request: String::new(),
            signed: None,
            attempts: vec![attempt(http(500, "boom"))],
            outcome: DeliveryVerdict::Failed {
                reason: "all 3 tries failed (last: HTTP 500, 4 bytes: boom)".into(),
                cause: FailCause::NoAnswer { tries: 3 },
            },
        };
        let t = Duration::from_secs(5);
        assert_eq!(failures(&delivery, t, Lang::En), delivery.outcome.failures());
        assert_eq!(
            failures(&delivery, t, Lang::Zh),
            ["3 次尝试全部失败（最后一次：HTTP 500，4 字节：boom）"]
        );
    }
}
