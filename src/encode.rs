//! Value encoding: a `RowChange` as the SPEC's webhook JSON (section 2 and 3).
//!
//! Pure functions from plain data to bytes; no I/O, no knowledge of workers or HTTP.
//! The envelope is written straight into the caller's buffer (no intermediate
//! `serde_json::Value`): this runs once per delivered row. Strings go through
//! serde_json's serializer, so escaping is right for every input.

use base64::Engine as _;

use crate::clock::write_rfc3339_utc;
use crate::config::ValueMode;
use crate::event::{ChangeKind, RowChange, RowImage, TableSchema, TxnMeta, Value};
use crate::filter::Columns;
use crate::govalues;

/// Appends the webhook envelope of `change` for task `task_id` to `out`, with the
/// task's `columns` of each row (the primary key always).
///
/// Fields in this order: `id`, `task_id`, `event`, `database`, `table`, `primary_id`,
/// then `data` (insert: the new row; delete: the deleted row) or `old_data` +
/// `new_data` + `changed` (update), then `timestamp`, `position`, when there is one,
/// `gtid`, and for a `txn: true` task `txn`.
pub fn write_envelope(
    out: &mut Vec<u8>,
    task_id: &str,
    change: &RowChange,
    form: &Form,
    txn: Option<&TxnMeta>,
) {
    let shape = Shape {
        table: &change.table,
        columns: &form.columns,
    };
    if form.values == ValueMode::Go {
        return write_envelope_go(out, task_id, change, &shape, txn);
    }
    out.extend_from_slice(b"{\"id\":");
    write_str(out, &change.id);
    out.extend_from_slice(b",\"task_id\":");
    write_str(out, task_id);
    out.extend_from_slice(b",\"event\":\"");
    out.extend_from_slice(change.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"database\":");
    write_str(out, &change.table.database);
    out.extend_from_slice(b",\"table\":");
    write_str(out, &change.table.table);
    out.extend_from_slice(b",\"primary_id\":");
    write_primary_id(out, change);
    match change.kind {
        ChangeKind::Insert | ChangeKind::Read => {
            out.extend_from_slice(b",\"data\":");
            write_row(out, &shape, change.after.as_ref());
        }
        ChangeKind::Delete => {
            out.extend_from_slice(b",\"data\":");
            write_row(out, &shape, change.before.as_ref());
        }
        ChangeKind::Update => {
            out.extend_from_slice(b",\"old_data\":");
            write_row(out, &shape, change.before.as_ref());
            out.extend_from_slice(b",\"new_data\":");
            write_row(out, &shape, change.after.as_ref());
            write_changed(out, change, &shape);
        }
    }
    out.extend_from_slice(b",\"timestamp\":\"");
    write_rfc3339_utc(out, i64::from(change.timestamp));
    out.extend_from_slice(b"\",\"position\":{\"file\":");
    write_str(out, &change.position.file);
    out.extend_from_slice(b",\"pos\":");
    write_json(out, &change.position.pos);
    out.push(b'}');
    if let Some(gtid) = &change.gtid {
        out.extend_from_slice(b",\"gtid\":");
        write_str(out, gtid);
    }
    write_txn(out, txn);
    out.push(b'}');
}

/// `changed`: the columns (of those that go out) whose values differ.
fn write_changed(out: &mut Vec<u8>, change: &RowChange, shape: &Shape) {
    out.extend_from_slice(b",\"changed\":[");
    let mut first = true;
    for i in crate::filter::changed(change).filter(|&i| shape.keeps(i)) {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, &column_name(&change.table.columns, i));
    }
    out.push(b']');
}

/// `txn` of a `txn: true` task.
fn write_txn(out: &mut Vec<u8>, txn: Option<&TxnMeta>) {
    if let Some(txn) = txn {
        out.extend_from_slice(b",\"txn\":{\"id\":");
        write_str(out, &txn.id);
        out.extend_from_slice(b",\"seq\":");
        write_json(out, &txn.seq);
        out.extend_from_slice(if txn.last {
            b",\"last\":true}"
        } else {
            b",\"last\":false}"
        });
    }
}

/// Appends a JSON array of envelopes (a batch) to `out`.
pub fn write_batch<'a>(
    out: &mut Vec<u8>,
    task_id: &str,
    changes: impl IntoIterator<Item = (&'a RowChange, Option<&'a TxnMeta>)>,
    form: &Form,
) {
    out.push(b'[');
    for (i, (change, txn)) in changes.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_envelope(out, task_id, change, form, txn);
    }
    out.push(b']');
}

/// What a task does to each of its envelopes: which columns, and in which values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Form {
    pub columns: Columns,
    pub values: ValueMode,
}

/// The envelope with the Go tool's values (`values: go`, README "values: go"): the
/// same fields in the same order as `write_envelope`, but column values from the
/// change's `GoRow` (go-mysql's decoding) written as Go's `encoding/json` writes them
/// (row keys sorted, `<>&` escaped, Go's float forms), `primary_id` by the Go tool's
/// `GetPrimaryKey`, and `timestamp` the processing time as Go's `time.Time` in the
/// local zone. A change without a `GoRow` (not read from the binlog: the Go tool had
/// no other source) carries its SPEC values in these forms.
fn write_envelope_go(
    out: &mut Vec<u8>,
    task_id: &str,
    change: &RowChange,
    shape: &Shape,
    txn: Option<&TxnMeta>,
) {
    let (before, after) = match &change.go {
        Some(go) => (go.before.as_ref(), go.after.as_ref()),
        None => (change.before.as_ref(), change.after.as_ref()),
    };
    out.extend_from_slice(b"{\"id\":");
    govalues::write_str(out, change.id.as_bytes());
    out.extend_from_slice(b",\"task_id\":");
    govalues::write_str(out, task_id.as_bytes());
    out.extend_from_slice(b",\"event\":\"");
    out.extend_from_slice(change.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"database\":");
    govalues::write_str(out, change.table.database.as_bytes());
    out.extend_from_slice(b",\"table\":");
    govalues::write_str(out, change.table.table.as_bytes());
    out.extend_from_slice(b",\"primary_id\":");
    write_primary_id_go(out, change, before, after);
    match change.kind {
        ChangeKind::Insert | ChangeKind::Read => {
            out.extend_from_slice(b",\"data\":");
            write_row_go(out, shape, after);
        }
        ChangeKind::Delete => {
            out.extend_from_slice(b",\"data\":");
            write_row_go(out, shape, before);
        }
        ChangeKind::Update => {
            out.extend_from_slice(b",\"old_data\":");
            write_row_go(out, shape, before);
            out.extend_from_slice(b",\"new_data\":");
            write_row_go(out, shape, after);
            write_changed(out, change, shape);
        }
    }
    out.extend_from_slice(b",\"timestamp\":");
    let (secs, nanos) = match &change.go {
        Some(go) => go.processed_at,
        None => (i64::from(change.timestamp), 0),
    };
    govalues::write_time_json(out, govalues::local_zone(), secs, nanos);
    out.extend_from_slice(b",\"position\":{\"file\":");
    govalues::write_str(out, change.position.file.as_bytes());
    out.extend_from_slice(b",\"pos\":");
    write_json(out, &change.position.pos);
    out.push(b'}');
    if let Some(gtid) = &change.gtid {
        out.extend_from_slice(b",\"gtid\":");
        govalues::write_str(out, gtid.as_bytes());
    }
    write_txn(out, txn);
    out.push(b'}');
}

/// A row image as Go's `json.Marshal` of the Go tool's `map[string]interface{}`:
/// keys in byte order. Columns absent from the image (MINIMAL row image, which the
/// Go tool refused to run with) are left out, as in the default mode.
fn write_row_go(out: &mut Vec<u8>, shape: &Shape, image: Option<&RowImage>) {
    let columns = &shape.table.columns;
    let Some(image) = image else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut order: Vec<(std::borrow::Cow<'_, str>, &Value)> = image
        .iter()
        .enumerate()
        .filter(|(i, _)| shape.keeps(*i))
        .filter_map(|(i, slot)| slot.as_ref().map(|v| (column_name(columns, i), v)))
        .collect();
    order.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (n, (name, value)) in order.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        govalues::write_str(out, name.as_bytes());
        out.push(b':');
        write_value_go(out, value);
    }
    out.push(b'}');
}

/// The Go tool's `GetPrimaryKey` (internal/monitor/monitor.go): the new row's (for a
/// delete the deleted row's) value of a one-column PRIMARY KEY; an object of the
/// columns of a composite one (keys sorted); without a primary key the value of a
/// column named exactly `id`; else `null`.
fn write_primary_id_go(
    out: &mut Vec<u8>,
    change: &RowChange,
    before: Option<&RowImage>,
    after: Option<&RowImage>,
) {
    fn get(img: Option<&RowImage>, i: usize) -> Option<&Value> {
        img.and_then(|img| img.get(i)?.as_ref())
    }
    let value = |i: usize| get(after, i).or_else(|| get(before, i));
    let write = |out: &mut Vec<u8>, v: Option<&Value>| match v {
        Some(v) => write_value_go(out, v),
        None => out.extend_from_slice(b"null"),
    };
    let columns = &change.table.columns;
    match change.table.primary_key.as_slice() {
        [] => write(out, columns.iter().position(|c| c == "id").and_then(value)),
        [single] => write(out, value(*single)),
        pk => {
            let mut keys: Vec<(std::borrow::Cow<'_, str>, usize)> =
                pk.iter().map(|&i| (column_name(columns, i), i)).collect();
            keys.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (n, (name, i)) in keys.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                govalues::write_str(out, name.as_bytes());
                out.push(b':');
                write(out, value(*i));
            }
            out.push(b'}');
        }
    }
}

/// One value as Go's `encoding/json` writes the Go value go-mysql produced.
fn write_value_go(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int(v) => write_json(out, v),
        Value::UInt(v) => write_json(out, v),
        Value::Float(v) => govalues::write_float(out, f64::from(*v), true),
        Value::Double(v) => govalues::write_float(out, *v, false),
        Value::Text(s) => govalues::write_str(out, s.as_bytes()),
        Value::Bytes(b) => write_base64(out, b),
        Value::Json(j) => govalues::write_json(out, j),
    }
}

/// A table's columns as one task sends them.
struct Shape<'a> {
    table: &'a TableSchema,
    columns: &'a Columns,
}

impl Shape<'_> {
    #[inline]
    fn keeps(&self, i: usize) -> bool {
        // No look-up at all for the common case of every column.
        matches!(self.columns, Columns::All) || self.columns.keeps(self.table, i)
    }
}

/// The SPEC's `primary_id` of a change: the value of a single-column key, an object
/// of the key columns for a composite key, `null` without a primary key.
///
/// Key values come from the new row, or the old one where the new row lacks them (a
/// delete; an update logged with `binlog_row_image=MINIMAL`, whose new image holds
/// only the changed columns). A key column in neither image is `null`.
pub fn primary_id(change: &RowChange) -> serde_json::Value {
    let pk = &change.table.primary_key;
    match pk.as_slice() {
        [] => serde_json::Value::Null,
        [single] => key_value(change, *single).map_or(serde_json::Value::Null, value_to_json),
        _ => {
            let mut map = serde_json::Map::new();
            for &i in pk {
                let value = key_value(change, i).map_or(serde_json::Value::Null, value_to_json);
                map.insert(column_name(&change.table.columns, i).into_owned(), value);
            }
            serde_json::Value::Object(map)
        }
    }
}

/// A column value as the JSON the envelope carries (for callers that need a
/// `serde_json::Value`; the envelope itself is written without one).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Int(v) => J::from(*v),
        Value::UInt(v) => J::from(*v),
        // Through the f32's shortest decimal form, so that 1.1f32 stays 1.1 and does
        // not become 1.100000023841858.
        Value::Float(v) => v
            .to_string()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(J::Null, J::Number),
        Value::Double(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Json(j) => j.clone(),
    }
}

/// Writes any serializable value with serde_json's compact formatter.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and strings, numbers and `serde_json::Value`
    // always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A JSON string, escaped.
fn write_str(out: &mut Vec<u8>, s: &str) {
    write_json(out, s);
}

/// The name of column `i`. The schema code guarantees one name per column; should an
/// image ever be wider than the name list, the value goes out under `@<index>` (the
/// `mysql` crate's convention for unnamed columns) rather than being dropped or
/// shifted onto another column's name.
fn column_name(columns: &[String], i: usize) -> std::borrow::Cow<'_, str> {
    match columns.get(i) {
        Some(name) => std::borrow::Cow::Borrowed(name),
        None => std::borrow::Cow::Owned(format!("@{i}")),
    }
}

/// A row image as an object of the columns it holds and the task sends; absent columns
/// are left out.
fn write_row(out: &mut Vec<u8>, shape: &Shape, image: Option<&RowImage>) {
    let columns = &shape.table.columns;
    let Some(image) = image else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'{');
    let mut first = true;
    for (i, slot) in image.iter().enumerate() {
        let Some(value) = slot else { continue };
        if !shape.keeps(i) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, &column_name(columns, i));
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn key_value(change: &RowChange, column: usize) -> Option<&Value> {
    image_value(&change.after, column).or_else(|| image_value(&change.before, column))
}

fn image_value(image: &Option<RowImage>, column: usize) -> Option<&Value> {
    image.as_ref()?.get(column)?.as_ref()
}

fn write_primary_id(out: &mut Vec<u8>, change: &RowChange) {
    let pk = &change.table.primary_key;
    match pk.as_slice() {
        [] => out.extend_from_slice(b"null"),
        [single] => match key_value(change, *single) {
            Some(v) => write_value(out, v),
            None => out.extend_from_slice(b"null"),
        },
        _ => {
            out.push(b'{');
            for (n, &i) in pk.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(out, &column_name(&change.table.columns, i));
                out.push(b':');
                match key_value(change, i) {
                    Some(v) => write_value(out, v),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        }
    }
}

/// One value as JSON (SPEC section 3; the decoder already shaped it).
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int(v) => write_json(out, v),
        Value::UInt(v) => write_json(out, v),
        // serde_json writes an f32 in its shortest round-trip form (1.1) and
        // non-finite numbers (which no MySQL column holds) as null.
        Value::Float(v) => write_json(out, v),
        Value::Double(v) => write_json(out, v),
        Value::Text(s) => write_str(out, s),
        Value::Bytes(b) => write_base64(out, b),
        Value::Json(j) => write_json(out, j),
    }
}

/// Standard base64 with padding, as a JSON string (its alphabet needs no escaping).
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    match base64::encoded_len(bytes.len(), true) {
        Some(n) => {
            let start = out.len();
            out.resize(start + n, 0);
            // The slice is exactly the encoded length, so this cannot fail; if it
            // somehow did, fall back to the allocating encoder.
            if engine.encode_slice(bytes, &mut out[start..]).is_err() {
                out.truncate(start);
                out.extend_from_slice(engine.encode(bytes).as_bytes());
            }
        }
        None => out.extend_from_slice(engine.encode(bytes).as_bytes()),
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{BinlogPosition, TableSchema};
    use std::sync::Arc;

    fn schema(columns: &[&str], primary_key: Vec<usize>) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            database: "shop".into(),
            table: "users".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            primary_key,
        })
    }

    fn change(
        kind: ChangeKind,
        table: Arc<TableSchema>,
        before: Option<RowImage>,
        after: Option<RowImage>,
        gtid: Option<&str>,
    ) -> RowChange {
        RowChange {
            kind,
            table,
            before,
            after,
            id: "mysql-bin.000003:18825:0".into(),
            position: BinlogPosition::new("mysql-bin.000003", 18825),
            timestamp: 1_795_428_900, // 2026-11-23T10:15:00Z
            gtid: gtid.map(Arc::from),
            go: None,
        }
    }

    fn envelope(task: &str, c: &RowChange) -> String {
        let mut out = Vec::new();
        write_envelope(&mut out, task, c, &Form::default(), None);
        String::from_utf8(out).unwrap()
    }

    fn row(values: Vec<Value>) -> RowImage {
        values.into_iter().map(Some).collect()
    }

    #[test]
    fn insert_envelope_exact_bytes() {
        let c = change(
            ChangeKind::Insert,
            schema(&["id", "name", "email"], vec![0]),
            None,
            Some(row(vec![
                Value::Int(42),
                Value::Text("Ann".into()),
                Value::Null,
            ])),
            None,
        );
        assert_eq!(
            envelope("user_monitor", &c),
            r#"{"id":"mysql-bin.000003:18825:0","task_id":"user_monitor","event":"insert","database":"shop","table":"users","primary_id":42,"data":{"id":42,"name":"Ann","email":null},"timestamp":"2026-11-23T10:15:00Z","position":{"file":"mysql-bin.000003","pos":18825}}"#
        );
    }

    #[test]
    fn a_tasks_columns_leave_the_others_out_but_keep_the_key() {
        let c = change(
            ChangeKind::Update,
            schema(&["id", "name", "password_hash"], vec![0]),
            Some(row(vec![
                Value::Int(7),
                Value::Text("Ann".into()),
                Value::Text("secret-hash-1".into()),
            ])),
            Some(row(vec![
                Value::Int(7),
                Value::Text("Ann".into()),
                Value::Text("secret-hash-2".into()),
            ])),
            None,
        );
        let mut out = Vec::new();
        write_envelope(
            &mut out,
            "t",
            &c,
            &Form {
                columns: Columns::Except(vec!["password_hash".into()]),
                ..Form::default()
            },
            None,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("secret-hash"), "{text}");
        assert!(
            text.contains(r#""new_data":{"id":7,"name":"Ann"},"changed":[]"#),
            "{text}"
        );
        let mut out = Vec::new();
        write_envelope(
            &mut out,
            "t",
            &c,
            &Form {
                columns: Columns::Only(vec!["name".into()]),
                ..Form::default()
            },
            None,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""old_data":{"id":7,"name":"Ann"}"#),
            "{text}"
        );
    }

    #[test]
    fn update_envelope_with_gtid_exact_bytes() {
        let c = change(
            ChangeKind::Update,
            schema(&["id", "name", "email"], vec![0]),
            Some(row(vec![
                Value::Int(42),
                Value::Text("Ann".into()),
                Value::Text("a@x.io".into()),
            ])),
            Some(row(vec![
                Value::Int(42),
                Value::Text("Ann B".into()),
                Value::Text("a@x.io".into()),
            ])),
            Some("0-1-1077"),
        );
        assert_eq!(
            envelope("user_monitor", &c),
            r#"{"id":"mysql-bin.000003:18825:0","task_id":"user_monitor","event":"update","database":"shop","table":"users","primary_id":42,"old_data":{"id":42,"name":"Ann","email":"a@x.io"},"new_data":{"id":42,"name":"Ann B","email":"a@x.io"},"changed":["name"],"timestamp":"2026-11-23T10:15:00Z","position":{"file":"mysql-bin.000003","pos":18825},"gtid":"0-1-1077"}"#
        );
        // It parses, and the SPEC's example reads the same.
        let v: serde_json::Value = serde_json::from_str(&envelope("user_monitor", &c)).unwrap();
        assert_eq!(v["new_data"]["name"], "Ann B");
    }

    #[test]
    fn delete_envelope_uses_the_deleted_row() {
        let c = change(
            ChangeKind::Delete,
            schema(&["id", "name"], vec![0]),
            Some(row(vec![Value::UInt(7), Value::Text("x".into())])),
            None,
            None,
        );
        assert_eq!(
            envelope("t", &c),
            r#"{"id":"mysql-bin.000003:18825:0","task_id":"t","event":"delete","database":"shop","table":"users","primary_id":7,"data":{"id":7,"name":"x"},"timestamp":"2026-11-23T10:15:00Z","position":{"file":"mysql-bin.000003","pos":18825}}"#
        );
    }

    #[test]
    fn composite_key_is_an_object_in_key_order() {
        let c = change(
            ChangeKind::Insert,
            schema(&["a", "order_id", "line"], vec![2, 1]),
            None,
            Some(row(vec![
                Value::Text("z".into()),
                Value::Int(10),
                Value::Int(3),
            ])),
            None,
        );
        let s = envelope("t", &c);
        assert!(
            s.contains(r#""primary_id":{"line":3,"order_id":10},"data":"#),
            "{s}"
        );
        assert_eq!(
            primary_id(&c),
            serde_json::json!({"line": 3, "order_id": 10})
        );
    }

    #[test]
    fn no_primary_key_is_null() {
        let c = change(
            ChangeKind::Insert,
            schema(&["a"], vec![]),
            None,
            Some(row(vec![Value::Int(1)])),
            None,
        );
        assert!(envelope("t", &c).contains(r#""primary_id":null,"data":{"a":1}"#));
        assert_eq!(primary_id(&c), serde_json::Value::Null);
    }

    #[test]
    fn absent_columns_are_left_out_and_the_key_falls_back_to_the_old_row() {
        // MINIMAL image: the update's new row holds only the changed column.
        let c = change(
            ChangeKind::Update,
            schema(&["id", "name", "email"], vec![0]),
            Some(vec![Some(Value::Int(5)), None, None]),
            Some(vec![None, Some(Value::Text("new".into())), None]),
            None,
        );
        let s = envelope("t", &c);
        assert!(
            s.contains(r#""primary_id":5,"old_data":{"id":5},"new_data":{"name":"new"},"#),
            "{s}"
        );
        assert_eq!(primary_id(&c), serde_json::json!(5));
    }

    #[test]
    fn values_of_every_shape() {
        let c = change(
            ChangeKind::Insert,
            schema(&["u", "i", "f", "d", "b", "j", "t", "n"], vec![]),
            None,
            Some(row(vec![
                Value::UInt(18446744073709551615),
                Value::Int(-9223372036854775808),
                Value::Float(1.1),
                Value::Double(0.1),
                Value::Bytes(vec![0, 1, 2, 0xfe, 0xff]),
                Value::Json(serde_json::json!({"k": [1, "two", null]})),
                Value::Text("1234.50".into()),
                Value::Null,
            ])),
            None,
        );
        let s = envelope("t", &c);
        assert!(
            s.contains(r#""data":{"u":18446744073709551615,"i":-9223372036854775808,"f":1.1,"d":0.1,"b":"AAEC/v8=","j":{"k":[1,"two",null]},"t":"1234.50","n":null}"#),
            "{s}"
        );
    }

    #[test]
    fn base64_padding_and_empty_bytes() {
        for (bytes, expected) in [
            (&b""[..], "\"\""),
            (b"f", "\"Zg==\""),
            (b"fo", "\"Zm8=\""),
            (b"foo", "\"Zm9v\""),
            (b"foob", "\"Zm9vYg==\""),
        ] {
            let mut out = Vec::new();
            write_value(&mut out, &Value::Bytes(bytes.to_vec()));
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn strings_are_escaped() {
        let nasty = "q\"b\\s/\n\r\t\u{0}\u{1f}\u{7f} é 😀 \u{2028}";
        let c = change(
            ChangeKind::Insert,
            schema(&["na\"me\n"], vec![0]),
            None,
            Some(row(vec![Value::Text(nasty.into())])),
            Some("3E11FA47-71CA-11E1-9E33-C80AA9429562:23"),
        );
        let s = envelope("task \"x\"", &c);
        assert!(s.contains(r#""task_id":"task \"x\"""#), "{s}");
        assert!(
            s.contains(r#"{"na\"me\n":"q\"b\\s/\n\r\t\u0000\u001f"#),
            "{s}"
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["data"]["na\"me\n"], nasty);
        assert_eq!(v["primary_id"], nasty);
        assert_eq!(v["gtid"], "3E11FA47-71CA-11E1-9E33-C80AA9429562:23");
    }

    #[test]
    fn batch_is_an_array_of_envelopes() {
        let t = schema(&["id"], vec![0]);
        let a = change(
            ChangeKind::Insert,
            t.clone(),
            None,
            Some(row(vec![Value::Int(1)])),
            None,
        );
        let b = change(
            ChangeKind::Delete,
            t,
            Some(row(vec![Value::Int(2)])),
            None,
            None,
        );
        let mut out = Vec::new();
        write_batch(&mut out, "t", [(&a, None), (&b, None)], &Form::default());
        let expected = format!("[{},{}]", envelope("t", &a), envelope("t", &b));
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let mut out = Vec::new();
        write_batch(&mut out, "t", std::iter::empty(), &Form::default());
        assert_eq!(out, b"[]");
    }

    #[test]
    fn envelope_appends_to_existing_bytes() {
        let c = change(
            ChangeKind::Insert,
            schema(&["id"], vec![0]),
            None,
            Some(row(vec![Value::Int(1)])),
            None,
        );
        let mut out = b"prefix".to_vec();
        write_envelope(&mut out, "t", &c, &Form::default(), None);
        assert!(out.starts_with(b"prefix{\"id\":"));
    }

    #[test]
    fn value_to_json_matches_the_envelope() {
        assert_eq!(value_to_json(&Value::Float(1.1)).to_string(), "1.1");
        assert_eq!(
            value_to_json(&Value::UInt(u64::MAX)).to_string(),
            "18446744073709551615"
        );
        assert_eq!(
            value_to_json(&Value::Bytes(b"hi".to_vec())),
            serde_json::json!("aGk=")
        );
        assert_eq!(
            value_to_json(&Value::Double(f64::NAN)),
            serde_json::Value::Null
        );
    }

    fn go_form() -> Form {
        Form {
            values: ValueMode::Go,
            ..Form::default()
        }
    }

    fn with_go(mut c: RowChange, before: Option<RowImage>, after: Option<RowImage>) -> RowChange {
        c.go = Some(Box::new(crate::event::GoRow {
            before,
            after,
            processed_at: (1_795_428_900, 123_456_000),
        }));
        c
    }

    fn go_envelope(c: &RowChange) -> serde_json::Value {
        let mut out = Vec::new();
        write_envelope(&mut out, "t", c, &go_form(), None);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn default_mode_is_write_envelope_and_go_without_go_row_uses_spec_values() {
        let c = change(
            ChangeKind::Insert,
            schema(&["id", "p"], vec![0]),
            None,
            Some(row(vec![Value::Int(1), Value::Double(2.0)])),
            None,
        );
        let mut out = Vec::new();
        write_envelope(&mut out, "t", &c, &Form::default(), None);
        assert_eq!(String::from_utf8(out).unwrap(), envelope("t", &c));
        let mut out = Vec::new();
        write_batch(&mut out, "t", [(&c, None), (&c, None)], &go_form());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[1]["data"]["p"].to_string(), "2");
        assert_eq!(v[0]["primary_id"], 1);
    }

    #[test]
    fn go_envelope_exact_bytes_keys_sorted_values_in_go_form() {
        let c = with_go(
            change(
                ChangeKind::Insert,
                schema(&["id", "b", "a<"], vec![0]),
                None,
                Some(row(vec![
                    Value::Int(1),
                    Value::Text("x".into()),
                    Value::Null,
                ])),
                None,
            ),
            None,
            Some(row(vec![
                Value::Int(1),
                Value::Bytes(b"hi".to_vec()),
                Value::Double(1234.0),
            ])),
        );
        let mut out = Vec::new();
        write_envelope(&mut out, "t&1", &c, &go_form(), None);
        let mut ts = Vec::new();
        govalues::write_time_json(&mut ts, govalues::local_zone(), 1_795_428_900, 123_456_000);
        let ts = String::from_utf8(ts).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                r#"{{"id":"mysql-bin.000003:18825:0","task_id":"t\u00261","event":"insert","database":"shop","table":"users","primary_id":1,"data":{{"a\u003c":1234,"b":"aGk=","id":1}},"timestamp":{ts},"position":{{"file":"mysql-bin.000003","pos":18825}}}}"#
            )
        );
        assert!(
            ts.starts_with("\"2026-11-23T") && ts.contains(".123456"),
            "{ts}"
        );
    }

    #[test]
    fn go_primary_id_rules() {
        // A one-column primary key: its value, from the new row.
        let t = schema(&["k", "id"], vec![0]);
        let img = |k: i64, id: i64| Some(row(vec![Value::Int(k), Value::Int(id)]));
        let c = with_go(
            change(ChangeKind::Update, t.clone(), None, None, None),
            img(1, 10),
            img(2, 20),
        );
        assert_eq!(go_envelope(&c)["primary_id"], 2);
        // A delete: the deleted row's.
        let c = with_go(
            change(ChangeKind::Delete, t, None, None, None),
            img(3, 30),
            None,
        );
        assert_eq!(go_envelope(&c)["primary_id"], 3);
        // Composite: an object of the key columns, written with sorted keys.
        let t = schema(&["z", "a", "v"], vec![0, 1]);
        let c = with_go(
            change(ChangeKind::Insert, t, None, None, None),
            None,
            Some(row(vec![
                Value::Int(1),
                Value::Text("p".into()),
                Value::Int(0),
            ])),
        );
        let mut out = Vec::new();
        write_envelope(&mut out, "t", &c, &go_form(), None);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#""primary_id":{"a":"p","z":1}"#));
        // No primary key but an `id` column: its value.
        let t = schema(&["name", "id"], vec![]);
        let c = with_go(
            change(ChangeKind::Insert, t, None, None, None),
            None,
            Some(row(vec![Value::Text("n".into()), Value::Int(7)])),
        );
        assert_eq!(go_envelope(&c)["primary_id"], 7);
        // `ID` is not `id` (a Go map lookup is case-sensitive); no key, no id: null.
        for cols in [&["name", "ID"][..], &["name", "x"][..]] {
            let c = with_go(
                change(ChangeKind::Insert, schema(cols, vec![]), None, None, None),
                None,
                Some(row(vec![Value::Text("n".into()), Value::Int(7)])),
            );
            assert_eq!(go_envelope(&c)["primary_id"], serde_json::Value::Null);
        }
        // The default mode keeps the SPEC's null for a table without a primary key.
        let c = change(
            ChangeKind::Insert,
            schema(&["name", "id"], vec![]),
            None,
            Some(row(vec![Value::Text("n".into()), Value::Int(7)])),
            None,
        );
        assert!(envelope("t", &c).contains(r#""primary_id":null"#));
    }

    #[test]
    fn go_values_of_every_shape() {
        let c = with_go(
            change(
                ChangeKind::Insert,
                schema(&["f", "d", "u", "i", "j", "n"], vec![]),
                None,
                None,
                None,
            ),
            None,
            Some(row(vec![
                Value::Float(1.1),
                Value::Double(1e21),
                Value::UInt(u64::MAX),
                Value::Int(-1),
                Value::Text(r#"{"a":1}"#.into()),
                Value::Null,
            ])),
        );
        let mut out = Vec::new();
        write_envelope(&mut out, "t", &c, &go_form(), None);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(r#""data":{"d":1e+21,"f":1.1,"i":-1,"j":"{\"a\":1}","n":null,"u":18446744073709551615}"#),
            "{s}"
        );
    }
}
