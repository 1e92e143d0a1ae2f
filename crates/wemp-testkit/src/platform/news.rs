//! Articles sent by mass sending (`mpnews`), as the comment and data cube endpoints see
//! them: the platform notes every successful mass send of articles and keeps its
//! `msg_data_id`, the articles (titles from the draft the `media_id` names), when it was
//! sent, how many users it reached, and each article's comments.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Answer, Recorded, World};

/// A comment a user left on a mass-sent article, as the fake platform holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeComment {
    /// `user_comment_id`.
    pub id: i64,
    /// The commenter.
    pub openid: String,
    /// The text.
    pub content: String,
    /// When it was written, Unix seconds of the platform clock.
    pub create_time: i64,
    /// Whether the account elected it.
    pub elected: bool,
    /// The account's reply: text and Unix seconds.
    pub reply: Option<(String, i64)>,
}

/// One article of a mass-sent message.
#[derive(Clone, Debug, Default)]
pub(super) struct NewsArticle {
    pub(super) title: String,
    pub(super) comments_open: bool,
    pub(super) deleted: bool,
    pub(super) comments: BTreeMap<i64, FakeComment>,
}

/// A mass-sent message of articles.
#[derive(Clone, Debug, Default)]
pub(super) struct SentNews {
    pub(super) msg_id: i64,
    pub(super) at_ms: i64,
    pub(super) target_user: u64,
    pub(super) articles: Vec<NewsArticle>,
}

/// Every mass-sent message of articles, by `msg_data_id`.
#[derive(Debug, Default)]
pub(super) struct Newsroom {
    pub(super) sent: BTreeMap<i64, SentNews>,
    pub(super) next_comment_id: i64,
}

impl Newsroom {
    /// The live (not deleted) article `index` (0-based) of `msg_data_id`.
    pub(super) fn article_mut(&mut self, msg_data_id: i64, index: u32) -> Option<&mut NewsArticle> {
        let news = self.sent.get_mut(&msg_data_id)?;
        news.articles.get_mut(usize::try_from(index).ok()?).filter(|a| !a.deleted)
    }

    /// The title of article `index` of `msg_data_id`, if the platform sent it.
    pub(super) fn title(&self, msg_data_id: i64, index: u32) -> Option<&str> {
        let news = self.sent.get(&msg_data_id)?;
        Some(news.articles.get(usize::try_from(index).ok()?)?.title.as_str())
    }
}

/// Notes mass sends of articles and mass deletions after the API answered them.
pub(super) fn observe(w: &mut World, r: &Recorded, answer: &Answer) {
    let Answer::Json(v) = answer else { return };
    if v.get("errcode").and_then(Value::as_i64).unwrap_or(0) != 0 {
        return;
    }
    let Some(body) = r.json() else { return };
    match r.path.as_str() {
        "/cgi-bin/message/mass/sendall" | "/cgi-bin/message/mass/send" => {
            let (Some(msg_data_id), Some(msg_id)) =
                (v.get("msg_data_id").and_then(Value::as_i64), v.get("msg_id").and_then(Value::as_i64))
            else {
                return;
            };
            if body.get("msgtype").and_then(Value::as_str) != Some("mpnews") {
                return;
            }
            let media_id = body["mpnews"]["media_id"].as_str().unwrap_or_default();
            // The articles of the draft or `uploadnews` the media id names; else a single article.
            let uploaded = w.mass_uploads.news.get(media_id);
            let articles = match w.drafts.get(media_id).map(|(list, _)| list).or(uploaded) {
                Some(list) => list
                    .iter()
                    .map(|a| NewsArticle {
                        title: a["title"].as_str().unwrap_or_default().to_owned(),
                        comments_open: a["need_open_comment"].as_u64() == Some(1),
                        ..NewsArticle::default()
                    })
                    .collect(),
                None => vec![NewsArticle::default()],
            };
            let target_user = if r.path.ends_with("sendall") {
                let filter = &body["filter"];
                let tag = filter["tag_id"].as_i64();
                let to_all = filter["is_to_all"].as_bool().unwrap_or(false);
                w.users
                    .values()
                    .filter(|u| u.subscribe && (to_all || tag.is_some_and(|t| u.tags.contains(&t))))
                    .count()
            } else {
                body["touser"].as_array().map_or(0, Vec::len)
            };
            let news = SentNews { msg_id, at_ms: r.at_ms, target_user: target_user as u64, articles };
            w.news.sent.insert(msg_data_id, news);
        }
        "/cgi-bin/message/mass/delete" => {
            let Some(msg_id) = body["msg_id"].as_i64() else { return };
            let idx = body["article_idx"].as_u64().unwrap_or(0);
            for news in w.news.sent.values_mut().filter(|n| n.msg_id == msg_id) {
                for (i, a) in news.articles.iter_mut().enumerate() {
                    // article_idx counts from 1; 0 deletes every article.
                    if idx == 0 || idx == i as u64 + 1 {
                        a.deleted = true;
                    }
                }
            }
        }
        _ => {}
    }
}
