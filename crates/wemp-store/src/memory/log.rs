//! In-memory log backend.
