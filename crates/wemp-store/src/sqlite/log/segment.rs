//! The body of a message-log segment: the entries of one appended batch, encoded compactly.
//!
//! ```text
//! body    = 12:u8 n:u32le record* table       uncompressed (n = the length of the records)
//!         | 13:u8 len:u32le lz4-block(n record* table)
//!                                             LZ4 block format; len = the length of what it
//!                                             compresses (what appends write for records
//!                                             without a digest in their query)
//!         | 14:u8 len:u32le m:u32le lifted lz4-block(n record* table, its digests lifted out)
//!                                             what appends write: the query's digests are not
//!                                             in what LZ4 compresses but beside it (`lifted`, m
//!                                             bytes); len = the length of n record* table with
//!                                             them
//! lifted  = (gap:varint digest:20)*           each digest taken out of n record* table, in
//!                                             order: it goes back gap bytes (of what LZ4 gives)
//!                                             after the one before it (from the start of n)
//! record  = index:varint len:u32le fields (len = the length of fields)
//! fields  = received_at_ms:zigzag-varint appid:text openid:str msg_type:text
//!                                             (what filters look at first; "" for none)
//!           msg_id:opt-varint dedup_key:key event:opt-text mode:u8 dedup:u8
//!           summary:opt-text raw_xml:opt-doc reply_xml:opt-doc outcome status:varint
//!           latency_us:varint handler:opt-text error:opt-str rejection:opt-rejection
//!           peer query headers:text attempts:varint checks forward:opt-str
//! table   = k:u32le end:u32le*k bytes          the body's strings: the i-th (from 0) is
//!                                             bytes[end(i-1)..end(i)] (end(-1) = 0); bytes
//!                                             is end(k-1) long (0 for k = 0)
//! text    = (2 len):varint utf-8 bytes        a string in place
//!         | (2 i + 1):varint                  the i-th string of the body's table
//! doc     = o:varint len:varint utf-8 bytes  a document (the decrypted message, the reply):
//!                                             o = 0, as it is; o = p + 1, the record's openid
//!                                             taken out of it at byte p (put back there)
//! key     = 0 none | 1 str
//!         | 2                                 the standard form: the bytes of the record's
//!                                             appid and openid as written ("" for none) and
//!                                             its msg_id (present) in decimal, shortest, as
//!                                             `appid:msg:openid:msg_id`
//! outcome = 0 answered | 1 handler_error | 2 deadline | 3 late sink | 4 verified | 5 rejected
//! sink    = 0 none | 1 delivered | 2 window_expired | 3 quota_exceeded | 4 unsupported
//!         | 5 logged | 6 failed errcode:opt-zigzag-varint message:str
//! rejection = reason:str code:opt-zigzag-varint param:str message:str
//! peer    = 0 none | 4 ipv4:4 port:u16le | 6 ipv6:16 port:u16le scope-id:varint
//! query   = piece* 0                   the query string cut at each `&` ("" has no piece)
//! piece   = 1:head                     a piece without `=`
//!         | 2:head value:str           `name=value`
//!         | 3:head digest:20           `name=` 40 lowercase hex digits (`signature`,
//!                                      `msg_signature`), as the 20 bytes they spell
//!         | 4:head n:varint            `name=` a number of 1 to 19 digits without a leading
//!                                      zero (`timestamp`, `nonce`)
//!         | 5:head                     `name=` the record's openid (not empty: `openid`)
//! k:head  = (k + 8n):u8                the n-th name WeChat sends (from 1: signature,
//!                                      timestamp, nonce, openid, encrypt_type, msg_signature,
//!                                      echostr)
//!         | k:u8 name:str              another name
//! checks  = n:varint (kind passed:u8 note:text)*    (admission's checks)
//! kind    = k:u8                       the k-th kind (from 1: method, query, account,
//!                                      signature, timestamp, mode, body, envelope,
//!                                      msg_signature, decrypt)
//!         | 0 name:str                 another kind, by its name
//! forward = the JSON of the forwarded call ([`ForwardRecord`](crate::ForwardRecord))
//! str     = len:varint utf-8 bytes;  opt-x = 0 | 1 x
//! ```
//!
//! Most of a record's bytes repeat from one record to the next: the notes of the admission
//! checks, the header block, the appid, the handler, the dedup key (built from fields
//! written beside it). The writer puts a `text` in the table the first time it differs from
//! the one written last in the same place (the same field; a check's note: the same check
//! kind), and refers to that entry while it does not change, comparing the pointers before
//! the bytes (a fixed note is the same `&'static str` every time); a value that changes
//! every record costs its table entry and a reference of one to three bytes. A record
//! refers to the table, never to another record, so that records are copied or dropped as
//! they are (`rebuild` keeps the whole table). With the safe-mode messages of
//! `scripts/bench-serve`, a record takes ~765 bytes before LZ4 instead of 1258 in format 8,
//! and LZ4 spends its time per byte it reads.
//!
//! `query` is the query string as it arrived ([`RequestQuery::as_str`]): its pieces joined
//! with `&` give it back byte for byte. The signatures and numbers WeChat puts there differ
//! from one record to the next, so LZ4 cannot shrink them and spends most of its time on
//! such bytes: packed, the query of a safe-mode message takes 94 bytes instead of 207, and a
//! record about 40 bytes fewer after compression. `headers` is the header block
//! ([`RequestHeaders::as_str`]). The two digests (`signature`, `msg_signature`) then still
//! took LZ4 ~1 000 instructions a record (each of their bytes is a position it hashes and
//! looks up, for nothing), more than the rest of the query: since format 11 they are
//! lifted out of what it reads and stored as they are: LZ4 −1 100 a record, the encoder
//! +50 to +90, and the body ~3 bytes a record smaller (a digest's gap is a byte or two, and
//! LZ4 writes fewer sequences). Reading puts them back, a format-12 body (format 14; format
//! 9 of format 11) as before; a partial delete rewrites such a body as format 13 (10).
//!
//! The record's openid (`FromUserName`) is also in the decrypted message, in the reply
//! (`ToUserName`) and in the query: since format 12 it is written once, in its own field,
//! and the documents and the query refer to it (a document gives where it was taken out; it
//! is looked for where the last record's was, one comparison, before a search). Each copy
//! differed from the record before and cost LZ4 a sequence and its hashed positions: with
//! `scripts/bench-serve`'s messages LZ4 −600 instructions a record, the body ~17 % smaller.
//!
//! Bodies of formats 9 (uncompressed), 10 (LZ4) and 11 (LZ4, digests lifted), written before
//! the openid was referred to, hold each document as an `opt-str` and no piece of kind 5;
//! they read as the same record.
//!
//! Bodies of formats 7 (uncompressed) and 8 (LZ4), written before the table, hold no table
//! (`body = 7:u8 record*`, `8:u8 len:u32le lz4-block(record*)`) and every string in place:
//! `str` for each `text`, `opt-str` for each `opt-text` and for the dedup key; they read as
//! the same record.
//!
//! Bodies of formats 5 (uncompressed) and 6 (LZ4), written before the query was packed, hold
//! it as one string (`query:str`) and the check kinds by name (`kind:str`); they read as the
//! same record. Bodies of formats 3 (uncompressed) and 4 (LZ4), written before the query and
//! headers were kept as they came, hold each as a map instead
//! (`map = n:varint (key:str value:str)*`: the parameters decoded, the headers by name) and
//! the peer as text (`peer:opt-str`, `1.2.3.4:5678`); they read as the same record.
//!
//! Records of formats 3 to 8 written before checks and forwarded calls were kept end after
//! `attempts`; they read with neither.
//!
//! Bodies of formats 1 (uncompressed) and 2 (LZ4), written before the record was typed,
//! hold the older fields (`… msg_id:opt-varint dedup_key event:opt-str mode dedup summary
//! raw_xml reply_xml:opt-str outcome latency_ms:varint error:opt-str`, with mode, dedup and
//! outcome as words); they are read into typed records.
//!
//! An entry's id is the segment's `first_id` plus its `index`. Records carry their index so
//! that dropping some of them (`delete_before`) leaves the others' ids as they were; the
//! length prefix lets a reader skip a record that fails the filters without decoding it.

use std::net::{SocketAddr, SocketAddrV6};
use std::time::Duration;

use wemp_proto::admission::CheckKind;
use wemp_proto::{Mode, RejectReason};

use crate::log::{
    DedupOutcome, DeliveryRecord, LogQuery, RecordOutcome, RejectionRecord, RequestHeaders, RequestQuery,
    SinkOutcome,
};

/// Uncompressed records, before the record was typed.
const FORMAT_RAW_V1: u8 = 1;
/// LZ4 of the records of a [`FORMAT_RAW_V1`] body.
const FORMAT_LZ4_V1: u8 = 2;
/// Uncompressed records, their query and headers as maps.
const FORMAT_RAW_V2: u8 = 3;
/// LZ4 of the records of a [`FORMAT_RAW_V2`] body.
const FORMAT_LZ4_V2: u8 = 4;
/// Uncompressed records, the query as one string.
const FORMAT_RAW_V3: u8 = 5;
/// LZ4 of the records of a [`FORMAT_RAW_V3`] body.
const FORMAT_LZ4_V3: u8 = 6;
/// Uncompressed records, every string in place.
const FORMAT_RAW_V4: u8 = 7;
/// LZ4 of the records of a [`FORMAT_RAW_V4`] body.
const FORMAT_LZ4_V4: u8 = 8;
/// Uncompressed records and the body's table of strings, each record's openid in place in its
/// documents and query.
const FORMAT_RAW_V5: u8 = 9;
/// LZ4 of a [`FORMAT_RAW_V5`] body, as [`FORMAT_LZ4`] is of a [`FORMAT_RAW`] one.
const FORMAT_LZ4_V5: u8 = 10;
/// A [`FORMAT_RAW_V5`] body as [`FORMAT_LZ4_LIFTED`] is a [`FORMAT_RAW`] one.
const FORMAT_LZ4_LIFTED_V5: u8 = 11;
/// Uncompressed records and the body's table of strings, each record's openid referred to
/// where its documents and query carry it.
const FORMAT_RAW: u8 = 12;
/// LZ4 (block format) of a [`FORMAT_RAW`] body past its format byte, after its length (u32 LE).
const FORMAT_LZ4: u8 = 13;
/// A [`FORMAT_RAW`] body past its format byte, its query digests lifted out (beside the LZ4
/// of the rest, uncompressed).
const FORMAT_LZ4_LIFTED: u8 = 14;

/// The bytes of a query digest (`digest:20`).
const DIGEST: usize = 20;

/// The compressed format of an uncompressed one, and back.
const PACKED: [(u8, u8); 6] = [
    (FORMAT_RAW_V1, FORMAT_LZ4_V1),
    (FORMAT_RAW_V2, FORMAT_LZ4_V2),
    (FORMAT_RAW_V3, FORMAT_LZ4_V3),
    (FORMAT_RAW_V4, FORMAT_LZ4_V4),
    (FORMAT_RAW_V5, FORMAT_LZ4_V5),
    (FORMAT_RAW, FORMAT_LZ4),
];

/// Whether bodies of the uncompressed format `format` have a table of strings.
fn has_table(format: u8) -> bool {
    matches!(format, FORMAT_RAW | FORMAT_RAW_V5)
}

/// Why a body does not decode.
pub(super) type Corrupt = &'static str;

/// Encodes `(index, entry)` pairs, indexes increasing: a [`FORMAT_RAW`] body (what
/// [`encode_into`] writes, its lifted digests put back).
#[cfg(test)]
fn encode<'a>(records: impl Iterator<Item = (u64, &'a DeliveryRecord)>) -> Vec<u8> {
    let (mut out, mut lifted) = (Vec::new(), Lifted::new());
    encode_into(&mut out, &mut Strings::default(), &mut lifted, records);
    let mut raw = vec![out[0]];
    unlift(&mut raw, &out[1..], &lifted.bytes).expect("digests lifted from the body");
    raw
}

/// The strings of a body's table as they are written, kept between batches so that every
/// batch does not allocate them afresh; and where the last record's openid was in its
/// documents, so that every batch does not search for it afresh.
#[derive(Debug, Default)]
pub(super) struct Strings {
    /// The strings one after the other.
    bytes: Vec<u8>,
    /// Where each ends in `bytes`.
    ends: Vec<u32>,
    /// Where the last record's openid was found in its decrypted message and in its reply
    /// (where the next one's is looked for first: one comparison, where a search builds a
    /// finder of ~1 000 instructions).
    openid_at: [usize; 2],
}

impl Strings {
    pub(super) const fn new() -> Self {
        Self { bytes: Vec::new(), ends: Vec::new(), openid_at: [0; 2] }
    }

    /// The memory held, in bytes.
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity() + 4 * self.ends.capacity()
    }
}

/// The query digests lifted out of a body as it is encoded (`lifted` in the module docs),
/// kept between batches like [`Strings`]. LZ4 finds nothing to match in a digest and
/// spends its time on each byte it reads, so they are kept beside what it compresses.
#[derive(Debug)]
pub(super) struct Lifted {
    /// `(gap:varint digest:20)*`.
    bytes: Vec<u8>,
    /// How many digests.
    digests: usize,
    /// Where in the body being encoded the last one was lifted from (1, past the format
    /// byte, before any).
    at: usize,
}

impl Default for Lifted {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifted {
    pub(super) const fn new() -> Self {
        Self { bytes: Vec::new(), digests: 0, at: 1 }
    }

    /// The memory held, in bytes.
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.digests = 0;
        self.at = 1;
    }

    /// `digest` lifted out of the body `out` at its end.
    #[inline]
    fn push(&mut self, out: &[u8], digest: &[u8; DIGEST]) {
        varint(&mut self.bytes, (out.len() - self.at) as u64);
        self.bytes.extend_from_slice(digest);
        self.digests += 1;
        self.at = out.len();
    }
}

/// The places a `text` is written in, each remembering the string it wrote last.
#[derive(Clone, Copy)]
enum Place {
    Appid,
    MsgType,
    Event,
    Summary,
    Handler,
    Headers,
    /// The note of a check, by its kind's number (0: another kind).
    Note(u8),
}

impl Place {
    const COUNT: usize = 6 + CHECK_KINDS.len() + 1;

    fn slot(self) -> usize {
        match self {
            Self::Appid => 0,
            Self::MsgType => 1,
            Self::Event => 2,
            Self::Summary => 3,
            Self::Handler => 4,
            Self::Headers => 5,
            Self::Note(code) => 6 + usize::from(code),
        }
    }
}

/// A body's table being written: [`Strings`], and the string each [`Place`] wrote last with
/// its number in the table.
struct Table<'s, 'a> {
    strings: &'s mut Strings,
    last: [(&'a [u8], u32); Place::COUNT],
}

impl<'a> Table<'_, 'a> {
    /// Writes `s` as a `text`: in place when empty, else as the number of its entry,
    /// the one `place` wrote last when `s` is the same string (the same pointer, or the
    /// same bytes), a new one if not. Inlined: `place` is then a constant, and a string
    /// written before costs a few instructions (a call cost ~25 more).
    #[inline(always)]
    fn text(&mut self, out: &mut Vec<u8>, place: Place, s: &'a [u8]) {
        varint(out, self.text_head(place, s));
    }

    /// What [`Table::text`] writes for `s`, as the number its varint spells: 0 when `s` is
    /// empty, else `2 i + 1` for its `i`-th entry.
    #[inline(always)]
    fn text_head(&mut self, place: Place, s: &'a [u8]) -> u64 {
        if s.is_empty() {
            return 0;
        }
        let last = &mut self.last[place.slot()];
        let i = if std::ptr::eq(last.0, s) || last.0 == s { last.1 } else { self.add(place, s) };
        2 * u64::from(i) + 1
    }

    /// `s` as the table's next string, the one `place` wrote last; its number.
    #[inline(never)]
    fn add(&mut self, place: Place, s: &'a [u8]) -> u32 {
        let i = u32::try_from(self.strings.ends.len()).expect("a segment under 4 GiB");
        self.strings.bytes.extend_from_slice(s);
        self.strings.ends.push(u32::try_from(self.strings.bytes.len()).expect("a segment under 4 GiB"));
        self.last[place.slot()] = (s, i);
        i
    }

    #[inline(always)]
    fn opt_text(&mut self, out: &mut Vec<u8>, place: Place, s: Option<&'a str>) {
        match s {
            Some(s) => {
                out.push(1);
                self.text(out, place, s.as_bytes());
            }
            None => out.push(0),
        }
    }
}

/// Encodes `(index, entry)` pairs, indexes increasing, into `out` (cleared first: the
/// caller reuses one buffer, so that every batch does not fault in fresh memory), the
/// table's strings gathered in `strings` (cleared first, reused alike), the query digests
/// lifted into `lifted` (cleared first, reused alike): the [`FORMAT_RAW`] body is `out`
/// with `lifted` put back in, what [`compress_reusing`] stores.
pub(super) fn encode_into<'a>(
    out: &mut Vec<u8>,
    strings: &mut Strings,
    lifted: &mut Lifted,
    records: impl Iterator<Item = (u64, &'a DeliveryRecord)>,
) {
    // No reservation: the buffer is reused, and has grown to what batches need.
    out.clear();
    out.extend_from_slice(&[FORMAT_RAW, 0, 0, 0, 0]);
    strings.bytes.clear();
    strings.ends.clear();
    lifted.clear();
    let mut table = Table { strings, last: [(&[], 0); Place::COUNT] };
    for (index, e) in records {
        let out = &mut *out;
        varint(out, index);
        let at = out.len();
        let digests = lifted.digests;
        out.extend_from_slice(&[0; 4]);
        encode_fields(out, &mut table, lifted, e);
        let len = out.len() - at - 4 + DIGEST * (lifted.digests - digests);
        let len = u32::try_from(len).expect("a log entry under 4 GiB");
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    let n = u32::try_from(out.len() - 5 + DIGEST * lifted.digests).expect("a segment under 4 GiB");
    out[1..5].copy_from_slice(&n.to_le_bytes());
    let strings = &*table.strings;
    out.extend_from_slice(&u32::try_from(strings.ends.len()).expect("a segment under 4 GiB").to_le_bytes());
    for end in &strings.ends {
        out.extend_from_slice(&end.to_le_bytes());
    }
    out.extend_from_slice(&strings.bytes);
}

/// Whether `key` is `appid:msg:openid:msg_id` (msg_id in decimal): the standard form of a
/// dedup key (`key` in the module docs), written as one byte.
fn is_standard_key(key: &[u8], appid: &[u8], openid: &[u8], msg_id: u64) -> bool {
    let Some(rest) = key.strip_prefix(appid).and_then(|r| r.strip_prefix(b":msg:")) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(openid).and_then(|r| r.strip_prefix(b":")) else {
        return false;
    };
    // `decimal` takes the shortest digits only (as `u64` displays), up to 19 of them: a
    // longer msg_id is written as it is.
    decimal(rest) == Some(msg_id)
}

fn encode_fields<'a>(
    out: &mut Vec<u8>,
    table: &mut Table<'_, 'a>,
    lifted: &mut Lifted,
    e: &'a DeliveryRecord,
) {
    let appid = e.appid.as_deref().unwrap_or_default();
    let openid = e.openid.as_deref().unwrap_or_default();
    varint(out, zigzag(e.received_at_ms));
    table.text(out, Place::Appid, appid.as_bytes());
    string(out, openid);
    table.text(out, Place::MsgType, e.msg_type.as_deref().unwrap_or_default().as_bytes());
    opt_varint(out, e.msg_id);
    match (e.dedup_key.as_deref(), e.msg_id) {
        (None, _) => out.push(0),
        (Some(key), Some(msg_id))
            if is_standard_key(key.as_bytes(), appid.as_bytes(), openid.as_bytes(), msg_id) =>
        {
            out.push(2);
        }
        (Some(key), _) => {
            out.push(1);
            string(out, key);
        }
    }
    table.opt_text(out, Place::Event, e.event.as_deref());
    let mode = match e.mode {
        None => 0,
        Some(Mode::Plain) => 1,
        Some(Mode::Compatible) => 2,
        Some(Mode::Safe) => 3,
    };
    out.extend_from_slice(&[mode, e.dedup.map_or(0, |d| d as u8 + 1)]);
    table.opt_text(out, Place::Summary, e.summary.as_deref());
    let [raw_at, reply_at] = &mut table.strings.openid_at;
    opt_doc(out, raw_at, openid.as_bytes(), e.raw_xml.as_deref());
    opt_doc(out, reply_at, openid.as_bytes(), e.reply_xml.as_deref());
    match &e.outcome {
        RecordOutcome::Answered => out.push(0),
        RecordOutcome::HandlerError => out.push(1),
        RecordOutcome::Deadline => out.push(2),
        RecordOutcome::Late { sink } => {
            out.push(3);
            match sink {
                None => out.push(0),
                Some(SinkOutcome::Delivered) => out.push(1),
                Some(SinkOutcome::WindowExpired) => out.push(2),
                Some(SinkOutcome::QuotaExceeded) => out.push(3),
                Some(SinkOutcome::Unsupported) => out.push(4),
                Some(SinkOutcome::Logged) => out.push(5),
                Some(SinkOutcome::Failed { errcode, message }) => {
                    out.push(6);
                    opt_varint(out, errcode.map(zigzag));
                    string(out, message);
                }
            }
        }
        RecordOutcome::Verified => out.push(4),
        RecordOutcome::Rejected => out.push(5),
        RecordOutcome::HungUp => out.push(6),
    }
    varint(out, u64::from(e.status));
    varint(out, u64::try_from(e.latency.as_micros()).unwrap_or(u64::MAX));
    table.opt_text(out, Place::Handler, e.handler.as_deref());
    opt_string(out, e.error.as_deref());
    match &e.rejection {
        Some(r) => {
            out.push(1);
            string(out, r.reason.as_str());
            opt_varint(out, r.code.map(|c| zigzag(i64::from(c))));
            string(out, &r.param);
            string(out, &r.message);
        }
        None => out.push(0),
    }
    match e.peer {
        None => out.push(0),
        Some(SocketAddr::V4(a)) => {
            let ([a0, a1, a2, a3], [p0, p1]) = (a.ip().octets(), a.port().to_le_bytes());
            out.extend_from_slice(&[4, a0, a1, a2, a3, p0, p1]);
        }
        Some(SocketAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_le_bytes());
            varint(out, u64::from(a.scope_id()));
        }
    }
    encode_query(out, lifted, e.query.as_str(), openid.as_bytes());
    table.text(out, Place::Headers, e.headers.as_str().as_bytes());
    varint(out, u64::from(e.attempts));
    varint(out, e.checks.len() as u64);
    for c in &e.checks {
        let code = check_code(c.kind);
        // As bytes: an inline note is compared or copied without a pass over it.
        let note = table.text_head(Place::Note(code), c.note.as_bytes());
        // Most checks are three bytes (a known kind, a note among the table's first 64):
        // written at once, not a push each.
        if code != 0 && note < 0x80 {
            out.extend_from_slice(&[code, u8::from(c.passed), note as u8]);
            continue;
        }
        out.push(code);
        if code == 0 {
            string(out, c.kind.as_str());
        }
        out.push(u8::from(c.passed));
        varint(out, note);
    }
    let forward = e.forward.as_ref().and_then(|f| serde_json::to_string(f).ok());
    opt_string(out, forward.as_deref());
}

/// Writes `query` as its pieces (`query` in the module docs), eight bytes at a time where it
/// can: a digest is recognised by where it ends, then its digits checked, and lifted into
/// `lifted` (its place kept, its bytes not written to `out`). WeChat sends its
/// names in the order of [`QUERY_NAMES`]: the one after the last name read is tried first, in
/// one comparison, before the `=` is looked for and the name looked up.
fn encode_query(out: &mut Vec<u8>, lifted: &mut Lifted, query: &str, openid: &[u8]) {
    let b = query.as_bytes();
    let ends_at = |e: usize| e == b.len() || b[e] == b'&';
    let mut p = 0;
    let mut last = 0;
    while !b.is_empty() && p <= b.len() {
        let (known, name_end) = match next_name_at(&b[p..], last) {
            Some(len) => (last + 1, p + len),
            None => {
                let end = find(b, p, |x| byte_is(x, b'=') | byte_is(x, b'&'), |c| c == b'=' || c == b'&');
                (query_name(&b[p..end]), end)
            }
        };
        if known != 0 {
            last = known;
        }
        let head = |out: &mut Vec<u8>, kind: u8| {
            out.push(kind + 8 * known);
            if known == 0 {
                bytes(out, &b[p..name_end]);
            }
        };
        if ends_at(name_end) {
            head(out, 1);
            p = name_end + 1;
            continue;
        }
        let v = name_end + 1;
        if let Some(digest) = b.get(v..v + 40).filter(|_| ends_at(v + 40)).and_then(hex_digest) {
            head(out, 3);
            lifted.push(out, &digest);
            p = v + 41;
            continue;
        }
        let end = find(b, v, |x| byte_is(x, b'&'), |c| c == b'&');
        let value = &b[v..end];
        if known == OPENID && !openid.is_empty() && value == openid {
            head(out, 5);
        } else if let Some(n) = decimal(value) {
            head(out, 4);
            varint(out, n);
        } else {
            head(out, 2);
            bytes(out, value);
        }
        p = end + 1;
    }
    out.push(0);
}

/// The length of the name WeChat sends after the `last`-th of [`QUERY_NAMES`] (from 1; 0 for
/// none yet), when `rest` starts with it and `=`.
fn next_name_at(rest: &[u8], last: u8) -> Option<usize> {
    // Constant indexes, so that each comparison is of a length known here, which the
    // compiler writes out (indexing by `last` cost ~170 instructions a record more; names
    // spelled out with their `=` here, ~40 less, but a second list of them).
    let at = |name: &str| {
        (rest.starts_with(name.as_bytes()) && rest.get(name.len()) == Some(&b'=')).then_some(name.len())
    };
    match last {
        0 => at(QUERY_NAMES[0]),
        1 => at(QUERY_NAMES[1]),
        2 => at(QUERY_NAMES[2]),
        3 => at(QUERY_NAMES[3]),
        4 => at(QUERY_NAMES[4]),
        5 => at(QUERY_NAMES[5]),
        _ => None,
    }
}

/// The check kinds written as their number (from 1). Only ever appended to: bodies refer
/// to them by number.
const CHECK_KINDS: [CheckKind; 10] = [
    CheckKind::Method,
    CheckKind::Query,
    CheckKind::Account,
    CheckKind::Signature,
    CheckKind::Timestamp,
    CheckKind::Mode,
    CheckKind::Body,
    CheckKind::Envelope,
    CheckKind::MsgSignature,
    CheckKind::Decrypt,
];

/// A check kind's number in [`CHECK_KINDS`] (from 1), 0 for a kind added since.
fn check_code(kind: CheckKind) -> u8 {
    match kind {
        CheckKind::Method => 1,
        CheckKind::Query => 2,
        CheckKind::Account => 3,
        CheckKind::Signature => 4,
        CheckKind::Timestamp => 5,
        CheckKind::Mode => 6,
        CheckKind::Body => 7,
        CheckKind::Envelope => 8,
        CheckKind::MsgSignature => 9,
        CheckKind::Decrypt => 10,
        _ => 0,
    }
}

/// The number of `openid` in [`QUERY_NAMES`].
const OPENID: u8 = 4;

/// The names of WeChat's query parameters, written as their number (from 1) in a piece's
/// head. Only ever appended to: bodies refer to them by number.
const QUERY_NAMES: [&str; 7] =
    ["signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature", "echostr"];

/// The number of `name` in [`QUERY_NAMES`] (from 1), 0 for another name.
fn query_name(name: &[u8]) -> u8 {
    QUERY_NAMES.iter().position(|n| n.as_bytes() == name).map_or(0, |i| i as u8 + 1)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The first position from `from` of a byte `one` accepts (or `b.len()`), eight bytes at a
/// time while they last: `word` marks the high bit of the bytes it accepts in a word read
/// little-endian (wrongly, perhaps, above the first one: only the lowest mark is used).
fn find(b: &[u8], from: usize, word: impl Fn(u64) -> u64, one: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while let Some(w) = b.get(i..i + 8) {
        let marks = word(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        if marks != 0 {
            return i + (marks.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !one(b[i]) {
        i += 1;
    }
    i
}

/// The high bit of each byte of `x` equal to `c`, exact up to the first such byte.
fn byte_is(x: u64, c: u8) -> u64 {
    let y = x ^ (ONES * u64::from(c));
    y.wrapping_sub(ONES) & !y & HIGH
}

/// `value` as a number, when it is 1 to 19 ASCII digits without a leading zero (what
/// formats back to the same digits); eight digits at a time while they last.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || (value[0] == b'0' && value.len() > 1) {
        return None;
    }
    let mut n = 0u64;
    let mut words = value.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        // Each byte 0x30..=0x39: its high nibble 3, and still 3 after adding 6.
        const NIBBLES: u64 = ONES * 0xf0;
        if x & NIBBLES != ONES * 0x30 || x.wrapping_add(ONES * 6) & NIBBLES != ONES * 0x30 {
            return None;
        }
        // Pairs of digits, then fours, then the eight (the first digit is the lowest byte).
        let x = ((x & 0x0f00_0f00_0f00_0f00) >> 8) + (x & 0x000f_000f_000f_000f) * 10;
        let x = ((x & 0x00ff_0000_00ff_0000) >> 16) + (x & 0x0000_00ff_0000_00ff) * 100;
        let x = ((x & 0x0000_ffff_0000_0000) >> 32) + (x & 0x0000_0000_0000_ffff) * 10_000;
        n = n * 100_000_000 + x;
    }
    for &d in words.remainder() {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// `value` (40 bytes) as the 20 bytes it spells, when it is 40 lowercase hex digits (a SHA-1
/// digest as WeChat writes it). Eight digits at a time: the hex digits of a word checked
/// and turned into nibbles together, then paired.
fn hex_digest(value: &[u8]) -> Option<[u8; 20]> {
    let mut out = [0; 20];
    for (o, word) in out.chunks_exact_mut(4).zip(value.chunks_exact(8)) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        if x & HIGH != 0 {
            return None;
        }
        // For ASCII bytes, the high bit of `byte + (0x80 - c)` says `byte >= c`, with no carry
        // into the next byte.
        let at_least = |c: u8| x.wrapping_add(ONES * u64::from(0x80 - c)) & HIGH;
        let digit = at_least(b'0') & !at_least(b'9' + 1);
        let letter = at_least(b'a') & !at_least(b'f' + 1);
        if digit | letter != HIGH {
            return None;
        }
        // A digit's nibble is its low four bits; a letter's is those plus 9.
        let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
        let pairs = (nibbles << 4) | (nibbles >> 8);
        o.copy_from_slice(&[pairs as u8, (pairs >> 16) as u8, (pairs >> 32) as u8, (pairs >> 48) as u8]);
    }
    Some(out)
}

/// LZ4's tables of where it saw each group of bytes, kept between batches like [`Strings`]:
/// made afresh for every batch, their 8 KiB (16 KiB for 64 KiB of input or more) were
/// allocated and zeroed each time, in memory gone cold since the last batch. LZ4 still zeroes
/// a table before each use, in place; the one it uses is the one a fresh compression would
/// (by the input's length), so a body is the same bytes either way.
#[derive(Default)]
pub(super) struct Packer {
    /// For inputs under 64 KiB (positions in 16 bits).
    small: Option<lz4_flex::block::CompressTable>,
    /// For larger ones.
    large: Option<lz4_flex::block::CompressTable>,
}

impl Packer {
    pub(super) const fn new() -> Self {
        Self { small: None, large: None }
    }

    /// `records` compressed into `out` (at least their worst case long); the length written.
    fn compress(&mut self, records: &[u8], out: &mut [u8]) -> usize {
        use lz4_flex::block::CompressTable;
        // Where `lz4_flex::block::compress_into` changes tables.
        let table = if records.len() < usize::from(u16::MAX) {
            self.small.get_or_insert_with(CompressTable::small)
        } else {
            self.large.get_or_insert_with(CompressTable::large)
        };
        lz4_flex::block::compress_into_with_table(records, out, table)
            .expect("output sized for the worst case")
    }
}

/// `raw` (an uncompressed body: [`FORMAT_RAW`], or an older format rebuilt) compressed into
/// `out` (cleared first).
pub(super) fn compress_into(out: &mut Vec<u8>, raw: &[u8]) {
    out.clear();
    let n = compress_reusing(out, raw, &Lifted::new(), &mut Packer::new()).len();
    out.truncate(n);
}

/// `raw` compressed as [`compress_into`] does, using `out` as scratch space: the body is the
/// slice returned, and `out` keeps its length (at least the worst case of `raw`) for the
/// next batch. LZ4 writes into a buffer of the worst-case size; zeroing that much for every
/// batch cost a sixth of the compression itself, so bytes left from an earlier batch stay
/// past the body's end and only a growth is zeroed.
///
/// With digests in `lifted` (`raw` and `lifted` as [`encode_into`] leaves them), the body is
/// a [`FORMAT_LZ4_LIFTED`] one: LZ4 of `raw`, the digests beside it. LZ4's table is
/// `packer`'s, reused alike.
pub(super) fn compress_reusing<'a>(
    out: &'a mut Vec<u8>,
    raw: &[u8],
    lifted: &Lifted,
    packer: &mut Packer,
) -> &'a [u8] {
    let records = &raw[1..];
    let head = if lifted.digests == 0 { 5 } else { 9 + lifted.bytes.len() };
    let worst = head + lz4_flex::block::get_maximum_output_size(records.len());
    if out.len() < worst {
        out.resize(worst, 0);
    }
    let len = u32::try_from(records.len() + DIGEST * lifted.digests).expect("a segment under 4 GiB");
    out[1..5].copy_from_slice(&len.to_le_bytes());
    if lifted.digests == 0 {
        out[0] = PACKED.iter().find(|(r, _)| *r == raw[0]).map_or(FORMAT_LZ4, |(_, z)| *z);
    } else {
        out[0] = if raw[0] == FORMAT_RAW_V5 { FORMAT_LZ4_LIFTED_V5 } else { FORMAT_LZ4_LIFTED };
        let m = u32::try_from(lifted.bytes.len()).expect("a segment under 4 GiB");
        out[5..9].copy_from_slice(&m.to_le_bytes());
        out[9..head].copy_from_slice(&lifted.bytes);
    }
    let n = packer.compress(records, &mut out[head..]);
    &out[..head + n]
}

/// The body uncompressed ([`FORMAT_RAW`], or an older uncompressed format), decompressed if
/// need be (and its lifted digests put back).
pub(super) fn plain(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Corrupt> {
    match body.split_first() {
        Some((&(FORMAT_LZ4_LIFTED | FORMAT_LZ4_LIFTED_V5), rest)) => {
            let format = if body[0] == FORMAT_LZ4_LIFTED { FORMAT_RAW } else { FORMAT_RAW_V5 };
            let mut r = Reader(rest);
            let mut u32le = || {
                let b = r.take(4).map_err(|_| "truncated segment")?;
                Ok::<_, Corrupt>(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            let (len, m) = (u32le()?, u32le()?);
            let lifted = r.take(m).map_err(|_| "truncated segment")?;
            let packed = r.0;
            // As below; the lifted digests come on top of what LZ4 gives.
            if len > packed.len().saturating_mul(255).saturating_add(16).saturating_add(m) {
                return Err("segment claims an impossible length");
            }
            let mut stream = vec![0; len];
            let n = lz4_flex::block::decompress_into(packed, &mut stream)
                .map_err(|_| "segment does not decompress")?;
            let mut raw = Vec::with_capacity(1 + len);
            raw.push(format);
            unlift(&mut raw, &stream[..n], lifted)?;
            if raw.len() != 1 + len {
                return Err("segment decompresses to the wrong length");
            }
            Ok(raw.into())
        }
        Some((
            &(FORMAT_LZ4 | FORMAT_LZ4_V5 | FORMAT_LZ4_V4 | FORMAT_LZ4_V3 | FORMAT_LZ4_V2 | FORMAT_LZ4_V1),
            rest,
        )) => {
            let format = PACKED.iter().find(|(_, z)| *z == body[0]).map_or(FORMAT_RAW, |(r, _)| *r);
            let (len, packed) = rest.split_at_checked(4).ok_or("truncated segment")?;
            let len = u32::from_le_bytes(len.try_into().map_err(|_| "truncated segment")?) as usize;
            // LZ4 expands at most ~255:1; a larger claim is corruption, not a reason to
            // allocate gigabytes.
            if len > packed.len().saturating_mul(255).saturating_add(16) {
                return Err("segment claims an impossible length");
            }
            let mut raw = vec![0; 1 + len];
            raw[0] = format;
            let n = lz4_flex::block::decompress_into(packed, &mut raw[1..])
                .map_err(|_| "segment does not decompress")?;
            if n != len {
                return Err("segment decompresses to the wrong length");
            }
            Ok(raw.into())
        }
        _ => Ok(body.into()),
    }
}

/// Appends `stream` to `out` with the digests of `lifted` (`lifted` in the module docs) put
/// back where they were taken from.
fn unlift(out: &mut Vec<u8>, stream: &[u8], lifted: &[u8]) -> Result<(), Corrupt> {
    let mut r = Reader(lifted);
    let mut rest = stream;
    while !r.0.is_empty() {
        let gap = usize::try_from(r.varint().map_err(|_| "bad lifted digest")?).unwrap_or(usize::MAX);
        let (before, after) = rest.split_at_checked(gap).ok_or("bad lifted digest")?;
        out.extend_from_slice(before);
        out.extend_from_slice(r.take(DIGEST).map_err(|_| "bad lifted digest")?);
        rest = after;
    }
    out.extend_from_slice(rest);
    Ok(())
}

/// A body holding only the given records (all of one body), copied as they are (indexes
/// and format kept), with the body's whole table: its records refer to the table, not to
/// one another.
pub(super) fn rebuild<'a>(records: impl Iterator<Item = Record<'a>>) -> Vec<u8> {
    let mut records = records.peekable();
    let (format, table) = records.peek().map_or((FORMAT_RAW, None), |r| (r.format, r.table));
    let mut out = vec![format];
    if has_table(format) {
        out.extend_from_slice(&[0; 4]);
    }
    for r in records {
        out.extend_from_slice(r.bytes);
    }
    if has_table(format) {
        let n = u32::try_from(out.len() - 5).expect("a segment under 4 GiB");
        out[1..5].copy_from_slice(&n.to_le_bytes());
        out.extend_from_slice(table.map_or(&[0; 4][..], |t| t.all));
    }
    out
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    // Two bytes at once (a status, a latency, a document's length), not a push each.
    if (0x80..0x4000).contains(&v) {
        out.extend_from_slice(&[v as u8 | 0x80, (v >> 7) as u8]);
        return;
    }
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    bytes(out, s.as_bytes());
}

/// A `str` from bytes of one (a part of one cut at ASCII bytes).
fn bytes(out: &mut Vec<u8>, s: &[u8]) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn opt_varint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            varint(out, v);
        }
        None => out.push(0),
    }
}

/// Writes `doc` as an `opt-doc`: the record's `openid` taken out where the document carries
/// it (looked for first at `*at`, where the last record's was; `*at` then says where this
/// one's was).
fn opt_doc(out: &mut Vec<u8>, at: &mut usize, openid: &[u8], doc: Option<&str>) {
    let Some(doc) = doc else {
        out.push(0);
        return;
    };
    let doc = doc.as_bytes();
    out.push(1);
    match openid_in(doc, openid, at) {
        Some(p) => {
            varint(out, p as u64 + 1);
            varint(out, (doc.len() - openid.len()) as u64);
            out.extend_from_slice(&doc[..p]);
            out.extend_from_slice(&doc[p + openid.len()..]);
        }
        None => {
            out.push(0);
            bytes(out, doc);
        }
    }
}

/// Where `openid` (not empty) is in `doc`: at `*hint` (one comparison), else where a search
/// finds it first, which becomes the hint.
#[inline]
fn openid_in(doc: &[u8], openid: &[u8], hint: &mut usize) -> Option<usize> {
    if openid.is_empty() {
        return None;
    }
    if doc.get(*hint..*hint + openid.len()) == Some(openid) {
        return Some(*hint);
    }
    let p = memchr::memmem::find(doc, openid)?;
    *hint = p;
    Some(p)
}

#[inline]
fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            string(out, s);
        }
        None => out.push(0),
    }
}

/// The records of a body, in order.
pub(super) fn records(body: &[u8]) -> Result<Records<'_>, Corrupt> {
    match body.split_first() {
        Some((&(FORMAT_RAW | FORMAT_RAW_V5), rest)) => {
            let (n, rest) = rest.split_at_checked(4).ok_or("truncated segment")?;
            let n = u32::from_le_bytes(n.try_into().map_err(|_| "truncated segment")?) as usize;
            let (rest, table) = rest.split_at_checked(n).ok_or("truncated segment")?;
            Ok(Records { rest, format: body[0], table: Some(StringTable::new(table)?) })
        }
        Some((&(FORMAT_RAW_V4 | FORMAT_RAW_V3 | FORMAT_RAW_V2 | FORMAT_RAW_V1), rest)) => {
            Ok(Records { rest, format: body[0], table: None })
        }
        Some(_) => Err("unknown segment format"),
        None => Err("empty segment body"),
    }
}

/// A body's table of strings (`table` in the module docs), read an entry at a time.
#[derive(Clone, Copy)]
struct StringTable<'a> {
    /// The whole table, as a rebuilt body copies it.
    all: &'a [u8],
    /// Where each string ends in `bytes` (u32 LE).
    ends: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> StringTable<'a> {
    fn new(all: &'a [u8]) -> Result<Self, Corrupt> {
        let (k, rest) = all.split_at_checked(4).ok_or("bad string table")?;
        let k = u32::from_le_bytes(k.try_into().map_err(|_| "bad string table")?) as usize;
        let (ends, bytes) =
            rest.split_at_checked(k.checked_mul(4).ok_or("bad string table")?).ok_or("bad string table")?;
        let table = Self { all, ends, bytes };
        let last = if k == 0 { 0 } else { table.end(k - 1) };
        if last != bytes.len() {
            return Err("bad string table");
        }
        Ok(table)
    }

    /// Where the `i`-th string ends (`i` in range).
    fn end(&self, i: usize) -> usize {
        let at = 4 * i;
        u32::from_le_bytes([self.ends[at], self.ends[at + 1], self.ends[at + 2], self.ends[at + 3]]) as usize
    }

    /// The `i`-th string.
    fn get(&self, i: u64) -> Result<&'a str, Corrupt> {
        let i = usize::try_from(i)
            .ok()
            .filter(|&i| i < self.ends.len() / 4)
            .ok_or("string reference out of range")?;
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let s = self.bytes.get(start..self.end(i)).ok_or("bad string table")?;
        std::str::from_utf8(s).map_err(|_| "string is not UTF-8")
    }
}

/// Iterator over a body's records.
pub(super) struct Records<'a> {
    rest: &'a [u8],
    format: u8,
    /// The body's table ([`FORMAT_RAW`]; older formats have none).
    table: Option<StringTable<'a>>,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let all = self.rest;
        let record = (|| {
            let mut r = Reader(all);
            let index = r.varint()?;
            let len = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "short record")?) as usize;
            let mut fields = Reader(r.take(len)?);
            let used = all.len() - r.0.len();
            let received_at_ms = unzigzag(fields.varint()?);
            let appid = fields.text(self.table)?;
            let openid = fields.str()?;
            let msg_type = fields.text(self.table)?;
            Ok((
                Record {
                    bytes: &all[..used],
                    format: self.format,
                    table: self.table,
                    index,
                    received_at_ms,
                    appid,
                    openid,
                    msg_type,
                    rest: fields.0,
                },
                used,
            ))
        })();
        Some(match record {
            Ok((record, used)) => {
                self.rest = &all[used..];
                Ok(record)
            }
            Err(e) => {
                self.rest = &[];
                Err(e)
            }
        })
    }
}

/// One record, its filter fields decoded and the rest not yet.
pub(super) struct Record<'a> {
    bytes: &'a [u8],
    /// The body's uncompressed format: [`FORMAT_RAW`], or [`FORMAT_RAW_V4`] (no table), or
    /// [`FORMAT_RAW_V3`] (the query as one string), or [`FORMAT_RAW_V2`] (query and headers
    /// as maps), or [`FORMAT_RAW_V1`] (written before the record was typed).
    format: u8,
    /// The body's table, for [`FORMAT_RAW`].
    table: Option<StringTable<'a>>,
    /// Position in the segment: the entry's id is the segment's `first_id` plus this.
    pub(super) index: u64,
    /// `received_at_ms` of the entry.
    pub(super) received_at_ms: i64,
    appid: &'a str,
    openid: &'a str,
    msg_type: &'a str,
    rest: &'a [u8],
}

impl Record<'_> {
    /// [`LogQuery::matches`] on the fields decoded so far (the same filters, without
    /// decoding the rest of the entry).
    pub(super) fn may_match(&self, id: i64, q: &LogQuery) -> bool {
        q.appid.as_deref().is_none_or(|a| a == self.appid)
            && q.openid.as_deref().is_none_or(|o| o == self.openid)
            && q.msg_type.as_deref().is_none_or(|t| t == self.msg_type)
            && q.since_ms.is_none_or(|s| self.received_at_ms >= s)
            && q.after_id.is_none_or(|a| id > a)
    }

    /// The whole entry.
    pub(super) fn entry(&self) -> Result<DeliveryRecord, Corrupt> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut e = DeliveryRecord::new(0, self.received_at_ms);
        e.appid = some(self.appid).map(Into::into);
        e.openid = some(self.openid);
        e.msg_type = some(self.msg_type).map(Into::into);
        let mut r = Reader(self.rest);
        if self.format == FORMAT_RAW_V1 {
            e.msg_id = r.opt_varint()?;
            e.dedup_key = some(r.str()?).map(Into::into);
            e.event = r.opt_str()?.map(Into::into);
            e.mode = match r.str()? {
                "plain" => Some(Mode::Plain),
                "compatible" => Some(Mode::Compatible),
                "safe" => Some(Mode::Safe),
                _ => None,
            };
            e.dedup = crate::log::legacy_dedup(r.str()?);
            e.summary = some(r.str()?);
            e.raw_xml = some(r.str()?).map(Into::into);
            e.reply_xml = r.opt_str()?;
            let outcome = r.str()?.to_owned();
            e.latency = Duration::from_millis(r.varint()?);
            e.error = r.opt_str()?;
            (e.outcome, e.rejection) = crate::log::legacy_outcome(&outcome, e.error.as_deref());
            e.status = if e.outcome == RecordOutcome::Rejected { 400 } else { 200 };
        } else {
            let table = self.table;
            e.msg_id = r.opt_varint()?;
            e.dedup_key = match if table.is_some() { r.byte()? } else { u8::from(r.flag()?) } {
                0 => None,
                1 => Some(r.str()?.into()),
                2 => {
                    let msg_id = e.msg_id.ok_or("a standard dedup key without msg_id")?;
                    Some(format!("{}:msg:{}:{msg_id}", self.appid, self.openid).into())
                }
                _ => return Err("bad dedup key"),
            };
            e.event = r.opt_text(table)?.map(|s| s.to_owned().into());
            e.mode = match r.byte()? {
                0 => None,
                1 => Some(Mode::Plain),
                2 => Some(Mode::Compatible),
                3 => Some(Mode::Safe),
                _ => return Err("bad mode"),
            };
            e.dedup = match r.byte()? {
                0 => None,
                1 => Some(DedupOutcome::New),
                2 => Some(DedupOutcome::Joined),
                3 => Some(DedupOutcome::Cached),
                _ => return Err("bad dedup outcome"),
            };
            e.summary = r.opt_text(table)?.map(str::to_owned);
            // The record's openid, where its documents and query refer to it.
            let openid = (self.format == FORMAT_RAW).then_some(self.openid);
            if let Some(openid) = openid {
                e.raw_xml = r.opt_doc(openid)?.map(Into::into);
                e.reply_xml = r.opt_doc(openid)?;
            } else {
                e.raw_xml = r.opt_str()?.map(Into::into);
                e.reply_xml = r.opt_str()?;
            }
            e.outcome = match r.byte()? {
                0 => RecordOutcome::Answered,
                1 => RecordOutcome::HandlerError,
                2 => RecordOutcome::Deadline,
                3 => RecordOutcome::Late {
                    sink: match r.byte()? {
                        0 => None,
                        1 => Some(SinkOutcome::Delivered),
                        2 => Some(SinkOutcome::WindowExpired),
                        3 => Some(SinkOutcome::QuotaExceeded),
                        4 => Some(SinkOutcome::Unsupported),
                        5 => Some(SinkOutcome::Logged),
                        6 => Some(SinkOutcome::Failed {
                            errcode: r.opt_varint()?.map(unzigzag),
                            message: r.str()?.to_owned(),
                        }),
                        _ => return Err("bad sink outcome"),
                    },
                },
                4 => RecordOutcome::Verified,
                5 => RecordOutcome::Rejected,
                6 => RecordOutcome::HungUp,
                _ => return Err("bad outcome"),
            };
            e.status = u16::try_from(r.varint()?).map_err(|_| "bad status")?;
            e.latency = Duration::from_micros(r.varint()?);
            e.handler = r.opt_text(table)?.map(Into::into);
            e.error = r.opt_str()?;
            if r.flag()? {
                let reason = r.str()?;
                let reason = RejectReason::ALL
                    .iter()
                    .copied()
                    .find(|x| x.as_str() == reason)
                    .ok_or("unknown rejection reason")?;
                let code = match r.opt_varint()? {
                    Some(c) => Some(i32::try_from(unzigzag(c)).map_err(|_| "bad code")?),
                    None => None,
                };
                e.rejection = Some(RejectionRecord {
                    reason,
                    code,
                    param: r.str()?.to_owned().into(),
                    message: r.str()?.to_owned(),
                });
            }
            if self.format == FORMAT_RAW_V2 {
                e.peer = match r.opt_str()? {
                    Some(p) => Some(p.parse().map_err(|_| "bad peer address")?),
                    None => None,
                };
                e.query = r.map()?.collect::<Result<_, _>>()?;
                e.headers = r.map()?.collect::<Result<_, _>>()?;
            } else {
                e.peer = r.peer()?;
                e.query =
                    if self.format == FORMAT_RAW_V3 { RequestQuery::new(r.str()?) } else { r.query(openid)? };
                e.headers = RequestHeaders::from_block(r.text(table)?);
            }
            e.attempts = u32::try_from(r.varint()?).map_err(|_| "bad attempts")?;
            // Records of formats 9 and 12 always have them.
            if has_table(self.format) || !r.0.is_empty() {
                for _ in 0..r.varint()? {
                    let kind = match if matches!(self.format, FORMAT_RAW | FORMAT_RAW_V5 | FORMAT_RAW_V4) {
                        r.byte()?
                    } else {
                        0
                    } {
                        0 => serde_json::from_value(serde_json::Value::String(r.str()?.to_owned()))
                            .map_err(|_| "unknown check kind")?,
                        k => *CHECK_KINDS.get(usize::from(k) - 1).ok_or("unknown check kind")?,
                    };
                    let passed = r.flag()?;
                    e.checks.push(wemp_proto::admission::Check {
                        kind,
                        passed,
                        note: wemp_proto::admission::Note::copied(r.text(table)?),
                    });
                }
                if let Some(forward) = r.opt_str()? {
                    e.forward = Some(serde_json::from_str(&forward).map_err(|_| "bad forwarded call")?);
                }
            }
        }
        if r.0.is_empty() { Ok(e) } else { Err("trailing bytes in a record") }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if n > self.0.len() {
            return Err("truncated record");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().ok_or("truncated varint")?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    fn flag(&mut self) -> Result<bool, Corrupt> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err("bad option tag"),
        }
    }

    fn str(&mut self) -> Result<&'a str, Corrupt> {
        let len = usize::try_from(self.varint()?).map_err(|_| "string too long")?;
        self.utf8(len)
    }

    fn utf8(&mut self, len: usize) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.take(len)?).map_err(|_| "string is not UTF-8")
    }

    /// A `text` of a body with a table; a `str` of one without.
    fn text(&mut self, table: Option<StringTable<'a>>) -> Result<&'a str, Corrupt> {
        let Some(table) = table else {
            return self.str();
        };
        let v = self.varint()?;
        if v & 1 == 1 {
            table.get(v >> 1)
        } else {
            self.utf8(usize::try_from(v >> 1).map_err(|_| "string too long")?)
        }
    }

    /// An `opt-text` of a body with a table; an `opt-str` of one without.
    fn opt_text(&mut self, table: Option<StringTable<'a>>) -> Result<Option<&'a str>, Corrupt> {
        Ok(if self.flag()? { Some(self.text(table)?) } else { None })
    }

    /// A `query`: its pieces joined again; `openid` is the record's, for a body whose pieces
    /// may refer to it (`None` for older formats, where such a piece is an error).
    fn query(&mut self, openid: Option<&str>) -> Result<RequestQuery, Corrupt> {
        use std::fmt::Write as _;
        let mut q = String::new();
        let mut first = true;
        loop {
            let tag = self.byte()?;
            if tag == 0 {
                break;
            }
            if !std::mem::take(&mut first) {
                q.push('&');
            }
            q.push_str(match tag >> 3 {
                0 => self.str()?,
                n => QUERY_NAMES.get(usize::from(n) - 1).ok_or("bad query piece")?,
            });
            match tag & 7 {
                1 => {}
                2 => {
                    q.push('=');
                    q.push_str(self.str()?);
                }
                3 => {
                    q.push('=');
                    for b in self.take(20)? {
                        let _ = write!(q, "{b:02x}");
                    }
                }
                4 => {
                    let _ = write!(q, "={}", self.varint()?);
                }
                5 => {
                    q.push('=');
                    q.push_str(openid.filter(|o| !o.is_empty()).ok_or("bad query piece")?);
                }
                _ => return Err("bad query piece"),
            }
        }
        Ok(RequestQuery::new(&q))
    }

    /// An `opt-doc`, the record's `openid` put back where it was taken out.
    fn opt_doc(&mut self, openid: &str) -> Result<Option<String>, Corrupt> {
        if !self.flag()? {
            return Ok(None);
        }
        let at = self.varint()?;
        let rest = self.str()?;
        if at == 0 {
            return Ok(Some(rest.to_owned()));
        }
        let at = usize::try_from(at - 1).map_err(|_| "bad document")?;
        if openid.is_empty() || !rest.is_char_boundary(at) {
            return Err("bad document");
        }
        let mut doc = String::with_capacity(rest.len() + openid.len());
        doc.push_str(&rest[..at]);
        doc.push_str(openid);
        doc.push_str(&rest[at..]);
        Ok(Some(doc))
    }

    fn opt_str(&mut self) -> Result<Option<String>, Corrupt> {
        Ok(if self.flag()? { Some(self.str()?.to_owned()) } else { None })
    }

    fn opt_varint(&mut self) -> Result<Option<u64>, Corrupt> {
        Ok(if self.flag()? { Some(self.varint()?) } else { None })
    }

    fn byte(&mut self) -> Result<u8, Corrupt> {
        self.take(1)?.first().copied().ok_or("truncated record")
    }

    fn peer(&mut self) -> Result<Option<SocketAddr>, Corrupt> {
        let port = |r: &mut Self| Ok::<_, Corrupt>(u16::from_le_bytes([r.byte()?, r.byte()?]));
        Ok(match self.byte()? {
            0 => None,
            4 => {
                let ip: [u8; 4] = self.take(4)?.try_into().map_err(|_| "bad peer address")?;
                Some(SocketAddr::from((ip, port(self)?)))
            }
            6 => {
                let ip: [u8; 16] = self.take(16)?.try_into().map_err(|_| "bad peer address")?;
                let port = port(self)?;
                let scope = u32::try_from(self.varint()?).map_err(|_| "bad peer address")?;
                Some(SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, scope)))
            }
            _ => return Err("bad peer address"),
        })
    }

    /// The pairs of a map (`n:varint (key:str value:str)*`), as older formats wrote them.
    fn map(&mut self) -> Result<impl Iterator<Item = Result<(&'a str, &'a str), Corrupt>> + '_, Corrupt> {
        let n = self.varint()?;
        Ok((0..n).map(move |_| Ok((self.str()?, self.str()?))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(n: u64) -> DeliveryRecord {
        let mut e = DeliveryRecord::new(0, -5 + n as i64);
        e.appid = Some("wx1".into());
        e.openid = Some(format!("o{n}"));
        e.msg_id = Some(u64::MAX - n);
        e.dedup_key = Some("k".into());
        e.msg_type = Some("text".into());
        e.event = Some("subscribe".into());
        e.mode = Some(Mode::Safe);
        e.dedup = Some(DedupOutcome::Joined);
        e.summary = Some("你好".into());
        e.raw_xml = Some("<xml/>".repeat(n as usize).into());
        e.reply_xml = Some("success".into());
        e.outcome = match n % 4 {
            0 => RecordOutcome::Answered,
            1 => RecordOutcome::Late {
                sink: Some(SinkOutcome::Failed { errcode: Some(-1), message: "x".into() }),
            },
            2 => RecordOutcome::Late { sink: None },
            _ => RecordOutcome::Rejected,
        };
        e.status = 403;
        e.latency = Duration::from_micros(u64::MAX >> 1);
        e.handler = Some("fallback".into());
        e.error = Some("boom".into());
        e.rejection = (n % 4 == 3).then(|| RejectionRecord {
            reason: RejectReason::SignatureMismatch,
            code: Some(-40001),
            param: "signature".into(),
            message: "signature does not match".into(),
        });
        e.peer = Some("127.0.0.1:4242".parse().unwrap());
        e.query = RequestQuery::new("signature=abc&nonce=1");
        e.headers = RequestHeaders::from_pairs([("user-agent", &b"Mozilla/4.0"[..])]);
        e.attempts = 3;
        e.checks = vec![wemp_proto::admission::Check {
            kind: wemp_proto::admission::CheckKind::Signature,
            passed: n.is_multiple_of(2),
            note: "签名 ok".into(),
        }];
        if n.is_multiple_of(3) {
            let mut f = crate::ForwardRecord::new(
                crate::ForwardTarget::Url { url: "http://127.0.0.1:5000/hook".into() },
                crate::ForwardResult::Reply,
                br#"{"version":1}"#,
                Duration::from_micros(1234),
            );
            f.status = Some(200);
            f.set_answer(br#"{"reply":null}"#);
            e.forward = Some(Box::new(f));
        }
        e
    }

    /// A record written before checks and forwarded calls were kept ends after `attempts`:
    /// `testdata/segment-v3-one.bin` is a format-5 body as the version before the packed
    /// query wrote it (`full(0)` without checks or forwarded call, at index 0), cut here
    /// before the two.
    #[test]
    fn records_without_checks_or_forward_read_with_neither() {
        let mut e = full(0);
        e.checks.clear();
        e.forward = None;
        let body = include_bytes!("testdata/segment-v3-one.bin");
        assert_eq!(body[0], FORMAT_RAW_V3);
        let read: Vec<DeliveryRecord> = records(body).unwrap().map(|r| r.unwrap().entry().unwrap()).collect();
        assert_eq!(read, [e.clone()]);
        // The new fields of a record without them: no checks (0), no forwarded call (0).
        assert_eq!(&body[body.len() - 2..], [0, 0]);
        let mut old = body[..body.len() - 2].to_vec();
        let at = 2; // format byte, index 0
        let len = u32::from_le_bytes(old[at..at + 4].try_into().unwrap()) - 2;
        old[at..at + 4].copy_from_slice(&len.to_le_bytes());
        let read: Vec<DeliveryRecord> = records(&old).unwrap().map(|r| r.unwrap().entry().unwrap()).collect();
        assert_eq!(read, [e]);
    }

    /// A body as the version before the packed query wrote it (format 6), kept byte for byte
    /// in `testdata/segment-v3.lz4` (made from `full(0)`, an empty record and `full(3)` at
    /// indexes 0, 7, 14): it reads back as what was written, and a partial delete rebuilds
    /// it in its own format.
    #[test]
    fn bodies_with_the_query_as_one_string_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, full(3))];
        old_body_reads_back(
            include_bytes!("testdata/segment-v3.lz4"),
            (FORMAT_LZ4_V3, FORMAT_RAW_V3, FORMAT_LZ4_V3),
            &want,
        );
    }

    /// A body as the version before the string table wrote it (format 8: the query packed,
    /// every string in its record), kept byte for byte in `testdata/segment-v4.lz4` (made
    /// from `full(0)`, an empty record and `full(3)` at indexes 0, 7, 14): it reads back as
    /// what was written, and a partial delete rebuilds it in its own format.
    #[test]
    fn bodies_with_every_string_in_its_record_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, full(3))];
        old_body_reads_back(
            include_bytes!("testdata/segment-v4.lz4"),
            (FORMAT_LZ4_V4, FORMAT_RAW_V4, FORMAT_LZ4_V4),
            &want,
        );
    }

    /// A body as the version before wrote it (format 10: the query's digests in the records,
    /// LZ4 over all of it), kept byte for byte in `testdata/segment-v5.lz4` (made from
    /// `full(0)`, an empty record and `served(1, 7)` at indexes 0, 7, 14): it reads back as
    /// what was written, and a partial delete rebuilds it in its own format.
    #[test]
    fn bodies_with_digests_in_their_records_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, served(1, 7))];
        let raw = old_body_reads_back(
            include_bytes!("testdata/segment-v5.lz4"),
            (FORMAT_LZ4_V5, FORMAT_RAW_V5, FORMAT_LZ4_V5),
            &want,
        );
        assert_eq!(read_all(&raw)[2].1.query.as_str(), served(1, 7).query.as_str());
    }

    /// A body as the version before wrote it (format 11: the query's digests lifted out, the
    /// record's openid in both XML documents and the query), kept byte for byte in
    /// `testdata/segment-v6.lz4` (made from `full(0)`, an empty record, `wechat(1)` and
    /// `wechat(2)` at indexes 0, 7, 14, 21): it reads back as what was written, and a partial
    /// delete rebuilds it in its own format.
    #[test]
    fn bodies_with_the_openid_in_their_documents_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, wechat(1)), (21, wechat(2))];
        // Its digests lifted out when written; rebuilt, it is compressed as format 10.
        let formats = (FORMAT_LZ4_LIFTED_V5, FORMAT_RAW_V5, FORMAT_LZ4_V5);
        old_body_reads_back(include_bytes!("testdata/segment-v6.lz4"), formats, &want);
    }

    /// A body as the version before wrote it (format 14: the record's openid referred to
    /// where the documents and the query carry it, once a document; the MsgId in its
    /// document), kept byte for byte in `testdata/segment-v7.lz4` (made from `full(0)`, an
    /// empty record, `wechat(1)` and `wechat(2)` at indexes 0, 7, 14, 21): it reads back as
    /// what was written, and a partial delete rebuilds it in its own format.
    #[test]
    fn bodies_with_one_reference_a_document_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, wechat(1)), (21, wechat(2))];
        // Its digests lifted out when written; rebuilt, it is compressed as format 13.
        let formats = (FORMAT_LZ4_LIFTED, FORMAT_RAW, FORMAT_LZ4);
        old_body_reads_back(include_bytes!("testdata/segment-v7.lz4"), formats, &want);
    }

    /// The record's openid is written once, in its own field: where the decrypted message,
    /// the reply and the query carry it, they refer to it (wherever it is in a document:
    /// where the last record's was, or elsewhere). Records read back as they were written.
    #[test]
    fn the_openid_is_written_once_a_record() {
        let mut entries: Vec<DeliveryRecord> = (0..6).map(wechat).collect();
        // Elsewhere in the document than the record before; twice (one is referred to).
        let mut moved = wechat(7);
        moved.raw_xml = moved.raw_xml.map(|x| format!("<xml>\n  {x}").into());
        moved.reply_xml = moved.reply_xml.map(|x| format!("签{x}"));
        entries.push(moved);
        // In neither document, nor the query; a reply of `success`.
        let mut absent = wechat(8);
        absent.openid = Some("oOther你好".into());
        absent.reply_xml = Some("success".into());
        entries.push(absent);
        // Beside multibyte characters, at the documents' ends.
        let mut ends = wechat(9);
        ends.openid = Some("o你".into());
        ends.raw_xml = Some("你o你".into());
        ends.reply_xml = Some("o你".into());
        ends.query = RequestQuery::new("openid=o你&openid=o你x&openid=");
        entries.push(ends);
        // No openid, documents and an empty `openid` in the query all the same.
        let mut none = wechat(10);
        none.openid = None;
        none.query = RequestQuery::new("openid=&nonce=1");
        entries.push(none);
        entries.push(DeliveryRecord::default());
        entries.push(wechat(11));
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        assert_eq!(raw[0], FORMAT_RAW);
        assert_eq!(
            read_all(&raw),
            entries.iter().cloned().enumerate().map(|(i, e)| (i as u64, e)).collect::<Vec<_>>()
        );
        // Each record's openid is written in its own field, and where the reply's text has it
        // a second time; the documents and the query refer to it.
        for e in &entries[..7] {
            let alone = encode([(0, e)].into_iter());
            assert_eq!(count(&alone, e.openid.as_deref().unwrap()), 2);
        }
        // So in the batch, with the last record's places looked at first: only the records
        // whose openid is another (or none) carry one in the documents.
        assert_eq!(count(&raw, "<FromUserName><![CDATA[oBench"), 2);
        assert_eq!(count(&raw, "<ToUserName><![CDATA[oBench"), 1);
        let mut packed = Vec::new();
        let (mut out, mut lifted) = (Vec::new(), Lifted::new());
        encode_into(
            &mut out,
            &mut Strings::default(),
            &mut lifted,
            entries.iter().enumerate().map(|(i, e)| (i as u64, e)),
        );
        let body = compress_reusing(&mut packed, &out, &lifted, &mut Packer::new()).to_vec();
        assert_eq!(body[0], FORMAT_LZ4_LIFTED);
        assert_eq!(plain(&body).unwrap(), raw);
        // A partial delete keeps the references.
        let kept = rebuild(records(&raw).unwrap().map(Result::unwrap).filter(|r| r.index % 2 == 1));
        let want: Vec<(u64, DeliveryRecord)> = entries
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (i as u64, e))
            .filter(|(i, _)| i % 2 == 1)
            .collect();
        assert_eq!(read_all(&kept), want);
    }

    /// Where the openid was in the last record's documents is kept from one batch to the
    /// next (the next batch's first record is not searched for), and followed when it moves.
    #[test]
    fn the_openids_place_is_kept_between_batches() {
        let (mut strings, mut out, mut lifted) = (Strings::new(), Vec::new(), Lifted::new());
        let mut batch = |strings: &mut Strings, e: &DeliveryRecord| {
            encode_into(&mut out, strings, &mut lifted, [(0, e)].into_iter());
            strings.openid_at
        };
        let e = wechat(1);
        let at = |doc: &str| doc.find(e.openid.as_deref().unwrap()).unwrap();
        let want = [at(e.raw_xml.as_deref().unwrap()), at(e.reply_xml.as_deref().unwrap())];
        assert_eq!(batch(&mut strings, &e), want);
        assert_eq!(batch(&mut strings, &wechat(2)), want);
        let mut moved = wechat(3);
        moved.reply_xml = moved.reply_xml.map(|x| format!("  {x}"));
        assert_eq!(batch(&mut strings, &moved), [want[0], want[1] + 2]);
        // Where a document has it twice, the place kept is taken, not the first a search
        // would find.
        let mut twice = wechat(4);
        let openid = twice.openid.clone().unwrap();
        twice.raw_xml = Some(format!("{openid}{}{openid}", "x".repeat(want[0] - openid.len())).into());
        assert_eq!(batch(&mut strings, &twice)[0], want[0]);
        assert_eq!(read_all(&encode([(0, &twice)].into_iter())), [(0, twice)]);
    }

    /// A document's reference to the record's openid that cannot be put back is corruption.
    #[test]
    fn a_bad_document_is_an_error() {
        for (bytes, openid, want) in [
            (&[0][..], "o1", Ok(None)),
            (&[1, 0, 2, b'a', b'b'], "", Ok(Some("ab"))),
            (&[1, 1, 2, b'a', b'b'], "o1", Ok(Some("o1ab"))),
            (&[1, 3, 2, b'a', b'b'], "o1", Ok(Some("abo1"))),
            (&[1, 4, 2, b'a', b'b'], "o1", Err("bad document")),
            (&[1, 1, 2, b'a', b'b'], "", Err("bad document")),
            (&[1, 2, 3, 0xe4, 0xbd, 0xa0], "o1", Err("bad document")),
            (&[1, 1, 3, b'a'], "o1", Err("truncated record")),
            (&[2, 1, 1, b'a'], "o1", Err("bad option tag")),
        ] {
            let got = Reader(bytes).opt_doc(openid);
            assert_eq!(got.as_ref().map(|d| d.as_deref()), want.as_ref().map(|d| d.as_deref()), "{bytes:?}");
        }
    }

    /// A record as WeChat's messages give it: the sender's openid in the decrypted XML
    /// (`FromUserName`), in the reply (`ToUserName`) and in the query, the MsgId in the XML.
    fn wechat(n: u64) -> DeliveryRecord {
        let mut e = served(n, 3);
        let openid = e.openid.clone().unwrap();
        let msg_id = e.msg_id.unwrap();
        e.raw_xml = Some(
            format!(
                "<xml><ToUserName><![CDATA[gh_0be4c4be4c4b]]></ToUserName><FromUserName><![CDATA[{openid}]]>\
                 </FromUserName><CreateTime>1796517886</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                 <Content><![CDATA[hello]]></Content><MsgId>{msg_id}</MsgId></xml>"
            )
            .into(),
        );
        e.reply_xml = Some(format!(
            "<xml><ToUserName><![CDATA[{openid}]]></ToUserName><FromUserName><![CDATA[gh_0be4c4be4c4b]]>\
             </FromUserName><CreateTime>1796517911</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[Hello, {openid}!]]></Content></xml>"
        ));
        e.query = RequestQuery::new(&format!(
            "signature=02f180063ed2319d003d6a2ed15ed8f043c2c4c2&timestamp=1796517886&nonce={}&openid={openid}\
             &encrypt_type=aes&msg_signature=3a94c1cbd45e1c1f4b8ff1a2ed41ff0a6c3d5e77",
            1_000_000_000 + n
        ));
        e
    }

    /// A record as `wemp serve` logs a safe-mode text message (as `benches/log_segment.rs`
    /// builds them): nine checks, fixed notes (`&'static str`) and written ones (inline),
    /// the header block, a dedup key in the standard form. `skew` changes the timestamp's
    /// note.
    fn served(n: u64, skew: u64) -> DeliveryRecord {
        use wemp_proto::admission::{Check, Note};
        let appid = "wx62656e6368776d70";
        let openid = format!("oBench{:022}", n % 3);
        let msg_id = 7_716_105_897_850_731_516 + n;
        let mut e = DeliveryRecord::new(0, 1_796_517_911_759 + n as i64);
        e.appid = Some(appid.into());
        e.dedup_key = Some(format!("{appid}:msg:{openid}:{msg_id}").into());
        e.openid = Some(openid);
        e.msg_type = Some("text".into());
        e.msg_id = Some(msg_id);
        e.mode = Some(Mode::Safe);
        e.dedup = Some(DedupOutcome::New);
        e.summary = Some("hello".into());
        e.raw_xml = Some(format!("<xml><MsgId>{msg_id}</MsgId></xml>").into());
        e.reply_xml = Some(format!("<xml><CreateTime>{n}</CreateTime></xml>"));
        e.status = 200;
        e.handler = Some("hello".into());
        e.peer = Some("127.0.0.1:40000".parse().unwrap());
        e.query = RequestQuery::new(&format!("signature=02f180063ed2319d003d6a2ed15ed8f043c2c4c2&nonce={n}"));
        e.headers = RequestHeaders::from_pairs([("host", &b"127.0.0.1"[..]), ("content-length", b"606")]);
        let fixed = |kind, note: &'static str| Check { kind, passed: true, note: Note::from(note) };
        let written = |kind, note: String| Check { kind, passed: true, note: Note::copied(&note) };
        e.checks = vec![
            fixed(CheckKind::Query, "signature, timestamp and nonce present"),
            written(CheckKind::Account, format!("path \"/wechat\" selects account {appid}")),
            fixed(CheckKind::Signature, "matches the account's Token over timestamp and nonce"),
            written(CheckKind::Timestamp, format!("{skew} s from server time (window 300 s)")),
            fixed(CheckKind::Body, "acceptable XML, safe mode"),
            fixed(CheckKind::Mode, "safe request to a compatible-mode account"),
            written(CheckKind::Envelope, "<Encrypt> of 512 characters".into()),
            fixed(CheckKind::MsgSignature, "matches over timestamp, nonce and <Encrypt>"),
            written(CheckKind::Decrypt, format!("decrypted for appid {appid}")),
        ];
        e
    }

    fn count(haystack: &[u8], needle: &str) -> usize {
        haystack.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count()
    }

    fn read_all(raw: &[u8]) -> Vec<(u64, DeliveryRecord)> {
        records(raw).unwrap().map(|r| r.map(|r| (r.index, r.entry().unwrap())).unwrap()).collect()
    }

    /// A body an earlier version wrote, kept byte for byte (`packed`, of format `written`,
    /// uncompressed of format `raw`): it reads back as `want` (whose index 7 is an empty
    /// record), and a partial delete (index 7) rebuilds it in format `raw`, compressed as
    /// `lz4`, reading back as the rest. Its uncompressed body.
    fn old_body_reads_back(
        packed: &[u8],
        (written, raw_format, lz4): (u8, u8, u8),
        want: &[(u64, DeliveryRecord)],
    ) -> Vec<u8> {
        assert_eq!(packed[0], written);
        let raw = plain(packed).unwrap();
        assert_eq!(raw[0], raw_format);
        assert_eq!(read_all(&raw), want);

        let kept = rebuild(records(&raw).unwrap().map(Result::unwrap).filter(|r| r.index != 7));
        assert_eq!(kept[0], raw_format);
        let mut again = Vec::new();
        compress_into(&mut again, &kept);
        assert_eq!(again[0], lz4);
        let rest: Vec<_> = want.iter().filter(|(index, _)| *index != 7).cloned().collect();
        assert_eq!(read_all(&plain(&again).unwrap()), rest);
        raw.into_owned()
    }

    /// A string repeated from one record to the next is written once, in the body's table,
    /// and the records refer to it; one that changes gets a new entry (once per change); a
    /// standard dedup key is one byte. The records read back as they were written.
    #[test]
    fn repeated_strings_are_written_once() {
        let skews = [3, 3, 3, 4, 4, 3, 3, 3, 3, 3];
        let entries: Vec<DeliveryRecord> =
            skews.iter().enumerate().map(|(n, &s)| served(n as u64, s)).collect();
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        assert_eq!(raw[0], FORMAT_RAW);
        let read = read_all(&raw);
        assert_eq!(read.len(), entries.len());
        for ((i, back), (j, e)) in read.into_iter().zip(entries.iter().enumerate()) {
            assert_eq!((i, &back), (j as u64, e));
            assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(e).unwrap());
        }
        let e = &entries[0];
        for c in e.checks.iter().filter(|c| c.kind != CheckKind::Timestamp) {
            assert_eq!(count(&raw, &c.note), 1, "{:?}", c.note);
        }
        // The timestamp's note: 3, then 4, then 3 again (a new entry: only the last is kept).
        assert_eq!(count(&raw, "3 s from server time"), 2);
        assert_eq!(count(&raw, "4 s from server time"), 1);
        // Once per place: the appid is also inside two notes, "hello" is the summary and
        // the handler.
        for (s, n) in [(e.headers.as_str(), 1), ("wx62656e6368776d70", 3), ("text", 1), ("hello", 2)] {
            assert_eq!(count(&raw, s), n, "{s:?}");
        }
        for e in &entries {
            assert_eq!(count(&raw, e.dedup_key.as_deref().unwrap()), 0);
        }
    }

    /// A delete drops records but keeps the table they refer to: whichever records go (the
    /// first to use a string among them), the others read back the same, rebuilt and
    /// compressed, and rebuilt again.
    #[test]
    fn a_delete_keeps_the_table() {
        let entries: Vec<DeliveryRecord> = (0..6).map(|n| served(n, 3 + n / 3)).collect();
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        for gone in [&[0][..], &[0, 1, 2], &[3], &[0, 3], &[5], &[1, 2, 3, 4, 5]] {
            let kept =
                rebuild(records(&raw).unwrap().map(Result::unwrap).filter(|r| !gone.contains(&r.index)));
            assert_eq!(kept[0], FORMAT_RAW);
            let want: Vec<(u64, DeliveryRecord)> =
                (0..6u64).filter(|i| !gone.contains(i)).map(|i| (i, entries[i as usize].clone())).collect();
            let mut packed = Vec::new();
            compress_into(&mut packed, &kept);
            assert_eq!(packed[0], FORMAT_LZ4);
            assert_eq!(read_all(&plain(&packed).unwrap()), want, "without {gone:?}");
            let again = rebuild(records(&kept).unwrap().map(Result::unwrap).filter(|r| r.index != 5));
            assert_eq!(read_all(&again), want.iter().filter(|(i, _)| *i != 5).cloned().collect::<Vec<_>>());
        }
        // No record left: an empty body, with an empty table.
        let none = rebuild(records(&raw).unwrap().map(Result::unwrap).filter(|_| false));
        assert_eq!(none, [FORMAT_RAW, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(records(&none).unwrap().count(), 0);
    }

    /// A dedup key is written as one byte exactly when it is the record's appid, `:msg:`,
    /// openid, `:` and msg_id in decimal; any other reads back as it was.
    #[test]
    fn standard_dedup_keys_are_one_byte() {
        let cases = [
            (Some("wx1"), Some("o1"), Some(42), "wx1:msg:o1:42", true),
            (Some("wx1"), Some("o1"), Some(0), "wx1:msg:o1:0", true),
            (None, Some("o1"), Some(42), ":msg:o1:42", true),
            (
                Some("wx1"),
                Some("o1"),
                Some(9_999_999_999_999_999_999),
                "wx1:msg:o1:9999999999999999999",
                true,
            ),
            (Some("wx1"), Some("o1"), Some(u64::MAX), "wx1:msg:o1:18446744073709551615", false),
            (Some("wx1"), Some("o1"), Some(42), "wx1:msg:o1:042", false),
            (Some("wx1"), Some("o1"), Some(42), "wx1:msg:o1:43", false),
            (Some("wx1"), Some("o1"), Some(42), "wx1:msg:o1:42:", false),
            (Some("wx1"), Some("o1"), Some(42), "wx2:msg:o1:42", false),
            (Some("wx1"), Some("o1"), Some(42), "wx1:msg:o2:42", false),
            (Some("wx1"), Some("o1"), None, "wx1:msg:o1:", false),
            (Some("wx1"), Some("o1"), Some(42), "wx1:event:o1:CLICK:42", false),
        ];
        for (appid, openid, msg_id, key, standard) in cases {
            let mut e = DeliveryRecord::new(0, 0);
            e.appid = appid.map(Into::into);
            e.openid = openid.map(Into::into);
            e.msg_id = msg_id;
            e.dedup_key = Some(key.into());
            let raw = encode([(0, &e)].into_iter());
            assert_eq!(count(&raw, key) == 0, standard, "{key}");
            assert_eq!(read_all(&raw), [(0, e)], "{key}");
        }
    }

    /// A body as written by hand: `[9] n records table`.
    fn body(records: &[u8], table: &[u8]) -> Vec<u8> {
        let mut out = vec![FORMAT_RAW];
        out.extend_from_slice(&(records.len() as u32).to_le_bytes());
        out.extend_from_slice(records);
        out.extend_from_slice(table);
        out
    }

    /// A reference outside the table, a table that does not hold together, a standard key
    /// without its msg_id: errors, not panics; and a record cut anywhere does not decode.
    #[test]
    fn corrupt_references_are_errors_not_panics() {
        // One record: at 0, appid `text`, openid "", msg_type "", then the rest of an empty
        // record.
        let record_with = |appid: &[u8], msg_id: &[u8], key: &[u8]| {
            let mut fields = vec![0];
            fields.extend_from_slice(appid);
            fields.extend_from_slice(&[0, 0]); // openid, msg_type
            fields.extend_from_slice(msg_id);
            fields.extend_from_slice(key);
            let rest = encode([(0, &DeliveryRecord::default())].into_iter());
            // An empty record's fields from its event on: past index, length, time, three
            // strings, msg_id and key.
            fields.extend_from_slice(
                &rest[5 + 1 + 4 + 1 + 3 + 1 + 1
                    ..5 + u32::from_le_bytes(rest[1..5].try_into().unwrap()) as usize],
            );
            let mut out = vec![0];
            out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
            out.extend_from_slice(&fields);
            out
        };
        let record = |appid: &[u8], key: &[u8]| record_with(appid, &[1, 7], key);
        let table = |strings: &[&[u8]]| {
            let mut out = (strings.len() as u32).to_le_bytes().to_vec();
            let mut end = 0;
            for s in strings {
                end += s.len() as u32;
                out.extend_from_slice(&end.to_le_bytes());
            }
            out.extend(strings.concat());
            out
        };
        let first = |body: &[u8]| records(body).and_then(|mut r| r.next().unwrap()).and_then(|r| r.entry());
        // Well formed: the appid is the table's second string, the key standard.
        let good = body(&record(&[3], &[2]), &table(&[b"x", b"wx1"]));
        let e = first(&good).unwrap();
        assert_eq!((e.appid.as_deref(), e.dedup_key.as_deref()), (Some("wx1"), Some("wx1:msg::7")));
        for (records_, table_, err) in [
            (record(&[5], &[0]), table(&[b"x", b"wx1"]), "string reference out of range"),
            (
                record(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &[0]),
                table(&[b"x"]),
                "string reference out of range",
            ),
            (record(&[1], &[0]), table(&[]), "string reference out of range"),
            (record(&[1], &[0]), table(&[b"\xff"]), "string is not UTF-8"),
            (
                record(&[3], &[0]),
                [&2u32.to_le_bytes()[..], &5u32.to_le_bytes(), &1u32.to_le_bytes(), b"a"].concat(),
                "bad string table",
            ),
            (record(&[0], &[3]), table(&[]), "bad dedup key"),
        ] {
            assert_eq!(first(&body(&records_, &table_)).err(), Some(err));
        }
        // A standard key with no msg_id.
        let no_id = record_with(&[0], &[0], &[2]);
        assert_eq!(first(&body(&no_id, &table(&[]))).err(), Some("a standard dedup key without msg_id"));
        // Tables that do not hold together are refused before any record is read.
        for t in [
            vec![1, 0, 0],
            [&2u32.to_le_bytes()[..], &1u32.to_le_bytes()].concat(),
            [&1u32.to_le_bytes()[..], &1u32.to_le_bytes(), b"ab"].concat(),
            [&u32::MAX.to_le_bytes()[..], &1u32.to_le_bytes(), b"a"].concat(),
        ] {
            assert_eq!(records(&body(&[], &t)).err(), Some("bad string table"), "{t:?}");
        }
        assert_eq!(records(&[FORMAT_RAW, 9, 0, 0, 0, 0]).err(), Some("truncated segment"));
        // A served record cut anywhere, its body whole around it, does not decode.
        let raw = encode([(0, &served(1, 3))].into_iter());
        let n = 5 + u32::from_le_bytes(raw[1..5].try_into().unwrap()) as usize;
        let (records_, table_) = (&raw[5..n], &raw[n..]);
        assert!(first(&body(records_, table_)).is_ok());
        for cut in 0..records_.len() {
            let mut cut_short = records_[..cut].to_vec();
            if cut > 5 {
                cut_short[1..5].copy_from_slice(&(cut as u32 - 5).to_le_bytes());
            }
            let b = body(&cut_short, table_);
            let ok = records(&b).is_ok_and(|mut r| r.all(|r| r.and_then(|r| r.entry()).is_ok()));
            assert!(!ok || cut == 0, "a record cut at {cut} decoded");
        }
    }

    /// The query is stored in pieces, the digests and numbers packed, and reads back byte
    /// for byte whatever it holds.
    #[test]
    fn queries_read_back_as_they_came() {
        let sig = "02f180063ed2319d003d6a2ed15ed8f043c2c4c2";
        let wechat = format!(
            "signature={sig}&timestamp=1796506719&nonce=7715937606062608447&openid=oBench0000000000000000000927\
             &encrypt_type=aes&msg_signature={sig}"
        );
        let queries = [
            "",
            "a",
            "&",
            "a&",
            "&&",
            "=",
            "=x",
            "a==b&c",
            "a=1&a=1&",
            "x&y=&z=%3D&",
            "签=名&",
            "n=0",
            "n=00",
            "n=007",
            "n=-1",
            "n=+1",
            "n=1234567890123456789",
            "n=12345678901234567890",
            "n=18446744073709551615",
            "n=1e3",
            "n= 1",
            // Not 40 lowercase hex digits: kept as they are.
            "s=02F180063ED2319D003D6A2ED15ED8F043C2C4C2",
            "s=02f180063ed2319d003d6a2ed15ed8f043c2c4c",
            "s=02f180063ed2319d003d6a2ed15ed8f043c2c4c2a",
            "s=02f180063ed2319d003d6a2ed15ed8f043c2c4cg",
            "s=02f180063ed2319d003d6a2ed15ed8f043c2c4c2&t=0000000000000000000000000000000000000000",
            &wechat,
        ];
        let entries: Vec<DeliveryRecord> = queries
            .iter()
            .map(|q| {
                let mut e = DeliveryRecord::new(0, 0);
                e.query = RequestQuery::new(q);
                e
            })
            .collect();
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        let back: Vec<DeliveryRecord> = records(&raw).unwrap().map(|r| r.unwrap().entry().unwrap()).collect();
        for (b, q) in back.iter().zip(queries) {
            assert_eq!(b.query.as_str(), q);
        }
        assert_eq!(back, entries);

        // WeChat's query: the two digests as 20 bytes each, timestamp and nonce as numbers
        // (205 bytes: a string of 207 before, 94 now).
        let packed = query_bytes(&wechat);
        assert_eq!((wechat.len(), packed.len()), (205, 94));
        // Its names as numbers; another name as it is.
        let other = query_bytes("signaturE=1");
        assert_eq!(other, [4, 9, b's', b'i', b'g', b'n', b'a', b't', b'u', b'r', b'E', 1, 0]);
        assert!(packed.windows(20).any(|w| w
            == [
                0x02, 0xf1, 0x80, 0x06, 0x3e, 0xd2, 0x31, 0x9d, 0x00, 0x3d, 0x6a, 0x2e, 0xd1, 0x5e, 0xd8,
                0xf0, 0x43, 0xc2, 0xc4, 0xc2
            ]));
    }

    /// A number is packed exactly when it formats back to the same digits: every length,
    /// every byte value in every position, against `str::parse`.
    #[test]
    fn numbers_are_exactly_canonical_digits() {
        let reference = |v: &[u8]| -> Option<u64> {
            let s = std::str::from_utf8(v).ok()?;
            let n: u64 = s.parse().ok().filter(|_| s.bytes().all(|c| c.is_ascii_digit()))?;
            (n.to_string() == s).then_some(n)
        };
        let digits = b"98765432109876543210";
        for len in 0..=20 {
            let v = &digits[..len];
            assert_eq!(decimal(v), reference(v), "{len} digits");
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut w = v.to_vec();
                    w[at] = c;
                    assert_eq!(decimal(&w), reference(&w), "{w:?}");
                }
            }
        }
        assert_eq!(decimal(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"10000000"), Some(10_000_000));
    }

    /// A digest is packed exactly when it is 40 lowercase hex digits: every byte value, in
    /// every lane of a word, against a decoder a digit at a time.
    #[test]
    fn hex_digests_are_exactly_lowercase_hex() {
        let reference = |v: &[u8]| -> Option<Vec<u8>> {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            v.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
        };
        let base = b"0123456789abcdef0f1e2d3c4b5a69788796a5b4".to_vec();
        assert_eq!(hex_digest(&base).map(Vec::from), reference(&base));
        assert!(reference(&base).is_some());
        for at in 0..40 {
            for c in 0..=255u8 {
                let mut v = base.clone();
                v[at] = c;
                assert_eq!(hex_digest(&v).map(Vec::from), reference(&v), "byte {c:#x} at {at}");
            }
        }
    }

    /// What `encode_query` writes for `q`, its digests put back where it lifted them from.
    fn query_bytes(q: &str) -> Vec<u8> {
        // The body's format byte: digests are lifted from after it.
        let (mut out, mut lifted) = (vec![FORMAT_RAW], Lifted::new());
        encode_query(&mut out, &mut lifted, q, b"");
        let mut back = Vec::new();
        unlift(&mut back, &out[1..], &lifted.bytes).unwrap();
        back
    }

    /// The pieces as the module docs describe them, found a byte at a time and each name
    /// looked up: what `encode_query` writes, whichever way it finds a name.
    fn reference_query(q: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !q.is_empty() {
            for piece in q.split('&') {
                let (name, value) = match piece.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (piece, None),
                };
                let known = QUERY_NAMES.iter().position(|n| *n == name).map_or(0, |i| i as u8 + 1);
                let head = |out: &mut Vec<u8>, kind: u8| {
                    out.push(kind + 8 * known);
                    if known == 0 {
                        string(out, name);
                    }
                };
                let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
                match value {
                    None => head(&mut out, 1),
                    Some(v) if v.len() == 40 && v.bytes().all(hex) => {
                        head(&mut out, 3);
                        for pair in v.as_bytes().chunks(2) {
                            out.push(u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap());
                        }
                    }
                    Some(v)
                        if !v.is_empty()
                            && v.len() <= 19
                            && v.bytes().all(|c| c.is_ascii_digit())
                            && (v == "0" || !v.starts_with('0')) =>
                    {
                        head(&mut out, 4);
                        varint(&mut out, v.parse().unwrap());
                    }
                    Some(v) => {
                        head(&mut out, 2);
                        string(&mut out, v);
                    }
                }
            }
        }
        out.push(0);
        out
    }

    /// WeChat's names are tried in their order before the `=` is looked for: queries of
    /// those names in random orders, repeated, cut short, without `=` or with another value,
    /// give the bytes a lookup of every name gives.
    #[test]
    fn wechat_names_in_any_order_encode_as_looked_up() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let names = [
            "signature",
            "timestamp",
            "nonce",
            "openid",
            "encrypt_type",
            "msg_signature",
            "echostr",
            "signatur",
            "nonce_",
            "x",
        ];
        let values = [
            "",
            "=",
            "=0",
            "=1796517886",
            "=aes",
            "=02f180063ed2319d003d6a2ed15ed8f043c2c4c2",
            "=a=b",
            "=签",
        ];
        for _ in 0..20_000 {
            let n = rng.random_range(0..8);
            let mut q = String::new();
            let mut next = 0;
            for i in 0..n {
                if i > 0 {
                    q.push('&');
                }
                // Mostly the next of WeChat's names, as WeChat sends them.
                let name =
                    if rng.random_range(0..3) > 0 { next % 7 } else { rng.random_range(0..names.len()) };
                next = name + 1;
                q.push_str(names[name]);
                q.push_str(values[rng.random_range(0..values.len())]);
            }
            let out = query_bytes(&q);
            assert_eq!(out, reference_query(&q), "{q}");
            assert_eq!(Reader(&out).query(None).unwrap().as_str(), q);
        }
        let wechat = "signature=02f180063ed2319d003d6a2ed15ed8f043c2c4c2&timestamp=1796517886&nonce=1062483922&openid=oBench0000000000000000000831&encrypt_type=aes&msg_signature=3524ed6613621aa7199072278a41103ddfe5bc5e";
        let out = query_bytes(wechat);
        assert_eq!(out, reference_query(wechat));
    }

    /// `varint` writes a number's 7-bit groups, lowest first, the high bit on all but the
    /// last (the bytes of the one-push-a-byte loop it replaces where it writes two at
    /// once), and reads back: every length's bounds, and random numbers of every length.
    #[test]
    fn varints_are_seven_bit_groups_lowest_first() {
        use rand::{Rng, SeedableRng};
        fn one_by_one(mut v: u64) -> Vec<u8> {
            let mut out = Vec::new();
            while v >= 0x80 {
                out.push(v as u8 | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
            out
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let bounds = (1..64).flat_map(|b| [(1u64 << b) - 1, 1 << b, (1 << b) + 1]);
        let random = (0..2_000).map(|_| rng.random::<u64>() >> rng.random_range(0..64));
        for v in [0, u64::MAX].into_iter().chain(bounds).chain(random) {
            let mut out = vec![9];
            varint(&mut out, v);
            assert_eq!(out[1..], one_by_one(v), "{v:#x}");
            let mut r = Reader(&out[1..]);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.0.is_empty());
        }
    }

    /// Records whose checks' notes are past the table's first 64 strings (a timestamp note
    /// that changes every record), with every kind of peer, read back as they were written:
    /// a check of a note among the first 64 is written at once, a later one byte by byte.
    #[test]
    fn checks_past_the_tables_first_strings_read_back() {
        let peers = [None, Some("10.1.2.3:65535".parse().unwrap()), Some("[fe80::1%7]:443".parse().unwrap())];
        let entries: Vec<DeliveryRecord> = (0..100)
            .map(|n| {
                let mut e = served(n, n);
                e.peer = peers[n as usize % 3];
                e.checks[0].passed = n % 2 == 0;
                e
            })
            .collect();
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        let read = read_all(&raw);
        assert_eq!(read.len(), entries.len());
        for ((i, back), (j, e)) in read.into_iter().zip(entries.iter().enumerate()) {
            assert_eq!((i, &back), (j as u64, e));
        }
        // The timestamp's notes: a new table entry each record, so most refer past 64.
        assert_eq!(count(&raw, " s from server time"), entries.len());
    }

    /// Random queries over the bytes that matter (`&`, `=`, digits, hex, a multibyte
    /// character) read back byte for byte.
    #[test]
    fn random_queries_read_back_as_they_came() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let parts = [
            "&",
            "=",
            "0",
            "7",
            "19",
            "a",
            "f",
            "g",
            "A",
            "签",
            "nonce",
            "signature",
            "echostr",
            "0123456789abcdef0123456789abcdef01234567",
        ];
        for _ in 0..20_000 {
            let n = rng.random_range(0..12);
            let q: String = (0..n).map(|_| parts[rng.random_range(0..parts.len())]).collect();
            let out = query_bytes(&q);
            let mut r = Reader(&out);
            assert_eq!(r.query(None).unwrap().as_str(), q);
            assert!(r.0.is_empty(), "{q}");
        }
    }

    /// Check kinds are written as their number, read back as the kind; a number past the
    /// list is corruption.
    #[test]
    fn check_kinds_are_numbered() {
        for (i, kind) in CHECK_KINDS.into_iter().enumerate() {
            assert_eq!(usize::from(check_code(kind)), i + 1, "{kind:?}");
        }
        let mut e = DeliveryRecord::new(0, 0);
        e.checks = CHECK_KINDS
            .iter()
            .map(|&kind| wemp_proto::admission::Check { kind, passed: true, note: "n".into() })
            .collect();
        let mut raw = encode([(0, &e)].into_iter());
        assert!(!raw.windows(6).any(|w| w == b"method"));
        assert_eq!(records(&raw).unwrap().next().unwrap().unwrap().entry().unwrap(), e);
        // The last check (decrypt: 10, passed, its note's entry), then no forward, then the table.
        let at = 5 + u32::from_le_bytes(raw[1..5].try_into().unwrap()) as usize - 4;
        assert_eq!(raw[at], 10);
        raw[at] = 11;
        assert_eq!(records(&raw).unwrap().next().unwrap().unwrap().entry().err(), Some("unknown check kind"));
    }

    /// The notes a kept admission writes (kept inline in the note, with no allocation) go
    /// into the log as the same bytes as the same texts in `String`s, and read back as them:
    /// the account, the timestamp's age, the `Encrypt`'s length, the decrypted appid.
    #[test]
    fn written_notes_are_logged_as_their_texts() {
        use wemp_proto::admission::{self, Account, Accounts, Check, Note, Policy, Request};
        let key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let appid = "wx2c2769f8efd9abc2";
        let platform = wemp_proto::wechat::Platform::new("spamtest")
            .with_cipher(wemp_proto::Cipher::new(key, appid).unwrap());
        let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
                   <CreateTime>1409735669</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                   <Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>";
        let req = platform.post(Mode::Safe, xml, "o1", "gh_1", "1409735669", "42", [1; 16]).unwrap();
        let account = Account::new(appid, "spamtest").with_aes_key(key).unwrap().with_mode(Mode::Safe);
        let encrypt = req.body.split("<Encrypt><![CDATA[").nth(1).unwrap().split("]]>").next().unwrap().len();
        // One account (selected by any path), then two (the one whose Token signs it).
        let two = [account.clone(), Account::new("wx2", "anotherToken")];
        for (accounts, account_note) in [
            (Accounts::new([account]).unwrap(), format!("path \"/wechat\" selects account {appid}")),
            (Accounts::new(two).unwrap(), format!("account {appid} signs the request")),
        ] {
            let query = req.query_string();
            let request = Request::post("/wechat", &query, req.body.as_bytes());
            let admitted = admission::admit(&accounts, &Policy::default(), 1409735669 + 7, &request);
            assert!(admitted.refusal().is_none(), "{:?}", admitted.refusal());
            let notes = |e: &DeliveryRecord| {
                e.checks
                    .iter()
                    .filter(|c| !c.note.is_empty())
                    .map(|c| (c.kind, c.note.to_string()))
                    .collect::<Vec<_>>()
            };
            let mut e = DeliveryRecord::new(0, 0);
            e.checks = admitted.checks;
            for (kind, note) in [
                (CheckKind::Account, account_note.as_str()),
                (CheckKind::Timestamp, "7 s from server time (window 300 s)"),
                (CheckKind::Envelope, &format!("<Encrypt> of {encrypt} characters")),
                (CheckKind::Decrypt, &format!("decrypted for appid {appid}")),
            ] {
                assert!(notes(&e).contains(&(kind, note.to_owned())), "{kind:?} {note:?}: {:?}", notes(&e));
            }
            // The same texts, each in a `String` of its own as before.
            let mut owned = e.clone();
            for c in &mut owned.checks {
                *c = Check { note: Note::from(c.note.to_string()), ..c.clone() };
            }
            let raw = encode([(0, &e)].into_iter());
            assert_eq!(raw, encode([(0, &owned)].into_iter()));
            let read = records(&raw).unwrap().next().unwrap().unwrap().entry().unwrap();
            assert_eq!(notes(&read), notes(&e));
            assert_eq!(read, owned);
        }
    }

    /// A query piece of an unknown kind, or cut short, is corruption.
    #[test]
    fn a_bad_query_piece_is_an_error() {
        for (bytes, err) in [
            (&[9 - 8 + 5, 0][..], "bad query piece"),
            (&[8 * 8 + 1, 0], "bad query piece"),
            (&[8, 0], "bad query piece"),
            (&[3, 1, b's', 1, 2], "truncated record"),
            (&[3 + 8, 1, 2], "truncated record"),
            (&[1, 0], "truncated record"),
        ] {
            assert_eq!(Reader(bytes).query(None).err(), Some(err));
            assert_eq!(Reader(bytes).query(Some("o1")).err(), Some(err));
        }
        // The record's openid: only in a body whose pieces may refer to it, and a record
        // with one.
        let openid = [8 * OPENID + 5, 0];
        assert_eq!(Reader(&openid).query(None).err(), Some("bad query piece"));
        assert_eq!(Reader(&openid).query(Some("")).err(), Some("bad query piece"));
        assert_eq!(Reader(&openid).query(Some("o1")).unwrap().as_str(), "openid=o1");
    }

    /// A body as the version before wrote it (format 4: query and headers as maps), kept
    /// byte for byte in `testdata/segment-v2.lz4` (made from `full(0)`, an empty record and
    /// `full(3)` at indexes 0, 7, 14): it reads back as what was written.
    #[test]
    fn bodies_with_query_and_headers_as_maps_read_back_the_same() {
        let want = [(0, full(0)), (7, DeliveryRecord::default()), (14, full(3))];
        // A partial delete rebuilds it in its own format, compressed as such.
        let raw = old_body_reads_back(
            include_bytes!("testdata/segment-v2.lz4"),
            (FORMAT_LZ4_V2, FORMAT_RAW_V2, FORMAT_LZ4_V2),
            &want,
        );
        let entries = read_all(&raw);
        assert_eq!(entries[0].1.query.get("nonce").as_deref(), Some("1"));
        assert_eq!(entries[0].1.query.to_map(), full(0).query.to_map());
        assert_eq!(entries[2].1.headers.get("user-agent").as_deref(), Some("Mozilla/4.0"));
        assert_eq!(serde_json::to_value(&entries[2].1).unwrap(), serde_json::to_value(full(3)).unwrap());
    }

    /// New bodies keep the query and headers as they came.
    #[test]
    fn query_and_headers_are_stored_as_they_came() {
        let mut e = DeliveryRecord::new(0, 0);
        e.query = RequestQuery::new("b=2&a=1&a=3&nonce=n%20n");
        e.headers = RequestHeaders::from_pairs([("x-b", &b"1"[..]), ("x-a", b"2"), ("x-b", b"3")]);
        e.peer = Some("[fe80::1%3]:443".parse().unwrap());
        let mut packed = Vec::new();
        compress_into(&mut packed, &encode([(0, &e)].into_iter()));
        assert_eq!(packed[0], FORMAT_LZ4);
        let raw = plain(&packed).unwrap();
        let back = records(&raw).unwrap().next().unwrap().unwrap().entry().unwrap();
        assert_eq!(back.query.as_str(), "b=2&a=1&a=3&nonce=n%20n");
        assert_eq!(back.headers.as_str(), "x-b: 1\nx-a: 2\nx-b: 3\n");
        assert_eq!(back.headers.get("x-b").as_deref(), Some("1, 3"));
        assert_eq!(back.peer, e.peer);
        assert_eq!(back, e);
    }

    /// A format-1 body as wemp wrote it before the record was typed.
    #[test]
    fn old_bodies_read_as_typed_records() {
        let mut out = vec![FORMAT_RAW_V1];
        varint(&mut out, 7);
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        varint(&mut out, zigzag(1_000));
        for s in ["wx1", "o1", "text"] {
            string(&mut out, s);
        }
        out.extend_from_slice(&[1, 42]);
        string(&mut out, "wx1:msg:o1:42");
        opt_string(&mut out, None);
        for s in ["safe", "cached", "hi", "<xml/>"] {
            string(&mut out, s);
        }
        opt_string(&mut out, Some("success"));
        string(&mut out, "late_sink:window_expired");
        varint(&mut out, 12);
        opt_string(&mut out, None);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        let mut packed = Vec::new();
        compress_into(&mut packed, &out);
        assert_eq!(packed[0], FORMAT_LZ4_V1);
        let raw = plain(&packed).unwrap();
        let e = records(&raw).unwrap().next().unwrap().unwrap().entry().unwrap();
        assert_eq!((e.mode, e.dedup, e.msg_id), (Some(Mode::Safe), Some(DedupOutcome::Cached), Some(42)));
        assert_eq!(e.outcome, RecordOutcome::Late { sink: Some(SinkOutcome::WindowExpired) });
        assert_eq!((e.latency, e.summary.as_deref(), e.attempts), (Duration::from_millis(12), Some("hi"), 1));
        let kept = rebuild(records(&raw).unwrap().map(Result::unwrap));
        assert_eq!(kept, &raw[..]);
    }

    /// Every outcome reads back as it was written, a caller's hang-up among them.
    #[test]
    fn every_outcome_reads_back() {
        let outcomes = [
            RecordOutcome::Answered,
            RecordOutcome::HandlerError,
            RecordOutcome::Deadline,
            RecordOutcome::Late { sink: None },
            RecordOutcome::Late { sink: Some(SinkOutcome::Delivered) },
            RecordOutcome::Late { sink: Some(SinkOutcome::WindowExpired) },
            RecordOutcome::Late { sink: Some(SinkOutcome::QuotaExceeded) },
            RecordOutcome::Late { sink: Some(SinkOutcome::Unsupported) },
            RecordOutcome::Late { sink: Some(SinkOutcome::Logged) },
            RecordOutcome::Late {
                sink: Some(SinkOutcome::Failed { errcode: Some(-1), message: "x".into() }),
            },
            RecordOutcome::HungUp,
            RecordOutcome::Verified,
            RecordOutcome::Rejected,
        ];
        let entries: Vec<DeliveryRecord> = outcomes
            .iter()
            .map(|o| {
                let mut e = full(1);
                e.outcome = o.clone();
                e
            })
            .collect();
        let body = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        let back: Vec<DeliveryRecord> =
            records(&body).unwrap().map(|r| r.unwrap().entry().unwrap()).collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn round_trip_and_rebuild() {
        let entries = [full(0), DeliveryRecord::default(), full(300)];
        let body = encode(entries.iter().enumerate().map(|(i, e)| (i as u64 * 1000, e)));
        let decoded: Vec<(u64, DeliveryRecord)> =
            records(&body).unwrap().map(|r| r.map(|r| (r.index, r.entry().unwrap())).unwrap()).collect();
        assert_eq!(decoded, [(0, full(0)), (1000, DeliveryRecord::default()), (2000, full(300))]);

        let kept = rebuild(records(&body).unwrap().map(Result::unwrap).filter(|r| r.index != 1000));
        let indexes: Vec<u64> = records(&kept).unwrap().map(|r| r.unwrap().index).collect();
        assert_eq!(indexes, [0, 2000]);
    }

    #[test]
    fn compressed_bodies_decode_alike() {
        let entries: Vec<DeliveryRecord> = (0..50).map(full).collect();
        let raw = encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e)));
        let mut packed = Vec::new();
        compress_into(&mut packed, &raw);
        assert!(packed.len() * 4 < raw.len(), "{} of {}", packed.len(), raw.len());
        assert_eq!(plain(&packed).unwrap(), raw);
        assert_eq!(plain(&raw).unwrap(), raw);
        for cut in 0..packed.len() {
            let ok = plain(&packed[..cut])
                .is_ok_and(|b| records(&b).is_ok_and(|mut r| r.all(|r| r.and_then(|r| r.entry()).is_ok())));
            assert!(!ok || cut == 0, "a compressed body cut at {cut} decoded");
        }
    }

    /// Buffers and LZ4's tables reused across batches, holding a larger earlier batch's bytes
    /// (one of 64 KiB or more, for which LZ4 takes its larger table, among them), give the
    /// same body as fresh ones.
    #[test]
    fn a_reused_buffer_compresses_alike() {
        // Records with a digest in their query (`served`) and without (`full`).
        let mixed = |n: u64| if n.is_multiple_of(2) { served(n, n % 3) } else { full(n) };
        let big: Vec<DeliveryRecord> = (0..40).map(mixed).collect();
        let huge: Vec<DeliveryRecord> = (0..400).map(mixed).collect();
        let small: Vec<DeliveryRecord> = (0..3).map(full).collect();
        let mut scratch = vec![0xa5; 7];
        let (mut raw, mut strings, mut lifted) = (vec![0x5a; 3], Strings::default(), Lifted::new());
        let mut packer = Packer::new();
        for (batch, format) in [
            (&small, FORMAT_LZ4),
            (&big, FORMAT_LZ4_LIFTED),
            (&huge, FORMAT_LZ4_LIFTED),
            (&small, FORMAT_LZ4),
            (&big, FORMAT_LZ4_LIFTED),
            (&huge, FORMAT_LZ4_LIFTED),
            (&big[..1].to_vec(), FORMAT_LZ4_LIFTED),
        ] {
            let batch = || batch.iter().enumerate().map(|(i, e)| (i as u64, e));
            encode_into(&mut raw, &mut strings, &mut lifted, batch());
            let (mut fresh_raw, mut fresh_lifted) = (Vec::new(), Lifted::new());
            encode_into(&mut fresh_raw, &mut Strings::default(), &mut fresh_lifted, batch());
            assert_eq!(
                (&raw, &lifted.bytes, lifted.digests),
                (&fresh_raw, &fresh_lifted.bytes, fresh_lifted.digests)
            );
            if batch().len() == huge.len() {
                assert!(raw.len() > 1 << 16, "a batch LZ4 compresses with its larger table");
            }
            let mut fresh = Vec::new();
            let fresh = compress_reusing(&mut fresh, &fresh_raw, &fresh_lifted, &mut Packer::new()).to_vec();
            let reused = compress_reusing(&mut scratch, &raw, &lifted, &mut packer);
            assert_eq!(reused, &fresh[..]);
            assert_eq!(reused[0], format);
            assert_eq!(plain(reused).unwrap(), encode(batch()));
        }
    }

    /// The digests of the queries are lifted out of what LZ4 reads and stored beside it, as
    /// they are; the body reads back as the same records, and a partial delete rebuilds it
    /// as a [`FORMAT_LZ4`] body.
    #[test]
    fn digests_are_stored_beside_the_compressed_records() {
        let entries: Vec<DeliveryRecord> = (0..30)
            .map(|n| {
                let mut e = served(n, 7);
                e.query = RequestQuery::new(&format!(
                    "signature={:040x}&timestamp=1796517886&nonce={n}&msg_signature={:040x}",
                    u128::from(n) * 0x0123_4567_89ab_cdef_0123_4567,
                    u128::MAX - u128::from(n)
                ));
                e
            })
            .collect();
        let batch = || entries.iter().enumerate().map(|(i, e)| (3 * i as u64, e));
        let (mut raw, mut lifted) = (Vec::new(), Lifted::new());
        encode_into(&mut raw, &mut Strings::default(), &mut lifted, batch());
        assert_eq!(lifted.digests, 60);
        let whole = encode(batch());
        assert_eq!(raw.len() + 60 * DIGEST, whole.len());
        let mut body = Vec::new();
        let body = compress_reusing(&mut body, &raw, &lifted, &mut Packer::new());
        assert_eq!(body[0], FORMAT_LZ4_LIFTED);
        assert_eq!(u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize, whole.len() - 1);
        let m = u32::from_le_bytes(body[5..9].try_into().unwrap()) as usize;
        assert_eq!(&body[9..9 + m], &lifted.bytes[..]);
        // The digests as they are beside LZ4's block: the first one of the last record.
        let last = [&[0; 4][..], &(29u128 * 0x0123_4567_89ab_cdef_0123_4567).to_be_bytes()].concat();
        assert!(body[9..9 + m].windows(DIGEST).any(|w| w == last));
        let plain_body = plain(body).unwrap();
        assert_eq!(plain_body, whole);
        let read = read_all(&plain_body);
        assert_eq!(read, batch().map(|(i, e)| (i, e.clone())).collect::<Vec<_>>());

        let kept = rebuild(records(&plain_body).unwrap().map(Result::unwrap).filter(|r| r.index % 2 == 0));
        let mut again = Vec::new();
        compress_into(&mut again, &kept);
        assert_eq!(again[0], FORMAT_LZ4);
        let want: Vec<_> = batch().filter(|(i, _)| i % 2 == 0).map(|(i, e)| (i, e.clone())).collect();
        assert_eq!(read_all(&plain(&again).unwrap()), want);
    }

    /// A lifted body cut short, or whose digests' places do not fit what LZ4 gives, is an
    /// error, not a panic nor other records.
    #[test]
    fn corrupt_lifted_bodies_are_errors() {
        let entries: Vec<DeliveryRecord> = (0..4).map(|n| served(n, n)).collect();
        let (mut raw, mut lifted) = (Vec::new(), Lifted::new());
        encode_into(
            &mut raw,
            &mut Strings::default(),
            &mut lifted,
            entries.iter().enumerate().map(|(i, e)| (i as u64, e)),
        );
        let mut body = Vec::new();
        let body = compress_reusing(&mut body, &raw, &lifted, &mut Packer::new()).to_vec();
        assert_eq!(body[0], FORMAT_LZ4_LIFTED);
        let decodes = |b: &[u8]| {
            plain(b)
                .is_ok_and(|b| records(&b).is_ok_and(|mut r| r.all(|r| r.and_then(|r| r.entry()).is_ok())))
        };
        assert!(decodes(&body));
        for cut in 0..body.len() {
            assert!(!decodes(&body[..cut]) || cut == 0, "a lifted body cut at {cut} decoded");
        }
        // The body with other lifted bytes.
        let m = u32::from_le_bytes(body[5..9].try_into().unwrap()) as usize;
        let with = |l: &[u8]| [&body[..5], &(l.len() as u32).to_le_bytes(), l, &body[9 + m..]].concat();
        let digest = &lifted.bytes[lifted.bytes.len() - DIGEST..];
        assert!(decodes(&with(&lifted.bytes)));
        // A digest's place past the end of what LZ4 gives.
        let mut far = Vec::new();
        varint(&mut far, raw.len() as u64);
        far.extend_from_slice(digest);
        assert_eq!(plain(&with(&far)).err(), Some("bad lifted digest"));
        // Lifted bytes that end inside a digest.
        assert_eq!(plain(&with(&lifted.bytes[..m - 1])).err(), Some("bad lifted digest"));
        // A place one byte early: the digest lands inside another field.
        let mut early = lifted.bytes.clone();
        early[0] -= 1;
        let want = read_all(&encode(entries.iter().enumerate().map(|(i, e)| (i as u64, e))));
        assert!(!decodes(&with(&early)) || read_all(&plain(&with(&early)).unwrap()) != want);
        // A length that does not add up, or past what LZ4 and the digests could give.
        let mut len = body.clone();
        len[1] ^= 1;
        assert_eq!(plain(&len).err(), Some("segment decompresses to the wrong length"));
        let mut huge = body.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(plain(&huge).err(), Some("segment claims an impossible length"));
        let mut m_huge = body;
        m_huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(plain(&m_huge).err(), Some("truncated segment"));
    }

    #[test]
    fn an_impossible_length_is_refused_before_allocating() {
        let mut packed = Vec::new();
        compress_into(&mut packed, &encode([(0, &full(1))].into_iter()));
        packed[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(plain(&packed).unwrap_err(), "segment claims an impossible length");
    }

    #[test]
    fn corrupt_bodies_are_errors_not_panics() {
        let body = encode([(0, &full(3))].into_iter());
        assert!(records(&[]).is_err());
        assert!(records(&[9]).is_err());
        for cut in 1..body.len() {
            let ok = records(&body[..cut]).is_ok_and(|mut r| r.all(|r| r.and_then(|r| r.entry()).is_ok()));
            assert!(!ok, "a body cut at {cut} decoded");
        }
    }
}
