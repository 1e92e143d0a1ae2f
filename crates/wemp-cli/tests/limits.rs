//! `wemp serve`'s connection limits through real sockets: a silent or half-sent request is
//! closed, a trickled body is cut off, an idle keep-alive connection is closed, the
//! connection cap holds, and SIGTERM exits promptly with a silent client attached.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ServeProc, temp_dir};

/// Starts `wemp serve` with `[server]` extras and returns it with its host:port.
fn start(dir: &Path, server_extra: &str) -> (ServeProc, String) {
    let config = dir.join("wemp.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n[storage]\ndatabase = \"sqlite://log.db\"\n"
        ),
    )
    .unwrap();
    let srv = ServeProc::start(dir, &["--config", config.to_str().unwrap()], &[]);
    let addr = srv.addr();
    (srv, addr)
}

/// Reads until EOF or an error; returns what arrived and when the connection ended.
fn read_to_end(s: &mut TcpStream, limit: Duration) -> (String, Option<Instant>) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), Some(Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&got).into_owned(), None);
            }
            // A reset also ends the connection.
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), Some(Instant::now())),
        }
    }
}

#[test]
fn silent_and_half_sent_requests_are_closed_after_the_header_timeout() {
    let dir = temp_dir("limits-header");
    let (_srv, addr) = start(&dir, "header_timeout = \"1s\"\nidle_timeout = \"1s\"");
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(&addr).unwrap();
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"POST /wechat?signature=x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le").unwrap();
    for (name, s) in [("silent", &mut silent), ("half-sent", &mut half)] {
        let (_, closed) = read_to_end(s, Duration::from_secs(10));
        let closed = closed.unwrap_or_else(|| panic!("the {name} connection was still open after 10 s"));
        let took = closed - t0;
        assert!(took >= Duration::from_millis(900), "{name} closed too early: {took:?}");
    }
}

#[test]
fn a_trickled_body_is_cut_off_after_the_body_timeout() {
    let dir = temp_dir("limits-body");
    let (srv, addr) = start(&dir, "body_timeout = \"1s\"");
    let mut s = TcpStream::connect(&addr).unwrap();
    let path = srv.url.split_once("127.0.0.1").unwrap().1.split_once('/').unwrap().1;
    // A correctly signed request, so nothing but the body's pace can refuse it.
    let ts =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let sig = wemp_proto::signature::sign(&srv.token, &ts, "n1");
    s.write_all(
        format!(
            "POST /{path}?signature={sig}&timestamp={ts}&nonce=n1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Length: 200\r\n\r\n<xml>"
        )
        .as_bytes(),
    )
    .unwrap();
    // One byte every 300 ms: never silent long, never finished.
    let trickle = std::thread::spawn({
        let mut s = s.try_clone().unwrap();
        move || {
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(300));
                if s.write_all(b" ").is_err() {
                    return;
                }
            }
        }
    });
    let t0 = Instant::now();
    let (answer, closed) = read_to_end(&mut s, Duration::from_secs(8));
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "want 408 Request Timeout, got {answer:?} (closed: {closed:?})"
    );
    assert!(t0.elapsed() < Duration::from_secs(6), "cut off late: {:?}", t0.elapsed());
    let (_, closed) = read_to_end(&mut s, Duration::from_secs(5));
    assert!(closed.is_some(), "the connection stayed open after the 408");
    drop(s);
    trickle.join().unwrap();
}

/// Issue 16 item 16: a client that hangs up mid-body is logged as a body that did not
/// arrive, not as bad XML (`-40002`).
#[test]
fn a_client_hanging_up_mid_body_is_not_logged_as_bad_xml() {
    let dir = temp_dir("limits-hangup");
    let (srv, addr) = start(&dir, "");
    let path = srv.url.split_once("127.0.0.1").unwrap().1.split_once('/').unwrap().1;
    let ts =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let sig = wemp_proto::signature::sign(&srv.token, &ts, "n2");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(
        format!(
            "POST /{path}?signature={sig}&timestamp={ts}&nonce=n2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Length: 500\r\n\r\n<xml><ToUserName>"
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    assert!(srv.wait_stderr("did not arrive whole", Duration::from_secs(10)), "{}", srv.stderr());
    assert!(!srv.stderr().contains("-40002"), "{}", srv.stderr());
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = temp_dir("limits-idle");
    let (_srv, addr) = start(&dir, "idle_timeout = \"1s\"\nheader_timeout = \"20s\"");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let (answer, closed) = read_to_end(&mut s, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(closed.is_some(), "the idle connection was still open after 10 s");
}

#[test]
fn connections_over_the_cap_wait_until_one_closes() {
    let dir = temp_dir("limits-cap");
    let (_srv, addr) = start(&dir, "max_connections = 2\nheader_timeout = \"2s\"");
    let _a = TcpStream::connect(&addr).unwrap();
    let _b = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let (answer, _) = read_to_end(&mut c, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 404"), "the third connection was never served: {answer:?}");
    // Served only once a silent one was closed by the header timeout.
    assert!(t0.elapsed() >= Duration::from_millis(1200), "served past the cap after {:?}", t0.elapsed());
}

#[test]
fn sigterm_exits_within_the_grace_period_with_a_silent_client_attached() {
    let dir = temp_dir("limits-term");
    let (srv, addr) = start(&dir, "header_timeout = \"120s\"\nidle_timeout = \"120s\"");
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"POST /wechat HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let _silent = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let (status, err) = srv.stop();
    assert!(status.success(), "{status}\n{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?} to exit:\n{err}", t0.elapsed());
    assert!(err.contains("message log flushed"), "the log was not flushed:\n{err}");
}
