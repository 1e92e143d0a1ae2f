//! 卡券 (cards and coupons) events: review results, a user getting, gifting, deleting,
//! redeeming or opening a card, member-card updates, stock alarms and coin-ledger orders.
//!
//! Fields follow the official page's samples and parameter tables. Where that page's
//! samples and tables disagree, or where older revisions of the page listed a field the
//! current one does not, the field is an `Option` and its documentation says so.
//! A card event whose fields do not decode still arrives, as [`super::Event::Unknown`].
//!
//! Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>

use crate::field::top_level;

top_level! {
    /// A card passed review (`card_pass_check`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct CardPassCheck ["event", "card_pass_check"] {
        /// The card (the card type, not one user's copy).
        "CardId" => card_id: String,
        /// The documentation's sample shows a refusal reason for both review events, its
        /// table only for a refusal: optional.
        "RefuseReason" => refuse_reason: Option<String>,
    }

    /// A card failed review (`card_not_pass_check`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct CardNotPassCheck ["event", "card_not_pass_check"] {
        /// The card.
        "CardId" => card_id: String,
        /// Why the card was refused (optional: not marked required in the documentation).
        "RefuseReason" => refuse_reason: Option<String>,
    }

    /// A user got a card (`user_get_card`), directly, as a friend's gift, or by restoring a
    /// deleted member card. `FromUserName` is the user who got it.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserGetCard ["event", "user_get_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// 1 when the card was a friend's gift, 0 otherwise.
        "IsGiveByFriend" => is_give_by_friend: Option<u32>,
        /// The user's code for this card (custom or not).
        "UserCardCode" => user_card_code: String,
        /// The giver's OpenID when `IsGiveByFriend` is 1 (sent empty otherwise).
        "FriendUserName" => friend_user_name: Option<String>,
        /// The integer channel value of older revisions of the documentation (superseded by
        /// `OuterStr`; still in the samples, usually 0).
        "OuterId" => outer_id: Option<i64>,
        /// The code before a gift: WeChat changes the code when a card changes hands.
        "OldUserCardCode" => old_user_card_code: Option<String>,
        /// The channel value set when the card was issued (QR code, `addCard`), for
        /// statistics. Reported absent when the user restores a member card.
        "OuterStr" => outer_str: Option<String>,
        /// 1 when the user restored a member card they had deleted, 0 otherwise.
        "IsRestoreMemberCard" => is_restore_member_card: Option<u32>,
        /// 1 when a friend recommended the card, 0 otherwise (in the sample, not in the
        /// parameter table).
        "IsRecommendByFriend" => is_recommend_by_friend: Option<u32>,
        /// The user's UnionID, when the account has one for them.
        "UnionId" => union_id: Option<String>,
    }

    /// A user gave a card away (`user_gifting_card`). `FromUserName` is the giver.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserGiftingCard ["event", "user_gifting_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The giver's code for this card.
        "UserCardCode" => user_card_code: String,
        /// 1 when the gift came back to the giver (not accepted), 0 otherwise.
        "IsReturnBack" => is_return_back: Option<u32>,
        /// The receiver's OpenID. Optional: a gift to a group chat has no single receiver
        /// when it is made.
        "FriendUserName" => friend_user_name: Option<String>,
        /// 1 when the card was given in a group chat, 0 otherwise.
        "IsChatRoom" => is_chat_room: Option<u32>,
    }

    /// A user deleted a card (`user_del_card`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserDelCard ["event", "user_del_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card.
        "UserCardCode" => user_card_code: String,
    }

    /// A card was redeemed (`user_consume_card`). `FromUserName` is the card's holder.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserConsumeCard ["event", "user_consume_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The redeemed code.
        "UserCardCode" => user_card_code: String,
        /// How it was redeemed: `FROM_API`, `FROM_MP` (platform console) or
        /// `FROM_MOBILE_HELPER` (the merchant helper app), as documented; expect others.
        "ConsumeSource" => consume_source: String,
        /// The store's name; only for self-service and pay redemptions.
        "LocationName" => location_name: Option<String>,
        /// The OpenID of the staff member who redeemed it; only through the merchant helper.
        "StaffOpenId" => staff_open_id: Option<String>,
        /// The verification code the user typed, for self-service redemption.
        "VerifyCode" => verify_code: Option<String>,
        /// The amount note the user typed, for self-service redemption: free text, not a
        /// number.
        "RemarkAmount" => remark_amount: Option<String>,
        /// The channel value the developer passed when redeeming, for statistics.
        "OuterStr" => outer_str: Option<String>,
        /// The store's id. Not in the current parameter table (an older revision listed it,
        /// and real deliveries carry it, often as 0).
        "LocationId" => location_id: Option<u64>,
        /// The merchant's order number. Only in an older revision of the documentation.
        "OutTradeNo" => out_trade_no: Option<String>,
        /// The WeChat Pay transaction id. Only in an older revision of the documentation.
        "TransId" => trans_id: Option<String>,
    }

    /// A user paid through a card's pay cell, 买单 (`user_pay_from_pay_cell`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserPayFromPayCell ["event", "user_pay_from_pay_cell"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card.
        "UserCardCode" => user_card_code: String,
        /// The WeChat Pay transaction id (documented as present only for pay redemptions;
        /// it exceeds 64 bits, so it stays text).
        "TransId" => trans_id: Option<String>,
        /// The store's id (documented as present only for helper and pay redemptions).
        "LocationId" => location_id: Option<u64>,
        /// Amount paid, in fen (1/100 yuan). The documentation's sample sends it as CDATA
        /// text and it is written back that way; bare numbers parse too.
        "Fee" => fee: u64 [cdata],
        /// Amount due before discounts, in fen; CDATA text like `Fee`.
        "OriginalFee" => original_fee: u64 [cdata],
    }

    /// A user opened a member card (`user_view_card`); sent only for cards created with
    /// `need_push_on_view`.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserViewCard ["event", "user_view_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card.
        "UserCardCode" => user_card_code: String,
        /// The channel value of the QR code the card was opened from, if any.
        "OuterStr" => outer_str: Option<String>,
    }

    /// A user opened the account's chat from a card (`user_enter_session_from_card`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UserEnterSessionFromCard ["event", "user_enter_session_from_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card (may arrive empty).
        "UserCardCode" => user_card_code: String,
    }

    /// A member card's points or balance changed (`update_member_card`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct UpdateMemberCard ["event", "update_member_card"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card.
        "UserCardCode" => user_card_code: String,
        /// The change in points (negative when points were spent).
        "ModifyBonus" => modify_bonus: i64,
        /// The change in balance (negative when spent); the documentation gives no unit.
        "ModifyBalance" => modify_balance: i64,
    }

    /// A card is running out of stock (`card_sku_remind`); WeChat sends it at most every 12
    /// hours per card.
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct CardSkuRemind ["event", "card_sku_remind"] {
        /// The card.
        "CardId" => card_id: String,
        /// What the alarm is about, e.g. `the card's quantity is equal to 0`.
        "Detail" => detail: String,
    }

    /// The account's coupon coins (券点) changed (`card_pay_order`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct CardPayOrder ["event", "card_pay_order"] {
        /// The order this push is about (digits, sent as text).
        "OrderId" => order_id: String,
        /// `ORDER_STATUS_WAITING`, `ORDER_STATUS_SUCC`, `ORDER_STATUS_FINANCE_SUCC`,
        /// `ORDER_STATUS_QUANTITY_SUCC`, `ORDER_STATUS_HAS_REFUND`,
        /// `ORDER_STATUS_REFUND_WAITING`, `ORDER_STATUS_ROLLBACK`, `ORDER_STATUS_HAS_RECEIPT`.
        "Status" => status: String,
        /// When the payment QR code was made (seconds). Optional: the parameter table names
        /// this field, but some copies of the sample carry a second `CreateTime` instead.
        "CreateOrderTime" => create_order_time: Option<i64>,
        /// When the payment completed (seconds; 0 when there was no payment).
        "PayFinishTime" => pay_finish_time: i64,
        /// How it was paid, usually a WeChat Pay top-up; often empty.
        "Desc" => desc: String,
        /// Free coins left. Sent as CDATA text, and written back that way; the documentation
        /// gives no type (integers in every sample).
        "FreeCoinCount" => free_coin_count: i64 [cdata],
        /// Paid coins left (CDATA text, as `FreeCoinCount`).
        "PayCoinCount" => pay_coin_count: i64 [cdata],
        /// Free coins changed by this order (CDATA text, as `FreeCoinCount`).
        "RefundFreeCoinCount" => refund_free_coin_count: i64 [cdata],
        /// Paid coins changed by this order (CDATA text, as `FreeCoinCount`).
        "RefundPayCoinCount" => refund_pay_coin_count: i64 [cdata],
        /// `ORDER_TYPE_SYS_ADD` (granted), `ORDER_TYPE_WXPAY` (top-up), `ORDER_TYPE_REFUND`
        /// (unused stock returned), `ORDER_TYPE_REDUCE` (exchanged for stock),
        /// `ORDER_TYPE_SYS_REDUCE` (deducted by the platform).
        "OrderType" => order_type: String,
        /// The platform's note on why the coins changed.
        "Memo" => memo: String,
        /// The invoice issued, if any (often empty).
        "ReceiptInfo" => receipt_info: String,
    }

    /// A user submitted the member-card activation form, or changed their member-card
    /// details (`submit_membercard_user_info`).
    ///
    /// Official reference: <https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Coupons_Vouchers_and_Cards_Event_Push_Messages.html>
    pub struct SubmitMembercardUserInfo ["event", "submit_membercard_user_info"] {
        /// The card.
        "CardId" => card_id: String,
        /// The user's code for this card.
        "UserCardCode" => user_card_code: String,
    }
}
