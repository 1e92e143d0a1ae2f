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

/// Text that XML finds awkward: CDATA ends, markup, escapes, control characters, the two
/// non-characters, and any character at all.
fn awkward_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("]]>".to_owned()),
        Just("]]".to_owned()),
        Just("&amp;<a>&".to_owned()),
        Just("\r\n\t ".to_owned()),
        Just("\u{1}".to_owned()),
        Just("\u{FFFE}\u{FFFF}\u{FFFD}".to_owned()),
        Just("活动".to_owned()),
        "[a-z]{0,4}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(awkward_text())
}

fn any_reply() -> impl Strategy<Value = Reply> {
    use wemp_proto::Article;
    use wemp_proto::reply::Music;
    let article = (awkward_text(), awkward_text(), awkward_text(), awkward_text())
        .prop_map(|(t, d, p, u)| Article::new(t, d, p, u));
    prop_oneof![
        Just(Reply::None),
        awkward_text().prop_map(Reply::text),
        awkward_text().prop_map(Reply::image),
        awkward_text().prop_map(Reply::voice),
        (awkward_text(), opt_text(), opt_text()).prop_map(|(m, t, d)| Reply::video(m, t, d)),
        (awkward_text(), opt_text(), opt_text(), opt_text(), opt_text()).prop_map(|(thumb, t, d, u, hq)| {
            let mut music = Music::new(thumb);
            music.title = t;
            music.description = d;
            music.music_url = u;
            music.hq_music_url = hq;
            Reply::music(music)
        }),
        proptest::collection::vec(article, 0..10).prop_map(Reply::news),
        Just(Reply::transfer_customer_service()),
        awkward_text().prop_map(Reply::transfer_to),
    ]
}

proptest! {
    /// `Reply::to_xml` writes straight into a string; it must give the bytes (or the error)
    /// that rendering the element tree of `Reply::to_element` gives.
    #[test]
    fn reply_xml_is_the_tree_rendered(
        reply in any_reply(),
        to in awkward_text(),
        from in awkward_text(),
        create_time in any::<i64>(),
        answering_message in any::<bool>(),
    ) {
        let ctx = ReplyContext { to, from, create_time, answering_message };
        let tree = reply.to_element(&ctx).map(|el| el.map_or_else(|| "success".to_owned(), |el| el.to_xml()));
        prop_assert_eq!(reply.to_xml(&ctx), tree);
    }
}

proptest! {
    /// `EncryptedReply::seal_xml` writes the envelope in one string: the bytes of
    /// `seal(..)?.to_xml()`.
    #[test]
    fn sealed_xml_is_the_sealed_reply_rendered(
        xml in any::<String>(),
        appid in "[a-z0-9]{0,32}",
        token in "[a-zA-Z0-9]{0,32}",
        timestamp in any::<String>(),
        nonce in any::<String>(),
        random in any::<[u8; 16]>(),
    ) {
        use wemp_proto::EncryptedReply;
        let cipher = Cipher::new(KEY, &appid).unwrap();
        let sealed = EncryptedReply::seal(&cipher, &token, &xml, &timestamp, &nonce, random).unwrap();
        prop_assert_eq!(sealed.encrypt.len(), cipher.encrypted_len(xml.len()));
        let one = EncryptedReply::seal_xml(&cipher, &token, &xml, &timestamp, &nonce, random).unwrap();
        prop_assert_eq!(one, sealed.to_xml());
    }
}

/// A text message's leaves, each perhaps written another way, left out or given twice.
fn text_leaves() -> impl Strategy<Value = String> {
    let leaf = (
        "(ToUserName|FromUserName|CreateTime|MsgType|Content|MsgId|AgentID|bizmsgmenuid|MsgDataId|Idx|Other)",
        prop_oneof![
            Just("text".to_owned()),
            Just("TEXT".to_owned()),
            Just(" 12 ".to_owned()),
            Just("1700000000".to_owned()),
            Just("6054768590064713728".to_owned()),
            Just("-1".to_owned()),
            Just(String::new()),
            Just(" ".to_owned()),
            "[a-z0-9 ]{0,6}",
            any::<String>().prop_map(|s| s.replace("]]>", "")),
        ],
        0..4u8,
    );
    proptest::collection::vec(leaf, 0..12).prop_map(|leaves| {
        let mut xml = "<xml>".to_owned();
        for (name, text, how) in leaves {
            match how {
                0 => xml.push_str(&format!("<{name}><![CDATA[{text}]]></{name}>")),
                1 => xml.push_str(&format!("<{name}>{text}</{name}>")),
                2 => xml.push_str(&format!("\n <{name}>{}</{name}>", text.replace(['<', '&', '>'], ""))),
                _ => xml.push_str(&format!("<{name}><x>{text}</x></{name}>")),
            }
        }
        xml.push_str("</xml>");
        xml
    })
}

/// A well-formed text message, with its fields in any order and perhaps more.
fn text_message() -> impl Strategy<Value = String> {
    (
        xml_text(),
        xml_text(),
        any::<i64>(),
        xml_text(),
        any::<u64>(),
        proptest::option::of(xml_text()),
        0..3usize,
    )
        .prop_map(|(to, from, created, content, id, menu, order)| {
            let mut leaves = vec![
                format!("<ToUserName><![CDATA[{}]]></ToUserName>", to.replace("]]>", "")),
                format!("<FromUserName><![CDATA[{}]]></FromUserName>", from.replace("]]>", "")),
                format!("<CreateTime>{created}</CreateTime>"),
                "<MsgType><![CDATA[text]]></MsgType>".to_owned(),
                format!("<Content><![CDATA[{}]]></Content>", content.replace("]]>", "")),
                format!("<MsgId>{id}</MsgId>"),
            ];
            if let Some(menu) = menu {
                leaves.push(format!("<bizmsgmenuid><![CDATA[{}]]></bizmsgmenuid>", menu.replace("]]>", "")));
            }
            leaves.rotate_left(order);
            format!("<xml>{}</xml>", leaves.concat())
        })
}

/// `Incoming::parse` as it was: the document, then the typed message read from it.
fn parsed_through_the_document(xml: &str) -> Result<Incoming, String> {
    Document::parse(xml)
        .map(|doc| Incoming::from_document(&doc))
        .map_err(|e| wemp_proto::Error::from(e).to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A text message (in any order, missing or repeated fields, nested, undecodable) parses
    /// as through its document, and anything else parses (or fails) as it did. Every type's
    /// leaves are held to its document by `message::tests` (which can reach the leaves).
    #[test]
    fn a_message_parses_as_through_its_document(xml in prop_oneof![text_leaves(), text_message()]) {
        prop_assert_eq!(Incoming::parse(&xml).map_err(|e| e.to_string()), parsed_through_the_document(&xml));
    }

    #[test]
    fn a_message_parses_as_through_its_document_on_any_input(input in any::<String>()) {
        prop_assert_eq!(Incoming::parse(&input).map_err(|e| e.to_string()), parsed_through_the_document(&input));
    }
}
