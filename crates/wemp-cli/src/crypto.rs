//! `wemp crypto sign|decrypt|encrypt`: thin wrappers over `wemp-proto` for debugging
//! captured requests.
use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use wemp_proto::{Cipher, EncryptedReply, Envelope, ReferenceCode, signature};

/// `wemp crypto` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CryptoCommand {
    /// Print the hex `signature` (or `msg_signature` when --encrypt is given).
    Sign {
        /// The Token configured in the WeChat console.
        #[arg(long)]
        token: String,
        /// The `timestamp` query parameter.
        #[arg(long)]
        timestamp: String,
        /// The `nonce` query parameter.
        #[arg(long)]
        nonce: String,
        /// The `Encrypt` text: compute `msg_signature` instead of `signature`.
        #[arg(long)]
        encrypt: Option<String>,
    },
    /// Decrypt an encrypted POST body (or a bare Encrypt value) read from stdin.
    ///
    /// With --token, --timestamp, --nonce and --msg-signature the msg_signature is verified
    /// first. On failure prints one line naming the reference code (e.g. `-40005 appid
    /// mismatch: …`) and exits with 1.
    Decrypt {
        /// The EncodingAESKey (43 characters).
        #[arg(long)]
        aes_key: String,
        /// The account's appid.
        #[arg(long)]
        appid: String,
        /// The Token, to verify msg_signature.
        #[arg(long, requires_all = ["timestamp", "nonce", "msg_signature"])]
        token: Option<String>,
        /// The `timestamp` query parameter.
        #[arg(long, requires = "token")]
        timestamp: Option<String>,
        /// The `nonce` query parameter.
        #[arg(long, requires = "token")]
        nonce: Option<String>,
        /// The `msg_signature` query parameter.
        #[arg(long, requires = "token")]
        msg_signature: Option<String>,
    },
    /// Encrypt a reply XML read from stdin and print the encrypted reply envelope.
    Encrypt {
        /// The EncodingAESKey (43 characters).
        #[arg(long)]
        aes_key: String,
        /// The account's appid.
        #[arg(long)]
        appid: String,
        /// The Token, to sign the envelope.
        #[arg(long)]
        token: String,
        /// The envelope's TimeStamp (default: now).
        #[arg(long)]
        timestamp: Option<String>,
        /// The envelope's Nonce (default: random).
        #[arg(long)]
        nonce: Option<String>,
        /// The 16 random prefix bytes: 16 characters, or 32 hex digits (default: random).
        #[arg(long)]
        random: Option<String>,
    },
}

pub(crate) fn run(cmd: CryptoCommand) -> ExitCode {
    match execute(cmd) {
        Ok(out) => {
            outln!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            // An invalid key or argument: a usage error (exit 2), as the README's exit codes say.
            if e.is_usage() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

/// Why a `wemp crypto` command failed: its input did not verify or decrypt (exit 1), or an
/// argument is unusable (exit 2).
#[derive(Debug, thiserror::Error)]
enum CryptoError {
    /// The input did not parse, verify, decrypt or seal: one line naming the reference code.
    #[error("{}", diagnostic(*code, detail))]
    Failed {
        /// WeChat's reference code for what failed.
        code: ReferenceCode,
        /// What failed.
        detail: String,
    },
    /// The EncodingAESKey is unusable.
    #[error("{}", diagnostic(*code, detail))]
    Key {
        /// WeChat's reference code (`-40004`).
        code: ReferenceCode,
        /// What is wrong with the key.
        detail: String,
    },
    /// `--random` is neither 16 characters nor 32 hex digits.
    #[error("--random must be 16 characters or 32 hex digits, got {0} bytes")]
    Random(usize),
    /// Standard input cannot be read.
    #[error("cannot read stdin: {0}")]
    Stdin(#[from] std::io::Error),
}

impl CryptoError {
    fn failed(code: ReferenceCode, detail: impl std::fmt::Display) -> Self {
        Self::Failed { code, detail: detail.to_string() }
    }

    /// Whether an argument is at fault (exit 2) rather than the input.
    fn is_usage(&self) -> bool {
        matches!(self, Self::Key { .. } | Self::Random(_))
    }
}

/// One line naming the reference code, without repeating its name when the detail already
/// starts with it.
fn diagnostic(code: ReferenceCode, detail: &str) -> String {
    if detail.starts_with(code.name()) {
        format!("{} {detail}", code.code())
    } else {
        format!("{} {}: {detail}", code.code(), code.name())
    }
}

fn read_stdin() -> Result<String, CryptoError> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    Ok(input)
}

fn cipher(aes_key: &str, appid: &str) -> Result<Cipher, CryptoError> {
    Cipher::new(aes_key, appid)
        .map_err(|e| CryptoError::Key { code: e.reference_code(), detail: e.to_string() })
}

fn execute(cmd: CryptoCommand) -> Result<String, CryptoError> {
    match cmd {
        CryptoCommand::Sign { token, timestamp, nonce, encrypt } => Ok(match encrypt {
            Some(encrypt) => signature::sign_msg(&token, &timestamp, &nonce, &encrypt),
            None => signature::sign(&token, &timestamp, &nonce),
        }),
        CryptoCommand::Decrypt { aes_key, appid, token, timestamp, nonce, msg_signature } => {
            let cipher = cipher(&aes_key, &appid)?;
            let input = read_stdin()?;
            let encrypt = if input.trim_start().starts_with('<') {
                Envelope::parse(&input).map_err(|e| CryptoError::failed(e.reference_code(), &e))?.encrypt
            } else {
                input.trim().to_owned()
            };
            if let (Some(token), Some(ts), Some(nonce), Some(sig)) = (token, timestamp, nonce, msg_signature)
            {
                signature::verify_msg(&token, &ts, &nonce, &encrypt, &sig).map_err(|e| {
                    let expected = signature::sign_msg(&token, &ts, &nonce, &encrypt);
                    CryptoError::failed(
                        e.reference_code(),
                        format!("msg_signature mismatch: got {sig}, computed {expected} (check the Token)"),
                    )
                })?;
            }
            cipher.decrypt(&encrypt).map_err(|e| CryptoError::failed(e.reference_code(), &e))
        }
        CryptoCommand::Encrypt { aes_key, appid, token, timestamp, nonce, random } => {
            let cipher = cipher(&aes_key, &appid)?;
            let xml = read_stdin()?;
            let timestamp = timestamp.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    .to_string()
            });
            let nonce = nonce.unwrap_or_else(|| rand::random::<u32>().to_string());
            let random = match random {
                Some(r) => parse_random(&r)?,
                None => rand::random(),
            };
            EncryptedReply::seal_xml(&cipher, &token, xml.trim_end_matches('\n'), &timestamp, &nonce, random)
                .map_err(|e| CryptoError::failed(e.reference_code(), &e))
        }
    }
}

fn parse_random(s: &str) -> Result<[u8; 16], CryptoError> {
    if let Ok(bytes) = <[u8; 16]>::try_from(s.as_bytes()) {
        return Ok(bytes);
    }
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            // Two hex digits: checked above.
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| CryptoError::Random(s.len()))?;
        }
        return Ok(out);
    }
    Err(CryptoError::Random(s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_accepts_ascii_and_hex() {
        assert_eq!(&parse_random("89465c840c5f116f").unwrap(), b"89465c840c5f116f");
        assert_eq!(parse_random("000102030405060708090a0b0c0d0e0f").unwrap()[15], 15);
        assert!(parse_random("short").is_err());
    }

    #[test]
    fn diagnostic_does_not_repeat_the_name() {
        assert_eq!(
            diagnostic(ReferenceCode::ValidateAppid, "appid mismatch: expected a, found b"),
            "-40005 appid mismatch: expected a, found b"
        );
        assert_eq!(diagnostic(ReferenceCode::DecodeBase64, "bad"), "-40010 base64 decode failed: bad");
    }
}
