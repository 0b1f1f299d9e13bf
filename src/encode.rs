//! Value encoding: a `RowChange` as the SPEC's webhook JSON (section 2 and 3).
//!
//! Pure functions from plain data to bytes; no I/O, no knowledge of workers or HTTP.

use crate::event::RowChange;

/// Appends the webhook envelope of `change` for task `task_id` to `out`.
pub fn write_envelope(out: &mut Vec<u8>, task_id: &str, change: &RowChange) {
    let _ = (out, task_id, change);
    todo!("encode::write_envelope")
}

/// Appends a JSON array of envelopes (a batch) to `out`.
pub fn write_batch<'a>(out: &mut Vec<u8>, task_id: &str, changes: impl IntoIterator<Item = &'a RowChange>) {
    let _ = (out, task_id, changes.into_iter());
    todo!("encode::write_batch")
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-23T10:15:00Z`).
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    let _ = unix_seconds;
    todo!()
}
