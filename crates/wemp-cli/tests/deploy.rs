//! docs/deploy.md tried for real: its nginx `server` block in front of `wemp serve` passes
//! `wemp sim check`, and its systemd unit passes `systemd-analyze verify`. Each test prints
//! why and steps aside when the tool is not installed. The documented pre-launch check also
//! passes a safe-mode server (no tool needed).
#![allow(clippy::print_stdout)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    AES_KEY as KEY, APPID, CountingApp, RelayProc, ServeProc, free_port, out, temp_dir, wait_for_port,
    wemp_in,
};

const DEPLOY_MD: &str = include_str!("../../../docs/deploy.md");

/// The first fenced block of `lang` in docs/deploy.md.
fn block(lang: &str) -> String {
    let start = DEPLOY_MD.find(&format!("```{lang}\n")).unwrap_or_else(|| panic!("no ```{lang} block"));
    let body = &DEPLOY_MD[start + lang.len() + 4..];
    body[..body.find("```").unwrap()].to_owned()
}

fn which(tool: &str) -> Option<String> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = format!("{dir}/{tool}");
        if std::path::Path::new(&p).exists() {
            return Some(p);
        }
    }
    None
}

/// Debian's nginx running docs/deploy.md's `server { … }` block (TLS lines dropped) on a free
/// loopback port in front of `upstream`; killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

/// The nginx binary; `None` (with the reason printed) when it is not installed.
fn nginx() -> Option<String> {
    let found = which("nginx");
    if found.is_none() {
        println!(
            "skipping: nginx is not installed (apt-get install nginx-light) — docs/deploy.md's snippet is untested here"
        );
    }
    found
}

impl Nginx {
    fn start(nginx: &str, dir: &std::path::Path, upstream: &str) -> Self {
        // The documented server block; TLS needs a certificate, so the test serves port-80 style.
        let snippet = block("nginx");
        assert!(snippet.contains("proxy_pass http://127.0.0.1:8080;"), "{snippet}");
        let port = free_port();
        let server: String = snippet
            .lines()
            .filter(|l| !l.contains("443") && !l.trim_start().starts_with("ssl_"))
            .map(|l| {
                l.replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
                    .replace("127.0.0.1:8080", upstream)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let test =
            Command::new(nginx).args(["-t", "-p"]).arg(dir).arg("-c").arg(&conf_path).output().unwrap();
        assert!(test.status.success(), "nginx -t refuses the documented snippet:\n{}", out(&test));
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let proxy = Self { child, port, dir: dir.to_owned() };
        assert!(
            wait_for_port(port, Duration::from_secs(15)),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        proxy
    }

    /// `http://127.0.0.1:PORT` + `path`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nginx_snippet_proxies_to_serve() {
    let Some(nginx) = nginx() else { return };
    let dir = temp_dir("nginx");
    let srv = ServeProc::start(&dir, &["--listen", "127.0.0.1:0", "--token", "ProxyToken1"], &[]);
    let proxy = Nginx::start(&nginx, &dir, &srv.addr());
    let url = proxy.url("/wechat");

    let check = wemp_in(&dir, &["sim", "check", &url, "--token", &srv.token], &[]);
    let verify = wemp_in(&dir, &["sim", "send", &url, "--token", &srv.token, "text", "hello"], &[]);
    let console = wemp_in(&dir, &["sim", "verify", &proxy.url("/console"), "--token", &srv.token], &[]);
    let access = proxy.access_log();
    drop(proxy);
    assert!(check.status.success(), "sim check through nginx failed:\n{}", out(&check));
    assert!(out(&check).contains("0 fail"), "{}", out(&check));
    assert!(out(&verify).contains("Hello, o_wemp_sim_user!"), "{}", out(&verify));
    assert!(out(&console).contains("HTTP 404"), "only the callback path is proxied: {}", out(&console));
    assert!(access.contains("POST /wechat?signature="), "requests went through nginx: {access}");
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The relay (docs/gateway.md) through the documented nginx block: `wemp relay` connects to
/// `/wechat/relay` through the proxy and the app behind it answers a message that came in
/// through the proxy too.
#[test]
fn nginx_snippet_carries_the_relay() {
    const SECRET: &str = "relay-through-nginx";
    let Some(nginx) = nginx() else { return };
    let dir = temp_dir("nginx-relay");
    let srv = ServeProc::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--token", "ProxyToken1", "--forward", "relay"],
        &[("WEMP_FORWARD_SECRET", SECRET)],
    );
    let proxy = Nginx::start(&nginx, &dir, &srv.addr());
    let app = CountingApp::start("answered behind the relay", Duration::ZERO);
    let relay =
        RelayProc::start(&dir, &proxy.url("/wechat/relay").replacen("http", "ws", 1), &app.url, SECRET);
    relay.wait_for("relay: connected to");
    assert!(srv.wait_stderr("relay client connected", Duration::from_secs(10)), "{}", srv.stderr());

    let sent =
        wemp_in(&dir, &["sim", "send", &proxy.url("/wechat"), "--token", &srv.token, "text", "hello"], &[]);
    relay.interrupt();
    // nginx logs a WebSocket when it closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !proxy.access_log().contains("GET /wechat/relay") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let access = proxy.access_log();
    drop(proxy);
    assert!(out(&sent).contains("answered behind the relay"), "{}", out(&sent));
    assert_eq!(app.calls(), 1);
    assert!(access.contains("GET /wechat/relay HTTP/1.1\" 101"), "the relay went through nginx: {access}");
    drop(srv);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn systemd_unit_verifies() {
    let Some(analyze) = which("systemd-analyze") else {
        println!("skipping: systemd-analyze is not installed — docs/deploy.md's unit is unverified here");
        return;
    };
    let unit = block("ini");
    assert!(unit.contains("ExecStart=/usr/local/bin/wemp serve --config /etc/wemp/wemp.toml"), "{unit}");
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
    // The binary is not installed on a test machine: point ExecStart at the one just built.
    let unit = unit.replace("/usr/local/bin/wemp", env!("CARGO_BIN_EXE_wemp"));
    let dir = temp_dir("systemd");
    let path = dir.join("wemp.service");
    std::fs::write(&path, unit).unwrap();
    let o = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let text = out(&o);
    if text.contains("Failed to") && text.contains("bus") {
        println!("skipping: systemd-analyze cannot run here: {text}");
        return;
    }
    assert!(o.status.success() && text.trim().is_empty(), "systemd-analyze verify: {text}");
    // And the installed path is really what it checks: a missing binary is reported.
    let missing = dir.join("missing.service");
    std::fs::write(&missing, block("ini")).unwrap();
    let o = Command::new(which("systemd-analyze").unwrap()).arg("verify").arg(&missing).output().unwrap();
    if !std::path::Path::new("/usr/local/bin/wemp").exists() {
        assert!(!o.status.success(), "{}", out(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// docs/deploy.md §4's pre-launch check against the safe-mode server it recommends: the
/// server rightly refuses plain requests, which `sim check` counts as a pass ("server
/// requires encryption"), and `sim send` with the key speaks safe mode by default.
#[test]
fn the_documented_check_passes_a_safe_mode_server() {
    let documented = DEPLOY_MD.lines().find(|l| l.starts_with("wemp sim check ")).unwrap();
    assert!(documented.contains("--appid") && documented.contains("--aes-key"), "{documented}");
    let dir = temp_dir("safe");
    let srv = ServeProc::start(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--token",
            "SafeToken1",
            "--mode",
            "safe",
            "--appid",
            APPID,
            "--aes-key",
            KEY,
        ],
        &[],
    );
    let keys = ["--token", srv.token.as_str(), "--appid", APPID, "--aes-key", KEY];
    let mut args = vec!["sim", "check", srv.url.as_str()];
    args.extend(keys);
    let check = wemp_in(&dir, &args, &[]);
    let mut args = vec!["sim", "send", srv.url.as_str()];
    args.extend(keys);
    args.extend(["text", "hello"]);
    let send = wemp_in(&dir, &args, &[]);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(check.status.success(), "sim check fails a correct safe-mode server:\n{}", out(&check));
    assert!(out(&check).contains("0 fail"), "{}", out(&check));
    assert!(out(&check).contains("PASS  plain: server requires encryption"), "{}", out(&check));
    assert!(out(&check).contains("PASS  safe: text"), "{}", out(&check));
    assert!(send.status.success(), "{}", out(&send));
    assert!(out(&send).contains("(safe mode"), "{}", out(&send));
    assert!(out(&send).contains("reply, encrypted"), "{}", out(&send));
}
