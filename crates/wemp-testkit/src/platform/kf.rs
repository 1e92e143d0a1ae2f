//! Customer service (客服) on the fake platform: customer-service messages (with the
//! 48-hour window and the per-user message limit), "typing…", agent accounts and sessions.

use serde_json::{Value, json};

use super::support::{q, s, secs, with};
use super::{Answer, Recorded, World, err, ok};

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/custom/send" => send_message(w, body),
        "/cgi-bin/message/custom/typing" => match s(body, "command").as_str() {
            "Typing" | "CancelTyping" if !s(body, "touser").is_empty() => ok(),
            _ => err(47001),
        },
        "/cgi-bin/customservice/getkflist" => {
            json!({ "kf_list": w.kf.values().cloned().collect::<Vec<_>>() })
        }
        "/cgi-bin/customservice/getonlinekflist" => {
            let online: Vec<Value> = w
                .kf
                .values()
                .map(|k| json!({ "kf_account": k["kf_account"], "kf_id": k["kf_id"], "status": 1, "accepted_case": 0 }))
                .collect();
            json!({ "kf_online_list": online })
        }
        "/customservice/kfaccount/add" => {
            let account = s(body, "kf_account");
            if account.is_empty() || !account.contains('@') {
                err(65400)
            } else if w.kf.contains_key(&account) {
                err(65406)
            } else {
                let kf_id = 1000 + w.kf.len() as i64;
                w.kf.insert(
                    account.clone(),
                    json!({ "kf_account": account, "kf_nick": s(body, "nickname"), "kf_id": kf_id, "kf_headimgurl": "" }),
                );
                ok()
            }
        }
        "/customservice/kfaccount/update" => match w.kf.get_mut(&s(body, "kf_account")) {
            Some(k) => {
                k["kf_nick"] = json!(s(body, "nickname"));
                ok()
            }
            None => err(65401),
        },
        "/customservice/kfaccount/del" => match w.kf.remove(&q(r, "kf_account")) {
            Some(_) => ok(),
            None => err(65401),
        },
        "/customservice/kfsession/create" => {
            let account = s(body, "kf_account");
            if !w.kf.contains_key(&account) {
                err(65401)
            } else {
                let now = secs(w.now_ms);
                w.sessions.insert(s(body, "openid"), (account, now));
                ok()
            }
        }
        "/customservice/kfsession/close" => match w.sessions.remove(&s(body, "openid")) {
            Some(_) => ok(),
            None => err(65416),
        },
        "/customservice/kfsession/getsession" => match w.sessions.get(&q(r, "openid")) {
            Some((kf, t)) => with(ok(), json!({ "kf_account": kf, "createtime": t })),
            None => with(ok(), json!({ "kf_account": "", "createtime": 0 })),
        },
        "/customservice/kfsession/getsessionlist" => {
            let kf = q(r, "kf_account");
            let list: Vec<Value> = w
                .sessions
                .iter()
                .filter(|(_, (k, _))| *k == kf)
                .map(|(openid, (_, t))| json!({ "openid": openid, "createtime": t }))
                .collect();
            json!({ "sessionlist": list })
        }
        "/customservice/kfsession/getwaitcase" => json!({ "count": 0, "waitcaselist": [] }),
        _ => return None,
    };
    Some(Answer::Json(v))
}

/// A customer-service message, within the 48-hour window and the per-user limit.
fn send_message(w: &mut World, body: &Value) -> Value {
    let to = s(body, "touser");
    let msgtype = s(body, "msgtype");
    if to.is_empty() {
        return err(40003);
    }
    if msgtype.is_empty() || body.get(&msgtype).is_none() {
        return err(40008);
    }
    if w.cs_closed.contains(&to) {
        return err(45015);
    }
    let limit = w.cfg().cs_message_limit;
    let sent = w.cs_sent.entry(to).or_default();
    if *sent >= limit {
        return err(45047);
    }
    *sent += 1;
    w.sent.push(body.clone());
    ok()
}
