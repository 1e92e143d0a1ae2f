//! Users: information, the follower list, remarks, the blacklist and `changeopenid`.
//!
//! `changeopenid` answers for the account migrations set with
//! [`FakePlatform::add_migration`]: an unknown `from_appid` is 63178 (as WeChat answers when
//! the AppID is not the account migrated from), an `openid_list` that is not 1–100 strings is
//! 40032, and each OpenID gets `{ori_openid, new_openid, err_msg: "ok"}` or, when it did not
//! follow the old account, `{ori_openid, err_msg: "ori_openid error"}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::FakeUser;
use super::support::{q, s};
use super::{Answer, FakePlatform, Recorded, World, err, ok};

/// Account migrations: by the old account's AppID, its followers' OpenIDs under it and
/// under this account.
#[derive(Debug, Default)]
pub(super) struct Migrations(BTreeMap<String, BTreeMap<String, String>>);

impl FakePlatform {
    /// Notes that the user `old_openid` of the account `from_appid` migrated to this account
    /// as `new_openid` (what `changeopenid` answers).
    pub fn add_migration(&self, from_appid: &str, old_openid: &str, new_openid: &str) {
        let mut w = self.world();
        let followers = w.migrations.0.entry(from_appid.to_owned()).or_default();
        followers.insert(old_openid.to_owned(), new_openid.to_owned());
    }
}

fn change_openid(w: &World, body: &Value) -> Value {
    let Some(followers) = w.migrations.0.get(&s(body, "from_appid")) else { return err(63178) };
    let list = body.get("openid_list").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if list.is_empty() || list.len() > 100 || list.iter().any(|o| o.as_str().is_none()) {
        return err(40032);
    }
    let results: Vec<Value> = list
        .iter()
        .filter_map(Value::as_str)
        .map(|old| match followers.get(old) {
            Some(new) => json!({ "ori_openid": old, "new_openid": new, "err_msg": "ok" }),
            None => json!({ "ori_openid": old, "err_msg": "ori_openid error" }),
        })
        .collect();
    json!({ "errcode": 0, "errmsg": "ok", "result_list": results })
}

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Option<Answer> {
    let page_size = w.cfg().user_page_size;
    let v = match path {
        "/cgi-bin/user/info" => match w.users.get(&q(r, "openid")) {
            Some(u) => user_json(u),
            None => err(40003),
        },
        "/cgi-bin/user/info/batchget" => {
            let list = body.get("user_list").and_then(Value::as_array).cloned().unwrap_or_default();
            if list.is_empty() || list.len() > 100 {
                err(40032)
            } else {
                let infos: Result<Vec<Value>, Value> = list
                    .iter()
                    .map(|e| w.users.get(&s(e, "openid")).map(user_json).ok_or_else(|| err(40003)))
                    .collect();
                match infos {
                    Ok(infos) => json!({ "user_info_list": infos }),
                    Err(e) => e,
                }
            }
        }
        "/cgi-bin/user/get" => {
            let ids = w.users.values().filter(|u| u.subscribe).map(|u| u.openid.clone()).collect();
            page(ids, &q(r, "next_openid"), page_size)
        }
        "/cgi-bin/user/info/updateremark" => match w.users.get_mut(&s(body, "openid")) {
            Some(u) => {
                u.remark = s(body, "remark");
                ok()
            }
            None => err(40003),
        },
        "/cgi-bin/tags/members/getblacklist" => {
            page(w.blacklist.iter().cloned().collect(), &s(body, "begin_openid"), page_size)
        }
        "/cgi-bin/tags/members/batchblacklist" | "/cgi-bin/tags/members/batchunblacklist" => {
            let ids: Vec<String> = body["openid_list"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > 20 {
                err(40032)
            } else {
                for o in ids {
                    if path.ends_with("batchblacklist") {
                        w.blacklist.insert(o);
                    } else {
                        w.blacklist.remove(&o);
                    }
                }
                ok()
            }
        }
        "/cgi-bin/changeopenid" => change_openid(w, body),
        _ => return None,
    };
    Some(Answer::Json(v))
}

pub(super) fn user_json(u: &FakeUser) -> Value {
    if !u.subscribe {
        return json!({ "subscribe": 0, "openid": u.openid });
    }
    json!({
        "subscribe": 1, "openid": u.openid, "language": "zh_CN", "subscribe_time": 1_700_000_000,
        "unionid": u.unionid, "remark": u.remark, "groupid": 0, "tagid_list": u.tags,
        "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": "",
    })
}

/// One page of `ids` after `after` (exclusive), in WeChat's `{total, count, data, next_openid}` shape.
pub(super) fn page(ids: Vec<String>, after: &str, size: usize) -> Value {
    let total = ids.len();
    let rest: Vec<String> =
        ids.into_iter().filter(|id| after.is_empty() || id.as_str() > after).take(size).collect();
    let next = rest.last().cloned().unwrap_or_default();
    json!({ "total": total, "count": rest.len(), "data": { "openid": rest }, "next_openid": next })
}
