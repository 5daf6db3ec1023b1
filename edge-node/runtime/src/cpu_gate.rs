//! Keeps CPU-heavy guests from starving light ones.
//!
//! A guest that is still executing when the epoch ticks (every 10 ms) counts as heavy: it gives
//! its thread up and, before its next slice, must take one of a few gate slots, queueing (first
//! come, first served) behind the other heavy guests instead of sitting in the executor's run
//! queue. So however many guests spin, at most `slots` executor threads run them and the rest
//! serve everyone else. Light guests finish between two ticks and never meet the gate; at worst
//! a guest runs one partial tick ungated.
//!
//! A heavy guest keeps its slot while it waits in a host call (the runtime cannot tell that
//! wait from work); that delays other heavy guests, never light ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots heavy guests take turns on.
#[derive(Debug)]
pub struct CpuGate {
    slots: Arc<Semaphore>,
}

impl CpuGate {
    /// A gate letting `slots` heavy guests execute at once.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// One fewer than the machine's cores, so a core stays free for light work.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.saturating_sub(1))
    }
}

/// One instance's use of the CPU: the gate slot it holds, if any.
#[derive(Default)]
pub struct CpuShare {
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl CpuShare {
    /// Called at each epoch tick the guest executes through; returns what to wait for before
    /// the guest runs on.
    pub fn next_slice(&mut self, gate: &CpuGate) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let held = Arc::clone(&self.held);
        // Give the slot up, then queue for the next one behind the other heavy guests.
        drop(held.lock().unwrap_or_else(PoisonError::into_inner).take());
        let slots = Arc::clone(&gate.slots);
        Box::pin(async move {
            // Always give the thread up once, even when a slot is free at once: tasks woken by
            // this one wait in this thread's queue, and only a real yield lets them run.
            tokio::task::yield_now().await;
            if let Ok(slot) = slots.acquire_owned().await {
                *held.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot);
            }
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
        assert_eq!(
            gate.slots.available_permits(),
            0,
            "the first heavy guest holds the slot"
        );
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
            gate.slots.available_permits(),
            1,
            "a dropped instance gives its slot back"
        );
    }
}
