//! The endpoints of the fake platform.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, FakeUser, Recorded, StoredMedia, World, err, ok};

pub(super) fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub(super) fn q(r: &Recorded, key: &str) -> String {
    r.query.get(key).cloned().unwrap_or_default()
}

pub(super) fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub(super) fn secs(ms: i64) -> i64 {
    ms / 1000
}

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Answer {
    let path = r.path.as_str();
    let body = r.json().unwrap_or(Value::Null);
    match path {
        "/cgi-bin/token" => return Answer::Json(classic_token(w, r)),
        "/cgi-bin/stable_token" => return Answer::Json(stable_token(w, &body)),
        "/cgi-bin/showqrcode" => return showqrcode(w, r),
        "/connect/oauth2/authorize" => return authorize(w, r),
        p if p.starts_with("/sns/") => return Answer::Json(sns(w, p, r)),
        _ => {}
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
    api(w, path, r, &body)
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

fn showqrcode(w: &mut World, r: &Recorded) -> Answer {
    let ticket = q(r, "ticket");
    if !w.qrcodes.contains_key(&ticket) {
        return Answer::Json(err(40097));
    }
    let mut data = vec![0xFF, 0xD8, 0xFF, 0xE0];
    data.extend_from_slice(ticket.as_bytes());
    data.extend_from_slice(&[0xFF, 0xD9]);
    Answer::Binary { content_type: "image/jpeg".into(), data: Bytes::from(data) }
}

fn authorize(w: &mut World, r: &Recorded) -> Answer {
    if q(r, "appid") != w.cfg().appid {
        return Answer::Json(err(40013));
    }
    let redirect = q(r, "redirect_uri");
    let scope = q(r, "scope");
    if redirect.is_empty() || !matches!(scope.as_str(), "snsapi_base" | "snsapi_userinfo") {
        return Answer::Json(err(10003));
    }
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let state = q(r, "state");
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.').remove(b'~');
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, SET).to_string();
    match w.oauth_user.clone() {
        Some((openid, _)) => {
            let code = w.next_id("CODE_");
            w.oauth_codes.insert(code.clone(), (openid, scope));
            Answer::Redirect(format!("{redirect}{sep}code={}&state={}", enc(&code), enc(&state)))
        }
        None => Answer::Redirect(format!("{redirect}{sep}state={}", enc(&state))),
    }
}

fn sns(w: &mut World, path: &str, r: &Recorded) -> Value {
    let lifetime = w.lifetime_ms();
    let issue = |w: &mut World, openid: String, scope: String| {
        let at = w.next_id("USER_TOKEN_");
        let rt = w.next_id("REFRESH_");
        w.user_tokens.insert(at.clone(), (openid.clone(), scope.clone(), w.now_ms + lifetime));
        w.refresh_tokens.insert(rt.clone(), (openid.clone(), scope.clone()));
        json!({
            "access_token": at, "expires_in": secs(lifetime), "refresh_token": rt,
            "openid": openid, "scope": scope, "is_snapshotuser": 0,
            "unionid": w.users.get(&openid).and_then(|u| u.unionid.clone()),
        })
    };
    let user_token = |w: &World| -> Result<(String, String), i64> {
        match w.user_tokens.get(&q(r, "access_token")) {
            None => Err(40001),
            Some((_, _, exp)) if w.now_ms >= *exp => Err(42001),
            Some((openid, _, _)) if *openid != q(r, "openid") => Err(40003),
            Some((openid, scope, _)) => Ok((openid.clone(), scope.clone())),
        }
    };
    match path {
        // On behalf of an authorizer (代公众号): the component's token instead of the secret.
        "/sns/oauth2/component/access_token" | "/sns/oauth2/component/refresh_token" => {
            if let Err(code) = super::component::check_oauth(w, r) {
                return err(code);
            }
            if q(r, "appid") != w.cfg().appid {
                return err(40013);
            }
            let taken = if path.ends_with("access_token") {
                if q(r, "grant_type") != "authorization_code" {
                    return err(40002);
                }
                w.oauth_codes.remove(&q(r, "code")).ok_or(40029)
            } else {
                w.refresh_tokens.get(&q(r, "refresh_token")).cloned().ok_or(40030)
            };
            match taken {
                Ok((openid, scope)) => issue(w, openid, scope),
                Err(code) => err(code),
            }
        }
        "/sns/oauth2/access_token" => {
            if q(r, "appid") != w.cfg().appid {
                return err(40013);
            }
            if q(r, "secret") != w.cfg().secret {
                return err(40125);
            }
            if q(r, "grant_type") != "authorization_code" {
                return err(40002);
            }
            match w.oauth_codes.remove(&q(r, "code")) {
                Some((openid, scope)) => issue(w, openid, scope),
                None => err(40029),
            }
        }
        "/sns/oauth2/refresh_token" => {
            if q(r, "appid") != w.cfg().appid {
                return err(40013);
            }
            match w.refresh_tokens.get(&q(r, "refresh_token")).cloned() {
                Some((openid, scope)) => issue(w, openid, scope),
                None => err(40030),
            }
        }
        "/sns/userinfo" => match user_token(w) {
            Err(code) => err(code),
            Ok((_, scope)) if scope != "snsapi_userinfo" => err(48001),
            Ok((openid, _)) => {
                let u = w.users.get(&openid).cloned().unwrap_or_else(|| FakeUser::new(openid.clone()));
                json!({
                    "openid": u.openid, "nickname": u.nickname, "sex": 0, "province": "", "city": "",
                    "country": "", "headimgurl": format!("https://thirdwx.qlogo.cn/fake/{}", u.openid),
                    "privilege": [], "unionid": u.unionid,
                })
            }
        },
        "/sns/auth" => match user_token(w) {
            Err(code) => err(code),
            Ok(_) => ok(),
        },
        _ => err(40066),
    }
}

fn user_json(u: &FakeUser) -> Value {
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
fn page(ids: Vec<String>, after: &str, size: usize) -> Value {
    let total = ids.len();
    let rest: Vec<String> =
        ids.into_iter().filter(|id| after.is_empty() || id.as_str() > after).take(size).collect();
    let next = rest.last().cloned().unwrap_or_default();
    json!({ "total": total, "count": rest.len(), "data": { "openid": rest }, "next_openid": next })
}

fn store_upload(w: &mut World, r: &Recorded, permanent: bool) -> Result<(String, String), Value> {
    let Some(file) = r.parts.iter().find(|p| p.name == "media") else { return Err(err(41005)) };
    let kind = match q(r, "type").as_str() {
        "" if r.path.ends_with("uploadimg") => "image".to_owned(),
        k @ ("image" | "voice" | "video" | "thumb") => k.to_owned(),
        _ => return Err(err(40004)),
    };
    let description = r
        .parts
        .iter()
        .find(|p| p.name == "description")
        .and_then(|p| serde_json::from_slice::<Value>(&p.data).ok());
    if permanent && kind == "video" && description.is_none() {
        return Err(err(40005));
    }
    let id = w.next_id("MEDIA_");
    w.media.insert(
        id.clone(),
        StoredMedia {
            kind: kind.clone(),
            file_name: file.file_name.clone().unwrap_or_default(),
            content_type: file.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
            data: file.data.clone(),
            permanent,
            description,
        },
    );
    Ok((id, kind))
}

fn media_answer(m: &StoredMedia, id: &str) -> Answer {
    if m.kind == "video" {
        let d = m.description.clone().unwrap_or(Value::Null);
        return Answer::Json(json!({
            "video_url": format!("http://fake.video/{id}"),
            "title": s(&d, "title"), "description": s(&d, "introduction"),
            "down_url": format!("http://fake.video/{id}"),
        }));
    }
    Answer::Binary { content_type: m.content_type.clone(), data: m.data.clone() }
}

fn articles_page(items: Vec<Value>, body: &Value, total: usize) -> Value {
    let offset = body.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(20).min(20) as usize;
    let item: Vec<Value> = items.into_iter().skip(offset).take(count).collect();
    json!({ "total_count": total, "item_count": item.len(), "item": item })
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
    if let Some(answer) = super::kf::dispatch(w, path, r, body) {
        return answer;
    }
    if let Some(answer) = super::mass::dispatch(w, path, r, body) {
        return answer;
    }
    if let Some(answer) = super::subscribe::dispatch(w, path, r, body) {
        return answer;
    }
    if let Some(answer) = super::templates::dispatch(w, path, r, body) {
        return answer;
    }
    let page_size = w.cfg().user_page_size;
    let v = match path {
        "/cgi-bin/ticket/getticket" => {
            if q(r, "type") != "jsapi" {
                err(40097)
            } else {
                let now = w.now_ms;
                let lifetime = w.lifetime_ms();
                let (ticket, exp) = match w.ticket.clone() {
                    Some((t, exp)) if exp > now => (t, exp),
                    _ => {
                        let t = w.next_id("JSAPI_TICKET_");
                        w.ticket = Some((t.clone(), now + lifetime));
                        (t, now + lifetime)
                    }
                };
                with(ok(), json!({ "ticket": ticket, "expires_in": secs(exp - now) }))
            }
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
        // Users.
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
        // Media.
        "/cgi-bin/media/upload" => match store_upload(w, r, false) {
            Ok((id, kind)) => {
                let key = if kind == "thumb" { "thumb_media_id" } else { "media_id" };
                json!({ "type": kind, key: id, "created_at": secs(w.now_ms) })
            }
            Err(e) => e,
        },
        "/cgi-bin/media/uploadimg" => match store_upload(w, r, true) {
            Ok((id, _)) => json!({ "url": format!("http://mmbiz.qpic.cn/fake/{id}/0") }),
            Err(e) => e,
        },
        "/cgi-bin/media/get" => {
            let id = q(r, "media_id");
            return match w.media.get(&id) {
                Some(m) if !m.permanent => media_answer(m, &id),
                _ => Answer::Json(err(40007)),
            };
        }
        "/cgi-bin/material/add_material" => match store_upload(w, r, true) {
            Ok((id, kind)) => {
                let url = (kind == "image").then(|| format!("http://mmbiz.qpic.cn/fake/{id}/0"));
                json!({ "media_id": id, "url": url })
            }
            Err(e) => e,
        },
        "/cgi-bin/material/get_material" => {
            let id = s(body, "media_id");
            return match w.media.get(&id) {
                Some(m) if m.permanent => media_answer(m, &id),
                _ => Answer::Json(err(40007)),
            };
        }
        "/cgi-bin/material/del_material" => match w.media.get(&s(body, "media_id")) {
            Some(m) if m.permanent => {
                w.media.remove(&s(body, "media_id"));
                ok()
            }
            _ => err(40007),
        },
        "/cgi-bin/material/get_materialcount" => {
            let count = |k: &str| w.media.values().filter(|m| m.permanent && m.kind == k).count();
            json!({ "voice_count": count("voice"), "video_count": count("video"), "image_count": count("image"), "news_count": 0 })
        }
        "/cgi-bin/material/batchget_material" => {
            let kind = s(body, "type");
            let mut items: Vec<(String, StoredMedia)> = w
                .media
                .iter()
                .filter(|(_, m)| m.permanent && m.kind == kind)
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            let total = items.len();
            let items = items
                .into_iter()
                .map(|(id, m)| json!({ "media_id": id, "name": m.file_name, "update_time": secs(w.now_ms), "url": "" }))
                .collect();
            articles_page(items, body, total)
        }
        // Drafts and publishing.
        "/cgi-bin/draft/add" => match body.get("articles").and_then(Value::as_array) {
            Some(a) if !a.is_empty() && a.iter().all(|x| !s(x, "title").is_empty()) => {
                let id = w.next_id("DRAFT_");
                w.drafts.insert(id.clone(), (a.clone(), secs(w.now_ms)));
                json!({ "media_id": id })
            }
            _ => err(53404),
        },
        "/cgi-bin/draft/get" => match w.drafts.get(&s(body, "media_id")) {
            Some((a, _)) => json!({ "news_item": a }),
            None => err(40007),
        },
        "/cgi-bin/draft/update" => {
            let idx = body["index"].as_u64().unwrap_or_default() as usize;
            match w.drafts.get_mut(&s(body, "media_id")) {
                Some((a, _)) if idx < a.len() => {
                    a[idx] = body["articles"].clone();
                    ok()
                }
                Some(_) => err(53405),
                None => err(40007),
            }
        }
        "/cgi-bin/draft/delete" => match w.drafts.remove(&s(body, "media_id")) {
            Some(_) => ok(),
            None => err(40007),
        },
        "/cgi-bin/draft/count" => json!({ "total_count": w.drafts.len() }),
        "/cgi-bin/draft/batchget" => {
            let items: Vec<Value> = w
                .drafts
                .iter()
                .map(
                    |(id, (a, t))| json!({ "media_id": id, "content": { "news_item": a }, "update_time": t }),
                )
                .collect();
            let total = items.len();
            articles_page(items, body, total)
        }
        "/cgi-bin/freepublish/submit" => match w.drafts.remove(&s(body, "media_id")) {
            Some(d) => {
                let publish_id = w.next_id("PUBLISH_");
                let article_id = w.next_id("ARTICLE_");
                w.published.insert(article_id.clone(), d);
                w.publish_jobs.insert(publish_id.clone(), article_id);
                with(ok(), json!({ "publish_id": publish_id, "msg_data_id": w.seq.to_string() }))
            }
            None => err(40007),
        },
        "/cgi-bin/freepublish/get" => {
            let pid = s(body, "publish_id");
            match w.publish_jobs.get(&pid) {
                Some(aid) => {
                    let (status, count) = match w.published.get(aid) {
                        Some((a, _)) => (0, a.len()),
                        None => (5, 0),
                    };
                    let item: Vec<Value> = (1..=count)
                        .map(|i| json!({ "idx": i, "article_url": format!("https://mp.weixin.qq.com/s/{aid}-{i}") }))
                        .collect();
                    json!({
                        "publish_id": pid, "publish_status": status, "article_id": aid,
                        "article_detail": { "count": count, "item": item }, "fail_idx": [],
                    })
                }
                None => err(48002),
            }
        }
        "/cgi-bin/freepublish/delete" => match w.published.remove(&s(body, "article_id")) {
            Some(_) => ok(),
            None => err(53600),
        },
        "/cgi-bin/freepublish/getarticle" => match w.published.get(&s(body, "article_id")) {
            Some((a, _)) => json!({ "news_item": a }),
            None => err(53600),
        },
        "/cgi-bin/freepublish/batchget" => {
            let items: Vec<Value> = w
                .published
                .iter()
                .map(|(id, (a, t))| json!({ "article_id": id, "content": { "news_item": a }, "update_time": t }))
                .collect();
            let total = items.len();
            articles_page(items, body, total)
        }
        // QR codes and short keys.
        "/cgi-bin/qrcode/create" => {
            let action = s(body, "action_name");
            let scene = &body["action_info"]["scene"];
            let valid = match action.as_str() {
                "QR_SCENE" | "QR_LIMIT_SCENE" => scene["scene_id"].as_u64().is_some(),
                "QR_STR_SCENE" | "QR_LIMIT_STR_SCENE" => !s(scene, "scene_str").is_empty(),
                _ => false,
            };
            if !valid {
                err(40053)
            } else {
                let ticket = w.next_id("gQ");
                let temporary = !action.contains("LIMIT");
                let expire =
                    temporary.then(|| body["expire_seconds"].as_u64().unwrap_or(60).clamp(60, 2_592_000));
                w.qrcodes.insert(ticket.clone(), body.clone());
                json!({ "ticket": ticket, "expire_seconds": expire, "url": format!("http://weixin.qq.com/q/{ticket}") })
            }
        }
        "/cgi-bin/shorten/gen" => {
            let long = s(body, "long_data");
            if long.is_empty() || long.len() > 4096 {
                err(47001)
            } else {
                let key = w.next_id("")[..8].to_owned() + &w.seq.to_string();
                let expire = body["expire_seconds"].as_u64().unwrap_or(2_592_000);
                w.short_keys.insert(key.clone(), (long, secs(w.now_ms), expire));
                with(ok(), json!({ "short_key": key }))
            }
        }
        "/cgi-bin/shorten/fetch" => match w.short_keys.get(&s(body, "short_key")) {
            Some((long, t, exp)) => {
                let left = (*t + *exp as i64 - secs(w.now_ms)).max(0);
                with(ok(), json!({ "long_data": long, "create_time": t, "expire_seconds": left }))
            }
            None => err(40007),
        },
        // Operations.
        "/cgi-bin/getcallbackip" => json!({ "ip_list": ["101.226.103.0/25", "101.226.62.0/26"] }),
        "/cgi-bin/get_api_domain_ip" => json!({ "ip_list": ["101.89.47.18", "101.91.34.103"] }),
        "/cgi-bin/callback/check" => {
            let action = s(body, "action");
            if !matches!(action.as_str(), "all" | "dns" | "ping") {
                err(47001)
            } else {
                let mut v = json!({});
                if action != "ping" {
                    v["dns"] = json!([{ "ip": "127.0.0.1", "real_operator": "UNICOM" }]);
                }
                if action != "dns" {
                    v["ping"] = json!([{ "ip": "127.0.0.1", "from_operator": "UNICOM", "package_loss": "0%", "time": "1.0ms" }]);
                }
                v
            }
        }
        "/cgi-bin/clear_quota" => {
            if s(body, "appid") == w.cfg().appid {
                ok()
            } else {
                err(40013)
            }
        }
        "/cgi-bin/openapi/quota/get" => {
            let cgi = s(body, "cgi_path");
            if cgi.is_empty() {
                err(76021)
            } else {
                let used = w.requests.iter().filter(|x| x.path == cgi).count();
                with(
                    ok(),
                    json!({ "quota": { "daily_limit": 100_000, "used": used, "remain": 100_000 - used } }),
                )
            }
        }
        "/cgi-bin/openapi/rid/get" => {
            let rid = s(body, "rid");
            let code = rid.strip_prefix("fake-").and_then(|c| c.parse::<i64>().ok());
            match code.and_then(|c| w.requests.iter().rev().find(|x| x.errcode == Some(c))) {
                Some(x) => with(
                    ok(),
                    json!({ "request": {
                        "invoke_time": secs(x.at_ms), "cost_in_ms": 1, "request_url": x.path,
                        "request_body": String::from_utf8_lossy(&x.body), "response_body": err(code.unwrap_or_default()).to_string(),
                        "client_ip": "127.0.0.1",
                    }}),
                ),
                None => err(76001),
            }
        }
        _ => err(40066),
    };
    Answer::Json(v)
}
