//! User tags and their members.

use serde_json::{Value, json};

use super::support::s;
use super::users::page;
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let page_size = w.cfg().user_page_size;
    let v = match path {
        "/cgi-bin/tags/create" => {
            let name = s(&body["tag"], "name");
            if name.is_empty() || name.chars().count() > 30 {
                err(45158)
            } else if w.tags.values().any(|n| *n == name) {
                err(45157)
            } else {
                let id = w.tags.keys().next_back().map_or(100, |k| k + 1);
                w.tags.insert(id, name.clone());
                json!({ "tag": { "id": id, "name": name } })
            }
        }
        "/cgi-bin/tags/get" => {
            let tags: Vec<Value> = w
                .tags
                .iter()
                .map(|(id, name)| {
                    let count = w.users.values().filter(|u| u.tags.contains(id)).count();
                    json!({ "id": id, "name": name, "count": count })
                })
                .collect();
            json!({ "tags": tags })
        }
        "/cgi-bin/tags/update" => {
            let id = body["tag"]["id"].as_i64().unwrap_or_default();
            match w.tags.get_mut(&id) {
                Some(n) => {
                    *n = s(&body["tag"], "name");
                    ok()
                }
                None => err(45058),
            }
        }
        "/cgi-bin/tags/delete" => {
            let id = body["tag"]["id"].as_i64().unwrap_or_default();
            if w.tags.remove(&id).is_some() {
                for u in w.users.values_mut() {
                    u.tags.remove(&id);
                }
                ok()
            } else {
                err(45058)
            }
        }
        "/cgi-bin/tags/members/batchtagging" | "/cgi-bin/tags/members/batchuntagging" => {
            let id = body["tagid"].as_i64().unwrap_or_default();
            let ids: Vec<String> = body["openid_list"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > 50 {
                err(40032)
            } else if !w.tags.contains_key(&id) {
                err(45159)
            } else if ids.iter().any(|o| !w.users.contains_key(o)) {
                err(40003)
            } else {
                for o in ids {
                    if let Some(u) = w.users.get_mut(&o) {
                        if path.ends_with("batchtagging") {
                            u.tags.insert(id);
                        } else {
                            u.tags.remove(&id);
                        }
                    }
                }
                ok()
            }
        }
        "/cgi-bin/tags/getidlist" => match w.users.get(&s(body, "openid")) {
            Some(u) => json!({ "tagid_list": u.tags }),
            None => err(40003),
        },
        "/cgi-bin/user/tag/get" => {
            let id = body["tagid"].as_i64().unwrap_or_default();
            let ids = w.users.values().filter(|u| u.tags.contains(&id)).map(|u| u.openid.clone()).collect();
            let mut p = page(ids, &s(body, "next_openid"), page_size);
            p.as_object_mut().map(|o| o.remove("total"));
            p
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}
