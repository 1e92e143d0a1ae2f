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

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

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

/// Whether a subscriber that takes handed values ([`take_handed`]) has been set up in this
/// process; until then nothing is handed over (library users with another subscriber pay
/// nothing for it).
static TAKEN: AtomicBool = AtomicBool::new(false);

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
    /// The values, one after the other (a `String` of the thread's, its capacity kept).
    text: String,
    /// Where each value's text ends.
    ends: [usize; HANDED_MAX],
    len: usize,
    /// Where the span's `rule` will be, for a subscriber that takes it ([`HandedValues::take_rule`]).
    rule: Option<LateRule>,
    /// Set while a span is made with these values, until a subscriber takes them.
    ready: bool,
}

impl HandedValues {
    const fn new() -> Self {
        Self { text: String::new(), ends: [0; HANDED_MAX], len: 0, rule: None, ready: false }
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
        &self.text
    }

    /// Where each value's text ends in [`HandedValues::text`], in the order of the fields.
    pub fn ends(&self) -> &[usize] {
        &self.ends[..self.len]
    }

    /// The number of values handed over.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value was handed over.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    TAKEN.store(true, Ordering::Relaxed);
}

/// For a subscriber, while it is told of a new span (`on_new_span`): the span's values, as
/// text, if they were handed over for it (see [`HandedValues`]); taken once, so a second call
/// gets `None`. `None` too for every span made any other way, whose values are to be
/// recorded from its attributes as usual.
pub fn take_handed<R>(take: impl FnOnce(&mut HandedValues) -> R) -> Option<R> {
    if !TAKEN.load(Ordering::Relaxed) {
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
pub(crate) fn handing(
    delivery: &Arc<Shared>,
    hand: impl FnOnce(&mut Hand<'_>),
    make: impl FnOnce() -> tracing::Span,
) -> tracing::Span {
    if !TAKEN.load(Ordering::Relaxed) {
        return make();
    }
    let handed = HANDED.with(|handed| {
        let Ok(mut handed) = handed.try_borrow_mut() else { return false };
        handed.text.clear();
        handed.len = 0;
        handed.rule = Some(LateRule(Arc::downgrade(delivery)));
        let mut writing = Hand { handed: &mut handed, ok: true };
        hand(&mut writing);
        let ok = writing.ok && handed.text.len() <= HANDED_ROOM;
        if !ok && handed.text.capacity() > 4 * HANDED_ROOM {
            // One huge value does not stay resident in every thread.
            handed.text = String::new();
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
            |hand| {
                $(hand.value(&$value);)+
            },
            || tracing::info_span!($name, $($field = %$value,)+ $($($rest)*)?),
        )
    };
}
pub(crate) use info_span_handing;

/// The values [`handing`] hands over, given one by one.
pub(crate) struct Hand<'a> {
    handed: &'a mut HandedValues,
    /// False once more values were given than are handed over.
    ok: bool,
}

impl Hand<'_> {
    /// Hands over the next field's value: the text its `Display` writes.
    pub(crate) fn value(&mut self, value: &impl Pieces) -> &mut Self {
        let handed = &mut *self.handed;
        let _ = value.pieces(|piece| {
            handed.text.push_str(piece);
            Ok::<(), std::convert::Infallible>(())
        });
        match handed.ends.get_mut(handed.len) {
            Some(end) => {
                *end = handed.text.len();
                handed.len += 1;
            }
            None => self.ok = false,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
