//! The source: the binlog reader thread, the table schema cache and row decoding.
//!
//! It hands row changes and transaction ends to a `Sink` and knows nothing behind it
//! (queues, workers, the checkpoint tracker). It owns `SourceStats` and the read
//! position. It never sends HTTP, never writes the checkpoint and never writes another
//! stage's counters.

use std::time::Duration;

use crate::config::DatabaseConfig;

pub mod compressed;
pub mod decode;
pub mod payload;
pub mod preflight;
pub mod reader;
pub mod schema;

/// Why an event wrapped in another (a MySQL compressed transaction, a MariaDB
/// compressed event) cannot be read. One type for both wrappers: the reader treats them
/// alike (the file and offset are added where it reports them).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// What went wrong, already including the underlying error's text: the reader logs
    /// only the top-level message.
    message: String,
    /// The I/O or decompression error behind it, if any, for `source()` chains.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EventError {
    fn new(msg: impl Into<String>) -> EventError {
        EventError {
            message: msg.into(),
            source: None,
        }
    }

    /// `msg: e`, keeping `e` as the error's source.
    fn caused<E>(msg: impl std::fmt::Display, e: E) -> EventError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        EventError {
            message: format!("{msg}: {e}"),
            source: Some(Box::new(e)),
        }
    }
}

/// Connection options for every connection pikachu opens (binlog, schema, checks).
pub fn mysql_opts(db: &DatabaseConfig, read_timeout: Option<Duration>) -> mysql::Opts {
    let charset = if db.charset.is_empty() {
        "utf8mb4"
    } else {
        db.charset.as_str()
    };
    mysql::OptsBuilder::new()
        .ip_or_hostname(Some(db.host.clone()))
        .tcp_port(db.port)
        .user(Some(db.user.clone()))
        .pass(if db.password.expose().is_empty() {
            None
        } else {
            Some(db.password.expose().to_owned())
        })
        .prefer_socket(false)
        .tcp_connect_timeout(Some(db.connect_timeout))
        .read_timeout(read_timeout.or(Some(db.read_timeout)))
        .write_timeout(Some(db.read_timeout))
        // A single row event can be far larger than the server's default packet size.
        .max_allowed_packet(Some(1 << 30))
        .init(vec![format!("SET NAMES {charset}")])
        .into()
}
