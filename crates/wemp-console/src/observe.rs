//! Records from inside the server: [`wemp_server::DeliveryRecord`]s become [`Exchange`]s.

use std::sync::Arc;

use wemp_server::{DeliveryRecord, Observer, RecordOutcome, SinkOutcome};

use crate::config::{ConsoleAccount, by_record};
use crate::feed::{Exchange, Hub, Outcome, WECHAT_TIMEOUT_MS};

/// A [`wemp_server::Observer`] that publishes every record to the console's live log,
/// tagged with the console's account for the record's appid (else its `ToUserName`).
/// Add it with `WechatService::builder().observer(console.observer())`.
#[derive(Clone, Debug)]
pub struct ConsoleObserver {
    pub(crate) hub: Arc<Hub>,
    pub(crate) accounts: Arc<[ConsoleAccount]>,
}

impl Observer for ConsoleObserver {
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        // Made when a page shows it (at once while one is open): an idle console costs the
        // request path a closure, not a parse of the reply.
        let (record, accounts) = (record.clone(), self.accounts.clone());
        self.hub.publish_with(move || {
            let mut x = Exchange::from(record.as_ref());
            // The appid first; the XML is parsed only when it does not tell.
            let account = by_record(&accounts, record.appid.as_deref(), None).or_else(|| {
                let to = record.raw_xml.as_deref().and_then(to_user_name);
                by_record(&accounts, None, to.as_deref())
            });
            if let Some(a) = account {
                x.account = Some(a.id.clone());
            }
            x
        });
    }
}

/// The `ToUserName` of a message's XML.
pub(crate) fn to_user_name(xml: &str) -> Option<String> {
    let doc = wemp_proto::Document::parse(xml).ok()?;
    doc.root.text_of("ToUserName").map(|t| t.trim().to_owned())
}

impl From<&DeliveryRecord> for Exchange {
    fn from(r: &DeliveryRecord) -> Self {
        let latency_ms = u64::try_from(r.latency.as_millis()).unwrap_or(u64::MAX);
        let reply = r
            .reply_xml
            .as_deref()
            .and_then(|x| wemp_proto::reply::ReplyMessage::parse(x).ok())
            .map(|m| m.reply.clone());
        let answered = |reply: &Option<wemp_proto::Reply>| match reply {
            Some(wemp_proto::Reply::None) | None => Outcome::NoReply,
            Some(_) => Outcome::Reply,
        };
        let mut error = r.error.clone();
        let outcome = match &r.outcome {
            RecordOutcome::Answered if latency_ms > WECHAT_TIMEOUT_MS => {
                error.get_or_insert_with(|| {
                    format!(
                        "answered after {latency_ms} ms; WeChat gives up on a try after {WECHAT_TIMEOUT_MS} ms, \
                         so the user never saw this answer"
                    )
                });
                Outcome::TooSlow
            }
            RecordOutcome::Answered => answered(&reply),
            RecordOutcome::HandlerError => Outcome::HandlerError,
            RecordOutcome::Deadline => {
                error.get_or_insert_with(|| {
                    format!(
                        "the handler was still running at the server's deadline: answered `success` after \
                         {latency_ms} ms, so WeChat shows nothing and does not retry; the handler's reply \
                         goes to the late-reply sink (customer-service message) when it finishes"
                    )
                });
                Outcome::Deadline
            }
            RecordOutcome::Late { .. } => Outcome::FollowUp,
            RecordOutcome::Verified => Outcome::Verify,
            RecordOutcome::Rejected => Outcome::Rejected,
            _ => Outcome::Error,
        };
        let mut diagnostics = Vec::new();
        if let Some(rej) = &r.rejection {
            let code = match (rej.code, rej.code_name()) {
                (Some(c), Some(n)) => format!("{c} {n}: "),
                (Some(c), None) => format!("{c}: "),
                _ => String::new(),
            };
            diagnostics.push(format!(
                "{code}{} (at {}, reason {})",
                rej.message,
                rej.param,
                rej.reason.as_str()
            ));
        }
        let mut late_sink = None;
        if let RecordOutcome::Late { sink } = &r.outcome {
            let what = match sink {
                None => "the handler ended without a reply: nothing was sent".to_owned(),
                Some(s) => format!("late reply handed to the customer-service sink: {s}"),
            };
            diagnostics.push(what);
            late_sink = Some(sink.as_ref().map_or("none", SinkOutcome::label).to_owned());
        }
        Self {
            id: 0,
            source: "observer",
            account: r.appid.clone(),
            received_at_ms: r.received_at_ms,
            method: if r.outcome == RecordOutcome::Verified { "GET" } else { "POST" }.into(),
            openid: r.openid.clone(),
            msg_type: r.msg_type.clone(),
            event: r.event.clone(),
            msg_id: r.msg_id.map(|i| i.to_string()),
            summary: r.summary.clone().unwrap_or_default(),
            mode: r.mode.map(|m| m.as_str().to_owned()),
            outcome: Some(outcome),
            status: (r.status != 0).then_some(r.status),
            dedup: r.dedup.map(|d| d.as_str().to_owned()),
            handler: r.handler.as_deref().map(str::to_owned),
            attempt: 1,
            latency_ms,
            raw_xml: r.raw_xml.as_deref().map(str::to_owned),
            reply_xml: r.reply_xml.clone(),
            reply,
            error,
            diagnostics,
            checks: r.checks.clone(),
            delivery: Some(r.id),
            late_sink,
        }
    }
}
