//! MySQL's partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): a JSON column
//! of a PARTIAL_UPDATE_ROWS after image may hold a list of changes (replace, insert or
//! remove the value at a JSON path) instead of the new document. Applied here to the
//! before image's document, they give the full after value that receivers get.
//!
//! Pure data: bytes and `serde_json` values in, a value or a reason out. The paths MySQL
//! logs are simple (`$`, `.key`, `."quoted key"`, `[n]`), never wildcards.

use serde_json::Value;

/// One logged change.
#[derive(Debug, PartialEq)]
pub enum Diff {
    Replace(Vec<Step>, Value),
    Insert(Vec<Step>, Value),
    Remove(Vec<Step>),
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The changes of one column: `(operation u8, path, [value])…` until the bytes end. The
/// path is a length-encoded string, the value length-encoded binary JSON, which `json`
/// decodes.
pub fn parse(
    mut bytes: &[u8],
    json: fn(&[u8]) -> Result<Value, String>,
) -> Result<Vec<Diff>, String> {
    let mut diffs = Vec::new();
    while let Some((&op, rest)) = bytes.split_first() {
        bytes = rest;
        let path_len = lenenc(&mut bytes)?;
        let path = take(&mut bytes, path_len)?;
        let path = std::str::from_utf8(path).map_err(|_| "a JSON path is not UTF-8".to_owned())?;
        let steps = parse_path(path)?;
        let value = |bytes: &mut &[u8]| -> Result<Value, String> {
            let len = lenenc(bytes)?;
            json(take(bytes, len)?)
        };
        diffs.push(match op {
            0 => Diff::Replace(steps, value(&mut bytes)?),
            1 => Diff::Insert(steps, value(&mut bytes)?),
            2 => Diff::Remove(steps),
            other => return Err(format!("unknown partial JSON operation {other}")),
        });
    }
    Ok(diffs)
}

/// Applies `diffs` in order to `doc`.
pub fn apply(doc: &mut Value, diffs: Vec<Diff>) -> Result<(), String> {
    for diff in diffs {
        match diff {
            Diff::Replace(path, value) if path.is_empty() => *doc = value,
            Diff::Replace(path, value) => {
                *at(doc, &path).ok_or_else(|| missing(&path))? = value;
            }
            Diff::Insert(path, value) => {
                let (last, parent) = split(&path)?;
                match (at(doc, parent).ok_or_else(|| missing(parent))?, last) {
                    (Value::Object(map), Step::Key(k)) => {
                        map.insert(k.clone(), value);
                    }
                    // As JSON_ARRAY_INSERT: past the end appends.
                    (Value::Array(items), Step::Index(i)) => {
                        items.insert((*i).min(items.len()), value)
                    }
                    _ => return Err(format!("cannot insert at {}", show(&path))),
                }
            }
            Diff::Remove(path) => {
                let (last, parent) = split(&path)?;
                let removed = match (at(doc, parent).ok_or_else(|| missing(parent))?, last) {
                    (Value::Object(map), Step::Key(k)) => map.remove(k).is_some(),
                    (Value::Array(items), Step::Index(i)) if *i < items.len() => {
                        items.remove(*i);
                        true
                    }
                    _ => false,
                };
                if !removed {
                    return Err(missing(&path));
                }
            }
        }
    }
    Ok(())
}

fn split(path: &[Step]) -> Result<(&Step, &[Step]), String> {
    path.split_last()
        .ok_or_else(|| "cannot insert or remove the whole document".to_owned())
}

fn at<'v>(doc: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    path.iter().try_fold(doc, |v, step| match (v, step) {
        (Value::Object(map), Step::Key(k)) => map.get_mut(k),
        (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
        _ => None,
    })
}

fn missing(path: &[Step]) -> String {
    format!(
        "the before image has no value at {} (it does not match the changes)",
        show(path)
    )
}

fn show(path: &[Step]) -> String {
    let mut s = "$".to_owned();
    for step in path {
        match step {
            Step::Key(k) => s.push_str(&format!(".{k:?}")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// `$.a."b c"[2]`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("JSON path {path:?}: {why}");
    let mut rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("does not start with $"))?;
    let mut steps = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(steps);
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("[ without ]"))?;
            let index = r[..end]
                .trim()
                .parse()
                .map_err(|_| bad("an array index is not a number"))?;
            steps.push(Step::Index(index));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let r = r.trim_start();
            if let Some(quoted) = r.strip_prefix('"') {
                let mut key = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c)) => key.push(c),
                            None => return Err(bad("unterminated quoted key")),
                        },
                        Some((_, c)) => key.push(c),
                        None => return Err(bad("unterminated quoted key")),
                    }
                };
                steps.push(Step::Key(key));
                rest = &quoted[end + 1..];
            } else {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = r[..end].trim();
                if key.is_empty() || key == "*" {
                    return Err(bad("an empty or wildcard key"));
                }
                steps.push(Step::Key(key.to_owned()));
                rest = &r[end..];
            }
        } else {
            return Err(bad("expected . or ["));
        }
    }
}

fn lenenc(bytes: &mut &[u8]) -> Result<usize, String> {
    let (&first, rest) = bytes
        .split_first()
        .ok_or_else(|| "partial JSON changes end early".to_owned())?;
    *bytes = rest;
    let width = match first {
        0..=250 => return Ok(usize::from(first)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => {
            return Err(format!(
                "bad length prefix {first:#x} in partial JSON changes"
            ))
        }
    };
    let raw = take(bytes, width)?;
    let n = raw
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    usize::try_from(n).map_err(|_| "a partial JSON length is too large".to_owned())
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err("partial JSON changes end early".to_owned());
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Step {
        Step::Key(k.to_owned())
    }

    #[test]
    fn paths_as_mysql_logs_them() {
        assert_eq!(parse_path("$").unwrap(), []);
        assert_eq!(parse_path("$.age").unwrap(), [key("age")]);
        assert_eq!(
            parse_path("$.a.\"b c\"[2].d").unwrap(),
            [key("a"), key("b c"), Step::Index(2), key("d")]
        );
        assert_eq!(parse_path(r#"$."q\"uote""#).unwrap(), [key("q\"uote")]);
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$.*").is_err());
        assert!(parse_path("$[x]").is_err());
    }

    #[test]
    fn changes_apply_in_order() {
        let mut doc = json!({"name": "Joe", "tags": ["a", "c"], "old": 1});
        apply(
            &mut doc,
            vec![
                Diff::Replace(vec![key("name")], json!("Jo")),
                Diff::Insert(vec![key("tags"), Step::Index(1)], json!("b")),
                Diff::Insert(vec![key("tags"), Step::Index(99)], json!("z")),
                Diff::Insert(vec![key("age")], json!(26)),
                Diff::Remove(vec![key("old")]),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"name": "Jo", "tags": ["a", "b", "c", "z"], "age": 26})
        );
        let e = apply(
            &mut doc,
            vec![Diff::Replace(vec![key("nope"), key("x")], json!(1))],
        )
        .unwrap_err();
        assert!(e.contains("no value at $.\"nope\".\"x\""), "{e}");
        apply(&mut doc, vec![Diff::Replace(vec![], json!([1]))]).unwrap();
        assert_eq!(doc, json!([1]));
    }

    #[test]
    fn the_logged_bytes_are_read() {
        // REPLACE $.age with the binary JSON int16 26 (type 5), as json.binlog.000001
        // logs it; then REMOVE $.x.
        let mut bytes = vec![0u8, 5];
        bytes.extend_from_slice(b"$.age");
        bytes.extend_from_slice(&[3, 5, 26, 0]);
        bytes.extend_from_slice(&[2, 3]);
        bytes.extend_from_slice(b"$.x");
        // Binary JSON itself is decode.rs's: here an int16 is all there is.
        let int16 = |b: &[u8]| match b {
            [5, lo, hi] => Ok(json!(i16::from_le_bytes([*lo, *hi]))),
            _ => Err("not an int16".to_owned()),
        };
        assert_eq!(
            parse(&bytes, int16).unwrap(),
            [
                Diff::Replace(vec![key("age")], json!(26)),
                Diff::Remove(vec![key("x")])
            ]
        );
        assert!(parse(&[0, 5, b'$'], int16).is_err(), "cut short");
        assert!(parse(&[7, 1, b'$'], int16).is_err(), "unknown operation");
    }
}
