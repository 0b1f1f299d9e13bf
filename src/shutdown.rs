//! A one-way signal that threads can poll, and sleep on without missing it.
//!
//! The engine raises three: `stop` (first SIGINT/SIGTERM: the reader stops at the next
//! transaction boundary), `abort` (the shutdown deadline passed: workers give up
//! in-flight retries and a reader waiting for room gives up) and the checkpoint
//! flusher's stop (after the workers finished: one last save). Knows nothing about
//! what the threads do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct Signal {
    raised: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raise(&self) {
        let _g = self.lock.lock();
        self.raised.store(true, Ordering::SeqCst);
        self.cv.notify_all();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` unless the signal is raised first. Returns true when the full
    /// time passed, false when the signal cut it short.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut g = self.lock.lock();
        while !self.is_raised() {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                return !self.is_raised();
            }
        }
        false
    }
}

/// A lease as its holder sees it: renewed after each successful keep-alive, it holds
/// only while the last renewal is younger than `max_age`. A process frozen for longer
/// (SIGSTOP, a VM pause) wakes with a fence that no longer holds, before any keep-alive
/// could tell it that the lease is gone: nothing is sent on a lease that may be someone
/// else's.
pub struct Fence {
    base: Instant,
    /// Nanoseconds after `base` of the last renewal.
    renewed: AtomicU64,
    max_age: Duration,
}

impl Fence {
    /// Renewed now.
    pub fn new(max_age: Duration) -> Fence {
        Fence {
            base: Instant::now(),
            renewed: AtomicU64::new(0),
            max_age,
        }
    }

    pub fn renew(&self) {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.renewed.store(now, Ordering::SeqCst);
    }

    pub fn holds(&self) -> bool {
        let renewed = Duration::from_nanos(self.renewed.load(Ordering::SeqCst));
        self.base.elapsed().saturating_sub(renewed) < self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sleep_is_cut_short_by_raise() {
        let s = Arc::new(Signal::new());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        s.raise();
        assert!(!t.join().unwrap());
        assert!(
            !s.sleep(Duration::from_secs(30)),
            "a raised signal never sleeps"
        );
    }

    #[test]
    fn a_fence_holds_until_it_is_older_than_its_age() {
        let f = Fence::new(Duration::from_millis(30));
        assert!(f.holds());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!f.holds(), "not renewed for longer than its age");
        f.renew();
        assert!(f.holds());
    }

    #[test]
    fn sleep_runs_full_time_without_raise() {
        let s = Signal::new();
        assert!(s.sleep(Duration::from_millis(5)));
        assert!(!s.is_raised());
    }
}
