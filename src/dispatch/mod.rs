//! Dispatch: the worker pool that turns `Delivery`s into webhook requests.
//!
//! Routes each delivery to a worker by (task, primary key) so that one key's changes go
//! in order; retries with backoff; dead-letters what finally fails; completes sequence
//! numbers in the checkpoint tracker. It never reads the binlog.
