//! [`LogBuffer`]: log output kept in memory, for tests that read what a subscriber wrote.

use std::io;
use std::sync::{Arc, Mutex};

/// An in-memory writer whose clones all append to the same bytes. Give a `tracing`
/// subscriber [`LogBuffer::writer`] as its writer, then read what it wrote with
/// [`LogBuffer::text`].
#[derive(Clone, Debug, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// A writer for a `tracing` subscriber (`.with_writer(buffer.writer())`): each line it
    /// writes goes to this buffer.
    pub fn writer(&self) -> impl Fn() -> Self + Send + Sync + 'static {
        let buffer = self.clone();
        move || buffer.clone()
    }

    /// What was written so far.
    ///
    /// # Panics
    ///
    /// If what was written is not UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .expect("log output is UTF-8")
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
