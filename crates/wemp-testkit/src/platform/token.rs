//! The account's access_token: classic `cgi-bin/token` and `stable_token`.

use serde_json::{Value, json};

use super::support::{q, s, secs};
use super::{Answer, Recorded, World, err};

/// The token endpoints (called without a token); `None` for any other path.
pub(super) fn dispatch(w: &mut World, r: &Recorded, body: &Value) -> Option<Answer> {
    match r.path.as_str() {
        "/cgi-bin/token" => Some(Answer::Json(classic_token(w, r))),
        "/cgi-bin/stable_token" => Some(Answer::Json(stable_token(w, body))),
        _ => None,
    }
}

fn classic_token(w: &mut World, r: &Recorded) -> Value {
    if q(r, "grant_type") != "client_credential" {
        return err(40002);
    }
    if q(r, "appid") != w.cfg().appid {
        return err(40013);
    }
    if q(r, "secret") != w.cfg().secret {
        return err(40125);
    }
    let value = w.issue_token();
    if let Some(prev) = w.classic_current.replace(value.clone()) {
        w.retire(&prev);
    }
    json!({ "access_token": value, "expires_in": secs(w.lifetime_ms()) })
}

fn stable_token(w: &mut World, body: &Value) -> Value {
    if s(body, "grant_type") != "client_credential" {
        return err(40002);
    }
    if s(body, "appid") != w.cfg().appid {
        return err(40013);
    }
    if s(body, "secret") != w.cfg().secret {
        return err(40125);
    }
    let force = body.get("force_refresh").and_then(Value::as_bool).unwrap_or(false);
    if !force
        && let Some(cur) = w.stable_current.clone()
        && w.check_token(Some(&cur)) == 0
    {
        let left = w.tokens[&cur].expires_at - w.now_ms;
        return json!({ "access_token": cur, "expires_in": secs(left) });
    }
    let value = w.issue_token();
    if let Some(prev) = w.stable_current.replace(value.clone()) {
        w.retire(&prev);
    }
    json!({ "access_token": value, "expires_in": secs(w.lifetime_ms()) })
}
