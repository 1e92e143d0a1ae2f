//! What a handler sees: the message, its account, the mode, the deadline.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use wemp_proto::{Event, Incoming, Mode};
use wemp_store::{DeliveryRecord, ForwardRecord};

use crate::Account;
use crate::session::{Session, SessionSlot};

const PENDING: u8 = 0;
const DONE: u8 = 1;
const DEFERRED: u8 = 2;

/// The per-delivery state shared by the request and the handler task.
#[derive(Debug)]
pub(crate) struct Shared {
    deadline: Instant,
    state: AtomicU8,
    pub(crate) deferred: Notify,
    /// The rule that took the message (set by the router).
    rule: Mutex<Option<Arc<str>>>,
    /// The handler's error, set before the reply is handed over.
    error: Mutex<Option<String>>,
    /// The call to a gateway app the handler made ([`Ctx::record_forward`]).
    forward: Mutex<Option<Box<ForwardRecord>>>,
    /// The sender's session, when the service has a session store.
    session: Option<SessionSlot>,
    /// Retries on this instance waiting for this delivery's reply (see [`Joined`]).
    joiners: AtomicUsize,
    /// Notified when a joiner stops waiting.
    joiner_left: Notify,
    /// Whether the handler itself deferred the reply ([`Ctx::defer`]), as opposed to the
    /// deadline.
    handler_deferred: std::sync::atomic::AtomicBool,
    /// The request span's `rule` field, once named: named once only, as a field recorded
    /// twice is printed twice. (A `Mutex`: a `OnceLock`'s first set cost twice as much.)
    span_rule: Mutex<Option<Arc<str>>>,
    /// Whether the span's subscriber reads `span_rule` where it is, when it writes a line
    /// (`log::HandedValues::take_rule`), so that it is not recorded into the span.
    rule_read_late: std::sync::atomic::AtomicBool,
    /// The message's `wechat` span, once made: where the `rule` field goes (without it, the
    /// current span, as for a context made in a test).
    span: std::sync::OnceLock<tracing::Span>,
    /// The message's scope in place of its span, under a subscriber that writes scopes
    /// (`log::message_scopes_are_written`).
    scope: std::sync::OnceLock<crate::log::Scope>,
    /// Whether the handler runs in a task of its own (it did not finish at its first poll).
    in_task: std::sync::atomic::AtomicBool,
    /// The delivery's record when its caller hung up while the handler ran in its task: kept
    /// until the handler finishes or the deadline comes, whichever is first, so that it goes
    /// out with what the handler did (the gateway app's call); see [`Shared::keep_hung_up`].
    hung_up: Mutex<Option<Box<DeliveryRecord>>>,
    /// The handler's reply on its way to the request ([`ReplyTo`], [`Shared::reply`]): kept
    /// here, where a channel of its own was an allocation and a dozen atomic operations for
    /// each delivery.
    reply: Mutex<Replied>,
    /// Notified when `reply` is settled.
    replied: Notify,
}

/// Where the handler's reply stands, for the request that answers with it.
#[derive(Debug, Default)]
enum Replied {
    /// Still to come.
    #[default]
    Waiting,
    /// The reply and when it was made (its `CreateTime`).
    Sent(String, i64),
    /// None is coming: the handler's task gave it to the late sink, or ended without one.
    Gone,
}

/// The handler's side of a delivery's reply ([`Shared::reply`]): [`ReplyTo::send`] hands it
/// over; dropped without sending (the reply went to the late sink, or the handler's task was
/// dropped), it tells the request that none is coming.
pub(crate) struct ReplyTo<'a>(Option<&'a Shared>);

impl<'a> ReplyTo<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Self(Some(shared))
    }

    /// Hands the reply (made at `replied_at`) to the request.
    pub(crate) fn send(mut self, xml: String, replied_at: i64) {
        if let Some(shared) = self.0.take() {
            shared.settle_reply(Replied::Sent(xml, replied_at));
        }
    }
}

impl Drop for ReplyTo<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.settle_reply(Replied::Gone);
        }
    }
}

pin_project_lite::pin_project! {
    /// A delivery's future inside its `wechat` span, as `future.instrument(span)` would run
    /// it — the span entered at each poll and while the future is dropped — with the span
    /// read from the delivery's [`Shared`] rather than held by a clone of its own (a clone
    /// and a release per message), and the finished future dropped within its last poll,
    /// where `Instrumented` enters the span once more to drop it (callgrind: ~600
    /// instructions a message together). The message's scope, when it has one in place of
    /// its span (`log::message_scopes_are_written`), is set on the thread just as long.
    pub(crate) struct InSpan<F> {
        shared: Arc<Shared>,
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for InSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_some() {
                // Dropped before it finished (the caller hung up): in the span, as it ran.
                let _entered = this.shared.span().map(tracing::Span::enter);
                let _scope = crate::log::enter_scope(this.shared);
                this.future.set(None);
            }
        }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let _entered = this.shared.span().map(tracing::Span::enter);
        let _scope = crate::log::enter_scope(this.shared);
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            panic!("`InSpan` polled after it finished");
        };
        let output = std::task::ready!(future.poll(cx));
        this.future.set(None);
        Poll::Ready(output)
    }
}

/// A retry on this instance waiting for a running handler's reply; counted while it lives.
pub(crate) struct Joined(Arc<Shared>);

impl Drop for Joined {
    fn drop(&mut self) {
        self.0.joiners.fetch_sub(1, Ordering::AcqRel);
        self.0.joiner_left.notify_waiters();
    }
}

/// Who got to decide how the reply travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decided {
    /// The handler finished first: the reply goes back on the HTTP response.
    Passive,
    /// The deadline (or `defer`) came first: `success` was answered, the reply goes to the
    /// late sink.
    Late,
}

/// Waits until `count` is zero; `changed` is notified (`notify_waiters`) whenever it drops.
pub(crate) async fn until_zero(count: &AtomicUsize, changed: &Notify) {
    loop {
        let changed = changed.notified();
        tokio::pin!(changed);
        // Registered before the count is read, so a drop to zero in between is not missed.
        changed.as_mut().enable();
        if count.load(Ordering::Acquire) == 0 {
            return;
        }
        changed.await;
    }
}

impl Shared {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self::with_session(deadline, None)
    }

    /// A delivery's state with the sender's session (when the service has a session store).
    pub(crate) fn with_session(deadline: Instant, session: Option<SessionSlot>) -> Self {
        Self {
            deadline,
            state: AtomicU8::new(PENDING),
            deferred: Notify::new(),
            rule: Mutex::new(None),
            error: Mutex::new(None),
            forward: Mutex::new(None),
            session,
            joiners: AtomicUsize::new(0),
            joiner_left: Notify::new(),
            handler_deferred: std::sync::atomic::AtomicBool::new(false),
            span_rule: Mutex::new(None),
            rule_read_late: std::sync::atomic::AtomicBool::new(false),
            span: std::sync::OnceLock::new(),
            scope: std::sync::OnceLock::new(),
            in_task: std::sync::atomic::AtomicBool::new(false),
            hung_up: Mutex::new(None),
            reply: Mutex::new(Replied::Waiting),
            replied: Notify::new(),
        }
    }

    fn settle_reply(&self, replied: Replied) {
        *self.reply.lock().unwrap_or_else(|e| e.into_inner()) = replied;
        self.replied.notify_one();
    }

    /// The handler's reply if it is settled: `Some(Some(reply))`, or `Some(None)` when none is
    /// coming ([`ReplyTo`]); `None` while it is still to come. A reply is taken once.
    pub(crate) fn take_reply(&self) -> Option<Option<(String, i64)>> {
        let mut reply = self.reply.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *reply, Replied::Gone) {
            Replied::Waiting => {
                *reply = Replied::Waiting;
                None
            }
            Replied::Sent(xml, replied_at) => Some(Some((xml, replied_at))),
            Replied::Gone => Some(None),
        }
    }

    /// Waits for the handler's reply ([`Shared::take_reply`]): `None` when none is coming.
    pub(crate) async fn reply(&self) -> Option<(String, i64)> {
        loop {
            let settled = self.replied.notified();
            tokio::pin!(settled);
            // Registered before the reply is looked at, so one settled in between is not missed.
            settled.as_mut().enable();
            if let Some(reply) = self.take_reply() {
                return reply;
            }
            settled.await;
        }
    }

    /// Writes into `record` what the handler did so far: the rule that took the message, its
    /// error, its call to a gateway app.
    pub(crate) fn record_handler(&self, record: &mut DeliveryRecord) {
        record.handler = self.rule();
        record.error = self.error();
        record.forward = self.forward();
    }

    /// Notes that the handler runs in a task of its own, which outlives the request.
    pub(crate) fn set_in_task(&self) {
        self.in_task.store(true, Ordering::Release);
    }

    /// Keeps the record of a delivery whose caller hung up, while its handler still runs in
    /// its task and nothing was decided (see [`Shared::take_hung_up`]); gives it back, to go
    /// out now, otherwise. Checked under the record's lock, which the handler takes after it
    /// decided ([`Shared::finish`]): a record kept here is always taken.
    pub(crate) fn keep_hung_up(&self, record: DeliveryRecord) -> Option<DeliveryRecord> {
        if !self.in_task.load(Ordering::Acquire) {
            return Some(record);
        }
        let mut kept = self.hung_up.lock().unwrap_or_else(|e| e.into_inner());
        if !self.is_pending() {
            return Some(record);
        }
        *kept = Some(Box::new(record));
        None
    }

    /// The record [`Shared::keep_hung_up`] kept, once (by the handler's task when it
    /// finishes, or at the deadline).
    pub(crate) fn take_hung_up(&self) -> Option<Box<DeliveryRecord>> {
        self.hung_up.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Keeps the message's span (the first one given).
    pub(crate) fn set_span(&self, span: tracing::Span) {
        let _ = self.span.set(span);
    }

    /// The message's span, once made.
    pub(crate) fn span(&self) -> Option<&tracing::Span> {
        self.span.get()
    }

    /// Keeps the message's scope, in place of its span (the first one given).
    pub(crate) fn set_scope(&self, scope: crate::log::Scope) {
        let _ = self.scope.set(scope);
    }

    /// The message's scope, if it has one in place of its span.
    pub(crate) fn scope(&self) -> Option<&crate::log::Scope> {
        self.scope.get()
    }

    /// Runs `f` inside the message's span or scope, as [`InSpan`] polls the delivery.
    pub(crate) fn in_scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        let _entered = self.span().map(tracing::Span::enter);
        let _scope = crate::log::enter_scope(self);
        f()
    }

    /// Runs a delivery's `future` inside the span kept here (see [`InSpan`]).
    pub(crate) fn in_span<F: Future>(self: &Arc<Self>, future: F) -> InSpan<F> {
        InSpan { shared: self.clone(), future: Some(future) }
    }

    /// Records `name` as the request span's `rule` field, unless a name is there already.
    /// Recorded as a `&str`, or only kept here when the span's subscriber reads it here
    /// ([`Shared::rule_is_read_late`]).
    pub(crate) fn name_in_span(&self, name: &Arc<str>) {
        {
            let mut rule = self.span_rule.lock().unwrap_or_else(|e| e.into_inner());
            if rule.is_some() {
                return;
            }
            *rule = Some(name.clone());
        }
        if self.rule_read_late.load(Ordering::Acquire) {
            return;
        }
        // The span kept here, rather than `Span::current()`: the same span, without a
        // look-up, a clone and its close for every message (~600 instructions).
        match self.span() {
            Some(span) => span.record("rule", &**name),
            None => tracing::Span::current().record("rule", &**name),
        };
    }

    /// The name [`Shared::name_in_span`] gave the span, once given.
    pub(crate) fn span_rule(&self) -> Option<Arc<str>> {
        self.span_rule.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes that the span's subscriber reads its `rule` here when it writes a line inside
    /// it (`log::LateRule`), rather than as it is recorded: from now on it is not recorded.
    pub(crate) fn rule_is_read_late(&self) {
        self.rule_read_late.store(true, Ordering::Release);
    }

    /// Whether the handler deferred the reply itself.
    pub(crate) fn handler_deferred(&self) -> bool {
        self.handler_deferred.load(Ordering::Acquire)
    }

    pub(crate) fn set_rule(&self, name: Arc<str>) {
        *self.rule.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
    }

    pub(crate) fn rule(&self) -> Option<Arc<str>> {
        self.rule.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_error(&self, error: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    pub(crate) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn forward(&self) -> Option<Box<ForwardRecord>> {
        self.forward.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Marks the reply as going late; returns what was decided (possibly earlier).
    pub(crate) fn defer(&self) -> Decided {
        match self.state.compare_exchange(PENDING, DEFERRED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(DEFERRED) => Decided::Late,
            Err(_) => Decided::Passive,
        }
    }

    /// Moves an undecided delivery to the late sink; `true` only for the call that did.
    pub(crate) fn try_defer(&self) -> bool {
        self.state.compare_exchange(PENDING, DEFERRED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether neither the handler nor the deadline has decided yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// Registers a retry waiting on this instance for the reply.
    pub(crate) fn join(self: &Arc<Self>) -> Joined {
        self.joiners.fetch_add(1, Ordering::AcqRel);
        Joined(self.clone())
    }

    /// Waits until no retry on this instance waits for the reply.
    pub(crate) async fn no_joiners(&self) {
        until_zero(&self.joiners, &self.joiner_left).await;
    }

    /// Marks the reply as finished in time; returns what was decided (possibly earlier).
    pub(crate) fn finish(&self) -> Decided {
        match self.state.compare_exchange(PENDING, DONE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(DONE) => Decided::Passive,
            Err(_) => Decided::Late,
        }
    }
}

/// The deadline context of one delivery: how much of the budget is left, and a way to
/// answer `success` now and send the reply later through the [`crate::LateReplySink`].
#[derive(Clone, Debug)]
pub struct Ctx {
    shared: Arc<Shared>,
}

impl Ctx {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// A context with its own deadline, for calling handlers directly in tests.
    pub fn detached(budget: Duration) -> Self {
        Self { shared: Arc::new(Shared::new(Instant::now() + budget)) }
    }

    /// Time left before the server answers `success` on the handler's behalf.
    pub fn remaining(&self) -> Duration {
        self.shared.deadline.saturating_duration_since(Instant::now())
    }

    /// The instant the budget runs out.
    pub fn deadline(&self) -> Instant {
        self.shared.deadline
    }

    /// Answers `success` to WeChat now; the handler's eventual reply goes to the late sink
    /// (the customer-service API). Returns `false` when it is too late because the reply
    /// was already sent passively.
    pub fn defer(&self) -> bool {
        let decided = self.shared.defer();
        if decided == Decided::Late {
            self.shared.handler_deferred.store(true, Ordering::Release);
        }
        self.shared.deferred.notify_one();
        decided == Decided::Late
    }

    /// Whether the reply will go to the late sink (deadline passed or [`Ctx::defer`]).
    pub fn is_deferred(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == DEFERRED
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Names what answers this delivery — the request span's `rule` field and the observer
    /// record's `handler` — for a handler that routes further by itself, such as a rule
    /// engine behind one [`crate::Router`] fallback. The last name set wins.
    pub fn set_rule_name(&self, name: impl Into<Arc<str>>) {
        let name = name.into();
        self.shared.name_in_span(&name);
        self.shared.set_rule(name);
    }

    /// Keeps the call a handler made to a gateway app for this message (what the gateway's
    /// `Forward` handler, with the `client` feature, sends and what the app answered) on the delivery's record
    /// ([`wemp_store::DeliveryRecord::forward`]), for the message log and the console. The
    /// last call recorded wins.
    pub fn record_forward(&self, call: ForwardRecord) {
        *self.shared.forward.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(call));
    }

    /// The name of what answers this delivery so far: the rule the router chose (see
    /// [`crate::Rule::named`]), `fallback`, `none`, or what [`Ctx::set_rule_name`] set.
    pub fn rule_name(&self) -> Option<Arc<str>> {
        self.shared.rule()
    }

    /// The sender's conversation session, typed as `T` (see [`Session`]). Its operations
    /// fail with [`crate::SessionError::NotConfigured`] when the service has no session
    /// store.
    pub fn session<T>(&self) -> Session<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        Session::new(self.shared.session.clone())
    }
}

/// Regex captures of the rule that matched (text or event key). Cheap to clone.
#[derive(Clone, Default)]
pub struct Captures(Groups);

/// A word matcher's one group is shared with the rule (or the message text, copied once),
/// where a list of one copied string was two allocations a message, and a regex's groups are
/// shared between the clones of the [`Inbound`] they go with.
#[derive(Clone, Default)]
enum Groups {
    /// No group at all.
    #[default]
    Empty,
    /// A regex's groups.
    Regex(Arc<RegexGroups>),
    /// Only group 0: the text a word matcher matched.
    Whole(Arc<str>),
}

/// A regex's groups (`None` for one that took no part), then its named ones.
struct RegexGroups {
    groups: Vec<Option<String>>,
    named: Vec<(String, String)>,
}

impl Captures {
    pub(crate) fn from_regex(re: &regex::Regex, caps: &regex::Captures<'_>) -> Self {
        let groups = caps.iter().map(|m| m.map(|m| m.as_str().to_owned())).collect();
        let named = re
            .capture_names()
            .flatten()
            .filter_map(|name| caps.name(name).map(|m| (name.to_owned(), m.as_str().to_owned())))
            .collect();
        Self(Groups::Regex(Arc::new(RegexGroups { groups, named })))
    }

    /// Only group 0: the text a word matcher matched.
    pub(crate) fn whole(text: Arc<str>) -> Self {
        Self(Groups::Whole(text))
    }

    /// Group `i` (0 is the whole match).
    pub fn get(&self, i: usize) -> Option<&str> {
        match &self.0 {
            Groups::Empty => None,
            Groups::Regex(r) => r.groups.get(i).and_then(|g| g.as_deref()),
            Groups::Whole(w) => (i == 0).then_some(&**w),
        }
    }

    /// A named group.
    pub fn name(&self, name: &str) -> Option<&str> {
        match &self.0 {
            Groups::Regex(r) => r.named.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
            Groups::Empty | Groups::Whole(_) => None,
        }
    }

    /// Number of groups, the whole match included.
    pub fn len(&self) -> usize {
        match &self.0 {
            Groups::Empty => 0,
            Groups::Regex(r) => r.groups.len(),
            Groups::Whole(_) => 1,
        }
    }

    /// Whether there are no groups at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn named(&self) -> &[(String, String)] {
        match &self.0 {
            Groups::Regex(r) => &r.named,
            Groups::Empty | Groups::Whole(_) => &[],
        }
    }
}

impl PartialEq for Captures {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|i| self.get(i) == other.get(i))
            && self.named() == other.named()
    }
}

impl Eq for Captures {}

impl fmt::Debug for Captures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<Option<&str>> = (0..self.len()).map(|i| self.get(i)).collect();
        f.debug_struct("Captures").field("groups", &groups).field("named", &self.named()).finish()
    }
}

#[derive(Debug)]
struct InboundInner {
    message: Incoming,
    account: Arc<Account>,
    mode: Mode,
    ctx: Ctx,
}

/// One delivery as handlers and middleware see it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Inbound {
    inner: Arc<InboundInner>,
    captures: Option<Captures>,
}

impl Inbound {
    /// Wraps a message, e.g. to call a router or handler directly in tests.
    pub fn new(message: Incoming, account: Arc<Account>, mode: Mode, ctx: Ctx) -> Self {
        Self { inner: Arc::new(InboundInner { message, account, mode, ctx }), captures: None }
    }

    /// The decrypted, typed message.
    pub fn message(&self) -> &Incoming {
        &self.inner.message
    }

    /// The account it was sent to.
    pub fn account(&self) -> &Arc<Account> {
        &self.inner.account
    }

    /// The mode it arrived in (and the reply will be sent in).
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The deadline context.
    pub fn ctx(&self) -> &Ctx {
        &self.inner.ctx
    }

    /// The user's OpenID (`FromUserName`).
    pub fn openid(&self) -> &str {
        &self.inner.message.header().from
    }

    /// A text message's content.
    pub fn text(&self) -> Option<&str> {
        match &self.inner.message {
            Incoming::Text(t) => Some(&t.content),
            _ => None,
        }
    }

    /// The event, for events.
    pub fn event(&self) -> Option<&Event> {
        self.inner.message.event()
    }

    /// Captures of the regex rule that matched, if it was one.
    pub fn captures(&self) -> Option<&Captures> {
        self.captures.as_ref()
    }

    pub(crate) fn with_captures(&self, captures: Option<Captures>) -> Self {
        Self { inner: self.inner.clone(), captures }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;
    use wemp_testkit::log_buffer::LogBuffer;

    use super::*;

    /// Logs when dropped.
    struct Logs(&'static str);

    impl Drop for Logs {
        fn drop(&mut self) {
            tracing::info!("{} dropped", self.0);
        }
    }

    fn delivery(n: u32) -> Arc<Shared> {
        delivery_in(tracing::info_span!("wechat", n, rule = tracing::field::Empty))
    }

    /// A delivery whose span is `span`.
    fn delivery_in(span: tracing::Span) -> Arc<Shared> {
        let shared = Arc::new(Shared::new(Instant::now()));
        shared.set_span(span);
        shared
    }

    /// The handler's reply reaches the request as a channel would bring it: once sent, taken
    /// once; dropped unsent (given to the late sink, or its task dropped), as none; waited
    /// for until one of the two.
    #[tokio::test]
    async fn a_reply_is_handed_over_once_or_known_not_to_come() {
        let shared = delivery(1);
        assert_eq!(shared.take_reply(), None, "nothing settled yet");
        ReplyTo::new(&shared).send("<xml/>".into(), 7);
        assert_eq!(shared.take_reply(), Some(Some(("<xml/>".into(), 7))));
        assert_eq!(shared.take_reply(), Some(None), "taken once");

        let shared = delivery(2);
        drop(ReplyTo::new(&shared));
        assert_eq!(shared.take_reply(), Some(None), "dropped unsent: none is coming");
        assert_eq!(shared.reply().await, None);

        // Waited for: settled by a task of its own while the request waits, sent or not.
        for send in [true, false] {
            let shared = delivery(3);
            let waiting = tokio::spawn({
                let shared = shared.clone();
                async move { shared.reply().await }
            });
            tokio::task::yield_now().await;
            let handler = tokio::spawn({
                let shared = shared.clone();
                async move {
                    let reply_to = ReplyTo::new(&shared);
                    tokio::task::yield_now().await;
                    if send {
                        reply_to.send("late".into(), 9);
                    }
                }
            });
            handler.await.unwrap();
            assert_eq!(waiting.await.unwrap(), send.then(|| ("late".to_owned(), 9)));
        }
    }

    /// [`InSpan`] runs a delivery as `Instrumented` would: every line it logs, up to the
    /// drop of its last local and of a future dropped before it finished, is in its span.
    #[test]
    fn a_delivery_runs_and_is_dropped_inside_its_span() {
        let buffer = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.writer())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // The spans from a callsite of this test's own: tracing caches a callsite's
            // interest for the whole process, and another test's first `delivery` on another
            // thread (no subscriber there) can store "never" for the shared callsite in the
            // middle of this test, which then loses its second span (seen once in ~10 runs).
            let delivery =
                |n: u32| delivery_in(tracing::info_span!("wechat", n, rule = tracing::field::Empty));
            let shared = delivery(1);
            let done = shared.in_span(async {
                let _local = Logs("a finished delivery's local");
                tracing::info!("ran");
                shared.name_in_span(&Arc::from("echo"));
                tracing::info!("answered");
                7
            });
            assert_eq!(done.now_or_never(), Some(7));
            let shared = delivery(2);
            let waiting = shared.in_span(async {
                let _local = Logs("a waiting delivery's local");
                std::future::pending::<()>().await;
            });
            assert_eq!(waiting.now_or_never(), None);
            tracing::info!("outside");
        });
        let out = buffer.text();
        let want = [
            " INFO wechat{n=1}: ran",
            " INFO wechat{n=1 rule=\"echo\"}: answered",
            " INFO wechat{n=1 rule=\"echo\"}: a finished delivery's local dropped",
            " INFO wechat{n=2}: a waiting delivery's local dropped",
            " INFO outside",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
    }
}
