//! The fake WeChat API platform (api.weixin.qq.com) on loopback.
