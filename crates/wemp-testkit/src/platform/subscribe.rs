//! Subscription notifications (订阅通知) and one-time subscription messages (一次性订阅消息)
//! on the fake platform.
//!
//! The account belongs to two categories of a small public library (616 公交 with titles 99,
//! 100 and 101; 627 浏览器 with title 200); title 99 has keywords 1–4, the others 1–3. A
//! template added from it (2–5 distinct keywords of its title, a scene description of 1–15
//! characters, at most 50 templates) gets the content `name:{{<rule><kid>.DATA}}` per
//! keyword, and `bizsend` takes exactly those data keys (47003 otherwise, 40037 for an
//! unknown template). The errcodes are the documented ones: 200012 too many templates,
//! 200014 unknown tid, 200016/200017 bad start/limit, 200018/200019 missing or unknown
//! category ids, 200020 bad keywords, 200021 bad scene description.
//!
//! The consent page of one-time subscription (`/mp/subscribemsg`, on `mp.weixin.qq.com`)
//! approves at once as the user set with
//! [`FakePlatform::set_oauth_user`](super::FakePlatform::set_oauth_user) and redirects with
//! `action=confirm` (`action=cancel` when no user is set); each consent allows one
//! `/cgi-bin/message/template/subscribe` to that user, template and scene (43101 without
//! one; consents in one scene do not add up).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::support::{q, s, with};
use super::{Answer, Recorded, World, err, ok};

/// The account's categories: (id, name).
const CATEGORIES: [(i64, &str); 2] = [(616, "公交"), (627, "浏览器")];
/// The public titles: (tid, title, type: 2 one-time / 3 long-term, category).
const TITLES: [(i64, &str, i64, i64); 4] = [
    (99, "付款成功通知", 2, 616),
    (100, "线路变更提醒", 2, 616),
    (101, "乘车码开通通知", 3, 616),
    (200, "下载完成通知", 2, 627),
];
/// The keywords: (kid, name, example, rule); title 99 has all four, the others the first three.
const KEYWORDS: [(i64, &str, &str, &str); 4] = [
    (1, "名称", "地铁乘车", "thing"),
    (2, "金额", "2.00元", "amount"),
    (3, "时间", "2026-12-04 18:00", "time"),
    (4, "备注", "请留意", "thing"),
];
/// The most templates an account keeps.
const MAX_TEMPLATES: usize = 50;

/// A template of the account.
#[derive(Debug)]
struct Private {
    title: String,
    kind: i64,
    content: String,
    example: String,
    /// The data keys a notification fills (`thing1`, …).
    keys: Vec<String>,
}

/// The account's templates and the one-time consents not yet used.
#[derive(Debug, Default)]
pub(super) struct Board {
    templates: BTreeMap<String, Private>,
    /// (openid, template_id, scene).
    consents: BTreeSet<(String, String, u32)>,
}

fn keywords(tid: i64) -> &'static [(i64, &'static str, &'static str, &'static str)] {
    if tid == 99 { &KEYWORDS } else { &KEYWORDS[..3] }
}

/// `{errcode, errmsg}` with the documented errmsg of the library's codes.
fn fail(code: i64) -> Value {
    let msg = match code {
        200012 => "private template count reach limit",
        200014 => "invalid tid",
        200016 => "invalid start",
        200017 => "invalid limit",
        200018 => "missing parameter ids",
        200019 => "invalid parameter ids",
        200020 => "invalid keywords",
        200021 => "invalid sceneDesc",
        43101 => "user refuse to accept the msg",
        _ => return err(code),
    };
    json!({ "errcode": code, "errmsg": format!("{msg} rid: fake-{code}") })
}

/// The answer to `path`, when it is an endpoint of this area.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
        "/cgi-bin/message/subscribe/bizsend" => bizsend(w, body),
        "/wxaapi/newtmpl/gettemplate" => {
            let data: Vec<Value> = w
                .subscriptions
                .templates
                .iter()
                .map(|(id, t)| json!({ "priTmplId": id, "title": t.title, "content": t.content, "example": t.example, "type": t.kind }))
                .collect();
            with(ok(), json!({ "data": data }))
        }
        "/wxaapi/newtmpl/getcategory" => {
            let data: Vec<Value> =
                CATEGORIES.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect();
            with(ok(), json!({ "data": data }))
        }
        "/wxaapi/newtmpl/getpubtemplatetitles" => pub_titles(r),
        "/wxaapi/newtmpl/getpubtemplatekeywords" => {
            match q(r, "tid").parse::<i64>().ok().filter(|t| TITLES.iter().any(|x| x.0 == *t)) {
                Some(tid) => {
                    let data: Vec<Value> = keywords(tid)
                        .iter()
                        .map(|(kid, name, example, rule)| json!({ "kid": kid, "name": name, "example": example, "rule": rule }))
                        .collect();
                    with(ok(), json!({ "count": data.len(), "data": data }))
                }
                None => fail(200014),
            }
        }
        "/wxaapi/newtmpl/addtemplate" => add_template(w, body),
        "/wxaapi/newtmpl/deltemplate" => match w.subscriptions.templates.remove(&s(body, "priTmplId")) {
            Some(_) => ok(),
            None => err(40037),
        },
        "/cgi-bin/message/template/subscribe" => send_once(w, body),
        _ => return None,
    };
    Some(Answer::Json(v))
}

fn bizsend(w: &mut World, body: &Value) -> Value {
    let Some(t) = w.subscriptions.templates.get(&s(body, "template_id")) else { return err(40037) };
    if s(body, "touser").is_empty() {
        return err(40003);
    }
    let Some(data) = body.get("data").and_then(Value::as_object) else { return err(47003) };
    let filled = |k: &String| data.get(k).is_some_and(|v| !s(v, "value").is_empty());
    if data.len() != t.keys.len() || !t.keys.iter().all(filled) {
        return err(47003);
    }
    w.sent.push(body.clone());
    ok()
}

fn pub_titles(r: &Recorded) -> Value {
    let ids = q(r, "ids");
    if ids.is_empty() {
        return fail(200018);
    }
    let ids: Option<Vec<i64>> = ids.split(',').map(|id| id.trim().parse().ok()).collect();
    let Some(ids) = ids.filter(|ids| ids.iter().all(|id| CATEGORIES.iter().any(|c| c.0 == *id))) else {
        return fail(200019);
    };
    let Ok(start) = q(r, "start").parse::<usize>() else { return fail(200016) };
    let Some(limit) = q(r, "limit").parse::<usize>().ok().filter(|l| (1..=30).contains(l)) else {
        return fail(200017);
    };
    let titles: Vec<_> = TITLES.iter().filter(|t| ids.contains(&t.3)).collect();
    let data: Vec<Value> = titles
        .iter()
        .skip(start)
        .take(limit)
        .map(|(tid, title, kind, category)| {
            json!({ "tid": tid, "title": title, "type": kind, "categoryId": category.to_string() })
        })
        .collect();
    with(ok(), json!({ "count": titles.len(), "data": data }))
}

fn add_template(w: &mut World, body: &Value) -> Value {
    // `tid` is documented as a string; accept a number too.
    let tid = body["tid"].as_i64().or_else(|| s(body, "tid").parse().ok());
    let Some(&(tid, title, kind, _)) = tid.and_then(|t| TITLES.iter().find(|x| x.0 == t)) else {
        return fail(200014);
    };
    let kids: Vec<i64> =
        body["kidList"].as_array().map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_i64).collect());
    let known = keywords(tid);
    let distinct = kids.iter().collect::<BTreeSet<_>>().len() == kids.len();
    if !(2..=5).contains(&kids.len()) || !distinct || !kids.iter().all(|k| known.iter().any(|x| x.0 == *k)) {
        return fail(200020);
    }
    let desc = s(body, "sceneDesc").chars().count();
    if !(1..=15).contains(&desc) {
        return fail(200021);
    }
    if w.subscriptions.templates.len() >= MAX_TEMPLATES {
        return fail(200012);
    }
    let chosen: Vec<_> = kids.iter().filter_map(|k| known.iter().find(|x| x.0 == *k)).collect();
    let keys: Vec<String> = chosen.iter().map(|(kid, _, _, rule)| format!("{rule}{kid}")).collect();
    let content = chosen
        .iter()
        .zip(&keys)
        .map(|((_, name, _, _), key)| format!("{name}:{{{{{key}.DATA}}}}\n"))
        .collect();
    let example = chosen.iter().map(|(_, name, example, _)| format!("{name}:{example}\n")).collect();
    let id = w.next_id("SUBSCRIBE_TPL_");
    let template = Private { title: title.to_owned(), kind, content, example, keys };
    w.subscriptions.templates.insert(id.clone(), template);
    with(ok(), json!({ "priTmplId": id }))
}

fn send_once(w: &mut World, body: &Value) -> Value {
    let (to, template) = (s(body, "touser"), s(body, "template_id"));
    if to.is_empty() {
        return err(40003);
    }
    if template.is_empty() {
        return err(40037);
    }
    let scene = body["scene"].as_u64().or_else(|| s(body, "scene").parse().ok());
    let Some(scene) = scene.and_then(|s| u32::try_from(s).ok()).filter(|s| *s <= 10_000) else {
        return err(47003);
    };
    let title = s(body, "title").chars().count();
    let content = s(&body["data"]["content"], "value").chars().count();
    if !(1..=15).contains(&title) || !(1..=200).contains(&content) {
        return err(47003);
    }
    if !w.subscriptions.consents.remove(&(to, template, scene)) {
        return fail(43101);
    }
    w.sent.push(body.clone());
    ok()
}

/// The consent page of one-time subscription (no access_token): approves at once as the
/// OAuth user.
pub(super) fn consent_page(w: &mut World, r: &Recorded) -> Option<Answer> {
    (r.path == "/mp/subscribemsg").then(|| consent(w, r))
}

fn consent(w: &mut World, r: &Recorded) -> Answer {
    if q(r, "action") != "get_confirm" {
        return Answer::Json(err(47001));
    }
    if q(r, "appid") != w.cfg().appid {
        return Answer::Json(err(40013));
    }
    let (template, redirect, reserved) = (q(r, "template_id"), q(r, "redirect_url"), q(r, "reserved"));
    let scene = q(r, "scene").parse::<u32>().ok().filter(|s| *s <= 10_000);
    let Some(scene) = scene.filter(|_| !template.is_empty() && !redirect.is_empty() && reserved.len() <= 128)
    else {
        return Answer::Json(err(47001));
    };
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.').remove(b'~');
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, SET).to_string();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let tail = format!("template_id={}&scene={scene}&reserved={}", enc(&template), enc(&reserved));
    match w.oauth_user.clone() {
        Some((openid, _)) => {
            w.subscriptions.consents.insert((openid.clone(), template, scene));
            Answer::Redirect(format!("{redirect}{sep}openid={}&action=confirm&{tail}", enc(&openid)))
        }
        None => Answer::Redirect(format!("{redirect}{sep}action=cancel&{tail}")),
    }
}
