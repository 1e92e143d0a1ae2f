//! A fake media store: uploads from the chat get WeChat-shaped media ids.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// The largest upload kept (WeChat's image limit is 10 MB; the console keeps less).
pub(crate) const MAX_BYTES: usize = 5 * 1024 * 1024;
const MAX_ITEMS: usize = 64;
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Uploaded media, newest kept, by id.
#[derive(Debug, Default)]
pub(crate) struct MediaStore {
    items: Mutex<VecDeque<(String, String, Bytes)>>,
}

impl MediaStore {
    /// Keeps `bytes` and returns a new 64-character media id.
    pub(crate) fn put(&self, content_type: String, bytes: Bytes) -> String {
        let id: String =
            (0..64).map(|_| char::from(ID_CHARS[usize::from(rand::random::<u8>() & 63)])).collect();
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() == MAX_ITEMS {
            items.pop_front();
        }
        items.push_back((id.clone(), content_type, bytes));
        id
    }

    /// The content type and bytes of `id`.
    pub(crate) fn get(&self, id: &str) -> Option<(String, Bytes)> {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.iter().find(|(i, _, _)| i == id).map(|(_, t, b)| (t.clone(), b.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_it_is_given() {
        let store = MediaStore::default();
        let id = store.put("image/png".into(), Bytes::from_static(b"png"));
        assert_eq!(id.len(), 64);
        assert_eq!(store.get(&id), Some(("image/png".into(), Bytes::from_static(b"png"))));
        assert_eq!(store.get("nope"), None);
        for _ in 0..MAX_ITEMS {
            store.put("image/png".into(), Bytes::new());
        }
        assert_eq!(store.get(&id), None, "oldest dropped");
    }
}
