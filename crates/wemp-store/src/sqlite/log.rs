//! The message log in SQLite, in segments (see the [module docs](super)).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{SqliteDatabase, sql_err};
use crate::log::{DeliveryRecord, LogQuery, MessageLog};
use crate::{Result, StoreError};

mod segment;

/// The message log in a SQLite file, one row per appended batch (see the [module docs](super)).
#[derive(Clone, Debug)]
pub struct SqliteMessageLog {
    pub(super) db: SqliteDatabase,
    /// The last batch written through [`MessageLog::append_shared`]: a retry of it is not
    /// written again. (Held weakly, its allocation cannot be reused for another batch.)
    pub(super) written: Arc<Mutex<Option<WrittenBatch>>>,
}

/// A batch appended, held weakly.
type WrittenBatch = std::sync::Weak<[Arc<DeliveryRecord>]>;

impl SqliteMessageLog {
    /// Opens the log in the database file at `path` (see [`SqliteDatabase::open`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteDatabase::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteDatabase::open(path).await?.message_log())
    }

    /// The database this log lives in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }
}

/// The most entries in one segment; larger appends are split. Bounds `last_id - first_id`,
/// which lets a query by `after_id` seek on the primary key.
pub(super) const MAX_SEGMENT: usize = 4096;

pub(super) const LOG_COLUMNS: &str = "received_at_ms, appid, openid, msg_id, dedup_key, msg_type, event, mode, dedup, \
                           summary, raw_xml, reply_xml, outcome, latency_ms, error";

fn corrupt(first_id: i64, what: segment::Corrupt) -> StoreError {
    StoreError::backend("sqlite", format!("message log segment {first_id} does not decode: {what}"))
}

thread_local! {
    /// The encoding buffers of segment bodies (uncompressed, compressed, the table's
    /// strings, the lifted digests, LZ4's tables), one set per blocking thread, reused
    /// across batches.
    static ENCODE_BUFFERS: std::cell::RefCell<EncodeBuffers> = const {
        std::cell::RefCell::new((
            Vec::new(),
            Vec::new(),
            segment::Strings::new(),
            segment::Lifted::new(),
            segment::Packer::new(),
        ))
    };
}

type EncodeBuffers = (Vec<u8>, Vec<u8>, segment::Strings, segment::Lifted, segment::Packer);

/// How many records ahead of the one it encodes the writer reads the next one's texts
/// ([`DeliveryRecord::read_ahead`]): enough for them to arrive before it gets there. Where
/// they are is read twice as far ahead ([`DeliveryRecord::read_parts_ahead`]), where that
/// is three times as far ([`DeliveryRecord::read_record_ahead`]).
const READ_AHEAD: usize = 8;

/// Reads ahead by asking the CPU to fetch each line into its caches (`prefetcht0`), which
/// the CPU does without waiting for it; where there is no such instruction to call without
/// `unsafe`, nothing is read ahead.
struct Prefetch;

impl crate::log::Ahead for Prefetch {
    #[inline(always)]
    fn line<T>(&mut self, at: &T) {
        #[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse"))]
        safe_arch::prefetch_t0(at);
        #[cfg(not(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse")))]
        let _ = at;
    }
}

/// A larger encoding buffer is freed after use rather than kept for the next batch.
const MAX_KEPT_BUFFER: usize = 4 << 20;

fn append_log(c: &mut Connection, entries: &[Arc<DeliveryRecord>]) -> Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    {
        // Read under the write lock the transaction holds; the segments inserted below are
        // what the next append reads, so the floor is not written (see `next_id`).
        let first = next_id(&tx)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO message_log_segments (first_id, last_id, entries, min_ms, max_ms, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql_err)?;
        for (k, chunk) in entries.chunks(MAX_SEGMENT).enumerate() {
            let first_id = first + (k * MAX_SEGMENT) as i64;
            let times = chunk.iter().map(|e| e.received_at_ms);
            let (min, max) = (times.clone().min().unwrap_or(0), times.max().unwrap_or(0));
            // Each record read a few ahead of its encoding ([`DeliveryRecord::read_ahead`]).
            for e in chunk.iter().take(3 * READ_AHEAD) {
                e.read_record_ahead(&mut Prefetch);
            }
            for e in chunk.iter().take(2 * READ_AHEAD) {
                e.read_parts_ahead(&mut Prefetch);
            }
            for e in chunk.iter().take(READ_AHEAD) {
                e.read_ahead(&mut Prefetch);
            }
            ENCODE_BUFFERS
                .with_borrow_mut(|(raw, body, strings, lifted, packer)| {
                    segment::encode_into(
                        raw,
                        strings,
                        lifted,
                        chunk.iter().enumerate().map(|(i, e)| {
                            if let Some(ahead) = chunk.get(i + 3 * READ_AHEAD) {
                                ahead.read_record_ahead(&mut Prefetch);
                            }
                            if let Some(ahead) = chunk.get(i + 2 * READ_AHEAD) {
                                ahead.read_parts_ahead(&mut Prefetch);
                            }
                            if let Some(ahead) = chunk.get(i + READ_AHEAD) {
                                ahead.read_ahead(&mut Prefetch);
                            }
                            (i as u64, &**e)
                        }),
                    );
                    let packed = segment::compress_reusing(body, raw, lifted, packer);
                    let done = insert.execute(rusqlite::params![
                        first_id,
                        first_id + chunk.len() as i64 - 1,
                        chunk.len() as i64,
                        min,
                        max,
                        packed
                    ]);
                    for buf in [raw, body] {
                        if buf.capacity() > MAX_KEPT_BUFFER {
                            *buf = Vec::new();
                        }
                    }
                    if strings.capacity() > MAX_KEPT_BUFFER {
                        *strings = segment::Strings::new();
                    }
                    if lifted.capacity() > MAX_KEPT_BUFFER {
                        *lifted = segment::Lifted::new();
                    }
                    done
                })
                .map_err(sql_err)?;
        }
    }
    tx.commit().map_err(sql_err)
}

/// The id the next appended entry gets: after the newest segment's last entry, or the floor
/// kept in `message_log_ids` if that is larger (ids the `message_log` table issued, and
/// those of segments deleted or cut short since: [`delete_log_before`] raises the floor to
/// this before it deletes). An append does not write the floor: its segment says how far
/// ids went, which spares every batch an `UPDATE` and the page it dirties (schema 4).
///
/// The newest segment is the one with the largest `first_id` (the primary key: a seek to the
/// table's end); segments never overlap, so none has a larger `last_id`.
fn next_id(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    tx.prepare_cached(
        "SELECT MAX(next_id, COALESCE((SELECT last_id FROM message_log_segments \
         ORDER BY first_id DESC LIMIT 1), 0) + 1) FROM message_log_ids",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(sql_err)
}

fn delete_log_before(c: &mut Connection, before_ms: i64) -> Result<u64> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    // The ids issued so far stay issued: deleting or cutting short the newest segment must
    // not let the next append take its ids again.
    let next = next_id(&tx)?;
    tx.execute("UPDATE message_log_ids SET next_id = ?1", [next]).map_err(sql_err)?;
    let mut deleted =
        tx.execute("DELETE FROM message_log WHERE received_at_ms < ?1", [before_ms]).map_err(sql_err)? as u64;
    let whole: i64 = tx
        .query_row(
            "SELECT COALESCE(SUM(entries), 0) FROM message_log_segments WHERE max_ms < ?1",
            [before_ms],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    tx.execute("DELETE FROM message_log_segments WHERE max_ms < ?1", [before_ms]).map_err(sql_err)?;
    deleted += whole as u64;
    let partial: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare("SELECT first_id, body FROM message_log_segments WHERE min_ms < ?1 ORDER BY first_id")
            .map_err(sql_err)?;
        let rows = stmt.query_map([before_ms], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    for (first_id, body) in partial {
        let raw = segment::plain(&body).map_err(|e| corrupt(first_id, e))?;
        let records = segment::records(&raw)
            .map_err(|e| corrupt(first_id, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(first_id, e))?;
        let total = records.len();
        let kept: Vec<_> = records.into_iter().filter(|r| r.received_at_ms >= before_ms).collect();
        deleted += (total - kept.len()) as u64;
        // Not empty: the segment's newest entry is at or after `before_ms`.
        let last = kept.iter().map(|r| r.index).max().unwrap_or(0) as i64;
        let min = kept.iter().map(|r| r.received_at_ms).min().unwrap_or(before_ms);
        let max = kept.iter().map(|r| r.received_at_ms).max().unwrap_or(before_ms);
        let n = kept.len() as i64;
        let mut body = Vec::new();
        segment::compress_into(&mut body, &segment::rebuild(kept.into_iter()));
        tx.execute(
            "UPDATE message_log_segments SET last_id = ?2, entries = ?3, min_ms = ?4, max_ms = ?5, body = ?6 \
             WHERE first_id = ?1",
            rusqlite::params![first_id, first_id + last, n, min, max, body],
        )
        .map_err(sql_err)?;
    }
    tx.commit().map_err(sql_err)?;
    Ok(deleted)
}

/// Rows of the `message_log` table (written before segments), then entries of segments.
fn query_log(c: &mut Connection, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
    let limit = query.limit.unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut out = query_rows(c, query)?;
    if out.len() >= limit {
        return Ok(out);
    }
    let after = query.after_id.unwrap_or(i64::MIN);
    let mut stmt = c
        .prepare_cached(
            "SELECT first_id, body FROM message_log_segments \
             WHERE first_id > ?1 AND last_id > ?2 AND max_ms >= ?3 ORDER BY first_id",
        )
        .map_err(sql_err)?;
    let mut rows = stmt
        .query(rusqlite::params![
            after.saturating_sub(MAX_SEGMENT as i64),
            after,
            query.since_ms.unwrap_or(i64::MIN)
        ])
        .map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let first_id: i64 = row.get(0).map_err(sql_err)?;
        let body =
            row.get_ref(1).map_err(sql_err)?.as_blob().map_err(|e| StoreError::backend("sqlite", e))?;
        let raw = segment::plain(body).map_err(|e| corrupt(first_id, e))?;
        for record in segment::records(&raw).map_err(|e| corrupt(first_id, e))? {
            let record = record.map_err(|e| corrupt(first_id, e))?;
            let id = first_id + record.index as i64;
            if !record.may_match(id, query) {
                continue;
            }
            let entry = record.entry().map_err(|e| corrupt(first_id, e))?;
            if query.matches(id, &entry) {
                out.push((id, entry));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Matching rows of the `message_log` table, as earlier versions wrote them.
fn query_rows(c: &Connection, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
    let query = query.clone();
    let mut sql = format!("SELECT id, {LOG_COLUMNS} FROM message_log WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut filter = |sql: &mut String, column: &str, op: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&format!(" AND {column} {op} ?{}", args.len()));
    };
    if let Some(a) = query.appid {
        filter(&mut sql, "appid", "=", a.into());
    }
    if let Some(o) = query.openid {
        filter(&mut sql, "openid", "=", o.into());
    }
    if let Some(t) = query.msg_type {
        filter(&mut sql, "msg_type", "=", t.into());
    }
    if let Some(s) = query.since_ms {
        filter(&mut sql, "received_at_ms", ">=", s.into());
    }
    if let Some(a) = query.after_id {
        filter(&mut sql, "id", ">", a.into());
    }
    sql.push_str(" ORDER BY id");
    if let Some(l) = query.limit {
        sql.push_str(&format!(" LIMIT {}", i64::try_from(l).unwrap_or(i64::MAX)));
    }
    let mut stmt = c.prepare(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get::<_, i64>(0)?, {
                let mut e = DeliveryRecord::new(0, r.get(1)?);
                let some = |s: String| (!s.is_empty()).then_some(s);
                e.appid = some(r.get(2)?).map(Into::into);
                e.openid = some(r.get(3)?);
                e.msg_id = r.get::<_, Option<i64>>(4)?.map(|m| m as u64);
                e.dedup_key = some(r.get(5)?).map(Into::into);
                e.msg_type = some(r.get(6)?).map(Into::into);
                e.event = r.get::<_, Option<String>>(7)?.map(Into::into);
                e.mode = serde_json::from_value(serde_json::Value::String(r.get(8)?)).ok();
                e.dedup = crate::log::legacy_dedup(&r.get::<_, String>(9)?);
                e.summary = some(r.get(10)?);
                e.raw_xml = some(r.get(11)?).map(Into::into);
                e.reply_xml = r.get(12)?;
                e.latency = Duration::from_millis(r.get::<_, i64>(14)?.max(0) as u64);
                e.error = r.get(15)?;
                (e.outcome, e.rejection) =
                    crate::log::legacy_outcome(&r.get::<_, String>(13)?, e.error.as_deref());
                e.status = if e.outcome == crate::log::RecordOutcome::Rejected { 400 } else { 200 };
                e
            }))
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

#[async_trait::async_trait]
impl MessageLog for SqliteMessageLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        self.append_shared(entries.iter().map(|e| Arc::new(e.clone())).collect()).await
    }

    /// A batch given again (the same `Arc`, as [`crate::LogWriter`] retries one) after it was
    /// written is not written twice: a first try that outlived the writer's timeout — the
    /// blocking write goes on after the wait is abandoned — has written it by the time the
    /// retry reaches the connection.
    async fn append_shared(&self, entries: Arc<[Arc<DeliveryRecord>]>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let written = Arc::clone(&self.written);
        self.db
            .call(move |c| {
                let mut last = written.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_ref().is_some_and(|w| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(&entries))) {
                    return Ok(());
                }
                append_log(c, &entries)?;
                *last = Some(Arc::downgrade(&entries));
                Ok(())
            })
            .await
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let query = query.clone();
        self.db.call(move |c| query_log(c, &query)).await
    }

    /// Segments entirely older go as a whole; a segment holding older and newer entries is
    /// rewritten without the older ones, and the others keep their ids.
    async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        self.db.call(move |c| delete_log_before(c, received_at_ms)).await
    }
}
