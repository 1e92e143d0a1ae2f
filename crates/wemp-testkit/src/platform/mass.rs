//! Mass sending (群发) on the fake platform: sends to a tag, everyone or a list of users,
//! previews, deletion, status and speed. Sends of articles are also noted by `news`.

use serde_json::{Value, json};

use super::support::{s, with};
use super::{Answer, Recorded, World, err, ok};

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
            } else {
                w.sent.push(body.clone());
                ok()
            }
        }
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
