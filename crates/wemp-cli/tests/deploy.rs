//! docs/deploy.md tried for real: its nginx `server` block in front of `wemp serve` passes
//! `wemp sim check`, and its systemd unit passes `systemd-analyze verify`. Each test prints
//! why and steps aside when the tool is not installed. The documented pre-launch check also
//! passes a safe-mode server (no tool needed).
#![allow(clippy::print_stdout)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{AES_KEY as KEY, APPID, ServeProc, free_port, out, temp_dir, wait_for_port, wemp_in};

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

#[test]
fn nginx_snippet_proxies_to_serve() {
    let Some(nginx) = which("nginx") else {
        println!(
            "skipping: nginx is not installed (apt-get install nginx-light) — docs/deploy.md's snippet is untested here"
        );
        return;
    };
    let dir = temp_dir("nginx");
    let srv = ServeProc::start(&dir, &["--listen", "127.0.0.1:0", "--token", "ProxyToken1"], &[]);
    let upstream = srv.addr();

    // The documented server block; TLS needs a certificate, so the test serves port-80 style.
    let snippet = block("nginx");
    assert!(snippet.contains("proxy_pass http://127.0.0.1:8080;"), "{snippet}");
    let port = free_port();
    let server: String = snippet
        .lines()
        .filter(|l| !l.contains("443") && !l.trim_start().starts_with("ssl_"))
        .map(|l| {
            l.replace("listen 80;", &format!("listen 127.0.0.1:{port};")).replace("127.0.0.1:8080", &upstream)
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
    let test = Command::new(&nginx).args(["-t", "-p"]).arg(&dir).arg("-c").arg(&conf_path).output().unwrap();
    assert!(test.status.success(), "nginx -t refuses the documented snippet:\n{}", out(&test));

    let mut proxy = Command::new(&nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/wechat");
    assert!(
        wait_for_port(port, Duration::from_secs(15)),
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );

    let check = wemp_in(&dir, &["sim", "check", &url, "--token", &srv.token], &[]);
    let verify = wemp_in(&dir, &["sim", "send", &url, "--token", &srv.token, "text", "hello"], &[]);
    let console = wemp_in(
        &dir,
        &["sim", "verify", &format!("http://127.0.0.1:{port}/console"), "--token", &srv.token],
        &[],
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert!(check.status.success(), "sim check through nginx failed:\n{}", out(&check));
    assert!(out(&check).contains("0 fail"), "{}", out(&check));
    assert!(out(&verify).contains("Hello, o_wemp_sim_user!"), "{}", out(&verify));
    assert!(out(&console).contains("HTTP 404"), "only the callback path is proxied: {}", out(&console));
    let access = std::fs::read_to_string(dir.join("access.log")).unwrap();
    assert!(access.contains("POST /wechat?signature="), "requests went through nginx: {access}");
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
