//! Any request through admission, the code every unauthenticated request reaches: the
//! input's first byte picks the method, policy and path, its first line is the query and the
//! rest the body. Accounts of every kind, plain and encrypted, share the server. Nothing may
//! panic; with signatures checked, a request without a valid `signature`/`msg_signature` for
//! one of the Tokens must never be accepted. With the check skipped (WeChat's debugging tool
//! setting) the fuzzer gets past the signatures and into envelopes, decryption and parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wemp_proto::Mode;
use wemp_proto::admission::{self, Account, Accounts, Policy, Request, Verdict};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOW: i64 = 1_700_000_000;

fn accounts() -> &'static Accounts {
    static ACCOUNTS: std::sync::OnceLock<Accounts> = std::sync::OnceLock::new();
    ACCOUNTS.get_or_init(|| {
        Accounts::new(vec![
            Account::new("wxplain", "plaintoken").with_path("plain"),
            Account::new("wxsafe", "safetoken")
                .with_aes_key(KEY)
                .unwrap()
                .with_mode(Mode::Safe)
                .with_path("safe"),
            Account::new("wxcompat", "compattoken")
                .with_aes_key(KEY)
                .unwrap()
                .with_mode(Mode::Compatible)
                .with_original_id("gh_compat")
                .with_path("compat"),
            Account::wecom("ww0123456789abcdef", "wecomtoken", KEY)
                .unwrap()
                .with_agentid("1000002")
                .with_path("wecom"),
            Account::miniprogram("wxmini", "minitoken").with_aes_key(KEY).unwrap().with_path("mini"),
        ])
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else { return };
    let path =
        ["/wechat", "/wechat/plain", "/wechat/safe", "/wechat/compat", "/wechat/wecom", "/wechat/mini", "/x"]
            [usize::from(pick >> 4) % 7];
    let skip = pick & 1 == 1;
    let mut policy = Policy::default();
    policy.insecure_skip_signature = skip;
    policy.require_encryption = pick & 2 == 2;
    let request = if pick & 4 == 4 { Request::get(path, query) } else { Request::post(path, query, body) };
    let admission = admission::admit(accounts(), &policy, NOW, &request);
    if !skip {
        // Random bytes cannot forge a SHA-1 signature: whatever is accepted carried none.
        assert!(
            !matches!(admission.verdict, Verdict::Message { .. } | Verdict::Verified { .. }),
            "an unsigned request was admitted: {:?}",
            admission.checks
        );
    }
});
