//! Operations: IP lists, the network check, quotas and `rid` lookup.

use serde_json::{Value, json};

use super::support::{s, secs, with};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, _: &Recorded, body: &Value) -> Option<Answer> {
    let v = match path {
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
        _ => return None,
    };
    Some(Answer::Json(v))
}
