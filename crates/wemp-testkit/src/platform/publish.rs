//! Free publishing of drafts.

use serde_json::{Value, json};

use super::drafts::articles_page;
use super::support::{s, with};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/freepublish/submit" => match w.drafts.remove(&s(body, "media_id")) {
            Some(d) => {
                let publish_id = w.next_id("PUBLISH_");
                let article_id = w.next_id("ARTICLE_");
                w.published.insert(article_id.clone(), d);
                w.publish_jobs.insert(publish_id.clone(), article_id);
                with(ok(), json!({ "publish_id": publish_id, "msg_data_id": w.seq.to_string() }))
            }
            None => err(40007),
        },
        "/cgi-bin/freepublish/get" => {
            let pid = s(body, "publish_id");
            match w.publish_jobs.get(&pid) {
                Some(aid) => {
                    let (status, count) = match w.published.get(aid) {
                        Some((a, _)) => (0, a.len()),
                        None => (5, 0),
                    };
                    let item: Vec<Value> = (1..=count)
                        .map(|i| json!({ "idx": i, "article_url": format!("https://mp.weixin.qq.com/s/{aid}-{i}") }))
                        .collect();
                    json!({
                        "publish_id": pid, "publish_status": status, "article_id": aid,
                        "article_detail": { "count": count, "item": item }, "fail_idx": [],
                    })
                }
                None => err(48002),
            }
        }
        "/cgi-bin/freepublish/delete" => match w.published.remove(&s(body, "article_id")) {
            Some(_) => ok(),
            None => err(53600),
        },
        "/cgi-bin/freepublish/getarticle" => match w.published.get(&s(body, "article_id")) {
            Some((a, _)) => json!({ "news_item": a }),
            None => err(53600),
        },
        "/cgi-bin/freepublish/batchget" => {
            let items: Vec<Value> = w
                .published
                .iter()
                .map(|(id, (a, t))| json!({ "article_id": id, "content": { "news_item": a }, "update_time": t }))
                .collect();
            let total = items.len();
            articles_page(items, body, total)
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}
