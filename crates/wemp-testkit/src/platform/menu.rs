//! Custom menus, conditional menus included: the limits of `menu/create` and
//! `addconditional` (errcodes 40016–40027), `menu/get` with the match rules' values as
//! numbers (as WeChat's documented answer has them), and `trymatch` by the user's tags.

use serde_json::{Value, json};

use super::support::{s, with};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/menu/create" => match menu_error(body) {
            Some(code) => err(code),
            None => {
                w.menu = Some(json!({ "button": body["button"] }));
                ok()
            }
        },
        "/cgi-bin/menu/get" => match &w.menu {
            Some(m) => {
                // The documented answer gives the match rule's values as numbers, though
                // `addconditional` takes strings.
                let cond: Vec<Value> = w
                    .conditional
                    .iter()
                    .map(|(id, c)| {
                        let mut c = with(c.clone(), json!({ "menuid": id }));
                        if let Some(rule) = c["matchrule"].as_object_mut() {
                            for v in rule.values_mut() {
                                if let Some(n) = v.as_str().and_then(|s| s.parse::<i64>().ok()) {
                                    *v = json!(n);
                                }
                            }
                        }
                        c
                    })
                    .collect();
                let mut v = json!({ "menu": with(m.clone(), json!({ "menuid": 1 })) });
                if !cond.is_empty() {
                    v["conditionalmenu"] = json!(cond);
                }
                v
            }
            None => err(46003),
        },
        "/cgi-bin/menu/delete" => {
            w.menu = None;
            w.conditional.clear();
            ok()
        }
        "/cgi-bin/get_current_selfmenu_info" => match &w.menu {
            Some(m) => json!({ "is_menu_open": 1, "selfmenu_info": m }),
            None => json!({ "is_menu_open": 0 }),
        },
        "/cgi-bin/menu/addconditional" => {
            if w.menu.is_none() {
                err(46003)
            } else if let Some(code) = menu_error(body) {
                err(code)
            } else if body.get("matchrule").is_none() {
                err(40016)
            } else {
                w.seq += 1;
                let id = w.seq as i64;
                w.conditional.insert(id, json!({ "button": body["button"], "matchrule": body["matchrule"] }));
                json!({ "menuid": id.to_string() })
            }
        }
        "/cgi-bin/menu/delconditional" => {
            let id = body.get("menuid").and_then(|m| m.as_i64().or_else(|| m.as_str()?.parse().ok()));
            match id.and_then(|id| w.conditional.remove(&id)) {
                Some(_) => ok(),
                None => err(46002),
            }
        }
        "/cgi-bin/menu/trymatch" => {
            let user = w.users.get(&s(body, "user_id")).cloned();
            match (user, &w.menu) {
                (None, _) => err(46004),
                (_, None) => err(46003),
                (Some(u), Some(m)) => {
                    let hit = w.conditional.values().find(|c| {
                        let tag = &c["matchrule"]["tag_id"];
                        let tag = tag.as_i64().or_else(|| tag.as_str()?.parse().ok());
                        tag.is_some_and(|t| u.tags.contains(&t))
                    });
                    json!({ "button": hit.unwrap_or(m)["button"] })
                }
            }
        }
        _ => return None,
    };
    Some(Answer::Json(v))
}

/// The errcode WeChat gives a `menu/create` (or `addconditional`) body breaking its limits:
/// 1–3 buttons of at most 16 bytes, each a leaf of a known type or a group of 1–5
/// sub-buttons of at most 60 bytes; keys up to 128 bytes, URLs up to 1024.
fn menu_error(body: &Value) -> Option<i64> {
    const TYPES: [&str; 13] = [
        "click",
        "view",
        "miniprogram",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "media_id",
        "view_limited",
        "article_id",
        "article_view_limited",
    ];
    // The codes for a top-level button, then for a sub-button: type, name, key, URL.
    fn leaf(b: &Value, max_name: usize, codes: [i64; 4]) -> Option<i64> {
        let [type_code, name_code, key_code, url_code] = codes;
        let name = s(b, "name");
        if name.is_empty() || name.len() > max_name {
            return Some(name_code);
        }
        if b.get("sub_button").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return None;
        }
        if !TYPES.contains(&s(b, "type").as_str()) {
            return Some(type_code);
        }
        if s(b, "key").len() > 128 {
            return Some(key_code);
        }
        (s(b, "url").len() > 1024).then_some(url_code)
    }
    let Some(buttons) = body.get("button").and_then(Value::as_array) else { return Some(40016) };
    if buttons.is_empty() || buttons.len() > 3 {
        return Some(40016);
    }
    for b in buttons {
        if let Some(code) = leaf(b, 16, [40017, 40018, 40019, 40020]) {
            return Some(code);
        }
        let subs = b.get("sub_button").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        if subs.len() > 5 {
            return Some(40023);
        }
        for sub in subs {
            if let Some(code) = leaf(sub, 60, [40024, 40025, 40026, 40027]) {
                return Some(code);
            }
        }
    }
    None
}
