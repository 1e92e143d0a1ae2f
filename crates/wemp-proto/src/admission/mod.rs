//! Admission: whether a callback request is WeChat's, which account it is for, and what
//! it says — the one inbound contract, with no I/O.
//!
//! [`admit`] takes the [`Accounts`], a [`Policy`], the current time and the request as
//! received (method, path, raw query, body) and returns an [`Admission`]: the account, the
//! mode, every [`Check`] it made (for diagnostics) and the [`Verdict`]. The order of the
//! checks is the point:
//!
//! 1. the query: `signature`, `timestamp` and `nonce` are on every request WeChat sends,
//!    in every mode (`msg_signature` too when `encrypt_type=aes`);
//! 2. the account: by the path's last segment, else the account whose Token signs the
//!    request (`ToUserName` decides between accounts sharing one Token);
//! 3. `signature` and freshness, **before the body is parsed**, so that unauthenticated
//!    junk costs a SHA-1 and nothing more;
//! 4. the account's mode: a compatible- or safe-mode account admits only
//!    `encrypt_type=aes` requests;
//! 5. the body, then `msg_signature` over `Encrypt`, then decryption.
//!
//! ```
//! use wemp_proto::admission::{Account, Accounts, Policy, Request, Verdict, admit};
//! use wemp_proto::signature;
//! let accounts = Accounts::new([Account::new("wx1", "weixin")])?;
//! let sig = signature::sign("weixin", "1540176606", "1854606751");
//! let query = format!("signature={sig}&timestamp=1540176606&nonce=1854606751&echostr=hi");
//! let admission = admit(&accounts, &Policy::default(), 1540176606, &Request::get("/wechat", &query));
//! assert!(matches!(admission.verdict, Verdict::Verified { ref echostr } if echostr == "hi"));
//! # Ok::<(), wemp_proto::admission::AccountsError>(())
//! ```

mod account;
mod note;
mod query;
mod replay;

use std::fmt;
use std::sync::Arc;

pub use account::{Account, Accounts, AccountsError, Kind, app_key, token_is_valid};
pub use note::Note;
pub use query::{Query, percent_decode};
pub use replay::{Replay, ReplayCache};

use crate::envelope::Outline;
use crate::xml::XmlError;
use crate::{DecryptError, Document, EnvelopeError, Incoming, Mode, ReferenceCode, signature};

/// The reasons a request is refused, as counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    /// A required query parameter is missing.
    MissingParam,
    /// `timestamp` is not a number.
    BadTimestamp,
    /// `timestamp` is outside the freshness window.
    StaleTimestamp,
    /// `signature` or `msg_signature` does not match (`-40001`).
    SignatureMismatch,
    /// A plain request while encryption is required.
    PlainRefused,
    /// The body exceeds the limit.
    BodyTooLarge,
    /// The body did not arrive whole: the client hung up, or was too slow.
    BodyIncomplete,
    /// The body is not acceptable XML, or has a DOCTYPE (`-40002`).
    BadXml,
    /// An encrypted request without `Encrypt` (`-40002`).
    MissingEncrypt,
    /// An encrypted request to an account with no EncodingAESKey (`-40004`).
    NoAesKey,
    /// `Encrypt` is not base64 (`-40010`).
    Base64,
    /// The ciphertext is not whole AES blocks (`-40007`).
    AesDecrypt,
    /// Bad padding, length or UTF-8 after decryption (`-40008`).
    IllegalBuffer,
    /// The payload's appid is another account's (`-40005`).
    AppidMismatch,
    /// No configured account matches the path or `ToUserName`.
    UnknownAccount,
    /// Neither GET nor POST.
    MethodNotAllowed,
    /// A plain-mode request reusing the `timestamp` and `nonce` of an earlier one with
    /// another body: a captured `signature` carrying a forged body ([`ReplayCache`]).
    Replayed,
}

impl RejectReason {
    /// Every reason, in metric order.
    pub const ALL: &'static [Self] = &[
        Self::MissingParam,
        Self::BadTimestamp,
        Self::StaleTimestamp,
        Self::SignatureMismatch,
        Self::PlainRefused,
        Self::BodyTooLarge,
        Self::BodyIncomplete,
        Self::BadXml,
        Self::MissingEncrypt,
        Self::NoAesKey,
        Self::Base64,
        Self::AesDecrypt,
        Self::IllegalBuffer,
        Self::AppidMismatch,
        Self::UnknownAccount,
        Self::MethodNotAllowed,
        Self::Replayed,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingParam => "missing_param",
            Self::BadTimestamp => "bad_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::SignatureMismatch => "signature_mismatch",
            Self::PlainRefused => "plain_refused",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyIncomplete => "body_incomplete",
            Self::BadXml => "bad_xml",
            Self::MissingEncrypt => "missing_encrypt",
            Self::NoAesKey => "no_aes_key",
            Self::Base64 => "base64",
            Self::AesDecrypt => "aes_decrypt",
            Self::IllegalBuffer => "illegal_buffer",
            Self::AppidMismatch => "appid_mismatch",
            Self::UnknownAccount => "unknown_account",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Replayed => "replayed",
        }
    }
}

/// A request as it reached the callback URL.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path (its last segment may select the account).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// The body as received (already within the server's size limit).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A URL verification `GET`.
    pub fn get(path: &'a str, query: &'a str) -> Self {
        Self { method: "GET", path, query, body: &[] }
    }

    /// A message `POST`.
    pub fn post(path: &'a str, query: &'a str, body: &'a [u8]) -> Self {
        Self { method: "POST", path, query, body }
    }
}

/// The server-wide part of admission.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Largest accepted difference between `timestamp` and now, in seconds (0: no check).
    pub freshness_secs: u64,
    /// Every account admits only encrypted requests, whatever its declared mode.
    pub require_encryption: bool,
    /// Skip `signature` and `msg_signature` (WeChat's online debugging tool only).
    pub insecure_skip_signature: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self { freshness_secs: 300, require_encryption: false, insecure_skip_signature: false }
    }
}

impl Policy {
    /// Sets [`Policy::freshness_secs`].
    #[must_use]
    pub fn freshness_secs(mut self, secs: u64) -> Self {
        self.freshness_secs = secs;
        self
    }

    /// Sets [`Policy::require_encryption`].
    #[must_use]
    pub fn require_encryption(mut self, yes: bool) -> Self {
        self.require_encryption = yes;
        self
    }

    /// Sets [`Policy::insecure_skip_signature`].
    #[must_use]
    pub fn insecure_skip_signature(mut self, yes: bool) -> Self {
        self.insecure_skip_signature = yes;
        self
    }
}

/// What a check looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckKind {
    /// The HTTP method.
    Method,
    /// The query parameters WeChat always sends.
    Query,
    /// Which account the request is for.
    Account,
    /// `signature` over Token, timestamp and nonce.
    Signature,
    /// `timestamp` within the freshness window.
    Timestamp,
    /// The request's mode against the account's.
    Mode,
    /// The body is acceptable XML.
    Body,
    /// The `Encrypt` element of an encrypted body.
    Envelope,
    /// `msg_signature` over Token, timestamp, nonce and `Encrypt`.
    MsgSignature,
    /// Decryption of `Encrypt` and the appid inside it.
    Decrypt,
}

impl CheckKind {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Query => "query",
            Self::Account => "account",
            Self::Signature => "signature",
            Self::Timestamp => "timestamp",
            Self::Mode => "mode",
            Self::Body => "body",
            Self::Envelope => "envelope",
            Self::MsgSignature => "msg_signature",
            Self::Decrypt => "decrypt",
        }
    }
}

/// One check admission made, and what it found (one sentence, no secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// What was checked.
    pub kind: CheckKind,
    /// Whether it passed.
    pub passed: bool,
    /// What was found. Most notes are fixed sentences, shared rather than copied for every
    /// request; the others admission writes are kept in the [`Note`] itself where they fit.
    pub note: Note,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok" } else { "FAILED" };
        write!(f, "{} {mark}: {}", self.kind.as_str(), self.note)
    }
}

/// Why a request was refused: the reason, the HTTP status to answer, WeChat's reference
/// code, the parameter at fault and a one-line message safe to send back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, as counted in metrics.
    pub reason: RejectReason,
    /// The HTTP status to answer (400, 403, 404, 405).
    pub status: u16,
    /// WeChat's reference code, when one applies.
    pub code: Option<ReferenceCode>,
    /// The query parameter or part of the request at fault.
    pub param: &'static str,
    /// One line for the response body: says what failed, never anything about a secret.
    pub message: String,
    /// More for the server's own log only (e.g. the Token's length).
    pub detail: Option<String>,
}

impl Refusal {
    fn new(
        status: u16,
        reason: RejectReason,
        code: Option<ReferenceCode>,
        param: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self { reason, status, code, param, message: message.into(), detail: None }
    }

    fn missing(param: &'static str, encrypted: bool) -> Self {
        let during = if encrypted { " (encrypted requests carry it in the query)" } else { "" };
        Self::new(
            400,
            RejectReason::MissingParam,
            Some(ReferenceCode::ValidateSignature),
            param,
            format!("missing query parameter {param}{during}; is this request from WeChat?"),
        )
    }

    fn signature(param: &'static str, token_len: usize, over: &str) -> Self {
        let mut r = Self::new(
            403,
            RejectReason::SignatureMismatch,
            Some(ReferenceCode::ValidateSignature),
            param,
            format!("{param} mismatch: computed over {over}; check the Token in the console"),
        );
        r.detail = Some(format!("computed from token of length {token_len}"));
        r
    }

    fn xml(e: &XmlError, what: &'static str) -> Self {
        Self::new(
            400,
            RejectReason::BadXml,
            Some(e.reference_code()),
            what,
            match e {
                XmlError::Json(reason) => format!("{what} is not acceptable JSON: {reason}"),
                _ => format!("{what} is not acceptable XML: {e}"),
            },
        )
    }

    fn decrypt(err: &DecryptError) -> Self {
        let reason = match err {
            DecryptError::Base64(_) => RejectReason::Base64,
            DecryptError::BlockLength(_) => RejectReason::AesDecrypt,
            DecryptError::AppidMismatch { .. } => RejectReason::AppidMismatch,
            _ => RejectReason::IllegalBuffer,
        };
        Self::new(400, reason, Some(err.reference_code()), "Encrypt", err.to_string())
    }

    /// The one-line response body: `-40001 signature mismatch: …`.
    pub fn body(&self) -> String {
        match self.code {
            Some(code) => format!("{} {}\n", code.code(), self.message),
            None => format!("{}\n", self.message),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body().trim_end())
    }
}

/// What admission decided.
// `Message` is the largest (a typed message, ~370 bytes), copied whole at each move out of
// `admit` (~64 instructions a copy under callgrind). Boxed (tried in the eighteenth pass, see
// BENCHMARKS.md), seven of the eleven copies on the way to the server's delivery went, for one
// allocation more a message; not kept.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Verdict {
    /// A URL verification `GET` that passed: answer `echostr`.
    Verified {
        /// The `echostr` to answer with.
        echostr: String,
    },
    /// A message `POST` that passed: the XML to handle (decrypted in encrypted modes), and
    /// it typed — `Incoming::from_document` of its [`Document`] (of
    /// [`Document::from_json`] for a Mini Program's JSON push), read without the document
    /// where it is flat ([`Incoming::parse`]). A caller that needs the tree parses `xml`;
    /// a type wemp does not model keeps it whole in [`crate::Unknown::fields`].
    Message {
        /// The message XML: the body in plain mode, the decrypted payload otherwise.
        xml: String,
        /// `xml`, typed.
        message: Incoming,
    },
    /// Refused.
    Refused(Refusal),
}

/// The result of [`admit`].
#[derive(Clone, Debug)]
pub struct Admission {
    /// The account the request is for, when admission got that far.
    pub account: Option<Arc<Account>>,
    /// The request's mode, when known.
    pub mode: Option<Mode>,
    /// The checks made, in order; the last failed one (if any) is the refusal's. Empty
    /// from [`admit_unrecorded`].
    pub checks: Vec<Check>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Admission {
    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.verdict {
            Verdict::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Decides whether `request` is WeChat's, for which account, in which mode, and what it
/// says. Pure: `now` is the current Unix time in seconds. See the [module](self) for the
/// order of the checks.
pub fn admit(accounts: &Accounts, policy: &Policy, now: i64, request: &Request<'_>) -> Admission {
    admit_with(accounts, policy, now, request, true)
}

/// [`admit`] for a caller that records nothing: the same account, mode and verdict, but
/// [`Admission::checks`] stays empty, and none of its notes is formatted (a request
/// admitted this way allocates nothing for them).
pub fn admit_unrecorded(accounts: &Accounts, policy: &Policy, now: i64, request: &Request<'_>) -> Admission {
    admit_with(accounts, policy, now, request, false)
}

/// Admission itself: `keep`, the checks kept.
fn admit_with(
    accounts: &Accounts,
    policy: &Policy,
    now: i64,
    request: &Request<'_>,
    keep: bool,
) -> Admission {
    let checks = if keep { Vec::with_capacity(MAX_CHECKS) } else { Vec::new() };
    let mut run = Run { accounts, policy, now, account: None, mode: None, keep, checks };
    let verdict = run.decide(request);
    Admission { account: run.account, mode: run.mode, checks: run.checks, verdict }
}

/// The capacity a formatted note starts with.
const NOTE_CAPACITY: usize = 64;

/// The checks a request passes at most, to size [`Admission::checks`] once.
const MAX_CHECKS: usize = 10;

struct Run<'a> {
    accounts: &'a Accounts,
    policy: &'a Policy,
    now: i64,
    account: Option<Arc<Account>>,
    mode: Option<Mode>,
    /// Whether the checks are kept ([`admit`]) or not ([`admit_unrecorded`]).
    keep: bool,
    checks: Vec<Check>,
}

impl Run<'_> {
    /// A passed check; its note is formatted only when the checks are kept, and a fixed
    /// sentence not at all.
    fn pass(&mut self, kind: CheckKind, note: fmt::Arguments<'_>) {
        if self.keep {
            let note = match note.as_str() {
                Some(fixed) => Note::from(fixed),
                None => {
                    // Room for every note but a long path's, so that it is not grown piece by piece.
                    let mut text = String::with_capacity(NOTE_CAPACITY);
                    let _ = fmt::Write::write_fmt(&mut text, note);
                    Note::from(text)
                }
            };
            self.checks.push(Check { kind, passed: true, note });
        }
    }

    /// A passed check whose note `write` writes without `core::fmt` (a formatted note cost
    /// ~400 instructions, and a safe-mode message has four), only when the checks are kept:
    /// in the [`Note`] itself, without an allocation, where it fits.
    fn pass_written(&mut self, kind: CheckKind, write: impl FnOnce(&mut Note)) {
        if self.keep {
            let mut note = Note::written();
            write(&mut note);
            self.checks.push(Check { kind, passed: true, note });
        }
    }

    /// A passed check whose note is a fixed sentence.
    fn pass_fixed(&mut self, kind: CheckKind, note: &'static str) {
        if self.keep {
            self.checks.push(Check { kind, passed: true, note: Note::from(note) });
        }
    }

    /// The verdict on a message `POST` that passed, parsed: typed, its texts moved out of
    /// the document.
    fn accepted(xml: String, mut document: Document) -> Verdict {
        Verdict::Message { xml, message: Incoming::take_from_document(&mut document) }
    }

    fn fail(&mut self, kind: CheckKind, refusal: Refusal) -> Refusal {
        if self.keep {
            self.checks.push(Check { kind, passed: false, note: Note::from(refusal.message.clone()) });
        }
        refusal
    }

    /// The verdict itself, refusals included: a `Result<Verdict, Refusal>` matched into a
    /// `Verdict` copied it, and the message in it, once more.
    fn decide(&mut self, request: &Request<'_>) -> Verdict {
        let get = request.method.eq_ignore_ascii_case("GET");
        if !get && !request.method.eq_ignore_ascii_case("POST") {
            let refusal = Refusal::new(
                405,
                RejectReason::MethodNotAllowed,
                None,
                "method",
                format!("method {} not allowed: WeChat sends GET (verification) and POST", request.method),
            );
            return Verdict::Refused(self.fail(CheckKind::Method, refusal));
        }
        let query = Query::parse(request.query);
        if let Some((apps, by_path)) = self.wecom_apps(request.path, &query) {
            return self.decide_wecom(request, get, &query, apps, by_path);
        }
        // `encrypt_type=aes`, looked at once (it decides the mode and, later, whether an
        // account that requires encryption is answered).
        let aes = query.is_encrypted();
        let encrypted = !get && aes;
        let skip = self.policy.insecure_skip_signature;

        // 1. The query WeChat always sends.
        let signature = query.signature.as_deref();
        if signature.is_none() && !skip {
            return Verdict::Refused(self.fail(CheckKind::Query, Refusal::missing("signature", encrypted)));
        }
        let Some(timestamp) = query.timestamp.as_deref() else {
            return Verdict::Refused(self.fail(CheckKind::Query, Refusal::missing("timestamp", encrypted)));
        };
        let Some(nonce) = query.nonce.as_deref() else {
            return Verdict::Refused(self.fail(CheckKind::Query, Refusal::missing("nonce", encrypted)));
        };
        if get && query.echostr.is_none() {
            return Verdict::Refused(self.fail(CheckKind::Query, Refusal::missing("echostr", false)));
        }
        if encrypted && query.msg_signature.is_none() && !skip {
            return Verdict::Refused(self.fail(CheckKind::Query, Refusal::missing("msg_signature", true)));
        }
        self.pass(CheckKind::Query, format_args!("signature, timestamp and nonce present"));

        // 2 and 3. The account and `signature`, before anything else is read.
        let signs = |a: &Account| {
            skip || signature::verify(a.token().expose(), timestamp, nonce, signature.unwrap_or("")).is_ok()
        };
        // The account the path selects is borrowed where it is kept, not put in a `Vec` of
        // its own (an allocation a request).
        let accounts = self.accounts;
        let by_path = accounts.by_path(request.path);
        let signing: Vec<Arc<Account>>;
        let candidates: &[Arc<Account>] = match by_path {
            Some(a) => {
                self.pass_written(CheckKind::Account, |note| {
                    note.push_str("path ");
                    push_debug(note, request.path);
                    note.push_str(" selects account ");
                    note.push_str(a.appid());
                });
                if !signs(a) {
                    self.account = Some(a.clone());
                    let refusal = Refusal::signature("signature", a.token().len(), "timestamp, nonce");
                    return Verdict::Refused(self.fail(CheckKind::Signature, refusal));
                }
                std::slice::from_ref(a)
            }
            None => {
                signing = accounts.iter().filter(|a| signs(a)).cloned().collect();
                if signing.is_empty() {
                    let refusal = if get {
                        self.unknown_account(request.path, None)
                    } else {
                        let mut r = Refusal::new(
                            403,
                            RejectReason::SignatureMismatch,
                            Some(ReferenceCode::ValidateSignature),
                            "signature",
                            format!(
                                "signature mismatch: path {:?} selects no account and the signature matches the \
                                 Token of none of the {} accounts; check the Token in the console",
                                request.path,
                                self.accounts.len()
                            ),
                        );
                        r.detail = Some("computed from every configured token".to_owned());
                        r
                    };
                    return Verdict::Refused(self.fail(CheckKind::Account, refusal));
                }
                &signing
            }
        };
        if skip {
            self.pass(CheckKind::Signature, format_args!("not checked (insecure_skip_signature)"));
        } else {
            self.pass(
                CheckKind::Signature,
                format_args!("matches the account's Token over timestamp and nonce"),
            );
        }
        if candidates.len() == 1 {
            self.account = Some(candidates[0].clone());
        }
        if let Err(refusal) = self.check_timestamp(timestamp) {
            return Verdict::Refused(refusal);
        }

        if get {
            let account = candidates.first().cloned();
            if by_path.is_none()
                && let Some(a) = &account
            {
                self.pass_written(CheckKind::Account, |note| signs_the_request(note, a.appid()));
            }
            self.account = account;
            return Verdict::Verified { echostr: query.echostr.as_deref().unwrap_or_default().to_owned() };
        }

        // 4. The mode, as far as the query tells.
        if !encrypted
            && (self.policy.require_encryption || candidates.iter().all(|a| a.requires_encryption()))
        {
            self.mode = Some(Mode::Plain);
            return Verdict::Refused(self.fail(CheckKind::Mode, self.plain_refused(candidates)));
        }

        // 5. The body.
        let text = match self.body_text(request.body) {
            Ok(text) => text,
            Err(refusal) => return Verdict::Refused(refusal),
        };
        // A Mini Program pushes XML or JSON, whichever its admin chose: the body says which.
        let json =
            Document::looks_like_json(text) && candidates.iter().any(|a| a.kind() == Kind::Miniprogram);
        // An encrypted request's body is read only for its outline (no tree): the message is
        // what `Encrypt` holds.
        let body = if json {
            Document::from_json(text).map(Body::Tree)
        } else if encrypted {
            Outline::scan(text).map(Body::Outline)
        } else {
            Document::parse(text).map(Body::Tree)
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => return Verdict::Refused(self.fail(CheckKind::Body, Refusal::xml(&e, "body"))),
        };
        let (has_encrypt, has_msg_type) = match &body {
            Body::Tree(doc) => (doc.root.child("Encrypt").is_some(), doc.root.child("MsgType").is_some()),
            Body::Outline(outline) => (outline.encrypt.is_some(), outline.msg_type),
        };
        let encrypted = encrypted || has_encrypt;
        let mode = match (encrypted, has_msg_type) {
            (false, _) => Mode::Plain,
            (true, true) => Mode::Compatible,
            (true, false) => Mode::Safe,
        };
        self.mode = Some(mode);
        self.pass_fixed(
            CheckKind::Body,
            match (json, mode) {
                (false, Mode::Plain) => "acceptable XML, plain mode",
                (false, Mode::Compatible) => "acceptable XML, compatible mode",
                (false, Mode::Safe) => "acceptable XML, safe mode",
                (true, Mode::Plain) => "acceptable JSON, plain mode",
                (true, Mode::Compatible) => "acceptable JSON, compatible mode",
                (true, Mode::Safe) => "acceptable JSON, safe mode",
            },
        );

        let account = if by_path.is_some() {
            candidates[0].clone()
        } else {
            let to = match &body {
                Body::Tree(doc) => doc.root.text_of("ToUserName"),
                Body::Outline(outline) => outline.to_user_name.as_deref(),
            }
            .map(crate::trim);
            let named = to.and_then(|to| candidates.iter().find(|a| a.original_id() == Some(to)));
            match (named, candidates) {
                (Some(a), _) => a.clone(),
                (None, [only]) if to.is_none() || only.original_id().is_none() => only.clone(),
                _ => {
                    self.account = None;
                    return Verdict::Refused(
                        self.fail(CheckKind::Account, self.unknown_account(request.path, to)),
                    );
                }
            }
        };
        if by_path.is_none() {
            self.pass_written(CheckKind::Account, |note| signs_the_request(note, account.appid()));
        }
        self.account = Some(account.clone());

        if account.requires_encryption() || self.policy.require_encryption {
            if !aes {
                return Verdict::Refused(
                    self.fail(CheckKind::Mode, self.plain_refused(std::slice::from_ref(&account))),
                );
            }
            let fixed = match (mode, account.mode()) {
                (Mode::Compatible, Some(Mode::Compatible)) => {
                    Some("compatible request to a compatible-mode account")
                }
                (Mode::Compatible, Some(Mode::Safe)) => Some("compatible request to a safe-mode account"),
                (Mode::Safe, Some(Mode::Compatible)) => Some("safe request to a compatible-mode account"),
                (Mode::Safe, Some(Mode::Safe)) => Some("safe request to a safe-mode account"),
                _ => None,
            };
            match fixed {
                Some(note) => self.pass_fixed(CheckKind::Mode, note),
                None => {
                    let declared = account.mode().map_or("require_encryption", Mode::as_str);
                    self.pass(CheckKind::Mode, format_args!("{mode} request to a {declared}-mode account"));
                }
            }
        }
        let outline = match body {
            Body::Tree(document) if mode == Mode::Plain => {
                return Self::accepted(text.to_owned(), document);
            }
            Body::Tree(document) => Outline::of(&document.root).into_owned(),
            Body::Outline(outline) => outline,
        };

        // Encrypted: only what `Encrypt` holds is trusted.
        let encrypt = match outline.encrypt() {
            Ok(encrypt) => encrypt,
            Err(e) => {
                let reason = match e {
                    EnvelopeError::MissingEncrypt | EnvelopeError::EmptyEncrypt => {
                        RejectReason::MissingEncrypt
                    }
                    _ => RejectReason::BadXml,
                };
                let refusal = Refusal::new(
                    400,
                    reason,
                    Some(e.reference_code()),
                    "Encrypt",
                    format!("{e} (encrypt_type=aes or an <Encrypt> element marks the request as encrypted)"),
                );
                return Verdict::Refused(self.fail(CheckKind::Envelope, refusal));
            }
        };
        let Some(cipher) = account.cipher() else {
            let refusal = Refusal::new(
                400,
                RejectReason::NoAesKey,
                Some(ReferenceCode::IllegalAesKey),
                "encrypt_type",
                format!(
                    "{mode}-mode request but no EncodingAESKey is configured for account {}",
                    account.appid()
                ),
            );
            return Verdict::Refused(self.fail(CheckKind::Envelope, refusal));
        };
        self.pass_written(CheckKind::Envelope, |note| encrypt_of(note, encrypt.len()));
        if skip {
            self.pass(CheckKind::MsgSignature, format_args!("not checked (insecure_skip_signature)"));
        } else {
            let Some(msg_signature) = query.msg_signature.as_deref() else {
                return Verdict::Refused(
                    self.fail(CheckKind::Query, Refusal::missing("msg_signature", true)),
                );
            };
            let token = account.token();
            if signature::verify_msg(token.expose(), timestamp, nonce, encrypt, msg_signature).is_err() {
                let refusal = Refusal::signature("msg_signature", token.len(), "timestamp, nonce, Encrypt");
                return Verdict::Refused(self.fail(CheckKind::MsgSignature, refusal));
            }
            self.pass(CheckKind::MsgSignature, format_args!("matches over timestamp, nonce and <Encrypt>"));
        }
        let xml = match cipher.decrypt(encrypt) {
            Ok(xml) => xml,
            Err(e) => return Verdict::Refused(self.fail(CheckKind::Decrypt, Refusal::decrypt(&e))),
        };
        // Typed straight from the text where it can be (not JSON): no document. Read into the
        // one `Result` that is matched (a `Result` of a document or a message, matched twice,
        // copied the message twice more).
        let message = match json {
            false => Incoming::read(&xml),
            true => Document::from_json(&xml).map(|mut doc| Incoming::take_from_document(&mut doc)),
        };
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                return Verdict::Refused(
                    self.fail(CheckKind::Decrypt, Refusal::xml(&e, "decrypted message")),
                );
            }
        };
        self.pass_written(CheckKind::Decrypt, |note| {
            note.push_str("decrypted for appid ");
            note.push_str(account.appid());
        });
        Verdict::Message { xml, message }
    }

    /// The WeCom applications a request may be for, and whether its path selected one: the
    /// app the path selects, else (no path match, no `signature` but a `msg_signature`, as
    /// WeCom sends) every WeCom app. `None`: an Official Account's or Mini Program's request.
    fn wecom_apps(&self, path: &str, query: &Query<'_>) -> Option<(Vec<Arc<Account>>, bool)> {
        match self.accounts.by_path(path) {
            Some(a) if a.kind() == Kind::Wecom => Some((vec![a.clone()], true)),
            Some(_) => None,
            None if query.signature.is_none() && query.msg_signature.is_some() => {
                let apps: Vec<Arc<Account>> =
                    self.accounts.iter().filter(|a| a.kind() == Kind::Wecom).cloned().collect();
                (!apps.is_empty()).then_some((apps, false))
            }
            None => None,
        }
    }

    /// Admission of a WeCom callback: always encrypted and signed with `msg_signature` only
    /// (WeCom sends no `signature`). The verification GET's `echostr` is encrypted too: its
    /// signature is checked over it and its plaintext is the answer. Messages carry
    /// `ToUserName` (the corpid), `AgentID` and `Encrypt`; the ReceiveId inside is the corpid.
    fn decide_wecom(
        &mut self,
        request: &Request<'_>,
        get: bool,
        query: &Query<'_>,
        apps: Vec<Arc<Account>>,
        by_path: bool,
    ) -> Verdict {
        let skip = self.policy.insecure_skip_signature;
        let wecom_missing = |param: &'static str| {
            Refusal::new(
                400,
                RejectReason::MissingParam,
                Some(ReferenceCode::ValidateSignature),
                param,
                format!(
                    "missing query parameter {param}; WeCom sends msg_signature, timestamp and nonce on every callback"
                ),
            )
        };
        let msg_signature = query.msg_signature.as_deref();
        if msg_signature.is_none() && !skip {
            return Verdict::Refused(self.fail(CheckKind::Query, wecom_missing("msg_signature")));
        }
        let Some(timestamp) = query.timestamp.as_deref() else {
            return Verdict::Refused(self.fail(CheckKind::Query, wecom_missing("timestamp")));
        };
        let Some(nonce) = query.nonce.as_deref() else {
            return Verdict::Refused(self.fail(CheckKind::Query, wecom_missing("nonce")));
        };
        // A plus sign that reached us unescaped decodes to a space, which base64 never has.
        let echostr = query.echostr.as_deref().map(|e| e.replace(' ', "+"));
        if get && echostr.is_none() {
            return Verdict::Refused(self.fail(CheckKind::Query, wecom_missing("echostr")));
        }
        self.pass(CheckKind::Query, format_args!("msg_signature, timestamp and nonce present (WeCom)"));
        if by_path {
            self.account = Some(apps[0].clone());
            self.pass(
                CheckKind::Account,
                format_args!("path {:?} selects WeCom app {}", request.path, describe(&apps[0])),
            );
        }
        self.mode = Some(Mode::Safe);
        if let Err(refusal) = self.check_timestamp(timestamp) {
            return Verdict::Refused(refusal);
        }

        // What msg_signature covers: the encrypted echostr, or the body's <Encrypt>.
        let (signed, outer) = if get {
            (echostr.unwrap_or_default(), None)
        } else {
            let text = match self.body_text(request.body) {
                Ok(text) => text,
                Err(refusal) => return Verdict::Refused(refusal),
            };
            let outline = match Outline::scan(text) {
                Ok(outline) => outline,
                Err(e) => return Verdict::Refused(self.fail(CheckKind::Body, Refusal::xml(&e, "body"))),
            };
            self.pass(CheckKind::Body, format_args!("acceptable XML, safe mode (WeCom)"));
            let encrypt = match outline.encrypt() {
                Ok(encrypt) => encrypt.to_owned(),
                Err(e) => {
                    let refusal = Refusal::new(
                        400,
                        RejectReason::MissingEncrypt,
                        Some(e.reference_code()),
                        "Encrypt",
                        format!("{e} (WeCom encrypts every callback)"),
                    );
                    return Verdict::Refused(self.fail(CheckKind::Envelope, refusal));
                }
            };
            self.pass_written(CheckKind::Envelope, |note| encrypt_of(note, encrypt.len()));
            (encrypt, Some(outline))
        };
        let over = if get { "timestamp, nonce, echostr" } else { "timestamp, nonce, Encrypt" };
        let signs = |a: &Account| {
            skip || signature::verify_msg(
                a.token().expose(),
                timestamp,
                nonce,
                &signed,
                msg_signature.unwrap_or(""),
            )
            .is_ok()
        };
        let signing: Vec<Arc<Account>> = apps.iter().filter(|a| signs(a)).cloned().collect();
        if signing.is_empty() {
            let refusal = match apps.as_slice() {
                [only] => Refusal::signature("msg_signature", only.token().len(), over),
                _ => {
                    let mut r = Refusal::new(
                        403,
                        RejectReason::SignatureMismatch,
                        Some(ReferenceCode::ValidateSignature),
                        "msg_signature",
                        format!(
                            "msg_signature mismatch: path {:?} selects no account and msg_signature over {over} \
                             matches the Token of none of the {} WeCom apps; check the Token in the WeCom admin",
                            request.path,
                            apps.len()
                        ),
                    );
                    r.detail = Some("computed from every WeCom app's token".to_owned());
                    r
                }
            };
            return Verdict::Refused(self.fail(CheckKind::MsgSignature, refusal));
        }
        if skip {
            self.pass(CheckKind::MsgSignature, format_args!("not checked (insecure_skip_signature)"));
        } else {
            self.pass(CheckKind::MsgSignature, format_args!("matches over {over}"));
        }

        // The app: the path's, else the one the envelope names (corpid and AgentID).
        let account = if by_path || signing.len() == 1 {
            signing[0].clone()
        } else {
            let to = outer.as_ref().and_then(|o| o.to_user_name.as_deref()).map(str::trim);
            let agent = outer.as_ref().and_then(|o| o.agent_id.as_deref()).map(str::trim);
            let named = signing.iter().find(|a| {
                to.is_none_or(|to| a.appid() == to)
                    && agent.is_none_or(|g| a.agentid().is_none_or(|mine| mine == g))
            });
            match named {
                Some(a) => a.clone(),
                // Apps sharing a Token and a corpid: decryption cannot tell them apart either.
                None => signing[0].clone(),
            }
        };
        if !by_path {
            self.pass(CheckKind::Account, format_args!("WeCom app {} signs the request", describe(&account)));
        }
        self.account = Some(account.clone());
        let Some(cipher) = account.cipher() else {
            let refusal = Refusal::new(
                400,
                RejectReason::NoAesKey,
                Some(ReferenceCode::IllegalAesKey),
                "aes_key",
                format!(
                    "no EncodingAESKey is configured for WeCom app {}: WeCom encrypts every callback",
                    describe(&account)
                ),
            );
            return Verdict::Refused(self.fail(CheckKind::Envelope, refusal));
        };
        let plain = match cipher.decrypt(&signed) {
            Ok(plain) => plain,
            Err(e) => {
                let mut refusal = Refusal::decrypt(&e);
                if get {
                    refusal.param = "echostr";
                }
                return Verdict::Refused(self.fail(CheckKind::Decrypt, refusal));
            }
        };
        if get {
            self.pass(CheckKind::Decrypt, format_args!("echostr decrypted for corpid {}", account.appid()));
            return Verdict::Verified { echostr: plain };
        }
        let inner = match Document::parse(&plain) {
            Ok(inner) => inner,
            Err(e) => {
                return Verdict::Refused(
                    self.fail(CheckKind::Decrypt, Refusal::xml(&e, "decrypted message")),
                );
            }
        };
        self.pass(CheckKind::Decrypt, format_args!("decrypted for corpid {}", account.appid()));
        Self::accepted(plain, inner)
    }

    /// The body as text: WeChat sends UTF-8 XML (or JSON), anything else is refused here.
    fn body_text<'b>(&mut self, body: &'b [u8]) -> Result<&'b str, Refusal> {
        std::str::from_utf8(body).map_err(|e| {
            let refusal = Refusal::new(
                400,
                RejectReason::BadXml,
                Some(ReferenceCode::ParseXml),
                "body",
                format!("body is not UTF-8 (byte {})", e.valid_up_to()),
            );
            self.fail(CheckKind::Body, refusal)
        })
    }

    fn check_timestamp(&mut self, timestamp: &str) -> Result<(), Refusal> {
        let Ok(ts) = crate::field::parse_int::<i64>(crate::trim(timestamp)) else {
            let shown: String = timestamp.chars().take(24).collect();
            let refusal = Refusal::new(
                400,
                RejectReason::BadTimestamp,
                // Not a signature failure, and not one of WXBizMsgCrypt's codes.
                None,
                "timestamp",
                format!("timestamp {shown:?} is not a number of seconds"),
            );
            return Err(self.fail(CheckKind::Timestamp, refusal));
        };
        let window = self.policy.freshness_secs;
        if window == 0 {
            self.pass(CheckKind::Timestamp, format_args!("not checked (no freshness window)"));
            return Ok(());
        }
        let skew = self.now.saturating_sub(ts);
        if skew.unsigned_abs() > window {
            let side = if skew > 0 { "behind" } else { "ahead of" };
            let refusal = Refusal::new(
                400,
                RejectReason::StaleTimestamp,
                // Not a signature failure (the signature was right), and not one of
                // WXBizMsgCrypt's codes: logging -40001 "bad signature" sent people hunting
                // for a wrong Token when the clock was off.
                None,
                "timestamp",
                format!(
                    "timestamp {ts} is {} s {side} server time (window {window} s); replayed request or wrong server clock?",
                    skew.unsigned_abs()
                ),
            );
            return Err(self.fail(CheckKind::Timestamp, refusal));
        }
        self.pass_written(CheckKind::Timestamp, |note| {
            note.push_uint(skew.unsigned_abs());
            note.push_str(" s from server time (window ");
            note.push_uint(window);
            note.push_str(" s)");
        });
        Ok(())
    }

    fn unknown_account(&self, path: &str, to: Option<&str>) -> Refusal {
        let to = to.map(|t| format!(" or ToUserName {t:?}")).unwrap_or_default();
        Refusal::new(
            404,
            RejectReason::UnknownAccount,
            None,
            "path",
            format!(
                "no account for path {path:?}{to}: {} accounts configured, selected by last path segment or original id",
                self.accounts.len()
            ),
        )
    }

    fn plain_refused(&self, accounts: &[Arc<Account>]) -> Refusal {
        let why = match accounts {
            [a] if a.requires_encryption() => format!(
                "account {} is in {} mode: only requests with encrypt_type=aes and a valid msg_signature are admitted",
                a.appid(),
                a.mode().unwrap_or(Mode::Safe)
            ),
            _ => "this server requires compatible or safe mode (require_encryption)".to_owned(),
        };
        Refusal::new(
            403,
            RejectReason::PlainRefused,
            None,
            "encrypt_type",
            format!("plain-mode request refused: {why}"),
        )
    }
}

/// A request's body as admission reads it: a tree when it may be the message itself, only
/// its outline when the message is in `Encrypt`.
enum Body<'x> {
    Tree(Document),
    Outline(Outline<'x>),
}

/// The account check's note: `account {appid} signs the request`.
fn signs_the_request(note: &mut Note, appid: &str) {
    note.push_str("account ");
    note.push_str(appid);
    note.push_str(" signs the request");
}

/// The envelope check's note: `<Encrypt> of {len} characters`.
fn encrypt_of(note: &mut Note, len: usize) {
    note.push_str("<Encrypt> of ");
    note.push_uint(len as u64);
    note.push_str(" characters");
}

/// Appends `text` as `{:?}` writes it: between quotes, as it is when it is printable ASCII
/// without a quote or a backslash (a path always is), else escaped by `Debug` itself.
fn push_debug(out: &mut impl fmt::Write, text: &str) {
    if text.bytes().all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\') {
        // Neither a `String` nor a `Note` fails a write.
        let _ = out.write_str("\"");
        let _ = out.write_str(text);
        let _ = out.write_str("\"");
    } else {
        let _ = out.write_fmt(format_args!("{text:?}"));
    }
}

/// A WeCom app as the checks name it: `corpid` or `corpid/agentid`.
fn describe(app: &Account) -> String {
    match app.agentid() {
        Some(agent) => format!("{}/{agent}", app.appid()),
        None => app.appid().to_owned(),
    }
}

#[cfg(test)]
mod tests;
