//! `wemp crypto` and `wemp parse` run as a user would: the built binary, stdin, exit codes.

mod common;

use common::{AES_KEY as KEY, APPID, wemp_with_stdin};

const ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn wemp(args: &[&str], stdin: &str) -> Run {
    let out = wemp_with_stdin(args, Some(stdin));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn sign_prints_both_signatures() {
    let run = wemp(
        &["crypto", "sign", "--token", "weixin", "--timestamp", "1540176606", "--nonce", "1854606751"],
        "",
    );
    assert_eq!((run.code, run.stdout.trim()), (0, "6a62fc79ddf83b3ff96e5cbd068b983f88f192ba"));
    let run = wemp(
        &[
            "crypto",
            "sign",
            "--token",
            "spamtest",
            "--timestamp",
            "1409735669",
            "--nonce",
            "1320562132",
            "--encrypt",
            ENCRYPT,
        ],
        "",
    );
    assert_eq!(run.stdout.trim(), "5d197aaffba7e9b25a30732f161a50dee96bd5fa");
}

#[test]
fn decrypt_body_with_verification() {
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{ENCRYPT}]]></Encrypt></xml>"
    );
    let args = [
        "crypto",
        "decrypt",
        "--aes-key",
        KEY,
        "--appid",
        APPID,
        "--token",
        "spamtest",
        "--timestamp",
        "1409735669",
        "--nonce",
        "1320562132",
        "--msg-signature",
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    ];
    let run = wemp(&args, &body);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("<Content><![CDATA[abcdteT]]></Content>"));
    // A bare Encrypt value works too.
    let run = wemp(&["crypto", "decrypt", "--aes-key", KEY, "--appid", APPID], ENCRYPT);
    assert!(run.stdout.contains("abcdteT"));
    // A wrong signature is -40001 and nothing is printed on stdout.
    let mut bad = args;
    bad[13] = "0000000000000000000000000000000000000000";
    let run = wemp(&bad, &body);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.starts_with("-40001 bad signature: msg_signature mismatch"), "{}", run.stderr);
}

#[test]
fn decrypt_failures_name_the_reference_code() {
    let run = wemp(&["crypto", "decrypt", "--aes-key", KEY, "--appid", "wx0000000000000000"], ENCRYPT);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        "-40005 appid mismatch: expected wx0000000000000000, found wx2c2769f8efd9abc2"
    );
    let run = wemp(&["crypto", "decrypt", "--aes-key", "short", "--appid", APPID], ENCRYPT);
    assert_eq!(run.code, 2, "an invalid key is a usage error (README: exit codes)");
    assert!(
        run.stderr.starts_with("-40004 illegal AES key: EncodingAESKey must be 43 characters"),
        "{}",
        run.stderr
    );
    let run = wemp(&["crypto", "decrypt", "--aes-key", KEY, "--appid", APPID], "%%%");
    assert!(run.stderr.starts_with("-40010 "), "{}", run.stderr);
    let run = wemp(
        &["crypto", "decrypt", "--aes-key", KEY, "--appid", APPID],
        "<xml><ToUserName>x</ToUserName></xml>",
    );
    assert!(run.stderr.starts_with("-40002 "), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn encrypt_reproduces_the_official_ciphertext_and_round_trips() {
    let plain = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
    let run = wemp(
        &[
            "crypto",
            "encrypt",
            "--aes-key",
            KEY,
            "--appid",
            APPID,
            "--token",
            "spamtest",
            "--timestamp",
            "1409735669",
            "--nonce",
            "1320562132",
            "--random",
            "89465c840c5f116f",
        ],
        plain,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("<Encrypt><![CDATA[{ENCRYPT}]]></Encrypt>")), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("<MsgSignature><![CDATA[5d197aaffba7e9b25a30732f161a50dee96bd5fa]]></MsgSignature>")
    );
    // Default timestamp/nonce/random: decrypting the envelope gives the input back.
    let run =
        wemp(&["crypto", "encrypt", "--aes-key", KEY, "--appid", APPID, "--token", "t"], "<xml>hi</xml>");
    let back = wemp(&["crypto", "decrypt", "--aes-key", KEY, "--appid", APPID], &run.stdout);
    assert_eq!(back.stdout.trim(), "<xml>hi</xml>");
}

#[test]
fn parse_prints_typed_json_and_raw() {
    let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
               <CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>\
               <EventKey><![CDATA[qrscene_42]]></EventKey></xml>";
    let run = wemp(&["parse"], xml);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((json["kind"].as_str(), json["event"].as_str()), (Some("event"), Some("subscribe")));
    assert_eq!(json["event_key"], "qrscene_42");
    let run = wemp(&["parse", "--raw"], xml);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["name"], "xml");
    assert_eq!(json["children"][5]["text"], "qrscene_42");
    let run = wemp(&["parse"], "<xml><a></xml>");
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("-40002 XML parse error"), "{}", run.stderr);
}

/// An event wemp does not model prints `event` once (the tag; the name is `event_name`), and
/// a MsgId past 2^53 is a string, so any JSON reader keeps it exact.
#[test]
fn parse_prints_each_key_once_and_ids_as_strings() {
    let xml = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
               <MsgType>event</MsgType><Event>weird_thing</Event><Foo>1</Foo></xml>";
    let run = wemp(&["parse"], xml);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let top_level_keys: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    let mut unique = top_level_keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), top_level_keys.len(), "a key printed twice: {}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((json["event"].as_str(), json["event_name"].as_str()), (Some("unknown"), Some("weird_thing")));
    let text = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
                <MsgType>text</MsgType><Content>x</Content><MsgId>9223372036854775807</MsgId></xml>";
    let json: serde_json::Value = serde_json::from_str(&wemp(&["parse"], text).stdout).unwrap();
    assert_eq!(json["id"], "9223372036854775807");
}
