//! OAuth2 web authorization: the consent page of `open.weixin.qq.com` (approving at once as
//! the user set with `FakePlatform::set_oauth_user`) and the `/sns/*` user-token endpoints.

use serde_json::{Value, json};

use super::support::{q, secs};
use super::{Answer, FakeUser, Recorded, World, err, ok};

/// The consent page and `/sns/*` (called without the account's token); `None` for any other
/// path.
pub(super) fn dispatch(w: &mut World, r: &Recorded) -> Option<Answer> {
    match r.path.as_str() {
        "/connect/oauth2/authorize" => Some(authorize(w, r)),
        p if p.starts_with("/sns/") => Some(Answer::Json(sns(w, p, r))),
        _ => None,
    }
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
