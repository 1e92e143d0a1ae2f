//! `admit` with a fixed clock, on WeChat's documented sample.

use super::*;
use crate::crypto::tests::{SAMPLE_APPID, SAMPLE_ENCRYPT, SAMPLE_KEY};

const TOKEN: &str = "spamtest";
const TS: &str = "1409735669";
const NOW: i64 = 1_409_735_669;
const NONCE: &str = "1320562132";
const MSG_SIG: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
const GH: &str = "gh_10f6c3c3ac5a";

fn sample(mode: Option<Mode>) -> Account {
    let a = Account::new(SAMPLE_APPID, TOKEN).with_aes_key(SAMPLE_KEY).unwrap().with_original_id(GH);
    match mode {
        Some(m) => a.with_mode(m),
        None => a,
    }
}

fn one(mode: Option<Mode>) -> Accounts {
    Accounts::new([sample(mode)]).unwrap()
}

fn sig() -> String {
    signature::sign(TOKEN, TS, NONCE)
}

fn safe_query() -> String {
    format!("signature={}&timestamp={TS}&nonce={NONCE}&encrypt_type=aes&msg_signature={MSG_SIG}", sig())
}

fn safe_body() -> String {
    format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
    )
}

fn plain_body(content: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>\
         <CreateTime>{TS}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>1</MsgId></xml>"
    )
}

fn refusal(a: &Admission) -> &Refusal {
    a.refusal().unwrap_or_else(|| panic!("admitted: {a:?}"))
}

/// The XML of a message `POST` that passed and its document (parsed again, from JSON for a
/// JSON push), after checking that the typed message is what that document types to.
fn passed(a: &Admission) -> (&str, Document) {
    let Verdict::Message { xml, message } = &a.verdict else { panic!("{a:?}") };
    let document =
        if Document::looks_like_json(xml) { Document::from_json(xml) } else { Document::parse(xml) };
    let document = document.unwrap();
    assert_eq!(message, &Incoming::from_document(&document), "{xml}");
    (xml, document)
}

#[test]
fn admit_unrecorded_decides_alike_and_keeps_no_checks() {
    let (q, body) = (safe_query(), safe_body());
    let bad_query = q.replace(MSG_SIG, "0000");
    let requests = [
        Request::post("/wechat", &q, body.as_bytes()),
        Request::post("/wechat", &bad_query, body.as_bytes()),
        Request::post("/wechat", "timestamp=1", body.as_bytes()),
        Request::get("/wechat", "nonce=1"),
    ];
    for (i, request) in requests.iter().enumerate() {
        let kept = admit(&one(None), &Policy::default(), NOW, request);
        let quiet = admit_unrecorded(&one(None), &Policy::default(), NOW, request);
        assert!(!kept.checks.is_empty(), "request {i}: {kept:?}");
        assert!(quiet.checks.is_empty(), "request {i}: {quiet:?}");
        assert_eq!(quiet.mode, kept.mode, "request {i}");
        assert_eq!(quiet.account.map(|a| a.appid().to_owned()), kept.account.map(|a| a.appid().to_owned()));
        match (&quiet.verdict, &kept.verdict) {
            (Verdict::Message { xml: a, message: m }, Verdict::Message { xml: b, message: n }) => {
                assert_eq!(a, b);
                assert_eq!(m, n);
            }
            (Verdict::Refused(a), Verdict::Refused(b)) => assert_eq!(a, b, "request {i}"),
            (a, b) => panic!("request {i}: {a:?} against {b:?}"),
        }
    }
}

#[test]
fn a_passed_message_is_typed_as_its_document() {
    let cipher = crate::Cipher::new(SAMPLE_KEY, SAMPLE_APPID).unwrap();
    // Safe-mode requests carrying these messages, signed.
    let sealed = |xml: &str| {
        let encrypt = cipher.encrypt(xml, [3; 16]).unwrap();
        let msg_sig = signature::sign_msg(TOKEN, TS, NONCE, &encrypt);
        let query = format!(
            "signature={}&timestamp={TS}&nonce={NONCE}&encrypt_type=aes&msg_signature={msg_sig}",
            sig()
        );
        let body = format!(
            "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        );
        (query, body)
    };
    let text = plain_body("hi ]]]]><![CDATA[> there");
    let mut requests = vec![
        (safe_query(), safe_body()),
        (safe_query().replace(MSG_SIG, "0000"), safe_body()),
        (format!("signature={}&timestamp={TS}&nonce={NONCE}", sig()), plain_body("hi")),
        (format!("signature={}&timestamp={TS}&nonce={NONCE}", sig()), "<xml><a>".to_owned()),
    ];
    for xml in [
        text.clone(),
        text.replace("<MsgId>1", "<MsgId>x"),
        text.replace("[text]", "[event]"),
        text.replace("[text]", "[image]"),
        text.replace("</xml>", "<AgentID> 7 </AgentID></xml>"),
        text.replace("<Content>", "<!-- c --><Content>"),
        "<xml><a>".to_owned(),
        "<xml></xml>".to_owned(),
        String::new(),
    ] {
        requests.push(sealed(&xml));
    }
    let malformed = ["<xml><a>", ""].map(|xml| sealed(xml).1);
    for (i, (query, body)) in requests.iter().enumerate() {
        let request = Request::post("/wechat", query, body.as_bytes());
        let kept = admit(&one(None), &Policy::default(), NOW, &request);
        let quiet = admit_unrecorded(&one(None), &Policy::default(), NOW, &request);
        assert_eq!(quiet.mode, kept.mode, "request {i}");
        assert!(quiet.checks.is_empty(), "request {i}");
        match (&kept.verdict, &quiet.verdict) {
            (Verdict::Message { xml: a, message: m }, Verdict::Message { xml: b, message: n }) => {
                assert_eq!((a, m), (b, n), "request {i}");
                // Typed from its leaves or its document: what the document types to.
                assert_eq!(m, &Incoming::from_document(&Document::parse(a).unwrap()), "request {i}");
            }
            (Verdict::Refused(a), Verdict::Refused(b)) => {
                assert_eq!(a, b, "request {i}");
                if malformed.contains(body) {
                    assert_eq!(a.reason, RejectReason::BadXml, "request {i}");
                }
            }
            (a, b) => panic!("request {i}: {a:?} against {b:?}"),
        }
        if malformed.contains(body) {
            assert!(kept.refusal().is_some(), "request {i}");
        }
    }
}

#[test]
fn the_documented_safe_mode_sample_is_accepted() {
    for mode in [None, Some(Mode::Safe), Some(Mode::Compatible), Some(Mode::Plain)] {
        let (q, body) = (safe_query(), safe_body());
        let a = admit(&one(mode), &Policy::default(), NOW, &Request::post("/wechat", &q, body.as_bytes()));
        let (xml, document) = passed(&a);
        assert!(xml.contains("<Content><![CDATA[abcdteT]]></Content>"), "{xml}");
        assert_eq!(document.root.text_of("Content"), Some("abcdteT"));
        assert_eq!(a.mode, Some(Mode::Safe));
        assert_eq!(a.account.as_ref().map(|a| a.appid()), Some(SAMPLE_APPID));
        let kinds: Vec<CheckKind> = a.checks.iter().map(|c| c.kind).collect();
        assert!(a.checks.iter().all(|c| c.passed), "{:?}", a.checks);
        for kind in [
            CheckKind::Query,
            CheckKind::Signature,
            CheckKind::Timestamp,
            CheckKind::MsgSignature,
            CheckKind::Decrypt,
        ] {
            assert!(kinds.contains(&kind), "{kind:?} not in {kinds:?}");
        }
    }
}

/// What the console and `wemp log` show of a passed safe- or compatible-mode message, word
/// for word (the fixed notes are shared sentences, the others formatted).
#[test]
fn the_checks_read_as_before() {
    let expected = |body: &str, mode: &str| {
        let n = SAMPLE_ENCRYPT.len();
        vec![
            "query ok: signature, timestamp and nonce present".to_owned(),
            format!("account ok: path \"/wechat\" selects account {SAMPLE_APPID}"),
            "signature ok: matches the account's Token over timestamp and nonce".to_owned(),
            "timestamp ok: 0 s from server time (window 300 s)".to_owned(),
            format!("body ok: acceptable XML, {body} mode"),
            format!("mode ok: {mode}"),
            format!("envelope ok: <Encrypt> of {n} characters"),
            "msg_signature ok: matches over timestamp, nonce and <Encrypt>".to_owned(),
            format!("decrypt ok: decrypted for appid {SAMPLE_APPID}"),
        ]
    };
    let compatible_body = safe_body().replace("</xml>", "<MsgType><![CDATA[text]]></MsgType></xml>");
    let cases = [
        (
            Some(Mode::Safe),
            Policy::default(),
            safe_body(),
            expected("safe", "safe request to a safe-mode account"),
        ),
        (
            Some(Mode::Compatible),
            Policy::default(),
            safe_body(),
            expected("safe", "safe request to a compatible-mode account"),
        ),
        (
            Some(Mode::Compatible),
            Policy::default(),
            compatible_body.clone(),
            expected("compatible", "compatible request to a compatible-mode account"),
        ),
        (
            Some(Mode::Safe),
            Policy::default(),
            compatible_body.clone(),
            expected("compatible", "compatible request to a safe-mode account"),
        ),
        (
            None,
            Policy::default().require_encryption(true),
            compatible_body,
            expected("compatible", "compatible request to a require_encryption-mode account"),
        ),
    ];
    for (mode, policy, body, expected) in cases {
        let q = safe_query();
        let a = admit(&one(mode), &policy, NOW, &Request::post("/wechat", &q, body.as_bytes()));
        let shown: Vec<String> = a.checks.iter().map(ToString::to_string).collect();
        assert_eq!(shown, expected, "{mode:?} {body}");
    }
    // A plain message, to an account found by its Token rather than by the path.
    let plain = plain_body("hi");
    let q = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
    let two = Accounts::new([sample(None), Account::new("wx2", "anotherToken")]).unwrap();
    let a = admit(&two, &Policy::default(), NOW, &Request::post("/", &q, plain.as_bytes()));
    let shown: Vec<String> = a.checks.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "query ok: signature, timestamp and nonce present".to_owned(),
            "signature ok: matches the account's Token over timestamp and nonce".to_owned(),
            "timestamp ok: 0 s from server time (window 300 s)".to_owned(),
            "body ok: acceptable XML, plain mode".to_owned(),
            format!("account ok: account {SAMPLE_APPID} signs the request"),
        ]
    );
    // A clock ahead, and a window of another width.
    let a = admit(
        &two,
        &Policy::default().freshness_secs(86_400),
        NOW + 61,
        &Request::post("/", &q, plain.as_bytes()),
    );
    assert_eq!(a.checks[2].to_string(), "timestamp ok: 61 s from server time (window 86400 s)");
}

#[test]
fn the_documented_verification_sample_is_verified() {
    let accounts = Accounts::new([Account::new("wx1", "weixin")]).unwrap();
    let sig = signature::sign("weixin", "1540176606", "1854606751");
    let q = format!("signature={sig}&timestamp=1540176606&nonce=1854606751&echostr=e1");
    let a = admit(&accounts, &Policy::default(), 1_540_176_606, &Request::get("/", &q));
    assert!(matches!(&a.verdict, Verdict::Verified { echostr } if echostr == "e1"), "{a:?}");
    let bad = q.replace(&sig[..4], "0000");
    let a = admit(&accounts, &Policy::default(), 1_540_176_606, &Request::get("/", &bad));
    assert_eq!(refusal(&a).status, 403);
}

#[test]
fn the_clock_is_an_argument() {
    let (q, body) = (safe_query(), safe_body());
    let req = Request::post("/", &q, body.as_bytes());
    let a = admit(&one(None), &Policy::default(), NOW + 301, &req);
    assert_eq!(refusal(&a).reason, RejectReason::StaleTimestamp);
    assert!(refusal(&a).message.contains("301 s behind"), "{:?}", refusal(&a));
    // A stale timestamp is not a signature failure: no -40001 "bad signature" in the log line.
    assert_eq!(refusal(&a).code, None, "{:?}", refusal(&a));
    let a = admit(&one(None), &Policy::default().freshness_secs(0), NOW + 100_000, &req);
    assert!(matches!(a.verdict, Verdict::Message { .. }), "{a:?}");
}

#[test]
fn a_safe_mode_accounts_captured_signature_does_not_carry_a_forged_plain_body() {
    // The URL of a real safe-mode callback carries a valid `signature` that covers no body.
    let captured = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
    let forged = plain_body("transfer everything");
    for mode in [Mode::Safe, Mode::Compatible] {
        // Alone, and next to a plain-mode account on the same server.
        let plain_neighbour = Account::new("wxplain", "othertoken").with_path("plain");
        for accounts in
            [one(Some(mode)), Accounts::new([sample(Some(mode)).with_path("safe"), plain_neighbour]).unwrap()]
        {
            for path in ["/wechat/safe", "/wechat"] {
                let a = admit(
                    &accounts,
                    &Policy::default(),
                    NOW,
                    &Request::post(path, &captured, forged.as_bytes()),
                );
                let r = refusal(&a);
                assert_eq!((r.reason, r.status), (RejectReason::PlainRefused, 403), "{mode} {path}: {r:?}");
                assert!(r.message.contains(&format!("{mode} mode")), "{}", r.message);
                // Refused before the body was read.
                assert!(a.checks.iter().all(|c| c.kind != CheckKind::Body), "{:?}", a.checks);
            }
        }
        // The same forgery with encrypt_type=aes and plain fields (compatible shape) but no
        // valid msg_signature is refused too.
        let q = format!("{captured}&encrypt_type=aes&msg_signature=0000");
        let body =
            forged.replace("</xml>", &format!("<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"));
        let a = admit(&one(Some(mode)), &Policy::default(), NOW, &Request::post("/", &q, body.as_bytes()));
        assert_eq!(refusal(&a).reason, RejectReason::SignatureMismatch);
    }
    // An account with no declared mode (or plain) still admits plain requests.
    let plain = admit(&one(None), &Policy::default(), NOW, &Request::post("/", &captured, forged.as_bytes()));
    assert!(matches!(plain.verdict, Verdict::Message { .. }), "{plain:?}");
    let all = Policy::default().require_encryption(true);
    let a = admit(&one(None), &all, NOW, &Request::post("/", &captured, forged.as_bytes()));
    assert_eq!(refusal(&a).reason, RejectReason::PlainRefused);
}

/// A body with `<Encrypt>` makes the request encrypted as far as the mode goes, but an account
/// that requires encryption admits only what the query says is `encrypt_type=aes` (and so
/// carries a `msg_signature`): `signature` alone covers no body. Here the query alone cannot
/// refuse it (a plain-mode account shares the Token); the body's `ToUserName` names the
/// safe-mode one.
#[test]
fn an_envelope_without_encrypt_type_is_refused_where_encryption_is_required() {
    let captured = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
    let body = safe_body();
    let accounts = || {
        let plain = Account::new("wxplain", TOKEN).with_original_id("gh_plain").with_path("plain");
        Accounts::new([sample(Some(Mode::Safe)).with_path("safe"), plain]).unwrap()
    };
    let a =
        admit(&accounts(), &Policy::default(), NOW, &Request::post("/wechat", &captured, body.as_bytes()));
    let r = refusal(&a);
    assert_eq!((r.reason, r.status, r.param), (RejectReason::PlainRefused, 403, "encrypt_type"), "{r:?}");
    assert_eq!(a.mode, Some(Mode::Safe), "{a:?}");
    assert_eq!(a.account.as_deref().map(Account::appid), Some(SAMPLE_APPID), "{a:?}");
    assert_eq!(a.checks.last().map(|c| (c.kind, c.passed)), Some((CheckKind::Mode, false)), "{a:?}");
    // With `encrypt_type=aes` and its `msg_signature`, the same body is admitted.
    let a = admit(
        &accounts(),
        &Policy::default(),
        NOW,
        &Request::post("/wechat", &safe_query(), body.as_bytes()),
    );
    assert!(matches!(a.verdict, Verdict::Message { .. }), "{a:?}");
}

#[test]
fn the_signature_is_checked_before_the_body_is_parsed() {
    let bomb: String = std::iter::once("<xml".to_owned())
        .chain((0..4000).map(|i| format!(" a{i}=\"\"")))
        .chain(std::iter::once("/>".to_owned()))
        .collect();
    for query in [String::new(), format!("signature=00&timestamp={TS}&nonce={NONCE}")] {
        let a = admit(&one(None), &Policy::default(), NOW, &Request::post("/", &query, bomb.as_bytes()));
        assert!(matches!(refusal(&a).reason, RejectReason::MissingParam | RejectReason::SignatureMismatch));
        assert!(a.checks.iter().all(|c| c.kind != CheckKind::Body), "{:?}", a.checks);
    }
    // Signed, it is parsed (linearly) and read as a plain body without fields.
    let q = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
    let a = admit(&one(None), &Policy::default(), NOW, &Request::post("/", &q, bomb.as_bytes()));
    let (_, document) = passed(&a);
    assert_eq!(document.root.attrs.len(), 4000);
}

#[test]
fn the_refusal_body_does_not_tell_the_tokens_length() {
    let q = safe_query().replace(MSG_SIG, "5d197aaffba7e9b25a30732f161a50dee96bd5f0");
    let body = safe_body();
    let a = admit(&one(None), &Policy::default(), NOW, &Request::post("/", &q, body.as_bytes()));
    let r = refusal(&a);
    assert_eq!((r.reason, r.param, r.status), (RejectReason::SignatureMismatch, "msg_signature", 403));
    assert!(r.body().starts_with("-40001 msg_signature mismatch"), "{}", r.body());
    assert!(!r.body().contains("length") && !r.body().contains('8'), "{}", r.body());
    assert_eq!(r.detail.as_deref(), Some("computed from token of length 8"));
    let failed: Vec<&Check> = a.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].kind, CheckKind::MsgSignature);
}

#[test]
fn the_account_is_picked_by_path_then_signature_then_to_user_name() {
    let a = sample(None).with_path("a");
    let b = Account::new("wxb", TOKEN).with_original_id("gh_b").with_path("b");
    let c = Account::new("wxc", "tokenc").with_path("c");
    let accounts = Accounts::new([a, b, c]).unwrap();
    let q = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
    let pick = |path: &str, body: &str| {
        let adm = admit(&accounts, &Policy::default(), NOW, &Request::post(path, &q, body.as_bytes()));
        (adm.account.as_ref().map(|a| a.appid().to_owned()), adm.refusal().map(|r| r.reason))
    };
    // By path; the path's account must sign.
    assert_eq!(pick("/w/b", &plain_body("x")), (Some("wxb".into()), None));
    assert_eq!(pick("/w/c", &plain_body("x")).1, Some(RejectReason::SignatureMismatch));
    // a and b share a Token: ToUserName decides.
    assert_eq!(pick("/w", &plain_body("x")), (Some(SAMPLE_APPID.into()), None));
    assert_eq!(pick("/w", &plain_body("x").replace(GH, "gh_b")), (Some("wxb".into()), None));
    assert_eq!(
        pick("/w", &plain_body("x").replace(GH, "gh_nobody")),
        (None, Some(RejectReason::UnknownAccount))
    );
    // c alone signs with its Token.
    let qc = format!("signature={}&timestamp={TS}&nonce={NONCE}", signature::sign("tokenc", TS, NONCE));
    let adm =
        admit(&accounts, &Policy::default(), NOW, &Request::post("/w", &qc, plain_body("x").as_bytes()));
    assert_eq!(adm.account.map(|a| a.appid().to_owned()).as_deref(), Some("wxc"));
    // Nobody's Token: refused before the body is read.
    let q0 = format!("signature={}&timestamp={TS}&nonce={NONCE}", signature::sign("nobody", TS, NONCE));
    let adm = admit(&accounts, &Policy::default(), NOW, &Request::post("/w", &q0, b"<xml"));
    assert_eq!(refusal(&adm).reason, RejectReason::SignatureMismatch);
}

#[test]
fn every_refusal_is_one_specific_line() {
    let acc = one(None);
    let p = Policy::default();
    let cases: Vec<(String, &str, &[u8], RejectReason, u16)> = vec![
        (String::new(), "PUT", b"", RejectReason::MethodNotAllowed, 405),
        (format!("timestamp={TS}&nonce={NONCE}"), "POST", b"", RejectReason::MissingParam, 400),
        (format!("signature=0&nonce={NONCE}"), "POST", b"", RejectReason::MissingParam, 400),
        (
            format!("signature={}&timestamp={TS}&nonce={NONCE}&encrypt_type=aes", sig()),
            "POST",
            b"",
            RejectReason::MissingParam,
            400,
        ),
        (
            format!("signature={}&timestamp=soon&nonce={NONCE}", signature::sign(TOKEN, "soon", NONCE)),
            "POST",
            b"",
            RejectReason::BadTimestamp,
            400,
        ),
        (
            format!("signature={}&timestamp={TS}&nonce={NONCE}", sig()),
            "POST",
            b"\xff",
            RejectReason::BadXml,
            400,
        ),
        (
            format!("signature={}&timestamp={TS}&nonce={NONCE}", sig()),
            "POST",
            b"<xml><a></xml>",
            RejectReason::BadXml,
            400,
        ),
        (safe_query(), "POST", b"<xml><ToUserName>x</ToUserName></xml>", RejectReason::MissingEncrypt, 400),
    ];
    for (q, method, body, reason, status) in cases {
        let a = admit(&acc, &p, NOW, &Request { method, path: "/", query: &q, body });
        let r = refusal(&a);
        assert_eq!((r.reason, r.status), (reason, status), "{q}: {r:?}");
        assert_eq!(r.body().trim_end().lines().count(), 1, "{r:?}");
        assert!(!r.body().contains(TOKEN) && !r.body().contains(SAMPLE_KEY));
    }
}

/// WeCom's public test vector (as used by wechatpy's WeCom crypto tests): Token, key and
/// corpid, a URL verification and a message.
mod wecom {
    use super::*;

    const W_TOKEN: &str = "123456";
    const W_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const CORPID: &str = "wx49f0ab532d5d035a";
    const ECHO_TS: &str = "1411443780";
    const ECHO_NONCE: &str = "437374425";
    const ECHO_SIG: &str = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96";
    const ECHOSTR: &str =
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
    const MSG_TS: &str = "1411525903";
    const MSG_NONCE: &str = "461056294";
    const MSG_SIG: &str = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d";
    const MSG_ENCRYPT: &str = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";

    fn app() -> Account {
        Account::wecom(CORPID, W_TOKEN, W_KEY).unwrap().with_agentid("1").with_path("corp")
    }

    /// An Official Account on /wechat and the WeCom app on /corp, as one server has them.
    fn server() -> Accounts {
        Accounts::new([sample(None).with_path("wechat"), app()]).unwrap()
    }

    fn lenient() -> Policy {
        Policy::default().freshness_secs(0)
    }

    fn echo_query(sig: &str, nonce: &str) -> String {
        let echostr = crate::wechat::percent_encode(ECHOSTR);
        format!("msg_signature={sig}&timestamp={ECHO_TS}&nonce={nonce}&echostr={echostr}")
    }

    #[test]
    fn url_verification_answers_the_decrypted_echostr() {
        for path in ["/corp", "/elsewhere"] {
            let q = echo_query(ECHO_SIG, ECHO_NONCE);
            let a = admit(&server(), &lenient(), 0, &Request::get(path, &q));
            let Verdict::Verified { echostr } = &a.verdict else { panic!("{path}: {a:?}") };
            assert_eq!(echostr, "5927782489442352469", "{path}");
            assert_eq!(a.account.as_deref().map(Account::appid), Some(CORPID));
            assert!(a.checks.iter().any(|c| c.kind == CheckKind::Decrypt && c.passed), "{:?}", a.checks);
        }
        // An unescaped `+` (decoded as a space) still verifies.
        let raw =
            format!("msg_signature={ECHO_SIG}&timestamp={ECHO_TS}&nonce={ECHO_NONCE}&echostr={ECHOSTR}");
        let a = admit(&server(), &lenient(), 0, &Request::get("/corp", &raw));
        assert!(
            matches!(a.verdict, Verdict::Verified { ref echostr } if echostr == "5927782489442352469"),
            "{a:?}"
        );
    }

    #[test]
    fn a_forged_msg_signature_is_refused() {
        // The vector's own negative case: another nonce.
        let q = echo_query(ECHO_SIG, "437374424");
        let a = admit(&server(), &lenient(), 0, &Request::get("/corp", &q));
        let r = refusal(&a);
        assert_eq!((r.status, r.reason, r.param), (403, RejectReason::SignatureMismatch, "msg_signature"));
        assert!(!r.body().contains(W_TOKEN));
        // Not via the path either.
        let a = admit(&server(), &lenient(), 0, &Request::get("/elsewhere", &q));
        assert_eq!(refusal(&a).reason, RejectReason::SignatureMismatch);
    }

    #[test]
    fn an_official_accounts_plain_echostr_is_not_a_wecom_answer() {
        // An Official Account's verification sent to the WeCom app: no msg_signature.
        let q = format!(
            "signature={}&timestamp={ECHO_TS}&nonce={ECHO_NONCE}&echostr=plain",
            signature::sign(W_TOKEN, ECHO_TS, ECHO_NONCE)
        );
        let a = admit(&server(), &lenient(), 0, &Request::get("/corp", &q));
        assert_eq!(refusal(&a).param, "msg_signature");
        // WeCom's encrypted echostr sent to the Official Account is not decrypted or echoed.
        let q = echo_query(ECHO_SIG, ECHO_NONCE);
        let a = admit(&server(), &lenient(), 0, &Request::get("/wechat", &q));
        assert_eq!(refusal(&a).param, "signature");
    }

    #[test]
    fn a_wecom_message_is_decrypted_for_the_corpid_with_its_agentid() {
        let body = format!(
            "<xml><ToUserName><![CDATA[{CORPID}]]></ToUserName>\n<Encrypt><![CDATA[{MSG_ENCRYPT}]]></Encrypt>\n\
             <AgentID><![CDATA[1]]></AgentID>\n</xml>"
        );
        let q = format!("msg_signature={MSG_SIG}&timestamp={MSG_TS}&nonce={MSG_NONCE}");
        for path in ["/corp", "/elsewhere"] {
            let a = admit(&server(), &lenient(), 0, &Request::post(path, &q, body.as_bytes()));
            let (_, document) = passed(&a);
            assert_eq!(document.root.text_of("Content"), Some("test"));
            assert_eq!(document.root.text_of("FromUserName"), Some("messense"));
            assert_eq!(a.mode, Some(Mode::Safe));
            let incoming = crate::Incoming::from_document(&document);
            assert_eq!(incoming.header().from, "messense");
        }
        // The same envelope with a forged signature, and with a freshness window, is refused.
        let forged = format!("msg_signature={}&timestamp={MSG_TS}&nonce={MSG_NONCE}", "0".repeat(40));
        let a = admit(&server(), &lenient(), 0, &Request::post("/corp", &forged, body.as_bytes()));
        assert_eq!(refusal(&a).reason, RejectReason::SignatureMismatch);
        let a = admit(&server(), &Policy::default(), NOW, &Request::post("/corp", &q, body.as_bytes()));
        assert_eq!(refusal(&a).reason, RejectReason::StaleTimestamp);
        // Sealed for another corp: the ReceiveId check refuses it.
        let other = Account::wecom("ww0000000000000009", W_TOKEN, W_KEY).unwrap();
        let a =
            admit(&Accounts::new([other]).unwrap(), &lenient(), 0, &Request::post("/", &q, body.as_bytes()));
        assert_eq!(refusal(&a).reason, RejectReason::AppidMismatch);
    }

    #[test]
    fn the_platform_side_round_trips_through_admission() {
        let platform =
            crate::wechat::Platform::new(W_TOKEN).with_cipher(crate::Cipher::new(W_KEY, CORPID).unwrap());
        let req = platform.wecom_verification(MSG_TS, "7", "hello-echo", [3; 16]).unwrap();
        let a = admit(&server(), &lenient(), 0, &Request::get("/corp", &req.query_string()));
        assert!(matches!(a.verdict, Verdict::Verified { ref echostr } if echostr == "hello-echo"), "{a:?}");
        let xml = "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>\
                   <CreateTime>1411525903</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[enter_agent]]></Event>\
                   <EventKey><![CDATA[]]></EventKey><AgentID>1</AgentID></xml>";
        let req = platform.wecom_post(xml, Some("1"), MSG_TS, "8", [4; 16]).unwrap();
        assert!(req.param("signature").is_none() && req.body.contains("<AgentID>"), "{req:?}");
        let a = admit(
            &server(),
            &lenient(),
            0,
            &Request::post("/corp", &req.query_string(), req.body.as_bytes()),
        );
        let (_, document) = passed(&a);
        let incoming = crate::Incoming::from_document(&document);
        let crate::Incoming::Event(crate::Event::EnterAgent(e)) = &incoming else { panic!("{incoming:?}") };
        assert_eq!(e.header.agent_id.as_deref(), Some("1"));
    }
}

/// Mini Program message push: XML or JSON, plain or safe.
mod miniprogram {
    use super::*;

    const MP: &str = "wx2c2769f8efd9abc2";

    fn mp() -> Accounts {
        Accounts::new([Account::miniprogram(MP, TOKEN).with_aes_key(SAMPLE_KEY).unwrap()]).unwrap()
    }

    const JSON: &str = r#"{"ToUserName":"gh_mp","FromUserName":"oMini","CreateTime":1409735669,"MsgType":"text","Content":"hello","MsgId":7}"#;

    #[test]
    fn a_plain_json_push_is_read_as_its_xml_would_be() {
        let q = format!("signature={}&timestamp={TS}&nonce={NONCE}", sig());
        let a = admit(&mp(), &Policy::default(), NOW, &Request::post("/mp", &q, JSON.as_bytes()));
        let (xml, document) = passed(&a);
        assert_eq!(xml, JSON, "the raw body is kept as it arrived");
        let crate::Incoming::Text(t) = crate::Incoming::from_document(&document) else {
            panic!("{document:?}")
        };
        assert_eq!((t.content.as_str(), t.header.from.as_str(), t.id), ("hello", "oMini", 7));
        // An Official Account does not read JSON.
        let oa = one(None);
        let a = admit(&oa, &Policy::default(), NOW, &Request::post("/mp", &q, JSON.as_bytes()));
        assert_eq!(refusal(&a).reason, RejectReason::BadXml);
    }

    #[test]
    fn a_safe_json_push_is_opened() {
        let platform =
            crate::wechat::Platform::new(TOKEN).with_cipher(crate::Cipher::new(SAMPLE_KEY, MP).unwrap());
        let xml = Document::from_json(JSON).unwrap().root.to_xml();
        let req = platform.post_json(Mode::Safe, &xml, "oMini", "gh_mp", TS, NONCE, [5; 16]).unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(envelope["ToUserName"], "gh_mp");
        assert!(envelope["Encrypt"].is_string() && envelope.get("Content").is_none(), "{envelope}");
        let a = admit(
            &mp(),
            &Policy::default(),
            NOW,
            &Request::post("/mp", &req.query_string(), req.body.as_bytes()),
        );
        let (_, document) = passed(&a);
        assert_eq!(a.mode, Some(Mode::Safe));
        assert_eq!(document.root.text_of("Content"), Some("hello"));
        // A tampered Encrypt fails msg_signature.
        let tampered = req.body.replacen("\"Encrypt\":\"", "\"Encrypt\":\"A", 1);
        let a = admit(
            &mp(),
            &Policy::default(),
            NOW,
            &Request::post("/mp", &req.query_string(), tampered.as_bytes()),
        );
        assert_eq!(refusal(&a).reason, RejectReason::SignatureMismatch);
        // Broken JSON is a clear 400.
        let a = admit(
            &mp(),
            &Policy::default(),
            NOW,
            &Request::post("/mp", &req.query_string(), b"{\"ToUserName\":"),
        );
        let r = refusal(&a);
        assert_eq!((r.status, r.reason), (400, RejectReason::BadXml));
        assert!(r.message.contains("JSON"), "{}", r.message);
    }
}

/// An Open Platform authorization push (no MsgType, `<AppId>` instead of `ToUserName`)
/// is admitted by the component's own account: safe mode, decrypted for the component
/// appid; a push sealed for another appid or signed with another Token is refused.
#[test]
fn a_component_push_is_admitted_by_the_component_account() {
    use crate::component::{ComponentEvent, ComponentPush};
    const COMPONENT: &str = "wx3a7d1c0b9e8f6a21";
    let account = Account::new(COMPONENT, "componenttoken")
        .with_aes_key(SAMPLE_KEY)
        .unwrap()
        .with_mode(Mode::Safe)
        .with_path("component");
    let accounts = Accounts::new([account, sample(None)]).unwrap();
    let push = format!(
        "<xml><AppId>{COMPONENT}</AppId><CreateTime>{NOW}</CreateTime>\
         <InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@x</ComponentVerifyTicket></xml>"
    );
    let platform = crate::wechat::Platform::new("componenttoken")
        .with_cipher(crate::Cipher::new(SAMPLE_KEY, COMPONENT).unwrap());
    let admit_push = |req: &crate::wechat::SignedRequest| {
        admit(
            &accounts,
            &Policy::default(),
            NOW,
            &Request::post("/component", &req.query_string(), req.body.as_bytes()),
        )
    };
    let req = platform.component_post(&push, TS, NONCE, [9; 16]).unwrap();
    let a = admit_push(&req);
    let (_, document) = passed(&a);
    assert_eq!(a.mode, Some(Mode::Safe));
    assert_eq!(a.account.as_ref().map(|a| a.appid()), Some(COMPONENT));
    let read = ComponentPush::from_document(&document).unwrap();
    assert!(
        matches!(read.event, ComponentEvent::VerifyTicket { ref ticket } if ticket.expose() == "ticket@@@x")
    );

    // Sealed for another appid: the ReceiveId check refuses it.
    let other = crate::wechat::Platform::new("componenttoken")
        .with_cipher(crate::Cipher::new(SAMPLE_KEY, "wxsomeoneelse").unwrap());
    let req = other.component_post(&push, TS, NONCE, [9; 16]).unwrap();
    let a = admit_push(&req);
    assert_eq!(refusal(&a).reason, RejectReason::AppidMismatch);

    // Signed with another Token.
    let forged = crate::wechat::Platform::new("not-the-token")
        .with_cipher(crate::Cipher::new(SAMPLE_KEY, COMPONENT).unwrap());
    let req = forged.component_post(&push, TS, NONCE, [9; 16]).unwrap();
    let a = admit_push(&req);
    assert_eq!(refusal(&a).reason, RejectReason::SignatureMismatch);
}

/// A message for an account that authorized a third-party platform arrives at
/// `…/<authorizer appid>` sealed with the platform's Token and key, its ReceiveId the
/// component appid: an account for the authorizer with the component's cipher admits it, and
/// one expecting its own appid inside refuses it.
#[test]
fn an_authorizer_message_is_sealed_for_the_component() {
    const COMPONENT: &str = "wx3a7d1c0b9e8f6a21";
    const AUTHORIZER: &str = "wxf8b4f85f3a794e77";
    let component_cipher = crate::Cipher::new(SAMPLE_KEY, COMPONENT).unwrap();
    let authorizer = Account::new(AUTHORIZER, "componenttoken")
        .with_cipher(component_cipher.clone())
        .with_mode(Mode::Safe)
        .with_path(AUTHORIZER);
    let platform = crate::wechat::Platform::new("componenttoken").with_cipher(component_cipher);
    let xml = plain_body("hi");
    let req = platform.post(Mode::Safe, &xml, "oUser", GH, TS, NONCE, [4; 16]).unwrap();
    let path = format!("/wechat/{AUTHORIZER}");
    let a = admit(
        &Accounts::new([authorizer]).unwrap(),
        &Policy::default(),
        NOW,
        &Request::post(&path, &req.query_string(), req.body.as_bytes()),
    );
    let (_, document) = passed(&a);
    assert_eq!(a.account.as_ref().map(|a| a.appid()), Some(AUTHORIZER));
    assert_eq!(document.root.text_of("Content"), Some("hi"));

    let own_key = Account::new(AUTHORIZER, "componenttoken")
        .with_aes_key(SAMPLE_KEY)
        .unwrap()
        .with_mode(Mode::Safe)
        .with_path(AUTHORIZER);
    let a = admit(
        &Accounts::new([own_key]).unwrap(),
        &Policy::default(),
        NOW,
        &Request::post(&path, &req.query_string(), req.body.as_bytes()),
    );
    assert_eq!(refusal(&a).reason, RejectReason::AppidMismatch);
}

proptest::proptest! {
    /// A note's quoted path is what `{:?}` writes, for paths and for any text.
    #[test]
    fn push_debug_is_debug(text in "(/[a-zA-Z0-9_.~-]{0,12}){0,3}|[ -~\"\\\\\t\n\u{7f}\u{300}\u{200b}中]{0,8}") {
        let mut out = "x".to_owned();
        push_debug(&mut out, &text);
        proptest::prop_assert_eq!(out, format!("x{text:?}"));
    }

    #[test]
    fn push_debug_is_debug_on_any_text(text in proptest::prelude::any::<String>()) {
        let mut out = String::new();
        push_debug(&mut out, &text);
        proptest::prop_assert_eq!(out, format!("{text:?}"));
    }
}

/// The notes written without `core::fmt` read as the formatted ones did.
#[test]
fn written_notes_read_as_formatted_ones() {
    let mut note = Note::written();
    signs_the_request(&mut note, "wx1");
    assert_eq!(note, format!("account {} signs the request", "wx1"));
    let mut note = Note::written();
    encrypt_of(&mut note, 1234);
    assert_eq!(note, format!("<Encrypt> of {} characters", 1234));
    let mut note = Note::written();
    push_debug(&mut note, "/路径\"");
    assert_eq!(note, format!("{:?}", "/路径\""));
}

/// The account's note names the request's path as it is, whatever its length (one past
/// what a note keeps inline too) or its characters.
#[test]
fn the_account_note_names_any_path() {
    let q = safe_query();
    let body = safe_body();
    for path in ["/", "/wechat/a-path-long-enough-to-be-kept-in-a-string", "/微信/\"x\"", "/w"] {
        let a =
            admit(&one(Some(Mode::Safe)), &Policy::default(), NOW, &Request::post(path, &q, body.as_bytes()));
        assert!(a.refusal().is_none(), "{path}: {:?}", a.refusal());
        assert_eq!(
            a.checks[1].to_string(),
            format!("account ok: path {path:?} selects account {SAMPLE_APPID}")
        );
    }
}
