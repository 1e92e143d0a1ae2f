//! Any bytes through every parser (messages, replies, envelopes, Open Platform pushes and
//! Mini Program JSON pushes): nothing may panic, and whatever parses as a message must
//! survive being written back out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wemp_proto::component::ComponentPush;
use wemp_proto::reply::ReplyMessage;
use wemp_proto::xml::Document;
use wemp_proto::{Envelope, Incoming};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Envelope::parse(text);
    let _ = ReplyMessage::parse(text);
    let _ = ComponentPush::parse(text);
    // A Mini Program's JSON push is read as the XML document it stands for.
    if let Ok(doc) = Document::from_json(text) {
        let _ = ComponentPush::from_document(&doc);
    }
    if let Ok(msg) = Incoming::parse(text) {
        let again = Incoming::parse(&msg.to_xml()).expect("written XML reparses");
        // NaN never equals itself; compare the XML instead of the values.
        assert_eq!(again.to_xml(), msg.to_xml());
    }
});
