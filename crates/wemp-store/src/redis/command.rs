//! The dedup store's three commands, as the store makes them: one buffer each, rendered for
//! the wire by the writer's own connection ([`Packer::pack`]) or as the redis crate's
//! [`Cmd`] for the shared one and for calls made in place ([`Command::to_cmd`]). Both
//! renderings say the same bytes (a test holds them together).

use std::time::Duration;

use ::redis::Cmd;

use super::{Key, px};

/// In-flight marker stored under a claimed key.
pub(super) const IN_FLIGHT: &str = "I";
/// Prefix of a finished reply stored under a key.
pub(super) const DONE: char = 'D';

/// Claims a key on a Redis older than 7.0, which refuses `SET` with both `NX` and `GET`
/// (`KEYS[1]`; `ARGV[1]`: the marker, `ARGV[2]`: the TTL in milliseconds): `SET NX PX` the
/// marker; if the key exists, returns its value.
pub(super) const CLAIM_LUA: &str = r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
          return redis.call('GET', KEYS[1])";

/// Deletes a key only while it holds the in-flight marker (`KEYS[1]`, `ARGV[1]`: the marker).
pub(super) const RELEASE_LUA: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0";

/// A command of the dedup store's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Command {
    kind: Kind,
    /// The key (already prefixed), then, for a reply, the value stored.
    bytes: Vec<u8>,
    key_len: usize,
    /// The TTL in milliseconds (not sent by a release).
    ttl: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `SET key I NX PX <ttl> GET`: claims the key unless it exists, and answers what it held.
    Claim,
    /// `EVAL <CLAIM_LUA> 1 key I <ttl>`: the same claim, on Redis before 7.0.
    ClaimByScript,
    /// `PSETEX key <ttl> D<reply>`: stores a finished reply.
    Reply,
    /// `EVAL <RELEASE_LUA> 1 key I`: deletes the key while it holds the in-flight marker
    /// (rare: `EVALSHA` would need the script loaded first).
    Release,
}

impl Command {
    /// `SET key I NX PX <in_flight_ttl> GET`.
    pub(super) fn claim(key: Key<'_>, in_flight_ttl: Duration) -> Self {
        let mut bytes = Vec::with_capacity(key.len());
        key.write_to(&mut bytes);
        Self { kind: Kind::Claim, key_len: bytes.len(), bytes, ttl: px(in_flight_ttl) }
    }

    /// `PSETEX key <ttl> D<reply>`.
    pub(super) fn reply(key: Key<'_>, reply: &str, ttl: Duration) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + DONE.len_utf8() + reply.len());
        key.write_to(&mut bytes);
        let key_len = bytes.len();
        bytes.extend_from_slice(DONE.encode_utf8(&mut [0; 4]).as_bytes());
        bytes.extend_from_slice(reply.as_bytes());
        Self { kind: Kind::Reply, bytes, key_len, ttl: px(ttl) }
    }

    /// `EVAL <CLAIM_LUA> 1 key I <in_flight_ttl>`: [`Command::claim`] on Redis before 7.0
    /// (`EVAL` rather than `EVALSHA`: Redis keeps the compiled script, and a pipeline has no
    /// room for loading it first).
    pub(super) fn claim_by_script(key: Key<'_>, in_flight_ttl: Duration) -> Self {
        Self { kind: Kind::ClaimByScript, ..Self::claim(key, in_flight_ttl) }
    }

    /// `EVAL <RELEASE_LUA> 1 key I`: deletes `key` while it holds the in-flight marker.
    pub(super) fn release(key: Key<'_>) -> Self {
        Self { kind: Kind::Release, ttl: 0, ..Self::claim(key, Duration::ZERO) }
    }

    /// The release of the key this claim claimed (its buffer reused).
    pub(super) fn into_release(mut self) -> Self {
        self.bytes.truncate(self.key_len);
        Self { kind: Kind::Release, ttl: 0, ..self }
    }

    /// Whether it is a claim (answered by what the key held).
    pub(super) fn is_claim(&self) -> bool {
        matches!(self.kind, Kind::Claim | Kind::ClaimByScript)
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len]
    }

    fn value(&self) -> &[u8] {
        &self.bytes[self.key_len..]
    }

    /// The command as the redis crate's [`Cmd`].
    pub(super) fn to_cmd(&self) -> Cmd {
        let mut cmd = Cmd::with_capacity(7, self.bytes.len() + RELEASE_LUA.len() + 34);
        match self.kind {
            Kind::Claim => {
                cmd.arg("SET").arg(self.key()).arg(IN_FLIGHT).arg("NX").arg("PX").arg(self.ttl).arg("GET");
            }
            Kind::ClaimByScript => {
                cmd.arg("EVAL").arg(CLAIM_LUA).arg(1).arg(self.key()).arg(IN_FLIGHT).arg(self.ttl);
            }
            Kind::Reply => {
                cmd.arg("PSETEX").arg(self.key()).arg(self.ttl).arg(self.value());
            }
            Kind::Release => {
                cmd.arg("EVAL").arg(RELEASE_LUA).arg(1).arg(self.key()).arg(IN_FLIGHT);
            }
        }
        cmd
    }

    /// Appends the command to `out` as RESP (an array of bulk strings), as
    /// [`Cmd::write_packed_command`] would (with a [`Packer`] of its own: see
    /// [`Packer::pack`] for a batch).
    #[cfg(test)]
    pub(super) fn pack(&self, out: &mut Vec<u8>) {
        Packer::default().pack(self, out);
    }
}

/// Packs commands to RESP for the writer's own connection, keeping what a batch's commands
/// repeat: a claim's or a reply's bytes after its key depend only on its TTL (the store's
/// two TTLs, the same from one message to the next), so they are made once per TTL and
/// copied, not formatted again for every command.
#[derive(Debug, Default)]
pub(super) struct Packer {
    /// `\r\n$1\r\nI\r\n$2\r\nNX\r\n$2\r\nPX\r\n$<w>\r\n<ttl>\r\n$3\r\nGET\r\n`: a claim's bytes
    /// after its key, for the TTL it was made for.
    claim_tail: Tail,
    /// `\r\n$<w>\r\n<ttl>\r\n`: a reply's bytes between its key and its value's header.
    reply_middle: Tail,
}

/// Bytes made for one TTL.
#[derive(Debug, Default)]
struct Tail {
    ttl: Option<u64>,
    bytes: Vec<u8>,
}

impl Tail {
    /// The bytes for `ttl`, made by `make` unless they were made for it last time.
    fn for_ttl(&mut self, ttl: u64, make: impl FnOnce(&mut Vec<u8>, &Piece)) -> &[u8] {
        if self.ttl != Some(ttl) {
            self.bytes.clear();
            make(&mut self.bytes, &Piece::number(ttl));
            self.ttl = Some(ttl);
        }
        &self.bytes
    }
}

impl Packer {
    /// Appends `command` to `out` as RESP (an array of bulk strings), as
    /// [`Cmd::write_packed_command`] would: reserved once, the key's header made on the stack
    /// and what follows the key copied from what was made for its TTL.
    pub(super) fn pack(&mut self, command: &Command, out: &mut Vec<u8>) {
        let key = Piece::header(command.key_len);
        match command.kind {
            Kind::Claim => {
                const HEAD: &[u8] = b"*7\r\n$3\r\nSET\r\n";
                let tail = self.claim_tail.for_ttl(command.ttl, |out, ttl| {
                    out.extend_from_slice(b"\r\n$1\r\nI\r\n$2\r\nNX\r\n$2\r\nPX\r\n");
                    out.extend_from_slice(ttl.bytes());
                    out.extend_from_slice(b"$3\r\nGET\r\n");
                });
                out.reserve(HEAD.len() + key.len() + command.key_len + tail.len());
                out.extend_from_slice(HEAD);
                out.extend_from_slice(key.bytes());
                out.extend_from_slice(command.key());
                out.extend_from_slice(tail);
            }
            Kind::Reply => {
                const HEAD: &[u8] = b"*4\r\n$6\r\nPSETEX\r\n";
                let middle = self.reply_middle.for_ttl(command.ttl, |out, ttl| {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(ttl.bytes());
                });
                let value = Piece::header(command.value().len());
                out.reserve(HEAD.len() + key.len() + middle.len() + value.len() + command.bytes.len() + 2);
                out.extend_from_slice(HEAD);
                out.extend_from_slice(key.bytes());
                out.extend_from_slice(command.key());
                out.extend_from_slice(middle);
                out.extend_from_slice(value.bytes());
                out.extend_from_slice(command.value());
                out.extend_from_slice(b"\r\n");
            }
            Kind::ClaimByScript => {
                out.extend_from_slice(b"*6\r\n$4\r\nEVAL\r\n");
                bulk(out, CLAIM_LUA.as_bytes());
                out.extend_from_slice(b"$1\r\n1\r\n");
                bulk(out, command.key());
                out.extend_from_slice(b"$1\r\nI\r\n");
                out.extend_from_slice(Piece::number(command.ttl).bytes());
            }
            Kind::Release => {
                out.extend_from_slice(b"*5\r\n$4\r\nEVAL\r\n");
                bulk(out, RELEASE_LUA.as_bytes());
                out.extend_from_slice(b"$1\r\n1\r\n");
                bulk(out, command.key());
                out.extend_from_slice(b"$1\r\nI\r\n");
            }
        }
    }
}

/// Appends `bytes` as a RESP bulk string.
fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let head = Piece::header(bytes.len());
    out.reserve(head.len() + bytes.len() + 2);
    out.extend_from_slice(head.bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// A little RESP made on the stack, without formatting machinery: a bulk string's header
/// (`$<len>\r\n`, [`Piece::header`]) or a number as a whole bulk string
/// (`$<width>\r\n<digits>\r\n`, [`Piece::number`]).
struct Piece {
    buf: [u8; Self::ROOM],
    /// Where it starts in `buf` (it ends at the end).
    at: usize,
}

impl Piece {
    /// Room for the longest: a number of 20 digits (`u64::MAX`) as a bulk string, 27 bytes.
    const ROOM: usize = 32;

    /// `$<len>\r\n`.
    fn header(len: usize) -> Self {
        let mut buf = [0; Self::ROOM];
        buf[Self::ROOM - 2..].copy_from_slice(b"\r\n");
        let at = digits(&mut buf, Self::ROOM - 2, len as u64) - 1;
        buf[at] = b'$';
        Self { buf, at }
    }

    /// `$<width>\r\n<digits>\r\n`.
    fn number(n: u64) -> Self {
        let mut buf = [0; Self::ROOM];
        buf[Self::ROOM - 2..].copy_from_slice(b"\r\n");
        let start = digits(&mut buf, Self::ROOM - 2, n);
        buf[start - 2..start].copy_from_slice(b"\r\n");
        let at = digits(&mut buf, start - 2, (Self::ROOM - 2 - start) as u64) - 1;
        buf[at] = b'$';
        Self { buf, at }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn len(&self) -> usize {
        Self::ROOM - self.at
    }
}

/// Writes `n`'s decimal digits into `buf`, ending right before `end`; where they start.
fn digits(buf: &mut [u8], end: usize, mut n: u64) -> usize {
    let mut at = end;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_as_the_redis_crate_packs_each_command() {
        let keys = ["wx1:msg:o1:1", "", "wx1:event:o-Ëü:CLICK:1796405671", &"k".repeat(300)];
        let ttls = [Duration::ZERO, Duration::from_millis(1), Duration::from_secs(60), Duration::MAX];
        let replies = ["", "success", "<xml><Encrypt><![CDATA[…]]></Encrypt></xml>", &"r".repeat(70_000)];
        // One packer for all, as the writer keeps one: what it keeps for a TTL must follow
        // the TTL of each command, whichever came before.
        let mut packer = Packer::default();
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for key in keys {
            let key = Key { prefix: "wemp:", kind: "dedup", key };
            for ttl in ttls {
                let claim = Command::claim(key, ttl);
                let mut commands =
                    vec![claim.clone(), Command::claim_by_script(key, ttl), claim.into_release()];
                commands.extend(replies.iter().map(|reply| Command::reply(key, reply, ttl)));
                // A claim with another TTL between a claim and a reply with this one.
                let other = ttl.checked_add(Duration::from_millis(7)).unwrap_or(Duration::from_secs(1));
                commands.insert(1, Command::claim(key, other));
                commands.push(Command::claim(key, ttl));
                for command in commands {
                    let mut packed = Vec::new();
                    command.pack(&mut packed);
                    let cmd = command.to_cmd().get_packed_command();
                    assert_eq!(
                        String::from_utf8_lossy(&packed),
                        String::from_utf8_lossy(&cmd),
                        "{command:?}"
                    );
                    packer.pack(&command, &mut batch);
                    expected.extend_from_slice(&cmd);
                }
            }
        }
        assert!(
            batch == expected,
            "a batch packed by one packer differs from the commands packed one by one"
        );
    }

    #[test]
    fn a_release_keeps_the_claims_key_and_nothing_else() {
        let key = Key { prefix: "p:", kind: "dedup", key: "wx1:msg:o1:1" };
        let release = Command::claim(key, Duration::from_secs(60)).into_release();
        assert_eq!(release.key(), b"p:dedup:wx1:msg:o1:1");
        assert_eq!(release.value(), b"");
        assert!(!release.is_claim());
        let release = Command::claim_by_script(key, Duration::from_secs(60)).into_release();
        assert_eq!(release, Command::claim(key, Duration::from_secs(60)).into_release());
        assert_eq!(release, Command::release(key));
    }

    #[test]
    fn numbers_and_headers_of_every_width() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let digits = n.to_string();
            assert_eq!(Piece::number(n).bytes(), format!("${}\r\n{digits}\r\n", digits.len()).as_bytes());
            if let Ok(len) = usize::try_from(n) {
                assert_eq!(Piece::header(len).bytes(), format!("${digits}\r\n").as_bytes());
                assert_eq!(Piece::header(len).len(), digits.len() + 3);
            }
        }
    }
}
