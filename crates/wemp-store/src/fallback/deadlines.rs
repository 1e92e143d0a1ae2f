//! The deadlines of a [`FallbackDedupStore`](super::FallbackDedupStore)'s claims on its
//! primary, kept by one thread for the store instead of a runtime timer a claim.
//!
//! Every claim waits at most the store's one timeout, so deadlines arrive in order: a queue
//! of slots, each with its deadline and the waker of the claim waiting on it, pushed at the
//! back and emptied from the front. A claim's handle is its slot's number. The thread
//! sleeps until the first deadline still waited on, then marks each slot whose deadline
//! passed and wakes its claim; it parks when no claim waits and is woken by the next one.
//! The thread, not a task, so the deadlines hold whichever runtime (or runtimes) the claims
//! run on, and whether or not that runtime is busy or driven.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// A deadline beyond any claim's life, for a timeout the clock cannot add (about 30 years).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The deadlines of one store's claims (see the module's docs). Dropping it ends the thread.
pub(super) struct Deadlines {
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The thread waits on it: a claim in a parked thread's empty queue, or the store dropped.
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    slots: VecDeque<Slot>,
    /// The number of `slots[0]`.
    first: u64,
    keeper: Keeper,
}

#[derive(Default, PartialEq, Eq)]
enum Keeper {
    /// Not started.
    #[default]
    None,
    /// It could not be started: claims keep their own timers.
    Unstartable,
    /// Running: sleeping until a deadline.
    Waiting,
    /// Running, no claim to watch: a new claim must wake it.
    Parked,
    /// The store is gone: the thread ends.
    Closed,
}

struct Slot {
    deadline: Instant,
    /// The claim's waker, while it waits; taken when the deadline passes or the claim ends.
    waker: Option<Waker>,
    /// The deadline passed while the claim waited.
    expired: bool,
    /// The claim ended (answered, expired and seen, or dropped): the slot can go.
    ended: bool,
}

impl Deadlines {
    /// Deadlines `timeout` after each claim's start; the thread starts with the first claim.
    pub(super) fn new(timeout: Duration) -> Self {
        Self { shared: Arc::new(Shared { queue: Mutex::default(), changed: Condvar::new() }), timeout }
    }

    /// A claim's deadline, not started yet: [`Deadline::passed`] starts it at its first call.
    pub(super) fn deadline(&self) -> Deadline<'_> {
        Deadline { deadlines: self, slot: None }
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        lock(&self.shared).keeper = Keeper::Closed;
        self.shared.changed.notify_one();
    }
}

/// One claim's deadline. Dropping it ends the claim's slot.
pub(super) struct Deadline<'a> {
    deadlines: &'a Deadlines,
    /// The slot's number once started.
    slot: Option<u64>,
}

/// What [`Deadline::passed`] found.
pub(super) enum Passed {
    /// The deadline is ahead; the claim is woken when it passes.
    No,
    /// The deadline passed.
    Yes,
    /// No thread keeps deadlines (it could not be started): the caller times the claim itself.
    Unkept,
}

impl Deadline<'_> {
    /// Whether the deadline passed; for a claim not answered yet, polled with `waker`. The
    /// first call starts the deadline (the timeout from now) with `waker` as the claim's;
    /// later calls keep the waker current.
    pub(super) fn passed(&mut self, waker: &Waker) -> Passed {
        let shared = &self.deadlines.shared;
        let mut q = lock(shared);
        if let Some(n) = self.slot {
            let at = (n - q.first) as usize;
            let slot = &mut q.slots[at];
            if slot.expired {
                return Passed::Yes;
            }
            match &mut slot.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
            return Passed::No;
        }
        if q.keeper == Keeper::Unstartable {
            return Passed::Unkept;
        }
        if q.keeper == Keeper::None && !start(shared) {
            q.keeper = Keeper::Unstartable;
            return Passed::Unkept;
        }
        // Taken under the lock, so deadlines are pushed in order. A timeout past what the
        // clock can count is a deadline that never comes (as tokio's timer takes it).
        let now = Instant::now();
        let deadline = now.checked_add(self.deadlines.timeout).unwrap_or(now + NEVER);
        q.slots.push_back(Slot { deadline, waker: Some(waker.clone()), expired: false, ended: false });
        self.slot = Some(q.first + q.slots.len() as u64 - 1);
        if q.keeper == Keeper::None || q.keeper == Keeper::Parked {
            q.keeper = Keeper::Waiting;
            drop(q);
            shared.changed.notify_one();
        }
        Passed::No
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        let Some(n) = self.slot else { return };
        let mut q = lock(&self.deadlines.shared);
        let at = (n - q.first) as usize;
        let slot = &mut q.slots[at];
        slot.ended = true;
        slot.waker = None;
        if at == 0 {
            pop_ended(&mut q);
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    // The queue is consistent after any panic: every change to it is a single step.
    shared.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops the ended slots at the front.
fn pop_ended(q: &mut Queue) {
    while q.slots.front().is_some_and(|s| s.ended) {
        q.slots.pop_front();
        q.first += 1;
    }
}

/// Starts the thread; `false` (with a warning) if it cannot be.
fn start(shared: &Arc<Shared>) -> bool {
    let kept = shared.clone();
    match std::thread::Builder::new().name("wemp-deadlines".into()).spawn(move || keep(&kept)) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the dedup store's deadline thread; each claim keeps its own timer");
            false
        }
    }
}

/// The thread: wakes each claim whose deadline passed (outside the lock), sleeps until the
/// next one.
fn keep(shared: &Shared) {
    let mut due = Vec::new();
    let mut q = lock(shared);
    loop {
        if q.keeper == Keeper::Closed {
            return;
        }
        pop_ended(&mut q);
        let now = Instant::now();
        let mut next = None;
        for slot in q.slots.iter_mut().filter(|s| !s.ended && !s.expired) {
            if slot.deadline > now {
                next = Some(slot.deadline);
                break;
            }
            slot.expired = true;
            due.extend(slot.waker.take());
        }
        if !due.is_empty() {
            drop(q);
            due.drain(..).for_each(Waker::wake);
            q = lock(shared);
            continue;
        }
        q = match next {
            Some(deadline) => {
                q.keeper = Keeper::Waiting;
                shared.changed.wait_timeout(q, deadline - now).unwrap_or_else(|e| e.into_inner()).0
            }
            None => {
                q.keeper = Keeper::Parked;
                shared
                    .changed
                    .wait_while(q, |q| q.keeper == Keeper::Parked)
                    .unwrap_or_else(|e| e.into_inner())
            }
        };
    }
}
