//! The source: the binlog reader thread, the table schema cache and row decoding.
//!
//! It produces `Delivery`s into the dispatcher's bounded queues and marks transaction
//! ends in the checkpoint tracker. It never sends HTTP and never writes the checkpoint.

pub mod decode;
