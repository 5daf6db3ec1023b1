//! Keeps CPU-heavy guests from starving light ones.
//!
//! A guest still executing when the epoch ticks (every 10 ms) gives its thread up and, before
//! its next slice, must take one of a few gate slots. Waiting guests are served least CPU
//! first (the ticks they have used; first come first served among equals), so a short request
//! that happens to cross a tick goes ahead of every guest that has been spinning for longer.
//! However many guests spin, at most `slots` executor threads run them and the rest of the
//! node serves everyone else. Light guests finish between two ticks and never meet the gate.
//!
//! A slot is held only while the guest executes: whenever the instance's future is pending (the
//! guest waits on I/O, on a host call or on another guest), the invocation path gives the slot
//! up through [`CpuRelease`]. Otherwise a guest calling its own app could hold the only slot
//! while the guest it waits for needs it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The slots heavy guests take turns on.
#[derive(Debug, Clone)]
pub struct CpuGate {
    state: Arc<Mutex<GateState>>,
}

#[derive(Debug)]
struct GateState {
    free: usize,
    waiting: BinaryHeap<Waiter>,
    next_arrival: u64,
}

/// A guest waiting for a slot. Ordered so that the heap's top is the least CPU used, then the
/// earliest arrival.
#[derive(Debug)]
struct Waiter {
    ticks: u32,
    arrival: u64,
    grant: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.ticks, other.arrival).cmp(&(self.ticks, self.arrival))
    }
}

/// A held slot; dropping it hands the slot to the next waiter.
#[derive(Debug)]
struct Slot {
    gate: CpuGate,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.release();
    }
}

impl CpuGate {
    /// A gate letting `slots` heavy guests execute at once.
    pub fn new(slots: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(GateState {
                free: slots.max(1),
                waiting: BinaryHeap::new(),
                next_arrival: 0,
            })),
        }
    }

    /// One fewer than the machine's cores, so a core stays free for light work.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.saturating_sub(1))
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Every critical section leaves the state consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for a guest that has used `ticks` ticks.
    async fn acquire(&self, ticks: u32) -> Slot {
        let grant = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return Slot { gate: self.clone() };
            }
            let (grant, granted) = oneshot::channel();
            let arrival = state.next_arrival;
            state.next_arrival += 1;
            state.waiting.push(Waiter {
                ticks,
                arrival,
                grant,
            });
            granted
        };
        let mut pending = PendingGrant {
            granted: Some(grant),
            gate: self.clone(),
        };
        pending.wait().await;
        Slot { gate: self.clone() }
    }

    /// Hands a freed slot to the first live waiter, or returns it to the pool.
    fn release(&self) {
        let mut state = self.lock();
        while let Some(waiter) = state.waiting.pop() {
            if waiter.grant.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    #[cfg(test)]
    fn free_slots(&self) -> usize {
        self.lock().free
    }
}

/// A wait for a slot that gives the slot back if it is dropped just after being granted (the
/// instance was torn down at its deadline while queued).
struct PendingGrant {
    granted: Option<oneshot::Receiver<()>>,
    gate: CpuGate,
}

impl PendingGrant {
    async fn wait(&mut self) {
        if let Some(granted) = self.granted.as_mut() {
            // A closed sender cannot happen (waiters leave the queue only by being granted);
            // either way the guest may proceed.
            let _ = granted.await;
        }
        self.granted = None;
    }
}

impl Drop for PendingGrant {
    fn drop(&mut self) {
        if let Some(mut granted) = self.granted.take() {
            granted.close();
            if granted.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

/// One instance's use of the CPU: the ticks it has executed through and the slot it holds.
#[derive(Default)]
pub struct CpuShare {
    ticks: u32,
    held: Arc<Mutex<Option<Slot>>>,
}

/// Lets a host capability give the instance's slot up before it waits.
#[derive(Clone)]
pub struct CpuRelease(Arc<Mutex<Option<Slot>>>);

impl CpuRelease {
    /// Gives the slot up, if the instance holds one. It queues again at its next tick.
    pub fn release(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

impl CpuShare {
    /// A handle that gives this instance's slot up.
    pub fn release_handle(&self) -> CpuRelease {
        CpuRelease(Arc::clone(&self.held))
    }

    /// Called at each epoch tick the guest executes through; returns what to wait for before
    /// the guest runs on.
    pub fn next_slice(&mut self, gate: &CpuGate) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.ticks = self.ticks.saturating_add(1);
        let ticks = self.ticks;
        let held = Arc::clone(&self.held);
        // Give the slot up, then queue for the next one.
        drop(held.lock().unwrap_or_else(PoisonError::into_inner).take());
        let gate = gate.clone();
        Box::pin(async move {
            // Always give the thread up once, even when a slot is free at once: tasks woken by
            // this one wait in this thread's queue, and only a real yield lets them run.
            tokio::task::yield_now().await;
            let slot = gate.acquire(ticks).await;
            *held.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heavy_guests_take_turns_on_the_gate() {
        let gate = CpuGate::new(1);
        let mut first = CpuShare::default();
        let mut second = CpuShare::default();

        first.next_slice(&gate).await;
        assert_eq!(gate.free_slots(), 0, "the first heavy guest holds the slot");
        let mut waiting = second.next_slice(&gate);
        assert!(
            futures::poll!(&mut waiting).is_pending(),
            "a second heavy guest waits its turn"
        );
        let mut handing_over = first.next_slice(&gate);
        waiting.await;
        assert!(
            futures::poll!(&mut handing_over).is_pending(),
            "the first now waits behind the second"
        );
        drop(second);
        handing_over.await;
        drop(first);
        assert_eq!(
            gate.free_slots(),
            1,
            "a dropped instance gives its slot back"
        );
    }

    #[tokio::test]
    async fn the_guest_with_least_cpu_goes_first() {
        let gate = CpuGate::new(1);
        let holder = gate.acquire(1).await;
        let mut spinner = Box::pin(gate.acquire(50));
        let mut short = Box::pin(gate.acquire(1));
        assert!(futures::poll!(&mut spinner).is_pending());
        assert!(futures::poll!(&mut short).is_pending());
        drop(holder);
        let std::task::Poll::Ready(short_slot) = futures::poll!(&mut short) else {
            panic!("the short guest should jump the queue");
        };
        assert!(
            futures::poll!(&mut spinner).is_pending(),
            "the spinner waits for the short guest"
        );
        drop(short_slot);
        assert!(futures::poll!(&mut spinner).is_ready());
    }

    #[tokio::test]
    async fn a_waiter_dropped_after_its_grant_gives_the_slot_back() {
        let gate = CpuGate::new(1);
        let holder = gate.acquire(1).await;
        let mut waiter = Box::pin(gate.acquire(1));
        assert!(futures::poll!(&mut waiter).is_pending());
        drop(holder);
        drop(waiter);
        assert_eq!(gate.free_slots(), 1);
    }
}
