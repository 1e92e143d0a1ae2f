//! In-memory session backend.
