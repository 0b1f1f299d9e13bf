//! pikachu: tails the MySQL/MariaDB binlog and delivers every row change of the watched
//! tables as a JSON webhook.
//!
//! Data flows one way: `source` (reader thread) → bounded channels → `dispatch`
//! (worker threads) → `checkpoint`. `stats` is written by all of them and read by `http`.
//! Lower modules (`event`, `config`, `stats`, `shutdown`, `encode`, `deadletter`,
//! `checkpoint`) never import higher ones (`source`, `dispatch`, `http`, `listen`).

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
pub mod http;
pub mod listen;
pub mod logging;
pub mod shutdown;
pub mod signature;
pub mod sink;
pub mod source;
pub mod stats;
