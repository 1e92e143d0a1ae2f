//! The body of a message-log segment: the entries of one appended batch, encoded compactly.
//!
//! ```text
//! body    = 1:u8 record*                      uncompressed
//!         | 2:u8 len:u32le lz4-block(record*)  what appends write (LZ4 block format)
//! record  = index:varint len:u32le fields (len = the length of fields)
//! fields  = received_at_ms:zigzag-varint appid openid msg_type   (what filters look at first)
//!           msg_id:opt-varint dedup_key event:opt-str mode dedup summary raw_xml
//!           reply_xml:opt-str outcome latency_ms:varint error:opt-str
//! str     = len:varint utf-8 bytes;  opt-x = 0 | 1 x
//! ```
//!
//! An entry's id is the segment's `first_id` plus its `index`. Records carry their index so
//! that dropping some of them (`delete_before`) leaves the others' ids as they were; the
//! length prefix lets a reader skip a record that fails the filters without decoding it.

use crate::log::{LogEntry, LogQuery};

/// Uncompressed records.
const FORMAT_RAW: u8 = 1;
/// LZ4 (block format) of the records of a [`FORMAT_RAW`] body, after their length (u32 LE).
const FORMAT_LZ4: u8 = 2;

/// Why a body does not decode.
pub(super) type Corrupt = &'static str;

/// Encodes `(index, entry)` pairs, indexes increasing.
#[cfg(test)]
fn encode<'a>(records: impl ExactSizeIterator<Item = (u64, &'a LogEntry)> + Clone) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, records);
    out
}

/// Encodes `(index, entry)` pairs, indexes increasing, into `out` (cleared first: the
/// caller reuses one buffer, so that every batch does not fault in fresh memory).
pub(super) fn encode_into<'a>(
    out: &mut Vec<u8>,
    records: impl ExactSizeIterator<Item = (u64, &'a LogEntry)> + Clone,
) {
    let size: usize = records.clone().map(|(_, e)| approx_len(e)).sum();
    out.clear();
    out.reserve(1 + size);
    out.push(FORMAT_RAW);
    for (index, e) in records {
        let out = &mut *out;
        varint(out, index);
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        varint(out, zigzag(e.received_at_ms));
        string(out, &e.appid);
        string(out, &e.openid);
        string(out, &e.msg_type);
        match e.msg_id {
            Some(m) => {
                out.push(1);
                varint(out, m);
            }
            None => out.push(0),
        }
        string(out, &e.dedup_key);
        opt_string(out, e.event.as_deref());
        string(out, &e.mode);
        string(out, &e.dedup);
        string(out, &e.summary);
        string(out, &e.raw_xml);
        opt_string(out, e.reply_xml.as_deref());
        string(out, &e.outcome);
        varint(out, e.latency_ms);
        opt_string(out, e.error.as_deref());
        let len = u32::try_from(out.len() - at - 4).expect("a log entry under 4 GiB");
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// `raw` (a [`FORMAT_RAW`] body) compressed into `out` (cleared first).
pub(super) fn compress_into(out: &mut Vec<u8>, raw: &[u8]) {
    let records = &raw[1..];
    out.clear();
    out.resize(5 + lz4_flex::block::get_maximum_output_size(records.len()), 0);
    out[0] = FORMAT_LZ4;
    out[1..5].copy_from_slice(&u32::try_from(records.len()).expect("a segment under 4 GiB").to_le_bytes());
    let n = lz4_flex::block::compress_into(records, &mut out[5..]).expect("output sized for the worst case");
    out.truncate(5 + n);
}

/// The body as [`FORMAT_RAW`], decompressed if need be.
pub(super) fn plain(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Corrupt> {
    match body.split_first() {
        Some((&FORMAT_LZ4, rest)) => {
            let (len, packed) = rest.split_at_checked(4).ok_or("truncated segment")?;
            let len = u32::from_le_bytes(len.try_into().map_err(|_| "truncated segment")?) as usize;
            // LZ4 expands at most ~255:1; a larger claim is corruption, not a reason to
            // allocate gigabytes.
            if len > packed.len().saturating_mul(255).saturating_add(16) {
                return Err("segment claims an impossible length");
            }
            let mut raw = vec![0; 1 + len];
            raw[0] = FORMAT_RAW;
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

/// A body holding only the given records, copied as they are (indexes kept).
pub(super) fn rebuild<'a>(records: impl Iterator<Item = Record<'a>>) -> Vec<u8> {
    let mut out = vec![FORMAT_RAW];
    for r in records {
        out.extend_from_slice(r.bytes);
    }
    out
}

fn approx_len(e: &LogEntry) -> usize {
    48 + e.appid.len()
        + e.openid.len()
        + e.msg_type.len()
        + e.dedup_key.len()
        + e.event.as_ref().map_or(0, String::len)
        + e.mode.len()
        + e.dedup.len()
        + e.summary.len()
        + e.raw_xml.len()
        + e.reply_xml.as_ref().map_or(0, String::len)
        + e.outcome.len()
        + e.error.as_ref().map_or(0, String::len)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

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
        Some((&FORMAT_RAW, rest)) => Ok(Records { rest }),
        Some(_) => Err("unknown segment format"),
        None => Err("empty segment body"),
    }
}

/// Iterator over a body's records.
pub(super) struct Records<'a> {
    rest: &'a [u8],
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
            let appid = fields.str()?;
            let openid = fields.str()?;
            let msg_type = fields.str()?;
            Ok((
                Record {
                    bytes: &all[..used],
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
    pub(super) fn entry(&self) -> Result<LogEntry, Corrupt> {
        let mut r = Reader(self.rest);
        let entry = LogEntry {
            received_at_ms: self.received_at_ms,
            appid: self.appid.to_owned(),
            openid: self.openid.to_owned(),
            msg_type: self.msg_type.to_owned(),
            msg_id: if r.flag()? { Some(r.varint()?) } else { None },
            dedup_key: r.str()?.to_owned(),
            event: r.opt_str()?,
            mode: r.str()?.to_owned(),
            dedup: r.str()?.to_owned(),
            summary: r.str()?.to_owned(),
            raw_xml: r.str()?.to_owned(),
            reply_xml: r.opt_str()?,
            outcome: r.str()?.to_owned(),
            latency_ms: r.varint()?,
            error: r.opt_str()?,
        };
        if r.0.is_empty() { Ok(entry) } else { Err("trailing bytes in a record") }
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
        std::str::from_utf8(self.take(len)?).map_err(|_| "string is not UTF-8")
    }

    fn opt_str(&mut self) -> Result<Option<String>, Corrupt> {
        Ok(if self.flag()? { Some(self.str()?.to_owned()) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(n: u64) -> LogEntry {
        LogEntry {
            received_at_ms: -5 + n as i64,
            appid: "wx1".into(),
            openid: format!("o{n}"),
            msg_id: Some(u64::MAX - n),
            dedup_key: "k".into(),
            msg_type: "text".into(),
            event: Some("subscribe".into()),
            mode: "safe".into(),
            dedup: "new".into(),
            summary: "你好".into(),
            raw_xml: "<xml/>".repeat(n as usize),
            reply_xml: Some("success".into()),
            outcome: "sent".into(),
            latency_ms: u64::MAX,
            error: Some("boom".into()),
        }
    }

    #[test]
    fn round_trip_and_rebuild() {
        let entries = [full(0), LogEntry::default(), full(300)];
        let body = encode(entries.iter().enumerate().map(|(i, e)| (i as u64 * 1000, e)));
        let decoded: Vec<(u64, LogEntry)> =
            records(&body).unwrap().map(|r| r.map(|r| (r.index, r.entry().unwrap())).unwrap()).collect();
        assert_eq!(decoded, [(0, full(0)), (1000, LogEntry::default()), (2000, full(300))]);

        let kept = rebuild(records(&body).unwrap().map(Result::unwrap).filter(|r| r.index != 1000));
        let indexes: Vec<u64> = records(&kept).unwrap().map(|r| r.unwrap().index).collect();
        assert_eq!(indexes, [0, 2000]);
    }

    #[test]
    fn compressed_bodies_decode_alike() {
        let entries: Vec<LogEntry> = (0..50).map(full).collect();
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
        for cut in 2..body.len() {
            let ok = records(&body[..cut]).unwrap().all(|r| r.and_then(|r| r.entry()).is_ok());
            assert!(!ok, "a body cut at {cut} decoded");
        }
    }
}
