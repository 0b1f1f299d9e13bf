//! Dispatch: the worker pool that turns `Delivery`s into webhook requests.
//!
//! Routes each delivery to a worker by (task, primary key) so that one key's changes go
//! in order; retries with backoff; dead-letters what finally fails; completes sequence
//! numbers in the checkpoint tracker. It never reads the binlog.

use std::sync::Arc;

use crate::checkpoint::Tracker;
use crate::config::Config;
use crate::deadletter::DeadLetters;
use crate::event::Delivery;
use crate::shutdown::Signal;
use crate::stats::Stats;

#[derive(Debug)]
pub enum DispatchError {
    /// The HTTP client could not be built (bad TLS setup …).
    Client(String),
    /// A thread could not be started.
    Spawn(std::io::Error),
}

/// Everything the workers share, built once at start.
pub struct DispatchContext {
    pub config: Arc<Config>,
    pub tracker: Arc<Tracker>,
    pub stats: Arc<Stats>,
    pub dead_letters: Arc<DeadLetters>,
    /// Raised when the shutdown deadline has passed: give up in-flight retries
    /// (without completing those events, so they are read again after a restart).
    pub abort: Arc<Signal>,
}

pub struct Dispatcher {}

impl Dispatcher {
    /// Starts `dispatcher.worker_count` worker threads.
    pub fn start(ctx: DispatchContext) -> Result<Dispatcher, DispatchError> {
        let _ = ctx;
        todo!()
    }

    /// Queues a delivery on the worker that owns its (task, primary key). Blocks while
    /// that worker's queue is full (backpressure). An update that changes the primary
    /// key waits until everything before it is complete, and is itself complete before
    /// `route` returns, so no later change of either key can overtake it.
    /// Returns false when the workers are gone (abort), true otherwise.
    pub fn route(&self, delivery: Delivery) -> bool {
        let _ = delivery;
        todo!()
    }

    /// Closes the queues and waits for the workers to drain them. Workers keep
    /// retrying until `abort` is raised.
    pub fn finish(self) {
        todo!()
    }
}
