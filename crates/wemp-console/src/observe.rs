//! Records from inside the server: each [`wemp_server::DeliveryRecord`] becomes a
//! [`LiveEntry`] wrapping it, tagged with the console's account.

use std::sync::Arc;

use wemp_server::{DeliveryRecord, Observer};

use crate::config::{ConsoleAccount, by_record};
use crate::feed::{Hub, LiveEntry, Source};

/// A [`wemp_server::Observer`] that publishes every record to the console's live log,
/// tagged with the console's account for the record's appid (else its `ToUserName`).
/// Add it with `WechatService::builder().observer(console.observer())`.
#[derive(Clone, Debug)]
pub struct ConsoleObserver {
    pub(crate) hub: Arc<Hub>,
    /// The console's account book, as the hub numbers it ([`Hub::book`]).
    pub(crate) book: usize,
}

impl Observer for ConsoleObserver {
    fn observe(&self, record: &Arc<DeliveryRecord>) {
        // Made when a page shows it (at once while one is open): an idle console keeps the
        // record and the accounts it is tagged with, not a parse of the reply.
        self.hub.publish_observed(record, self.book);
    }
}

/// An entry for `record` from `source`, tagged with the account of `accounts` it is for:
/// the one the record's appid names, else the one its message's `ToUserName` names.
pub(crate) fn entry(accounts: &[ConsoleAccount], source: Source, record: Arc<DeliveryRecord>) -> LiveEntry {
    let mut x = LiveEntry::new(source, record);
    // The appid first; the XML is parsed only when it does not tell.
    let r = &x.record;
    let account = by_record(accounts, r.appid.as_deref(), None).or_else(|| {
        let to = r.raw_xml.as_deref().and_then(to_user_name);
        by_record(accounts, None, to.as_deref())
    });
    if let Some(a) = account {
        x.account = Some(a.id.clone());
    }
    x
}

/// The `ToUserName` of a message's XML.
fn to_user_name(xml: &str) -> Option<String> {
    let doc = wemp_proto::Document::parse(xml).ok()?;
    doc.root.text_of("ToUserName").map(|t| t.trim().to_owned())
}
