//! A one-way signal that threads can poll, and sleep on without missing it.
//!
//! The engine raises three: `stop` (first SIGINT/SIGTERM: the reader stops at the next
//! transaction boundary), `abort` (the shutdown deadline passed: workers give up
//! in-flight retries and a reader waiting for room gives up) and the checkpoint
//! flusher's stop (after the workers finished: one last save). Knows nothing about
//! what the threads do.

use std::sync::atomic::{AtomicBool, Ordering};
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
    fn sleep_runs_full_time_without_raise() {
        let s = Signal::new();
        assert!(s.sleep(Duration::from_millis(5)));
        assert!(!s.is_raised());
    }
}
