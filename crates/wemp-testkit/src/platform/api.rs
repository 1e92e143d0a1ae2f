//! The routing of the endpoints that share the token check (the token endpoints, the QR code
//! image and OAuth2 go first, without it) to the areas in their own modules, as the
//! client's `api` modules; any other path is 40066.

use axum::http::Method;
use serde_json::Value;

use super::{Answer, Recorded, World, err};
use super::{
    drafts, jssdk, kf, mass, material, media, menu, oauth, ops, publish, qrcode, subscribe, tags, templates,
    token, users,
};

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Answer {
    let path = r.path.as_str();
    let body = r.json().unwrap_or(Value::Null);
    // Called without the account's access_token.
    let open = token::dispatch(w, r, &body)
        .or_else(|| qrcode::image(w, r))
        .or_else(|| oauth::dispatch(w, r))
        .or_else(|| subscribe::consent_page(w, r));
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
        .or_else(|| menu::dispatch(w, path, r, &body))
        .or_else(|| kf::dispatch(w, path, r, &body))
        .or_else(|| mass::dispatch(w, path, r, &body))
        .or_else(|| subscribe::dispatch(w, path, r, &body))
        .or_else(|| templates::dispatch(w, path, r, &body))
        .unwrap_or_else(|| Answer::Json(err(40066)))
}
