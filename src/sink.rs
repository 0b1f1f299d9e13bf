//! Where a source hands its changes: the one-way boundary between reading and
//! delivering.
//!
//! A source (today the binlog reader; later a backfill or a binlog-file reader) knows
//! only this trait: it hands over each row change for each task, in binlog order, and
//! marks where each transaction ends. Numbering, queueing, ordering per key and the
//! checkpoint's low-water mark are the sink's business (`dispatch::Dispatcher`
//! implements it); a source never sees workers, queues or the checkpoint tracker.

use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::event::{RowChange, TxnMeta};

/// The sink is gone: its workers were stopped (the shutdown deadline passed while the
/// source waited for room). Nothing more can be handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the delivery workers stopped")]
pub struct SinkClosed;

pub trait Sink {
    /// Hands over one change for one task (an index into `Config::tasks`), with its
    /// place in the transaction when the task asks for it. Blocks while the sink is
    /// full (backpressure); never drops the change.
    fn deliver(
        &self,
        task: usize,
        change: Arc<RowChange>,
        txn: Option<TxnMeta>,
    ) -> Result<(), SinkClosed>;

    /// A transaction (or a stretch without one, such as a rotation) ended at `at`: every
    /// change handed over so far belongs to it or to earlier ones, so once they are all
    /// done `at` is a safe place to resume from.
    fn commit(&self, at: Checkpoint);
}
