//! The integration tests: one test binary (`cargo test --test it`), a module per area,
//! sharing one harness. Every test starts its own MariaDB on a free port through
//! `scripts/mariadb.sh`, runs the real `pikachu` binary as a child process and receives
//! its webhooks on loopback; tests run in parallel threads of this binary, so nothing
//! here changes process-wide state (environment, current directory, fixed ports).
//!
//! Nothing waits a fixed time for something to happen or not to happen: a test waits
//! for a fact the daemon exposes (the checkpoint file reaching a binlog position,
//! `/metrics` counters, a log line) and polls for it up to a generous deadline.
// A test or benchmark that cannot set itself up should stop loudly, not carry on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod backfill;
mod binlog_files;
mod check_command;
mod compressed_binlog;
mod config_files;
mod deploy_files;
mod failover;
mod ha;
mod metrics_promtool;
mod operations;
mod reliability;
mod reliability_delivery;
mod schema_fallback;
mod task_filters;
mod tls;
mod values;
mod values_go;
mod values_mariadb_types;
mod webhooks;
