//! The source: the binlog reader thread (the server's binlog, or binlog files), the
//! connections to the database (`connect`), the table schema cache and row decoding.
//!
//! It hands row changes and transaction ends to a `Sink` and knows nothing behind it
//! (queues, workers, the checkpoint tracker). It owns `SourceStats` and the read
//! position. It never sends HTTP, never writes the checkpoint and never writes another
//! stage's counters.

pub mod compressed;
pub mod connect;
pub mod decode;
pub mod files;
pub mod jsondiff;
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
