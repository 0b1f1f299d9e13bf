//! Configuration: the Go tool's `config.yaml` / `tasks.yaml` (raw serde structs) turned
//! into a validated `Config`.
//!
//! Owns parsing, defaults, environment overrides and validation. It must not touch the
//! network or the database, and never prints a password or secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A secret string (password, signing key): never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub server_id: u32,
    pub charset: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    pub format: LogFormat,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub enabled: bool,
    pub port: u16,
    pub path: String,
}

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    pub worker_count: usize,
    pub queue_size: usize,
    pub timeout: Duration,
    /// `None`: retry for ever (`max_retries: -1`).
    pub max_retries: Option<u32>,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    pub max_connections: usize,
    pub max_idle_conns: usize,
    pub idle_conn_timeout: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Default signing secret for tasks without their own.
    pub secret: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub event_queue_size: usize,
    pub event_queue_timeout: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub flush_interval: Duration,
    pub heartbeat_period: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    Latest,
    Earliest,
    Position { file: String, pos: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl EventFilter {
    pub fn accepts(&self, kind: crate::event::ChangeKind) -> bool {
        use crate::event::ChangeKind::*;
        match kind {
            Insert => self.insert,
            Update => self.update,
            Delete => self.delete,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Task {
    pub task_id: String,
    pub name: String,
    /// The database the table lives in (`database.database` of the config).
    pub database: String,
    pub table: String,
    pub events: EventFilter,
    /// Absolute http(s) URL, `callback_host` already applied.
    pub callback_url: String,
    pub headers: Vec<(String, String)>,
    pub secret: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub dispatcher: DispatcherConfig,
    pub monitor: MonitorConfig,
    pub callback_host: Option<String>,
    pub data_dir: PathBuf,
    pub start_from: StartFrom,
    pub tasks: Vec<Task>,
}
