//! Instructions of `Reply::to_xml_answering` for the reply `wemp serve`'s demo rules give the
//! bench's text message `hello` (`Hello, {openid}!`, the two ids, the time): 2 000 replies,
//! one after another, each to another user. Counted by callgrind (BENCHMARKS.md, "The protocol's scan and
//! reply"):
//!
//! ```sh
//! cargo build --release -p wemp-proto --example reply_cost
//! valgrind --tool=callgrind --callgrind-out-file=reply.out --toggle-collect='*write_replies*' target/release/examples/reply_cost
//! callgrind_annotate --inclusive=yes reply.out | grep xml_for   # ÷ 2 000
//! ```

#![allow(clippy::print_stdout)]

use wemp_proto::{Incoming, Reply};

#[inline(never)]
fn write_replies(messages: &[(Incoming, Reply)]) -> usize {
    let mut n = 0;
    for (i, (msg, reply)) in messages.iter().enumerate() {
        let now = 1_796_405_671 + i64::try_from(i).unwrap_or(0);
        let xml = reply.to_xml_answering(msg, now).expect("a valid reply");
        n += xml.len();
        std::hint::black_box(xml);
    }
    n
}

fn main() {
    let messages: Vec<(Incoming, Reply)> = (0..2000u32)
        .map(|i| {
            let xml = format!(
                "<xml><ToUserName><![CDATA[gh_0be4c4be4c4b]]></ToUserName><FromUserName><![CDATA[oBench{i:022}]]></FromUserName><CreateTime>1796405671</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>{}</MsgId></xml>",
                1_000_000 + i
            );
            let reply = Reply::text(format!("Hello, oBench{i:022}!"));
            (Incoming::parse(&xml).expect("well-formed"), reply)
        })
        .collect();
    let n = write_replies(&messages);
    println!("{} replies, {n} bytes", messages.len());
}
