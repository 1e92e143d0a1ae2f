//! Drafts of articles.

use serde_json::{Value, json};

use super::support::{s, secs};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/draft/add" => match body.get("articles").and_then(Value::as_array) {
            Some(a) if !a.is_empty() && a.iter().all(|x| !s(x, "title").is_empty()) => {
                let id = w.next_id("DRAFT_");
                w.drafts.insert(id.clone(), (a.clone(), secs(w.now_ms)));
                json!({ "media_id": id })
            }
            _ => err(53404),
        },
        "/cgi-bin/draft/get" => match w.drafts.get(&s(body, "media_id")) {
            Some((a, _)) => json!({ "news_item": a }),
            None => err(40007),
        },
        "/cgi-bin/draft/update" => {
            let idx = body["index"].as_u64().unwrap_or_default() as usize;
            match w.drafts.get_mut(&s(body, "media_id")) {
                Some((a, _)) if idx < a.len() => {
                    a[idx] = body["articles"].clone();
                    ok()
                }
                Some(_) => err(53405),
                None => err(40007),
            }
        }
        "/cgi-bin/draft/delete" => match w.drafts.remove(&s(body, "media_id")) {
            Some(_) => ok(),
            None => err(40007),
        },
        "/cgi-bin/draft/count" => json!({ "total_count": w.drafts.len() }),
        "/cgi-bin/draft/batchget" => {
            let items: Vec<Value> = w
                .drafts
                .iter()
                .map(
                    |(id, (a, t))| json!({ "media_id": id, "content": { "news_item": a }, "update_time": t }),
                )
                .collect();
            let total = items.len();
            articles_page(items, body, total)
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}

pub(super) fn articles_page(items: Vec<Value>, body: &Value, total: usize) -> Value {
    let offset = body.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(20).min(20) as usize;
    let item: Vec<Value> = items.into_iter().skip(offset).take(count).collect();
    json!({ "total_count": total, "item_count": item.len(), "item": item })
}
