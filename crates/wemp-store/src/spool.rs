//! The [`LogWriter`](crate::LogWriter)'s spool: batches the log could not take, kept on
//! local disk until it can.
//!
//! One file per batch, `<ms>-<pid>-<seq>.json` (a JSON array of records), written to a
//! temporary name and renamed, so a file is whole or absent. Names sort by time; the spool
//! is replayed oldest first. A process replaying a file first renames it to
//! `<name>.<pid>.replaying`, so two processes sharing the directory never replay one file
//! twice; a claim left by a process that is gone (no `/proc/<pid>`) is taken back at start.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::log::DeliveryRecord;

/// A spooled batch waiting for the log.
#[derive(Debug)]
struct Pending {
    path: PathBuf,
    bytes: u64,
}

/// The spool directory and what waits in it.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<Pending>,
    bytes: u64,
    seq: u64,
}

/// Why a batch was not spooled.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// The spool holds `max_bytes` already.
    Full,
    /// The disk refused.
    Io(std::io::Error),
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("the spool is full"),
            Self::Io(e) => write!(f, "cannot write to the spool: {e}"),
        }
    }
}

const SUFFIX: &str = ".json";
const CLAIMED: &str = ".replaying";

impl Spool {
    /// The spool in `dir` (created when first written to), with what an earlier run left.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Self {
        let mut spool = Self { dir: dir.to_owned(), max_bytes, files: VecDeque::new(), bytes: 0, seq: 0 };
        let Ok(read) = std::fs::read_dir(dir) else { return spool };
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in read.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if let Some(claimed) = name.strip_suffix(CLAIMED) {
                // `<name>.json.<pid>`: taken back when its process is gone.
                let Some((file, pid)) = claimed.rsplit_once('.') else { continue };
                if !process_alive(pid) {
                    let back = dir.join(file);
                    if std::fs::rename(&path, &back).is_ok() {
                        names.push(back);
                    }
                }
            } else if name.ends_with(SUFFIX) && !name.starts_with('.') {
                names.push(path);
            }
        }
        names.sort();
        for path in names {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            spool.bytes += bytes;
            spool.files.push_back(Pending { path, bytes });
        }
        spool
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes waiting.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes `batch` as the newest file.
    pub(crate) fn push(&mut self, batch: &[std::sync::Arc<DeliveryRecord>]) -> Result<(), SpoolError> {
        let json = serde_json::to_vec(batch).map_err(|e| SpoolError::Io(std::io::Error::other(e)))?;
        let bytes = json.len() as u64;
        if self.bytes.saturating_add(bytes) > self.max_bytes {
            return Err(SpoolError::Full);
        }
        std::fs::create_dir_all(&self.dir).map_err(SpoolError::Io)?;
        self.seq += 1;
        let name = format!("{:016}-{:010}-{:010}{SUFFIX}", crate::now_ms(), std::process::id(), self.seq);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &json).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            SpoolError::Io(e)
        })?;
        self.bytes += bytes;
        self.files.push_back(Pending { path, bytes });
        Ok(())
    }

    /// Claims the oldest file and reads it: `None` when the spool is empty. A file another
    /// process claimed first, or that does not decode (set aside as `.bad`), is skipped.
    pub(crate) fn claim_front(&mut self) -> Option<Claimed> {
        while let Some(front) = self.files.front() {
            let claimed = PathBuf::from(format!("{}.{}{CLAIMED}", front.path.display(), std::process::id()));
            if std::fs::rename(&front.path, &claimed).is_err() {
                // Gone: another process replays it.
                self.drop_front();
                continue;
            }
            match std::fs::read(&claimed).map_err(|e| e.to_string()).and_then(|bytes| {
                serde_json::from_slice::<Vec<std::sync::Arc<DeliveryRecord>>>(&bytes)
                    .map_err(|e| e.to_string())
            }) {
                Ok(batch) => return Some(Claimed { path: claimed, batch: batch.into() }),
                Err(e) => {
                    let bad = PathBuf::from(format!("{}.bad", front.path.display()));
                    tracing::warn!(file = %bad.display(), error = %e, "a spooled log batch does not read back; set aside");
                    let _ = std::fs::rename(&claimed, &bad);
                    self.drop_front();
                }
            }
        }
        None
    }

    /// The claimed file was written to the log: it goes.
    pub(crate) fn done(&mut self, claimed: Claimed) {
        let _ = std::fs::remove_file(&claimed.path);
        self.drop_front();
    }

    /// The claimed file could not be written: it waits again, still the oldest.
    pub(crate) fn release(&mut self, claimed: Claimed) {
        if let Some(front) = self.files.front()
            && std::fs::rename(&claimed.path, &front.path).is_err()
        {
            tracing::warn!(file = %claimed.path.display(), "cannot return a spooled log batch to the spool");
            self.drop_front();
        }
    }

    fn drop_front(&mut self) {
        if let Some(front) = self.files.pop_front() {
            self.bytes = self.bytes.saturating_sub(front.bytes);
        }
    }
}

/// The oldest spooled batch, claimed by this process.
#[derive(Debug)]
pub(crate) struct Claimed {
    path: PathBuf,
    /// Its records.
    pub(crate) batch: std::sync::Arc<[std::sync::Arc<DeliveryRecord>]>,
}

/// Whether the process `pid` runs (Linux: `/proc/<pid>` exists; elsewhere: assumed gone).
fn process_alive(pid: &str) -> bool {
    pid.parse::<u32>().is_ok_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> std::sync::Arc<DeliveryRecord> {
        let mut r = DeliveryRecord::new(0, 1_700_000_000_000 + n as i64);
        r.msg_id = Some(u64::MAX - n);
        r.summary = Some(format!("message {n} 你好"));
        r.raw_xml = Some(format!("<xml><MsgId>{n}</MsgId></xml>").into());
        r.query = crate::log::RequestQuery::new("signature=abc");
        r.headers = [("user-agent", "Mozilla/4.0")].into();
        r.latency = std::time::Duration::from_micros(1234);
        r.into()
    }

    #[test]
    fn batches_come_back_oldest_first_whole_and_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("wemp-spool-{}", rand_suffix()));
        let mut spool = Spool::open(&dir, 1 << 20);
        assert!(spool.is_empty() && !dir.exists(), "nothing is created before it is needed");
        spool.push(&[record(1), record(2)]).unwrap();
        spool.push(&[record(3)]).unwrap();
        let bytes = spool.bytes();
        assert!(bytes > 0);

        // A restart finds both, in order; a claim returned waits as the oldest again.
        let mut again = Spool::open(&dir, 1 << 20);
        assert_eq!(again.bytes(), bytes);
        let first = again.claim_front().unwrap();
        assert_eq!(&*first.batch, &[record(1), record(2)]);
        again.release(first);
        let first = again.claim_front().unwrap();
        assert_eq!(first.batch.len(), 2);
        again.done(first);
        let second = again.claim_front().unwrap();
        assert_eq!(&*second.batch, &[record(3)]);
        again.done(second);
        assert!(again.claim_front().is_none() && again.is_empty() && again.bytes() == 0);

        // Bounded: a batch that does not fit is refused.
        let mut small = Spool::open(&dir, 10);
        assert!(matches!(small.push(&[record(4)]), Err(SpoolError::Full)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_claim_left_by_a_process_that_is_gone_is_taken_back() {
        let dir = std::env::temp_dir().join(format!("wemp-spool-{}", rand_suffix()));
        let mut spool = Spool::open(&dir, 1 << 20);
        spool.push(&[record(1)]).unwrap();
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        // Claimed by a pid that cannot run (above Linux's pid_max).
        std::fs::rename(&file, format!("{}.99999999{CLAIMED}", file.display())).unwrap();
        let mut again = Spool::open(&dir, 1 << 20);
        assert_eq!(&*again.claim_front().unwrap().batch, &[record(1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn rand_suffix() -> String {
        format!("{}-{:?}", std::process::id(), std::time::Instant::now())
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    }
}
