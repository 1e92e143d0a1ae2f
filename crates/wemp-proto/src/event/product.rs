//! 扫一扫 (WeChat Scan) events: a user opened a product's home page by scanning its barcode
//! or QR code, entered the account's conversation from it, the location of that scan arrived
//! later, or a product submitted for review was judged.
//!
//! A user following the account from a product page arrives as a plain `subscribe` whose
//! `EventKey` names the code (`scanbarcode|…` or `scanimage|…`): see
//! [`super::Subscribe::event_key`].
//!
//! Fields follow the official page's samples and parameter tables; what the page marks as
//! sometimes absent (or leaves out of a sample) is an `Option`.
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Scan/Scan_QR_Code_Events_Push.html>

use crate::field::top_level;

top_level! {
    /// A user opened a product's home page (`user_scan_product`), by scanning its code or
    /// from a chat, Favorites or Moments.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Scan/Scan_QR_Code_Events_Push.html>
    pub struct UserScanProduct ["event", "user_scan_product"] {
        /// The code standard (`ean13`, `ean8`, `qrcode`, …).
        "KeyStandard" => key_standard: String,
        /// The code's content.
        "KeyStr" => key_str: String,
        /// The country set in the user's WeChat profile.
        "Country" => country: Option<String>,
        /// The province set in the user's WeChat profile.
        "Province" => province: Option<String>,
        /// The city set in the user's WeChat profile.
        "City" => city: Option<String>,
        /// 1 male, 2 female, 0 unknown.
        "Sex" => sex: Option<u32>,
        /// 1 opened by scanning the code, 2 from another place (chat, Favorites, Moments).
        "Scene" => scene: Option<u32>,
        /// The `extinfo` the merchant put in the code.
        "ExtInfo" => ext_info: Option<String>,
    }

    /// A user entered the account's conversation from a product's home page
    /// (`user_scan_product_enter_session`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Scan/Scan_QR_Code_Events_Push.html>
    pub struct UserScanProductEnterSession ["event", "user_scan_product_enter_session"] {
        /// The code standard.
        "KeyStandard" => key_standard: String,
        /// The code's content.
        "KeyStr" => key_str: String,
        /// The `extinfo` the merchant put in the code.
        "ExtInfo" => ext_info: Option<String>,
    }

    /// Where a product scan happened, pushed after the scan (`user_scan_product_async`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Scan/Scan_QR_Code_Events_Push.html>
    pub struct UserScanProductAsync ["event", "user_scan_product_async"] {
        /// The code standard.
        "KeyStandard" => key_standard: String,
        /// The code's content.
        "KeyStr" => key_str: String,
        /// The `extinfo` the merchant put in the code.
        "ExtInfo" => ext_info: Option<String>,
        /// The user's location as a Chinese administrative division code (e.g. `440105`).
        "RegionCode" => region_code: String,
    }

    /// A product submitted for review was judged (`user_scan_product_verify_action`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Scan/Scan_QR_Code_Events_Push.html>
    pub struct UserScanProductVerifyAction ["event", "user_scan_product_verify_action"] {
        /// The code standard.
        "KeyStandard" => key_standard: String,
        /// The code's content.
        "KeyStr" => key_str: String,
        /// `verify_ok` or `verify_not_pass`.
        "Result" => result: String,
        /// Why it did not pass (empty when it did).
        "ReasonMsg" => reason_msg: Option<String>,
    }
}
