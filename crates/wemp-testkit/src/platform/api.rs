//! The routing of the endpoints that share the token check: the areas in their own modules
//! first (as the client's `api` modules), then the arms still here.

use axum::http::Method;
use serde_json::{Value, json};

use super::support::{q, s, secs, with};
use super::{Answer, Recorded, World, err, ok};
use super::{drafts, jssdk, material, media, oauth, ops, publish, qrcode, tags, token, users};

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Answer {
    let path = r.path.as_str();
    let body = r.json().unwrap_or(Value::Null);
    // Called without the account's access_token.
    let open = token::dispatch(w, r, &body).or_else(|| qrcode::image(w, r)).or_else(|| oauth::dispatch(w, r));
    if let Some(answer) = open {
        return answer;
    }
    let code = w.check_token(r.access_token());
    if code != 0 {
        return Answer::Json(err(code));
    }
    if let Some(v) = w.scripted.get(path) {
        return Answer::Json(v.clone());
    }
    if *method == Method::POST && r.parts.is_empty() && !r.body.is_empty() && body.is_null() {
        return Answer::Json(err(47001));
    }
    users::dispatch(w, path, r, &body)
        .or_else(|| tags::dispatch(w, path, r, &body))
        .or_else(|| media::dispatch(w, path, r, &body))
        .or_else(|| material::dispatch(w, path, r, &body))
        .or_else(|| drafts::dispatch(w, path, r, &body))
        .or_else(|| publish::dispatch(w, path, r, &body))
        .or_else(|| qrcode::dispatch(w, path, r, &body))
        .or_else(|| jssdk::dispatch(w, path, r, &body))
        .or_else(|| ops::dispatch(w, path, r, &body))
        .unwrap_or_else(|| api(w, path, r, &body))
}

fn send_message(w: &mut World, body: &Value, needs_window: bool) -> Value {
    let to = s(body, "touser");
    let msgtype = s(body, "msgtype");
    if to.is_empty() {
        return err(40003);
    }
    if msgtype.is_empty() || body.get(&msgtype).is_none() {
        return err(40008);
    }
    if needs_window {
        if w.cs_closed.contains(&to) {
            return err(45015);
        }
        let limit = w.cfg().cs_message_limit;
        let sent = w.cs_sent.entry(to).or_default();
        if *sent >= limit {
            return err(45047);
        }
        *sent += 1;
    }
    w.sent.push(body.clone());
    ok()
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

#[allow(clippy::too_many_lines)]
fn api(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Answer {
    let v = match path {
        // Customer service.
        "/cgi-bin/message/custom/send" => send_message(w, body, true),
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
        // Templates and subscription notifications.
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
        // Menus.
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
        // Mass sending.
        "/cgi-bin/message/mass/sendall" | "/cgi-bin/message/mass/send" => {
            let msgtype = s(body, "msgtype");
            let target_ok = if path.ends_with("sendall") {
                body.get("filter").is_some()
            } else {
                body["touser"].as_array().is_some_and(|a| a.len() >= 2)
            };
            if !target_ok {
                err(40130)
            } else if msgtype.is_empty() || body.get(&msgtype).is_none() {
                err(40008)
            } else {
                w.seq += 1;
                let id = w.seq as i64;
                w.mass.insert(id, body.clone());
                w.sent.push(body.clone());
                with(ok(), json!({ "msg_id": id, "msg_data_id": id * 10 }))
            }
        }
        "/cgi-bin/message/mass/preview" => {
            let msgtype = s(body, "msgtype");
            if s(body, "touser").is_empty() && s(body, "towxname").is_empty() {
                err(40003)
            } else if msgtype.is_empty() || body.get(&msgtype).is_none() {
                err(40008)
            } else {
                w.sent.push(body.clone());
                ok()
            }
        }
        "/cgi-bin/message/mass/delete" => match body["msg_id"].as_i64().and_then(|id| w.mass.remove(&id)) {
            Some(_) => ok(),
            None => err(40007),
        },
        "/cgi-bin/message/mass/get" => match body["msg_id"].as_i64() {
            Some(id) if w.mass.contains_key(&id) => json!({ "msg_id": id, "msg_status": "SEND_SUCCESS" }),
            _ => err(40007),
        },
        "/cgi-bin/message/mass/speed/get" => {
            let speed = w.mass_speed;
            let real = [80, 60, 45, 30, 10][speed.clamp(0, 4) as usize];
            json!({ "speed": speed, "realspeed": real })
        }
        "/cgi-bin/message/mass/speed/set" => match body["speed"].as_i64() {
            Some(sp @ 0..=4) => {
                w.mass_speed = sp;
                ok()
            }
            _ => err(47001),
        },
        _ => err(40066),
    };
    Answer::Json(v)
}
