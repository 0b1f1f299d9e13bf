//! MariaDB's INET6, INET4 and UUID columns end to end: the binlog carries them as plain
//! BINARY(16)/BINARY(4), yet the webhook must show each value the way the mariadb client
//! shows it (SPEC section 3), with names from the binlog (`binlog_row_metadata=FULL`) and
//! without them (`MINIMAL`, the information_schema fallback). Real BINARY columns of the
//! same lengths stay base64: the type decides, not the length.

use crate::harness::{MariaDb, Receiver, Setup};
use serde_json::{json, Value};

const TABLES: &str = "\
CREATE DATABASE m;
CREATE TABLE m.addr (id INT PRIMARY KEY, a INET6, b INET4, u UUID, r16 BINARY(16),
  r4 BINARY(4));
CREATE TABLE m.keyed (u UUID PRIMARY KEY, n INT)";

const V1: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
const V4: &str = "9f1e2d3c-4b5a-4c6d-8e7f-0123456789ab";

fn tasks(rx: &Receiver) -> String {
    rx.task_per_table(&["addr", "keyed"])
}

fn find<'a>(
    events: &'a [Value],
    table: &str,
    kind: &str,
    pred: impl Fn(&Value) -> bool,
) -> &'a Value {
    events
        .iter()
        .find(|e| e["table"] == table && e["event"] == kind && pred(e))
        .unwrap_or_else(|| panic!("no {kind} of {table} among {events:#?}"))
}

fn insert_of(events: &[Value], id: i64) -> &Value {
    &find(events, "addr", "insert", |e| e["data"]["id"] == id)["data"]
}

/// Writes the rows, waits for their webhooks and checks every value exactly, against
/// literals and against what `SELECT` returns for the same row.
fn check_values(db: &MariaDb) {
    db.exec(TABLES);
    let rx = Receiver::always(200);
    let setup = Setup::new(db, "m", &tasks(&rx), "");
    let _p = setup.start();

    db.exec(&format!(
        "INSERT INTO m.addr VALUES
         (1, '2001:db8::1', '192.0.2.1', '{V1}', x'00112233445566778899aabbccddeeff', x'0a000001'),
         (2, '::ffff:192.0.2.1', '0.0.0.0', '{V4}', x'00000000000000000000000000000000', x'00000000'),
         (3, '::', '255.255.255.255', '00000000-0000-0000-0000-000000000000', NULL, NULL),
         (4, '1:0:0:1:0:0:0:1', '10.0.0.0', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', NULL, NULL),
         (5, NULL, NULL, NULL, NULL, NULL),
         (6, '::a00:1', '127.0.0.1', UUID(), NULL, NULL);
         UPDATE m.addr SET a = 'fe80::1', b = '198.51.100.7', u = '{V4}' WHERE id = 5;
         DELETE FROM m.addr WHERE id = 4;
         INSERT INTO m.keyed VALUES ('{V1}', 1), ('{V4}', 2);
         UPDATE m.keyed SET n = 3 WHERE u = '{V4}'"
    ));
    let events = setup.settled_events(&rx, db, 6 + 1 + 1 + 2 + 1);
    setup.assert_no_dead_letters();

    assert_eq!(
        insert_of(&events, 1),
        &json!({"id": 1, "a": "2001:db8::1", "b": "192.0.2.1", "u": V1,
                "r16": "ABEiM0RVZneImaq7zN3u/w==", "r4": "CgAAAQ=="})
    );
    // Trailing zero bytes are not in the binlog; the values still have all their bytes.
    assert_eq!(
        insert_of(&events, 2),
        &json!({"id": 2, "a": "::ffff:192.0.2.1", "b": "0.0.0.0", "u": V4,
                "r16": "AAAAAAAAAAAAAAAAAAAAAA==", "r4": "AAAAAA=="})
    );
    assert_eq!(
        insert_of(&events, 3),
        &json!({"id": 3, "a": "::", "b": "255.255.255.255",
                "u": "00000000-0000-0000-0000-000000000000", "r16": null, "r4": null})
    );
    assert_eq!(
        insert_of(&events, 4),
        &json!({"id": 4, "a": "1:0:0:1::1", "b": "10.0.0.0",
                "u": "ffffffff-ffff-ffff-ffff-ffffffffffff", "r16": null, "r4": null})
    );
    assert_eq!(
        insert_of(&events, 5),
        &json!({"id": 5, "a": null, "b": null, "u": null, "r16": null, "r4": null})
    );
    assert_eq!(insert_of(&events, 6)["a"], "::10.0.0.1");

    let upd = find(&events, "addr", "update", |e| e["new_data"]["id"] == 5);
    assert_eq!(upd["old_data"]["u"], Value::Null);
    assert_eq!(upd["new_data"]["a"], "fe80::1");
    assert_eq!(upd["new_data"]["b"], "198.51.100.7");
    assert_eq!(upd["new_data"]["u"], V4);
    let del = find(&events, "addr", "delete", |e| e["data"]["id"] == 4);
    assert_eq!(del["data"]["a"], "1:0:0:1::1");

    // Exactly what the client shows, row by row (also for the server-generated v1 UUID).
    for row in db.query_strings("SELECT id, a, b, u FROM m.addr ORDER BY id") {
        let id: i64 = row[0]
            .as_deref()
            .and_then(|s| s.parse().ok())
            .expect("an id");
        let want = if id == 5 {
            &upd["new_data"]
        } else {
            insert_of(&events, id)
        };
        for (i, col) in ["a", "b", "u"].iter().enumerate() {
            let shown = row[i + 1].as_deref().map_or(Value::Null, |s| json!(s));
            assert_eq!(
                want[*col], shown,
                "row {id} column {col}: the webhook differs from SELECT"
            );
        }
    }

    // A UUID primary key is the `primary_id` in its text form.
    let k = find(&events, "keyed", "insert", |e| e["data"]["n"] == 1);
    assert_eq!(k["primary_id"], V1);
    let k = find(&events, "keyed", "update", |_| true);
    assert_eq!(k["primary_id"], V4);
    assert_eq!(k["old_data"]["u"], V4);
}

#[test]
fn inet6_inet4_and_uuid_look_as_the_client_shows_them() {
    let db = MariaDb::start();
    check_values(&db);
}

#[test]
fn inet6_inet4_and_uuid_also_without_names_in_the_binlog() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]);
    let got = db.query_strings("SELECT @@binlog_row_metadata");
    assert_eq!(
        got[0][0].as_deref(),
        Some("MINIMAL"),
        "the server runs with MINIMAL metadata"
    );
    check_values(&db);
}

/// A backfill (a SELECT instead of the binlog) writes these columns exactly as the
/// stream does, a UUID primary key included (it is also what the backfill pages by).
#[test]
fn inet6_inet4_and_uuid_backfill_as_they_stream() {
    let db = MariaDb::start();
    db.exec(TABLES);
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "m", &tasks(&rx), "");
    let _p = setup.start();
    db.exec(&format!(
        "INSERT INTO m.addr VALUES
         (1, '2001:db8::1', '192.0.2.1', '{V1}', x'00112233445566778899aabbccddeeff', x'0a000001'),
         (2, '::ffff:192.0.2.1', '0.0.0.0', '{V4}', NULL, NULL),
         (3, NULL, NULL, NULL, NULL, NULL);
         INSERT INTO m.keyed VALUES ('{V4}', 2), ('{V1}', 1)"
    ));
    let inserts = setup.settled_events(&rx, &db, 5);
    for task in ["addr", "keyed"] {
        setup.backfill(&["--task", task]);
    }
    let all = rx.wait_for_events(10, std::time::Duration::from_secs(60));
    let reads: Vec<&Value> = all.iter().filter(|e| e["event"] == "read").collect();
    assert_eq!(reads.len(), 5, "{reads:#?}");
    for read in reads {
        let same = inserts.iter().find(|e| {
            e["event"] == "insert"
                && e["table"] == read["table"]
                && e["primary_id"] == read["primary_id"]
        });
        let insert = same.unwrap_or_else(|| panic!("no insert with the key of {read}"));
        assert_eq!(read["data"], insert["data"], "{read}");
    }
}
