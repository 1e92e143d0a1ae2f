//! 门店 (store) and Wi-Fi events: a store submitted through the store API was reviewed, and a
//! user connected to a store's WeChat Wi-Fi.

use crate::field::top_level;

top_level! {
    /// A store (POI) submitted for review was judged (`poi_check_notify`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/WeChat_Stores/WeChat_Store_Interface.html>
    pub struct PoiCheckNotify ["event", "poi_check_notify"] {
        /// The merchant's own id for the store (the `sid` it was created with).
        "UniqId" => uniq_id: String,
        /// WeChat's id of the store (kept as text: the API returns it as a string).
        "PoiId" => poi_id: Option<String>,
        /// `succ` or `fail`.
        "Result" => result: String,
        /// The success notice or the reason for rejection.
        "Msg" => msg: Option<String>,
    }

    /// A user connected to a store's WeChat Wi-Fi (`WifiConnected`).
    ///
    /// The store's id is documented as `ShopId`; some peers read it as `PlaceId` (an older
    /// name): both are read, as options.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/service/en/WiFi_via_WeChat/Sending_messages_after_connection.html>
    pub struct WifiConnected ["event", "WifiConnected"] {
        /// When the user connected (seconds).
        "ConnectTime" => connect_time: i64,
        /// Reserved by WeChat (0).
        "ExpireTime" => expire_time: Option<i64>,
        /// Reserved by WeChat.
        "VendorId" => vendor_id: Option<String>,
        /// The store's `shop_id`.
        "ShopId" => shop_id: Option<String>,
        /// The store's id under its older name.
        "PlaceId" => place_id: Option<String>,
        /// The MAC address (BSSID) of the access point.
        "DeviceNo" => device_no: Option<String>,
    }
}
