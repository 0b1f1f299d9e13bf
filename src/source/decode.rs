//! Row decoding: binlog row bytes + per-column type info → `Value`s in the SPEC's shape.
//!
//! Works on the raw rows data of a rows event (not the `mysql` crate's `BinlogRow`,
//! which rebuilds column info per row and has known defects). Pure: no I/O.
