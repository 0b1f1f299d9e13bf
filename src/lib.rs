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
//! numbers. The checkpoint flusher thread saves the tracker's safe point to a
//! `checkpoint::Store` (a file, or a row shared by an `ha` group). `http` reads a
//! `stats::Metrics` snapshot; each stage owns its own counters in `stats`. With
//! `ha.group`, `ha` decides whether this process runs the stages at all.
//!
//! Lower modules (`event`, `sink`, `config`, `filter`, `stats`, `clock`, `fsutil`, `tls`,
//! `exit`, `shutdown`, `govalues`, `encode`, `signature`, `deadletter`, `checkpoint`,
//! `handoff`) never import higher ones (`source`, `backfill`, `dispatch`, `ha`, `engine`,
//! `http`, `listen`, `check`). `backfill` reads chunks in its own threads and reaches
//! the binlog reader only through `handoff`. `engine` wires the stages together; `main`
//! calls `engine`, `check` or `listen`, which do not import each other.

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
pub mod filter;
pub mod fsutil;
pub mod govalues;
pub mod ha;
pub mod handoff;
pub mod http;
pub mod listen;
pub mod logging;
pub mod shutdown;
pub mod signature;
pub mod sink;
pub mod source;
pub mod stats;
pub mod tls;
