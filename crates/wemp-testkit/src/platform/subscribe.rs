//! Subscription notifications (订阅通知) on the fake platform.

use serde_json::{Value, json};

use super::support::{s, with};
use super::{Answer, Recorded, World, err, ok};

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, _r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/subscribe/bizsend" => {
            if s(body, "template_id").is_empty() || body.get("data").is_none() {
                err(47003)
            } else if s(body, "touser").is_empty() {
                err(40003)
            } else {
                w.sent.push(body.clone());
                ok()
            }
        }
        "/wxaapi/newtmpl/gettemplate" => {
            let data: Vec<Value> = w
                .templates
                .values()
                .map(|t| json!({ "priTmplId": t["template_id"], "title": t["title"], "content": t["content"], "example": "", "type": 2 }))
                .collect();
            with(ok(), json!({ "data": data }))
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}
