//! Temporary media (`media/upload`, `media/get`, `media/get/jssdk`) and `uploadimg`; the
//! uploads of permanent material share the store.
//!
//! A voice a page recorded and uploaded with the JS-SDK (`wx.uploadVoice`, set with
//! [`FakePlatform::page_voice`]) is temporary media whose `media/get` is the 8 kHz amr and
//! whose `media/get/jssdk` is the 16 kHz speex (`Content-Type: voice/speex`); any other id is
//! 40007 there, as WeChat answers.

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::{Value, json};

use super::StoredMedia;
use super::support::{q, s, secs};
use super::{Answer, FakePlatform, Recorded, World, err};

/// The speex recordings of JS-SDK voices, by media id (`serverId`).
#[derive(Debug, Default)]
pub(super) struct HdVoices(HashMap<String, Bytes>);

impl FakePlatform {
    /// A voice a page recorded and uploaded with `wx.uploadVoice`: `amr` is what `media/get`
    /// serves, `speex` what `media/get/jssdk` serves. Returns its `serverId` (a media id).
    pub fn page_voice(&self, amr: impl Into<Bytes>, speex: impl Into<Bytes>) -> String {
        let mut w = self.world();
        let id = w.next_id("MEDIA_");
        let amr = StoredMedia {
            kind: "voice".into(),
            file_name: format!("{id}.amr"),
            content_type: "audio/amr".into(),
            data: amr.into(),
            permanent: false,
            description: None,
        };
        w.media.insert(id.clone(), amr);
        w.hd_voices.0.insert(id.clone(), speex.into());
        id
    }
}

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, _: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/media/upload" => match store_upload(w, r, false) {
            Ok((id, kind)) => {
                let key = if kind == "thumb" { "thumb_media_id" } else { "media_id" };
                json!({ "type": kind, key: id, "created_at": secs(w.now_ms) })
            }
            Err(e) => e,
        },
        "/cgi-bin/media/uploadimg" => match store_upload(w, r, true) {
            Ok((id, _)) => json!({ "url": format!("http://mmbiz.qpic.cn/fake/{id}/0") }),
            Err(e) => e,
        },
        "/cgi-bin/media/get" => {
            let id = q(r, "media_id");
            return Some(match w.media.get(&id) {
                Some(m) if !m.permanent => media_answer(m, &id),
                _ => Answer::Json(err(40007)),
            });
        }
        "/cgi-bin/media/get/jssdk" => {
            return Some(match w.hd_voices.0.get(&q(r, "media_id")) {
                Some(speex) => Answer::Binary { content_type: "voice/speex".into(), data: speex.clone() },
                None => Answer::Json(err(40007)),
            });
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}

pub(super) fn store_upload(w: &mut World, r: &Recorded, permanent: bool) -> Result<(String, String), Value> {
    let Some(file) = r.parts.iter().find(|p| p.name == "media") else { return Err(err(41005)) };
    let kind = match q(r, "type").as_str() {
        "" if r.path.ends_with("uploadimg") => "image".to_owned(),
        k @ ("image" | "voice" | "video" | "thumb") => k.to_owned(),
        _ => return Err(err(40004)),
    };
    let description = r
        .parts
        .iter()
        .find(|p| p.name == "description")
        .and_then(|p| serde_json::from_slice::<Value>(&p.data).ok());
    if permanent && kind == "video" && description.is_none() {
        return Err(err(40005));
    }
    let id = w.next_id("MEDIA_");
    w.media.insert(
        id.clone(),
        StoredMedia {
            kind: kind.clone(),
            file_name: file.file_name.clone().unwrap_or_default(),
            content_type: file.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
            data: file.data.clone(),
            permanent,
            description,
        },
    );
    Ok((id, kind))
}

pub(super) fn media_answer(m: &StoredMedia, id: &str) -> Answer {
    if m.kind == "video" {
        let d = m.description.clone().unwrap_or(Value::Null);
        return Answer::Json(json!({
            "video_url": format!("http://fake.video/{id}"),
            "title": s(&d, "title"), "description": s(&d, "introduction"),
            "down_url": format!("http://fake.video/{id}"),
        }));
    }
    Answer::Binary { content_type: m.content_type.clone(), data: m.data.clone() }
}
