//! Criterion benchmarks of the hot path: `cargo bench -p wemp-proto --bench proto`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wemp_proto::{Cipher, EncryptedReply, Envelope, Incoming, Reply, ReplyContext, signature};

const TOKEN: &str = "spamtest";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx2c2769f8efd9abc2";
const TS: &str = "1409735669";
const NONCE: &str = "1320562132";
const TEXT: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，请问今天的活动几点开始？]]></Content><MsgId>6054768590064713728</MsgId></xml>";

fn inbound(cipher: &Cipher, body: &str, sig: &str) -> Incoming {
    let envelope = Envelope::parse(body).unwrap();
    let xml = envelope.open(cipher, TOKEN, TS, NONCE, sig).unwrap();
    Incoming::parse(&xml).unwrap()
}

fn reply(cipher: &Cipher, msg: &Incoming) -> String {
    let xml = Reply::text("活动晚上八点开始，欢迎参加！")
        .to_xml(&ReplyContext::answering(msg, 1409735670))
        .unwrap();
    EncryptedReply::seal_xml(cipher, TOKEN, &xml, "1409735670", "991823", [7; 16]).unwrap()
}

fn benches(c: &mut Criterion) {
    let cipher = Cipher::new(KEY, APPID).unwrap();
    let encrypt = cipher.encrypt(TEXT, [1; 16]).unwrap();
    let sig = signature::sign_msg(TOKEN, TS, NONCE, &encrypt);
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    let plain_sig = signature::sign(TOKEN, TS, NONCE);
    let msg = inbound(&cipher, &body, &sig);

    c.bench_function("signature_verify", |b| {
        b.iter(|| signature::verify(black_box(TOKEN), black_box(TS), black_box(NONCE), black_box(&plain_sig)))
    });
    c.bench_function("plain_parse_text", |b| b.iter(|| Incoming::parse(black_box(TEXT)).unwrap()));
    c.bench_function("safe_inbound_text", |b| b.iter(|| inbound(&cipher, black_box(&body), black_box(&sig))));
    c.bench_function("reply_build_encrypt", |b| b.iter(|| reply(&cipher, black_box(&msg))));
    c.bench_function("safe_roundtrip_inbound_and_reply", |b| {
        b.iter(|| {
            let msg = inbound(&cipher, black_box(&body), black_box(&sig));
            reply(&cipher, &msg)
        })
    });
}

criterion_group!(proto, benches);
criterion_main!(proto);
