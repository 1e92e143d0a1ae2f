//! Raw sockets for the tests that must see exactly what goes over the wire: free ports,
//! waiting for a listener, and one HTTP/1.1 exchange written by hand.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits up to `timeout` until something accepts connections on loopback `port`; whether it did.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `host:port` of a `http://host:port/…` URL.
pub fn authority(url: &str) -> String {
    url.trim_start_matches("http://").trim_start_matches("https://").split('/').next().unwrap().to_owned()
}

/// One raw HTTP exchange with `addr` (`host:port`): writes `head` and `body` as they are and
/// returns the status line and the whole response, read until the server closes, the body
/// its `Content-Length` announces has arrived, or 3 s pass.
pub fn raw(addr: &str, head: &str, body: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // One response is enough: stop at the end of its body.
                let text = String::from_utf8_lossy(&buf);
                if let Some((h, b)) = text.split_once("\r\n\r\n")
                    && let Some(len) = h
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                    && b.len() >= len
                {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.lines().next().unwrap_or_default().to_owned(), text)
}

/// `POST path_and_query` with an XML `body` on a connection of its own (see [`raw`]).
pub fn post(addr: &str, path_and_query: &str, body: &str) -> (String, String) {
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    raw(addr, &head, body.as_bytes())
}

/// A plain HTTP/1.0 `GET path` on `addr` (see [`raw`]); the whole response.
pub fn http_get(addr: &str, path: &str) -> String {
    raw(addr, &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"), b"").1
}
