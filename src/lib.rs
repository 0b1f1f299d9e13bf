//! pikachu: tails the MySQL/MariaDB binlog and delivers every row change of the watched
//! tables as a JSON webhook.
//!
//! Data flows one way, one thread per stage:
//!
//! `source` (the reader thread: binlog → `RowChange`s) hands each change and each
//! transaction end to a `sink::Sink`. `dispatch::Dispatcher` is that sink: it numbers
//! the change in the `checkpoint::Tracker`, routes it by (task, primary key) into a
//! bounded per-worker queue (a full queue pauses the reader: backpressure), and its
//! worker threads send the webhooks, dead-letter what finally fails and complete the
//! numbers. The checkpoint flusher thread saves the tracker's safe point. `http` reads
//! a `stats::Metrics` snapshot; each stage owns its own counters in `stats`.
//!
//! Lower modules (`event`, `sink`, `config`, `stats`, `clock`, `fsutil`, `exit`,
//! `shutdown`, `encode`, `signature`, `deadletter`, `checkpoint`, `handoff`) never import
//! higher ones (`source`, `backfill`, `dispatch`, `engine`, `http`, `listen`, `check`).
//! `backfill` reads chunks in its own thread and reaches the reader only through
//! `handoff`. `engine` wires the
//! stages together; `main` calls `engine`, `check` or `listen`, which do not import
//! each other.

pub mod backfill;
pub mod check;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod deadletter;
pub mod dispatch;
pub mod encode;
pub mod engine;
pub mod event;
pub mod exit;
pub mod fsutil;
pub mod handoff;
pub mod http;
pub mod listen;
pub mod logging;
pub mod shutdown;
pub mod signature;
pub mod sink;
pub mod source;
pub mod stats;
