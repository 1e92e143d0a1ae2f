//! The JSON wemp prints for a message (`wemp parse`, the console, `wemp log --json`) has
//! unique keys, and ids past 2^53 are strings.

use std::collections::HashSet;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use wemp_proto::Incoming;

use crate::fixtures::load;

/// Any JSON value, refused when an object repeats a key (serde_json's `Value` keeps the
/// last one silently).
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

fn check(name: &str, msg: &Incoming) {
    let json = serde_json::to_string(msg).unwrap();
    if let Err(e) = serde_json::from_str::<UniqueKeys>(&json) {
        panic!("{name}: {e}\n{json}");
    }
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["id", "msg_id"] {
        if let Some(id) = value.get(key) {
            assert!(id.is_string(), "{name}: {key} is not a string: {json}");
        }
    }
}

#[test]
fn every_fixture_prints_unique_keys_and_string_ids() {
    let mut seen = 0;
    for dir in ["message", "event"] {
        let full = format!("{}/tests/fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&full).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let msg = Incoming::parse(&load(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&name, &msg);
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} fixtures");
}

#[test]
fn an_event_wemp_does_not_model_prints_its_name_once() {
    let xml = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
               <MsgType>event</MsgType><Event>weird_thing</Event><Foo>1</Foo></xml>";
    let msg = Incoming::parse(xml).unwrap();
    check("unknown event", &msg);
    let value = serde_json::to_value(&msg).unwrap();
    assert_eq!(value["event"], "unknown");
    assert_eq!(value["event_name"], "weird_thing");
    let text = Incoming::parse(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
         <MsgType>text</MsgType><Content>x</Content><MsgId>9223372036854775807</MsgId></xml>",
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&text).unwrap()["id"], "9223372036854775807");
}
