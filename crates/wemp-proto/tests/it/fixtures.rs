//! Loads fixture files and checks the parse → write → reparse cycle.

use wemp_proto::Incoming;

pub(crate) fn load(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Parses a fixture, asserts it round-trips through `to_xml`, and returns it.
pub(crate) fn parse_round_trip(path: &str) -> Incoming {
    let xml = load(path);
    let msg = Incoming::parse(&xml).unwrap_or_else(|e| panic!("{path}: {e}"));
    if let Incoming::Unknown(u) = &msg {
        assert!(u.decode_error.is_none(), "{path} fell back to Unknown: {:?}", u.decode_error);
    }
    let written = msg.to_xml();
    let again = Incoming::parse(&written).unwrap_or_else(|e| panic!("{path} rewritten: {e}\n{written}"));
    assert_eq!(again, msg, "{path} did not survive to_xml:\n{written}");
    msg
}
