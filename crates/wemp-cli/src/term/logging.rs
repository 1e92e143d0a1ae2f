//! How `wemp` writes its log lines: which ones (the `WEMP_LOG` filter) and how their
//! fields read when they are not coloured.
//!
//! Uncoloured, the output is the same as tracing-subscriber's default (`name=value`, the
//! message unnamed and its control characters escaped), without the styling pass that the
//! default makes around every field name even when colours are off. `wemp serve` makes one
//! span per message with five fields, so that pass was paid on every request (about 2 % of
//! its instructions by callgrind).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::field::{RecordFields, VisitFmt, VisitOutput};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};
use tracing_subscriber::layer::Context;

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
    let spec = spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info");
    // `Targets` would read `[span]` as a target's name.
    if !spec.contains(['[', ']', '{', '}'])
        && let Ok(targets) = spec.parse::<Targets>()
    {
        return Box::new(targets);
    }
    match EnvFilter::try_new(spec) {
        Ok(env) => Box::new(env),
        Err(_) => Box::new(Targets::new().with_default(tracing::Level::INFO)),
    }
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
/// the defaults), whose spans' fields this layer writes itself.
///
/// The lines are the fmt layer's, byte for byte: a span's fields are written as it would
/// write them, into the same place (the span's `FormattedFields<PlainFields>`), and
/// everything else is its own. What differs is the span's `String`: made with room for the
/// fields declared and not yet given (`wemp serve`'s `rule`, recorded once a rule takes the
/// message), where the fmt layer's fits the first ones exactly and grows again for `rule`;
/// and written without staging and copying.
#[derive(Debug)]
pub struct PlainLines<L>(L);

impl<S, E, W> PlainLines<tracing_subscriber::fmt::Layer<S, PlainFields, E, W>> {
    /// Wraps `lines` (see the type's docs for what it must be).
    pub fn new(lines: tracing_subscriber::fmt::Layer<S, PlainFields, E, W>) -> Self {
        Self(lines)
    }
}

/// Bytes of a span's `String` per field its callsite declares: `wemp serve`'s six
/// (five given, `rule` recorded later) take 70 to 110.
const ROOM_PER_FIELD: usize = 24;

impl<S, L> Layer<S> for PlainLines<L>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.0.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }

    /// What the fmt layer does for a span (span events off): its fields formatted into
    /// the span's extensions.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let declared = attrs.metadata().fields().len();
        let mut fields = FormattedFields::<PlainFields>::new(String::new());
        if declared > 0 {
            fields.fields.reserve_exact(declared * ROOM_PER_FIELD);
            let sanitize = fields.as_writer().sanitizes_ansi_escapes();
            let mut visitor = PlainVisitor::new(&mut fields.fields, sanitize);
            attrs.record(&mut visitor);
            if visitor.finish().is_err() {
                return;
            }
        }
        span.extensions_mut().replace(fields);
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }

    /// What the fmt layer does for fields recorded later: added to the span's.
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
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
        self.0.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) -> bool {
        self.0.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
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
    fn start(&mut self, field: &Field) -> Option<&'static str> {
        if self.result.is_err() {
            return None;
        }
        let name = field.name();
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

impl<W: fmt::Write> Visit for PlainVisitor<W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else if plain_in_debug(value) {
            // What `Debug` writes for it, without formatting.
            if let Some(name) = self.start(field) {
                let name = name.strip_prefix("r#").unwrap_or(name);
                self.result =
                    [name, "=\"", value, "\""].into_iter().try_for_each(|s| self.writer.write_str(s));
            }
        } else {
            self.record_debug(field, &value);
        }
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
        let Some(name) = self.start(field) else { return };
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

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

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
        let bare = tracing::info_span!("bare");
        bare.in_scope(|| tracing::info_span!("inner", n = 1).in_scope(|| tracing::info!("in a bare span")));
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
        use tracing_subscriber::layer::SubscriberExt as _;
        let buffer = Buffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(buffer.clone())
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
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
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
            assert_eq!(ours.lines().count(), 11, "{ours}");
            assert!(ours.contains("outer line inner=logs"), "{ours}");
            assert!(ours.contains("nested{depth=2 logs=logs}: in a span of two"), "{ours}");
            assert!(ours.contains("rule=\"help \\u{1b}\""), "{ours}");
            assert!(ours.contains("\\x1b[31mfailure"), "the message's escapes: {ours}");
            assert!(ours.contains("INFO later: nothing given yet"), "{ours}");
            assert!(ours.contains("INFO later{second=2 first=\"one\"}: given later"), "{ours}");
            assert!(ours.contains("INFO bare:inner{n=1}: in a bare span"), "{ours}");
            assert_eq!(ours, theirs);
        }
    }

    /// [`PlainLines`] makes a span's fields with room for those recorded later: `wemp
    /// serve`'s `rule` goes in without the `String` growing again.
    #[test]
    fn a_field_recorded_later_goes_into_the_room_left_for_it() {
        use tracing_subscriber::layer::SubscriberExt as _;

        /// Notes where the span's fields are after each change (it runs after `PlainLines`).
        #[derive(Clone, Default)]
        struct Where(Arc<Mutex<Vec<(usize, usize, usize)>>>);

        impl Where {
            fn note<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>(
                &self,
                id: &Id,
                ctx: &Context<'_, S>,
            ) {
                let span = ctx.span(id).unwrap();
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<PlainFields>>().unwrap();
                let text = &fields.fields;
                self.0.lock().unwrap().push((text.as_ptr() as usize, text.len(), text.capacity()));
            }
        }

        impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S> for Where {
            fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
                self.note(id, &ctx);
            }
            fn on_record(&self, id: &Id, _: &Record<'_>, ctx: Context<'_, S>) {
                self.note(id, &ctx);
            }
        }

        fn seen(ours: bool) -> Vec<(usize, usize, usize)> {
            let seen = Where::default();
            let lines = tracing_subscriber::fmt::layer().with_writer(Buffer::default).fmt_fields(PlainFields);
            let registry = tracing_subscriber::registry();
            let run = || {
                let span = tracing::info_span!(
                    "wechat",
                    appid = %"wx2c2769f8efd9abc2",
                    mode = %"compatible",
                    msg_type = %"event/subscribe",
                    openid = %"o_we…user",
                    dedup = %"new",
                    rule = tracing::field::Empty,
                );
                span.record("rule", "a rule");
            };
            if ours {
                tracing::subscriber::with_default(
                    registry.with(PlainLines::new(lines)).with(seen.clone()),
                    run,
                );
            } else {
                tracing::subscriber::with_default(registry.with(lines).with(seen.clone()), run);
            }
            let seen = seen.0.lock().unwrap();
            seen.clone()
        }

        let ours = seen(true);
        let [(made, before, room), (recorded, after, _)] = ours[..] else { panic!("{ours:?}") };
        assert_eq!(after, before + r#" rule="a rule""#.len(), "{ours:?}");
        assert!(room >= after && made == recorded, "the fields' `String` grew: {ours:?}");
        // The fmt layer alone makes it at the size of the first fields, to grow again.
        let theirs = seen(false);
        let sizes: Vec<_> = theirs.iter().map(|&(_, len, capacity)| (len, capacity)).collect();
        assert_eq!(sizes[0], (before, before), "{theirs:?}");
        assert_eq!(sizes[1].0, after, "{theirs:?}");
    }

    fn filtered(spec: Option<&str>) -> String {
        use tracing_subscriber::layer::SubscriberExt as _;
        let buffer = Buffer::default();
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(buffer.clone())
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
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
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
