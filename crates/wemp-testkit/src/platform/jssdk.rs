//! The JS-SDK's jsapi_ticket (`ticket/getticket?type=jsapi`); other ticket types are 40097 here
//! unless an area before this one (cards) answers them.

use serde_json::{Value, json};

use super::support::{q, secs, with};
use super::{Answer, Recorded, World, err, ok};

/// The endpoints of this area; `None` for a path that is not one of them.
pub(super) fn dispatch(w: &mut World, path: &str, r: &Recorded, _: &Value) -> Option<Answer> {
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
        _ => return None,
    };
    Some(Answer::Json(v))
}
