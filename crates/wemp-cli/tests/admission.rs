//! Admission through the `wemp` binary over real sockets (issues 11 §1 and 16 items 1, 3, 6):
//! each account's mode is enforced for it alone, the attribute bomb is refused before it is
//! parsed, a declared body over the limit gets `413` before anything is read, and the
//! timestamp window is measured from when the request's head arrived, not its body.

mod common;

use std::time::{Duration, Instant};

use common::{
    AES_KEY, APPID, ServeProc, out, post, raw, signed_query, sim_send, temp_dir, text_xml, wemp_in,
};

#[test]
fn a_captured_safe_mode_signature_cannot_post_a_forged_plain_body() {
    let dir = temp_dir("admission-forgery");
    // A mixed-mode server: a safe-mode account next to a plain one.
    let config = dir.join("mixed.toml");
    std::fs::write(
        &config,
        format!(
            "[[accounts]]\ntoken = \"SafeToken1\"\nappid = \"{APPID}\"\naes_key = \"{AES_KEY}\"\nmode = \"safe\"\n\
             path = \"/wechat/safe\"\n\n[[accounts]]\ntoken = \"PlainToken2\"\npath = \"/wechat/plain\"\n"
        ),
    )
    .unwrap();
    let srv = ServeProc::start(&dir, &["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    let addr = srv.addr();
    let safe_url = format!("http://{addr}/wechat/safe");
    let plain_url = format!("http://{addr}/wechat/plain");

    let (status, whole) = post(
        &addr,
        &format!("/wechat/safe?{}", signed_query("SafeToken1", "oVictim")),
        &text_xml("oVictim", 77, "forged"),
    );
    assert!(status.starts_with("HTTP/1.1 403"), "{whole}");
    assert!(whole.contains("plain-mode request refused"), "{whole}");
    // Both accounts still work as WeChat uses them.
    let o = sim_send(&dir, &safe_url, "SafeToken1", "safe", &["text", "help"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = sim_send(&dir, &plain_url, "PlainToken2", "plain", &["text", "help"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = sim_send(&dir, &safe_url, "SafeToken1", "plain", &["text", "help"]);
    assert!(!o.status.success(), "plain to the safe account: {}", out(&o));
    drop(srv);

    // A compatible-mode account trusts only what is encrypted.
    let srv = ServeProc::start(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--token",
            "CompatTok1",
            "--appid",
            APPID,
            "--aes-key",
            AES_KEY,
            "--mode",
            "compatible",
        ],
        &[],
    );
    let addr = srv.addr();
    let path = srv.path();
    let (status, whole) = post(
        &addr,
        &format!("{path}?{}", signed_query("CompatTok1", "oVictim")),
        &text_xml("oVictim", 77, "forged"),
    );
    assert!(status.starts_with("HTTP/1.1 403"), "{whole}");
    let o = sim_send(&dir, &srv.url, "CompatTok1", "compatible", &["text", "help"]);
    assert!(o.status.success(), "{}", out(&o));
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_attribute_bomb_is_refused_before_it_is_parsed_and_oversized_bodies_before_they_are_read() {
    let dir = temp_dir("admission-bomb");
    // The default server: console on (its tap must not read ahead of the server's limit).
    let srv = ServeProc::start(&dir, &["--listen", "127.0.0.1:0"], &[]);
    let addr = srv.addr();
    let path = srv.path();

    let mut bomb = String::from("<xml");
    let mut i = 0;
    while bomb.len() < 64 * 1024 - 40 {
        bomb.push_str(&format!(" a{i}=\"\""));
        i += 1;
    }
    bomb.push_str("/>");
    for query in ["", "?signature=0&timestamp=1&nonce=1"] {
        let started = Instant::now();
        let (status, whole) = post(&addr, &format!("{path}{query}"), &bomb);
        let took = started.elapsed();
        assert!(status.starts_with("HTTP/1.1 4"), "{whole}");
        assert!(took < Duration::from_secs(2), "refused in {took:?}");
    }

    // A declared body over the limit, with Expect: 100-continue: 413 at once, no 100 first.
    let head = format!(
        "POST {path}?signature=0&timestamp=1&nonce=1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1048576\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    let (status, whole) = raw(&addr, &head, b"");
    assert!(status.starts_with("HTTP/1.1 413"), "expected 413 before any 100 Continue: {whole}");
    assert!(!whole.contains("100 Continue"), "{whole}");
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accounts_sharing_a_path_segment_or_an_appid_are_refused_at_start() {
    let dir = temp_dir("admission-dup");
    let cases = [
        (
            "[[accounts]]\ntoken = \"TokenA1\"\npath = \"/a/shop\"\n\n[[accounts]]\ntoken = \"TokenB2\"\npath = \"/b/shop\"\n".to_owned(),
            "accounts[1].path",
        ),
        (
            format!(
                "[[accounts]]\ntoken = \"TokenA1\"\nappid = \"{APPID}\"\npath = \"/a\"\n\n[[accounts]]\ntoken = \"TokenB2\"\n\
                 appid = \"{APPID}\"\npath = \"/b\"\n"
            ),
            "accounts[1].appid",
        ),
    ];
    for (i, (toml, field)) in cases.iter().enumerate() {
        let file = dir.join(format!("dup{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let o = wemp_in(&dir, &["serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", out(&o));
        assert!(out(&o).contains(field), "{field}: {}", out(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_timestamp_window_counts_from_the_head_not_from_a_slow_body() {
    use std::io::{Read as _, Write as _};

    let dir = temp_dir("admission-arrival");
    let token = "ArrivalTok1";
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", token],
        &[("WEMP_TIMESTAMP_WINDOW", "2s")],
    );
    let (addr, path) = (srv.addr(), srv.path());
    let query = |age: i64| {
        let (ts, nonce) = ((common::now() - age).to_string(), "515151");
        format!(
            "signature={}&timestamp={ts}&nonce={nonce}&openid=oArrival",
            wemp_proto::signature::sign(token, &ts, nonce)
        )
    };

    // The window is 2 s: a request signed 3 s ago is refused as it arrives.
    let (status, whole) = post(&addr, &format!("{path}?{}", query(3)), &text_xml("oArrival", 81, "late"));
    assert!(status.starts_with("HTTP/1.1 400"), "{whole}");
    assert!(whole.contains("behind server time"), "{whole}");

    // Signed now, its head sent now, its body over 3 s (a slow link; within the 5 s body
    // timeout): fresh when it arrived, so it is answered.
    let body = text_xml("oArrival", 82, "slow");
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "POST {path}?{} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        query(0),
        body.len()
    )
    .unwrap();
    let (head, tail) = body.split_at(body.len() / 2);
    conn.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    conn.write_all(&tail.as_bytes()[..1]).unwrap();
    std::thread::sleep(Duration::from_millis(1600));
    conn.write_all(&tail.as_bytes()[1..]).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<MsgType><![CDATA[text]]></MsgType>"), "answered with a reply: {answer}");
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}
