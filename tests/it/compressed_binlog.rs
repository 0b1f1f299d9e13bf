//! MariaDB with `log_bin_compress=ON`: the server writes compressed query and rows
//! events (types 165–171), and pikachu delivers exactly what it delivers for the same
//! statements without compression, at the compressed events' own positions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::harness::{poll_until, run_binary, task, MariaDb, Receiver, Setup};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const COMPRESS: [&str; 2] = ["--log-bin-compress=ON", "--log-bin-compress-min-len=10"];
/// Rows changed by `workload`: 30 + 1 inserted, 10 updated, 10 deleted, then 1 insert,
/// 1 update and 1 delete after the ALTER.
const CHANGES: usize = 54;

/// A large TEXT value, varied enough that it is not one repeated byte.
fn big_text() -> String {
    (0..6000).map(|i| format!("{i:05}-{} ", i % 7)).collect()
}

fn workload() -> Vec<String> {
    let rows: Vec<String> = (1..=30)
        .map(|i| format!("({i}, 'title {i}', '{}')", "body ".repeat(i)))
        .collect();
    vec![
        format!(
            "INSERT INTO shop.docs (id, title, body) VALUES {}",
            rows.join(", ")
        ),
        format!(
            "INSERT INTO shop.docs (id, title, body) VALUES (100, 'big', '{}')",
            big_text()
        ),
        "UPDATE shop.docs SET title = CONCAT(title, ' (edited)') WHERE id <= 10".to_owned(),
        "DELETE FROM shop.docs WHERE id > 20 AND id < 100".to_owned(),
        "ALTER TABLE shop.docs ADD COLUMN tag VARCHAR(20) NOT NULL DEFAULT 'none'".to_owned(),
        "INSERT INTO shop.docs (id, title, body, tag) VALUES (200, 'after the alter', 'x', 'new')"
            .to_owned(),
        "UPDATE shop.docs SET body = CONCAT(body, 'tail') WHERE id = 100".to_owned(),
        "DELETE FROM shop.docs WHERE id = 100".to_owned(),
        // Ends the binlog with a standalone compressed statement: the checkpoint must move
        // past it.
        "ALTER TABLE shop.docs COMMENT = 'the last statement of the compressed binlog test'"
            .to_owned(),
    ]
}

struct Run {
    db: MariaDb,
    setup: Setup,
    log: String,
    /// Kept so that `pikachu check` finds the callback URL answering.
    _rx: Receiver,
    /// Envelopes in binlog order (by position, then row index).
    events: Vec<Value>,
}

fn pos_index(e: &Value) -> (u64, u64) {
    let id = e["id"].as_str().expect("id is a string");
    let mut parts = id.rsplitn(3, ':');
    let index = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id ends with the row index");
    let pos = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id has the position");
    (pos, index)
}

fn run(server_args: &[&str]) -> Run {
    let db = MariaDb::start_with(server_args);
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.docs (id INT PRIMARY KEY, title VARCHAR(60), \
         body TEXT)",
    );
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("docs", "docs", &rx.url("/hook")), "");
    let p = setup.start();
    for sql in workload() {
        db.exec(&sql);
    }
    let mut events = rx.wait_for_events(CHANGES, WAIT);
    // The checkpoint reaches the end of the binlog: the final standalone ALTER was read
    // as a transaction boundary. Then every row was delivered: none can come twice.
    let end = db.master_status();
    setup.checkpoint_reaches(&end, WAIT);
    assert_eq!(
        setup.checkpoint_position(),
        Some(end),
        "the checkpoint reaches the end of the binlog; log:\n{}",
        p.log()
    );
    assert_eq!(
        rx.events().len(),
        CHANGES,
        "no row is delivered twice; log:\n{}",
        p.log()
    );
    events.sort_by_key(pos_index);
    let log = p.log();
    assert!(
        setup.dead_letters().is_empty(),
        "no dead letters; log:\n{log}"
    );
    Run {
        db,
        setup,
        log,
        _rx: rx,
        events,
    }
}

/// What must not depend on compression: everything but the timestamp and the byte
/// position; ids keep their shape (the n-th rows event, the row's index in it).
fn comparable(events: &[Value]) -> Vec<Value> {
    let positions: BTreeSet<u64> = events.iter().map(|e| pos_index(e).0).collect();
    let rank: BTreeMap<u64, usize> = positions.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    events
        .iter()
        .map(|e| {
            let (pos, index) = pos_index(e);
            let mut e = e.clone();
            let o = e.as_object_mut().expect("an envelope is an object");
            o.remove("timestamp");
            o.remove("id");
            if let Some(p) = o.get_mut("position").and_then(Value::as_object_mut) {
                p.remove("pos");
            }
            o.insert("rows_event".into(), rank[&pos].into());
            o.insert("row".into(), index.into());
            e
        })
        .collect()
}

/// `SHOW BINLOG EVENTS`: start position → (type, end position, info).
fn binlog_events(db: &MariaDb) -> BTreeMap<u64, (String, u64, String)> {
    db.query_strings("SHOW BINLOG EVENTS")
        .into_iter()
        .map(|r| {
            let num = |i: usize| {
                r[i].as_deref()
                    .and_then(|s| s.parse::<u64>().ok())
                    .expect("a number")
            };
            let text = |i: usize| r[i].clone().unwrap_or_default();
            (num(1), (text(2), num(4), text(5)))
        })
        .collect()
}

#[test]
fn compressed_events_deliver_what_uncompressed_ones_do() {
    let plain = run(&[]);
    let packed = run(&COMPRESS);

    // The server really wrote compressed events, of every kind the workload makes.
    let binlog = binlog_events(&packed.db);
    let types: BTreeSet<&str> = binlog.values().map(|(t, _, _)| t.as_str()).collect();
    for t in [
        "Write_rows_compressed_v1",
        "Update_rows_compressed_v1",
        "Delete_rows_compressed_v1",
    ] {
        assert!(types.contains(t), "no {t} in the binlog: {types:?}");
    }
    assert!(
        binlog
            .values()
            .any(|(t, _, info)| t == "Query_compressed" && info.contains("ADD COLUMN tag")),
        "the ALTER was not written compressed: {binlog:?}"
    );
    assert!(
        !binlog_events(&plain.db)
            .values()
            .any(|(t, _, _)| t.contains("compressed")),
        "the server without log_bin_compress wrote compressed events"
    );

    // Same rows, same order, same GTIDs, ids of the same shape.
    let (want, got) = (comparable(&plain.events), comparable(&packed.events));
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            g, w,
            "event {i} differs with compression; log:\n{}",
            packed.log
        );
    }
    assert_eq!(got.len(), want.len());

    // The big row arrived whole, and the row inserted after the ALTER has the new column.
    let big = packed
        .events
        .iter()
        .find(|e| e["event"] == "insert" && e["primary_id"] == 100)
        .expect("the big row's insert");
    assert_eq!(big["data"]["body"], big_text().as_str());
    let after = packed
        .events
        .iter()
        .find(|e| e["primary_id"] == 200)
        .expect("the insert after the ALTER");
    assert_eq!(after["data"]["tag"], "new");

    // Every envelope sits at the start of the rows event that carried it, and the big
    // row's insert, update and delete were compressed events.
    for e in &packed.events {
        let pos = e["position"]["pos"].as_u64().expect("position.pos");
        let (t, _, _) = binlog
            .get(&pos)
            .unwrap_or_else(|| panic!("no event starts at {pos}: {e}"));
        assert!(t.contains("_rows"), "{e} is at a {t} event");
    }
    for (kind, t) in [
        ("insert", "Write_rows_compressed_v1"),
        ("update", "Update_rows_compressed_v1"),
        ("delete", "Delete_rows_compressed_v1"),
    ] {
        let e = packed
            .events
            .iter()
            .find(|e| e["event"] == kind && e["primary_id"] == 100)
            .unwrap_or_else(|| panic!("the big row's {kind}"));
        let pos = e["position"]["pos"].as_u64().expect("position.pos");
        assert_eq!(binlog[&pos].0, t, "the big row's {kind}");
        assert_eq!(
            e["id"],
            format!(
                "{}:{pos}:0",
                e["position"]["file"].as_str().unwrap_or_default()
            )
        );
    }

    // The compressed DDL was read as text, not just noticed.
    assert!(
        packed.log.contains("DDL read at") && packed.log.contains("ADD COLUMN tag VARCHAR(20)"),
        "log:\n{}",
        packed.log
    );

    // `pikachu check` accepts the server and says why.
    let config = packed.setup.config_path();
    let (code, stdout, stderr) = run_binary(
        &["check", "-config", config.to_str().expect("utf-8 path")],
        &[],
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == "OK   log_bin_compress: ON (compressed events are decompressed)"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// A transaction of compressed rows events cut by kill -9: after the restart every row
/// arrives, and a row delivered twice carries the same id and body both times (ids come
/// from the compressed events' own positions, which do not move).
#[test]
fn compressed_rows_keep_their_ids_across_a_kill_9() {
    let db = MariaDb::start_with(&COMPRESS);
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.docs (id INT PRIMARY KEY, body TEXT)");
    let rx = Receiver::with_policy(|_, _| (200, vec![], Duration::from_millis(40)));
    let tasks = format!(
        "  - task_id: docs\n    table_name: docs\n    events: [insert]\n    callback_url: {}\n",
        rx.url("/hook")
    );
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 1\n  queue_size: 2\n  retry_base_delay: 50ms\n  shutdown_timeout: 5s\n",
    );
    let mut p = setup.start();
    let inserts: Vec<String> = (1..=40)
        .map(|i| {
            format!(
                "INSERT INTO shop.docs VALUES ({i}, '{}')",
                format!("row {i} ").repeat(50)
            )
        })
        .collect();
    db.exec(&format!("BEGIN; {}; COMMIT", inserts.join("; ")));
    rx.wait_for_events(5, WAIT);
    p.kill9();
    let first = rx.events().len();
    let log1 = p.log();
    let p = setup.start();
    // Every row delivered (asserted below), and nothing more to come.
    if poll_until(WAIT, || {
        rx.events()
            .iter()
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
            .collect::<BTreeSet<_>>()
            .len()
            >= 40
    }) {
        setup.wait_until_caught_up(&db);
    }
    let events = rx.events();
    assert!(
        first < 40,
        "pikachu was killed before the transaction was delivered"
    );
    let mut by_id: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_id
            .entry(e["id"].as_str().expect("id").to_owned())
            .or_default()
            .push(e);
    }
    let rows: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| e["primary_id"].as_u64())
        .collect();
    assert_eq!(
        rows,
        (1..=40).collect(),
        "every row arrives; log:\n{log1}\n--- after kill -9 ---\n{}",
        p.log()
    );
    assert_eq!(by_id.len(), 40, "one id per row: {:?}", by_id.keys());
    assert!(
        events.len() > 40,
        "the rows delivered before the kill are delivered again (at least once, same id)"
    );
    for (id, copies) in &by_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "{id} differs between deliveries: {copies:?}"
        );
    }
    let binlog = binlog_events(&db);
    for e in &events {
        let pos = e["position"]["pos"].as_u64().expect("position.pos");
        assert_eq!(binlog[&pos].0, "Write_rows_compressed_v1", "{e}");
    }
}
