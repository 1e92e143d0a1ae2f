//! Mini Program events that arrive on the message URL: a user entered the customer-service
//! conversation, and (for third-party platforms) the result of a code review.

use crate::field::top_level;

top_level! {
    /// A user entered a Mini Program's customer-service conversation
    /// (`user_enter_tempsession`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/customer-message/receive.html>
    pub struct UserEnterTempsession ["event", "user_enter_tempsession"] {
        /// The `session-from` of the contact button the user pressed.
        "SessionFrom" => session_from: Option<String>,
    }

    /// A Mini Program's code passed review (`weapp_audit_success`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/audit_event.html>
    pub struct WeappAuditSuccess ["event", "weapp_audit_success"] {
        /// When it passed (seconds).
        "SuccTime" => succ_time: i64,
    }

    /// A Mini Program's code failed review (`weapp_audit_fail`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/audit_event.html>
    pub struct WeappAuditFail ["event", "weapp_audit_fail"] {
        /// Why (may contain `<br>` line breaks).
        "Reason" => reason: String,
        /// When it failed (seconds).
        "FailTime" => fail_time: i64,
        /// Example screenshots: `media_id`s separated by `|`.
        "ScreenShot" => screen_shot: Option<String>,
    }

    /// A Mini Program's code review was postponed (`weapp_audit_delay`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/code/audit_event.html>
    pub struct WeappAuditDelay ["event", "weapp_audit_delay"] {
        /// Why.
        "Reason" => reason: String,
        /// When it was postponed (seconds).
        "DelayTime" => delay_time: i64,
    }
}
