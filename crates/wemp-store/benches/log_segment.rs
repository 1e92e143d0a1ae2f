//! What the SQLite message log spends a record: encoding a batch into a segment, compressing
//! it, and the transaction, for callgrind (instructions do not depend on the machine's load;
//! a criterion timing of 0.5 % does). Not a criterion bench: it appends `BATCHES` batches of
//! `BATCH` records (default 40 of 256, what the log writer appends at full load) through
//! [`MessageLog::append_shared`] to a fresh SQLite log, then prints the records' bytes
//! before and after LZ4 and the file's size a record.
//!
//! The records are those `wemp serve` logs for `scripts/bench-serve`'s load (safe-mode text
//! messages from a thousand users, answered by the demo rules): nine admission checks with
//! the notes admission writes, the query WeChat signs, the decrypted and the reply XML. With
//! `wechat` as the third argument, openids, nonces and timestamps vary as WeChat's do
//! (random openids, nonces of nine or ten digits, a timestamp a second) instead of the
//! bench's (`oBench…`, the MsgId as the nonce, one timestamp).
//!
//! ```sh
//! cargo bench -p wemp-store --bench log_segment --no-run     # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='wemp_store::sqlite::log::append_log' BINARY [BATCH [BATCHES [wechat]]]
//! callgrind_annotate --inclusive=yes callgrind.out.PID | grep -E 'append_log|encode_into|compress_reusing'
//! ```
//!
//! (`BINARY` alone, outside valgrind, also prints the time a record, for what it is worth.)
#![allow(missing_docs, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wemp_proto::Mode;
use wemp_proto::admission::{Check, CheckKind, Note};
use wemp_store::log::{DedupOutcome, DeliveryRecord, MessageLog, RequestHeaders, RequestQuery};
use wemp_store::sqlite::SqliteMessageLog;

const APPID: &str = "wx62656e6368776d70";
const TO: &str = "gh_0be4c4be4c4b";

/// A small deterministic generator (xorshift), so that every run encodes the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex40(&mut self) -> String {
        (0..5).map(|_| format!("{:016x}", self.next())[..8].to_owned()).collect()
    }
}

fn fixed(kind: CheckKind, note: &'static str) -> Check {
    Check { kind, passed: true, note: Note::from(note) }
}

/// A note admission writes: kept inline in the note, as admission keeps it.
fn written(kind: CheckKind, note: String) -> Check {
    Check { kind, passed: true, note: Note::copied(&note) }
}

/// The `n`-th record of the load.
fn record(n: u64, wechat: bool, rng: &mut Rng, openids: &[String]) -> DeliveryRecord {
    let base_ms: i64 = 1_796_517_911_759;
    let msg_id = 7_715_985_570_765_209_000 + n;
    let received_at_ms = base_ms + (n as i64) / 2;
    let (openid, timestamp, nonce) = if wechat {
        let ts = (received_at_ms / 1000) as u64 - rng.below(3);
        (
            openids[rng.below(openids.len() as u64) as usize].clone(),
            ts,
            100_000_000 + rng.below(1_900_000_000),
        )
    } else {
        (openids[(n % 1000) as usize].clone(), 1_796_517_886, msg_id)
    };
    let content = if wechat {
        ["hello", "help", "你好", "order 42", "hi there"][rng.below(5) as usize]
    } else {
        "hello"
    };
    let raw_xml = format!(
        "<xml><ToUserName><![CDATA[{TO}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    );
    let reply_xml = format!(
        "<xml><ToUserName><![CDATA[{openid}]]></ToUserName><FromUserName><![CDATA[{TO}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[Hello, {openid}!]]></Content></xml>",
        received_at_ms / 1000
    );
    // The envelope: base64 of the AES of 20 bytes, the XML and the appid, padded to 32.
    let encrypt = (20 + raw_xml.len() + APPID.len()) / 32 * 32 + 32;
    let encrypt = encrypt.div_ceil(3) * 4;
    let query = format!(
        "signature={}&timestamp={timestamp}&nonce={nonce}&openid={openid}&encrypt_type=aes&msg_signature={}",
        rng.hex40(),
        rng.hex40()
    );
    let mut e = DeliveryRecord::new(n, received_at_ms);
    e.appid = Some(APPID.into());
    e.openid = Some(openid.clone());
    e.msg_type = Some("text".into());
    e.msg_id = Some(msg_id);
    e.dedup_key = Some(format!("{APPID}:msg:{openid}:{msg_id}").into());
    e.mode = Some(Mode::Safe);
    e.dedup = Some(DedupOutcome::New);
    e.summary = Some(content.to_owned());
    e.raw_xml = Some(raw_xml.into());
    e.reply_xml = Some(reply_xml);
    e.status = 200;
    e.latency = Duration::from_micros(200 + rng.below(700));
    e.handler = Some("hello".into());
    e.peer = Some(format!("127.0.0.1:{}", 40_000 + rng.below(20_000)).parse().unwrap());
    e.query = RequestQuery::new(&query);
    let length = (encrypt + 94).to_string();
    e.headers = RequestHeaders::from_pairs([
        ("host", &b"127.0.0.1"[..]),
        ("content-type", b"text/xml"),
        ("content-length", length.as_bytes()),
    ]);
    let skew = received_at_ms / 1000 - timestamp as i64;
    e.checks = vec![
        fixed(CheckKind::Query, "signature, timestamp and nonce present"),
        written(CheckKind::Account, format!("path \"/wechat\" selects account {APPID}")),
        fixed(CheckKind::Signature, "matches the account's Token over timestamp and nonce"),
        written(CheckKind::Timestamp, format!("{skew} s from server time (window 300 s)")),
        fixed(CheckKind::Body, "acceptable XML, safe mode"),
        fixed(CheckKind::Mode, "safe request to a compatible-mode account"),
        written(CheckKind::Envelope, format!("<Encrypt> of {encrypt} characters")),
        fixed(CheckKind::MsgSignature, "matches over timestamp, nonce and <Encrypt>"),
        written(CheckKind::Decrypt, format!("decrypted for appid {APPID}")),
    ];
    e
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let batch: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(256);
    let batches: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let wechat = args.get(2).is_some_and(|a| a == "wechat");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let openids: Vec<String> = (0..1000)
        .map(|i| {
            if wechat {
                let tail: String = (0..27).map(|_| char::from(alphabet[rng.below(64) as usize])).collect();
                format!("o{tail}")
            } else {
                format!("oBench{i:022}")
            }
        })
        .collect();
    let records: Vec<Arc<[Arc<DeliveryRecord>]>> = (0..batches)
        .map(|b| {
            (0..batch)
                .map(|i| Arc::new(record((b * batch + i) as u64, wechat, &mut rng, &openids)))
                .collect::<Vec<_>>()
                .into()
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("wemp-log-segment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wemp.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (elapsed, raw_bytes, body_bytes, file_bytes) = rt.block_on(async {
        let log = SqliteMessageLog::open(&path).await.unwrap();
        let start = Instant::now();
        for b in &records {
            log.append_shared(Arc::clone(b)).await.unwrap();
        }
        let elapsed = start.elapsed();
        let read = log.query(&Default::default()).await.unwrap();
        assert_eq!(read.len(), batch * batches);
        for ((_, got), want) in read.iter().zip(records.iter().flat_map(|b| b.iter())) {
            let mut want = DeliveryRecord::clone(want);
            want.id = 0;
            assert_eq!(got, &want);
        }
        drop(log);
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = c.prepare("SELECT body FROM message_log_segments").unwrap();
        let (mut raw, mut body) = (0u64, 0u64);
        for b in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
            let b = b.unwrap();
            // An LZ4 body: its format, the records' length (u32 LE), the block.
            raw += u64::from(u32::from_le_bytes(b[1..5].try_into().unwrap())) + 1;
            body += b.len() as u64;
        }
        (elapsed, raw, body, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0))
    });
    let n = (batch * batches) as f64;
    println!(
        "{batches} batches of {batch} ({}): {:.0} ns a record; body {:.1} bytes a record (LZ4 of {:.1}), file {:.1}",
        if wechat { "wechat" } else { "bench" },
        elapsed.as_nanos() as f64 / n,
        body_bytes as f64 / n,
        raw_bytes as f64 / n,
        file_bytes as f64 / n,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
