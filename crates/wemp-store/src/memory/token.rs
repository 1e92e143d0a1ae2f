//! In-memory token backend.
