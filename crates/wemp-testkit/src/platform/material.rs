//! Permanent material.

use serde_json::{Value, json};

use super::StoredMedia;
use super::drafts::articles_page;
use super::media::{media_answer, store_upload};
use super::support::{s, secs};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/material/add_material" => match store_upload(w, r, true) {
            Ok((id, kind)) => {
                let url = (kind == "image").then(|| format!("http://mmbiz.qpic.cn/fake/{id}/0"));
                json!({ "media_id": id, "url": url })
            }
            Err(e) => e,
        },
        "/cgi-bin/material/get_material" => {
            let id = s(body, "media_id");
            return Some(match w.media.get(&id) {
                Some(m) if m.permanent => media_answer(m, &id),
                _ => Answer::Json(err(40007)),
            });
        }
        "/cgi-bin/material/del_material" => match w.media.get(&s(body, "media_id")) {
            Some(m) if m.permanent => {
                w.media.remove(&s(body, "media_id"));
                ok()
            }
            _ => err(40007),
        },
        "/cgi-bin/material/get_materialcount" => {
            let count = |k: &str| w.media.values().filter(|m| m.permanent && m.kind == k).count();
            json!({ "voice_count": count("voice"), "video_count": count("video"), "image_count": count("image"), "news_count": 0 })
        }
        "/cgi-bin/material/batchget_material" => {
            let kind = s(body, "type");
            let mut items: Vec<(String, StoredMedia)> = w
                .media
                .iter()
                .filter(|(_, m)| m.permanent && m.kind == kind)
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            let total = items.len();
            let items = items
                .into_iter()
                .map(|(id, m)| json!({ "media_id": id, "name": m.file_name, "update_time": secs(w.now_ms), "url": "" }))
                .collect();
            articles_page(items, body, total)
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}
