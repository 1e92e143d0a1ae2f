//! WeCom (企业微信, `qyapi.weixin.qq.com`): one corp with one or more apps
//! ([`PlatformConfig::agentid`](super::PlatformConfig::agentid) and those added with
//! [`FakePlatform::add_wecom_app`](super::FakePlatform::add_wecom_app)); `gettoken` gives each
//! app its own token (the app is the one whose Secret is `corpsecret`, as on WeCom), and
//! `message/send` accepts a token only for its own app's `agentid` (another app's is
//! `301002`, as on WeCom); what was sent is recorded for
//! [`FakePlatform::wecom_messages`](super::FakePlatform::wecom_messages).

use std::collections::{BTreeMap, HashMap};

use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, Recorded, World, err};

/// The corp's apps beyond the configured one, their tokens and what they sent.
#[derive(Default)]
pub(crate) struct Corp {
    /// AgentID → Secret, for apps added after start.
    added: BTreeMap<String, String>,
    /// AgentID → its current token.
    current: HashMap<String, String>,
    /// Token → the AgentID it was issued to.
    owner: HashMap<String, String>,
    /// Every accepted `message/send` body.
    pub(crate) sent: Vec<Value>,
}

impl World {
    /// The AgentID of the app whose Secret is `secret`.
    fn wecom_app_of_secret(&self, secret: &str) -> Option<String> {
        let cfg = self.cfg();
        if secret == cfg.corp_secret {
            return Some(cfg.agentid.clone());
        }
        self.wecom.added.iter().find(|(_, s)| s.as_str() == secret).map(|(agent, _)| agent.clone())
    }

    /// Whether `agentid` is an app of the corp.
    fn wecom_app_exists(&self, agentid: &str) -> bool {
        agentid == self.cfg().agentid || self.wecom.added.contains_key(agentid)
    }

    /// Adds (or replaces) an app of the corp.
    pub(crate) fn add_wecom_app(&mut self, agentid: String, secret: String) {
        self.wecom.added.insert(agentid, secret);
    }

    /// The AgentID a WeCom token was issued to.
    pub(crate) fn wecom_token_app(&self, token: &str) -> Option<String> {
        self.wecom.owner.get(token).cloned()
    }
}

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    let answer = match (method.as_str(), r.path.as_str()) {
        ("GET", "/cgi-bin/gettoken") => gettoken(w, r),
        ("POST", "/cgi-bin/message/send") => send(w, r),
        _ => return None,
    };
    Some(Answer::Json(answer))
}

/// The app's token: the same one while it is valid (as WeCom does), a new one after. Each
/// app of the corp has its own.
fn gettoken(w: &mut World, r: &Recorded) -> Value {
    let q = |k: &str| r.query.get(k).cloned().unwrap_or_default();
    if q("corpid") != w.cfg().corpid {
        return err(40013);
    }
    let Some(agent) = w.wecom_app_of_secret(&q("corpsecret")) else {
        return err(40001);
    };
    if let Some(cur) = w.wecom.current.get(&agent).cloned()
        && w.check_token(Some(&cur)) == 0
    {
        let left = w.tokens[&cur].expires_at - w.now_ms;
        return json!({ "errcode": 0, "errmsg": "ok", "access_token": cur, "expires_in": left / 1000 });
    }
    let value = w.issue_token();
    w.wecom.current.insert(agent.clone(), value.clone());
    w.wecom.owner.insert(value.clone(), agent);
    json!({ "errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": w.lifetime_ms() / 1000 })
}

/// `message/send`: needs a WeCom app's token, a recipient, that app's AgentID and a body for
/// its `msgtype`.
fn send(w: &mut World, r: &Recorded) -> Value {
    let code = w.check_token(r.access_token());
    if code != 0 {
        return err(code);
    }
    // Only `gettoken` issues WeCom tokens: an Official Account's is not one.
    let Some(owner) = r.access_token().and_then(|t| w.wecom_token_app(t)) else {
        return err(40014);
    };
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
    if !w.wecom_app_exists(&agentid) {
        return err(40056);
    }
    if agentid != owner {
        // A token of another app of the corp.
        return err(301002);
    }
    let msgtype = text("msgtype");
    if !matches!(
        msgtype.as_str(),
        "text" | "markdown" | "textcard" | "image" | "news" | "file" | "voice" | "video"
    ) || body.get(&msgtype).is_none()
    {
        return err(40008);
    }
    w.wecom.sent.push(body.clone());
    let msgid = w.next_id("WECOM_MSG_");
    json!({ "errcode": 0, "errmsg": "ok", "invaliduser": "", "invalidparty": "", "invalidtag": "", "msgid": msgid })
}
