//! Instructions of `Incoming::parse` for WeChat's commonest shapes: 2 000 each of a text
//! message, an image message, a `subscribe` event and a `CLICK` event, flat as WeChat sends
//! them, each kind parsed by a function of its own. Counted by callgrind (BENCHMARKS.md,
//! "Every flat message typed from its leaves"):
//!
//! ```sh
//! cargo build --release -p wemp-proto --example parse_cost
//! valgrind --tool=callgrind --callgrind-out-file=parse.out target/release/examples/parse_cost
//! callgrind_annotate --inclusive=yes parse.out | grep parse_cost::parse_   # ÷ 2 000
//! ```

#![allow(clippy::print_stdout)]

use wemp_proto::Incoming;

/// Parses each message, keeping the results from being optimised away. (Each kind's function
/// adds its own number, so that the compiler does not merge the four into one.)
fn parse_each(xmls: &[String]) -> usize {
    let mut n = 0;
    for xml in xmls {
        let msg = Incoming::parse(xml).expect("well-formed");
        n += usize::from(!msg.is_event()) + msg.header().from.len();
        std::hint::black_box(msg);
    }
    n
}

#[inline(never)]
fn parse_text(xmls: &[String]) -> usize {
    parse_each(xmls) + 4
}

#[inline(never)]
fn parse_image(xmls: &[String]) -> usize {
    parse_each(xmls) + 1
}

#[inline(never)]
fn parse_subscribe(xmls: &[String]) -> usize {
    parse_each(xmls) + 2
}

#[inline(never)]
fn parse_click(xmls: &[String]) -> usize {
    parse_each(xmls) + 3
}

/// 2 000 messages with `body` after the header, each from another user.
fn messages(msg_type: &str, body: impl Fn(u32) -> String) -> Vec<String> {
    (0..2000u32)
        .map(|i| {
            format!(
                "<xml><ToUserName><![CDATA[gh_0be4c4be4c4b]]></ToUserName><FromUserName><![CDATA[oBench{i:022}]]></FromUserName><CreateTime>1796405671</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{}</xml>",
                body(i)
            )
        })
        .collect()
}

fn main() {
    let text = messages("text", |i| {
        format!("<Content><![CDATA[bench message {i}]]></Content><MsgId>{}</MsgId>", 1_000_000 + i)
    });
    let image = messages("image", |i| {
        format!(
            "<PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz/bench{i}]]></PicUrl><MediaId><![CDATA[media_{i}]]></MediaId><MsgId>{}</MsgId>",
            1_000_000 + i
        )
    });
    let subscribe = messages("event", |_| "<Event><![CDATA[subscribe]]></Event>".to_owned());
    let click = messages("event", |i| {
        format!("<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V{i}]]></EventKey>")
    });
    let n = parse_text(&text) + parse_image(&image) + parse_subscribe(&subscribe) + parse_click(&click);
    println!("{} messages parsed ({n})", text.len() + image.len() + subscribe.len() + click.len());
}
