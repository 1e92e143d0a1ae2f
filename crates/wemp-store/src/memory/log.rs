//! In-memory log backend.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::Result;
use crate::log::{DeliveryRecord, LogQuery, MessageLog};

/// The newest entries in a process-local ring: when full, the oldest entry goes.
///
/// Row ids start at 1 and keep counting across evictions, so `after_id` paging works as
/// with a database.
pub struct MemoryMessageLog {
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    entries: VecDeque<(i64, Arc<DeliveryRecord>)>,
    next_id: i64,
}

impl MemoryMessageLog {
    /// Capacity of [`MemoryMessageLog::default`].
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A log keeping at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            inner: Mutex::new(Inner { entries: VecDeque::with_capacity(capacity.min(1024)), next_id: 1 }),
        }
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries are held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, entries: impl Iterator<Item = Arc<DeliveryRecord>>) {
        let mut inner = self.lock();
        for entry in entries {
            if inner.entries.len() == self.capacity {
                inner.entries.pop_front();
            }
            let id = inner.next_id;
            inner.next_id += 1;
            inner.entries.push_back((id, entry));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update leaves the ring consistent, so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryMessageLog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for MemoryMessageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMessageLog")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl MessageLog for MemoryMessageLog {
    async fn append(&self, entries: &[DeliveryRecord]) -> Result<()> {
        self.push(entries.iter().map(|e| Arc::new(e.clone())));
        Ok(())
    }

    /// Keeps the shared records as they are (no copy).
    async fn append_shared(&self, entries: Arc<[Arc<DeliveryRecord>]>) -> Result<()> {
        self.push(entries.iter().cloned());
        Ok(())
    }

    async fn query(&self, query: &LogQuery) -> Result<Vec<(i64, DeliveryRecord)>> {
        let inner = self.lock();
        let limit = query.limit.unwrap_or(usize::MAX);
        Ok(inner
            .entries
            .iter()
            .filter(|(id, e)| query.matches(*id, e))
            .take(limit)
            .map(|(id, e)| (*id, DeliveryRecord::clone(e)))
            .collect())
    }

    async fn delete_before(&self, received_at_ms: i64) -> Result<u64> {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|(_, e)| e.received_at_ms >= received_at_ms);
        Ok((before - inner.entries.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_oldest_when_full() {
        let log = MemoryMessageLog::new(2);
        let e = |s: &str| {
            let mut e = DeliveryRecord::new(0, 0);
            e.summary = Some(s.to_owned());
            e
        };
        log.append(&[e("a"), e("b"), e("c")]).await.unwrap();
        let all = log.query(&LogQuery::default()).await.unwrap();
        let got: Vec<_> = all.iter().map(|(id, e)| (*id, e.summary.as_deref().unwrap_or_default())).collect();
        assert_eq!(got, [(2, "b"), (3, "c")]);
    }
}
