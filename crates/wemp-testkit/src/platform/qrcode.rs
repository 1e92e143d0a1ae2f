//! QR codes (`qrcode/create`, and the `showqrcode` image of `mp.weixin.qq.com`) and short keys.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::support::{q, s, secs, with};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/qrcode/create" => {
            let action = s(body, "action_name");
            let scene = &body["action_info"]["scene"];
            let valid = match action.as_str() {
                "QR_SCENE" | "QR_LIMIT_SCENE" => scene["scene_id"].as_u64().is_some(),
                "QR_STR_SCENE" | "QR_LIMIT_STR_SCENE" => !s(scene, "scene_str").is_empty(),
                _ => false,
            };
            if !valid {
                err(40053)
            } else {
                let ticket = w.next_id("gQ");
                let temporary = !action.contains("LIMIT");
                let expire =
                    temporary.then(|| body["expire_seconds"].as_u64().unwrap_or(60).clamp(60, 2_592_000));
                w.qrcodes.insert(ticket.clone(), body.clone());
                json!({ "ticket": ticket, "expire_seconds": expire, "url": format!("http://weixin.qq.com/q/{ticket}") })
            }
        }
        "/cgi-bin/shorten/gen" => {
            let long = s(body, "long_data");
            if long.is_empty() || long.len() > 4096 {
                err(47001)
            } else {
                let key = w.next_id("")[..8].to_owned() + &w.seq.to_string();
                let expire = body["expire_seconds"].as_u64().unwrap_or(2_592_000);
                w.short_keys.insert(key.clone(), (long, secs(w.now_ms), expire));
                with(ok(), json!({ "short_key": key }))
            }
        }
        "/cgi-bin/shorten/fetch" => match w.short_keys.get(&s(body, "short_key")) {
            Some((long, t, exp)) => {
                let left = (*t + *exp as i64 - secs(w.now_ms)).max(0);
                with(ok(), json!({ "long_data": long, "create_time": t, "expire_seconds": left }))
            }
            None => err(40007),
        },
        _ => return None,
    };
    Some(Answer::Json(v))
}

/// The image of a ticket (`mp.weixin.qq.com/cgi-bin/showqrcode`, no token); `None` for any
/// other path.
pub(super) fn image(w: &mut World, r: &Recorded) -> Option<Answer> {
    if r.path != "/cgi-bin/showqrcode" {
        return None;
    }
    let ticket = q(r, "ticket");
    if !w.qrcodes.contains_key(&ticket) {
        return Some(Answer::Json(err(40097)));
    }
    let mut data = vec![0xFF, 0xD8, 0xFF, 0xE0];
    data.extend_from_slice(ticket.as_bytes());
    data.extend_from_slice(&[0xFF, 0xD9]);
    Some(Answer::Binary { content_type: "image/jpeg".into(), data: Bytes::from(data) })
}
