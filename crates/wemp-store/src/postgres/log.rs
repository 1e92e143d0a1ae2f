//! The message log in PostgreSQL, one row per delivery.

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::{PostgresDatabase, open, pg_err};
use crate::log::{DeliveryRecord, LogQuery, MessageLog};
use crate::{Result, StoreError};

/// The parts of a [`DeliveryRecord`] kept as JSON in the `detail` column.
#[derive(serde::Serialize, serde::Deserialize)]
struct Detail {
    outcome: crate::log::RecordOutcome,
    #[serde(default)]
    rejection: Option<crate::log::RejectionRecord>,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    latency_us: u64,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    peer: Option<std::net::SocketAddr>,
    #[serde(default)]
    query: crate::log::RequestQuery,
    #[serde(default)]
    headers: crate::log::RequestHeaders,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    checks: Vec<wemp_proto::admission::Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forward: Option<Box<crate::log::ForwardRecord>>,
}

/// The message log in PostgreSQL, one row per delivery, with an `appid` column.
#[derive(Clone, Debug)]
pub struct PostgresMessageLog {
    pub(super) db: PostgresDatabase,
}

impl PostgresMessageLog {
    /// Connects and migrates (see [`PostgresDatabase::connect`]).
    ///
    /// # Errors
    ///
    /// As [`PostgresDatabase::connect`].
    pub async fn connect(url: &str, schema: &str) -> Result<Self> {
        Ok(PostgresDatabase::connect(url, schema).await?.message_log())
    }

    /// The database this log lives in.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }
}

const LOG_COLUMNS: &str = "received_at_ms, appid, openid, msg_id, dedup_key, msg_type, event, mode, dedup, \
                           summary, raw_xml, reply_xml, outcome, latency_ms, error, detail";

impl PostgresMessageLog {
    /// Appends `entries` in one statement.
    async fn insert(&self, entries: &[&DeliveryRecord]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement per batch: the arrays are unnested in order, so ids follow it.
        let sql = format!(
            "INSERT INTO {} ({LOG_COLUMNS})
             SELECT {LOG_COLUMNS} FROM UNNEST(
                 $1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
                 $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[],
                 $15::TEXT[], $16::TEXT[]
             ) WITH ORDINALITY AS t ({LOG_COLUMNS}, n)
             ORDER BY n",
            self.db.table("message_log")
        );
        let col = |f: fn(&DeliveryRecord) -> Option<&str>| {
            entries.iter().map(|e| f(e).unwrap_or_default()).collect::<Vec<_>>()
        };
        let opt = |f: fn(&DeliveryRecord) -> Option<&str>| entries.iter().map(|e| f(e)).collect::<Vec<_>>();
        let received: Vec<i64> = entries.iter().map(|e| e.received_at_ms).collect();
        // MsgId is a u64; stored as the i64 with the same bits.
        let msg_id: Vec<Option<i64>> = entries.iter().map(|e| e.msg_id.map(|m| m as i64)).collect();
        let latency: Vec<i64> =
            entries.iter().map(|e| i64::try_from(e.latency_ms()).unwrap_or(i64::MAX)).collect();
        let (appid, openid, dedup_key, msg_type) = (
            col(|e| e.appid.as_deref()),
            col(|e| e.openid.as_deref()),
            col(|e| e.dedup_key.as_deref()),
            col(|e| e.msg_type.as_deref()),
        );
        let (summary, raw_xml) = (col(|e| e.summary.as_deref()), col(|e| e.raw_xml.as_deref()));
        let mode: Vec<&str> = entries.iter().map(|e| e.mode.map_or("", wemp_proto::Mode::as_str)).collect();
        let dedup: Vec<&str> =
            entries.iter().map(|e| e.dedup.map_or("", crate::log::DedupOutcome::as_str)).collect();
        let outcome: Vec<&str> = entries.iter().map(|e| e.outcome.label()).collect();
        let detail = entries
            .iter()
            .map(|e| {
                serde_json::to_string(&Detail {
                    outcome: e.outcome.clone(),
                    rejection: e.rejection.clone(),
                    status: e.status,
                    latency_us: u64::try_from(e.latency.as_micros()).unwrap_or(u64::MAX),
                    handler: e.handler.as_deref().map(str::to_owned),
                    peer: e.peer,
                    query: e.query.clone(),
                    headers: e.headers.clone(),
                    attempts: e.attempts,
                    checks: e.checks.clone(),
                    forward: e.forward.clone(),
                })
                .map_err(|e| StoreError::backend("postgres", e))
            })
            .collect::<Result<Vec<String>>>()?;
        let (event, reply_xml, error) =
            (opt(|e| e.event.as_deref()), opt(|e| e.reply_xml.as_deref()), opt(|e| e.error.as_deref()));
        let params: [&(dyn ToSql + Sync); 16] = [
            &received, &appid, &openid, &msg_id, &dedup_key, &msg_type, &event, &mode, &dedup, &summary,
            &raw_xml, &reply_xml, &outcome, &latency, &error, &detail,
        ];
        // Appends are serialized across instances (the lock conflicts with itself and with
        // any other insert) and commit in id order: otherwise an append that took its ids
        // after another instance's could commit first, and a reader following the log with
        // `after_id` would move past the earlier ids before they became visible, never to
        // see those entries. Readers are not blocked.
        let lock = format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", self.db.table("message_log"));
        let mut appender = self.db.inner.appender.lock().await;
        if appender.as_ref().is_none_or(Client::is_closed) {
            *appender = Some(open(&self.db.inner.config).await?);
        }
        let Some(client) = appender.as_mut() else { unreachable!("opened above") };
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.batch_execute(&lock).await.map_err(pg_err)?;
        tx.execute(&sql, &params).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }
}

#[async_trait::async_trait]
impl MessageLog for PostgresMessageLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        self.insert(&entries.iter().collect::<Vec<_>>()).await
    }

    /// Inserts the shared records (no copy).
    async fn append_shared(&self, entries: std::sync::Arc<[std::sync::Arc<DeliveryRecord>]>) -> Result<()> {
        self.insert(&entries.iter().map(|e| &**e).collect::<Vec<_>>()).await
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let mut sql = format!("SELECT id, {LOG_COLUMNS} FROM {} WHERE TRUE", self.db.table("message_log"));
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut filter = |sql: &mut String, column: &str, op: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&format!(" AND {column} {op} ${}", args.len()));
        };
        if let Some(a) = &query.appid {
            filter(&mut sql, "appid", "=", Box::new(a.clone()));
        }
        if let Some(o) = &query.openid {
            filter(&mut sql, "openid", "=", Box::new(o.clone()));
        }
        if let Some(t) = &query.msg_type {
            filter(&mut sql, "msg_type", "=", Box::new(t.clone()));
        }
        if let Some(s) = query.since_ms {
            filter(&mut sql, "received_at_ms", ">=", Box::new(s));
        }
        if let Some(a) = query.after_id {
            filter(&mut sql, "id", ">", Box::new(a));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = query.limit {
            sql.push_str(&format!(" LIMIT {}", i64::try_from(l).unwrap_or(i64::MAX)));
        }
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
        let rows = self.db.client().await?.query(&sql, &refs).await.map_err(pg_err)?;
        rows.iter().map(|r| Ok((r.try_get::<_, i64>(0).map_err(pg_err)?, row(r)?))).collect()
    }

    async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        let sql = format!("DELETE FROM {} WHERE received_at_ms < $1", self.db.table("message_log"));
        self.db.client().await?.execute(&sql, &[&received_at_ms]).await.map_err(pg_err)
    }
}

/// A row of `message_log` (columns as [`LOG_COLUMNS`], after the id).
fn row(r: &tokio_postgres::Row) -> Result<DeliveryRecord> {
    let some = |s: String| (!s.is_empty()).then_some(s);
    let text = |i: usize| r.try_get::<_, String>(i).map_err(pg_err);
    let mut e = DeliveryRecord::new(0, r.try_get(1).map_err(pg_err)?);
    e.appid = some(text(2)?).map(Into::into);
    e.openid = some(text(3)?);
    e.msg_id = r.try_get::<_, Option<i64>>(4).map_err(pg_err)?.map(|m| m as u64);
    e.dedup_key = some(text(5)?).map(Into::into);
    e.msg_type = some(text(6)?).map(Into::into);
    e.event = r.try_get::<_, Option<String>>(7).map_err(pg_err)?.map(Into::into);
    e.mode = serde_json::from_value(serde_json::Value::String(text(8)?)).ok();
    e.dedup = crate::log::legacy_dedup(&text(9)?);
    e.summary = some(text(10)?);
    e.raw_xml = some(text(11)?).map(Into::into);
    e.reply_xml = r.try_get(12).map_err(pg_err)?;
    e.latency = std::time::Duration::from_millis(r.try_get::<_, i64>(14).map_err(pg_err)?.max(0) as u64);
    e.error = r.try_get(15).map_err(pg_err)?;
    match r.try_get::<_, Option<String>>(16).map_err(pg_err)? {
        Some(detail) => {
            let d: Detail = serde_json::from_str(&detail).map_err(|e| StoreError::backend("postgres", e))?;
            e.outcome = d.outcome;
            e.rejection = d.rejection;
            e.status = d.status;
            e.latency = std::time::Duration::from_micros(d.latency_us);
            e.handler = d.handler.map(Into::into);
            e.peer = d.peer;
            e.query = d.query;
            e.headers = d.headers;
            e.attempts = d.attempts.max(1);
            e.checks = d.checks;
            e.forward = d.forward;
        }
        None => {
            // Written before the record was typed.
            (e.outcome, e.rejection) = crate::log::legacy_outcome(&text(13)?, e.error.as_deref());
            e.status = if e.outcome == crate::log::RecordOutcome::Rejected { 400 } else { 200 };
        }
    }
    Ok(e)
}
