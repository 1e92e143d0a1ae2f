//! Replies as the page renders them.

use serde::Serialize;
use wemp_proto::Reply;

/// A passive reply in the shape the page reads (`type` plus fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplyView {
    /// No reply.
    None,
    /// A text bubble.
    Text {
        /// The text.
        content: String,
    },
    /// An image by media id.
    Image {
        /// Media id.
        media_id: String,
    },
    /// A voice message by media id.
    Voice {
        /// Media id.
        media_id: String,
    },
    /// A video by media id.
    Video {
        /// Media id.
        media_id: String,
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
    },
    /// Music.
    Music {
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
        /// Music URL.
        music_url: Option<String>,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// News cards.
    News {
        /// The articles.
        articles: Vec<ArticleView>,
    },
    /// Handed to customer service.
    Transfer {
        /// The agent, if one was named.
        kf_account: Option<String>,
    },
    /// A reply type this console does not know.
    Other {
        /// Its `MsgType`.
        msg_type: String,
    },
}

/// One news card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArticleView {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Picture URL.
    pub pic_url: String,
    /// Where a tap leads.
    pub url: String,
}

impl From<&Reply> for ReplyView {
    fn from(r: &Reply) -> Self {
        match r {
            Reply::None => Self::None,
            Reply::Text { content } => Self::Text { content: content.clone() },
            Reply::Image { media_id } => Self::Image { media_id: media_id.clone() },
            Reply::Voice { media_id } => Self::Voice { media_id: media_id.clone() },
            Reply::Video { media_id, title, description } => Self::Video {
                media_id: media_id.clone(),
                title: title.clone(),
                description: description.clone(),
            },
            Reply::Music(m) => Self::Music {
                title: m.title.clone(),
                description: m.description.clone(),
                music_url: m.music_url.clone(),
                thumb_media_id: m.thumb_media_id.clone(),
            },
            Reply::News(articles) => Self::News {
                articles: articles
                    .iter()
                    .map(|a| ArticleView {
                        title: a.title.clone(),
                        description: a.description.clone(),
                        pic_url: a.pic_url.clone(),
                        url: a.url.clone(),
                    })
                    .collect(),
            },
            Reply::TransferCustomerService { kf_account } => {
                Self::Transfer { kf_account: kf_account.clone() }
            }
            other => Self::Other { msg_type: other.msg_type().unwrap_or_default().to_owned() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wemp_proto::Article;

    #[test]
    fn news_serializes_with_its_articles() {
        let mut a = Article::default();
        a.title = "T".into();
        a.url = "https://example.com/".into();
        let v = serde_json::to_value(ReplyView::from(&Reply::news(vec![a]))).unwrap();
        assert_eq!(v["type"], "news");
        assert_eq!(v["articles"][0]["title"], "T");
        let v = serde_json::to_value(ReplyView::from(&Reply::transfer_to("kf@x"))).unwrap();
        assert_eq!(v, serde_json::json!({"type": "transfer", "kf_account": "kf@x"}));
    }
}
