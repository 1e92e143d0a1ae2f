//! Instructions and allocations of one safe-mode admission, with its checks recorded
//! (`admit`, argument `kept`) or not (`admit_unrecorded`): 2 000 signed and encrypted text
//! messages, admitted one after another. Counted by callgrind (BENCHMARKS.md, "Admission with
//! and without its checks"):
//!
//! ```sh
//! cargo build --release -p wemp-proto --example admission_cost
//! valgrind --tool=callgrind --toggle-collect='*run_admissions*' target/release/examples/admission_cost kept
//! ```

#![allow(clippy::print_stdout)]

use wemp_proto::admission::{Account, Accounts, Admission, Policy, Request, admit, admit_unrecorded};
use wemp_proto::wechat::Platform;
use wemp_proto::{Cipher, Mode};

const TOKEN: &str = "wempBench2026";
const APPID: &str = "wx62656e6368776d70";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TS: &str = "1796405671";

#[inline(never)]
fn run_admissions(accounts: &Accounts, reqs: &[(String, String)], keep: bool) -> usize {
    let mut n = 0;
    for (q, body) in reqs {
        let request = Request::post("/wechat", q, body.as_bytes());
        let a: Admission = if keep {
            admit(accounts, &Policy::default(), 1_796_405_671, &request)
        } else {
            admit_unrecorded(accounts, &Policy::default(), 1_796_405_671, &request)
        };
        n += usize::from(a.refusal().is_none()) + a.checks.len();
        std::hint::black_box(a);
    }
    n
}

fn main() {
    let keep = std::env::args().nth(1).as_deref() == Some("kept");
    let accounts =
        Accounts::new([Account::new(APPID, TOKEN).with_aes_key(KEY).unwrap().with_mode(Mode::Compatible)])
            .unwrap();
    let platform = Platform::new(TOKEN).with_cipher(Cipher::new(KEY, APPID).unwrap());
    let reqs: Vec<(String, String)> = (0..2000u32)
        .map(|i| {
            let xml = format!(
                "<xml><ToUserName><![CDATA[gh_0be4c4be4c4b]]></ToUserName><FromUserName><![CDATA[oBench{i:022}]]></FromUserName><CreateTime>{TS}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[bench message {i}]]></Content><MsgId>{}</MsgId></xml>",
                1_000_000 + i
            );
            let r = platform
                .post(Mode::Safe, &xml, &format!("oBench{i:022}"), "gh_0be4c4be4c4b", TS, &i.to_string(), [7; 16])
                .unwrap();
            (r.query_string(), r.body.clone())
        })
        .collect();
    let n = run_admissions(&accounts, &reqs, keep);
    println!("{} admissions, {n} accepted+checks", reqs.len());
}
