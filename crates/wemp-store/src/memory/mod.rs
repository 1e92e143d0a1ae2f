//! In-memory backends, always built. Bounded where they hold per-message state.
