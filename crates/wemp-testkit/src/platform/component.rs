//! The Open Platform (第三方平台) side: the component token (only with the ticket the
//! platform last pushed and the right secret), pre-authorization codes, the authorization
//! page, `api_query_auth`, `api_authorizer_token` (with refresh-token rotation when asked),
//! `api_get_authorizer_info`; and the pushes to the platform's authorization event URL,
//! sealed with the component's Token and key through `wemp_proto::wechat::Platform`.
//!
//! Authorizer access tokens are ordinary tokens of the platform, so every API endpoint
//! accepts them.

use std::collections::HashMap;

use axum::http::Method;
use serde_json::{Value, json};
use wemp_proto::Secret;
use wemp_proto::component::{ComponentEvent, ComponentPush, Grant};

use super::{Answer, Recorded, World, err};

/// A ticket is good for 12 hours after its push.
const TICKET_LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// Pre-authorization codes and authorization codes live 30 and 60 minutes.
const PRE_AUTH_MS: i64 = 1800 * 1000;
const AUTH_CODE_MS: i64 = 3600 * 1000;

/// An account's authorization of the component, as the platform holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeAuthorizer {
    /// The account's appid.
    pub appid: String,
    /// The current refresh token.
    pub refresh_token: String,
    /// The granted function scope ids.
    pub func_scopes: Vec<u32>,
    /// `nick_name`.
    pub nick_name: String,
    /// `user_name` (`gh_…`).
    pub user_name: String,
    /// `principal_name`.
    pub principal_name: String,
}

#[derive(Default)]
pub(crate) struct Desk {
    /// The ticket last pushed and when.
    ticket: Option<(String, i64)>,
    /// Component tokens and their expiry.
    tokens: HashMap<String, i64>,
    pre_auth: HashMap<String, i64>,
    /// Authorization codes: (authorizer appid, expiry).
    codes: HashMap<String, (String, i64)>,
    authorizers: HashMap<String, FakeAuthorizer>,
    /// Scopes an authorization grants (default: 1, 15 — messages, menus).
    scopes: Vec<u32>,
    rotate_refresh_tokens: bool,
    /// The account the authorization page authorizes (default: the platform's account).
    approving: Option<String>,
    /// The pre-authorization code of the latest authorization.
    last_pre_auth: String,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn q(r: &Recorded, key: &str) -> String {
    r.query.get(key).cloned().unwrap_or_default()
}

impl World {
    /// 0 when `token` is a valid component token, else the errcode.
    fn check_component_token(&self, token: &str) -> i64 {
        match self.component.tokens.get(token) {
            _ if token.is_empty() => 41001,
            None => 40001,
            Some(exp) if self.now_ms >= *exp => 42001,
            Some(_) => 0,
        }
    }

    /// The token of a component call (`component_access_token`, or `access_token` as the
    /// newer docs write it).
    fn component_call(&self, r: &Recorded) -> i64 {
        let token = r.query.get("component_access_token").or_else(|| r.query.get("access_token"));
        self.check_component_token(token.map_or("", String::as_str))
    }

    /// An authorization code for `appid` (created as an authorizer on first use).
    pub(crate) fn component_auth_code(&mut self, appid: &str) -> String {
        let code = self.next_id("queryauthcode@@@");
        let expires = self.now_ms + AUTH_CODE_MS;
        self.component.codes.insert(code.clone(), (appid.to_owned(), expires));
        if self.component.last_pre_auth.is_empty() {
            self.component.last_pre_auth = self.next_id("preauthcode@@@");
        }
        code
    }
}

pub(super) fn dispatch(w: &mut World, method: &Method, r: &Recorded) -> Option<Answer> {
    let body = r.json().unwrap_or(Value::Null);
    let answer = match (method.as_str(), r.path.as_str()) {
        ("POST", "/cgi-bin/component/api_component_token") => component_token(w, &body),
        ("GET", "/cgi-bin/componentloginpage") => return Some(login_page(w, r)),
        ("GET", "/wxaopen/safe/bindcomponent") => return Some(login_page(w, r)),
        (_, p) if p.starts_with("/cgi-bin/component/") => {
            let code = w.component_call(r);
            if code != 0 {
                return Some(Answer::Json(err(code)));
            }
            if s(&body, "component_appid") != w.cfg().component_appid {
                return Some(Answer::Json(err(40013)));
            }
            if let Some(v) = w.scripted.get(p) {
                return Some(Answer::Json(v.clone()));
            }
            match p {
                "/cgi-bin/component/api_create_preauthcode" => pre_auth_code(w),
                "/cgi-bin/component/api_query_auth" => query_auth(w, &body),
                "/cgi-bin/component/api_authorizer_token" => authorizer_token(w, &body),
                "/cgi-bin/component/api_get_authorizer_info" => authorizer_info(w, &body),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Answer::Json(answer))
}

/// Whether a `/sns/oauth2/component/*` call names the component and carries a valid
/// component token (`Err(errcode)` otherwise).
pub(super) fn check_oauth(w: &World, r: &Recorded) -> Result<(), i64> {
    if q(r, "component_appid") != w.cfg().component_appid {
        return Err(40013);
    }
    match w.component_call(r) {
        0 => Ok(()),
        code => Err(code),
    }
}

fn component_token(w: &mut World, body: &Value) -> Value {
    if s(body, "component_appid") != w.cfg().component_appid {
        return err(40013);
    }
    if s(body, "component_appsecret") != w.cfg().component_secret {
        return err(40125);
    }
    match &w.component.ticket {
        Some((t, _)) if *t != s(body, "component_verify_ticket") => return err(61006),
        None => return err(61006),
        Some((_, at)) if w.now_ms >= at + TICKET_LIFETIME_MS => return err(61005),
        Some(_) => {}
    }
    let token = w.next_id("COMPONENT_TOKEN_");
    let lifetime = w.lifetime_ms();
    w.component.tokens.insert(token.clone(), w.now_ms + lifetime);
    json!({ "component_access_token": token, "expires_in": lifetime / 1000 })
}

fn pre_auth_code(w: &mut World) -> Value {
    let code = w.next_id("preauthcode@@@");
    w.component.pre_auth.insert(code.clone(), w.now_ms + PRE_AUTH_MS);
    json!({ "pre_auth_code": code, "expires_in": PRE_AUTH_MS / 1000 })
}

/// The authorization page: approves at once for the approving account and redirects to
/// `redirect_uri` with `auth_code` and `expires_in`, as WeChat does after the scan.
fn login_page(w: &mut World, r: &Recorded) -> Answer {
    if q(r, "component_appid") != w.cfg().component_appid {
        return Answer::Json(err(40013));
    }
    let pre = q(r, "pre_auth_code");
    match w.component.pre_auth.get(&pre) {
        Some(exp) if w.now_ms < *exp => {}
        _ => return Answer::Json(err(61011)),
    }
    let redirect = q(r, "redirect_uri");
    if redirect.is_empty() {
        return Answer::Json(err(40066));
    }
    let appid = w.component.approving.clone().unwrap_or_else(|| w.cfg().appid.clone());
    let code = w.component_auth_code(&appid);
    w.component.last_pre_auth = pre;
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let enc =
        |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
    Answer::Redirect(format!("{redirect}{sep}auth_code={}&expires_in={}", enc(&code), AUTH_CODE_MS / 1000))
}

fn func_info(scopes: &[u32]) -> Value {
    scopes.iter().map(|id| json!({ "funcscope_category": { "id": id } })).collect()
}

fn query_auth(w: &mut World, body: &Value) -> Value {
    let Some((appid, exp)) = w.component.codes.remove(&s(body, "authorization_code")) else {
        return err(61010);
    };
    if w.now_ms >= exp {
        return err(61010);
    }
    let refresh = w.next_id("refreshtoken@@@");
    let scopes = if w.component.scopes.is_empty() { vec![1, 15] } else { w.component.scopes.clone() };
    let tail = appid.chars().rev().take(8).collect::<String>().chars().rev().collect::<String>();
    let authorizer = w.component.authorizers.entry(appid.clone()).or_insert_with(|| FakeAuthorizer {
        appid: appid.clone(),
        refresh_token: String::new(),
        func_scopes: Vec::new(),
        nick_name: format!("authorizer {appid}"),
        user_name: format!("gh_{tail}"),
        principal_name: format!("Fake Company {tail}"),
    });
    authorizer.refresh_token = refresh.clone();
    authorizer.func_scopes = scopes.clone();
    let token = w.issue_token();
    json!({ "authorization_info": {
        "authorizer_appid": appid,
        "authorizer_access_token": token,
        "expires_in": w.lifetime_ms() / 1000,
        "authorizer_refresh_token": refresh,
        "func_info": func_info(&scopes),
    }})
}

fn authorizer_token(w: &mut World, body: &Value) -> Value {
    let appid = s(body, "authorizer_appid");
    let rotate = w.component.rotate_refresh_tokens;
    let next_refresh = rotate.then(|| w.next_id("refreshtoken@@@"));
    let Some(a) = w.component.authorizers.get_mut(&appid) else { return err(61003) };
    if a.refresh_token != s(body, "authorizer_refresh_token") {
        return err(61023);
    }
    if let Some(r) = next_refresh {
        a.refresh_token = r;
    }
    let refresh = a.refresh_token.clone();
    let token = w.issue_token();
    json!({ "authorizer_access_token": token, "expires_in": w.lifetime_ms() / 1000, "authorizer_refresh_token": refresh })
}

fn authorizer_info(w: &mut World, body: &Value) -> Value {
    let Some(a) = w.component.authorizers.get(&s(body, "authorizer_appid")) else { return err(61003) };
    json!({
        "authorizer_info": {
            "nick_name": a.nick_name,
            "head_img": format!("https://wx.qlogo.cn/fake/{}", a.appid),
            "service_type_info": { "id": 2 },
            "verify_type_info": { "id": 0 },
            "user_name": a.user_name,
            "principal_name": a.principal_name,
            "alias": "",
            "qrcode_url": format!("https://mmbiz.qpic.cn/fake/{}", a.appid),
            "business_info": { "open_pay": 0, "open_shake": 0, "open_scan": 0, "open_card": 0, "open_store": 0 },
        },
        "authorization_info": {
            "authorizer_appid": a.appid,
            "authorizer_refresh_token": a.refresh_token,
            "func_info": func_info(&a.func_scopes),
        },
    })
}

/// What a push to the authorization event URL was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The HTTP status.
    pub status: u16,
    /// The body (`success` when the server took it).
    pub body: String,
    /// The ticket pushed, or the authorization code of an `authorized` push.
    pub value: String,
}

impl super::FakePlatform {
    /// The third-party platform's appid.
    pub fn component_appid(&self) -> String {
        self.world().cfg().component_appid.clone()
    }

    /// The third-party platform's AppSecret.
    pub fn component_secret(&self) -> String {
        self.world().cfg().component_secret.clone()
    }

    /// The third-party platform's message Token.
    pub fn component_token(&self) -> String {
        self.world().cfg().component_token.clone()
    }

    /// The third-party platform's EncodingAESKey.
    pub fn component_aes_key(&self) -> String {
        self.world().cfg().component_aes_key.clone()
    }

    /// Whether each `api_authorizer_token` returns a new refresh token (retiring the old).
    pub fn rotate_refresh_tokens(&self, rotate: bool) {
        self.world().component.rotate_refresh_tokens = rotate;
    }

    /// The account the authorization page (and [`Self::push_authorized`]) authorizes
    /// (default: the platform's own account, [`Self::appid`]).
    pub fn set_approving_account(&self, appid: &str) {
        self.world().component.approving = Some(appid.to_owned());
    }

    /// The function scope ids an authorization grants (default `[1, 15]`).
    pub fn set_granted_scopes(&self, scopes: Vec<u32>) {
        self.world().component.scopes = scopes;
    }

    /// An authorization as the platform holds it (refresh token included).
    pub fn authorizer(&self, appid: &str) -> Option<FakeAuthorizer> {
        self.world().component.authorizers.get(appid).cloned()
    }

    /// The ticket last pushed.
    pub fn current_ticket(&self) -> Option<String> {
        self.world().component.ticket.as_ref().map(|(t, _)| t.clone())
    }

    /// Makes every component token issued so far invalid (40001).
    pub fn revoke_component_tokens(&self) {
        self.world().component.tokens.clear();
    }

    /// Issues an authorization code for `appid`, as if its administrator had approved on
    /// the authorization page (the code `api_query_auth` takes).
    pub fn authorization_code(&self, appid: &str) -> String {
        self.world().component_auth_code(appid)
    }

    /// WeChat's side of the component's callbacks: signs with the component's Token and
    /// encrypts with its key for the component appid. It seals the authorization pushes, and
    /// the messages for every authorizer (posted to `…/<authorizer appid>` with
    /// [`Platform::post`](wemp_proto::wechat::Platform::post) in safe mode), whose ReceiveId is
    /// the component appid too.
    ///
    /// # Panics
    /// When the configured component key is not a valid EncodingAESKey.
    pub fn component_platform(&self) -> wemp_proto::wechat::Platform {
        let cfg = self.world().cfg().clone();
        let cipher = wemp_proto::Cipher::new(&cfg.component_aes_key, &cfg.component_appid)
            .expect("the configured component EncodingAESKey is valid");
        wemp_proto::wechat::Platform::new(&cfg.component_token).with_cipher(cipher)
    }

    fn seal(&self, push: &ComponentPush) -> wemp_proto::wechat::SignedRequest {
        // The server judges freshness by its own clock: sign with the real time.
        let timestamp = wemp_proto::clock::Clock::now_ms(&wemp_proto::clock::SystemClock) / 1000;
        self.component_platform()
            .component_post(
                &push.to_xml(),
                &timestamp.to_string(),
                &rand::random::<u32>().to_string(),
                rand::random(),
            )
            .expect("a configured cipher seals")
    }

    /// Posts `event` to `url` (the authorization event URL) as WeChat does.
    ///
    /// # Panics
    /// When the configured component key is not a valid EncodingAESKey.
    pub async fn push_component_event(&self, url: &str, event: ComponentEvent) -> Pushed {
        let push = ComponentPush {
            component_appid: self.component_appid(),
            create_time: self.now_ms() / 1000,
            event,
        };
        let value = match &push.event {
            ComponentEvent::VerifyTicket { ticket } => ticket.expose().to_owned(),
            ComponentEvent::Authorized(g) | ComponentEvent::UpdateAuthorized(g) => {
                g.authorization_code.expose().to_owned()
            }
            _ => String::new(),
        };
        let req = self.seal(&push);
        let sep = if url.contains('?') { '&' } else { '?' };
        let answer = reqwest::Client::new()
            .post(format!("{url}{sep}{}", req.query_string()))
            .header("content-type", "text/xml")
            .body(req.body)
            .send()
            .await;
        match answer {
            Ok(resp) => {
                let status = resp.status().as_u16();
                Pushed { status, body: resp.text().await.unwrap_or_default(), value }
            }
            Err(e) => Pushed { status: 0, body: format!("push failed: {e}"), value },
        }
    }

    /// Issues a new `component_verify_ticket` (from now on the only one
    /// `api_component_token` accepts) and pushes it to `url`.
    pub async fn push_ticket(&self, url: &str) -> Pushed {
        let ticket = {
            let mut w = self.world();
            let t = w.next_id("ticket@@@");
            w.component.ticket = Some((t.clone(), w.now_ms));
            t
        };
        self.push_component_event(url, ComponentEvent::VerifyTicket { ticket: Secret::new(ticket) }).await
    }

    fn grant(&self, appid: &str) -> Grant {
        let code = self.authorization_code(appid);
        let w = self.world();
        Grant {
            authorizer_appid: appid.to_owned(),
            authorization_code: Secret::new(code),
            expires_at: (w.now_ms + AUTH_CODE_MS) / 1000,
            pre_auth_code: w.component.last_pre_auth.clone(),
        }
    }

    /// `appid` authorizes the platform: issues an authorization code and pushes
    /// `authorized` with it to `url` ([`Pushed::value`] is the code).
    pub async fn push_authorized(&self, url: &str, appid: &str) -> Pushed {
        let grant = self.grant(appid);
        self.push_component_event(url, ComponentEvent::Authorized(grant)).await
    }

    /// `appid` changes its authorization: pushes `updateauthorized` with a new code.
    pub async fn push_update_authorized(&self, url: &str, appid: &str) -> Pushed {
        let grant = self.grant(appid);
        self.push_component_event(url, ComponentEvent::UpdateAuthorized(grant)).await
    }

    /// `appid` withdraws its authorization: its refresh token stops working, then
    /// `unauthorized` is pushed to `url`.
    pub async fn push_unauthorized(&self, url: &str, appid: &str) -> Pushed {
        self.world().component.authorizers.remove(appid);
        let event = ComponentEvent::Unauthorized { authorizer_appid: appid.to_owned() };
        self.push_component_event(url, event).await
    }
}
