//! Mass sending (群发) on the fake platform: sends to a tag, everyone or a list of users,
//! previews, deletion, status and speed, and the uploads only mass messages take:
//! `uploadvideo` turns a temporary video upload into the id `mpvideo` names (any other id
//! is refused with 40007), `uploadnews` keeps 1–8 articles (45008 beyond, 40007 for an
//! unknown cover) under the id `mpnews` names besides a draft's. A send repeating an
//! earlier job's `clientmsgid` is refused with 45065 and that job's `msg_id` (45067 for one
//! over 64 bytes). Sends of articles are also noted by `news`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::support::{s, secs, with};
use super::{Answer, Recorded, World, err, ok};

/// What `uploadvideo` and `uploadnews` keep, by the media id they return.
#[derive(Debug, Default)]
pub(super) struct Uploads {
    /// `{media_id, title, description}` of the video upload each names.
    videos: BTreeMap<String, Value>,
    /// The articles.
    pub(super) news: BTreeMap<String, Vec<Value>>,
}

/// The errcode for a mass message whose video or articles the platform does not know.
fn content_error(w: &World, body: &Value) -> Option<i64> {
    let id = |kind: &str| s(&body[kind], "media_id");
    match s(body, "msgtype").as_str() {
        "mpvideo" if !w.mass_uploads.videos.contains_key(&id("mpvideo")) => Some(40007),
        "mpnews"
            if !w.drafts.contains_key(&id("mpnews")) && !w.mass_uploads.news.contains_key(&id("mpnews")) =>
        {
            Some(40007)
        }
        _ => None,
    }
}

/// `uploadvideo`: a temporary video upload with a title and description.
fn upload_video(w: &mut World, body: &Value) -> Value {
    let video = s(body, "media_id");
    match w.media.get(&video) {
        Some(m) if m.kind == "video" && !m.permanent => {}
        _ => return err(40007),
    }
    let id = w.next_id("MASS_VIDEO_");
    let kept = json!({ "media_id": video, "title": s(body, "title"), "description": s(body, "description") });
    w.mass_uploads.videos.insert(id.clone(), kept);
    json!({ "type": "video", "media_id": id, "created_at": secs(w.now_ms) })
}

/// `uploadnews`: 1–8 articles, each with a title, content and a known cover.
fn upload_news(w: &mut World, body: &Value) -> Value {
    let Some(articles) = body.get("articles").and_then(Value::as_array) else { return err(47001) };
    if articles.is_empty() || articles.len() > 8 {
        return err(45008);
    }
    for a in articles {
        if s(a, "title").is_empty() || s(a, "content").is_empty() {
            return err(47001);
        }
        if !w.media.contains_key(&s(a, "thumb_media_id")) {
            return err(40007);
        }
    }
    let id = w.next_id("MASS_NEWS_");
    w.mass_uploads.news.insert(id.clone(), articles.clone());
    json!({ "type": "news", "media_id": id, "created_at": secs(w.now_ms) })
}

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, _r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/mass/sendall" | "/cgi-bin/message/mass/send" => {
            let msgtype = s(body, "msgtype");
            let target_ok = if path.ends_with("sendall") {
                body.get("filter").is_some()
            } else {
                body["touser"].as_array().is_some_and(|a| a.len() >= 2)
            };
            if !target_ok {
                err(40130)
            } else if msgtype.is_empty() || body.get(&msgtype).is_none() {
                err(40008)
            } else if let Some(code) = content_error(w, body) {
                err(code)
            } else if s(body, "clientmsgid").len() > 64 {
                err(45067)
            } else if let Some(earlier) = (!s(body, "clientmsgid").is_empty())
                .then(|| w.mass.iter().find(|(_, sent)| sent["clientmsgid"] == body["clientmsgid"]))
                .flatten()
            {
                // A second send with one clientmsgid: refused, naming the first job.
                with(err(45065), json!({ "msg_id": earlier.0 }))
            } else {
                w.seq += 1;
                let id = w.seq as i64;
                w.mass.insert(id, body.clone());
                w.sent.push(body.clone());
                with(ok(), json!({ "msg_id": id, "msg_data_id": id * 10 }))
            }
        }
        "/cgi-bin/message/mass/preview" => {
            let msgtype = s(body, "msgtype");
            if s(body, "touser").is_empty() && s(body, "towxname").is_empty() {
                err(40003)
            } else if msgtype.is_empty() || body.get(&msgtype).is_none() {
                err(40008)
            } else if let Some(code) = content_error(w, body) {
                err(code)
            } else {
                w.sent.push(body.clone());
                ok()
            }
        }
        "/cgi-bin/media/uploadvideo" => upload_video(w, body),
        "/cgi-bin/media/uploadnews" => upload_news(w, body),
        "/cgi-bin/message/mass/delete" => match body["msg_id"].as_i64().and_then(|id| w.mass.remove(&id)) {
            Some(_) => ok(),
            None => err(40007),
        },
        "/cgi-bin/message/mass/get" => match body["msg_id"].as_i64() {
            Some(id) if w.mass.contains_key(&id) => json!({ "msg_id": id, "msg_status": "SEND_SUCCESS" }),
            _ => err(40007),
        },
        "/cgi-bin/message/mass/speed/get" => {
            let speed = w.mass_speed;
            let real = [80, 60, 45, 30, 10][speed.clamp(0, 4) as usize];
            json!({ "speed": speed, "realspeed": real })
        }
        "/cgi-bin/message/mass/speed/set" => match body["speed"].as_i64() {
            Some(sp @ 0..=4) => {
                w.mass_speed = sp;
                ok()
            }
            _ => err(47001),
        },
        _ => return None,
    };
    Some(Answer::Json(v))
}
