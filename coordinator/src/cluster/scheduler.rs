//! Admission of invocations to the cluster's instance slots: a bounded, prioritised,
//! fair waiting room in front of [`dispatch`](super::dispatch).
//!
//! Every invocation asks the [`Scheduler`] for an [`Admission`] before it is placed on a node
//! and drops it once its response body has been sent. While fewer invocations are in flight
//! than the schedulable nodes have slots, admission is immediate. Otherwise the caller waits:
//!
//! - **Between priority classes, strictly**: a waiting [`Priority::Critical`] invocation is
//!   always admitted before any [`Priority::High`] one, and so on down to [`Priority::Low`].
//! - **Within a class, fairly across projects**: self-clocked fair queuing. Each waiter gets the
//!   tag `max(class virtual time, project's last tag) + 1 / weight`, the smallest tag is admitted
//!   next (FIFO within a project), and the class's virtual time becomes the admitted tag. A
//!   project that floods a class therefore takes turns with the others instead of starving them.
//! - **Room for the urgent**: each class may fill only its share of the slots (every slot for
//!   critical, 95 % high, 90 % normal, 75 % low), so a flood of low-priority work never leaves
//!   critical work waiting for a slot.
//! - **Bounded**: each class queue holds at most [`SchedulerConfig::queue_capacity`] waiters and
//!   nobody waits longer than [`SchedulerConfig::max_wait`]; beyond either the caller gets
//!   [`Rejected`], which the API turns into `429 Too Many Requests` with `Retry-After`.
//!   Per-project state exists only while the project has waiters, so memory is bounded by the
//!   queue capacities.
//!
//! This module deliberately knows nothing of nodes, HTTP or where priorities come from: the
//! dispatcher reports the slot count ([`Scheduler::set_capacity`]) and resolves each request's
//! priority.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nexus_proto::node::v1 as proto;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a rejected caller is told to wait before retrying.
///
/// The scheduler cannot know when a slot will free up (that depends on how long the running
/// invocations take), so this is a back-off hint, not a prediction. `Retry-After` counts whole
/// seconds, which makes one second the shortest non-zero hint; it is long enough to spread a
/// burst of retries and short against `max_wait`, so a client that obeys it loses little.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The weight every project has until per-project weights are configurable.
const DEFAULT_WEIGHT: f64 = 1.0;

/// Virtual time in fixed point: a waiter of a project with weight 1.0 advances its tag by this
/// much. Integers keep tags totally ordered; at 2^20 per admission a class stays backlogged for
/// 2^44 admissions (decades at 10k/s) before tags saturate, and tags restart from zero whenever
/// the class drains.
const TAG_UNIT: u64 = 1 << 20;

/// The number of priority classes.
const CLASSES: usize = 4;

/// An invocation's priority class, settable per function and per request.
///
/// Ordered from most to least urgent: `Critical < High < Normal < Low`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Admitted before everything else.
    Critical,
    /// Admitted before `Normal` and `Low`.
    High,
    /// The priority of a request that asks for none.
    #[default]
    Normal,
    /// Admitted only when nothing more urgent waits.
    Low,
}

impl Priority {
    /// All classes, most urgent first.
    pub const ALL: [Self; CLASSES] = [Self::Critical, Self::High, Self::Normal, Self::Low];

    /// The lowercase name, as accepted by [`FromStr`] and written by serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }

    /// The priority carried in a wire message's `priority` field. Unspecified and unknown
    /// values (from a newer peer) are `Normal`.
    pub fn from_wire(value: i32) -> Self {
        proto::Priority::try_from(value)
            .map(Self::from)
            .unwrap_or_default()
    }

    /// The position of this class in per-class arrays, most urgent first.
    fn index(self) -> usize {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A priority name that is not one of `critical`, `high`, `normal` or `low`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown priority {0:?}: expected critical, high, normal or low")]
pub struct ParsePriorityError(pub String);

impl FromStr for Priority {
    type Err = ParsePriorityError;

    /// Parses a priority name, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| ParsePriorityError(name.to_owned()))
    }
}

impl From<proto::Priority> for Priority {
    /// `Unspecified` is `Normal`.
    fn from(wire: proto::Priority) -> Self {
        match wire {
            proto::Priority::Critical => Self::Critical,
            proto::Priority::High => Self::High,
            proto::Priority::Unspecified | proto::Priority::Normal => Self::Normal,
            proto::Priority::Low => Self::Low,
        }
    }
}

impl From<Priority> for proto::Priority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Critical => Self::Critical,
            Priority::High => Self::High,
            Priority::Normal => Self::Normal,
            Priority::Low => Self::Low,
        }
    }
}

/// The share of the slots each class may fill (critical, high, normal, low), in percent. A
/// flood of low-priority work leaves a quarter of the slots to the rest; critical work can
/// take every slot.
const CLASS_SHARE_PERCENT: [usize; CLASSES] = [100, 95, 90, 75];

/// Bounds on waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The most waiters each class holds, indexed critical, high, normal, low. A caller that
    /// finds its class full is rejected at once.
    pub queue_capacity: [usize; CLASSES],
    /// The longest a caller waits for a slot before it is rejected.
    pub max_wait: Duration,
}

impl Default for SchedulerConfig {
    /// 1024 critical, 1024 high, 4096 normal and 4096 low waiters; 30 seconds of waiting.
    fn default() -> Self {
        Self {
            queue_capacity: [1024, 1024, 4096, 4096],
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Why an invocation was not admitted. Both cases mean `429 Too Many Requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Rejected {
    /// The caller's priority class already has as many waiters as it may hold.
    #[error("too many invocations are waiting; retry after {retry_after:?}")]
    QueueFull {
        /// How long the caller should wait before retrying.
        retry_after: Duration,
    },
    /// No slot became free within [`SchedulerConfig::max_wait`].
    #[error("no instance slot became free in time; retry after {retry_after:?}")]
    TimedOut {
        /// How long the caller should wait before retrying.
        retry_after: Duration,
    },
}

impl Rejected {
    /// How long the caller should wait before retrying, for the `Retry-After` header.
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::QueueFull { retry_after } | Self::TimedOut { retry_after } => *retry_after,
        }
    }
}

/// Admits invocations to the cluster's instance slots. Cloning is cheap and shares the state.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        formatter
            .debug_struct("Scheduler")
            .field("capacity", &state.capacity)
            .field("in_flight", &state.in_flight)
            .field("waiting", &state.waiting())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Scheduler {
    /// A scheduler with no slots: every caller waits until [`Scheduler::set_capacity`].
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Sets the total instance slots of the schedulable nodes. Cheap when nothing changes.
    ///
    /// When capacity grows, waiters are admitted at once. When it shrinks, running invocations
    /// keep their slots, but nobody is admitted until fewer than `slots` are in flight.
    pub fn set_capacity(&self, slots: usize) {
        let mut state = self.shared.lock();
        let grew = slots > state.capacity;
        state.capacity = slots;
        if grew {
            state.admit_waiters();
        }
    }

    /// Waits for a slot for an invocation of `project` at `priority`. The slot is held until
    /// the returned [`Admission`] is dropped.
    ///
    /// Returns at once when a slot is free and nobody waits. Fails at once with
    /// [`Rejected::QueueFull`] when the class's queue is full, and with [`Rejected::TimedOut`]
    /// after [`SchedulerConfig::max_wait`]. Dropping the future gives up the place in the queue
    /// (or the slot, if it had just been granted).
    pub async fn admit(&self, project: Uuid, priority: Priority) -> Result<Admission, Rejected> {
        match self.enqueue(project, priority, DEFAULT_WEIGHT)? {
            Entry::Admitted(admission) => Ok(admission),
            Entry::Waiting(waiting) => {
                // Only a waiter starts a timer, which keeps the fast path free of clock reads.
                let expired = tokio::time::sleep(self.shared.config.max_wait);
                waiting.until(expired).await
            }
        }
    }

    /// Invocations admitted and not yet finished, including any granted a slot that have not
    /// yet observed it.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }

    /// Callers waiting in `priority`'s queue.
    pub fn queued(&self, priority: Priority) -> usize {
        self.shared.lock().classes[priority.index()].len
    }

    /// The slot count last set by [`Scheduler::set_capacity`].
    pub fn capacity(&self) -> usize {
        self.shared.lock().capacity
    }

    /// Admits at once if a slot is free and nobody waits; otherwise joins `priority`'s queue.
    fn enqueue(&self, project: Uuid, priority: Priority, weight: f64) -> Result<Entry, Rejected> {
        let class = priority.index();
        let mut state = self.shared.lock();
        // `admit_waiters` runs after every change to capacity or in-flight count, so waiters
        // exist only while every slot is taken; the `waiting` check keeps newcomers from
        // overtaking them all the same.
        if state.in_flight < state.limit(class) && state.waiting_at_or_above(class) == 0 {
            state.in_flight += 1;
            drop(state);
            return Ok(Entry::Admitted(Admission {
                shared: Arc::clone(&self.shared),
            }));
        }
        if state.classes[class].len >= self.shared.config.queue_capacity[class] {
            return Err(Rejected::QueueFull {
                retry_after: RETRY_AFTER,
            });
        }
        let id = state.next_waiter;
        state.next_waiter = state.next_waiter.wrapping_add(1);
        let (grant, granted) = oneshot::channel();
        state.classes[class].push(project, weight, id, grant);
        drop(state);
        Ok(Entry::Waiting(Waiting {
            shared: Arc::clone(&self.shared),
            class,
            project,
            id,
            granted,
            settled: false,
        }))
    }
}

/// A held instance slot. Dropping it frees the slot and admits the next waiter.
#[must_use = "the slot is freed as soon as the admission is dropped"]
pub struct Admission {
    shared: Arc<Shared>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Admission").finish_non_exhaustive()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.release();
    }
}

struct Shared {
    config: SchedulerConfig,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held, and the counters stay usable even if it did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frees one slot and hands it to the next waiter, if any.
    fn release(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.admit_waiters();
    }
}

#[derive(Default)]
struct State {
    /// Instance slots of the schedulable nodes.
    capacity: usize,
    /// Slots held by admissions, and granted to waiters that have not yet taken them.
    in_flight: usize,
    /// Tells waiters apart within a project queue and breaks ties between equal tags.
    next_waiter: u64,
    /// Indexed by [`Priority::index`].
    classes: [ClassQueue; CLASSES],
}

impl State {
    fn waiting(&self) -> usize {
        self.classes.iter().map(|class| class.len).sum()
    }

    /// Waiters in `class` and the classes more urgent than it.
    fn waiting_at_or_above(&self, class: usize) -> usize {
        self.classes[..=class].iter().map(|queue| queue.len).sum()
    }

    /// The slots `class` may fill: all of them for critical work, fewer for each class below,
    /// so that a flood of less urgent work always leaves room for more urgent work.
    fn limit(&self, class: usize) -> usize {
        (self.capacity * CLASS_SHARE_PERCENT[class]).div_ceil(100)
    }

    /// Grants free slots to waiters: the most urgent class first, the smallest tag within it.
    /// A waiter that has gone away is skipped and its slot goes to the next.
    fn admit_waiters(&mut self) {
        loop {
            // Limits fall with urgency, so when the most urgent waiting class has no room,
            // no class after it has any.
            let Some(class) = (0..CLASSES).find(|class| self.classes[*class].len > 0) else {
                return;
            };
            if self.in_flight >= self.limit(class) {
                return;
            }
            let Some(waiter) = self.classes[class].pop() else {
                return;
            };
            // The slot is counted before the waiter sees it, so a waiter that goes away after
            // the grant must give it back (see `Waiting::withdraw`).
            if waiter.grant.send(()).is_ok() {
                self.in_flight += 1;
            }
        }
    }
}

/// One priority class: a fair queue across projects.
#[derive(Default)]
struct ClassQueue {
    /// The tag of the waiter admitted last; zero while the class is empty.
    virtual_time: u64,
    /// The waiters of each project that has any, in arrival order.
    projects: HashMap<Uuid, ProjectQueue>,
    /// The `(tag, id)` of each project's first waiter, so the next one to admit is the first
    /// entry. Equal tags go to the earlier arrival.
    heads: BTreeMap<(u64, u64), Uuid>,
    /// Waiters in all projects.
    len: usize,
}

struct ProjectQueue {
    /// The project's share of its class; a project with twice the weight is admitted twice as
    /// often while both wait.
    weight: f64,
    /// The tag of the project's latest waiter.
    last_tag: u64,
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    id: u64,
    tag: u64,
    grant: oneshot::Sender<()>,
}

impl ClassQueue {
    fn push(&mut self, project: Uuid, weight: f64, id: u64, grant: oneshot::Sender<()>) {
        let queue = self
            .projects
            .entry(project)
            .or_insert_with(|| ProjectQueue {
                weight,
                last_tag: 0,
                waiters: VecDeque::new(),
            });
        let tag = self
            .virtual_time
            .max(queue.last_tag)
            .saturating_add(tag_step(queue.weight));
        queue.last_tag = tag;
        if queue.waiters.is_empty() {
            self.heads.insert((tag, id), project);
        }
        queue.waiters.push_back(Waiter { id, tag, grant });
        self.len += 1;
    }

    /// Takes the waiter with the smallest tag and advances virtual time to it.
    fn pop(&mut self) -> Option<Waiter> {
        let (_, project) = self.heads.pop_first()?;
        let queue = self.projects.get_mut(&project)?;
        let waiter = queue.waiters.pop_front()?;
        self.virtual_time = waiter.tag;
        self.after_head_removed(project);
        Some(waiter)
    }

    /// Takes out waiter `id` of `project`, if it is still queued.
    ///
    /// Later waiters of the project keep their tags: re-tagging would cost a pass over the
    /// project's queue, and the gap only delays that project by one turn.
    fn remove(&mut self, project: Uuid, id: u64) -> Option<Waiter> {
        let queue = self.projects.get_mut(&project)?;
        let position = queue.waiters.iter().position(|waiter| waiter.id == id)?;
        let waiter = queue.waiters.remove(position)?;
        if position == 0 {
            self.heads.remove(&(waiter.tag, waiter.id));
            self.after_head_removed(project);
        } else {
            self.len -= 1;
        }
        Some(waiter)
    }

    /// Indexes `project`'s next waiter, or forgets the project once it has none, so that
    /// per-project state lives only as long as the project waits.
    fn after_head_removed(&mut self, project: Uuid) {
        self.len -= 1;
        if let Some(queue) = self.projects.get(&project) {
            match queue.waiters.front() {
                Some(next) => {
                    self.heads.insert((next.tag, next.id), project);
                }
                None => {
                    self.projects.remove(&project);
                }
            }
        }
        if self.len == 0 {
            // No project holds a tag any more, so virtual time can start over.
            self.virtual_time = 0;
        }
    }
}

/// How far one waiter advances its project's tag: `1 / weight` in [`TAG_UNIT`]s.
fn tag_step(weight: f64) -> u64 {
    let weight = if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        DEFAULT_WEIGHT
    };
    // Saturating float-to-int conversion; at least 1 so that tags always advance.
    ((TAG_UNIT as f64 / weight).round() as u64).max(1)
}

enum Entry {
    Admitted(Admission),
    Waiting(Waiting),
}

/// A caller's place in a class queue. Dropping it leaves the queue, or gives back the slot if
/// one was granted and not yet taken.
struct Waiting {
    shared: Arc<Shared>,
    class: usize,
    project: Uuid,
    id: u64,
    granted: oneshot::Receiver<()>,
    /// Set once the grant was taken or the place given up, so that `Drop` has nothing to do.
    settled: bool,
}

impl Waiting {
    /// Waits for a slot until `expired` completes.
    async fn until(mut self, expired: impl Future<Output = ()>) -> Result<Admission, Rejected> {
        let timed_out = Rejected::TimedOut {
            retry_after: RETRY_AFTER,
        };
        let granted = tokio::select! {
            // A grant that arrives together with the deadline is taken, not wasted.
            biased;
            granted = &mut self.granted => granted.is_ok(),
            () = expired => return if self.withdraw() { Ok(self.admission()) } else { Err(timed_out) },
        };
        self.settled = true;
        if granted {
            Ok(self.admission())
        } else {
            // The sender was dropped without a grant. A sender leaves the queue only by being
            // granted or through `withdraw`, so this does not happen; if it did, the caller
            // may simply retry.
            Err(timed_out)
        }
    }

    fn admission(&self) -> Admission {
        Admission {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Gives up the place in the queue. Returns whether a slot had already been granted, in
    /// which case the caller now owns it.
    fn withdraw(&mut self) -> bool {
        self.settled = true;
        // Once closed, any later grant fails and `admit_waiters` moves on to the next waiter;
        // a grant made before is still received below.
        self.granted.close();
        if self.granted.try_recv().is_ok() {
            return true;
        }
        self.shared.lock().classes[self.class].remove(self.project, self.id);
        false
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.settled && self.withdraw() {
            self.shared.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use anyhow::{Context as _, Result, bail, ensure};
    use futures::FutureExt as _;

    use super::*;

    type AdmitFuture<'a> = Pin<Box<dyn Future<Output = Result<Admission, Rejected>> + Send + 'a>>;

    /// A caller whose `admit` future is polled by hand.
    struct Caller<'a, L> {
        label: L,
        admit: AdmitFuture<'a>,
    }

    fn scheduler(capacity: usize) -> Scheduler {
        let scheduler = Scheduler::new(SchedulerConfig::default());
        scheduler.set_capacity(capacity);
        scheduler
    }

    /// Polls `admit` once. `unconstrained` keeps tokio's cooperative budget, which a test that
    /// polls hundreds of futures in one task would exhaust, from making ready futures pending.
    fn poll_once(admit: &mut AdmitFuture<'_>) -> Option<Result<Admission, Rejected>> {
        tokio::task::unconstrained(admit).now_or_never()
    }

    /// Starts a caller: polls its `admit` once so that it joins its queue, and checks that it
    /// had to wait.
    fn start<L>(
        scheduler: &Scheduler,
        label: L,
        project: Uuid,
        priority: Priority,
    ) -> Result<Caller<'_, L>> {
        let mut admit: AdmitFuture<'_> = Box::pin(scheduler.admit(project, priority));
        ensure!(
            poll_once(&mut admit).is_none(),
            "caller was not made to wait"
        );
        Ok(Caller { label, admit })
    }

    /// Polls every waiting caller once and returns those admitted, in `callers` order.
    fn take_admitted<'a, L>(callers: &mut Vec<Caller<'a, L>>) -> Result<Vec<(L, Admission)>> {
        let mut admitted = Vec::new();
        let mut still_waiting = Vec::new();
        for mut caller in callers.drain(..) {
            match poll_once(&mut caller.admit) {
                Some(outcome) => {
                    admitted.push((caller.label, outcome.context("caller was rejected")?))
                }
                None => still_waiting.push(caller),
            }
        }
        *callers = still_waiting;
        Ok(admitted)
    }

    /// Admits waiters one slot at a time and returns their labels in admission order.
    fn admission_order<L>(
        scheduler: &Scheduler,
        mut callers: Vec<Caller<'_, L>>,
        holder: Admission,
    ) -> Result<Vec<L>> {
        let mut order = Vec::new();
        let mut holding = holder;
        while !callers.is_empty() {
            drop(holding);
            let mut admitted = take_admitted(&mut callers)?;
            ensure!(
                admitted.len() == 1,
                "{} callers admitted to one free slot",
                admitted.len()
            );
            let (label, admission) = admitted.pop().context("nobody admitted")?;
            ensure!(
                scheduler.in_flight() == 1,
                "in flight: {}",
                scheduler.in_flight()
            );
            order.push(label);
            holding = admission;
        }
        Ok(order)
    }

    fn admit_now(scheduler: &Scheduler, project: Uuid, priority: Priority) -> Result<Admission> {
        scheduler
            .admit(project, priority)
            .now_or_never()
            .context("admission was not immediate")?
            .context("admission was rejected")
    }

    #[tokio::test]
    async fn a_flood_of_low_priority_work_leaves_room_for_urgent_work() -> Result<()> {
        let scheduler = scheduler(8);
        let (flooder, other) = (Uuid::new_v4(), Uuid::new_v4());
        let lows = (0..6)
            .map(|_| admit_now(&scheduler, flooder, Priority::Low))
            .collect::<Result<Vec<_>>>()?;
        let mut seventh_low = start(&scheduler, "low", flooder, Priority::Low)?;
        let normal = admit_now(&scheduler, other, Priority::Normal)?;
        let critical = admit_now(&scheduler, other, Priority::Critical)?;
        assert_eq!(scheduler.in_flight(), 8);
        drop(critical);
        assert!(
            poll_once(&mut seventh_low.admit).is_none(),
            "low work filled more than its share"
        );
        drop(normal);
        drop(lows);
        let admitted =
            poll_once(&mut seventh_low.admit).context("the low caller still waits")??;
        assert_eq!(scheduler.in_flight(), 1);
        drop(admitted);
        Ok(())
    }

    #[tokio::test]
    async fn admits_at_once_while_slots_are_free() -> Result<()> {
        let scheduler = scheduler(2);
        let project = Uuid::new_v4();

        let first = admit_now(&scheduler, project, Priority::Normal)?;
        let second = admit_now(&scheduler, project, Priority::Low)?;
        assert_eq!(scheduler.in_flight(), 2);

        let mut third = start(&scheduler, "third", project, Priority::Critical)?;
        assert_eq!(scheduler.queued(Priority::Critical), 1);
        drop(first);
        let admitted = poll_once(&mut third.admit).context("third still waits")??;
        assert_eq!(scheduler.in_flight(), 2);
        assert_eq!(scheduler.queued(Priority::Critical), 0);

        drop((second, admitted));
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn zero_capacity_waits_until_capacity_is_set() -> Result<()> {
        let scheduler = scheduler(0);
        let mut caller = start(&scheduler, (), Uuid::new_v4(), Priority::Normal)?;
        assert_eq!(scheduler.queued(Priority::Normal), 1);
        assert!(poll_once(&mut caller.admit).is_none());

        scheduler.set_capacity(1);
        // Granted at once, before the caller even looks.
        assert_eq!(scheduler.in_flight(), 1);
        assert_eq!(scheduler.queued(Priority::Normal), 0);
        let admission = poll_once(&mut caller.admit).context("caller still waits")??;

        drop(admission);
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn growing_capacity_admits_as_many_waiters_as_it_adds() -> Result<()> {
        let scheduler = scheduler(0);
        let project = Uuid::new_v4();
        let mut callers = (0..5)
            .map(|index| start(&scheduler, index, project, Priority::Normal))
            .collect::<Result<Vec<_>>>()?;

        scheduler.set_capacity(3);
        let admitted = take_admitted(&mut callers)?;
        let labels: Vec<_> = admitted.iter().map(|(label, _)| *label).collect();
        assert_eq!(labels, [0, 1, 2]);
        assert_eq!(scheduler.in_flight(), 3);
        assert_eq!(scheduler.queued(Priority::Normal), 2);

        // Setting the same capacity again changes nothing.
        scheduler.set_capacity(3);
        assert!(take_admitted(&mut callers)?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn strict_priority_admits_the_most_urgent_class_first() -> Result<()> {
        let scheduler = scheduler(1);
        let project = Uuid::new_v4();
        let holder = admit_now(&scheduler, project, Priority::Normal)?;

        let callers = vec![
            start(&scheduler, Priority::Low, project, Priority::Low)?,
            start(&scheduler, Priority::Normal, project, Priority::Normal)?,
            start(&scheduler, Priority::Critical, project, Priority::Critical)?,
        ];
        let order = admission_order(&scheduler, callers, holder)?;

        assert_eq!(order, [Priority::Critical, Priority::Normal, Priority::Low]);
        Ok(())
    }

    #[tokio::test]
    async fn strict_priority_holds_across_projects_and_arrivals() -> Result<()> {
        let scheduler = scheduler(1);
        let (quiet, busy) = (Uuid::new_v4(), Uuid::new_v4());
        let holder = admit_now(&scheduler, quiet, Priority::Normal)?;

        let mut callers = Vec::new();
        for index in 0..3 {
            callers.push(start(&scheduler, ("low", index), busy, Priority::Low)?);
            callers.push(start(&scheduler, ("high", index), busy, Priority::High)?);
        }
        callers.push(start(
            &scheduler,
            ("critical", 0),
            quiet,
            Priority::Critical,
        )?);
        callers.push(start(&scheduler, ("high", 3), quiet, Priority::High)?);
        let order = admission_order(&scheduler, callers, holder)?;

        let classes: Vec<_> = order.iter().map(|(class, _)| *class).collect();
        assert_eq!(
            classes,
            [
                "critical", "high", "high", "high", "high", "low", "low", "low"
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn fair_queuing_keeps_a_flooding_project_from_starving_another() -> Result<()> {
        let scheduler = scheduler(1);
        let (flooder, modest) = (Uuid::new_v4(), Uuid::new_v4());
        let holder = admit_now(&scheduler, flooder, Priority::Normal)?;

        let mut callers = Vec::new();
        for index in 0..100 {
            callers.push(start(&scheduler, ('A', index), flooder, Priority::Normal)?);
        }
        for index in 0..10 {
            callers.push(start(&scheduler, ('B', index), modest, Priority::Normal)?);
        }
        let order = admission_order(&scheduler, callers, holder)?;

        // B's i-th admission (from 0) is among the first 2i + 2.
        let positions_of_b: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, (project, _))| *project == 'B')
            .map(|(position, _)| position)
            .collect();
        assert_eq!(positions_of_b.len(), 10);
        for (index, position) in positions_of_b.iter().enumerate() {
            assert!(
                *position < 2 * index + 2,
                "B's admission {index} came at {position}"
            );
        }
        // Precisely: turns alternate, A first (equal tags go to the earlier arrival), and each
        // project stays FIFO.
        let expected: Vec<(char, usize)> = (0..10)
            .flat_map(|index| [('A', index), ('B', index)])
            .chain((10..100).map(|index| ('A', index)))
            .collect();
        assert_eq!(order, expected);
        Ok(())
    }

    #[tokio::test]
    async fn a_project_arriving_mid_backlog_joins_at_the_current_virtual_time() -> Result<()> {
        let scheduler = scheduler(1);
        let (early, late) = (Uuid::new_v4(), Uuid::new_v4());
        let mut holder = admit_now(&scheduler, early, Priority::High)?;

        let mut callers = (0..10)
            .map(|index| start(&scheduler, ('A', index), early, Priority::High))
            .collect::<Result<Vec<_>>>()?;
        // Five of A's run before B shows up.
        for expected in 0..5 {
            drop(holder);
            let mut admitted = take_admitted(&mut callers)?;
            let ((_, index), admission) = admitted.pop().context("nobody admitted")?;
            assert_eq!(index, expected);
            holder = admission;
        }
        for index in 0..3 {
            callers.push(start(&scheduler, ('B', index), late, Priority::High)?);
        }
        let order = admission_order(&scheduler, callers, holder)?;

        // B neither waits for A's backlog nor gets to cut ahead of it by more than its share.
        assert_eq!(
            order,
            [
                ('A', 5),
                ('B', 0),
                ('A', 6),
                ('B', 1),
                ('A', 7),
                ('B', 2),
                ('A', 8),
                ('A', 9)
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn full_queue_is_rejected_at_once_with_retry_after() -> Result<()> {
        let scheduler = Scheduler::new(SchedulerConfig {
            queue_capacity: [0, 1, 2, 0],
            ..SchedulerConfig::default()
        });
        let project = Uuid::new_v4();
        let _first = start(&scheduler, (), project, Priority::Normal)?;
        let _second = start(&scheduler, (), project, Priority::Normal)?;

        let rejected = scheduler
            .admit(project, Priority::Normal)
            .now_or_never()
            .context("a full queue made the caller wait")?;
        assert_eq!(
            rejected.err(),
            Some(Rejected::QueueFull {
                retry_after: Duration::from_secs(1)
            })
        );
        // Other classes have their own bounds.
        let _high = start(&scheduler, (), project, Priority::High)?;
        let rejected = scheduler
            .admit(Uuid::new_v4(), Priority::Critical)
            .now_or_never();
        assert!(matches!(rejected, Some(Err(Rejected::QueueFull { .. }))));
        assert_eq!(scheduler.queued(Priority::Normal), 2);
        assert_eq!(scheduler.queued(Priority::High), 1);
        assert_eq!(scheduler.queued(Priority::Critical), 0);
        Ok(())
    }

    #[tokio::test]
    async fn waiter_times_out_and_leaves_the_queue() -> Result<()> {
        let scheduler = scheduler(0);
        let project = Uuid::new_v4();
        let Entry::Waiting(waiting) = scheduler.enqueue(project, Priority::Low, DEFAULT_WEIGHT)?
        else {
            bail!("admitted without capacity");
        };
        let (expire, expired) = oneshot::channel::<()>();
        let mut admit: AdmitFuture<'_> = Box::pin(waiting.until(async {
            let _ = expired.await;
        }));
        assert!(poll_once(&mut admit).is_none());
        assert_eq!(scheduler.queued(Priority::Low), 1);

        let _ = expire.send(());
        let outcome = poll_once(&mut admit).context("still waiting after the deadline")?;

        assert_eq!(
            outcome.err(),
            Some(Rejected::TimedOut {
                retry_after: Duration::from_secs(1)
            })
        );
        assert_eq!(scheduler.queued(Priority::Low), 0);
        // The timed-out waiter is gone: a new slot is not granted to it.
        scheduler.set_capacity(1);
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn admit_times_out_after_max_wait() -> Result<()> {
        // Waits on the real clock, but only for the timer's one-millisecond resolution.
        // (`tokio::time::pause` needs tokio's `test-util` feature, which this crate lacks.)
        let scheduler = Scheduler::new(SchedulerConfig {
            max_wait: Duration::ZERO,
            ..SchedulerConfig::default()
        });
        let project = Uuid::new_v4();

        let outcome = scheduler.admit(project, Priority::Normal).await;

        assert!(matches!(outcome, Err(Rejected::TimedOut { .. })));
        assert_eq!(
            outcome.err().map(|rejected| rejected.retry_after()),
            Some(Duration::from_secs(1))
        );
        assert_eq!(scheduler.queued(Priority::Normal), 0);
        Ok(())
    }

    #[tokio::test]
    async fn timing_out_frees_room_in_a_full_queue() -> Result<()> {
        let scheduler = Scheduler::new(SchedulerConfig {
            queue_capacity: [1, 1, 1, 1],
            max_wait: Duration::ZERO,
        });
        let project = Uuid::new_v4();
        for _ in 0..3 {
            let outcome = scheduler.admit(project, Priority::High).await;
            assert!(
                matches!(outcome, Err(Rejected::TimedOut { .. })),
                "{outcome:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn grant_and_deadline_together_admit() -> Result<()> {
        let scheduler = scheduler(0);
        let Entry::Waiting(waiting) =
            scheduler.enqueue(Uuid::new_v4(), Priority::Normal, DEFAULT_WEIGHT)?
        else {
            bail!("admitted without capacity");
        };
        scheduler.set_capacity(1);

        let outcome = waiting
            .until(async {})
            .now_or_never()
            .context("still waiting")?;

        let admission = outcome.context("a granted slot was thrown away")?;
        assert_eq!(scheduler.in_flight(), 1);
        drop(admission);
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn dropped_waiter_does_not_leak_its_slot() -> Result<()> {
        let scheduler = scheduler(1);
        let project = Uuid::new_v4();
        let holder = admit_now(&scheduler, project, Priority::Normal)?;

        let first = start(&scheduler, "w1", project, Priority::Normal)?;
        drop(first);
        assert_eq!(scheduler.queued(Priority::Normal), 0);
        let mut second = start(&scheduler, "w2", project, Priority::Normal)?;
        drop(holder);

        let admission = poll_once(&mut second.admit).context("w2 still waits")??;
        assert_eq!(scheduler.in_flight(), 1);
        drop(admission);
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn waiter_dropped_after_its_grant_gives_the_slot_to_the_next() -> Result<()> {
        let scheduler = scheduler(1);
        let project = Uuid::new_v4();
        let holder = admit_now(&scheduler, project, Priority::Normal)?;
        let first = start(&scheduler, "w1", project, Priority::Normal)?;
        let mut second = start(&scheduler, "w2", project, Priority::Normal)?;

        // w1 is granted the slot but hangs up before it looks.
        drop(holder);
        assert_eq!(scheduler.in_flight(), 1);
        drop(first);

        let admission = poll_once(&mut second.admit).context("w2 still waits")??;
        assert_eq!(scheduler.in_flight(), 1);
        drop(admission);
        assert_eq!(scheduler.in_flight(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn grant_to_a_closed_waiter_goes_to_the_next() -> Result<()> {
        let scheduler = scheduler(0);
        let project = Uuid::new_v4();
        let mut callers = (0..3)
            .map(|index| start(&scheduler, index, project, Priority::Normal))
            .collect::<Result<Vec<_>>>()?;
        // A more urgent waiter closes its receiver but is still queued, as if it hung up while
        // a grant was in progress.
        let Entry::Waiting(mut closed) =
            scheduler.enqueue(project, Priority::Critical, DEFAULT_WEIGHT)?
        else {
            bail!("admitted without capacity");
        };
        closed.granted.close();

        scheduler.set_capacity(1);
        let admitted = take_admitted(&mut callers)?;

        let labels: Vec<_> = admitted.iter().map(|(label, _)| *label).collect();
        assert_eq!(labels, [0]);
        assert_eq!(scheduler.in_flight(), 1);
        assert_eq!(scheduler.queued(Priority::Critical), 0);
        drop(closed);
        assert_eq!(scheduler.in_flight(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn dropping_a_head_waiter_keeps_the_fair_order() -> Result<()> {
        let scheduler = scheduler(1);
        let (first_project, second_project) = (Uuid::new_v4(), Uuid::new_v4());
        let holder = admit_now(&scheduler, first_project, Priority::Normal)?;
        let mut callers = Vec::new();
        for index in 0..3 {
            callers.push(start(
                &scheduler,
                ('A', index),
                first_project,
                Priority::Normal,
            )?);
            callers.push(start(
                &scheduler,
                ('B', index),
                second_project,
                Priority::Normal,
            )?);
        }
        // A's first waiter hangs up, and B's last.
        callers.retain(|caller| caller.label != ('A', 0) && caller.label != ('B', 2));

        let order = admission_order(&scheduler, callers, holder)?;

        assert_eq!(order, [('B', 0), ('A', 1), ('B', 1), ('A', 2)]);
        Ok(())
    }

    #[tokio::test]
    async fn shrinking_capacity_keeps_running_work_and_admits_nothing_new() -> Result<()> {
        let scheduler = scheduler(3);
        let project = Uuid::new_v4();
        let mut running = (0..3)
            .map(|_| admit_now(&scheduler, project, Priority::Normal))
            .collect::<Result<Vec<_>>>()?;

        scheduler.set_capacity(1);
        assert_eq!(scheduler.in_flight(), 3);
        let mut callers = vec![start(&scheduler, "waiter", project, Priority::Critical)?];

        drop(running.pop());
        assert!(
            take_admitted(&mut callers)?.is_empty(),
            "admitted with 2 in flight of 1"
        );
        drop(running.pop());
        assert!(
            take_admitted(&mut callers)?.is_empty(),
            "admitted with 1 in flight of 1"
        );
        drop(running.pop());
        let admitted = take_admitted(&mut callers)?;
        assert_eq!(admitted.len(), 1);
        assert_eq!(scheduler.in_flight(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn project_state_is_dropped_when_its_waiters_are_gone() -> Result<()> {
        let scheduler = scheduler(1);
        let holder = admit_now(&scheduler, Uuid::new_v4(), Priority::Normal)?;
        let mut callers = Vec::new();
        for index in 0..20 {
            let project = Uuid::new_v4();
            callers.push(start(&scheduler, index, project, Priority::Normal)?);
            callers.push(start(&scheduler, index, project, Priority::Low)?);
        }
        {
            let state = scheduler.shared.lock();
            assert_eq!(state.classes[Priority::Normal.index()].projects.len(), 20);
        }

        // Half are admitted one by one, the rest hang up.
        let (admitted, gone): (Vec<_>, Vec<_>) = callers
            .into_iter()
            .partition(|caller| caller.label % 2 == 0);
        drop(gone);
        admission_order(&scheduler, admitted, holder)?;

        let state = scheduler.shared.lock();
        for class in &state.classes {
            assert!(class.projects.is_empty());
            assert!(class.heads.is_empty());
            assert_eq!(class.len, 0);
            assert_eq!(class.virtual_time, 0);
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_never_exceed_capacity_and_leak_nothing() -> Result<()> {
        const CAPACITY: usize = 3;
        let scheduler = scheduler(CAPACITY);
        let running = Arc::new(AtomicUsize::new(0));
        let most_running = Arc::new(AtomicUsize::new(0));
        let projects: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();

        let mut tasks = Vec::new();
        for index in 0..400_usize {
            let scheduler = scheduler.clone();
            let (running, most_running) = (Arc::clone(&running), Arc::clone(&most_running));
            let project = projects[index % projects.len()];
            let priority = Priority::ALL[index % Priority::ALL.len()];
            tasks.push(tokio::spawn(async move {
                if index % 5 == 0 {
                    // Hangs up after at most one poll.
                    drop(scheduler.admit(project, priority).now_or_never());
                    return;
                }
                let Ok(admission) = scheduler.admit(project, priority).await else {
                    return;
                };
                let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                most_running.fetch_max(now_running, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                drop(admission);
            }));
        }
        for task in tasks {
            task.await?;
        }

        assert!(most_running.load(Ordering::SeqCst) <= CAPACITY);
        assert_eq!(scheduler.in_flight(), 0);
        for priority in Priority::ALL {
            assert_eq!(scheduler.queued(priority), 0);
        }
        Ok(())
    }

    #[tokio::test]
    async fn priority_parses_names_ignoring_case() -> Result<()> {
        assert_eq!("critical".parse::<Priority>()?, Priority::Critical);
        assert_eq!("High".parse::<Priority>()?, Priority::High);
        assert_eq!("NORMAL".parse::<Priority>()?, Priority::Normal);
        assert_eq!("low".parse::<Priority>()?, Priority::Low);
        for priority in Priority::ALL {
            assert_eq!(priority.as_str().parse::<Priority>()?, priority);
            assert_eq!(priority.to_string(), priority.as_str());
        }
        assert_eq!(
            "urgent".parse::<Priority>(),
            Err(ParsePriorityError("urgent".to_owned()))
        );
        assert!(" low".parse::<Priority>().is_err());
        assert_eq!(Priority::default(), Priority::Normal);
        Ok(())
    }

    #[tokio::test]
    async fn priority_is_lowercase_in_json() -> Result<()> {
        assert_eq!(serde_json::to_string(&Priority::Critical)?, r#""critical""#);
        assert_eq!(serde_json::from_str::<Priority>(r#""low""#)?, Priority::Low);
        assert!(serde_json::from_str::<Priority>(r#""Low""#).is_err());
        Ok(())
    }

    #[tokio::test]
    async fn priority_converts_to_and_from_the_wire() -> Result<()> {
        for priority in Priority::ALL {
            assert_eq!(Priority::from(proto::Priority::from(priority)), priority);
            assert_eq!(
                Priority::from_wire(proto::Priority::from(priority) as i32),
                priority
            );
        }
        assert_eq!(
            Priority::from(proto::Priority::Unspecified),
            Priority::Normal
        );
        assert_eq!(Priority::from_wire(0), Priority::Normal);
        assert_eq!(Priority::from_wire(99), Priority::Normal);
        let head = proto::InvokeHead {
            priority: proto::Priority::Critical.into(),
            ..proto::InvokeHead::default()
        };
        assert_eq!(Priority::from_wire(head.priority), Priority::Critical);
        Ok(())
    }
}
