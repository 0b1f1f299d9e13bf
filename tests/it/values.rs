//! SPEC section 3 end to end: every column type of the type table, with its edge values,
//! written by a real MariaDB (`binlog_row_metadata=FULL`) and read back from the webhook
//! the real binary sends. Each value is compared exactly, not just for presence.

use crate::harness::{MariaDb, Receiver, Setup};
use base64::Engine as _;
use serde_json::{json, Value};

const TABLES: &str = "\
CREATE DATABASE v;
CREATE TABLE v.ints (id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT,
  siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, bo BOOL);
CREATE TABLE v.nums (id INT PRIMARY KEY, d DECIMAL(10,2), d0 DECIMAL(5,0),
  dbig DECIMAL(65,30), f FLOAT, db DOUBLE, b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR,
  ub BIGINT UNSIGNED);
CREATE TABLE v.times (id INT PRIMARY KEY, d DATE, dt DATETIME, dt3 DATETIME(3),
  dt6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, t TIME, t2 TIME(2), t3 TIME(3),
  t6 TIME(6));
CREATE TABLE v.texts (id INT PRIMARY KEY, c CHAR(10), c100 CHAR(100), vc VARCHAR(20),
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, u3 VARCHAR(10) CHARACTER SET utf8mb3,
  l1 VARCHAR(10) CHARACTER SET latin1, l1c CHAR(5) CHARACTER SET latin1,
  l1t TEXT CHARACTER SET latin1, a VARCHAR(10) CHARACTER SET ascii) DEFAULT CHARSET utf8mb4;
CREATE TABLE v.bins (id INT PRIMARY KEY, bn BINARY(4), vb VARBINARY(10), tb TINYBLOB,
  bl BLOB, lb LONGBLOB, e ENUM('a','b','c'), s SET('a','b','c'), j JSON, g POINT,
  gg GEOMETRY);
CREATE TABLE v.pair (a INT, b VARCHAR(5), v INT, PRIMARY KEY (b, a));
CREATE TABLE v.nokey (x INT, y VARCHAR(5))";

/// Wide values: 2-byte VARCHAR lengths, a 70 000-byte MEDIUMTEXT, whole 9-digit DECIMAL
/// groups, latin1 labels, 2-byte ENUM indexes and the 64th SET member.
fn wide_table() -> String {
    let e300: Vec<String> = (1..=300).map(|i| format!("'l{i}'")).collect();
    let s64: Vec<String> = (1..=64).map(|i| format!("'m{i}'")).collect();
    format!(
        "CREATE TABLE v.wide (id INT PRIMARY KEY, lv VARCHAR(300), big MEDIUMTEXT, d9 DECIMAL(18,9),
           el ENUM('é','€','ü') CHARACTER SET latin1, sl SET('é','ß') CHARACTER SET latin1,
           e300 ENUM({}), s64 SET({}), lbl LONGBLOB)",
        e300.join(","),
        s64.join(",")
    )
}

fn tasks(rx: &Receiver) -> String {
    rx.task_per_table(&[
        "ints", "nums", "times", "texts", "bins", "pair", "nokey", "wide",
    ])
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The stored form of a POINT: SRID (LE u32) then WKB (byte order 1 = LE, type 1, x, y).
fn point(srid: u32, x: f64, y: f64) -> Vec<u8> {
    let mut v = srid.to_le_bytes().to_vec();
    v.push(1);
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    v
}

/// The insert of `table` whose `id` column is `id`.
fn inserted<'a>(events: &'a [Value], table: &str, id: i64) -> &'a Value {
    events
        .iter()
        .find(|e| e["table"] == table && e["event"] == "insert" && e["data"]["id"] == id)
        .unwrap_or_else(|| panic!("no insert of {table} id {id} among {} events", events.len()))
}

/// Compares a row column by column first, so that a failure names every wrong column.
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
    assert_eq!(got, &want, "{what}");
}

/// One or more rows of every type into the tables of `TABLES` and `wide_table` (the
/// keyed ones): 4 ints, 4 nums, 4 times, 4 texts, 3 bins and 2 wide rows.
fn insert_every_type(db: &MariaDb) {
    db.exec(
        "INSERT INTO v.ints VALUES
         (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
          -9223372036854775808, 18446744073709551615, TRUE),
         (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, FALSE),
         (3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 1),
         (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    );
    db.exec(
        "INSERT INTO v.nums VALUES
         (1, 1234.5, -12345, '99999999999999999999999999999999999.999999999999999999999999999999',
          1.1, 0.1, b'1', b'1010101010', 0xFFFFFFFFFFFFFFFF, 2024, 18446744073709551615),
         (2, -1234.56, 0, '-0.000000000000000000000000000001', -3.5, -2.5e-300, b'0',
          b'0000000001', 1, 0, 0),
         (3, 0, -1, 0, 16777217, 1.7976931348623157e308, NULL, NULL, NULL, 2155, NULL),
         (4, -0.05, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1901, 1)",
    );
    // Zero and invalid dates need a permissive sql_mode; TIMESTAMPs are written in
    // +05:00 and must come out in UTC.
    db.exec(
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; SET SESSION time_zone = '+05:00';
         INSERT INTO v.times VALUES
         (1, '2024-02-29', '2024-02-29 13:45:01', '2024-02-29 13:45:01.12',
          '2024-02-29 13:45:01.000001', '2024-02-29 18:45:01', '2024-02-29 18:45:01.123456',
          '-838:59:59', '-00:00:00.01', '-12:34:56.789', '100:00:00.000001'),
         (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
          '0000-00-00 00:00:00', '0000-00-00 00:00:00', '838:59:59', '-1:02:03.5',
          '838:59:59.999', '-838:59:59.999999'),
         (3, '2024-02-31', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999',
          '2024-00-00 00:00:00.5', '1970-01-01 05:00:01', '2038-01-19 08:14:07.999999',
          '00:00:00', '00:00:00.5', '-00:00:00.001', '-00:00:01'),
         (4, '2024-00-15', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    );
    db.exec(
        "INSERT INTO v.texts VALUES
         (1, 'ab', 'wide 😀', 'emoji 😀👍', 'tiny', 'text ✓', 'medium', 'ñ日本', 'café', '€uro',
          'Größe', 'plain'),
         (2, '', '', '', '', '', '', '', '', '', '', ''),
         (3, 'y  ', 'z ', 'x  ', 'q\"uote', 'a\\\\b\\nc\\td', '\\0nul', 'x', 'ÿ', 'Š', '‰', '~'),
         (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    );
    db.exec(
        "SET SESSION sql_mode = '';
         INSERT INTO v.bins VALUES
         (1, 'ab', x'0001', x'ff', x'DEADBEEF', 'long', 'b', 'c,a', '{\"k\": [1, 2]}',
          ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-0.5 3)', 4326)),
         (2, x'00000000', '', '', '', '', 'zzz', '', '[]', NULL, NULL),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    );
    let all64: Vec<String> = (1..=64).map(|i| format!("m{i}")).collect();
    db.exec(&format!(
        "INSERT INTO v.wide VALUES
         (1, REPEAT('é', 200), REPEAT('x', 70000), -123456789.123456789, '€', 'ß,é', 'l300',
          '{}', REPEAT(x'00ff', 40000)),
         (2, REPEAT('a', 300), '', 0.000000001, 'é', '', 'l1', 'm64', '')",
        all64.join(",")
    ));
}

#[test]
fn every_column_type_arrives_as_the_spec_says() {
    let db = MariaDb::start();
    db.exec(TABLES);
    db.exec(&wide_table());
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "v", &tasks(&rx), "");
    let _p = setup.start();

    insert_every_type(&db);
    db.exec("INSERT INTO v.pair VALUES (1, 'x', 10)");
    db.exec("UPDATE v.pair SET v = 11 WHERE a = 1");
    db.exec("DELETE FROM v.pair WHERE a = 1");
    db.exec("INSERT INTO v.nokey VALUES (5, 'q')");
    db.exec("UPDATE v.nokey SET y = 'r'");
    db.exec("DELETE FROM v.nokey");

    let events = setup.settled_events(&rx, &db, 4 + 4 + 4 + 4 + 3 + 2 + 3 + 3);
    setup.assert_no_dead_letters();

    // Integers: exact, unsigned maxima never negative, signed minima kept.
    assert_row(
        "ints 1",
        &inserted(&events, "ints", 1)["data"],
        json!({"id": 1, "ti": -128, "tiu": 255, "si": -32768, "siu": 65535, "mi": -8388608,
               "miu": 16777215, "i": -2147483648i64, "iu": 4294967295u64,
               "bi": i64::MIN, "biu": 18446744073709551615u64, "bo": 1}),
    );
    assert_row(
        "ints 2",
        &inserted(&events, "ints", 2)["data"],
        json!({"id": 2, "ti": 127, "tiu": 0, "si": 32767, "siu": 0, "mi": 8388607, "miu": 0,
               "i": 2147483647, "iu": 0, "bi": i64::MAX, "biu": 0, "bo": 0}),
    );
    assert_row(
        "ints 3",
        &inserted(&events, "ints", 3)["data"],
        json!({"id": 3, "ti": -1, "tiu": 1, "si": -1, "siu": 1, "mi": -1, "miu": 1, "i": -1,
               "iu": 1, "bi": -1, "biu": 1, "bo": 1}),
    );
    assert_row(
        "ints 4",
        &inserted(&events, "ints", 4)["data"],
        json!({"id": 4, "ti": null, "tiu": null, "si": null, "siu": null, "mi": null,
               "miu": null, "i": null, "iu": null, "bi": null, "biu": null, "bo": null}),
    );
    assert_eq!(inserted(&events, "ints", 1)["primary_id"], json!(1));

    // DECIMAL as strings with the column's scale; FLOAT in its f32 shortest form.
    assert_row(
        "nums 1",
        &inserted(&events, "nums", 1)["data"],
        json!({"id": 1, "d": "1234.50", "d0": "-12345",
               "dbig": "99999999999999999999999999999999999.999999999999999999999999999999",
               "f": 1.1, "db": 0.1, "b1": 1, "b10": 682, "b64": 18446744073709551615u64,
               "y": 2024, "ub": 18446744073709551615u64}),
    );
    assert_row(
        "nums 2",
        &inserted(&events, "nums", 2)["data"],
        json!({"id": 2, "d": "-1234.56", "d0": "0",
               "dbig": "-0.000000000000000000000000000001", "f": -3.5, "db": -2.5e-300,
               "b1": 0, "b10": 1, "b64": 1, "y": 0, "ub": 0}),
    );
    assert_row(
        "nums 3",
        &inserted(&events, "nums", 3)["data"],
        json!({"id": 3, "d": "0.00", "d0": "-1",
               "dbig": "0.000000000000000000000000000000", "f": 16777216.0,
               "db": 1.7976931348623157e308, "b1": null, "b10": null, "b64": null, "y": 2155, "ub": null}),
    );
    assert_row(
        "nums 4",
        &inserted(&events, "nums", 4)["data"],
        json!({"id": 4, "d": "-0.05", "d0": null, "dbig": null, "f": null, "db": null,
               "b1": null, "b10": null, "b64": null, "y": 1901, "ub": 1}),
    );
    // The JSON text itself: 1.1 written as an f32 must not widen to 1.100000023841858.
    let raw = rx
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
        .collect::<String>();
    assert!(raw.contains("\"f\":1.1,"), "FLOAT 1.1 is written as 1.1");

    // Temporal types: fraction digits exactly fsp; TIMESTAMP in UTC; zero dates as shown.
    assert_row(
        "times 1",
        &inserted(&events, "times", 1)["data"],
        json!({"id": 1, "d": "2024-02-29", "dt": "2024-02-29 13:45:01",
               "dt3": "2024-02-29 13:45:01.120", "dt6": "2024-02-29 13:45:01.000001",
               "ts": "2024-02-29T13:45:01Z", "ts6": "2024-02-29T13:45:01.123456Z",
               "t": "-838:59:59", "t2": "-00:00:00.01", "t3": "-12:34:56.789",
               "t6": "100:00:00.000001"}),
    );
    assert_row(
        "times 2",
        &inserted(&events, "times", 2)["data"],
        json!({"id": 2, "d": "0000-00-00", "dt": "0000-00-00 00:00:00",
               "dt3": "0000-00-00 00:00:00.000", "dt6": "0000-00-00 00:00:00.000000",
               "ts": "0000-00-00 00:00:00", "ts6": "0000-00-00 00:00:00.000000",
               "t": "838:59:59", "t2": "-01:02:03.50", "t3": "838:59:59.999",
               "t6": "-838:59:59.999999"}),
    );
    assert_row(
        "times 3",
        &inserted(&events, "times", 3)["data"],
        json!({"id": 3, "d": "2024-02-31", "dt": "1000-01-01 00:00:00",
               "dt3": "9999-12-31 23:59:59.999", "dt6": "2024-00-00 00:00:00.500000",
               "ts": "1970-01-01T00:00:01Z", "ts6": "2038-01-19T03:14:07.999999Z",
               "t": "00:00:00", "t2": "00:00:00.50", "t3": "-00:00:00.001", "t6": "-00:00:01.000000"}),
    );
    assert_row(
        "times 4",
        &inserted(&events, "times", 4)["data"],
        json!({"id": 4, "d": "2024-00-15", "dt": null, "dt3": null, "dt6": null, "ts": null,
               "ts6": null, "t": null, "t2": null, "t3": null, "t6": null}),
    );

    // Text in its character set: utf8mb4 emoji, utf8mb3, latin1 (cp1252), ascii.
    assert_row(
        "texts 1",
        &inserted(&events, "texts", 1)["data"],
        json!({"id": 1, "c": "ab", "c100": "wide 😀", "vc": "emoji 😀👍", "tt": "tiny",
               "tx": "text ✓", "mt": "medium", "u3": "ñ日本", "l1": "café", "l1c": "€uro",
               "l1t": "Größe", "a": "plain"}),
    );
    assert_row(
        "texts 2",
        &inserted(&events, "texts", 2)["data"],
        json!({"id": 2, "c": "", "c100": "", "vc": "", "tt": "", "tx": "", "mt": "", "u3": "",
               "l1": "", "l1c": "", "l1t": "", "a": ""}),
    );
    // CHAR drops trailing spaces as the client shows it; VARCHAR keeps them.
    assert_row(
        "texts 3",
        &inserted(&events, "texts", 3)["data"],
        json!({"id": 3, "c": "y", "c100": "z", "vc": "x  ", "tt": "q\"uote", "tx": "a\\b\nc\td",
               "mt": "\u{0}nul", "u3": "x", "l1": "ÿ", "l1c": "Š", "l1t": "‰", "a": "~"}),
    );
    assert_row(
        "texts 4",
        &inserted(&events, "texts", 4)["data"],
        json!({"id": 4, "c": null, "c100": null, "vc": null, "tt": null, "tx": null, "mt": null,
               "u3": null, "l1": null, "l1c": null, "l1t": null, "a": null}),
    );

    // Bytes as base64 (BINARY(n) always n bytes), ENUM/SET labels, MariaDB JSON as a
    // string, GEOMETRY as SRID + WKB.
    assert_row(
        "bins 1",
        &inserted(&events, "bins", 1)["data"],
        json!({"id": 1, "bn": b64(b"ab\0\0"), "vb": b64(&[0, 1]), "tb": b64(&[0xff]),
               "bl": b64(&[0xDE, 0xAD, 0xBE, 0xEF]), "lb": b64(b"long"), "e": "b", "s": "a,c",
               "j": "{\"k\": [1, 2]}", "g": b64(&point(0, 1.0, 2.0)),
               "gg": b64(&point(4326, -0.5, 3.0))}),
    );
    assert_eq!(inserted(&events, "bins", 1)["data"]["bn"], "YWIAAA==");
    assert_row(
        "bins 2",
        &inserted(&events, "bins", 2)["data"],
        json!({"id": 2, "bn": "AAAAAA==", "vb": "", "tb": "", "bl": "", "lb": "", "e": "",
               "s": "", "j": "[]", "g": null, "gg": null}),
    );
    assert_row(
        "bins 3",
        &inserted(&events, "bins", 3)["data"],
        json!({"id": 3, "bn": null, "vb": null, "tb": null, "bl": null, "lb": null, "e": null,
               "s": null, "j": null, "g": null, "gg": null}),
    );

    let all64: Vec<String> = (1..=64).map(|i| format!("m{i}")).collect();
    assert_row(
        "wide 1",
        &inserted(&events, "wide", 1)["data"],
        json!({"id": 1, "lv": "é".repeat(200), "big": "x".repeat(70000),
               "d9": "-123456789.123456789", "el": "€", "sl": "é,ß", "e300": "l300",
               "s64": all64.join(","), "lbl": b64(&[0u8, 0xff].repeat(40000))}),
    );
    assert_row(
        "wide 2",
        &inserted(&events, "wide", 2)["data"],
        json!({"id": 2, "lv": "a".repeat(300), "big": "", "d9": "0.000000001", "el": "é",
               "sl": "", "e300": "l1", "s64": "m64", "lbl": ""}),
    );

    // Update and delete images; a composite key as an object, no key as null.
    let of = |table: &str| {
        events
            .iter()
            .filter(|e| e["table"] == table)
            .cloned()
            .collect::<Vec<_>>()
    };
    let pair = of("pair");
    let kinds: Vec<&str> = pair
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["insert", "update", "delete"],
        "one key's changes in commit order"
    );
    for e in &pair {
        assert_eq!(e["primary_id"], json!({"a": 1, "b": "x"}), "{e}");
    }
    assert_eq!(pair[0]["data"], json!({"a": 1, "b": "x", "v": 10}));
    assert_eq!(pair[1]["old_data"], json!({"a": 1, "b": "x", "v": 10}));
    assert_eq!(pair[1]["new_data"], json!({"a": 1, "b": "x", "v": 11}));
    assert!(
        pair[1].get("data").is_none(),
        "an update has no data: {}",
        pair[1]
    );
    assert_eq!(pair[2]["data"], json!({"a": 1, "b": "x", "v": 11}));
    assert!(pair[2].get("old_data").is_none() && pair[2].get("new_data").is_none());
    // Key object in key order (b, a), not column order.
    let keys: Vec<&String> = pair[0]["primary_id"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(keys, ["b", "a"]);

    let nokey = of("nokey");
    let kinds: Vec<&str> = nokey
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["insert", "update", "delete"]);
    for e in &nokey {
        assert!(
            e.get("primary_id").is_some_and(Value::is_null),
            "primary_id null: {e}"
        );
    }
    assert_eq!(nokey[0]["data"], json!({"x": 5, "y": "q"}));
    assert_eq!(nokey[1]["old_data"], json!({"x": 5, "y": "q"}));
    assert_eq!(nokey[1]["new_data"], json!({"x": 5, "y": "r"}));
    assert_eq!(nokey[2]["data"], json!({"x": 5, "y": "r"}));
}

/// Old-format temporal columns (`mysql56_temporal_format=OFF`: MariaDB before 10.3
/// wrote them, upgraded servers still have them): the binlog does not carry their
/// precision, which comes from `information_schema`.
#[test]
fn old_format_temporal_columns_keep_their_fraction_digits() {
    let db = MariaDb::start_with(&["--mysql56-temporal-format=OFF"]);
    db.exec(
        "CREATE DATABASE v; CREATE TABLE v.old (id INT PRIMARY KEY, t TIME, t3 TIME(3), t6 TIME(6),
           dt DATETIME, dt2 DATETIME(2), dt6 DATETIME(6), ts TIMESTAMP NULL, ts4 TIMESTAMP(4) NULL)",
    );
    let rx = Receiver::always(200);
    let tasks = format!(
        "  - task_id: old\n    table_name: old\n    events: [insert]\n    callback_url: {}\n",
        rx.url("/old")
    );
    let setup = Setup::new(&db, "v", &tasks, "");
    let _p = setup.start();
    db.exec(
        "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
         INSERT INTO v.old VALUES
         (1, '-838:59:59', '-12:34:56.789', '100:00:00.000001', '2024-02-29 13:45:01',
          '2024-02-29 13:45:01.12', '9999-12-31 23:59:59.999999', '2024-02-29 13:45:01',
          '2024-02-29 13:45:01.5'),
         (2, '838:59:59', '-00:00:00.001', '-838:59:59.999999', '0000-00-00 00:00:00',
          '0000-00-00 00:00:00', '1000-01-01 00:00:00.000001', '0000-00-00 00:00:00',
          '0000-00-00 00:00:00')",
    );
    let events = setup.settled_events(&rx, &db, 2);
    setup.assert_no_dead_letters();
    assert_row(
        "old 1",
        &inserted(&events, "old", 1)["data"],
        json!({"id": 1, "t": "-838:59:59", "t3": "-12:34:56.789", "t6": "100:00:00.000001",
               "dt": "2024-02-29 13:45:01", "dt2": "2024-02-29 13:45:01.12",
               "dt6": "9999-12-31 23:59:59.999999", "ts": "2024-02-29T13:45:01Z",
               "ts4": "2024-02-29T13:45:01.5000Z"}),
    );
    assert_row(
        "old 2",
        &inserted(&events, "old", 2)["data"],
        json!({"id": 2, "t": "838:59:59", "t3": "-00:00:00.001", "t6": "-838:59:59.999999",
               "dt": "0000-00-00 00:00:00", "dt2": "0000-00-00 00:00:00.00",
               "dt6": "1000-01-01 00:00:00.000001", "ts": "0000-00-00 00:00:00",
               "ts4": "0000-00-00 00:00:00.0000"}),
    );
}

/// A backfill reads the same rows with a SELECT instead of the binlog: every value, and
/// `primary_id`, must come out exactly as the stream's insert of the row said it, or a
/// receiver would see a row change when nothing changed.
#[test]
fn backfilled_rows_are_encoded_exactly_as_streamed_inserts() {
    let db = MariaDb::start();
    db.exec(TABLES);
    db.exec(&wide_table());
    let rx = Receiver::always(200);
    let tables = ["ints", "nums", "times", "texts", "bins", "wide"];
    let setup = Setup::new(&db, "v", &rx.task_per_table(&tables), "");
    let _p = setup.start();
    insert_every_type(&db);
    let inserts = setup.settled_events(&rx, &db, 21);
    for table in tables {
        setup.backfill(&["--task", table]);
    }
    let all = rx.wait_for_events(42, std::time::Duration::from_secs(60));
    setup.assert_no_dead_letters();
    let mut compared = 0;
    for read in all.iter().filter(|e| e["event"] == "read") {
        let table = read["table"].as_str().unwrap();
        let id = read["data"]["id"].as_i64().unwrap();
        let insert = inserted(&inserts, table, id);
        assert_eq!(read["primary_id"], insert["primary_id"], "{table} {id}");
        assert_row(
            &format!("{table} {id}"),
            &read["data"],
            insert["data"].clone(),
        );
        compared += 1;
    }
    assert_eq!(compared, 21);
}
