//! 图文留言管理 (`/cgi-bin/comment/…`) on the fake platform.
//!
//! Comments live on the articles of mass-sent messages (see `news`): an article is named by
//! the `msg_data_id` its mass send returned and its 0-based `index`. Users comment through
//! [`FakePlatform::add_user_comment`] while comments are open; the API opens and closes
//! them, lists them (`count` 1–49, else 88010), elects, deletes and answers them, with the
//! errcodes of the official pages (88001 unknown article, 88005 already replied, 88007
//! empty reply, 88008 unknown comment). `total` is the number of comments matching `type`,
//! as documented (developers report the real platform sends the page size there instead).

use axum::http::Method;
use serde_json::{Value, json};

use super::news::FakeComment;
use super::support::{fail, guard};
use super::{Answer, FakePlatform, Recorded, World, ok};

const OPS: [&str; 8] =
    ["open", "close", "list", "markelect", "unmarkelect", "delete", "reply/add", "reply/delete"];

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    let op = r.path.strip_prefix("/cgi-bin/comment/").filter(|op| OPS.contains(op))?;
    let answer = match guard(w, method, r) {
        Ok(body) => handle(w, op, &body),
        Err(answer) => answer,
    };
    Some(Answer::Json(answer))
}

/// A number, or a string of digits (WxJava sends `msg_data_id` as a string).
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn handle(w: &mut World, op: &str, body: &Value) -> Value {
    let Some(msg_data_id) = int(&body["msg_data_id"]) else { return fail(47001) };
    let index = match body.get("index") {
        None | Some(Value::Null) => 0,
        Some(i) => match int(i).and_then(|i| u32::try_from(i).ok()) {
            Some(i) => i,
            None => return fail(47001),
        },
    };
    let now = w.now_ms / 1000;
    let Some(article) = w.news.article_mut(msg_data_id, index) else { return fail(88001) };
    match op {
        "open" | "close" => {
            article.comments_open = op == "open";
            return ok();
        }
        "list" => return list(article.comments.values(), body),
        _ => {}
    }
    let Some(id) = int(&body["user_comment_id"]) else { return fail(47001) };
    if op == "delete" {
        return if article.comments.remove(&id).is_some() { ok() } else { fail(88008) };
    }
    let Some(comment) = article.comments.get_mut(&id) else { return fail(88008) };
    match op {
        "markelect" | "unmarkelect" => comment.elected = op == "markelect",
        "reply/add" => {
            let content = body["content"].as_str().unwrap_or_default();
            if content.is_empty() {
                return fail(88007);
            }
            if comment.reply.is_some() {
                return fail(88005);
            }
            comment.reply = Some((content.to_owned(), now));
        }
        // reply/delete: deleting a reply that is not there is not an error.
        _ => comment.reply = None,
    }
    ok()
}

fn list<'a>(comments: impl Iterator<Item = &'a FakeComment>, body: &Value) -> Value {
    let (Some(begin), Some(count)) = (body["begin"].as_u64(), body["count"].as_u64()) else {
        return fail(47001);
    };
    if count == 0 || count >= 50 {
        return fail(88010);
    }
    let Some(kind @ 0..=2) = body["type"].as_u64() else { return fail(47001) };
    let matching: Vec<&FakeComment> = comments
        .filter(|c| match kind {
            1 => !c.elected,
            2 => c.elected,
            _ => true,
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(usize::try_from(begin).unwrap_or(usize::MAX))
        .take(count as usize)
        .map(|c| {
            let mut v = json!({
                "user_comment_id": c.id, "openid": c.openid, "create_time": c.create_time,
                "content": c.content, "comment_type": u8::from(c.elected),
            });
            if let Some((content, at)) = &c.reply {
                v["reply"] = json!({ "content": content, "create_time": at });
            }
            v
        })
        .collect();
    json!({ "errcode": 0, "errmsg": "ok", "total": matching.len(), "comment": page })
}

impl FakePlatform {
    /// User `openid` comments `content` on article `index` (0-based) of the mass message
    /// `msg_data_id`; returns the `user_comment_id`, or `None` when the platform sent no
    /// such article or its comments are closed.
    pub fn add_user_comment(&self, msg_data_id: i64, index: u32, openid: &str, content: &str) -> Option<i64> {
        let mut w = self.world();
        let now = w.now_ms / 1000;
        w.news.next_comment_id += 1;
        let id = w.news.next_comment_id;
        let article = w.news.article_mut(msg_data_id, index).filter(|a| a.comments_open)?;
        let comment = FakeComment {
            id,
            openid: openid.to_owned(),
            content: content.to_owned(),
            create_time: now,
            elected: false,
            reply: None,
        };
        article.comments.insert(id, comment);
        Some(id)
    }

    /// The comments on an article, oldest first (empty when there is no such article).
    pub fn comments(&self, msg_data_id: i64, index: u32) -> Vec<FakeComment> {
        let mut w = self.world();
        w.news
            .article_mut(msg_data_id, index)
            .map(|a| a.comments.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether comments on an article are open (`None` when there is no such article).
    pub fn comments_open(&self, msg_data_id: i64, index: u32) -> Option<bool> {
        self.world().news.article_mut(msg_data_id, index).map(|a| a.comments_open)
    }
}
