//! Customer service (客服) on the fake platform: customer-service messages (with the
//! 48-hour window and the per-user message limit), "typing…", agent accounts (avatars,
//! worker invitations that expire after 7 days unless
//! [`FakePlatform::accept_kf_invitation`] accepts them), sessions, and the chat records
//! (`msgrecord/getmsglist`) of the messages sent: each delivered customer-service message is
//! one record (opercode 2002, the agent it was sent as), numbered from 1.

use serde_json::{Value, json};

use super::support::{q, s, secs, with};
use super::{Answer, FakePlatform, Recorded, World, err, ok};

/// What the customer-service endpoints keep besides the accounts and sessions.
#[derive(Debug, Default)]
pub(super) struct Desk {
    /// Sent messages as chat records: msgid is the index + 1.
    records: Vec<Value>,
    /// Avatars uploaded, to number their URLs.
    avatars: u64,
}

/// How long a worker invitation waits for an answer.
const INVITE_SECS: i64 = 7 * 24 * 3600;
/// The longest range of one chat-record query, and the largest page.
const RECORDS_RANGE_SECS: i64 = 24 * 3600;
const RECORDS_MAX: u64 = 10_000;

impl FakePlatform {
    /// The invited worker of `kf_account` accepts (as they would in WeChat): the account's
    /// `kf_wx` becomes the invited WeChat id. False when no invitation is waiting.
    pub fn accept_kf_invitation(&self, kf_account: &str) -> bool {
        let mut w = self.world();
        let now = secs(w.now_ms);
        let Some(k) = w.kf.get_mut(kf_account) else { return false };
        if invite_status(k, now) != Some("waiting") {
            return false;
        }
        k["kf_wx"] = k["invite_wx"].clone();
        for key in ["invite_wx", "invite_expire_time", "invite_status"] {
            k.as_object_mut().map(|o| o.remove(key));
        }
        true
    }
}

/// The state of an account's invitation at `now`: `waiting` until it expires.
fn invite_status(k: &Value, now: i64) -> Option<&'static str> {
    k.get("invite_status")?;
    let expires = k["invite_expire_time"].as_i64().unwrap_or_default();
    Some(if now < expires { "waiting" } else { "expired" })
}

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/custom/send" => send_message(w, body),
        "/cgi-bin/message/custom/typing" => match s(body, "command").as_str() {
            "Typing" | "CancelTyping" if !s(body, "touser").is_empty() => ok(),
            _ => err(47001),
        },
        "/cgi-bin/customservice/getkflist" => {
            let now = secs(w.now_ms);
            let list: Vec<Value> =
                w.kf.values()
                    .map(|k| match invite_status(k, now) {
                        Some(status) => with(k.clone(), json!({ "invite_status": status })),
                        None => k.clone(),
                    })
                    .collect();
            json!({ "kf_list": list })
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
        "/customservice/kfaccount/uploadheadimg" => upload_avatar(w, r),
        "/customservice/kfaccount/inviteworker" => invite_worker(w, body),
        "/customservice/msgrecord/getmsglist" => records(w, body),
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
    let sent = w.cs_sent.entry(to.clone()).or_default();
    if *sent >= limit {
        return err(45047);
    }
    *sent += 1;
    // Chat records show text as sent and other kinds as `[image]`, `[voice]`, ….
    let text = match msgtype.as_str() {
        "text" => s(&body["text"], "content"),
        other => format!("[{other}]"),
    };
    let worker = s(&body["customservice"], "kf_account");
    let record =
        json!({ "openid": to, "opercode": 2002, "text": text, "time": secs(w.now_ms), "worker": worker });
    w.kf_desk.records.push(record);
    w.sent.push(body.clone());
    ok()
}

/// `uploadheadimg`: a JPEG `media` part for a known account.
fn upload_avatar(w: &mut World, r: &Recorded) -> Value {
    let account = q(r, "kf_account");
    if !w.kf.contains_key(&account) {
        return err(65401);
    }
    let Some(file) = r.parts.iter().find(|p| p.name == "media") else { return err(41005) };
    // A JPEG starts with the SOI marker FF D8 FF.
    if !file.data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return err(40005);
    }
    w.kf_desk.avatars += 1;
    let url = format!("http://wx.qlogo.cn/fake/kf/{}/0", w.kf_desk.avatars);
    if let Some(k) = w.kf.get_mut(&account) {
        k["kf_headimgurl"] = json!(url);
    }
    ok()
}

/// `inviteworker`: one waiting invitation per account, none once a worker is bound.
fn invite_worker(w: &mut World, body: &Value) -> Value {
    let (account, wx) = (s(body, "kf_account"), s(body, "invite_wx"));
    let now = secs(w.now_ms);
    let Some(k) = w.kf.get_mut(&account) else { return err(65401) };
    if wx.is_empty() {
        return err(65409);
    }
    if k.get("kf_wx").and_then(Value::as_str) == Some(wx.as_str()) {
        return err(65407);
    }
    if k.get("kf_wx").is_some() {
        return err(65412);
    }
    if invite_status(k, now) == Some("waiting") {
        return err(65411);
    }
    k["invite_wx"] = json!(wx);
    k["invite_expire_time"] = json!(now + INVITE_SECS);
    k["invite_status"] = json!("waiting");
    ok()
}

/// `getmsglist`: the records in [starttime, endtime] from `msgid` on, `number` at most.
fn records(w: &World, body: &Value) -> Value {
    let int = |key: &str| body.get(key).and_then(Value::as_i64);
    let (Some(start), Some(end), Some(msgid), Some(number)) =
        (int("starttime"), int("endtime"), int("msgid"), int("number"))
    else {
        return err(65416);
    };
    if end < start || msgid < 1 || !(1..=RECORDS_MAX as i64).contains(&number) {
        return err(65416);
    }
    if end - start > RECORDS_RANGE_SECS {
        return err(65417);
    }
    let page: Vec<(usize, &Value)> = w
        .kf_desk
        .records
        .iter()
        .enumerate()
        .skip(usize::try_from(msgid - 1).unwrap_or(usize::MAX))
        .filter(|(_, r)| (start..=end).contains(&r["time"].as_i64().unwrap_or_default()))
        .take(usize::try_from(number).unwrap_or_default())
        .collect();
    // The next page starts after the last record returned (or where this one started).
    let next = page.last().map_or(msgid, |(i, _)| *i as i64 + 2);
    let list: Vec<Value> = page.into_iter().map(|(_, r)| r.clone()).collect();
    with(ok(), json!({ "recordlist": list, "number": list.len(), "msgid": next }))
}
