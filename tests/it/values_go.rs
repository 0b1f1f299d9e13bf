//! `values: go` end to end (issue 15): every column type of SPEC section 3 written by a
//! real MariaDB and received from the real binary in the Go tool's shapes. Each expected
//! value is computed here from the raw value by the Go rule of README "values: go"
//! (base64 of the bytes, the ENUM index from the definition, local time in `TZ`, …),
//! never by calling pikachu's encoder.

use crate::harness::{task, MariaDb, Pikachu, Receiver, Setup, SpawnOptions};
use base64::Engine as _;
use serde_json::{json, Value};

/// A zone with a constant offset (+05:30 since 1945), so that local times are known.
const TZ: &str = "Asia/Kolkata";
const OFFSET_SECS: i64 = 5 * 3600 + 30 * 60;

const TABLES: &str = "\
CREATE DATABASE g;
CREATE TABLE g.ints (id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, mi MEDIUMINT,
  miu MEDIUMINT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED);
CREATE TABLE g.nums (id INT PRIMARY KEY, d DECIMAL(10,2), d0 DECIMAL(5,0), f FLOAT,
  db DOUBLE, b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR);
CREATE TABLE g.times (id INT PRIMARY KEY, d DATE, dt DATETIME, dt3 DATETIME(3),
  ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, t TIME, t2 TIME(2), t6 TIME(6));
CREATE TABLE g.texts (id INT PRIMARY KEY, c CHAR(10), vc VARCHAR(20), tx TEXT,
  l1 VARCHAR(10) CHARACTER SET latin1, l1t TEXT CHARACTER SET latin1) DEFAULT CHARSET utf8mb4;
CREATE TABLE g.bins (id INT PRIMARY KEY, bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('a','b','c'), s SET('a','b','c'), j JSON, g POINT);
CREATE TABLE g.pair (a INT, b VARCHAR(5), v INT, PRIMARY KEY (b, a));
CREATE TABLE g.withid (id INT, name VARCHAR(5));
CREATE TABLE g.nokey (x INT, y VARCHAR(5))";

const ENUM_E: [&str; 3] = ["a", "b", "c"];
const SET_S: [&str; 3] = ["a", "b", "c"];

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A Go `string` of `bytes` as JSON decodes it: each byte outside UTF-8 is U+FFFD.
fn go_string(bytes: &[u8]) -> Value {
    let mut s = String::new();
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        for _ in chunk.invalid() {
            s.push('\u{FFFD}');
        }
    }
    json!(s)
}

/// go-mysql's ENUM: the 1-based index of the label in the definition.
fn enum_index(label: &str) -> Value {
    json!(ENUM_E.iter().position(|l| *l == label).unwrap() + 1)
}

/// go-mysql's SET: the bitmask of the labels, bit n for the n-th member.
fn set_bits(labels: &[&str]) -> Value {
    json!(labels
        .iter()
        .map(|l| 1i64 << SET_S.iter().position(|m| m == l).unwrap())
        .sum::<i64>())
}

/// go-mysql's TIMESTAMP: the instant (UTC civil time given) in the local zone, as
/// `2006-01-02 15:04:05` plus `frac`.
fn local(utc: (i32, u8, u8, u8, u8, u8), frac: &str) -> Value {
    let (y, mo, d, h, mi, s) = utc;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(mo).unwrap(), d).unwrap();
    let t = date.with_hms(h, mi, s).unwrap().assume_utc() + time::Duration::seconds(OFFSET_SECS);
    json!(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{frac}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The point as stored: SRID, then WKB (little-endian, type 1, x, y).
fn point(x: f64, y: f64) -> Vec<u8> {
    let mut v = 0u32.to_le_bytes().to_vec();
    v.push(1);
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    v
}

fn find<'a>(events: &'a [Value], task: &str, event: &str, id: i64) -> &'a Value {
    events
        .iter()
        .find(|e| {
            e["task_id"] == task
                && e["event"] == event
                && (e["data"]["id"] == id || e["new_data"]["id"] == id)
        })
        .unwrap_or_else(|| panic!("no {event} of {task} id {id} among {} events", events.len()))
}

/// Compares a row column by column, so that a failure names every wrong column.
fn assert_row(what: &str, got: &Value, want: Value) {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        panic!("{what}: not an object: {got}");
    };
    let mut wrong = Vec::new();
    for (k, wv) in w {
        match g.get(k) {
            Some(gv) if gv == wv => {}
            other => wrong.push(format!(
                "  {k}: got {}, want {wv}",
                other.map_or("(absent)".into(), |v| v.to_string())
            )),
        }
    }
    for k in g.keys().filter(|k| !w.contains_key(*k)) {
        wrong.push(format!("  {k}: unexpected, got {}", g[k]));
    }
    assert!(
        wrong.is_empty(),
        "{what}: wrong columns:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_column_type_in_the_go_tools_shape() {
    let db = MariaDb::start();
    db.exec(TABLES);
    let rx = Receiver::always(200);
    // `values: go` for every task from the top level; `bins_default` keeps the SPEC's
    // values for the same table as `bins`.
    let mut tasks = rx.task_per_table(&[
        "ints", "nums", "times", "texts", "bins", "pair", "withid", "nokey",
    ]);
    tasks.push_str(&task("bins_default", "bins", &rx.url("/bins_default")));
    tasks.push_str("    values: default\n");
    let setup = Setup::new(&db, "g", &tasks, "values: go\n");
    let _p = Pikachu::spawn_with(
        &setup,
        &SpawnOptions {
            env: vec![("TZ".into(), TZ.into())],
            ..Default::default()
        },
    );

    db.exec(
        "INSERT INTO g.ints VALUES
         (1, -128, 255, -8388608, 16777215, -9223372036854775808, 18446744073709551615),
         (2, NULL, NULL, NULL, NULL, NULL, NULL)",
    );
    db.exec(
        "INSERT INTO g.nums VALUES
         (1, 1234.5, -12345, 1.1, 0.1, b'1', b'1010101010', 0xFFFFFFFFFFFFFFFF, 2024),
         (2, -0.05, 0, -3.5, 1e21, b'0', b'0000000001', 1, 0)",
    );
    db.exec(
        "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
         INSERT INTO g.times VALUES
         (1, '2024-02-29', '2024-02-29 13:45:01', '2024-02-29 13:45:01.12',
          '2024-02-29 13:45:01', '2024-02-29 23:45:01.123456', '-838:59:59', '01:02:03',
          '-00:00:01'),
         (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
          '0000-00-00 00:00:00', '00:00:00', '00:00:00.50', '100:00:00.000001')",
    );
    db.exec(
        "INSERT INTO g.texts VALUES
         (1, 'ab', '<a&b> 😀', 'text ✓', 'café', 'Größe'),
         (2, '', '', '', '', '')",
    );
    db.exec(
        "INSERT INTO g.bins VALUES
         (1, 'ab', x'00ff01', x'DEADBEEF', 'b', 'c,a', '{\"k\": [1, 2]}', ST_GeomFromText('POINT(1 2)')),
         (2, NULL, '', '', 'c', '', '[]', NULL)",
    );
    db.exec("INSERT INTO g.pair VALUES (1, 'x', 10)");
    db.exec("UPDATE g.pair SET v = 11 WHERE a = 1");
    db.exec("INSERT INTO g.withid VALUES (7, 'n')");
    db.exec("DELETE FROM g.withid");
    db.exec("INSERT INTO g.nokey VALUES (5, 'q')");

    let events = setup.settled_events(&rx, &db, 2 + 2 + 2 + 2 + 2 + 2 + 2 + 2 + 1);
    setup.assert_no_dead_letters();

    // Integers: exact, unsigned after canal's handleUnsigned.
    assert_row(
        "ints 1",
        &find(&events, "ints", "insert", 1)["data"],
        json!({"id": 1, "ti": -128, "tiu": 255, "mi": -8388608, "miu": 16777215,
               "bi": i64::MIN, "biu": u64::MAX}),
    );
    assert_row(
        "ints 2",
        &find(&events, "ints", "insert", 2)["data"],
        json!({"id": 2, "ti": null, "tiu": null, "mi": null, "miu": null, "bi": null, "biu": null}),
    );

    // DECIMAL: go-mysql's string (UseDecimal off); FLOAT/DOUBLE numbers; BIT as int64.
    assert_row(
        "nums 1",
        &find(&events, "nums", "insert", 1)["data"],
        json!({"id": 1, "d": "1234.50", "d0": "-12345", "f": 1.1, "db": 0.1, "b1": 1,
               "b10": 0b1010101010, "b64": u64::MAX as i64, "y": 2024}),
    );
    assert_row(
        "nums 2",
        &find(&events, "nums", "insert", 2)["data"],
        json!({"id": 2, "d": "-0.05", "d0": "0", "f": -3.5, "db": 1e21, "b1": 0, "b10": 1,
               "b64": 1, "y": 0}),
    );

    // Times: TIMESTAMP in the local zone without offset; TIME's fraction only when not
    // zero; zero dates as go-mysql's formatZeroTime.
    assert_row(
        "times 1",
        &find(&events, "times", "insert", 1)["data"],
        json!({"id": 1, "d": "2024-02-29", "dt": "2024-02-29 13:45:01",
               "dt3": "2024-02-29 13:45:01.120",
               "ts": local((2024, 2, 29, 13, 45, 1), ""),
               "ts6": local((2024, 2, 29, 23, 45, 1), ".123456"),
               "t": "-838:59:59", "t2": "01:02:03", "t6": "-00:00:01"}),
    );
    assert_row(
        "times 2",
        &find(&events, "times", "insert", 2)["data"],
        json!({"id": 2, "d": "0000-00-00", "dt": "0000-00-00 00:00:00",
               "dt3": "0000-00-00 00:00:00.000", "ts": "0000-00-00 00:00:00",
               "ts6": "0000-00-00 00:00:00.000000", "t": "00:00:00", "t2": "00:00:00.50",
               "t6": "100:00:00.000001"}),
    );

    // Text: CHAR/VARCHAR as Go strings of the column's bytes, TEXT as base64 of them.
    assert_row(
        "texts 1",
        &find(&events, "texts", "insert", 1)["data"],
        json!({"id": 1, "c": "ab", "vc": "<a&b> 😀", "tx": b64("text ✓".as_bytes()),
               "l1": go_string(b"caf\xe9"), "l1t": b64(b"Gr\xf6\xdfe")}),
    );
    assert_row(
        "texts 2",
        &find(&events, "texts", "insert", 2)["data"],
        json!({"id": 2, "c": "", "vc": "", "tx": "", "l1": "", "l1t": ""}),
    );
    // Go's json.Marshal escapes <, > and & in strings.
    let raw: String = rx
        .requests()
        .iter()
        .filter(|r| r.path == "/texts")
        .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
        .collect();
    assert!(raw.contains(r#""vc":"\u003ca\u0026b\u003e "#), "{raw}");

    // Binary strings as Go strings (BINARY(4) as the binlog has it: MariaDB writes it
    // without its trailing zero bytes), BLOB and MariaDB's JSON (a LONGTEXT) as base64,
    // ENUM as its index, SET as its bitmask, GEOMETRY as base64 of SRID + WKB.
    let bins1 = &find(&events, "bins", "insert", 1)["data"];
    assert_row(
        "bins 1",
        bins1,
        json!({"id": 1, "bn": go_string(b"ab"), "vb": go_string(b"\x00\xff\x01"),
               "bl": b64(&[0xDE, 0xAD, 0xBE, 0xEF]), "e": enum_index("b"),
               "s": set_bits(&["c", "a"]), "j": b64(br#"{"k": [1, 2]}"#),
               "g": b64(&point(1.0, 2.0))}),
    );
    assert_row(
        "bins 2",
        &find(&events, "bins", "insert", 2)["data"],
        json!({"id": 2, "bn": null, "vb": "", "bl": "", "e": enum_index("c"), "s": 0,
               "j": b64(b"[]"), "g": null}),
    );
    // The same rows for a task with `values: default`: the SPEC's values.
    let spec = &find(&events, "bins_default", "insert", 1)["data"];
    assert_eq!(spec["e"], "b");
    assert_eq!(spec["s"], "a,c");
    assert_eq!(spec["vb"], b64(b"\x00\xff\x01"));
    assert_eq!(spec["j"], r#"{"k": [1, 2]}"#);
    assert_eq!(
        find(&events, "bins_default", "insert", 1)["id"],
        find(&events, "bins", "insert", 1)["id"],
        "both tasks got the same change"
    );
    // The default `timestamp` is the commit time in UTC; Go's is the processing time
    // in the local zone with nanoseconds.
    let spec_ts = find(&events, "bins_default", "insert", 1)["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(spec_ts.ends_with('Z') && spec_ts.len() == 20, "{spec_ts}");

    // primary_id: the one key column; a composite key as an object; without a primary
    // key the `id` column; with neither null.
    assert_eq!(find(&events, "ints", "insert", 1)["primary_id"], 1);
    let pair: Vec<&Value> = events.iter().filter(|e| e["task_id"] == "pair").collect();
    assert_eq!(pair.len(), 2);
    for e in &pair {
        assert_eq!(e["primary_id"], json!({"a": 1, "b": "x"}), "{e}");
    }
    assert_eq!(pair[1]["old_data"], json!({"a": 1, "b": "x", "v": 10}));
    assert_eq!(pair[1]["new_data"], json!({"a": 1, "b": "x", "v": 11}));
    assert_eq!(find(&events, "withid", "insert", 7)["primary_id"], 7);
    assert_eq!(find(&events, "withid", "delete", 7)["primary_id"], 7);
    let nokey = events.iter().find(|e| e["task_id"] == "nokey").unwrap();
    assert!(nokey["primary_id"].is_null(), "{nokey}");
    assert_eq!(nokey["data"], json!({"x": 5, "y": "q"}));

    // timestamp: Go's time.Time JSON in TZ, at processing time (within the test's run).
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for e in &events {
        if e["task_id"] == "bins_default" {
            continue;
        }
        let ts = e["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+05:30"), "{ts}");
        let (secs, frac) = parse_local(ts);
        assert!(
            (now - 600..=now).contains(&secs),
            "{ts} is not within the last 10 minutes"
        );
        assert!(
            frac.len() <= 9 && !frac.ends_with('0'),
            "{ts}: nanoseconds without trailing zeros"
        );
    }
}

/// Unix seconds and the fraction digits of `YYYY-MM-DDTHH:MM:SS[.f]+05:30`.
fn parse_local(ts: &str) -> (i64, String) {
    let body = ts.strip_suffix("+05:30").unwrap();
    let (main, frac) = body.split_once('.').unwrap_or((body, ""));
    let n = |r: std::ops::Range<usize>| main[r].parse::<i64>().unwrap();
    let date = time::Date::from_calendar_date(
        n(0..4) as i32,
        time::Month::try_from(n(5..7) as u8).unwrap(),
        n(8..10) as u8,
    )
    .unwrap();
    let t = date
        .with_hms(n(11..13) as u8, n(14..16) as u8, n(17..19) as u8)
        .unwrap()
        .assume_utc();
    (t.unix_timestamp() - OFFSET_SECS, frac.to_owned())
}

/// `pikachu check` names the tasks of each value mode.
#[test]
fn check_prints_the_value_mode_of_each_task() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE g; CREATE TABLE g.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let mut tasks = task("old_receiver", "t", &rx.url("/a"));
    tasks.push_str("    values: go\n");
    tasks.push_str(&task("new_receiver", "t", &rx.url("/b")));
    let setup = Setup::new(&db, "g", &tasks, "");
    let stdout = setup.check();
    assert!(
        stdout.lines().any(|l| l.starts_with("OK")
            && l.contains("values: go")
            && l.contains("old_receiver")
            && !l.contains("new_receiver")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("OK")
            && l.contains("values: default")
            && l.contains("new_receiver")),
        "{stdout}"
    );
}
