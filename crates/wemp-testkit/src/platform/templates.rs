//! Template messages (模板消息) on the fake platform: sending to a template of the account,
//! the account's industries, and its templates.

use serde_json::{Value, json};

use super::support::{s, with};
use super::{Answer, Recorded, World, err, ok};

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, _r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/template/send" => {
            let id = s(body, "template_id");
            if !w.templates.contains_key(&id) {
                err(40037)
            } else if s(body, "touser").is_empty() {
                err(40003)
            } else {
                w.sent.push(body.clone());
                w.seq += 1;
                with(ok(), json!({ "msgid": w.seq }))
            }
        }
        "/cgi-bin/template/api_set_industry" => {
            w.industry = Some((s(body, "industry_id1"), s(body, "industry_id2")));
            ok()
        }
        "/cgi-bin/template/get_industry" => match &w.industry {
            Some((a, b)) => json!({
                "primary_industry": { "first_class": "IT科技", "second_class": format!("industry {a}") },
                "secondary_industry": { "first_class": "IT科技", "second_class": format!("industry {b}") },
            }),
            None => err(46001),
        },
        "/cgi-bin/template/get_all_private_template" => {
            json!({ "template_list": w.templates.values().cloned().collect::<Vec<_>>() })
        }
        "/cgi-bin/template/api_add_template" => {
            let short = s(body, "template_id_short");
            if short.is_empty() {
                err(40037)
            } else {
                let id = w.next_id("TPL_");
                w.templates.insert(
                    id.clone(),
                    json!({
                        "template_id": id, "title": format!("template {short}"),
                        "primary_industry": "IT科技", "deputy_industry": "互联网|电子商务",
                        "content": "{{first.DATA}}\n{{keyword1.DATA}}\n{{remark.DATA}}", "example": "",
                    }),
                );
                with(ok(), json!({ "template_id": id }))
            }
        }
        "/cgi-bin/template/del_private_template" => match w.templates.remove(&s(body, "template_id")) {
            Some(_) => ok(),
            None => err(40037),
        },
        _ => return None,
    };
    Some(Answer::Json(v))
}
