//! In-memory dedup backend.
