//! A private `redis-server` for tests that must stop Redis: one process per test on a free
//! loopback port, with no persistence, killed on drop. Never the shared Redis other tests use.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on `127.0.0.1`, killed (SIGKILL, as a crash) on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers `PING`.
    ///
    /// # Errors
    /// `redis-server` cannot be run (not installed), or it did not answer within 10 s.
    pub fn start() -> std::io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on(port)
    }

    /// Starts `redis-server` on loopback `port` (say, the port of one just killed) and waits
    /// until it answers `PING`. It starts empty: nothing is saved to disk.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_on(port: u16) -> std::io::Result<Self> {
        Self::start_with(port, &[])
    }

    /// Starts `redis-server` on loopback `port` with configuration of its own, given as
    /// `redis-server` takes it on its command line (say `["--maxmemory", "100mb"]`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(port: u16, config: &[&str]) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = Self { child: Some(child), port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers() {
            if Instant::now() >= deadline {
                server.kill();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("redis-server on port {port} did not answer PING within 10 s"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (it stays free after [`kill`](Self::kill) for a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it answers `PING` now.
    pub fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0_u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Kills the process (SIGKILL: a crash, not a shutdown) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
