//! How `wemp` writes its log lines: which ones (the `WEMP_LOG` filter) and how their
//! fields read when they are not coloured.
//!
//! Uncoloured, the output is the same as tracing-subscriber's default (`name=value`, the
//! message unnamed and its control characters escaped), without the styling pass that the
//! default makes around every field name even when colours are off. `wemp serve` makes one
//! span per message with five fields, so that pass was paid on every request (about 2 % of
//! its instructions by callgrind).

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::field::{RecordFields, VisitFmt, VisitOutput};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::ExtensionsMut;
use wemp_server::log::LateRule;

/// The filter for `WEMP_LOG` (`None`, or a value that does not parse: `info`).
///
/// Levels per target (`info`, `debug`, `wemp_server=debug,info`) are a [`Targets`]
/// filter, which keeps no state per span; only a value with span directives
/// (`[wechat{appid=wx…}]=debug`) needs an [`EnvFilter`], which looks every span up in a
/// shared map each time it is entered, exited or closed — several times per request.
pub fn filter<S>(spec: Option<&str>) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if let Some(targets) = targets(spec) {
        return Box::new(targets);
    }
    match EnvFilter::try_new(spec_or_info(spec)) {
        Ok(env) => Box::new(env),
        Err(_) => Box::new(Targets::new().with_default(tracing::Level::INFO)),
    }
}

/// Whether the filter for `WEMP_LOG` ([`filter`]) reads a span's values: an [`EnvFilter`]
/// does, for its span directives (a [`Targets`] reads none).
pub fn filter_reads_spans(spec: Option<&str>) -> bool {
    targets(spec).is_none() && EnvFilter::try_new(spec_or_info(spec)).is_ok()
}

fn spec_or_info(spec: Option<&str>) -> &str {
    spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info")
}

/// The [`Targets`] filter for `spec`, if it is one (levels per target only).
fn targets(spec: Option<&str>) -> Option<Targets> {
    let spec = spec_or_info(spec);
    // `Targets` would read `[span]` as a target's name.
    if spec.contains(['[', ']', '{', '}']) {
        return None;
    }
    spec.parse::<Targets>().ok()
}

/// Field formatting for uncoloured output: see the module docs.
///
/// The fields are written into a buffer kept by the thread, then copied to their
/// destination in one piece: a span's fields go into a new `String` of their own, which
/// written field by field grew (and reallocated) four or five times per span.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainFields;

thread_local! {
    /// Where [`PlainFields`] writes before copying; its capacity is kept between calls.
    static STAGE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let sanitize = writer.sanitizes_ansi_escapes();
        STAGE.with(|stage| {
            // Taken only if formatting a field came back here (tracing itself does not
            // re-enter the subscriber from a field): then write straight through.
            let Ok(mut stage) = stage.try_borrow_mut() else {
                let mut visitor = PlainVisitor::new(writer.by_ref(), sanitize);
                fields.record(&mut visitor);
                return visitor.finish();
            };
            stage.clear();
            // Straight into the `String`: its writes are inlined, where through a `Writer`
            // each one is a call through `dyn Write` (a span's five fields took 19).
            let mut visitor = PlainVisitor::new(&mut *stage, sanitize);
            fields.record(&mut visitor);
            visitor.finish()?;
            let written = writer.write_str(&stage);
            if stage.capacity() > 4096 {
                // One huge line does not stay resident in every thread.
                *stage = String::new();
            }
            written
        })
    }

    /// Fields recorded into a span after it was made (`wemp serve`'s `rule`): straight into
    /// the span's own `String`, without staging and copying them.
    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        let sanitize = current.as_writer().sanitizes_ansi_escapes();
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        let mut visitor = PlainVisitor::new(&mut current.fields, sanitize);
        fields.record(&mut visitor);
        visitor.finish()
    }
}

/// The uncoloured log lines: a fmt layer formatting fields with [`PlainFields`]
/// (`fmt::layer().fmt_fields(PlainFields)`, span events off, ANSI sanitization on: both
/// the defaults), whose spans' fields this layer writes itself, and only when a line is
/// written inside the span.
///
/// The lines are the fmt layer's, byte for byte: a span's fields are written as it would
/// write them, into the same place (the span's `FormattedFields<PlainFields>`), and
/// everything else is its own. What differs is when. The fmt layer writes a span's fields
/// (`name=value`, one after the other) when the span is made, and adds those recorded later,
/// whether or not a line is ever written inside it: `wemp serve` makes a span per message
/// (five fields, `rule` recorded later) and, at its default level, writes no line in it.
/// Here a span keeps each value as it was given (`Given`: a `%` value's text, a `&str`
/// as it is) and the fields are written out, as the fmt layer would have, just before the
/// first line inside the span. A value whose `Debug` is called for keeping runs then,
/// exactly once, as it would have with the fmt layer.
///
/// Told that nothing else reads a span's values as they are recorded
/// ([`PlainLines::sole_reader`]), it has wemp-server make no span for a message at all:
/// the message's scope stands for it, and [`ScopePrefix`] writes it into each line logged in
/// it as the fmt layer would have written the span.
#[derive(Debug)]
pub struct PlainLines<L> {
    lines: L,
    /// Whether it reads wemp-server's `rule` where it is kept ([`PlainLines::sole_reader`]).
    sole: bool,
}

impl<S, E, W> PlainLines<tracing_subscriber::fmt::Layer<S, PlainFields, ScopePrefix<E>, W>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    E: FormatEvent<S, PlainFields> + 'static,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    /// Wraps `lines` (see the type's docs for what it must be): its lines written in a
    /// wemp-server message scope get that scope's prefix ([`ScopePrefix`]).
    pub fn new(lines: tracing_subscriber::fmt::Layer<S, PlainFields, E, W>) -> Self {
        Self { lines: lines.map_event_format(ScopePrefix), sole: false }
    }
}

impl<L> PlainLines<L> {
    /// Whether this layer is the only one in its subscriber that reads a span's values as
    /// they are recorded — true unless the filter reads them ([`filter_reads_spans`]). Then
    /// wemp-server makes no `wechat` span for a message at all, but keeps its values as the
    /// message's scope, which this layer writes as that span's prefix on each line logged in
    /// it ([`wemp_server::log::message_scopes_are_written`], [`ScopePrefix`]; callgrind: the
    /// span was ~2 270 instructions a request). Otherwise a message span's values are taken
    /// as text ([`wemp_server::log::take_handed`]) and its `rule` recorded.
    pub fn sole_reader(mut self, sole: bool) -> Self {
        self.sole = sole;
        self
    }
}

/// Bytes of a span's text per field its callsite declares, for one written at once.
const ROOM_PER_FIELD: usize = 24;

impl<S, L> Layer<S> for PlainLines<L>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    /// Also tells wemp-server that its spans' values are taken as text here (see
    /// [`wemp_server::log::take_handed`]), or, as the sole reader of spans' values, that
    /// its message scopes are written here ([`PlainLines::sole_reader`]).
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        if self.sole {
            wemp_server::log::message_scopes_are_written();
        } else {
            wemp_server::log::handed_values_are_taken();
        }
        self.lines.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.lines.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.lines.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.lines.enabled(metadata, ctx)
    }

    /// What the fmt layer does for a span (span events off), put off: the fields' values
    /// are kept as they were given (`Given`) and written out as the fmt layer would only
    /// when a line is written inside the span.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let declared = attrs.metadata().fields().len();
        if declared == 0 {
            span.extensions_mut().replace(FormattedFields::<PlainFields>::new(String::new()));
            return;
        }
        let mut given = Given::default();
        // The values wemp-server handed over as text, for its spans (no formatting); any
        // other span's values are formatted.
        let taken = wemp_server::log::take_handed(|handed| given.take(handed, self.sole));
        if taken.unwrap_or_else(|| given.keep(attrs)) {
            span.extensions_mut().replace(given);
            return;
        }
        // A value kept only as written (an error's sources): written now.
        let mut fields = FormattedFields::<PlainFields>::new(String::new());
        fields.fields.reserve_exact(declared * ROOM_PER_FIELD);
        let sanitize = fields.as_writer().sanitizes_ansi_escapes();
        let mut visitor = PlainVisitor::new(&mut fields.fields, sanitize);
        attrs.record(&mut visitor);
        if visitor.finish().is_ok() {
            span.extensions_mut().replace(fields);
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.lines.max_level_hint()
    }

    /// What the fmt layer does for fields recorded later: added to the span's (kept with
    /// the others when they are; after the `rule` read where it is kept, if it was named
    /// before).
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(given) = extensions.get_mut::<Given>() {
            if given.rule.as_ref().is_none_or(|rule| rule.get().is_none()) {
                let kept = given.len;
                let before = given.text.len();
                if given.keep_each(values) {
                    return;
                }
                given.len = kept;
                given.text.truncate(before);
            }
            write_out(&mut extensions, span.metadata());
        }
        add_late_rule(&mut extensions, span.metadata());
        match extensions.get_mut::<FormattedFields<PlainFields>>() {
            Some(fields) => {
                let _ = PlainFields.add_fields(fields, values);
            }
            None => {
                let mut fields = FormattedFields::<PlainFields>::new(String::new());
                if PlainFields.format_fields(fields.as_writer(), values).is_ok() {
                    extensions.insert(fields);
                }
            }
        }
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.lines.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) -> bool {
        self.lines.event_enabled(event, ctx)
    }

    /// The spans the line is written in get their fields written first.
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let mut extensions = span.extensions_mut();
                write_out(&mut extensions, span.metadata());
                add_late_rule(&mut extensions, span.metadata());
            }
        }
        self.lines.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.lines.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.lines.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.lines.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.lines.on_id_change(old, new, ctx);
    }
}

/// The fmt layer's event format `E` ([`PlainLines::new`]), with the prefix of the
/// wemp-server message scope a line is logged in ([`wemp_server::log::in_message_scope`])
/// written as that of its `wechat` span, which the scope stands for: `wechat{appid=… …
/// rule="…"}:`, after the level and before the spans the line is in (a span made in the
/// scope was the message span's child), as `E` writes a span's. A line in no scope is `E`'s
/// alone, straight. For uncoloured lines with their level (what `wemp` writes).
#[derive(Debug)]
pub struct ScopePrefix<E>(E);

impl<S, E> FormatEvent<S, PlainFields> for ScopePrefix<E>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    E: FormatEvent<S, PlainFields>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, PlainFields>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        wemp_server::log::in_message_scope(|scope| {
            let Some(scope) = scope else { return self.0.format_event(ctx, writer, event) };
            // The line as `E` writes it, then the scope's span written in after the level.
            let mut line = String::new();
            self.0.format_event(ctx, Writer::new(&mut line), event)?;
            let at = after_level(&line, *event.metadata().level()).unwrap_or(0);
            let (head, tail) = line.split_at(at);
            writer.write_str(head)?;
            writer.write_str(scope.name())?;
            let mut fields = String::new();
            let mut visitor = PlainVisitor::new(&mut fields, writer.sanitizes_ansi_escapes());
            for (name, value) in scope.values() {
                visitor.debug_named(name, &format_args!("{value}"));
            }
            if let Some(rule) = scope.rule() {
                visitor.str_named("rule", &rule);
            }
            visitor.finish()?;
            if !fields.is_empty() {
                writer.write_char('{')?;
                writer.write_str(&fields)?;
                writer.write_char('}')?;
            }
            writer.write_char(':')?;
            if ctx.event_scope().is_none() {
                // The space after the spans, which `E` wrote only after its own.
                writer.write_char(' ')?;
            }
            writer.write_str(tail)
        })
    }
}

/// Where the spans of an uncoloured line start: just past its level, as tracing-subscriber
/// writes it (`" INFO "`, `"DEBUG "`: five characters and a space, after the time if any).
fn after_level(line: &str, level: tracing::Level) -> Option<usize> {
    let label = match level {
        tracing::Level::TRACE => "TRACE ",
        tracing::Level::DEBUG => "DEBUG ",
        tracing::Level::INFO => " INFO ",
        tracing::Level::WARN => " WARN ",
        tracing::Level::ERROR => "ERROR ",
    };
    line.find(label).map(|at| at + label.len())
}

/// Writes out a span's fields kept as given ([`Given`]), with the `rule` read where it is
/// kept if it is named; if not, where to read it stays with them ([`add_late_rule`]).
fn write_out(extensions: &mut ExtensionsMut<'_>, metadata: &tracing::Metadata<'_>) {
    if let Some(mut given) = extensions.remove::<Given>()
        && let Some(fields) = given.written(metadata)
    {
        extensions.insert(fields);
        if let Some(rule) = given.rule.take() {
            extensions.insert(rule);
        }
    }
}

/// Adds the `rule` read where it is kept to a span's written fields, once it is named, as a
/// record of it would have.
fn add_late_rule(extensions: &mut ExtensionsMut<'_>, metadata: &tracing::Metadata<'_>) {
    let Some(rule) = extensions.get_mut::<LateRule>() else { return };
    let Some(name) = rule.get() else { return };
    extensions.remove::<LateRule>();
    if let Some(fields) = extensions.get_mut::<FormattedFields<PlainFields>>()
        && let Some(field) = metadata.fields().field("rule")
    {
        let sanitize = fields.as_writer().sanitizes_ansi_escapes();
        if !fields.fields.is_empty() {
            fields.fields.push(' ');
        }
        PlainVisitor::new(&mut fields.fields, sanitize).record_str(&field, &name);
    }
}

/// The most fields a span keeps as given ([`Given`]); a span with more has them written.
const GIVEN_MAX: usize = 8;

/// A span's fields as they were given, for [`PlainLines`] to write out when a line is
/// written inside the span: what `{:?}` writes for each value, or a `&str` as it is.
#[derive(Debug, Default)]
struct Given {
    /// The values, one after the other.
    text: GivenText,
    /// Each value's field (its index in the callsite's), whether it is a `&str`, and where
    /// its text ends.
    ends: [(u8, bool, u16); GIVEN_MAX],
    len: usize,
    /// Where wemp-server keeps the span's `rule`, read when the fields are written
    /// ([`PlainLines::sole_reader`]).
    rule: Option<LateRule>,
}

impl Given {
    /// Keeps `values`: false if one cannot be kept (an error, whose sources are written
    /// too; a field past the eighth or past 64 KiB of text; a value whose `Debug` fails).
    ///
    /// A value given as `%` or `?` reaches a subscriber only as `&dyn Debug`, so keeping it
    /// means formatting it. All of them go through one `Formatter` (one `core::fmt::write`
    /// for the lot, where one a value cost ~60 instructions more each): a span's values
    /// written as they are given, each one's end noted as its text is written.
    fn keep(&mut self, values: impl RecordFields) -> bool {
        let Self { text, ends, len, .. } = self;
        let end = Cell::new(text.len());
        let all = KeepAll { values, slots: RefCell::new(Slots { ends, len, ok: true }), end: &end };
        let written = write!(Counted { text, end: &end }, "{all}").is_ok();
        written && all.slots.into_inner().ok
    }

    /// [`Given::keep`] for values handed over as text: each value is a `%` value's text.
    /// With `rule`, where the span's `rule` is kept is taken too.
    fn take(&mut self, handed: &mut wemp_server::log::HandedValues, rule: bool) -> bool {
        let Self { text, ends, len, .. } = self;
        let start = text.len();
        text.push_str(handed.text());
        let mut slots = Slots { ends, len, ok: true };
        for (index, &end) in handed.ends().iter().enumerate() {
            slots.push(index, false, start + end);
        }
        if slots.ok && rule {
            self.rule = handed.take_rule();
        }
        slots.ok
    }

    /// [`Given::keep`] for values recorded later (`rule`, a `&str` as a rule): each one
    /// written on its own, which for a `&str` needs no `Formatter` at all.
    fn keep_each(&mut self, values: impl RecordFields) -> bool {
        let Self { text, ends, len, .. } = self;
        let mut slots = Slots { ends, len, ok: true };
        values.record(&mut Keep { out: Out::Text(text), slots: &mut slots });
        slots.ok
    }

    /// The fields written as the fmt layer writes them with [`PlainFields`]: the `rule` read
    /// where it is kept last, if it is named (and then no longer to be read).
    fn written(&mut self, metadata: &tracing::Metadata<'_>) -> Option<FormattedFields<PlainFields>> {
        let mut fields = FormattedFields::<PlainFields>::new(String::new());
        let sanitize = fields.as_writer().sanitizes_ansi_escapes();
        let mut visitor = PlainVisitor::new(&mut fields.fields, sanitize);
        let all = self.text.as_str()?;
        let mut start = 0;
        for &(index, is_str, end) in &self.ends[..self.len] {
            let field = metadata.fields().iter().nth(usize::from(index))?;
            let text = all.get(start..usize::from(end))?;
            start = usize::from(end);
            if is_str {
                visitor.record_str(&field, text);
            } else {
                visitor.record_debug(&field, &format_args!("{text}"));
            }
        }
        if let Some(name) = self.rule.as_ref().and_then(LateRule::get)
            && let Some(field) = metadata.fields().field("rule")
        {
            visitor.record_str(&field, &name);
            self.rule = None;
        }
        visitor.finish().ok()?;
        Some(fields)
    }
}

/// Bytes of a span's values kept in its [`Given`] itself: `wemp serve`'s six (five given,
/// `rule` recorded later, unless it is read where it is kept) take 40 to 80. (120: a `Given`
/// of 176 bytes, which mimalloc, the allocator then, served faster than one of 184, by callgrind.)
const GIVEN_INLINE: usize = 120;

/// [`Given`]'s text: in place up to [`GIVEN_INLINE`] bytes (a `String` of its own was an
/// allocation and its release for every span), past that in a buffer of its own. Only
/// whole `str`s are written into it and it is cut back only to a length it had, so it is
/// always UTF-8; read (checked) only when a line is written.
#[derive(Debug)]
enum GivenText {
    Inline([u8; GIVEN_INLINE], usize),
    Spilled(Vec<u8>),
}

impl Default for GivenText {
    fn default() -> Self {
        Self::Inline([0; GIVEN_INLINE], 0)
    }
}

impl GivenText {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Self::Inline(_, len) => *len,
            Self::Spilled(bytes) => bytes.len(),
        }
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        if let Self::Inline(bytes, len) = self
            && let Some(room) = bytes.get_mut(*len..*len + s.len())
        {
            room.copy_from_slice(s.as_bytes());
            *len += s.len();
        } else {
            self.push_spilled(s);
        }
    }

    /// [`GivenText::push_str`] past the room in place.
    #[cold]
    fn push_spilled(&mut self, s: &str) {
        match self {
            Self::Inline(bytes, len) => {
                let mut spilled = Vec::with_capacity((*len + s.len()).max(2 * GIVEN_INLINE));
                spilled.extend_from_slice(&bytes[..*len]);
                spilled.extend_from_slice(s.as_bytes());
                *self = Self::Spilled(spilled);
            }
            Self::Spilled(bytes) => bytes.extend_from_slice(s.as_bytes()),
        }
    }

    /// Cuts the text back to `to` bytes, a length it had.
    fn truncate(&mut self, to: usize) {
        match self {
            Self::Inline(_, len) => *len = to.min(*len),
            Self::Spilled(bytes) => bytes.truncate(to),
        }
    }

    fn as_str(&self) -> Option<&str> {
        let bytes = match self {
            Self::Inline(bytes, len) => bytes.get(..*len)?,
            Self::Spilled(bytes) => bytes,
        };
        std::str::from_utf8(bytes).ok()
    }
}

impl fmt::Write for GivenText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// What [`Keep`] fills in [`Given`] besides its text.
struct Slots<'a> {
    ends: &'a mut [(u8, bool, u16); GIVEN_MAX],
    len: &'a mut usize,
    ok: bool,
}

/// A span's values, written as they are given by one `core::fmt::write` ([`Given::keep`]).
struct KeepAll<'a, R> {
    values: R,
    slots: RefCell<Slots<'a>>,
    /// Where the text written so far ends (kept by [`Counted`]).
    end: &'a Cell<usize>,
}

impl<R: RecordFields> fmt::Display for KeepAll<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut slots = self.slots.try_borrow_mut().map_err(|_| fmt::Error)?;
        let mut keep = Keep { out: Out::Fmt(f, self.end), slots: &mut slots };
        self.values.record(&mut keep);
        if slots.ok { Ok(()) } else { Err(fmt::Error) }
    }
}

/// A [`GivenText`] that notes where its text ends after each write.
struct Counted<'a> {
    text: &'a mut GivenText,
    end: &'a Cell<usize>,
}

impl fmt::Write for Counted<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.text.push_str(s);
        self.end.set(self.text.len());
        Ok(())
    }
}

/// Where [`Keep`] writes a value: the text itself, or the `Formatter` writing all of them.
enum Out<'k, 'f> {
    Text(&'k mut GivenText),
    Fmt(&'k mut fmt::Formatter<'f>, &'k Cell<usize>),
}

/// Keeps a span's values in a [`Given`]: each one's text, and where it ends.
struct Keep<'k, 'f, 'a> {
    out: Out<'k, 'f>,
    slots: &'k mut Slots<'a>,
}

impl Slots<'_> {
    /// Notes that the value of field `index` (a `&str` or not) ends at `end`.
    fn push(&mut self, index: usize, is_str: bool, end: usize) {
        match (u8::try_from(index), u16::try_from(end)) {
            (Ok(index), Ok(end)) if *self.len < GIVEN_MAX => {
                self.ends[*self.len] = (index, is_str, end);
                *self.len += 1;
            }
            _ => self.ok = false,
        }
    }
}

impl Keep<'_, '_, '_> {
    fn kept(&mut self, field: &Field, is_str: bool) {
        let end = match &self.out {
            Out::Text(text) => text.len(),
            Out::Fmt(_, end) => end.get(),
        };
        self.slots.push(field.index(), is_str, end);
    }
}

impl Visit for Keep<'_, '_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.slots.ok {
            self.slots.ok = match &mut self.out {
                Out::Text(text) => {
                    text.push_str(value);
                    true
                }
                Out::Fmt(f, _) => f.write_str(value).is_ok(),
            };
            self.kept(field, true);
        }
    }

    fn record_error(&mut self, _: &Field, _: &(dyn std::error::Error + 'static)) {
        self.slots.ok = false;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.slots.ok {
            self.slots.ok = match &mut self.out {
                Out::Text(text) => write!(text, "{value:?}").is_ok(),
                // `{:?}` with no options: the `Formatter` here has none either.
                Out::Fmt(f, _) => value.fmt(f).is_ok(),
            };
            self.kept(field, false);
        }
    }
}

/// Writes one span's or event's fields to `W`.
#[derive(Debug)]
pub struct PlainVisitor<W> {
    writer: W,
    /// Whether terminal control characters are escaped (the destination writer's setting).
    sanitize: bool,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> PlainVisitor<W> {
    fn new(writer: W, sanitize: bool) -> Self {
        Self { writer, sanitize, first: true, result: Ok(()) }
    }

    /// Starts writing `field` (the separator before it): its name, or `None` when it is
    /// not written (an earlier write failed, or a `log` record's own field, which the
    /// line has written already).
    fn start(&mut self, name: &'static str) -> Option<&'static str> {
        if self.result.is_err() {
            return None;
        }
        if name.starts_with("log.") {
            return None;
        }
        self.pad();
        if self.result.is_err() {
            return None;
        }
        Some(name)
    }

    fn pad(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.result = self.writer.write_char(' ');
        }
    }
}

impl<W: fmt::Write> PlainVisitor<W> {
    /// [`Visit::record_str`] for the field named `name`.
    fn str_named(&mut self, name: &'static str, value: &str) {
        if name == "message" {
            self.debug_named(name, &format_args!("{value}"));
        } else if plain_in_debug(value) {
            // What `Debug` writes for it, without formatting.
            if let Some(name) = self.start(name) {
                let name = name.strip_prefix("r#").unwrap_or(name);
                self.result =
                    [name, "=\"", value, "\""].into_iter().try_for_each(|s| self.writer.write_str(s));
            }
        } else {
            self.debug_named(name, &value);
        }
    }

    /// [`Visit::record_debug`] for the field named `name`.
    fn debug_named(&mut self, name: &'static str, value: &dyn fmt::Debug) {
        let Some(name) = self.start(name) else { return };
        let sanitize = self.sanitize;
        self.result = match name {
            "message" => write!(self.writer, "{:?}", Escaped(value, sanitize)),
            name => {
                // `name=` written as they are: only the value takes a formatting pass.
                let name = name.strip_prefix("r#").unwrap_or(name);
                let writer = &mut self.writer;
                writer
                    .write_str(name)
                    .and_then(|()| writer.write_char('='))
                    .and_then(|()| write!(writer, "{value:?}"))
            }
        };
    }
}

impl<W: fmt::Write> Visit for PlainVisitor<W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.str_named(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let sanitize = self.sanitize;
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!(
                    "{} {}.sources={}",
                    Escaped(format_args!("{value}"), sanitize),
                    field.name(),
                    Sources(source, sanitize)
                ),
            ),
            None => self.record_debug(field, &format_args!("{}", Escaped(format_args!("{value}"), sanitize))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.debug_named(field.name(), value);
    }
}

impl<W: fmt::Write> VisitOutput<fmt::Result> for PlainVisitor<W> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl<W: fmt::Write> VisitFmt for PlainVisitor<W> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Whether `str`'s `Debug` writes `text` as it is between quotes: printable ASCII without
/// `"` or `\\` (what `wemp serve` records into its span: rule names, most of the time).
fn plain_in_debug(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
}

/// A value whose terminal control characters are written escaped (when `.1`).
struct Escaped<T>(T, bool);

impl<T: fmt::Debug> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 { write!(Escaping(f), "{:?}", self.0) } else { write!(f, "{:?}", self.0) }
    }
}

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 { write!(Escaping(f), "{}", self.0) } else { write!(f, "{}", self.0) }
    }
}

/// Escapes the characters a terminal would act on (ESC, BEL, BS, FF, DEL and the C1
/// controls), as tracing-subscriber does.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c if ('\u{80}'..='\u{9f}').contains(&c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// An error's chain of sources, as a list.
struct Sources<'a>(&'a (dyn std::error::Error + 'static), bool);

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&Escaped(format_args!("{error}"), self.1));
            next = error.source();
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use wemp_testkit::log_buffer::LogBuffer;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer \x1b[31mfailure")]
    struct Outer(#[source] io::Error);

    fn lines() {
        let span = tracing::info_span!(
            "wechat",
            appid = %"wx2c2769f8efd9abc2",
            mode = %"safe",
            msg_type = %"event/\x1b[2Jclear",
            openid = "o\u{85}quoted",
            dedup = %"new",
            rule = tracing::field::Empty,
        );
        let _entered = span.enter();
        span.record("rule", "help \u{1b}");
        tracing::info!("plain message \x07 with a bell");
        tracing::warn!(count = 3, ratio = 0.5, yes = true, r#type = "text", "fields and a message");
        let error = Outer(io::Error::other("inner \x1b]0;title\x07"));
        tracing::error!(error = &error as &(dyn std::error::Error + 'static), "failed");
        tracing::error!(error = %error, "failed as Display");
        tracing::info!(text = "multi\nline \"quoted\"", "debug of a str");
        tracing::info!(message = "\u{9b}31m escaped message", other = 1);
        // A field whose formatting logs while the fields are written (into the staging
        // buffer): tracing drops the inner line (no re-entry into the subscriber), and the
        // outer one is whole.
        tracing::info!(inner = ?Logs, "outer line");
        let nested = tracing::info_span!("nested", depth = 2, logs = ?Logs);
        nested.in_scope(|| tracing::info!("in a span of two"));
        drop(_entered);
        // Fields given only later, and none at all.
        let later =
            tracing::info_span!("later", first = tracing::field::Empty, second = tracing::field::Empty);
        later.in_scope(|| tracing::info!("nothing given yet"));
        later.record("second", 2);
        later.record("first", "one");
        later.in_scope(|| tracing::info!("given later"));
        // Fields kept as given and then an error, which is written with its sources; an
        // error given at once; more fields than are kept as given.
        let kept = tracing::info_span!("kept", n = 1, error = tracing::field::Empty);
        kept.record("error", &error as &(dyn std::error::Error + 'static));
        kept.in_scope(|| tracing::info!("an error recorded"));
        let at_once =
            tracing::info_span!("at_once", error = &error as &(dyn std::error::Error + 'static), n = 2);
        at_once.in_scope(|| tracing::info!("an error given"));
        let wide =
            tracing::info_span!("wide", a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8, i = %"nine");
        wide.in_scope(|| tracing::info!("nine fields"));
        let bare = tracing::info_span!("bare");
        bare.in_scope(|| tracing::info_span!("inner", n = 1).in_scope(|| tracing::info!("in a bare span")));
        // Values past the room a span keeps them in: given at once, and recorded later.
        let long = "long value ".repeat(12);
        let spilled = tracing::info_span!("spilled", a = 1, b = %long, c = %"after");
        spilled.in_scope(|| tracing::info!("past the room at once"));
        let grown = tracing::info_span!("grown", a = %"short", rule = tracing::field::Empty);
        grown.record("rule", long.as_str());
        grown.in_scope(|| tracing::info!("past the room later"));
    }

    /// Logs a line when formatted.
    struct Logs;

    impl fmt::Debug for Logs {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            tracing::info!(from = "inside", "logged while formatting a field");
            f.write_str("logs")
        }
    }

    /// How [`lines`] are written by tracing-subscriber's own fmt layer, with
    /// [`PlainFields`], and by [`PlainLines`] (as `wemp` writes them uncoloured).
    #[derive(Clone, Copy)]
    enum Lines {
        Theirs,
        Fields,
        Ours,
    }

    fn output(how: Lines) -> String {
        output_of(how, lines)
    }

    fn output_of(how: Lines, lines: fn()) -> String {
        use tracing_subscriber::layer::SubscriberExt as _;
        let buffer = LogBuffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(buffer.writer())
            .with_ansi(false)
            .with_target(false)
            .without_time();
        let registry = tracing_subscriber::registry().with(tracing::level_filters::LevelFilter::INFO);
        match how {
            Lines::Theirs => tracing::subscriber::with_default(registry.with(layer), lines),
            Lines::Fields => {
                tracing::subscriber::with_default(registry.with(layer.fmt_fields(PlainFields)), lines)
            }
            Lines::Ours => tracing::subscriber::with_default(
                registry.with(PlainLines::new(layer.fmt_fields(PlainFields))),
                lines,
            ),
        }
        buffer.text()
    }

    #[test]
    fn plain_text_is_what_debug_writes_between_quotes() {
        let mut plain = 0;
        for b in 0u8..=255 {
            let c = char::from(b);
            for text in [c.to_string(), format!("rule {c}"), format!("{c}{c} x")] {
                if plain_in_debug(&text) {
                    assert_eq!(format!("\"{text}\""), format!("{text:?}"), "{text:?}");
                    plain += 1;
                }
            }
        }
        assert_eq!(plain, 3 * (0x7f - 0x20 - 2), "printable ASCII but `\"` and `\\`");
        assert!(plain_in_debug("order lookup") && plain_in_debug(""));
        assert!(!plain_in_debug("帮助") && !plain_in_debug("a\tb") && !plain_in_debug("\u{7f}"));
    }

    #[test]
    fn uncoloured_lines_read_as_tracing_subscribers_own() {
        let theirs = output(Lines::Theirs);
        for ours in [output(Lines::Fields), output(Lines::Ours)] {
            assert_eq!(ours.lines().count(), 16, "{ours}");
            assert!(ours.contains("outer line inner=logs"), "{ours}");
            assert!(ours.contains("nested{depth=2 logs=logs}: in a span of two"), "{ours}");
            assert!(ours.contains("rule=\"help \\u{1b}\""), "{ours}");
            assert!(ours.contains("\\x1b[31mfailure"), "the message's escapes: {ours}");
            assert!(ours.contains("INFO later: nothing given yet"), "{ours}");
            assert!(ours.contains("INFO later{second=2 first=\"one\"}: given later"), "{ours}");
            assert!(ours.contains("INFO bare:inner{n=1}: in a bare span"), "{ours}");
            assert!(ours.contains("kept{n=1 error=outer \\x1b[31mfailure error.sources=[inner"), "{ours}");
            assert!(ours.contains("at_once{error=outer \\x1b[31mfailure error.sources=[inner"), "{ours}");
            assert!(ours.contains("wide{a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=nine}: nine fields"), "{ours}");
            let long = "long value ".repeat(12);
            assert!(
                ours.contains(&format!("spilled{{a=1 b={long} c=after}}: past the room at once")),
                "{ours}"
            );
            assert!(
                ours.contains(&format!("grown{{a=short rule=\"{long}\"}}: past the room later")),
                "{ours}"
            );
            assert_eq!(ours, theirs);
        }
    }

    /// A value written in pieces, as `wemp-server`'s shortened OpenID is.
    struct Pieces(&'static str, &'static str);

    impl fmt::Display for Pieces {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)?;
            f.write_str("…")?;
            f.write_str(self.1)
        }
    }

    /// The line `wemp serve` writes inside a message's span, pinned byte for byte, the same
    /// from tracing-subscriber's own fmt layer and from [`PlainLines`]: the values given
    /// with `%` unquoted, `rule` (a `&str` recorded later) quoted.
    #[test]
    fn a_line_in_a_message_span_is_pinned() {
        fn message() {
            let mode = String::from("safe");
            let span = tracing::info_span!(
                "wechat",
                appid = %"wx2c2769f8efd9abc2",
                mode = %mode,
                msg_type = %std::borrow::Cow::<str>::Owned(format!("event/{}", "subscribe")),
                openid = %Pieces("oyOR", "f0rs"),
                dedup = %"new",
                rule = tracing::field::Empty,
            );
            span.in_scope(|| tracing::warn!(error = %"refused", "forwarding failed"));
            span.record("rule", "catch-all");
            span.in_scope(|| tracing::info!(status = 200, "answered"));
        }
        let fields = "appid=wx2c2769f8efd9abc2 mode=safe msg_type=event/subscribe openid=oyOR…f0rs dedup=new";
        let want = format!(
            " WARN wechat{{{fields}}}: forwarding failed error=refused\n\
             \x20INFO wechat{{{fields} rule=\"catch-all\"}}: answered status=200\n"
        );
        for how in [Lines::Theirs, Lines::Fields, Lines::Ours] {
            assert_eq!(output_of(how, message), want);
        }
    }

    /// A message scope's prefix goes just past the level ([`ScopePrefix`]), with or without
    /// the time before it.
    #[test]
    fn a_scopes_prefix_goes_past_the_level() {
        let timed = "2026-12-07T06:39:01.123456Z  WARN the caller hung up";
        assert_eq!(
            &timed[..after_level(timed, tracing::Level::WARN).unwrap()],
            "2026-12-07T06:39:01.123456Z  WARN "
        );
        assert_eq!(after_level("DEBUG answered", tracing::Level::DEBUG), Some(6));
        assert_eq!(after_level(" INFO x", tracing::Level::INFO), Some(6));
        assert_eq!(after_level("ERROR x", tracing::Level::WARN), None);
    }

    /// [`PlainLines`] writes a span's fields out only for the first line inside it.
    #[test]
    fn a_spans_fields_are_written_for_its_first_line() {
        use tracing_subscriber::layer::SubscriberExt as _;

        /// Notes, at each turn, whether the span's fields are written (it runs after
        /// `PlainLines`).
        #[derive(Clone, Default)]
        struct Written(Arc<Mutex<Vec<Option<String>>>>);

        impl Written {
            fn note<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>(
                &self,
                span: Option<tracing_subscriber::registry::SpanRef<'_, S>>,
            ) {
                let span = span.unwrap();
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<PlainFields>>();
                self.0.lock().unwrap().push(fields.map(|f| f.fields.clone()));
            }
        }

        impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S> for Written {
            fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
                self.note(ctx.span(id));
            }
            fn on_record(&self, id: &Id, _: &Record<'_>, ctx: Context<'_, S>) {
                self.note(ctx.span(id));
            }
            fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
                self.note(ctx.event_span(event));
            }
        }

        let written = Written::default();
        let buffer = LogBuffer::default();
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(buffer.writer())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .fmt_fields(PlainFields);
        let subscriber = tracing_subscriber::registry().with(PlainLines::new(lines)).with(written.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "wechat",
                appid = %"wx2c2769f8efd9abc2",
                mode = %"safe",
                dedup = %"new",
                rule = tracing::field::Empty,
            );
            span.record("rule", "echo");
            span.in_scope(|| tracing::info!("first"));
            span.in_scope(|| tracing::info!("second"));
        });
        let fields = "appid=wx2c2769f8efd9abc2 mode=safe dedup=new rule=\"echo\"";
        let written = written.0.lock().unwrap();
        assert_eq!(written[..], [None, None, Some(fields.to_owned()), Some(fields.to_owned())]);
        let out = buffer.text();
        assert_eq!(out, format!(" INFO wechat{{{fields}}}: first\n INFO wechat{{{fields}}}: second\n"));
    }

    fn filtered(spec: Option<&str>) -> String {
        use tracing_subscriber::layer::SubscriberExt as _;
        let buffer = LogBuffer::default();
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(buffer.writer())
            .with_ansi(false)
            .without_time()
            .fmt_fields(PlainFields);
        let subscriber = tracing_subscriber::registry().with(filter(spec)).with(PlainLines::new(lines));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "wemp_server", "server info");
            tracing::debug!(target: "wemp_server", "server debug");
            tracing::debug!(target: "other", "other debug");
            let span =
                tracing::info_span!(target: "other", "wechat", appid = "wx1", rule = tracing::field::Empty);
            span.in_scope(|| tracing::debug!(target: "other", "debug in a span"));
            let span =
                tracing::info_span!(target: "other", "wechat", appid = "wx1", rule = tracing::field::Empty);
            span.record("rule", "help");
            span.in_scope(|| tracing::debug!(target: "other", "debug with a rule"));
        });
        buffer.text()
    }

    /// Only a filter with span directives reads a span's values: only without one does
    /// `wemp` let its line layer read a message span's `rule` where wemp-server keeps it
    /// ([`PlainLines::sole_reader`]), so that `[wechat{rule=…}]` keeps working.
    #[test]
    fn only_a_filter_with_span_directives_reads_spans() {
        for spec in [None, Some(" "), Some("info"), Some("wemp_server=debug,info"), Some("wemp_server=loud")]
        {
            assert!(!filter_reads_spans(spec), "{spec:?}");
        }
        for spec in ["[wechat]=debug,info", "[wechat{rule=help}]=debug,info", "wemp_server[wechat]=debug"] {
            assert!(filter_reads_spans(Some(spec)), "{spec}");
        }
    }

    #[test]
    fn wemp_log_picks_lines_by_target_level_and_span() {
        let default = filtered(None);
        assert!(default.contains("server info") && !default.contains("debug"), "{default}");
        assert_eq!(filtered(Some("wemp_server=loud")), default, "an unreadable value means info");
        let server = filtered(Some("wemp_server=debug,info"));
        assert!(server.contains("server debug") && !server.contains("other debug"), "{server}");
        // A span directive: the one filter that keeps per-span state.
        let span = filtered(Some("[wechat]=debug,info"));
        assert!(span.contains("debug in a span") && !span.contains("other debug"), "{span}");
        // By a field's value, given when the span was made or recorded later.
        let field = filtered(Some("[wechat{appid=wx1}]=debug,info"));
        assert!(field.contains("wechat{appid=\"wx1\"}: other: debug in a span"), "{field}");
        assert!(!filtered(Some("[wechat{appid=wx2}]=debug,info")).contains("debug in a span"));
        let rule = filtered(Some("[wechat{rule=help}]=debug,info"));
        assert!(rule.contains("wechat{appid=\"wx1\" rule=\"help\"}: other: debug with a rule"), "{rule}");
        assert!(!rule.contains("debug in a span"), "{rule}");
        let all = filtered(Some("debug"));
        assert_eq!(all.lines().count(), 5, "{all}");
    }
}
