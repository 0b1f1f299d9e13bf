//! SPEC section 3 without names in the binlog: with `binlog_row_metadata=MINIMAL` (and
//! MariaDB's default `NO_LOG`) column names, signedness, character sets, ENUM/SET labels
//! and the primary key come from `information_schema`, are refreshed after DDL, and a
//! name is never shifted onto another column's value. Also `binlog_row_image=MINIMAL`
//! and `NOBLOB`: absent columns are absent, not null.

use std::time::Duration;

use crate::harness::{MariaDb, Receiver, Setup};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn of_table(events: &[Value], table: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["table"] == table)
        .cloned()
        .collect()
}

/// Keys of an object in the order they were sent.
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn check_metadata(db: &MariaDb, want: &str) {
    let got = db.query_strings("SELECT @@binlog_row_metadata");
    assert_eq!(
        got[0][0].as_deref(),
        Some(want),
        "the server runs with binlog_row_metadata={want}"
    );
}

/// Names, unsigned maxima, latin1 text, ENUM/SET labels and a composite key from
/// `information_schema`; DDL mid-stream renames, adds and relabels columns.
fn names_from_information_schema(metadata: &str) {
    let db = MariaDb::start_with(&[&format!("--binlog-row-metadata={metadata}")]);
    check_metadata(&db, metadata);
    db.exec(
        "CREATE DATABASE s;
         CREATE TABLE s.t (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(10) CHARACTER SET latin1,
           e ENUM('x','y','it''s'), st SET('a','b','c'), n MEDIUMINT, tiu TINYINT UNSIGNED,
           c CHAR(3) CHARACTER SET latin1, u VARCHAR(5) CHARACTER SET utf8mb4, bin VARBINARY(4));
         CREATE TABLE s.pair (b VARCHAR(5), a INT, v INT, PRIMARY KEY (a, b));
         CREATE TABLE s.nokey (yr YEAR, d DECIMAL(3,1), f FLOAT, x INT UNSIGNED, y VARCHAR(3))",
    );
    let rx = Receiver::always(200);
    let tasks = rx.task_per_table(&["t", "pair", "nokey"]);
    let setup = Setup::new(&db, "s", &tasks, "");
    let p = setup.start();

    db.exec(
        "INSERT INTO s.t VALUES (18446744073709551615, 'café', 'it''s', 'c,a', -1, 255, 'é',
           '😀', x'00ff'),
         (1, '€', 'x', '', -8388608, 0, NULL, '', '')",
    );
    db.exec("INSERT INTO s.pair VALUES ('k', 2, 1)");
    // YEAR, DECIMAL and FLOAT before an unsigned column: signedness stays aligned.
    db.exec("INSERT INTO s.nokey VALUES (0, -1.5, 1.1, 4294967295, 'ñ')");
    let events = rx.wait_for_events(4, WAIT);
    let t = of_table(&events, "t");
    let max = t
        .iter()
        .find(|e| e["data"]["n"] == -1)
        .expect("row with n = -1");
    assert_eq!(
        max["data"],
        json!({"id": 18446744073709551615u64, "name": "café", "e": "it's", "st": "a,c", "n": -1,
               "tiu": 255, "c": "é", "u": "😀", "bin": "AP8="}),
        "{}",
        p.log()
    );
    assert_eq!(max["primary_id"], json!(18446744073709551615u64));
    assert_eq!(
        keys(&max["data"]),
        ["id", "name", "e", "st", "n", "tiu", "c", "u", "bin"]
    );
    let one = t.iter().find(|e| e["data"]["id"] == 1).expect("row 1");
    assert_eq!(
        one["data"],
        json!({"id": 1, "name": "€", "e": "x", "st": "", "n": -8388608, "tiu": 0, "c": null,
               "u": "", "bin": ""})
    );
    let pair = &of_table(&events, "pair")[0];
    assert_eq!(pair["data"], json!({"b": "k", "a": 2, "v": 1}));
    assert_eq!(pair["primary_id"], json!({"a": 2, "b": "k"}));
    assert_eq!(
        keys(&pair["primary_id"]),
        ["a", "b"],
        "key order, not column order"
    );
    let nokey = &of_table(&events, "nokey")[0];
    assert_eq!(
        nokey["data"],
        json!({"yr": 0, "d": "-1.5", "f": 1.1, "x": 4294967295u64, "y": "ñ"})
    );
    assert!(nokey["primary_id"].is_null());

    // A column added in the middle: later rows carry it under its name, the others
    // keep theirs.
    db.exec("ALTER TABLE s.t ADD COLUMN mid VARCHAR(5) CHARACTER SET latin1 DEFAULT 'ü' AFTER id");
    db.exec("INSERT INTO s.t (id, name, e, st, n, tiu) VALUES (2, 'b', 'y', 'b', 7, 1)");
    db.exec("INSERT INTO s.t VALUES (3, 'mé', 'n3', 'x', 'a,b,c', 8, 2, 'abc', 'v', x'01')");
    // information_schema only knows the current definition: the rows above are read
    // before the next DDL (a rename is invisible in the binlog's column types; see the
    // README on binlog_row_metadata).
    rx.wait_for_events(4 + 2, WAIT);
    // A rename and a new ENUM label change no binlog column type: names and labels
    // must still be refreshed.
    db.exec("ALTER TABLE s.t RENAME COLUMN n TO num");
    db.exec("ALTER TABLE s.t MODIFY e ENUM('x','y','it''s','new')");
    db.exec("INSERT INTO s.t VALUES (4, NULL, 'n4', 'new', 'c', 9, 3, NULL, NULL, NULL)");
    rx.wait_for_events(4 + 3, WAIT);
    // DROP COLUMN: fewer columns from here on.
    db.exec("ALTER TABLE s.t DROP COLUMN name");
    db.exec("UPDATE s.t SET num = 10 WHERE id = 4");

    let events = setup.settled_events(&rx, &db, 4 + 4);
    setup.assert_no_dead_letters();
    let t = of_table(&events, "t");
    assert_eq!(t.len(), 6, "{t:?}");
    let by_id = |id: u64| {
        t.iter()
            .find(|e| e["event"] == "insert" && e["data"]["id"] == id)
            .unwrap_or_else(|| panic!("insert of id {id}: {t:?}"))
    };
    assert_eq!(
        by_id(2)["data"],
        json!({"id": 2, "mid": "ü", "name": "b", "e": "y", "st": "b", "n": 7, "tiu": 1, "c": null,
               "u": null, "bin": null})
    );
    assert_eq!(
        keys(&by_id(2)["data"]),
        ["id", "mid", "name", "e", "st", "n", "tiu", "c", "u", "bin"]
    );
    assert_eq!(
        by_id(3)["data"],
        json!({"id": 3, "mid": "mé", "name": "n3", "e": "x", "st": "a,b,c", "n": 8, "tiu": 2,
               "c": "abc", "u": "v", "bin": "AQ=="})
    );
    assert_eq!(
        by_id(4)["data"],
        json!({"id": 4, "mid": null, "name": "n4", "e": "new", "st": "c", "num": 9, "tiu": 3,
               "c": null, "u": null, "bin": null})
    );
    let upd = t
        .iter()
        .find(|e| e["event"] == "update")
        .expect("update after DROP COLUMN");
    assert_eq!(
        upd["old_data"],
        json!({"id": 4, "mid": null, "e": "new", "st": "c", "num": 9, "tiu": 3, "c": null,
               "u": null, "bin": null})
    );
    assert_eq!(upd["new_data"]["num"], 10);
    assert_eq!(upd["primary_id"], 4);
    // The rows before the DDL kept their shape.
    assert_eq!(
        keys(&by_id(1)["data"]),
        ["id", "name", "e", "st", "n", "tiu", "c", "u", "bin"]
    );
}

#[test]
fn minimal_metadata_takes_names_from_information_schema() {
    names_from_information_schema("MINIMAL");
}

#[test]
fn no_metadata_at_all_takes_everything_from_information_schema() {
    // MariaDB's default: not even signedness or character sets in the binlog.
    names_from_information_schema("NO_LOG");
}

/// Rows written before a DDL that pikachu reads only after the DDL (it was stopped):
/// `information_schema` no longer describes them, so they are dead-lettered with the
/// reason, never delivered under shifted names; rows after the DDL are delivered.
#[test]
fn rows_older_than_the_table_definition_are_never_shifted() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]);
    db.exec("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(5))");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "s", &rx.task_per_table(&["t"]), "");
    let mut p = setup.start();
    db.exec("INSERT INTO s.t VALUES (1, 'a')");
    rx.wait_for_events(1, WAIT);
    p.sigterm();
    assert!(p.wait_exit(WAIT).success(), "clean exit:\n{}", p.log());

    db.exec("INSERT INTO s.t VALUES (2, 'b')");
    db.exec("ALTER TABLE s.t ADD COLUMN mid INT AFTER id");
    db.exec("INSERT INTO s.t VALUES (3, 30, 'c')");
    let p = setup.start();
    // Row 2 was read before row 3: delivered or dead-lettered by now.
    let events = setup.settled_events(&rx, &db, 2);
    assert_eq!(events[0]["data"], json!({"id": 1, "v": "a"}));
    assert_eq!(
        events.last().map(|e| e["data"].clone()),
        Some(json!({"id": 3, "mid": 30, "v": "c"})),
        "{}",
        p.log()
    );
    for e in &events {
        let d = &e["data"];
        assert!(
            d["id"] != 2 || d == &json!({"id": 2, "v": "b"}),
            "row 2 under shifted names: {e}"
        );
    }
    assert_eq!(events.len(), 2, "row 2 is not delivered: {events:?}");
    let dl = setup.dead_letters();
    assert_eq!(dl.len(), 1, "row 2 is dead-lettered: {dl:?}");
    let err = dl[0]["error"].as_str().unwrap_or("");
    assert!(
        err.contains("`s`.`t`") && err.contains("2 columns"),
        "reason names the table and the mismatch: {err}"
    );
    assert_eq!(dl[0]["body"]["table"], "t");
}

/// `binlog_row_image=MINIMAL` and `NOBLOB` set by the writing session: images hold only
/// the columns the server sent.
#[test]
fn minimal_and_noblob_row_images_leave_absent_columns_out() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]);
    db.exec(
        "CREATE DATABASE s; CREATE TABLE s.img (id INT PRIMARY KEY, v INT, w VARCHAR(5) DEFAULT 'dflt', doc TEXT);
         CREATE TABLE s.nk (a INT, b INT)",
    );
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "s", &rx.task_per_table(&["img", "nk"]), "");
    let _p = setup.start();
    db.exec("INSERT INTO s.img VALUES (1, 1, 'w1', 'doc1')");
    db.exec("SET SESSION binlog_row_image = 'MINIMAL'; UPDATE s.img SET v = 2 WHERE id = 1");
    db.exec("SET SESSION binlog_row_image = 'NOBLOB'; UPDATE s.img SET v = 3 WHERE id = 1");
    db.exec("SET SESSION binlog_row_image = 'NOBLOB'; UPDATE s.img SET doc = 'doc2' WHERE id = 1");
    db.exec("SET SESSION binlog_row_image = 'MINIMAL'; DELETE FROM s.img WHERE id = 1");
    db.exec("SET SESSION binlog_row_image = 'MINIMAL'; INSERT INTO s.img (id, v) VALUES (2, 5)");
    // Without a key, MariaDB logs both images whole even with MINIMAL.
    db.exec("INSERT INTO s.nk VALUES (1, 2)");
    db.exec("SET SESSION binlog_row_image = 'MINIMAL'; UPDATE s.nk SET b = 3");

    let events = setup.settled_events(&rx, &db, 8);
    setup.assert_no_dead_letters();
    // One key's changes in commit order; the two keys may interleave.
    let img: Vec<Value> = of_table(&events, "img")
        .into_iter()
        .filter(|e| e["primary_id"] == 1)
        .collect();
    let kinds: Vec<&str> = img
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["insert", "update", "update", "update", "delete"]);
    assert_eq!(
        img[0]["data"],
        json!({"id": 1, "v": 1, "w": "w1", "doc": "doc1"})
    );
    // MINIMAL: the key in the before image, the changed column in the after image.
    assert_eq!(img[1]["old_data"], json!({"id": 1}), "{}", img[1]);
    assert_eq!(img[1]["new_data"], json!({"v": 2}), "{}", img[1]);
    assert_eq!(
        img[1]["primary_id"], 1,
        "the key comes from the before image"
    );
    // NOBLOB: everything but the unchanged TEXT column.
    assert_eq!(
        img[2]["old_data"],
        json!({"id": 1, "v": 2, "w": "w1"}),
        "{}",
        img[2]
    );
    assert_eq!(
        img[2]["new_data"],
        json!({"id": 1, "v": 3, "w": "w1"}),
        "{}",
        img[2]
    );
    assert_eq!(
        img[3]["old_data"],
        json!({"id": 1, "v": 3, "w": "w1"}),
        "{}",
        img[3]
    );
    assert_eq!(
        img[3]["new_data"],
        json!({"id": 1, "v": 3, "w": "w1", "doc": "doc2"}),
        "{}",
        img[3]
    );
    assert_eq!(img[4]["data"], json!({"id": 1}), "{}", img[4]);
    assert_eq!(img[4]["primary_id"], 1);
    let two = of_table(&events, "img")
        .into_iter()
        .find(|e| e["primary_id"] == 2)
        .expect("insert of id 2");
    // MINIMAL insert: only the columns the statement gave; defaults are not sent.
    assert_eq!(two["data"], json!({"id": 2, "v": 5}), "{two}");

    let nk = of_table(&events, "nk");
    assert_eq!(nk[1]["old_data"], json!({"a": 1, "b": 2}), "{}", nk[1]);
    assert_eq!(nk[1]["new_data"], json!({"a": 1, "b": 3}), "{}", nk[1]);
    assert!(nk[1]["primary_id"].is_null());
}

/// Non-ASCII column names and labels from `information_schema`, whatever
/// `database.charset` the configuration asks for.
#[test]
fn non_ascii_names_and_labels_survive_a_latin1_connection_charset() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]);
    db.exec(
        "CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, `größe` VARCHAR(5),
           `€uro` INT, farbe ENUM('grün','€') CHARACTER SET latin1)",
    );
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "s", &rx.task_per_table(&["t"]), "");
    let config = std::fs::read_to_string(setup.config_path()).expect("config");
    std::fs::write(
        setup.config_path(),
        config.replacen("database:\n", "database:\n  charset: latin1\n", 1),
    )
    .expect("write config");
    let p = setup.start();
    db.exec("INSERT INTO s.t VALUES (1, 'groß', 7, 'grün'), (2, 'x', 8, '€')");
    let events = setup.settled_events(&rx, &db, 2);
    setup.assert_no_dead_letters();
    let one = events.iter().find(|e| e["primary_id"] == 1).expect("row 1");
    assert_eq!(
        one["data"],
        json!({"id": 1, "größe": "groß", "€uro": 7, "farbe": "grün"}),
        "{}",
        p.log()
    );
    let two = events.iter().find(|e| e["primary_id"] == 2).expect("row 2");
    assert_eq!(
        two["data"],
        json!({"id": 2, "größe": "x", "€uro": 8, "farbe": "€"})
    );
}
