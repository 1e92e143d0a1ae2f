//! 电子发票 (e-invoice) events: a user authorized an invoice for an order.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Invoice/E_Invoice/Vendor_API_List.html>

use crate::field::top_level;

top_level! {
    /// A user authorized (or failed to authorize) an invoice for an order
    /// (`user_authorize_invoice`): send the order to the invoicing platform next.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Invoice/E_Invoice/Vendor_API_List.html>
    pub struct UserAuthorizeInvoice ["event", "user_authorize_invoice"] {
        /// The order authorized; one of this and `fail_order_id` is present.
        "SuccOrderId" => succ_order_id: Option<String>,
        /// The order whose authorization failed.
        "FailOrderId" => fail_order_id: Option<String>,
        /// The appid that asked for the authorization page.
        "AuthorizeAppId" => authorize_app_id: Option<String>,
        /// Where the user authorized: `web` (official account), `app`, `wxa` (mini program),
        /// `wap` (web page).
        "Source" => source: Option<String>,
    }
}
