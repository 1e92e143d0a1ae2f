//! Properties over arbitrary input: round trips hold, nothing panics.

use proptest::prelude::*;
use wemp_proto::reply::{ReplyMessage, is_xml_char};
use wemp_proto::{Cipher, Document, Envelope, Incoming, Reply, ReplyContext};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn xml_text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.chars().filter(|&c| is_xml_char(c)).collect())
}

proptest! {
    #[test]
    fn encrypt_decrypt_round_trip(msg in any::<String>(), appid in "[a-z0-9]{0,32}", random in any::<[u8; 16]>()) {
        let cipher = Cipher::new(KEY, &appid).unwrap();
        let encrypted = cipher.encrypt(&msg, random).unwrap();
        prop_assert_eq!(cipher.decrypt(&encrypted).unwrap(), msg);
    }

    #[test]
    fn decrypt_never_panics(input in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let cipher = Cipher::new(KEY, "wx2c2769f8efd9abc2").unwrap();
        let _ = cipher.decrypt(&input);
        use base64::Engine as _;
        let _ = cipher.decrypt(&base64::engine::general_purpose::STANDARD.encode(&bytes));
    }

    #[test]
    fn any_43_char_key_is_accepted_or_refused_cleanly(key in "[A-Za-z0-9+/]{43}") {
        prop_assert!(Cipher::new(&key, "wx").is_ok());
    }

    #[test]
    fn parse_never_panics(input in any::<String>()) {
        let _ = Document::parse(&input);
        let _ = Incoming::parse(&input);
        let _ = Envelope::parse(&input);
        let _ = ReplyMessage::parse(&input);
    }

    #[test]
    fn parse_never_panics_on_xmlish(input in "(<[a-zA-Z]{1,3}>|</[a-zA-Z]{1,3}>|<!\\[CDATA\\[|\\]\\]>|&[a-z#0-9]{0,5};|[a-z ]{0,3}){0,30}") {
        let _ = Incoming::parse(&input);
    }

    #[test]
    fn text_reply_content_survives(content in xml_text(), to in xml_text(), from in xml_text()) {
        let ctx = ReplyContext { to, from, create_time: 1, answering_message: true };
        let xml = Reply::text(content.clone()).to_xml(&ctx).unwrap();
        let back = ReplyMessage::parse(&xml).unwrap();
        prop_assert_eq!(back.reply, Reply::text(content));
        let header = back.header.unwrap();
        prop_assert_eq!((header.to, header.from), (ctx.to, ctx.from));
    }

    #[test]
    fn text_message_survives_write_and_reparse(content in xml_text(), id in any::<u64>()) {
        let mut text = wemp_proto::message::Text::default();
        text.header.from = "o1".into();
        text.content = content;
        text.id = id;
        let msg = Incoming::Text(text);
        prop_assert_eq!(Incoming::parse(&msg.to_xml()).unwrap(), msg);
    }
}
