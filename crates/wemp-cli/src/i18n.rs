//! The CLI's words in the user's language: English and Simplified Chinese, chosen by the
//! locale (`LC_ALL`, then `LC_MESSAGES`, then `LANG`, as POSIX orders them).
//!
//! Each message has one home here, [`Msg`], with both languages side by side, so a change
//! is made once and the two cannot drift apart. Placeholders are `{name}`, filled by
//! [`Msg::fill`]. The Chinese uses the words of WeChat's own console and docs (公众号,
//! 服务器配置, 令牌, 消息加解密密钥, 明文/兼容/安全模式).
//!
//! ```
//! use wemp_cli::i18n::{Lang, Msg};
//!
//! let zh = Lang::from_env(|k| (k == "LANG").then(|| "zh_CN.UTF-8".to_owned()));
//! assert_eq!(zh, Lang::Zh);
//! assert_eq!(Msg::TryLocally.get(Lang::En), "Try it locally (in another terminal):");
//! assert_eq!(Msg::TokenSaved.fill(zh, &[("path", &"a.toml")]), "令牌（Token）已生成并保存到 a.toml，下次启动保持不变。");
//! ```

use std::fmt::Display;

/// A language the CLI speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Simplified Chinese (`zh_CN`, `zh_SG`, `zh_Hans`, or a bare `zh`).
    Zh,
}

impl Lang {
    /// The language of a locale name such as `zh_CN.UTF-8`, `en_US.UTF-8`, `C` or `POSIX`:
    /// Simplified Chinese for `zh`, `zh_CN`, `zh_SG` and `zh_Hans…`, English otherwise
    /// (traditional Chinese locales get English rather than the wrong script).
    pub fn of_locale(locale: &str) -> Self {
        let name = locale.split(['.', '@']).next().unwrap_or_default().to_ascii_lowercase().replace('-', "_");
        match name.as_str() {
            "zh" | "zh_cn" | "zh_sg" => Self::Zh,
            n if n.starts_with("zh_hans") => Self::Zh,
            _ => Self::En,
        }
    }

    /// The language of the environment `env`: the first of `LC_ALL`, `LC_MESSAGES` and
    /// `LANG` that is set and not empty decides.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .find_map(|k| env(k).filter(|v| !v.is_empty()))
            .map_or(Self::En, |v| Self::of_locale(&v))
    }

    /// The language of this process's environment.
    pub fn detect() -> Self {
        Self::from_env(|k| std::env::var(k).ok())
    }
}

macro_rules! catalogue {
    ($($(#[$doc:meta])* $key:ident => $en:expr, $zh:expr;)*) => {
        /// A message of the CLI, in every language it speaks.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Msg {
            $($(#[$doc])* $key,)*
        }

        impl Msg {
            /// Every message, for tests that check the catalogue as a whole.
            pub const ALL: &'static [Self] = &[$(Self::$key),*];

            /// The message in `lang`, placeholders unfilled.
            pub const fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Self::$key, Lang::En) => $en, (Self::$key, Lang::Zh) => $zh,)*
                }
            }
        }
    };
}

catalogue! {
    // The setup screen `wemp serve` prints.
    /// `{title}` line: the server runs.
    Running => "wemp serve is running on {url} ({from}, {rules} rules)",
               "wemp serve 已在 {url} 运行（{from}，{rules} 条规则）";
    /// Where the config came from: a file.
    FromFile => "config {file}", "配置文件 {file}";
    /// Where the config came from: the file a first start just wrote (demo rules, Token).
    FromWritten => "config {file}, written now", "配置文件 {file}（刚生成）";
    /// Where the config came from: built in.
    FromBuiltIn => "built-in config", "内置配置";
    /// What to paste into the WeChat console (`{title}`: the account, or empty). The path is
    /// the one the official docs give since the 「开发接口管理」 module moved from the
    /// Official Account platform (mp.weixin.qq.com: 设置与开发 → 基本配置 → 服务器配置) to the
    /// WeChat Developer Platform: developers.weixin.qq.com/doc/subscription/guide/dev/migration.html
    /// (服务器配置 → 我的业务 → 公众号/服务号 → 基础信息) and
    /// developers.weixin.qq.com/doc/oplatform/developers/product/subscription_service/
    /// (基础信息 → 消息推送配置).
    PasteInto => "Paste into the WeChat Developer Platform{title} (developers.weixin.qq.com/platform → 我的业务 → 公众号/服务号 → 基础信息 → 消息推送配置):",
                 "请在微信开发者平台{title}填写（developers.weixin.qq.com/platform → 我的业务 → 公众号/服务号 → 基础信息 → 消息推送配置）：";
    /// What to paste into the WeCom admin console for a self-built app (`{title}`: the account,
    /// or empty; `{agentid}`: its AgentID). The path is the one WeCom's docs give for 接收消息
    /// (developer.work.weixin.qq.com/document/path/90238: 进入需要设置接收消息的目标应用，点击
    /// “接收消息”的“设置API接收”); WeCom callbacks are always encrypted, so there is no mode.
    WecomPasteInto => "Paste into the WeCom admin console{title} (work.weixin.qq.com → 应用管理 → the app with AgentID {agentid} → 接收消息 → 设置API接收):",
                      "请在企业微信管理后台{title}填写（work.weixin.qq.com → 应用管理 → AgentID 为 {agentid} 的应用 → 接收消息 → 设置API接收）：";
    /// What to paste for a WeCom account with no AgentID: a service provider's suite
    /// (第三方应用), whose callbacks are sealed for its SuiteID (`{suiteid}`, the account's
    /// `corpid`) and carry no AgentID — its 指令回调URL, set in the service provider admin's
    /// 回调配置 (developer.work.weixin.qq.com/document/path/97172: 指令回调URL, receiveid 为
    /// suiteid, AgentID 为空; path/97173: 第三方应用详情 → 回调配置). `{field}`: where the AgentID
    /// of an app of one's own corp would go.
    WecomSuitePasteInto => "Paste into the WeCom service provider admin{title} as the 指令回调URL of the third-party app (第三方应用) with SuiteID {suiteid} (open.work.weixin.qq.com → 应用管理 → the app → 回调配置); an app of your own corp needs {field}:",
                           "请在企业微信服务商管理后台{title}填写 SuiteID 为 {suiteid} 的第三方应用的指令回调URL（open.work.weixin.qq.com → 应用管理 → 该应用 → 回调配置）；若是本企业的自建应用，请设置 {field}：";
    /// What to paste into a Mini Program's admin console (`{title}`: the account, or empty).
    /// The path is the one of the current message-push guide
    /// (developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html:
    /// 「管理」-「开发管理」-「消息推送配置」; older consoles call it 开发 → 开发设置 → 消息推送).
    MiniprogramPasteInto => "Paste into the Mini Program admin console{title} (mp.weixin.qq.com → 管理 → 开发管理 → 消息推送配置):",
                            "请在小程序管理后台{title}填写（mp.weixin.qq.com → 管理 → 开发管理 → 消息推送配置）：";
    /// Field label: a Mini Program push's data format.
    FieldFormat => "数据格式", "数据格式";
    /// A Mini Program push's data format: wemp reads both.
    FormatEither => "XML or JSON (either: wemp reads the one the push uses)", "XML 或 JSON（任选：wemp 按推送的格式读取）";
    /// A Mini Program's replies go out through the customer-service API.
    MiniprogramReplies => "Mini Programs take no passive reply: wemp answers success at once and sends each reply through the customer-service API.",
                          "小程序不接受被动回复：wemp 先回 success，再通过客服消息接口发出每条回复。";
    /// A Mini Program without an AppSecret: its replies cannot be sent.
    MiniprogramNoSecret => "Mini Programs take no passive reply: wemp answers success and sends replies through the customer-service API, which needs this account's appsecret (unset: replies are only logged).",
                           "小程序不接受被动回复：wemp 先回 success，再通过客服消息接口发出回复，这需要本账号的 appsecret（未设置：回复只记入日志）。";
    /// The third-party platform's paste block.
    ComponentPasteInto => "Third-party platform {appid}: paste into the WeChat Open Platform (open.weixin.qq.com → 管理中心 → 第三方平台 → 开发资料):",
        "第三方平台 {appid}：请在微信开放平台填写（open.weixin.qq.com → 管理中心 → 第三方平台 → 开发资料）：";
    /// Field label: the authorization event URL.
    FieldAuthEventUrl => "授权事件接收 URL", "授权事件接收 URL";
    /// Field label: the authorizers' message URL.
    FieldAuthorizerUrl => "消息与事件接收 URL", "消息与事件接收 URL";
    /// Field label: the domain the authorization is started from (and redirected back to).
    FieldAuthStartDomain => "授权发起页域名", "授权发起页域名";
    /// Where the authorization's redirect lands.
    AuthorizedPageAt => "After an authorization the browser returns to {url} (the default --redirect of wemp component authorize-url with console.public_url set)",
        "授权完成后浏览器回到 {url}（设置了 console.public_url 时 wemp component authorize-url 的默认 --redirect）";
    /// The command that starts an authorization.
    AuthorizeWith => "To authorize an account, open the link this prints (after WeChat's first ticket push): {command}",
        "授权一个账号：打开此命令输出的链接（在微信首次推送 ticket 之后）：{command}";
    /// Where the component's Token and key are.
    ComponentSecrets => "Token and 消息加解密 Key: [component] token and aes_key in the config",
        "消息校验 Token 与消息加解密 Key：配置中 [component] 的 token 与 aes_key";
    /// The account a paste block is for.
    ForAccount => " for {name}", "为 {name} ";
    /// Field label: the callback URL.
    FieldUrl => "URL", "服务器地址（URL）";
    /// Field label: the Token.
    FieldToken => "Token", "令牌（Token）";
    /// Field label: the EncodingAESKey.
    FieldAesKey => "EncodingAESKey", "消息加解密密钥";
    /// Field label: the mode.
    FieldMode => "消息加解密方式", "消息加解密方式";
    /// A secret not printed off a terminal, and the file it is in.
    SecretIn => "(not shown: output is not a terminal; it is {field} in {file})",
                "（输出不是终端，不显示：见 {file} 中的 {field}）";
    /// A secret not printed off a terminal, and where it came from.
    SecretFrom => "(not shown: output is not a terminal; set by {origin})",
                  "（输出不是终端，不显示：由 {origin} 设置）";
    /// The EncodingAESKey in plain mode.
    AnyKey => "(any: plain mode does not use it; click 随机生成)",
              "（任意：明文模式不使用它，点“随机生成”即可）";
    /// Plain mode.
    ModePlain => "明文模式 (plain)", "明文模式";
    /// Compatible mode.
    ModeCompatible => "兼容模式 (compatible)", "兼容模式";
    /// Safe mode.
    ModeSafe => "安全模式 (safe)", "安全模式";
    /// The label of a note.
    Note => "note:", "注意：";
    /// Only ports 80 and 443 are called.
    PortsNote => "WeChat calls only public hosts on ports 80/443: put this server behind a reverse proxy \
                  (docs/deploy.md) and set console.public_url (WEMP_PUBLIC_URL) to the URL it calls.",
                 "微信只调用公网主机的 80/443 端口：请把本服务放在反向代理之后（docs/zh-CN/deploy.md），\
                  并把 console.public_url（WEMP_PUBLIC_URL）设为微信调用的 URL。";
    /// The Token was generated.
    TokenSaved => "The Token was generated and saved to {path}; it stays the same on the next start.",
                  "令牌（Token）已生成并保存到 {path}，下次启动保持不变。";
    /// The command that tries the bot.
    TryLocally => "Try it locally (in another terminal):", "在本机试一试（另开一个终端）：";
    /// The console is off.
    ConsoleOff => "off (console.enabled = false)", "已关闭（console.enabled = false）";
    /// The console is open on loopback.
    ConsoleLoopback => "{url} (this machine only)", "{url}（仅限本机）";
    /// The console asks for the admin token.
    ConsoleToken => "{url} (asks once for the admin token: console.token / WEMP_CONSOLE_TOKEN)",
                    "{url}（首次打开时输入管理令牌：console.token / WEMP_CONSOLE_TOKEN）";
    /// The label of a console that is off for safety.
    ConsoleOffLabel => "off:", "已关闭：";
    /// The console is off for safety.
    ConsoleNoToken => "listening beyond loopback without an admin token; set WEMP_CONSOLE_TOKEN (or console.token) to open {url}",
                      "监听地址不只本机，且没有管理令牌；设置 WEMP_CONSOLE_TOKEN（或 console.token）后可打开 {url}";
    /// The console line.
    Console => "Web console (chat as a user, live log, setup): {console}",
               "网页控制台（以粉丝身份聊天、实时日志、接入配置）：{console}";
    /// Late replies go through the API.
    LateApi => "customer-service API", "客服消息接口";
    /// Late replies are only logged.
    LateLogged => "logged only (no appsecret)", "仅记入日志（未配置 AppSecret）";
    /// Dedup in Redis.
    DedupRedis => "redis", "Redis";
    /// Dedup in memory.
    DedupMemory => "memory", "内存";
    /// The message-log line.
    MessageLog => "Message log: {log} (read it with `{command}`). Dedup: {dedup}. Late replies: {late}.",
                  "消息日志：{log}（用 `{command}` 查看）。去重：{dedup}。超时回复：{late}。";
    /// The metrics line.
    Metrics => "Metrics: {url}", "指标：{url}";
    /// Rules reload on file change.
    ReloadFile => "Rules reload when {file} changes or on SIGHUP.", "{file} 变化或收到 SIGHUP 时重新加载规则。";
    /// Rules reload on SIGHUP.
    ReloadHup => "Rules reload on SIGHUP.", "收到 SIGHUP 时重新加载规则。";
    /// How to stop.
    Stop => "Stop with Ctrl-C.", "按 Ctrl-C 停止。";

    // `wemp serve` failing to start.
    /// The address is taken.
    CannotListen => "cannot listen on {addr}: {error} (another server running? choose another with --listen)",
                    "无法监听 {addr}：{error}（已有服务在运行？用 --listen 换一个地址）";
    /// The message log cannot be opened.
    CannotOpenLog => "cannot open the message log ({log}): {error}",
                     "无法打开消息日志（{log}）：{error}";
    /// Redis does not answer at start-up.
    RedisAtStart => "Redis at {url}: {error} (`wemp doctor` checks the setup)",
                    "Redis（{url}）：{error}（`wemp doctor` 可以检查配置）";

    // `wemp sim`: the verdicts.
    /// The verification GET sent.
    VerifySent => "GET {url} (signature, timestamp, nonce, echostr={echostr})",
                  "GET {url}（signature、timestamp、nonce，echostr={echostr}）";
    /// The verification passes.
    VerifyOk => "the server echoed echostr: WeChat will accept this URL and Token",
                "服务器原样返回了 echostr：微信会接受这个 URL 和令牌（Token）";
    /// The verification fails.
    VerifyFails => "verification fails; WeChat's console would say the Token check failed:",
                   "验证失败；微信后台会提示“token验证失败”：";
    /// The label of a warning.
    WarningLabel => "warning:", "警告：";
    /// A message sent (`{what}` the message, `{mode}`, `{id}` its MsgId or empty).
    SimSent => "→ {what} ({mode} mode{id}) to {url}", "→ {what}（{mode}{id}）发往 {url}";
    /// The MsgId part of [`Msg::SimSent`].
    SimMsgId => ", MsgId {id}", "，MsgId {id}";
    /// A try of a delivery.
    SimTry => "  try {n}: {what} in {elapsed}", "  第 {n} 次：{what}，用时 {elapsed}";
    /// A try with no answer in time (`{timeout}` like `5s`).
    ExchangeTimeout => "no answer within {timeout}", "{timeout} 内无应答";
    /// A try whose connection failed.
    ExchangeConnect => "connection failed: {error}", "连接失败：{error}";
    /// A try whose TLS failed on the certificate.
    ExchangeTlsCertificate => "TLS failed: {error} (the server's certificate is not trusted; for a staging server \
                               with a self-signed certificate, add --insecure)",
                              "TLS 失败：{error}（服务器的证书不受信任；使用自签名证书的测试服务器请加 --insecure）";
    /// A try whose TLS failed otherwise.
    ExchangeTls => "TLS failed: {error} (does the server speak HTTPS on that port?)",
                   "TLS 失败：{error}（该端口上的服务器是否使用 HTTPS？）";
    /// An HTTP answer.
    ExchangeHttp => "HTTP {status}, {n} bytes", "HTTP {status}，{n} 字节";
    /// An HTTP error answer with the server's reason.
    ExchangeHttpSaid => "HTTP {status}, {n} bytes: {reason}", "HTTP {status}，{n} 字节：{reason}";
    /// The server answered `success` or nothing.
    NoReply => "no reply (success)", "不回复（success）";
    /// A Mini Program's `success`: its replies go through the customer-service API.
    MiniprogramSuccess => "success: a Mini Program's replies reach the user through the customer-service API",
        "success：小程序的回复经客服消息接口发给用户";
    /// A reply of a type (`{kind}`), `{enc}` when encrypted.
    ReplyOf => "{kind} reply{enc}", "{kind} 回复{enc}";
    /// The encrypted part of [`Msg::ReplyOf`].
    Encrypted => ", encrypted", "，已加密";
    /// WeChat refuses the reply.
    ReplyRefused => "WeChat would refuse this reply; the user sees \"{banner}\":",
                    "微信会拒绝这个回复；用户看到“{banner}”：";
    /// What the user sees when WeChat gives up.
    UserWouldSee => "  The user would see \"{banner}\"", "  用户会看到“{banner}”";
    /// A delivery with no usable answer (`{last}`: the last try).
    AllTriesFailed => "all {n} tries failed (last: {last})", "{n} 次尝试全部失败（最后一次：{last}）";
    /// The request could not be signed.
    CannotSign => "cannot sign the request: {error}", "无法签名请求：{error}";
    /// Reply problem: To and From swapped.
    ProblemSwapped => "wrong direction: ToUserName/FromUserName are swapped (a reply goes To the user {openid} From the account {account})",
        "方向错误：ToUserName 和 FromUserName 写反了（回复的 ToUserName 是用户 {openid}，FromUserName 是公众号 {account}）";
    /// Reply problem: the wrong ToUserName.
    ProblemWrongTo => "wrong direction: ToUserName is {found:?}, expected the user's OpenID {expected:?}",
        "方向错误：ToUserName 是 {found:?}，应为用户的 OpenID {expected:?}";
    /// Reply problem: the wrong FromUserName.
    ProblemWrongFrom => "wrong direction: FromUserName is {found:?}, expected the account's original id {expected:?}",
        "方向错误：FromUserName 是 {found:?}，应为公众号的原始 ID {expected:?}";
    /// Reply problem: too many (or no) articles.
    ProblemArticles => "news article limits: news reply has {count} articles; {limit} allowed when answering {what}",
        "图文消息超出条数限制：回复了 {count} 篇图文，回复{what}时最多 {limit} 篇";
    /// What a reply answers: a message.
    AnsweringMessage => "a user's message", "用户消息";
    /// What a reply answers: an event.
    AnsweringEvent => "an event", "事件";
    /// Reply problem: an empty required field.
    ProblemEmptyField => "invalid reply: <{field}> must not be empty", "回复无效：<{field}> 不能为空";
    /// Reply problem: a character XML cannot carry.
    ProblemInvalidChar => "invalid reply: <{field}> contains {ch}, which XML cannot carry",
        "回复无效：<{field}> 含有 XML 无法表示的字符 {ch}";
    /// Reply problem: plain reply to a safe-mode request.
    ProblemNotEncrypted => "the request came in safe mode but the reply is not encrypted",
        "请求是安全模式，回复却没有加密";
    /// Reply problem: encrypted reply to a plain request.
    ProblemEncrypted => "the request came in plain mode but the reply is encrypted",
        "请求是明文模式，回复却是加密的";
    /// Reply warning: CreateTime in milliseconds.
    ProblemCreateTimeMs => "CreateTime {t} is in milliseconds; the docs say seconds since the epoch (WeChat shows the reply anyway)",
        "CreateTime {t} 是毫秒；文档要求以秒为单位的时间戳（微信仍会显示这条回复）";
    /// Reply warning: CreateTime far from now.
    ProblemCreateTimeFar => "CreateTime {t} is more than an hour from now ({now}); the docs say the current time in seconds (WeChat shows the reply anyway)",
        "CreateTime {t} 与当前时间（{now}）相差超过一小时；文档要求当前时间的秒数（微信仍会显示这条回复）";
    /// Reply warning: a Mini Program's passive reply.
    ProblemMiniprogramPassive => "a Mini Program takes no passive reply but a transfer to customer service: WeChat drops this one and the user sees nothing; answer `success` and send it through the customer-service API (cgi-bin/message/custom/send)",
        "小程序只接受“转客服”这一种被动回复：微信会丢弃这条回复，用户什么也看不到；请回复 `success`，再通过客服消息接口（cgi-bin/message/custom/send）发送";
    /// An unreadable reply: bad signature.
    UnreadableSignature => "bad MsgSignature in the encrypted reply: sign sha1(sort(token, TimeStamp, Nonce, Encrypt)) over the reply's own TimeStamp and Nonce",
        "加密回复的 MsgSignature 不正确：应以回复自己的 TimeStamp 和 Nonce 计算 sha1(sort(token, TimeStamp, Nonce, Encrypt))";
    /// An unreadable reply: does not decrypt.
    UnreadableDecrypt => "the encrypted reply does not decrypt ({detail}); {code}", "加密回复无法解密（{detail}）；{code}";
    /// An unreadable reply: a bad envelope.
    UnreadableEnvelope => "invalid encrypted reply: {detail}", "加密回复格式无效：{detail}";
    /// An unreadable reply: not XML.
    UnreadableXml => "invalid XML in the reply ({detail}): {snippet:?}", "回复不是有效的 XML（{detail}）：{snippet:?}";
    /// An unreadable reply: not a passive reply.
    UnreadableNotReply => "not a valid passive reply ({detail}): {snippet:?}", "不是有效的被动回复（{detail}）：{snippet:?}";
    /// An unreadable reply: anything else.
    UnreadableOther => "unusable reply: {detail}", "无法使用的回复：{detail}";
    /// Verification: nothing answered.
    VerifyUnreachable => "{exchange} — is the server running at that URL?", "{exchange}——服务器在这个 URL 上运行吗？";
    /// Verification: not 200 (`{hint}` and `{said}` may be empty).
    VerifyWrongStatus => "wrong status: HTTP {status}, WeChat needs 200{hint}{said}",
        "状态码错误：HTTP {status}，微信要求 200{hint}{said}";
    /// Hint for a 404.
    Hint404 => " (wrong path? the URL must be the callback path exactly)", "（路径不对？URL 必须与回调路径完全一致）";
    /// Hint for a 401 or 403.
    Hint403 => " (the server refused the signature: does its Token match --token?)",
        "（服务器拒绝了签名：它的令牌（Token）与 --token 一致吗？）";
    /// Hint for a 405.
    Hint405 => " (the server does not answer GET on this path)", "（服务器在这个路径上不响应 GET）";
    /// Hint for a 5xx.
    Hint5xx => " (the server failed)", "（服务器出错了）";
    /// The server's own reason after a wrong status.
    ItSaid => "; it said: {reason}", "；服务器返回：{reason}";
    /// Verification: whitespace around echostr.
    VerifyWhitespace => "the body has whitespace around echostr ({body:?}); answer exactly the echostr value",
        "返回内容在 echostr 前后有空白（{body:?}）；请只返回 echostr 的值，不多不少";
    /// Verification: echostr quoted.
    VerifyQuoted => "echostr is quoted ({body}); answer the bare value as text/plain, not a JSON string",
        "echostr 带了引号（{body}）；请以 text/plain 返回不带引号的值，不要返回 JSON 字符串";
    /// Verification: echostr in XML.
    VerifyInXml => "echostr is wrapped in XML; answer the bare value as text/plain", "echostr 被包在 XML 里；请以 text/plain 只返回它的值";
    /// Verification: echostr in JSON.
    VerifyInJson => "echostr is wrapped in JSON; answer the bare value as text/plain", "echostr 被包在 JSON 里；请以 text/plain 只返回它的值";
    /// Verification: echostr and more.
    VerifyExtra => "the body contains echostr but also other text ({snippet:?}); answer exactly the echostr value",
        "返回内容含有 echostr，但还有别的文字（{snippet:?}）；请只返回 echostr 的值，不多不少";
    /// Verification: something else (`{what}`: the body, or [`Msg::EmptyBody`]).
    VerifyMismatch => "the server answered {what} instead of echostr: most likely a wrong token or a wrong signature computation (sha1 of token, timestamp and nonce sorted and joined)",
        "服务器返回的是 {what}，不是 echostr：多半是令牌（Token）不对，或签名算错了（token、timestamp、nonce 排序后拼接，再取 sha1）";
    /// An empty body.
    EmptyBody => "an empty body", "空内容";
    /// Verification: a WeCom app echoed the encrypted echostr.
    VerifyEchoedEncrypted => "the server echoed the encrypted echostr: a WeCom app must check msg_signature, decrypt echostr with the EncodingAESKey and answer the plaintext",
        "服务器原样返回了加密的 echostr：企业微信应用必须校验 msg_signature，用 EncodingAESKey 解密 echostr，再返回明文";
    /// Verification warning: not text/plain.
    VerifyContentType => "Content-Type is {ct:?}, not text/plain (WeChat only reads the body)",
        "Content-Type 是 {ct:?}，不是 text/plain（微信只读取返回内容）";
    /// `sim check` starts.
    Checking => "Checking {url} as WeChat would ({n} mode(s))", "以微信的方式检查 {url}（{n} 种模式）";
    /// `sim check`'s summary.
    ChecksSummary => "checks: {pass} pass, {fail} fail, {warn} warn, {skip} skipped",
                     "检查：{pass} 项通过，{fail} 项失败，{warn} 项警告，{skip} 项跳过";
    /// An encrypted mode without the key.
    ModeNeedsKey => "{mode} mode needs --aes-key and --appid", "{mode}需要 --aes-key 和 --appid";
    // `sim check`'s checks (`{mode}`: the mode, see `mode_name`) and their notes.
    /// Check: the URL verification.
    CheckHandshake => "handshake (GET echostr)", "URL 验证（GET echostr）";
    /// Check: the rest, skipped.
    CheckRemaining => "remaining checks", "其余检查";
    /// Why the rest is skipped.
    CheckUnreachable => "server unreachable", "服务器无法访问";
    /// Check: a verification with a forged signature.
    CheckForgedHandshake => "handshake with a forged signature is refused", "伪造签名的 URL 验证被拒绝";
    /// A forged verification was answered (`{param}`: `signature` or `msg_signature`).
    CheckForgedEchoed => "answered a forged request: echoed echostr for a wrong signature; the server does not check `{param}`",
        "应答了伪造的请求：签名错误却原样返回了 echostr，说明服务器没有校验 `{param}`";
    /// Check: every type in a mode (skipped as a whole).
    CheckAllTypes => "{mode}: all types", "{mode}：所有类型";
    /// Check: a mode is refused because the server requires encryption.
    CheckRequiresEncryption => "{mode}: server requires encryption", "{mode}：服务器要求加密";
    /// A WeCom app's server answered a request WeCom never sends.
    CheckWecomAnswered => "the server answered a {mode} request signed as an Official Account's; WeCom sends every callback encrypted with msg_signature only, and its server must refuse anything else",
        "服务器应答了按公众号方式签名的{mode}请求；企业微信的每个回调都是加密的、只带 msg_signature，服务器必须拒绝其他请求";
    /// Check: one message or event type (`{what}`: `text`, `event CLICK` …).
    CheckType => "{mode}: {what}", "{mode}：{what}";
    /// A timeout's consequence.
    CheckSlow => "WeChat waits {timeout} per try, tries 3 times, then shows the user the error banner",
        "微信每次等待 {timeout}，共尝试 3 次，之后向用户显示出错提示";
    /// A mode refused, and safe mode too (the failures follow).
    CheckRefusedToo => "{mode} requests are refused ({said}), and so are safe ones:",
        "{mode}请求被拒绝（{said}），安全模式的请求也被拒绝：";
    /// A mode refused while safe mode is answered.
    CheckRefused => "{mode} requests are refused: {said}", "{mode}请求被拒绝：{said}";
    /// A Mini Program's `success`.
    CheckMiniprogramSuccess => "success: replies go through the customer-service API", "success：回复通过客服消息接口发出";
    /// No reply.
    CheckNoReply => "no reply", "无回复";
    /// A reply of a type (`{type}`: `text`, `news` …).
    CheckReply => "{type} reply", "{type} 回复";
    /// Check: a retry of the same MsgId.
    CheckRetry => "{mode}: a retry of the same MsgId gets the same reply", "{mode}：同一 MsgId 的重试得到相同的回复";
    /// The retry got another reply.
    CheckRetryDiffers => "the retry got a different reply ({first} then {second}): deduplicate by FromUserName + MsgId and answer retries with the first reply",
        "重试得到了不同的回复（先是 {first}，后是 {second}）：请按 FromUserName + MsgId 去重，对重试返回第一次的回复";
    /// A failure of the retry.
    CheckRetryFailed => "retry: {reason}", "重试：{reason}";
    /// Check: the refusals as a whole (when they cannot run).
    CheckRefusals => "{mode}: refusals", "{mode}：拒绝非法请求";
    /// The request could not be signed.
    CheckCannotSign => "cannot sign", "无法签名";
    /// Check: a wrong `signature`.
    CheckWrongSignature => "{mode}: a wrong signature is refused", "{mode}：错误的 signature 被拒绝";
    /// Check: no signature at all.
    CheckNoSignature => "{mode}: a request without signature is refused", "{mode}：不带签名的请求被拒绝";
    /// Check: a wrong `msg_signature`.
    CheckWrongMsgSignature => "{mode}: a wrong msg_signature is refused", "{mode}：错误的 msg_signature 被拒绝";
    /// Check: an Encrypt that does not decrypt.
    CheckUndecryptable => "{mode}: an Encrypt that does not decrypt is refused", "{mode}：无法解密的 Encrypt 被拒绝";
    /// Check: malformed XML.
    CheckMalformed => "{mode}: a malformed body is refused", "{mode}：格式错误的消息体被拒绝";
    /// Check: a replay.
    CheckReplay => "{mode}: a day-old timestamp is refused (replay)", "{mode}：一天前的时间戳被拒绝（重放）";
    /// The forged request: a wrong `signature`.
    ForgedSignature => "bad signature, so the server does not check `signature`", "签名错误，说明服务器没有校验 `signature`";
    /// The forged request: no signature.
    ForgedNoSignature => "no signature at all", "完全没有签名的请求";
    /// The forged request: a wrong `msg_signature`.
    ForgedMsgSignature => "bad msg_signature, so the server does not check `msg_signature`",
        "msg_signature 错误，说明服务器没有校验 `msg_signature`";
    /// The forged request: an Encrypt that does not decrypt.
    ForgedUndecryptable => "undecryptable Encrypt", "无法解密的 Encrypt";
    /// The forged request: malformed XML.
    ForgedMalformed => "malformed XML", "格式错误的 XML";
    /// The forged request: a replay.
    ForgedReplay => "a replayed request with a day-old timestamp", "带一天前时间戳的重放请求";
    // `wemp bench`'s report (`{label}` lines keep their columns: each label is padded by the code).
    /// The report's head line (`{mode}`: the mode's word).
    BenchHead => "{url} ({mode} mode, concurrency {c})", "{url}（{mode}，并发 {c}）";
    /// Label: the requests.
    BenchRequestsLabel => "requests", "请求";
    /// The requests sent and answered.
    BenchRequests => "{n} in {secs}s, {ok} ok", "{secs} 秒内 {n} 个，{ok} 个成功";
    /// Label: the throughput.
    BenchThroughputLabel => "throughput", "吞吐量";
    /// Requests per second.
    BenchThroughput => "{rps} requests/s", "每秒 {rps} 个请求";
    /// Label: the latency.
    BenchLatencyLabel => "latency", "延迟";
    /// Label: the failures.
    BenchErrorsLabel => "errors", "错误";
    /// No failure.
    BenchNoErrors => "none", "无";
    /// Label: one failure told in full.
    BenchExampleLabel => "e.g.", "例如";
    /// A request to refuse was answered without a reply.
    RefusedNoReply => "answered without a reply", "已应答，但没有回复";
    /// A forged request got a reply (`{what}`: the forged request).
    RefusedWithReply => "answered a forged request ({what}) with a reply", "对伪造的请求（{what}）给出了回复";
    /// A request to refuse was answered 2xx with a body.
    RefusedWithBody => "answered {what} with HTTP 2xx and a body; refuse it with a 4xx status",
        "对{what}返回了 HTTP 2xx 和内容；请用 4xx 状态码拒绝";

    // `wemp doctor`.
    /// Check name: the configuration.
    CheckConfig => "configuration", "配置";
    /// Check name: the Token.
    CheckToken => "token", "令牌（Token）";
    /// Check name: the appid.
    CheckAppid => "appid", "AppID";
    /// Check name: the EncodingAESKey.
    CheckAesKey => "EncodingAESKey", "消息加解密密钥（EncodingAESKey）";
    /// Check name: the public URL.
    CheckPublicUrl => "public URL", "公网地址";
    /// Check name: the message-log database.
    CheckDatabase => "message log database", "消息日志数据库";
    /// Check name: Redis.
    CheckRedis => "redis", "Redis";
    /// Check name: API access.
    CheckApi => "API access", "接口调用";
    /// Check name: the third-party platform's verify ticket.
    CheckTicket => "component_verify_ticket", "component_verify_ticket";
    /// Check name: the third-party platform's token.
    CheckComponentToken => "component_access_token", "component_access_token";
    /// A ticket arrived recently.
    TicketFresh => "received {age} ago", "{age}前收到";
    /// The ticket is late (WeChat pushes one every 10 minutes).
    TicketLate => "received {age} ago: WeChat pushes one every 10 minutes to the 授权事件接收 URL; is `wemp serve` reachable there?",
        "{age}前收到：微信每 10 分钟推送一次到授权事件接收 URL，请确认 `wemp serve` 在该地址可达";
    /// The ticket is older than its validity.
    TicketExpired => "received {age} ago: expired (valid about 12 hours); no component token can be fetched until the next push",
        "{age}前收到：已过期（有效期约 12 小时），下次推送前无法获取 component token";
    /// No ticket stored.
    TicketNone => "none stored yet: WeChat pushes one every 10 minutes to the 授权事件接收 URL once `wemp serve` answers there",
        "尚未收到：`wemp serve` 在授权事件接收 URL 应答后，微信每 10 分钟推送一次";
    /// The component token was fetched.
    ComponentTokenFetched => "fetched with the stored ticket", "已用保存的 ticket 获取";
    /// The title of the page after a successful authorization.
    AuthorizedTitle => "Authorization complete", "授权成功";
    /// The page after a successful authorization.
    AuthorizedBody => "{name} ({appid}) has authorized the third-party platform {component}. Its messages and \
                       events are served from now on; you can close this page.",
        "{name}（{appid}）已授权第三方平台 {component}。它的消息与事件从现在起由本服务处理，可以关闭此页面。";
    /// The title of the page after a failed authorization.
    AuthorizeFailedTitle => "Authorization not completed", "授权未完成";
    /// The redirect came without an authorization code.
    AuthorizeNoCode => "This page expects the auth_code WeChat adds after an authorization; none (or not a \
                        valid one) was given. Start the authorization again from the link you were sent.",
        "此页面需要微信在授权后附带的 auth_code，但没有收到（或格式不对）。请从收到的授权链接重新开始授权。";
    /// WeChat refused the authorization code.
    AuthorizeCodeRefused => "WeChat refused this authorization code: it expired or was already used (WeChat \
                             error {code}). Start the authorization again from the link you were sent.",
        "微信拒绝了此授权码：已过期或已被使用（微信错误码 {code}）。请从收到的授权链接重新开始授权。";
    /// The authorization could not be completed for another reason.
    AuthorizeFailed => "The authorization could not be completed: {error}. Try again in a few minutes; if it \
                        persists, tell the platform's operator.",
        "授权未能完成：{error}。请几分钟后重试；如果仍然失败，请联系平台运营方。";
    /// A check of one of several accounts.
    OfAccount => "accounts[{i}] {what}", "accounts[{i}] {what}";
    /// The configuration is valid.
    ConfigValid => "{source}: valid", "{source}：有效";
    /// No config file.
    BuiltInDefault => "built-in default", "内置默认配置";
    /// No account configured.
    NoAccount => "no account configured: `wemp serve` will generate a Token and save it",
                 "没有配置公众号：`wemp serve` 会生成令牌（Token）并保存";
    /// A good Token.
    TokenOk => "{n} characters, letters and digits", "{n} 个字符，字母和数字";
    /// A Token the console refuses.
    TokenBad => "{n} characters; the WeChat console accepts 3–32 letters and digits only",
                "{n} 个字符；公众号后台只接受 3–32 位字母和数字";
    /// No Token.
    TokenNone => "none configured: `wemp serve` will generate one and save it",
                 "未配置：`wemp serve` 会生成一个并保存";
    /// Check name: a WeCom app's corpid.
    CheckCorpid => "corpid", "企业 ID（corpid）";
    /// Check name: a WeCom app's AgentID.
    CheckAgentid => "AgentID", "AgentId";
    /// A corpid of the issued shape.
    CorpidOk => "{corpid} looks like a corpid", "{corpid} 是企业 ID 的格式";
    /// A corpid of another shape.
    CorpidOdd => "{corpid} is not ww or wx and 16 hex digits, the shape of a corpid (我的企业 → 企业信息); fine \
                  only for a service provider's suite id",
                 "{corpid} 不是 ww 或 wx 加 16 位十六进制数字，不像企业 ID（我的企业 → 企业信息）；只有服务商的 suite id 可以这样";
    /// No corpid.
    CorpidMissing => "missing: a WeCom app needs its corpid (我的企业 → 企业信息 → 企业ID)",
                     "缺少：企业微信应用需要企业 ID（我的企业 → 企业信息 → 企业ID）";
    /// A numeric AgentID.
    AgentidOk => "{agentid} is a number, as an AgentId is", "{agentid} 是数字，符合 AgentId 的格式";
    /// An AgentID that is not a number.
    AgentidBad => "{agentid:?} is not a number: the AgentId is on the app's page (应用管理 → the app)",
                  "{agentid:?} 不是数字：AgentId 在应用的页面上（应用管理 → 该应用）";
    /// No AgentID.
    AgentidMissing => "not set: right for a service provider's suite (第三方应用), whose callbacks are sealed for its SuiteID and carry none; an app of your own corp needs it, or late replies cannot go through message/send (应用管理 → the app → AgentId)",
                      "未设置：服务商的第三方应用如此即可（其回调按 SuiteID 加密，不带 AgentID）；本企业的自建应用则需要它，否则超时回复无法通过 message/send 发出（应用管理 → 该应用 → AgentId）";
    /// A Mini Program appid of another shape.
    AppidOdd => "{appid} is not wx and 16 hex digits, the shape of an appid", "{appid} 不是 wx 加 16 位十六进制数字，不像 AppID";
    /// A WeCom app without a key.
    AesKeyWecom => "a WeCom app is always encrypted: it needs the EncodingAESKey of its 接收消息 settings",
                   "企业微信应用的消息总是加密的：需要“接收消息”设置中的 EncodingAESKey";
    /// An appid.
    AppidOk => "{appid} looks like an appid", "{appid} 是 AppID 的格式";
    /// A missing appid that is needed.
    AppidMissing => "missing: encrypted modes and the API need the AppID (微信开发者平台 → 我的业务 → 基础信息)",
                    "缺少：兼容/安全模式和接口调用都需要 AppID（微信开发者平台 → 我的业务 → 基础信息）";
    /// A missing appid that is not needed.
    AppidSkip => "not set (plain mode works without it; encrypted modes and the API need it)",
                 "未设置（明文模式不需要；兼容/安全模式和接口调用需要）";
    /// A good key.
    AesKeyOk => "43 characters, decodes to a 32-byte AES key ({mode} mode)",
                "43 个字符，可解码为 32 字节的 AES 密钥（{mode}）";
    /// A missing key that is needed.
    AesKeyMissing => "{mode} mode needs the EncodingAESKey from the console",
                     "{mode}需要公众号后台的消息加解密密钥（EncodingAESKey）";
    /// A key not needed.
    AesKeySkip => "not needed in plain mode", "明文模式不需要";
    /// Listening on loopback without a public URL.
    PublicUrlLoopback => "listening on {listen} (this machine only) and no console.public_url: WeChat needs a public \
                          http(s) URL on port 80 or 443 (reverse proxy: docs/deploy.md)",
                         "监听 {listen}（仅限本机）且未设置 console.public_url：微信需要 80 或 443 端口上的公网 \
                          http(s) 地址（反向代理：docs/zh-CN/deploy.md）";
    /// A public URL without a scheme.
    PublicUrlScheme => "{url:?} must start with http:// or https://", "{url:?} 必须以 http:// 或 https:// 开头";
    /// A public URL on another port.
    PublicUrlPort => "{url}: WeChat calls only ports 80 and 443, not {port}", "{url}：微信只调用 80 和 443 端口，不会调用 {port}";
    /// A public URL on a host WeChat cannot reach.
    PublicUrlPrivate => "{url}: {host} is {what}; WeChat calls only public hosts (a domain name or a public IP)",
                        "{url}：{host} 是{what}；微信只调用公网主机（域名或公网 IP）";
    /// What a loopback address is.
    HostLoopback => "this machine (loopback)", "本机地址（loopback）";
    /// What a private address is.
    HostPrivate => "a private network address", "内网地址";
    /// What an unspecified address is.
    HostUnspecified => "not an address one can call", "不可调用的地址";
    /// The public path is not the callback path.
    PublicUrlPath => "WeChat will call the path {public} but wemp serves {callback}: set server.path = \"{public}\" \
                      (or make the reverse proxy rewrite the path)",
                     "微信会调用路径 {public}，但 wemp 在 {callback} 上提供服务：设置 server.path = \"{public}\"\
                      （或让反向代理改写路径）";
    /// A SQLite file to be created.
    DbNotYet => "{db}: not created yet; `wemp serve` will create it", "{db}：尚未创建；`wemp serve` 会创建它";
    /// A SQLite file that cannot be created.
    DbNotWritable => "{db}: cannot be created ({dir} is not writable)", "{db}：无法创建（{dir} 不可写）";
    /// The database answers.
    DbReachable => "{db}: reachable", "{db}：可以连接";
    /// The PostgreSQL schema does not exist yet.
    DbSchemaNotYet => "{db}: reachable; the schema does not exist yet, `wemp serve` will create it",
                      "{db}：可以连接；schema 尚不存在，`wemp serve` 会创建它";
    /// A PostgreSQL schema from a newer wemp.
    DbNewer => "{db}: schema version {version} was written by a newer wemp; upgrade wemp",
               "{db}：schema 版本 {version} 由更新版本的 wemp 写入；请升级 wemp";
    /// A store that does not answer in time.
    NoAnswerWithin => "{what}: no answer within {secs} s", "{what}：{secs} 秒内无应答";
    /// Redis is not configured.
    RedisSkip => "not configured: dedup stays in this process", "未配置：去重只在本进程内";
    /// Redis does not answer.
    RedisDown => "`wemp serve` still starts, but dedup stays in each process until Redis answers",
                 "`wemp serve` 仍会启动，但在 Redis 恢复之前去重只在各自进程内";
    /// A Redis that claims with `SET … NX … GET`.
    RedisClaimSetGet => "Redis {version}: a dedup claim is one SET … NX … GET",
                        "Redis {version}：去重占位是一条 SET … NX … GET";
    /// A Redis before 7.0.
    RedisBefore7 => "Redis {version} (before 7.0): dedup claims run a Lua script, as it refuses SET with NX and GET",
                    "Redis {version}（低于 7.0）：不支持 SET 同时带 NX 和 GET，去重占位改用 Lua 脚本";
    /// A Redis that evicts keys when full.
    RedisEvicts => "Redis evicts keys once it holds maxmemory ({bytes} bytes; maxmemory-policy {policy}): \
                    a dedup claim or reply it evicts lets WeChat's retry run the handler again; with noeviction \
                    a full Redis refuses writes instead, and wemp dedups in memory meanwhile",
                   "Redis 用满 maxmemory（{bytes} 字节；maxmemory-policy {policy}）后会淘汰键：\
                    被淘汰的去重占位或回复会让微信的重试再次运行处理程序；设为 noeviction 时，\
                    Redis 写满后拒绝写入，期间 wemp 改用内存去重";
    /// No AppSecret.
    ApiSkip => "no AppSecret (config file or WEMP_APPSECRET): late replies will only be logged",
               "没有 AppSecret（配置文件或 WEMP_APPSECRET）：超时回复只记入日志";
    /// Check name: the access token.
    CheckAccessToken => "access token", "access_token";
    /// Check name: an API call.
    CheckApiCall => "API call", "接口调用";
    /// Check name: the customer-service API.
    CheckKf => "customer-service API", "客服消息接口";
    /// Check name: a WeCom app's token.
    CheckWecomToken => "WeCom token (gettoken)", "企业微信 access_token（gettoken）";
    /// A WeCom token was fetched.
    WecomTokenFetched => "fetched with the corpid and the app's Secret", "已用企业 ID 和应用的 Secret 获取";
    /// The access token was fetched.
    TokenFetched => "fetched with the AppSecret", "已用 AppSecret 获取";
    /// The API did not answer in time.
    ApiNoAnswer => "no answer within {secs} s from the API", "接口 {secs} 秒内无应答";
    /// getcallbackip answered.
    CallbackIps => "getcallbackip answered ({n} WeChat callback ranges)", "getcallbackip 已应答（微信回调 IP 段 {n} 个）";
    /// getcallbackip did not answer.
    CallbackIpsNoAnswer => "no answer from getcallbackip", "getcallbackip 无应答";
    /// Customer-service messages are allowed.
    KfAllowed => "allowed: replies that miss the 5 s deadline can be sent later",
                 "可用：错过 5 秒时限的回复可以稍后发出";
    /// Customer-service messages are not allowed.
    KfUntilFixed => "until fixed, replies that miss the deadline are only logged",
                    "修复之前，错过时限的回复只记入日志";
    /// Check name: the daily quota of the APIs the server calls.
    CheckQuota => "API quota", "接口每日调用额度";
    /// One API's quota today.
    QuotaLine => "{path}: {used} of {limit} calls used today, {remain} left",
                 "{path}：今日已用 {used} 次，共 {limit} 次，剩余 {remain} 次";
    /// One API's quota could not be read.
    QuotaUnknown => "{path}: quota unknown ({error})", "{path}：额度未知（{error}）";
    /// When the quotas reset.
    QuotaResets => "quotas reset at 00:00 China time (16:00 UTC); an exhausted one stops late replies \
                    (45009) until then",
                   "额度在北京时间 0 点重置；用尽后，超时回复在重置之前无法发出（45009）";
    /// Something did not answer.
    NoAnswer => "no answer", "无应答";
    /// The API cannot be reached.
    ApiUnreachable => "{error} (is the API reachable from here? --api-base points elsewhere)",
                      "{error}（从这里能访问接口吗？--api-base 可指向别处）";
    /// errcode 40164.
    Err40164 => "WeChat refused this machine's IP address (40164): add this server's public outbound IP \
                 to the API IP whitelist (微信开发者平台 → 我的业务 → 基础信息 → API IP 白名单), then run \
                 `wemp doctor` again",
                "微信拒绝了本机的 IP 地址（40164）：把这台服务器的公网出口 IP 加入 IP 白名单\
                 （微信开发者平台 → 我的业务 → 基础信息 → API IP 白名单），再运行一次 `wemp doctor`";
    /// errcode 40125.
    Err40125 => "the AppSecret is wrong (40125): copy the current AppSecret from 微信开发者平台 → 我的业务 → 基础信息 \
                 (reset it if nobody knows it) into the config file or WEMP_APPSECRET",
                "AppSecret 不正确（40125）：从 微信开发者平台 → 我的业务 → 基础信息 复制当前的 AppSecret\
                 （没人知道时就重置）到配置文件或 WEMP_APPSECRET";
    /// errcode 40013.
    Err40013 => "the appid is wrong (40013): copy the AppID from 微信开发者平台 → 我的业务 → 基础信息",
                "AppID 不正确（40013）：从 微信开发者平台 → 我的业务 → 基础信息 复制 AppID";
    /// errcode 48001.
    Err48001 => "this account lacks the permission for this API (48001): check 微信开发者平台 → 我的业务 → 接口管理 → 接口权限与额度; \
                 customer-service messages and many others need a verified (认证) service account",
                "该公众号没有此接口的权限（48001）：查看 微信开发者平台 → 我的业务 → 接口管理 → 接口权限与额度；\
                 客服消息等许多接口需要已认证的服务号";
    /// errcode -1.
    ErrBusy => "WeChat is busy (-1): try again in a minute", "微信系统繁忙（-1）：一分钟后再试";
    /// errcode 45009.
    Err45009 => "the daily quota for this API is used up (45009): wait for the reset at midnight \
                 (Beijing time) or clear it in the console",
                "该接口今天的调用次数已用完（45009）：等北京时间零点重置，或在公众号后台清零";
    /// Another errcode, without a hint.
    ErrOther => "WeChat answered errcode {code}; look it up in the 全局返回码 page",
                "微信返回 errcode {code}；请在全局返回码页面查找";
    /// The summary line (`{pass}` …).
    DoctorSummary => "doctor: {pass} pass, {fail} fail, {warn} warn, {skip} skipped",
                     "doctor：{pass} 项通过，{fail} 项失败，{warn} 项警告，{skip} 项跳过";

    // The relay: `wemp serve --forward relay` and `wemp relay`.
    /// The setup screen's line naming the relay endpoint, at the public address.
    RelayEndpoint => "Relay: wemp relay {url} --to <your app's URL>",
                     "中继：wemp relay {url} --to <你的应用 URL>";
    /// The setup screen's line naming the relay endpoint, on this machine (no public URL set).
    RelayEndpointLocal => "Relay: wemp relay {url} --to <your app's URL>   (from another machine: this server's public address)",
                          "中继：wemp relay {url} --to <你的应用 URL>   （在其他机器上运行时换成本服务的公网地址）";
    /// `wemp relay` is connecting.
    RelayConnecting => "relay: connecting to {url} …", "中继：正在连接 {url} …";
    /// `wemp relay` is connected.
    RelayConnected => "relay: connected to {url}; each message goes to {to}",
                      "中继：已连接 {url}，每条消息转给 {to}";
    /// `wemp relay` lost its connection (`{why}`).
    RelayDisconnected => "relay: disconnected from {url} ({why}); messages get the fallback until it is back",
                         "中继：与 {url} 的连接已断开（{why}），恢复之前消息按 fallback_text 回复";
    /// `wemp relay` cannot connect (`{why}`) and retries.
    RelayRetry => "relay: cannot connect to {url} ({why}); retrying in {secs} s",
                  "中继：无法连接 {url}（{why}），{secs} 秒后重试";
    /// The server refused the relay (wrong secret, wrong URL): no retry.
    RelayRefused => "relay: {url} refused the connection (HTTP {status}: {why})",
                    "中继：{url} 拒绝了连接（HTTP {status}：{why}）";
    /// One message relayed.
    RelayForwarded => "relay: {key} → {to}: {outcome}", "中继：{key} → {to}：{outcome}";
    /// No secret for the relay.
    RelayNoSecret => "relay: set WEMP_FORWARD_SECRET to the server's gateway.forward_secret",
                     "中继：请把 WEMP_FORWARD_SECRET 设为服务端的 gateway.forward_secret";

    // The config check's problems (config.rs, rules.rs): each `ConfigProblem` and `RuleError`
    // keeps one of these with its parameters and is worded in the reader's language. Field
    // names and values stay verbatim; `{error}` is another library's own words.
    /// `--config` names a file without an account.
    SimNoAccount => "{file}: no [[accounts]] entry: give --token", "{file}：没有 [[accounts]]：请用 --token 指定令牌";
    /// `--config` names an account without a Token.
    SimNoToken => "{file}: accounts[{index}].token is not set: give --token",
                  "{file}：没有设置 accounts[{index}].token：请用 --token 指定令牌";
    /// A TOML syntax or type error, as the TOML parser words it.
    CfgToml => "{error}", "TOML 解析失败：{error}";
    /// A field the section does not have (`{fields}`: serde's list of the ones it has).
    CfgUnknownField => "unknown field `{field}`, expected one of {fields}", "未知字段 `{field}`，应为以下之一：{fields}";
    /// A field the section does not have, and it has no fields or one.
    CfgUnknownFieldExpected => "unknown field `{field}`, expected {expected}", "未知字段 `{field}`，应为 {expected}";
    /// A required field is missing.
    CfgMissingField => "missing field `{field}`", "缺少字段 `{field}`";
    /// A value of the wrong type (`{found}`, `{expected}`: serde's words).
    CfgInvalidType => "invalid type: {found}, expected {expected}", "类型不对：{found}，应为 {expected}";
    /// A key set twice.
    CfgDuplicateKey => "duplicate key", "键重复（同一个键设置了两次）";
    /// A value that is not a duration.
    CfgNotADuration => "{value:?} is not a duration (e.g. 500ms, 5s, 2m, 1h, 2d)",
                       "{value:?} 不是时长（例如 500ms、5s、2m、1h、2d）";
    /// A value that is not a size.
    CfgNotASize => "{value:?} is not a size (e.g. 65536, 64KiB, 1MiB)",
                   "{value:?} 不是大小（例如 65536、64KiB、1MiB）";
    /// A value that is not a boolean.
    CfgNotABoolean => "{value:?} is not a boolean (true/false)", "{value:?} 不是布尔值（true/false）";
    /// A unit the value does not have.
    CfgUnknownUnit => "{value:?}: unknown unit {unit:?} (use {expected})",
                      "{value:?}：未知单位 {unit:?}（请用 {expected}）";
    /// The units of a duration.
    CfgUnitsDuration => "ms, s, m, h or d", "ms、s、m、h 或 d";
    /// The units of a size.
    CfgUnitsSize => "KiB or MiB", "KiB 或 MiB";
    /// An EncodingAESKey of the wrong length.
    CfgKeyLength => "EncodingAESKey must be 43 characters, got {n}", "EncodingAESKey 必须是 43 个字符，这里是 {n} 个";
    /// An EncodingAESKey with a character outside base64.
    CfgKeyAlphabet => "EncodingAESKey has a character outside [A-Za-z0-9+/] at position {position}",
                      "EncodingAESKey 在位置 {position}（从 0 数起）有 [A-Za-z0-9+/] 以外的字符";
    /// A value beyond what the setting holds.
    CfgTooLarge => "{value:?} is too large", "{value:?} 太大";
    /// A float where a duration was expected.
    CfgFloatNotADuration => "{value} is not a duration (e.g. 5s, 2m, 30d)", "{value} 不是时长（例如 5s、2m、30d）";
    /// A float where bytes were expected.
    CfgNotWholeBytes => "{value} is not a whole number of bytes", "{value} 不是整数字节数";
    /// Not a mode.
    CfgNotAMode => "unknown mode {value:?}: expected plain, compatible or safe",
                   "未知的消息加解密方式 {value:?}：应为 plain、compatible 或 safe";
    /// A field the environment or a flag cannot set.
    CfgNotConfigurable => "not a configurable field", "不是可设置的字段";
    /// Not an address:port.
    CfgNotAnAddress => "{value:?} is not an address:port ({error})", "{value:?} 不是“地址:端口”（{error}）";
    /// A path without its leading slash.
    CfgPathSlash => "{path:?} must start with /", "{path:?} 必须以 / 开头";
    /// The deadline is out of range.
    CfgDeadline => "must be more than 0 and under 5s: WeChat stops waiting after 5 seconds",
                   "必须大于 0 且小于 5s：微信只等待 5 秒";
    /// A timeout out of range.
    CfgTimeoutRange => "must be more than 0 and at most 5m", "必须大于 0 且不超过 5m";
    /// At least one.
    CfgAtLeastOne => "must be at least 1", "至少为 1";
    /// The body limit is too small.
    CfgBodyLimit => "must be at least 1KiB: WeChat's messages would not fit",
                    "至少为 1KiB：否则放不下微信的消息";
    /// Not a database URL.
    CfgDatabaseUrl => "{url:?}: use sqlite://PATH or postgres://…", "{url:?}：请使用 sqlite://PATH 或 postgres://…";
    /// Not a Redis URL.
    CfgRedisUrl => "{url:?}: use redis://host:port", "{url:?}：请使用 redis://host:port";
    /// The API proxy's token is short.
    CfgApiProxyToken => "must be at least 16 characters: it guards the access token",
                        "至少 16 个字符：它保护着 access_token";
    /// More than 0.
    CfgMoreThanZero => "must be more than 0", "必须大于 0";
    /// The relay needs the secret (`{prefix}`: `missing: ` where the secret is the field).
    CfgRelayNeedsSecret => "{prefix}\"relay\" needs gateway.forward_secret (or WEMP_FORWARD_SECRET): relay clients prove they know it \
                            before they get any message",
                           "{prefix}\"relay\" 需要 gateway.forward_secret（或 WEMP_FORWARD_SECRET）：中继客户端须先证明知道它，才能收到消息";
    /// A URL beyond loopback needs the secret.
    CfgUrlNeedsSecret => "{prefix}forwarding to {url:?}, beyond loopback, needs a shared secret to sign with \
                          (gateway.forward_secret or WEMP_FORWARD_SECRET) so the app can trust what it gets",
                         "{prefix}转发到本机以外的 {url:?} 需要共享密钥签名（gateway.forward_secret 或 WEMP_FORWARD_SECRET），应用才能信任收到的内容";
    /// The word before a missing secret.
    CfgMissingPrefix => "missing: ", "缺少：";
    /// Not a forward target.
    CfgNotATarget => "{target:?} is not an http:// or https:// URL, nor \"relay\"",
                     "{target:?} 不是 http:// 或 https:// URL，也不是 \"relay\"";
    /// The relay was not started.
    CfgRelayNotStarted => "\"relay\" is served only when configured at start (with gateway.forward_secret): restart `wemp serve`",
                          "只有启动时已配置（带 gateway.forward_secret）才提供 \"relay\"：请重启 `wemp serve`";
    /// Forwarding's HTTP client cannot be built.
    CfgForwardClient => "the HTTP client of forwarding: {error}", "转发用的 HTTP 客户端：{error}";
    /// An account path that is the relay endpoint.
    CfgRelayPath => "{path:?} is the relay endpoint (forward = \"relay\"): choose another path",
                    "{path:?} 是中继端点（forward = \"relay\"）：请换一个路径";
    /// A Token not of WeChat's shape.
    CfgTokenShape => "must be 3 to 32 letters and digits (the WeChat console's rule)",
                     "必须是 3 到 32 位字母和数字（微信后台的规则）";
    /// A second account without a Token.
    CfgTokenMissing => "missing: every account but the first needs its Token", "缺少：除第一个账号外，每个账号都要设置令牌（Token）";
    /// corpid/agentid on an account that is not WeCom.
    CfgWecomOnly => "{field} is for WeCom apps: add kind = \"wecom\" to this account, or remove {field}",
                    "{field} 是企业微信应用的设置：请给此账号加上 kind = \"wecom\"，或删除 {field}";
    /// Not an appid.
    CfgAppidShape => "{appid:?} does not look like an appid (wx + 16 characters)",
                     "{appid:?} 不像 AppID（wx 加 16 个字符）";
    /// Not an EncodingAESKey.
    CfgAesKeyInvalid => "not a valid EncodingAESKey: {error}", "不是有效的消息加解密密钥（EncodingAESKey）：{error}";
    /// An encrypted mode without a key.
    CfgModeNeedsKey => "{mode} mode needs the EncodingAESKey", "{mode}需要消息加解密密钥（EncodingAESKey）";
    /// An AppSecret without an appid.
    CfgSecretNeedsAppid => "an AppSecret needs the account's appid too (the API identifies the account by \
                            appid and AppSecret together): set appid, or remove appsecret",
                           "AppSecret 还需要账号的 appid（接口以 AppID 和 AppSecret 一起识别账号）：请设置 appid，或删除 appsecret";
    /// An encrypted mode without an appid.
    CfgModeNeedsAppid => "{mode} mode needs the appid (it is checked in every message)",
                         "{mode}需要 appid（每条消息都会校验它）";
    /// Two WeCom entries for one app.
    CfgDuplicateWecom => "{appid:?} (corpid/agentid) is already accounts[{first}]: a WeCom app is one \
                          [[accounts]] entry; another app of the same corp needs its own agentid and path",
                         "{appid:?}（corpid/agentid）已是 accounts[{first}]：一个企业微信应用只对应一个 [[accounts]]；\
                          同一企业的另一个应用需要自己的 agentid 和路径";
    /// Two entries for one Mini Program.
    CfgDuplicateMiniprogram => "{appid:?} is already the appid of accounts[{first}]: a Mini Program has one \
                                message push URL, so it is one [[accounts]] entry",
                               "{appid:?} 已是 accounts[{first}] 的 appid：一个小程序只有一个消息推送 URL，所以只对应一个 [[accounts]]";
    /// Two entries for one Official Account.
    CfgDuplicateAppid => "{appid:?} is already the appid of accounts[{first}]: an Official Account has one \
                          callback URL, so it is one [[accounts]] entry",
                         "{appid:?} 已是 accounts[{first}] 的 appid：一个公众号只有一个服务器地址（URL），所以只对应一个 [[accounts]]";
    /// Two accounts with one path.
    CfgDuplicatePath => "{path:?} is already the path of accounts[{first}]", "{path:?} 已是 accounts[{first}] 的路径";
    /// Two accounts with one name.
    CfgDuplicateName => "{name:?} is already the name of accounts[{first}]: a name picks one account \
                         (X-Wemp-Account, the console), so each needs its own",
                        "{name:?} 已是 accounts[{first}] 的名称：名称用于选定唯一的账号（X-Wemp-Account、控制台），\
                         每个账号需要不同的名称";
    /// Two accounts whose paths end in one segment.
    CfgDuplicateSegment => "{path:?}: its last segment {segment:?} ends the path of accounts[{first}] too, and \
                            the server tells accounts apart by that segment: give each its own (e.g. /wechat \
                            and /wechat/shop)",
                           "{path:?}：最后一段 {segment:?} 也是 accounts[{first}] 路径的最后一段，而服务器按这一段区分账号：\
                            请让每个账号各用一段（例如 /wechat 和 /wechat/shop）";
    /// Another problem of the accounts together, as the server words it.
    CfgAccounts => "{error}", "账号设置有误：{error}";
    /// The console path's shape.
    CfgConsolePath => "{path:?} must start with /, not end with one, and not be / (e.g. /console)",
                      "{path:?} 必须以 / 开头、不能以 / 结尾，也不能就是 /（例如 /console）";
    /// The console path is a callback path.
    CfgConsolePathTaken => "{path:?} is taken by the callback path {callback:?}", "{path:?} 已被回调路径 {callback:?} 占用";
    /// The console path is the metrics path.
    CfgConsolePathMetrics => "{path:?} is the metrics path", "{path:?} 是指标（metrics）路径";
    /// The admin token is short.
    CfgConsoleToken => "the admin token must have at least 8 characters", "管理令牌至少要 8 个字符";
    /// An empty value.
    CfgEmpty => "empty", "为空";
    /// A user listed twice.
    CfgListedTwice => "{value:?} is listed twice", "{value:?} 重复列出";
    /// A menu WeChat would refuse, as the menu check words it.
    CfgMenu => "{error}", "微信会拒绝这个菜单：{error}";
    /// Too many menu buttons.
    MenuTooManyButtons => "{n} buttons; WeChat allows at most {max}", "{n} 个按钮；微信最多允许 {max} 个";
    /// A menu group with a type.
    MenuGroupWithType => "a button with sub_button is a group and takes no type",
                         "带 sub_button 的按钮是菜单组，不能设置 type";
    /// Too many sub-buttons.
    MenuTooManySubButtons => "{n} sub-buttons; WeChat allows at most {max}", "{n} 个子按钮；微信最多允许 {max} 个";
    /// Sub-buttons of a sub-button.
    MenuNestedSubButtons => "sub-buttons cannot have sub-buttons", "子按钮不能再有子按钮";
    /// A menu value too long.
    MenuTooLong => "{bytes} bytes; WeChat allows at most {max}", "{bytes} 字节；微信最多允许 {max} 字节";
    /// A button without a type.
    MenuMissingType => "missing: set type = \"click\" or \"view\", or add sub_button",
                       "缺少：请设置 type = \"click\" 或 \"view\"，或添加 sub_button";
    /// A click button without a key.
    MenuNoKey => "a click button needs a key", "click 按钮需要 key";
    /// A view button's url is not http(s).
    MenuNotHttpUrl => "{url:?} is not an http(s) URL", "{url:?} 不是 http(s) URL";
    /// A view button without a url.
    MenuNoUrl => "a view button needs a url", "view 按钮需要 url";
    /// WeCom without a corpid.
    CfgCorpidMissing => "missing: a WeCom app needs its corpid (the ReceiveId of every message)",
                        "缺少：企业微信应用需要企业 ID（corpid，每条消息的 ReceiveId）";
    /// Not a corpid.
    CfgCorpidShape => "{corpid:?} does not look like a corpid (8 to 32 letters and digits, e.g. ww…, as the WeCom admin shows it)",
                      "{corpid:?} 不像企业 ID（corpid：8 到 32 位字母和数字，例如 ww…，以企业微信管理后台显示的为准）";
    /// Not an AgentID.
    CfgAgentidShape => "{agentid:?} is not an AgentID (a number, as the WeCom admin shows it)",
                       "{agentid:?} 不是 AgentID（一个数字，以企业微信管理后台显示的为准）";
    /// An AppSecret without an AgentID.
    CfgAgentidMissing => "missing: messages are sent through the API for an AgentID (set agentid, or remove appsecret)",
                         "缺少：消息通过接口以某个 AgentID 发出（请设置 agentid，或删除 appsecret）";
    /// An appid on a WeCom app.
    CfgWecomAppid => "a WeCom app has a corpid, not an appid: rename appid to corpid",
                     "企业微信应用用的是 corpid，不是 appid：请把 appid 改名为 corpid";
    /// An original id on a WeCom app.
    CfgWecomOriginalId => "a WeCom app has no original id (gh_…): remove original_id",
                          "企业微信应用没有原始 ID（gh_…）：请删除 original_id";
    /// WeCom without a key.
    CfgWecomKeyMissing => "missing: WeCom encrypts every callback, so a WeCom app needs its EncodingAESKey",
                          "缺少：企业微信的回调全部加密，企业微信应用需要 EncodingAESKey";
    /// WeCom in compatible mode.
    CfgWecomMode => "WeCom encrypts every callback: mode {mode} does not apply (remove mode, or set safe)",
                    "企业微信的回调全部加密：mode {mode} 不适用（删除 mode，或设为 safe）";
    /// No component appid.
    CfgComponentAppidMissing => "missing: the third-party platform's appid (wx…)", "缺少：第三方平台的 appid（wx…）";
    /// No component Token.
    CfgComponentTokenMissing => "missing: the Token set for message checks in the Open Platform",
                                "缺少：在开放平台为消息校验设置的 Token";
    /// No component key.
    CfgComponentKeyMissing => "missing: the component's EncodingAESKey (43 characters)",
                              "缺少：第三方平台的消息加解密 Key（43 个字符）";
    /// Both appsecret and appsecret_file.
    CfgComponentSecretTwice => "set appsecret or appsecret_file, not both", "appsecret 与 appsecret_file 只能设置一个";
    /// No component AppSecret.
    CfgComponentSecretMissing => "missing: set appsecret_file (or WEMP_COMPONENT_APPSECRET)",
                                 "缺少：请设置 appsecret_file（或 WEMP_COMPONENT_APPSECRET）";
    /// The AppSecret file cannot be read.
    CfgSecretFileUnreadable => "cannot read {file}: {error}", "无法读取 {file}：{error}";
    /// The AppSecret file is empty.
    CfgSecretFileEmpty => "{file} is empty", "{file} 是空的";
    /// A path something else serves.
    CfgPathTaken => "{path:?} is already served by something else: choose another path",
                    "{path:?} 已被其他功能占用：请换一个路径";
    /// No Token and nowhere to save one.
    CfgTokenNotSaved => "no Token configured and the generated one cannot be saved to {file} ({error}): \
                         set accounts[0].token or WEMP_TOKEN",
                        "没有配置令牌（Token），生成的令牌也无法保存到 {file}（{error}）：请设置 accounts[0].token 或 WEMP_TOKEN";

    // The rules' problems (rules.rs).
    /// A rule without a matcher.
    RuleNoMatcher => "no matcher: set one of keyword, contains, regex, event, type or default = true",
                     "没有匹配条件：请设置 keyword、contains、regex、event、type 或 default = true 之一";
    /// A rule with several matchers.
    RuleSeveralMatchers => "several matchers ({set}): a rule has exactly one", "有多个匹配条件（{set}）：一条规则只能有一个";
    /// Empty words.
    RuleEmptyWords => "needs non-empty words", "词不能为空";
    /// A regex that does not compile.
    RuleBadRegex => "invalid regular expression: {error}", "正则表达式无效：{error}";
    /// An empty event name.
    RuleEmptyEvent => "empty event name", "事件名为空";
    /// A misspelt event name (a warning).
    RuleEventDidYouMean => "unknown event {name:?}: did you mean {known:?}?", "未知事件 {name:?}：是不是 {known:?}？";
    /// An event name of the wrong shape (a warning).
    RuleEventShape => "unknown event {name:?}: WeChat's event names are letters, digits and `_`",
                      "未知事件 {name:?}：微信的事件名只含字母、数字和 `_`";
    /// `scene` with the wrong event.
    RuleSceneEvent => "`scene` goes with subscribe or SCAN, not {event}", "`scene` 只用于 subscribe 或 SCAN，不能用于 {event}";
    /// `key` with the wrong event.
    RuleKeyEvent => "`key` goes with menu events (CLICK, VIEW, …), not {event}",
                    "`key` 只用于菜单事件（CLICK、VIEW 等），不能用于 {event}";
    /// An unknown message type.
    RuleUnknownType => "unknown message type {type:?}: text, image, voice, video, shortvideo, location, \
                        link, miniprogrampage or event",
                       "未知消息类型 {type:?}：可用 text、image、voice、video、shortvideo、location、link、miniprogrampage 或 event";
    /// `scene` without an event.
    RuleSceneNeedsEvent => "`scene` needs event = \"subscribe\" or \"SCAN\"", "`scene` 需要 event = \"subscribe\" 或 \"SCAN\"";
    /// `key` without an event.
    RuleKeyNeedsEvent => "`key` needs a menu event, e.g. event = \"CLICK\"", "`key` 需要菜单事件，例如 event = \"CLICK\"";
    /// `ignore_case` without words.
    RuleIgnoreCase => "`ignore_case` goes with keyword or contains", "`ignore_case` 只用于 keyword 或 contains";
    /// `events` without default.
    RuleEvents => "`events` goes with default = true", "`events` 只用于 default = true";
    /// A capture in a rule without captures.
    RuleNoCaptures => "{capture} is used but this rule has no captures (only regex rules do)",
                      "用了 {capture}，但这条规则没有捕获组（只有 regex 规则有）";
    /// A capture beyond the regex's groups.
    RuleTooFewGroups => "{capture} is used but the regex has only {groups} group(s)",
                        "用了 {capture}，但正则表达式只有 {groups} 个分组";
    /// `{content}` in a rule that answers events.
    RuleContentForEvents => "{content} is empty for events (this rule answers events): use {key} or {scene}",
                            "{content} 对事件为空（这条规则会回复事件）：请用 {key} 或 {scene}";
    /// An unmatched `}`.
    RuleUnmatchedClose => "unmatched `}` (write `}}` for a brace)", "多余的 `}`（要写花括号请用 `}}`）";
    /// An unclosed `{`.
    RuleUnclosed => "unclosed `{` (write `{{` for a brace)", "`{` 没有闭合（要写花括号请用 `{{`）";
    /// An unknown placeholder.
    RuleUnknownPlaceholder => "unknown placeholder {placeholder}: use {openid}, {account}, {content}, {scene}, {key} or a capture {1}",
                              "未知占位符 {placeholder}：可用 {openid}、{account}、{content}、{scene}、{key} 或捕获组 {1}";
    /// A reply and a forward.
    RuleReplyAndForward => "a rule has a reply or forward, not both (it has reply.{replies})",
                           "一条规则只能有 reply 或 forward 之一（它有 reply.{replies}）";
    /// A delay on a forward.
    RuleDelayForward => "`delay` goes with a reply, not forward (the app takes its own time)",
                        "`delay` 只用于 reply，不能用于 forward（应用自己决定耗时）";
    /// No reply.
    RuleNoReply => "no reply: set reply.text, image, voice, video, music, news, transfer or none (or forward)",
                   "没有回复：请设置 reply.text、image、voice、video、music、news、transfer 或 none（或 forward）";
    /// Several replies.
    RuleSeveralReplies => "several replies ({replies}): a rule has exactly one", "有多个回复（{replies}）：一条规则只能有一个";
    /// News with the wrong number of articles, answering a message.
    RuleArticlesMessage => "{n} articles; 1 to {limit} allowed when answering a user's message (WeChat's limit)",
                           "{n} 篇图文；回复用户消息时只能有 1 到 {limit} 篇（微信的限制）";
    /// News with the wrong number of articles, answering an event.
    RuleArticlesEvent => "{n} articles; 1 to {limit} allowed when answering an event",
                         "{n} 篇图文；回复事件时只能有 1 到 {limit} 篇";
    /// A transfer that is neither true nor an agent.
    RuleTransfer => "use `transfer = true` or an agent account", "请用 `transfer = true` 或客服账号";
    /// A delay over a minute.
    RuleDelayMax => "at most 1m: the delay is for trying out WeChat's deadline",
                    "最多 1m：延迟只用于试验微信的时限";
}

/// A mode in words: `plain` in English (as `wemp_proto::Mode` displays it), `明文模式` in
/// Chinese.
pub fn mode_name(mode: wemp_proto::Mode, lang: Lang) -> String {
    match lang {
        Lang::Zh => match mode {
            wemp_proto::Mode::Plain => Msg::ModePlain.get(lang).to_owned(),
            wemp_proto::Mode::Compatible => Msg::ModeCompatible.get(lang).to_owned(),
            wemp_proto::Mode::Safe => Msg::ModeSafe.get(lang).to_owned(),
        },
        Lang::En => mode.to_string(),
    }
}

impl Msg {
    /// The message in `lang` with each `{name}` replaced by its value (`{name:?}` by its
    /// value in quotes); unknown placeholders stay as they are.
    pub fn fill(self, lang: Lang, args: &[(&str, &dyn Display)]) -> String {
        let mut out = self.get(lang).to_owned();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}:?}}"), &format!("{:?}", value.to_string()));
            out = out.replace(&format!("{{{name}}}"), &value.to_string());
        }
        out
    }
}

/// A message with its parameters, worded in any language when it is shown: what a
/// [`crate::config::ConfigProblem`] or [`crate::rules::RuleError`] keeps instead of a sentence
/// in one language. Displays in English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wording {
    /// The message.
    pub msg: Msg,
    /// Its parameters, by name.
    pub params: Vec<(&'static str, Arg)>,
}

/// A parameter of a [`Wording`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arg {
    /// Text shown as it is in every language (a value, a field name, another library's words).
    Text(String),
    /// A mode, in each language's word ([`mode_name`]).
    Mode(wemp_proto::Mode),
    /// Another message, worded in the same language.
    Wording(Box<Wording>),
}

impl Wording {
    /// `msg` without parameters yet.
    pub fn new(msg: Msg) -> Self {
        Self { msg, params: Vec::new() }
    }

    /// With the parameter `name` shown as `value` in every language.
    #[must_use]
    pub fn with(mut self, name: &'static str, value: impl Display) -> Self {
        self.params.push((name, Arg::Text(value.to_string())));
        self
    }

    /// With the parameter `name` as another argument (a mode, a message).
    #[must_use]
    pub fn arg(mut self, name: &'static str, value: Arg) -> Self {
        self.params.push((name, value));
        self
    }

    /// The message in `lang`, its parameters filled.
    pub fn get(&self, lang: Lang) -> String {
        let values: Vec<(&str, String)> = self
            .params
            .iter()
            .map(|(name, arg)| {
                let value = match arg {
                    Arg::Text(t) => t.clone(),
                    Arg::Mode(m) => mode_name(*m, lang),
                    Arg::Wording(m) => m.get(lang),
                };
                (*name, value)
            })
            .collect();
        let args: Vec<(&str, &dyn Display)> = values.iter().map(|(n, v)| (*n, v as &dyn Display)).collect();
        self.msg.fill(lang, &args)
    }
}

#[cfg(test)]
impl Wording {
    /// What is wrong with how this message (and each message among its parameters) names its
    /// parameters, in either language: a placeholder without a parameter (other than `literal`
    /// ones, text the message shows as it is, like the `{openid}` of rules' templates), or a
    /// parameter the text does not show. Empty for a well-made message.
    pub(crate) fn misnamed(&self, literal: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for lang in [Lang::En, Lang::Zh] {
            let text = self.msg.get(lang);
            let named: Vec<&str> = text
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(name, _)| name.trim_end_matches(":?")))
                .collect();
            for name in &named {
                if !self.params.iter().any(|(p, _)| p == name) && !literal.contains(name) {
                    out.push(format!("{:?} ({lang:?}): {{{name}}} has no parameter", self.msg));
                }
            }
            for (p, _) in &self.params {
                if !named.contains(p) {
                    out.push(format!("{:?} ({lang:?}): parameter {p} is not shown", self.msg));
                }
            }
        }
        for (_, arg) in &self.params {
            if let Arg::Wording(m) = arg {
                out.extend(m.misnamed(literal));
            }
        }
        out
    }

    /// This message and the messages among its parameters.
    pub(crate) fn msgs(&self) -> Vec<Msg> {
        let mut out = vec![self.msg];
        for (_, arg) in &self.params {
            if let Arg::Wording(m) = arg {
                out.extend(m.msgs());
            }
        }
        out
    }
}

impl From<Msg> for Wording {
    fn from(msg: Msg) -> Self {
        Self::new(msg)
    }
}

impl Display for Wording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.get(Lang::En))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_picks_the_language() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(Lang::from_env(env(&[])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LANG", "zh_CN.UTF-8")])), Lang::Zh);
        assert_eq!(Lang::from_env(env(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "C")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LANG", "en_US.UTF-8"), ("LC_MESSAGES", "zh_CN")])), Lang::Zh);
        assert_eq!(Lang::from_env(env(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "")])), Lang::Zh);
        assert_eq!(Lang::of_locale("zh_TW.UTF-8"), Lang::En);
        assert_eq!(Lang::of_locale("zh-Hans-CN"), Lang::Zh);
        assert_eq!(Lang::of_locale("zh"), Lang::Zh);
        assert_eq!(Lang::of_locale("POSIX"), Lang::En);
    }

    #[test]
    fn every_message_has_both_languages_and_the_same_placeholders() {
        let placeholders = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_owned()))
                .collect();
            v.sort();
            v
        };
        for m in Msg::ALL {
            let (en, zh) = (m.get(Lang::En), m.get(Lang::Zh));
            assert!(!en.is_empty() && !zh.is_empty(), "{m:?}");
            assert_eq!(placeholders(en), placeholders(zh), "{m:?}");
        }
    }

    #[test]
    fn fill_replaces_named_placeholders() {
        let s = Msg::PublicUrlPort.fill(Lang::En, &[("url", &"https://e:8080/x"), ("port", &8080)]);
        assert_eq!(s, "https://e:8080/x: WeChat calls only ports 80 and 443, not 8080");
        let s = Msg::PublicUrlScheme.fill(Lang::Zh, &[("url", &"ftp://x")]);
        assert_eq!(s, "\"ftp://x\" 必须以 http:// 或 https:// 开头");
    }
}
