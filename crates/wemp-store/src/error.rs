/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (Redis, SQLite, PostgreSQL) failed or cannot be reached.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend: `"redis"`, `"sqlite"`, `"postgres"`, `"memory"`.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An optimistic-concurrency write lost: someone else wrote first.
    #[error("version conflict on {key}: expected version {expected}, found {found}")]
    Conflict {
        /// The key written.
        key: String,
        /// The version the writer read.
        expected: u64,
        /// The version now stored.
        found: u64,
    },
    /// A stored value does not (de)serialize.
    #[error("stored value does not decode: {0}")]
    Codec(#[from] serde_json::Error),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { backend, source: source.into() }
    }
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
