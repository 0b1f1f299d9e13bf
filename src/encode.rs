//! Value encoding: a `RowChange` as the SPEC's webhook JSON (section 2 and 3).
//!
//! Pure functions from plain data to bytes; no I/O, no knowledge of workers or HTTP.
//! The envelope is written straight into the caller's buffer (no intermediate
//! `serde_json::Value`): this runs once per delivered row. Strings go through
//! serde_json's serializer, so escaping is right for every input.

use base64::Engine as _;

use crate::clock::write_rfc3339_utc;
use crate::event::{ChangeKind, RowChange, RowImage, Value};

/// Appends the webhook envelope of `change` for task `task_id` to `out`.
///
/// Fields in this order: `id`, `task_id`, `event`, `database`, `table`, `primary_id`,
/// then `data` (insert: the new row; delete: the deleted row) or `old_data` +
/// `new_data` (update), then `timestamp`, `position` and, when there is one, `gtid`.
pub fn write_envelope(out: &mut Vec<u8>, task_id: &str, change: &RowChange) {
    let columns = &change.table.columns;
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
            write_row(out, columns, change.after.as_ref());
        }
        ChangeKind::Delete => {
            out.extend_from_slice(b",\"data\":");
            write_row(out, columns, change.before.as_ref());
        }
        ChangeKind::Update => {
            out.extend_from_slice(b",\"old_data\":");
            write_row(out, columns, change.before.as_ref());
            out.extend_from_slice(b",\"new_data\":");
            write_row(out, columns, change.after.as_ref());
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
    out.push(b'}');
}

/// Appends a JSON array of envelopes (a batch) to `out`.
pub fn write_batch<'a>(
    out: &mut Vec<u8>,
    task_id: &str,
    changes: impl IntoIterator<Item = &'a RowChange>,
) {
    out.push(b'[');
    for (i, change) in changes.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_envelope(out, task_id, change);
    }
    out.push(b']');
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

/// A row image as an object of the columns it holds; absent columns are left out.
fn write_row(out: &mut Vec<u8>, columns: &[String], image: Option<&RowImage>) {
    let Some(image) = image else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'{');
    let mut first = true;
    for (i, slot) in image.iter().enumerate() {
        let Some(value) = slot else { continue };
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
        }
    }

    fn envelope(task: &str, c: &RowChange) -> String {
        let mut out = Vec::new();
        write_envelope(&mut out, task, c);
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
            r#"{"id":"mysql-bin.000003:18825:0","task_id":"user_monitor","event":"update","database":"shop","table":"users","primary_id":42,"old_data":{"id":42,"name":"Ann","email":"a@x.io"},"new_data":{"id":42,"name":"Ann B","email":"a@x.io"},"timestamp":"2026-11-23T10:15:00Z","position":{"file":"mysql-bin.000003","pos":18825},"gtid":"0-1-1077"}"#
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
        write_batch(&mut out, "t", [&a, &b]);
        let expected = format!("[{},{}]", envelope("t", &a), envelope("t", &b));
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let mut out = Vec::new();
        write_batch(&mut out, "t", std::iter::empty());
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
        write_envelope(&mut out, "t", &c);
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
}
