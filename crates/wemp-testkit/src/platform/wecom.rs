//! WeCom (企业微信, `qyapi.weixin.qq.com`): `gettoken` for the configured app and
//! `message/send`, recorded for [`super::FakePlatform::wecom_messages`].

use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, Recorded, World, err};

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    let answer = match (method.as_str(), r.path.as_str()) {
        ("GET", "/cgi-bin/gettoken") => gettoken(w, r),
        ("POST", "/cgi-bin/message/send") => send(w, r),
        _ => return None,
    };
    Some(Answer::Json(answer))
}

/// The app's token: the same one while it is valid (as WeCom does), a new one after.
fn gettoken(w: &mut World, r: &Recorded) -> Value {
    let q = |k: &str| r.query.get(k).cloned().unwrap_or_default();
    if q("corpid") != w.cfg().corpid {
        return err(40013);
    }
    if q("corpsecret") != w.cfg().corp_secret {
        return err(40001);
    }
    if let Some(cur) = w.wecom_current.clone()
        && w.check_token(Some(&cur)) == 0
    {
        let left = w.tokens[&cur].expires_at - w.now_ms;
        return json!({ "errcode": 0, "errmsg": "ok", "access_token": cur, "expires_in": left / 1000 });
    }
    let value = w.issue_token();
    w.wecom_current = Some(value.clone());
    json!({ "errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": w.lifetime_ms() / 1000 })
}

/// `message/send`: needs a recipient, the configured AgentID and a body for its `msgtype`.
fn send(w: &mut World, r: &Recorded) -> Value {
    let code = w.check_token(r.access_token());
    if code != 0 {
        return err(code);
    }
    let Some(body) = r.json() else { return err(47001) };
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    if text("touser").is_empty() && text("toparty").is_empty() && text("totag").is_empty() {
        return err(40003);
    }
    let agentid = match &body["agentid"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    if agentid != w.cfg().agentid {
        // WeCom's "invalid agentid".
        return json!({ "errcode": 40056, "errmsg": "invalid agentid rid: fake-40056" });
    }
    let msgtype = text("msgtype");
    if !matches!(
        msgtype.as_str(),
        "text" | "markdown" | "textcard" | "image" | "news" | "file" | "voice" | "video"
    ) || body.get(&msgtype).is_none()
    {
        return err(40008);
    }
    w.wecom_sent.push(body.clone());
    let msgid = w.next_id("WECOM_MSG_");
    json!({ "errcode": 0, "errmsg": "ok", "invaliduser": "", "invalidparty": "", "invalidtag": "", "msgid": msgid })
}
