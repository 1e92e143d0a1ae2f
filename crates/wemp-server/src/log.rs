//! Log helpers: shortened OpenIDs, and a span's values handed to a subscriber as text.
//!
//! `wemp serve` makes a `wechat` span for each message (its `%` values: the appid, mode,
//! message type, shortened OpenID and dedup outcome), and its log layer keeps them so that a
//! line written inside the span later can print them. Under tracing 0.1 a `%` value reaches
//! a subscriber only as a `&dyn Debug` borrowed for the call, so keeping one means formatting
//! it: five `Display` calls through one `core::fmt::write` (~800 instructions a message, by
//! callgrind). The values are plain text pieces (`Text`, `ShortId`), so wemp-server hands
//! their text over beside the span, on the thread making it ([`take_handed`]): a subscriber
//! that takes it keeps that instead of formatting, and any other subscriber formats the `%`
//! values as before. Only spans wemp-server makes are handed over, and only once a subscriber
//! that takes them is set up ([`handed_values_are_taken`]).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;

use crate::context::Shared;

/// An OpenID for logs: `oyOR…f0rs` unless full ids were asked for.
pub(crate) struct ShortId<'a> {
    id: &'a str,
    full: bool,
}

impl<'a> ShortId<'a> {
    pub(crate) fn new(id: &'a str, full: bool) -> Self {
        Self { id, full }
    }
}

impl Pieces for ShortId<'_> {
    fn pieces<E>(&self, mut put: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        // Slices at char boundaries, no allocation: this runs for every request whose span
        // is recorded.
        let id = self.id;
        if self.full || id.len() <= 8 {
            // At most eight bytes are at most eight chars.
            return put(id);
        }
        if id.is_ascii() {
            // An OpenID, as a rule: bytes are chars. Three writes: the eleven bytes assembled
            // and checked again as UTF-8 (`str::from_utf8`) cost more (callgrind, a message's
            // span under `wemp serve`: 263 → 230 instructions).
            put(&id[..4])?;
            put("…")?;
            return put(&id[id.len() - 4..]);
        }
        // Eight chars or fewer in more than eight bytes: as it is.
        if id.chars().nth(8).is_none() {
            return put(id);
        }
        let head_end = id.char_indices().nth(4).map_or(id.len(), |(i, _)| i);
        let tail_start = id.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
        put(&id[..head_end])?;
        put("…")?;
        put(&id[tail_start..])
    }
}

impl fmt::Display for ShortId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces(|piece| f.write_str(piece))
    }
}

/// A span's text field given as `Display` (unquoted by tracing's fmt subscriber), written as
/// it is: `str`'s own `Display` goes through `Formatter::pad` for a width no log field has.
pub(crate) struct Text<'a>(pub(crate) &'a str);

impl Pieces for Text<'_> {
    fn pieces<E>(&self, mut put: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        put(self.0)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A span value whose text is written in whole pieces: what its `Display` writes, piece by
/// piece (its `Display` is `pieces` into the `Formatter`), so that the same text can be
/// handed over without a `Formatter` ([`handing`]).
pub(crate) trait Pieces: fmt::Display {
    /// Gives each piece of the text to `put`, in order, stopping at its first error.
    fn pieces<E>(&self, put: impl FnMut(&str) -> Result<(), E>) -> Result<(), E>;
}

/// What the subscriber set up in this process takes: nothing special ([`NOT_TAKEN`], until one
/// says otherwise: library users with another subscriber pay nothing for it), handed values
/// ([`VALUES`], [`handed_values_are_taken`]) or message scopes instead of spans ([`SCOPES`],
/// [`message_scopes_are_written`]).
static TAKEN: AtomicU8 = AtomicU8::new(NOT_TAKEN);
const NOT_TAKEN: u8 = 0;
const VALUES: u8 = 1;
const SCOPES: u8 = 2;

/// The most values handed over for one span.
const HANDED_MAX: usize = 8;

/// Bytes of handed text past which the values are not handed over (the subscriber formats the
/// span's values instead).
const HANDED_ROOM: usize = 128;

/// A span's values as text, handed over beside the span and read by a subscriber in
/// [`take_handed`]: value `i` is the text that the `i`-th field of the span's
/// callsite writes with its `Display`, for the first [`HandedValues::len`] fields; the span is
/// given no other values when it is made (fields recorded later are recorded as usual).
#[derive(Debug)]
pub struct HandedValues {
    /// The values (a `String` of the thread's, its capacity kept).
    values: Values,
    /// Where the span's `rule` will be, for a subscriber that takes it ([`HandedValues::take_rule`]).
    rule: Option<LateRule>,
    /// Set while a span is made with these values, until a subscriber takes them.
    ready: bool,
}

impl HandedValues {
    const fn new() -> Self {
        Self { values: Values::new(), rule: None, ready: false }
    }

    /// Where to read the span's `rule` field (declared empty, named once later), for a
    /// subscriber that reads it there when it writes a line, rather than as it is recorded:
    /// once this is taken, the rule is not recorded into the span. Take it only when nothing
    /// else in the subscriber reads a span's recorded values (a filter by span fields does).
    /// `None` for a span whose rule is recorded as usual, or once taken.
    pub fn take_rule(&mut self) -> Option<LateRule> {
        self.rule.take()
    }

    /// The values' text, one after the other.
    pub fn text(&self) -> &str {
        &self.values.text
    }

    /// Where each value's text ends in [`HandedValues::text`], in the order of the fields.
    pub fn ends(&self) -> &[usize] {
        &self.values.ends[..self.values.len]
    }

    /// The number of values handed over.
    pub fn len(&self) -> usize {
        self.values.len
    }

    /// Whether no value was handed over.
    pub fn is_empty(&self) -> bool {
        self.values.len == 0
    }
}

/// A span's first values as text ([`Pieces`]), one after the other.
#[derive(Debug)]
struct Values {
    text: String,
    /// Where each value's text ends.
    ends: [usize; HANDED_MAX],
    len: usize,
}

impl Values {
    const fn new() -> Self {
        Self { text: String::new(), ends: [0; HANDED_MAX], len: 0 }
    }
}

/// Bytes of a message scope's values kept ([`Scope`]): `wemp serve`'s five take ~40, ~60 with
/// whole OpenIDs. Past that, the message gets a span, whose values are formatted.
const SCOPE_ROOM: usize = 72;

/// A message's scope, kept by its delivery in place of its `wechat` span under a subscriber
/// that writes scopes ([`message_scopes_are_written`]): the span's name and first fields'
/// names, their values' text (what the span's `%` values write), and, read from the
/// delivery, the `rule` it would have recorded. The text is kept in place: a `String` of its
/// own, grown as it was written, cost ~600 instructions a message (callgrind).
#[derive(Debug)]
pub(crate) struct Scope {
    /// The span's name and its first fields' names.
    callsite: &'static (&'static str, &'static [&'static str]),
    text: [u8; SCOPE_ROOM],
    /// Bytes of `text` written.
    written: u8,
    /// Where each value's text ends.
    ends: [u8; HANDED_MAX],
    len: u8,
}

impl Scope {
    fn new(callsite: &'static (&'static str, &'static [&'static str])) -> Self {
        Self { callsite, text: [0; SCOPE_ROOM], written: 0, ends: [0; HANDED_MAX], len: 0 }
    }

    /// Adds `piece` to the text of the value being written: false if there is no room.
    fn push_str(&mut self, piece: &str) -> bool {
        let at = usize::from(self.written);
        let Some(room) = self.text.get_mut(at..at + piece.len()) else { return false };
        room.copy_from_slice(piece.as_bytes());
        // At most `SCOPE_ROOM`, which is below 256.
        self.written = (at + piece.len()) as u8;
        true
    }

    /// Ends the value being written: false past the values kept.
    fn end_value(&mut self) -> bool {
        let Some(end) = self.ends.get_mut(usize::from(self.len)) else { return false };
        *end = self.written;
        self.len += 1;
        true
    }

    /// Each value's text, in order.
    fn each(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends[..usize::from(self.len)].iter().map(move |&end| {
            // Only whole `str`s were written, so the text is UTF-8 at every end.
            let value = self.text.get(start..usize::from(end)).and_then(|v| std::str::from_utf8(v).ok());
            start = usize::from(end);
            value.unwrap_or_default()
        })
    }
}

thread_local! {
    /// The delivery whose message scope this thread is in ([`in_message_scope`]): set by the
    /// delivery's future for each poll ([`ScopeEntered`]), as a span is entered.
    static CURRENT: Cell<Option<Arc<Shared>>> = const { Cell::new(None) };
}

/// For a subscriber that writes message scopes ([`message_scopes_are_written`]): the
/// message scope this thread is in, if any — what a line logged now is to print as its
/// `wechat` span's prefix, as tracing-subscriber's fmt layer would print that span: the name,
/// then `{`, each field as `name=value` (the value written as it is, as a `%` value is), the
/// `rule` last as a `&str` (once named) and `}` — and as the parent of any span the line is
/// in.
pub fn in_message_scope<R>(read: impl FnOnce(Option<MessageScope<'_>>) -> R) -> R {
    let shared = current();
    read(shared.as_deref().and_then(|shared| Some(MessageScope { shared, scope: shared.scope()? })))
}

/// The delivery whose message scope this thread is in, if any (the thread keeps it set).
fn current() -> Option<Arc<Shared>> {
    CURRENT
        .try_with(|current| {
            let shared = current.take();
            let copy = shared.clone();
            current.set(shared);
            copy
        })
        .ok()
        .flatten()
}

/// The message scope a line is written in ([`in_message_scope`]).
#[derive(Clone, Copy, Debug)]
pub struct MessageScope<'a> {
    shared: &'a Shared,
    scope: &'a Scope,
}

impl<'a> MessageScope<'a> {
    /// The span's name: `wechat`.
    pub fn name(&self) -> &'static str {
        self.scope.callsite.0
    }

    /// The span's fields given when it was made, in order: each one's name and the text its
    /// `%` value writes.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, &'a str)> + use<'a> {
        self.scope.callsite.1.iter().copied().zip(self.scope.each())
    }

    /// The `rule` field (a `&str`), once named.
    pub fn rule(&self) -> Option<Arc<str>> {
        self.shared.span_rule()
    }
}

/// Sets the thread's message scope ([`in_message_scope`]) to `delivery`'s, if it has one,
/// until dropped (then the one before is set again): what entering a span is to a span.
pub(crate) fn enter_scope(delivery: &Arc<Shared>) -> ScopeEntered {
    if delivery.scope().is_none() {
        return ScopeEntered(None);
    }
    ScopeEntered(CURRENT.try_with(|current| current.replace(Some(delivery.clone()))).ok())
}

/// The thread in a message scope, until dropped ([`enter_scope`]).
#[must_use]
pub(crate) struct ScopeEntered(Option<Option<Arc<Shared>>>);

impl Drop for ScopeEntered {
    fn drop(&mut self) {
        if let Some(before) = self.0.take() {
            let _ = CURRENT.try_with(|current| current.replace(before));
        }
    }
}

pin_project_lite::pin_project! {
    /// A future run in the message scope that was the thread's when it was made
    /// ([`in_current_scope`]), as `future.instrument(Span::current())` runs it in the current
    /// span: the scope set at each poll and while the future is dropped.
    pub(crate) struct InScope<F> {
        scope: Option<Arc<Shared>>,
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for InScope<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if let Some(scope) = this.scope.as_ref() && this.future.is_some() {
                let _entered = enter_scope(scope);
                this.future.set(None);
            }
        }
    }
}

/// `future`, to run in this thread's message scope (a task spawned from a delivery's future).
pub(crate) fn in_current_scope<F: Future>(future: F) -> InScope<F> {
    InScope { scope: current(), future: Some(future) }
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let _entered = this.scope.as_ref().map(enter_scope);
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            panic!("`InScope` polled after it finished");
        };
        let output = std::task::ready!(future.poll(cx));
        this.future.set(None);
        Poll::Ready(output)
    }
}

/// A `wechat` span's `rule` field where wemp-server keeps it ([`HandedValues::take_rule`]):
/// the name recorded as a `&str` would be (the first one named), once there is one. It does
/// not keep the delivery alive.
pub struct LateRule(Weak<Shared>);

impl LateRule {
    /// The rule's name, once named.
    pub fn get(&self) -> Option<Arc<str>> {
        self.0.upgrade()?.span_rule()
    }
}

impl fmt::Debug for LateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LateRule").field(&self.get()).finish()
    }
}

thread_local! {
    /// The values of the span being made on this thread, if they are handed over.
    static HANDED: RefCell<HandedValues> = const { RefCell::new(HandedValues::new()) };
}

/// Notes that a subscriber taking handed values ([`take_handed`]) is set up: from then on
/// wemp-server hands its spans' values over (a span made under another subscriber then costs
/// the handing, ~400 instructions by callgrind, and formats its values as before; until then
/// nothing is handed over).
pub fn handed_values_are_taken() {
    TAKEN.store(VALUES, Ordering::Relaxed);
}

/// Notes that the subscriber set up writes wemp-server's message scopes ([`in_message_scope`])
/// itself: from then on a message whose `wechat` span is enabled gets no span at all, but a
/// scope with the same values (and `rule`), which the message's future sets on its thread at
/// each poll, as a span would be entered, and which the lines it logs are to print as the
/// span's prefix. Only for a subscriber that writes that prefix and whose filters do not read
/// spans (a filter by span fields would see none); any other span is made as usual
/// (callgrind: a message's span, made, entered, exited and closed in tracing-subscriber's
/// registry, was ~2 270 instructions a request of `wemp serve`).
pub fn message_scopes_are_written() {
    TAKEN.store(SCOPES, Ordering::Relaxed);
}

/// For a subscriber, while it is told of a new span (`on_new_span`): the span's values, as
/// text, if they were handed over for it (see [`HandedValues`]); taken once, so a second call
/// gets `None`. `None` too for every span made any other way, whose values are to be
/// recorded from its attributes as usual.
pub fn take_handed<R>(take: impl FnOnce(&mut HandedValues) -> R) -> Option<R> {
    if TAKEN.load(Ordering::Relaxed) != VALUES {
        return None;
    }
    HANDED.with(|handed| {
        let mut handed = handed.try_borrow_mut().ok()?;
        if !handed.ready {
            return None;
        }
        handed.ready = false;
        Some(take(&mut handed))
    })
}

/// Makes a span (`make`, which makes exactly one) with its first fields' values handed over
/// as text by `hand` (a subscriber set up for it takes them in [`take_handed`]; any other
/// formats the span's `%` values as usual). `hand` gives the same values, in the same order,
/// as the span's first fields are given, through [`Hand::value`]. The span's `rule` field is
/// `delivery`'s ([`Shared::name_in_span`]): where it is kept is handed over too, and once a
/// subscriber takes that ([`HandedValues::take_rule`]) the rule is read there, not recorded.
///
/// Under a subscriber that writes message scopes ([`message_scopes_are_written`]), no span is
/// made when `enabled` (the span's callsite is): the values go into `delivery`'s scope
/// instead ([`Scope`]), and `Span::none()` is given back.
pub(crate) fn handing(
    delivery: &Arc<Shared>,
    callsite: &'static (&'static str, &'static [&'static str]),
    hand: impl FnOnce(&mut Hand<'_>),
    enabled: impl FnOnce() -> bool,
    make: impl FnOnce() -> tracing::Span,
) -> tracing::Span {
    match TAKEN.load(Ordering::Relaxed) {
        NOT_TAKEN => return make(),
        SCOPES => {
            if !enabled() {
                return make();
            }
            let mut scope = Scope::new(callsite);
            let mut writing = Hand { to: To::Scope(&mut scope), ok: true };
            hand(&mut writing);
            if !writing.ok || usize::from(scope.len) != callsite.1.len() {
                // More values than are kept: a span, whose values are formatted.
                return make();
            }
            delivery.set_scope(scope);
            // Read where it is kept: nothing to record it into.
            delivery.rule_is_read_late();
            return tracing::Span::none();
        }
        _ => {}
    }
    let handed = HANDED.with(|handed| {
        let Ok(mut handed) = handed.try_borrow_mut() else { return false };
        let handed = &mut *handed;
        handed.values.text.clear();
        handed.values.len = 0;
        handed.rule = Some(LateRule(Arc::downgrade(delivery)));
        let mut writing = Hand { to: To::Values(&mut handed.values), ok: true };
        hand(&mut writing);
        let ok = writing.ok && handed.values.text.len() <= HANDED_ROOM;
        if !ok && handed.values.text.capacity() > 4 * HANDED_ROOM {
            // One huge value does not stay resident in every thread.
            handed.values.text = String::new();
        }
        handed.ready = ok;
        if !ok {
            handed.rule = None;
        }
        ok
    });
    let span = make();
    if handed {
        // Not taken (the span was not made, or made under another subscriber): not for the next.
        // The rule taken: read where it is kept from now on.
        HANDED.with(|h| {
            if let Ok(mut h) = h.try_borrow_mut() {
                h.ready = false;
                if h.rule.take().is_none() {
                    delivery.rule_is_read_late();
                }
            }
        });
    }
    span
}

/// `tracing::info_span!` whose leading `%` values are also handed over as text ([`handing`]):
/// each value is named once, and goes both to its field and, in the same order, to the
/// handing, so the two cannot disagree. The values are `Pieces` (`Text`, `ShortId`) held in
/// locals; fields after them (`rule = Empty`) are given to the span only. The first argument
/// is the delivery (`&Arc<Shared>`) whose rule the span's `rule` field names.
macro_rules! info_span_handing {
    ($delivery:expr, $name:literal, $($field:ident = %$value:ident),+ $(; $($rest:tt)*)?) => {
        $crate::log::handing(
            $delivery,
            &($name, &[$(stringify!($field)),+]),
            |hand| {
                $(hand.value(&$value);)+
            },
            || $crate::log::span_enabled($crate::log::info_span_callsite!($name, $($field),+)),
            || tracing::info_span!($name, $($field = %$value,)+ $($($rest)*)?),
        )
    };
}
pub(crate) use info_span_handing;

/// A callsite of its own (`&'static`) for an `INFO` span of this name, target (the module)
/// and first fields, to ask [`span_enabled`] about, as `tracing`'s span macros ask theirs.
macro_rules! info_span_callsite {
    ($name:literal, $($field:ident),+) => {{
        static CALLSITE: tracing_core::callsite::DefaultCallsite =
            tracing_core::callsite::DefaultCallsite::new(&META);
        static META: tracing_core::Metadata<'static> = tracing_core::Metadata::new(
            $name,
            module_path!(),
            tracing_core::Level::INFO,
            Some(file!()),
            Some(line!()),
            Some(module_path!()),
            tracing_core::field::FieldSet::new(
                &[$(stringify!($field)),+],
                tracing_core::identify_callsite!(&CALLSITE),
            ),
            tracing_core::metadata::Kind::SPAN,
        );
        &CALLSITE
    }};
}
pub(crate) use info_span_callsite;

/// Whether anything at `level` may be written now: the level is under both the static maximum
/// and the current one (the most verbose any subscriber may want), as `tracing`'s macros check
/// first of all.
pub(crate) fn level_enabled(level: tracing::Level) -> bool {
    level <= tracing::level_filters::STATIC_MAX_LEVEL
        && level <= tracing::level_filters::LevelFilter::current()
}

/// Whether a span of `callsite` would be made now, decided as `tracing`'s span macros decide
/// it: the level under the static and the current maximum, then the callsite's interest, the
/// dispatcher asked only when that is "sometimes". (`tracing::span_enabled!` asks the
/// dispatcher every time, ~100 instructions a message by callgrind, where an interest of
/// "always" already answers.)
pub(crate) fn span_enabled(callsite: &'static tracing_core::callsite::DefaultCallsite) -> bool {
    use tracing_core::Callsite as _;
    let meta = callsite.metadata();
    if !level_enabled(*meta.level()) {
        return false;
    }
    let interest = callsite.interest();
    interest.is_always()
        || (!interest.is_never() && tracing::dispatcher::get_default(|current| current.enabled(meta)))
}

/// The values [`handing`] hands over, given one by one.
pub(crate) struct Hand<'a> {
    to: To<'a>,
    /// False once more values were given than are handed over.
    ok: bool,
}

/// Where [`Hand`] writes.
enum To<'a> {
    Values(&'a mut Values),
    Scope(&'a mut Scope),
}

impl Hand<'_> {
    /// Hands over the next field's value: the text its `Display` writes.
    pub(crate) fn value(&mut self, value: &impl Pieces) -> &mut Self {
        match &mut self.to {
            To::Values(values) => {
                let _ = value.pieces(|piece| {
                    values.text.push_str(piece);
                    Ok::<(), std::convert::Infallible>(())
                });
                match values.ends.get_mut(values.len) {
                    Some(end) => {
                        *end = values.text.len();
                        values.len += 1;
                    }
                    None => self.ok = false,
                }
            }
            To::Scope(scope) => {
                self.ok = self.ok
                    && value.pieces(|piece| if scope.push_str(piece) { Ok(()) } else { Err(()) }).is_ok()
                    && scope.end_value();
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn a_span_is_enabled_as_the_filter_says_for_its_callsite() {
        use tracing::{Dispatch, Level, dispatcher::with_default};
        let enabled = || span_enabled(info_span_callsite!("wechat", appid, mode));
        let only = |level| {
            Dispatch::new(
                tracing_subscriber::registry().with(Targets::new().with_target(module_path!(), level)),
            )
        };
        // One subscriber wanting the span and one not, both alive: the callsite's interest is
        // "sometimes" (at least), and each is asked as the current one.
        let (info, warn) = (only(Level::INFO), only(Level::WARN));
        with_default(&info, || assert!(enabled()));
        with_default(&warn, || assert!(!enabled()));
        drop(info);
        with_default(&warn, || assert!(!enabled()));
        drop(warn);
        let elsewhere = Dispatch::new(
            tracing_subscriber::registry().with(Targets::new().with_target("other", Level::TRACE)),
        );
        with_default(&elsewhere, || assert!(!enabled()));
        with_default(&only(Level::DEBUG), || assert!(enabled()));
    }

    #[test]
    fn shortens_unless_full() {
        assert_eq!(ShortId::new("oyORnuP8q7ou2gfYjqLzSIWZf0rs", false).to_string(), "oyOR…f0rs");
        assert_eq!(
            ShortId::new("oyORnuP8q7ou2gfYjqLzSIWZf0rs", true).to_string(),
            "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        );
        assert_eq!(ShortId::new("o1", false).to_string(), "o1");
        assert_eq!(ShortId::new("o1234567", false).to_string(), "o1234567");
        assert_eq!(ShortId::new("o12345678", false).to_string(), "o123…5678");
        assert_eq!(ShortId::new("用户一二三四五六七", false).to_string(), "用户一二…四五六七");
        assert_eq!(ShortId::new("用户一二三四五六", false).to_string(), "用户一二三四五六");
        assert_eq!(ShortId::new("o1234567é", false).to_string(), "o123…567é");
        assert_eq!(ShortId::new("o12345678", true).to_string(), "o12345678");
        // Padding and width apply to neither (as before: the pieces were written as they are).
        assert_eq!(format!("[{:>12}]", ShortId::new("o12345678", false)), "[o123…5678]");
    }
}
