//! Backfill (issue 10): the rows a table already has, delivered as `read` events at the
//! binlog position of the snapshot they were read in, so that a receiver applying events
//! in delivery order per key ends with the table, whatever is written meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::Queryable;
use serde_json::Value;

use crate::harness::{poll_until, MariaDb, Pikachu, Receiver, Setup};

const WAIT: Duration = Duration::from_secs(60);

fn backfill_task(id: &str, table: &str, url: &str, chunk: usize) -> String {
    format!(
        "  - task_id: {id}\n    table_name: {table}\n    events: [insert, update, delete]\n    \
         callback_url: \"{url}\"\n    backfill: initial\n    backfill_chunk_size: {chunk}\n"
    )
}

fn insert_rows(db: &MariaDb, table: &str, values: &[String]) {
    db.exec(&format!("INSERT INTO {table} VALUES {}", values.join(",")));
}

/// What a receiver holds after applying `events` in order: key → row.
fn apply(events: &[Value], key: &[&str]) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    for e in events {
        let row = match e["event"].as_str() {
            Some("insert" | "read" | "delete") => &e["data"],
            Some("update") => &e["new_data"],
            other => panic!("unexpected event {other:?}: {e}"),
        };
        let k = |row: &Value| {
            key.iter()
                .map(|c| row[*c].to_string())
                .collect::<Vec<_>>()
                .join("|")
        };
        if e["event"] == "update" {
            state.remove(&k(&e["old_data"]));
        }
        if e["event"] == "delete" {
            state.remove(&k(row));
        } else {
            state.insert(k(row), row.clone());
        }
    }
    state
}

/// The table as the receiver should hold it (every column is INT here).
fn table_state(db: &MariaDb, sql: &str, columns: &[&str], key: &[&str]) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    for row in db.query_strings(sql) {
        let mut obj = serde_json::Map::new();
        for (c, v) in columns.iter().zip(row) {
            let v = match v {
                None => Value::Null,
                Some(s) => s
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(s)),
            };
            obj.insert(c.to_string(), v);
        }
        let obj = Value::Object(obj);
        let k = key
            .iter()
            .map(|c| obj[*c].to_string())
            .collect::<Vec<_>>()
            .join("|");
        state.insert(k, obj);
    }
    state
}

#[test]
fn backfill_under_concurrent_writes_ends_with_the_table() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v INT NOT NULL)");
    // 100k rows, inserted 10k at a time (one statement stays under max_allowed_packet).
    for part in 0..10 {
        let values: Vec<String> = (1..=10_000)
            .map(|i| format!("({}, 0)", part * 10_000 + i))
            .collect();
        insert_rows(&db, "shop.items", &values);
    }
    let rx = Receiver::always(200);
    let setup = Setup::new(
        &db,
        "shop",
        &backfill_task("items", "items", &rx.url("/i"), 1000),
        // Batched, as a backfill of this size would be run; per-key order still holds
        // across the 4 workers.
        "log:\n  level: info\ndispatcher:\n  worker_count: 4\n  batch_size: 200\n  \
         batch_timeout: 20ms\n  retry_base_delay: 50ms\n  shutdown_timeout: 5s\n",
    );
    let p = Pikachu::spawn(&setup, &[]);

    // A writer updating, deleting and inserting rows all over the key range while the
    // backfill reads its 100 chunks.
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let running = running.clone();
        let mut conn = db.conn();
        std::thread::spawn(move || {
            let mut n: i64 = 0;
            while running.load(Ordering::SeqCst) || n < 300 {
                n += 1;
                let id = (n * 7919) % 100_000 + 1;
                let sql = match n % 3 {
                    0 => format!("UPDATE shop.items SET v = v + 1 WHERE id = {id}"),
                    1 => format!("DELETE FROM shop.items WHERE id = {id}"),
                    _ => format!(
                        "INSERT INTO shop.items VALUES ({id}, {n}) ON DUPLICATE KEY UPDATE v = {n}"
                    ),
                };
                conn.query_drop(sql).unwrap();
                if n % 50 == 0 {
                    // Also rows past the end of the table, where the last chunk reads.
                    conn.query_drop(format!(
                        "INSERT INTO shop.items VALUES ({}, 1)",
                        100_000 + n
                    ))
                    .unwrap();
                }
            }
        })
    };
    p.wait_for_log("backfill of `shop`.`items` read all", WAIT);
    running.store(false, Ordering::SeqCst);
    writer.join().unwrap();

    let want = table_state(&db, "SELECT id, v FROM shop.items", &["id", "v"], &["id"]);
    let done = poll_until(WAIT, || apply(&rx.events(), &["id"]) == want);
    let got = apply(&rx.events(), &["id"]);
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .take(5)
        .collect();
    assert!(
        done,
        "receiver state differs from the table: {} vs {} rows; missing {missing:?}, extra {extra:?}, \
         differ {differ:?}\nlog:\n{}",
        got.len(),
        want.len(),
        p.log()
    );
    // Finished: every chunk is behind the checkpoint (the writer's last commits).
    db.exec("CREATE TABLE shop.tick (n INT); INSERT INTO shop.tick VALUES (1)");
    let finished = poll_until(WAIT, || p.metrics()["backfills"][0]["status"] == "stopped");
    assert!(finished, "{}", p.metrics());
    let reads = rx.events().iter().filter(|e| e["event"] == "read").count() as u64;
    // /metrics accounts for every row read: delivered or superseded by a newer change.
    let m = p.metrics();
    let b = &m["backfills"][0];
    assert_eq!(b["task_id"], "items", "{m}");
    assert_eq!(b["status"], "stopped", "{b}");
    assert_eq!(b["rows_delivered"].as_u64().unwrap(), reads, "{b}");
    assert_eq!(
        b["rows_read"].as_u64().unwrap(),
        reads + b["rows_superseded"].as_u64().unwrap(),
        "{b}"
    );
    assert!(reads > 90_000, "only {reads} read events");
    let prom = ureq::get(&format!(
        "http://127.0.0.1:{}/metrics?format=prometheus",
        setup.health_port
    ))
    .call()
    .unwrap()
    .body_mut()
    .read_to_string()
    .unwrap();
    assert!(
        prom.contains("pikachu_backfill_rows_delivered_total{task_id=\"items\"}"),
        "{prom}"
    );
    setup.assert_no_dead_letters();
}

#[test]
fn composite_key_is_paged_by_the_whole_tuple() {
    let db = MariaDb::start();
    // The first key column has two values: paging by it alone would not bound chunks.
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.pairs (a INT, b INT, v INT, PRIMARY KEY (a, b))",
    );
    let values: Vec<String> = (0..500).map(|i| format!("({}, {i}, {i})", i % 2)).collect();
    insert_rows(&db, "shop.pairs", &values);
    let rx = Receiver::always(200);
    let setup = Setup::new(
        &db,
        "shop",
        &backfill_task("pairs", "pairs", &rx.url("/p"), 7),
        "",
    );
    let p = Pikachu::spawn(&setup, &[]);
    p.wait_for_log(
        "backfill of `shop`.`pairs` read all 500 rows in 72 chunks",
        WAIT,
    );
    db.exec("UPDATE shop.pairs SET v = -1 WHERE b = 3");
    let want = table_state(
        &db,
        "SELECT a, b, v FROM shop.pairs",
        &["a", "b", "v"],
        &["a", "b"],
    );
    assert!(
        poll_until(WAIT, || apply(&rx.events(), &["a", "b"]) == want),
        "receiver state differs from the table; log:\n{}",
        p.log()
    );
    let first = rx
        .events()
        .into_iter()
        .find(|e| e["event"] == "read")
        .unwrap();
    assert_eq!(first["data"]["a"], 0, "{first}");
    assert!(
        first["id"].as_str().unwrap().starts_with("read:pairs:"),
        "{first}"
    );
}

#[test]
fn a_table_with_only_a_unique_key_is_paged_by_it() {
    let db = MariaDb::start();
    // A nullable unique key cannot page (NULLs repeat); the NOT NULL one can.
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.codes (code VARCHAR(20) NOT NULL, \
         alt INT NULL, v INT NOT NULL, UNIQUE KEY by_alt (alt), UNIQUE KEY by_code (code))",
    );
    let values: Vec<String> = (0..300)
        .map(|i| format!("('c{i:04}', NULL, {i})"))
        .collect();
    insert_rows(&db, "shop.codes", &values);
    let rx = Receiver::always(200);
    let setup = Setup::new(
        &db,
        "shop",
        &backfill_task("codes", "codes", &rx.url("/c"), 16),
        "",
    );
    // `check` says how the table will be read.
    let stdout = setup.check();
    assert!(
        stdout.lines().any(|l| l.starts_with("OK")
            && l.contains("task codes: backfill")
            && l.contains("chunks of 16 by the unique key (code)")),
        "{stdout}"
    );
    let p = Pikachu::spawn(&setup, &[]);
    p.wait_for_log("its backfill pages by the unique key (code)", WAIT);
    db.exec("UPDATE shop.codes SET v = -1 WHERE code = 'c0290'; DELETE FROM shop.codes WHERE code = 'c0007'");
    p.wait_for_log(
        "backfill of `shop`.`codes` read all 300 rows in 19 chunks",
        WAIT,
    );
    let want = table_state(
        &db,
        "SELECT code, alt, v FROM shop.codes",
        &["code", "alt", "v"],
        &["code"],
    );
    let same = poll_until(WAIT, || apply(&rx.events(), &["code"]) == want);
    let got = apply(&rx.events(), &["code"]);
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .take(3)
        .map(|(k, v)| format!("{k}: want {v}, got {:?}", got.get(k)))
        .collect();
    assert!(
        same,
        "receiver state differs from the table ({} vs {} rows): {differ:?}; log:\n{}",
        got.len(),
        want.len(),
        p.log()
    );
    let read = rx
        .events()
        .into_iter()
        .find(|e| e["event"] == "read" && e["data"]["code"] == "c0001")
        .unwrap();
    assert_eq!(read["id"], "read:codes:c0001", "{read}");
    // As the stream's events of this table: the server takes the key as the primary key.
    assert_eq!(read["primary_id"], "c0001", "{read}");
}

#[test]
fn a_table_without_any_key_is_read_in_one_pass_with_a_warning() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.logs (msg VARCHAR(20), n INT)");
    let values: Vec<String> = (0..250).map(|i| format!("('m{i}', {i})")).collect();
    insert_rows(&db, "shop.logs", &values);
    let rx = Receiver::always(200);
    let setup = Setup::new(
        &db,
        "shop",
        &backfill_task("logs", "logs", &rx.url("/l"), 100),
        "",
    );
    // `check` says how the table will be read.
    let stdout = setup.check();
    assert!(
        stdout.lines().any(|l| l.starts_with("WARN")
            && l.contains("task logs: backfill")
            && l.contains("read in one pass")),
        "{stdout}"
    );
    let p = Pikachu::spawn(&setup, &[]);
    p.wait_for_log(
        "has neither a primary key nor a unique key of NOT NULL columns",
        WAIT,
    );
    p.wait_for_log(
        "backfill of `shop`.`logs` read all 250 rows in 3 chunks",
        WAIT,
    );
    let reads = rx.wait_for_events(250, WAIT);
    let mut got: Vec<i64> = reads
        .iter()
        .filter(|e| e["event"] == "read")
        .map(|e| e["data"]["n"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..250).collect::<Vec<i64>>());
    // Each row once, with its place in the pass as its id.
    let ids: std::collections::BTreeSet<&str> =
        reads.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 250);
    assert!(ids.contains("read:logs:#250"), "{ids:?}");
    // The stream goes on.
    db.exec("INSERT INTO shop.logs VALUES ('y', 1000)");
    let events = rx.wait_for_events(251, WAIT);
    assert_eq!(events[250]["event"], "insert");
    assert_eq!(events[250]["data"]["msg"], "y");
}

/// The backfill progress saved with the checkpoint.
fn progress(setup: &Setup) -> Value {
    std::fs::read(setup.data_dir().join("checkpoint.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map_or(Value::Null, |cp| cp["backfills"].clone())
}

#[test]
fn kill_9_during_a_backfill_resumes_after_the_last_delivered_chunk() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v INT NOT NULL)");
    let values: Vec<String> = (1..=3000).map(|i| format!("({i}, 0)")).collect();
    insert_rows(&db, "shop.items", &values);
    let rx = Receiver::always(200);
    let tasks =
        backfill_task("items", "items", &rx.url("/i"), 50) + "    backfill_rows_per_second: 1000\n";
    let setup = Setup::new(&db, "shop", &tasks, "");
    let mut p = Pikachu::spawn(&setup, &[]);
    // Writes, so that the checkpoint moves past the handed-over chunks.
    let mut n = 0;
    let reached = poll_until(WAIT, || {
        n += 1;
        db.exec(&format!(
            "UPDATE shop.items SET v = v + 1 WHERE id = {}",
            n % 3000 + 1
        ));
        progress(&setup)["items"]["rows"].as_u64().unwrap_or(0) >= 500
    });
    assert!(reached, "no progress saved; log:\n{}", p.log());
    p.kill9();
    let before = progress(&setup)["items"].clone();
    assert_eq!(before["done"], false, "{before}");
    let delivered_before = before["rows"].as_u64().unwrap();

    let p2 = Pikachu::spawn(&setup, &[]);
    p2.wait_for_log("resuming the backfill of `shop`.`items`", WAIT);
    db.exec("DELETE FROM shop.items WHERE id = 2999; UPDATE shop.items SET v = 77 WHERE id = 1");
    let done = poll_until(WAIT, || {
        db.exec("UPDATE shop.items SET v = v + 1 WHERE id = 3000");
        progress(&setup)["items"]["done"] == true
    });
    assert!(done, "the backfill did not finish; log:\n{}", setup.logs());
    // The second run read only what the first had not delivered.
    let log = p2.log();
    let line = log
        .lines()
        .find(|l| l.contains("read all"))
        .unwrap_or_else(|| panic!("no summary line:\n{log}"));
    let read_again: u64 = line
        .split("read all ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.parse().ok())
        .unwrap();
    // (One row of the rest was deleted meanwhile.)
    assert!(
        read_again < 3000 - delivered_before + 1 && read_again + 1 >= 3000 - delivered_before,
        "{line} after {delivered_before} delivered"
    );

    let want = table_state(&db, "SELECT id, v FROM shop.items", &["id", "v"], &["id"]);
    assert!(
        poll_until(WAIT, || apply(&rx.events(), &["id"]) == want),
        "receiver state differs from the table; log:\n{}",
        setup.logs()
    );
}

fn status_of(setup: &Setup, task: &str) -> Value {
    let out = setup.backfill(&["--status"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["backfills"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["task_id"] == task)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn on_demand_backfill_with_where_then_status_and_cancel() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, v INT NOT NULL)");
    let values: Vec<String> = (1..=400).map(|i| format!("({i}, {})", i % 4)).collect();
    insert_rows(&db, "shop.users", &values);
    let rx = Receiver::always(200);
    // No `backfill: initial`: nothing is backfilled until asked.
    let tasks = crate::harness::task("users", "users", &rx.url("/u"))
        + "    backfill_chunk_size: 20\n    backfill_rows_per_second: 100\n";
    let setup = Setup::new(&db, "shop", &tasks, "");
    let p = Pikachu::spawn(&setup, &[]);

    // A subset: only the 100 rows with v = 0.
    let out = setup.backfill(&["--task", "users", "--where", "v = 0"]);
    assert!(
        out.contains("requested the backfill of task users"),
        "{out}"
    );
    p.wait_for_log("backfill of `shop`.`users` read all 100 rows", WAIT);
    let reads = |rx: &Receiver| -> Vec<Value> {
        rx.events()
            .into_iter()
            .filter(|e| e["event"] == "read")
            .collect()
    };
    assert!(poll_until(WAIT, || reads(&rx).len() == 100));
    assert!(reads(&rx).iter().all(|e| e["data"]["v"] == 0));
    // Any commit lets the checkpoint pass the last chunk.
    db.exec("CREATE TABLE shop.tick (n INT)");
    assert!(
        poll_until(WAIT, || {
            db.exec("INSERT INTO shop.tick VALUES (1)");
            status_of(&setup, "users")["status"] == "done"
        }),
        "{}\n{}",
        status_of(&setup, "users"),
        p.log()
    );

    // The whole table at 100 rows/s: cancelled while it runs.
    setup.backfill(&["--task", "users"]);
    assert!(
        poll_until(WAIT, || status_of(&setup, "users")["status"] == "running"),
        "{}",
        p.log()
    );
    let out = setup.backfill(&["--task", "users", "--cancel"]);
    assert!(out.contains("cancel"), "{out}");
    p.wait_for_log("backfill of `shop`.`users` cancelled", WAIT);
    assert!(poll_until(WAIT, || status_of(&setup, "users")["status"] == "cancelled"));
    let read = p.metrics()["backfills"][0]["rows_read"].as_u64().unwrap();
    assert!(read < 100 + 400, "cancelled after {read} rows");
}

#[test]
fn string_key_backfill_as_insert_events() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.codes (code VARCHAR(20) PRIMARY KEY, v INT NOT NULL)",
    );
    let values: Vec<String> = (0..300).map(|i| format!("('c{i:04}', {i})")).collect();
    insert_rows(&db, "shop.codes", &values);
    let rx = Receiver::always(200);
    let tasks = backfill_task("codes", "codes", &rx.url("/c"), 16) + "    backfill_event: insert\n";
    let setup = Setup::new(&db, "shop", &tasks, "");
    let p = Pikachu::spawn(&setup, &[]);
    db.exec(
        "UPDATE shop.codes SET v = -1 WHERE code = 'c0299'; DELETE FROM shop.codes WHERE code = 'c0150'",
    );
    p.wait_for_log("backfill of `shop`.`codes` read all", WAIT);
    let want = table_state(
        &db,
        "SELECT code, v FROM shop.codes",
        &["code", "v"],
        &["code"],
    );
    assert!(
        poll_until(WAIT, || apply(&rx.events(), &["code"]) == want),
        "receiver state differs from the table; log:\n{}",
        p.log()
    );
    let events = rx.events();
    assert!(events.iter().all(|e| e["event"] != "read"));
    let first = events
        .iter()
        .find(|e| e["data"]["code"] == "c0000")
        .unwrap();
    assert_eq!(first["event"], "insert", "{first}");
    assert_eq!(first["id"], "read:codes:c0000", "{first}");
}

/// Killed three times at different points of a backfill while a writer updates, deletes
/// and inserts rows all the while: each run goes on from the checkpoint, and the
/// receiver ends with the table.
#[test]
fn repeated_kill_9_under_concurrent_writes_ends_with_the_table() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v INT NOT NULL)");
    let values: Vec<String> = (1..=6000).map(|i| format!("({i}, 0)")).collect();
    insert_rows(&db, "shop.items", &values);
    let rx = Receiver::always(200);
    let tasks = backfill_task("items", "items", &rx.url("/i"), 100)
        + "    backfill_rows_per_second: 2000\n";
    let setup = Setup::new(&db, "shop", &tasks, "");

    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let running = running.clone();
        let mut conn = db.conn();
        std::thread::spawn(move || {
            let mut n: i64 = 0;
            while running.load(Ordering::SeqCst) {
                n += 1;
                let id = (n * 7919) % 6500 + 1;
                let sql = match n % 3 {
                    0 => format!("UPDATE shop.items SET v = v + 1 WHERE id = {id}"),
                    1 => format!("DELETE FROM shop.items WHERE id = {id}"),
                    _ => format!(
                        "INSERT INTO shop.items VALUES ({id}, {n}) ON DUPLICATE KEY UPDATE v = {n}"
                    ),
                };
                conn.query_drop(sql).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for at_least in [1000, 2500, 4000] {
        let mut p = Pikachu::spawn(&setup, &[]);
        let reached = poll_until(WAIT, || {
            progress(&setup)["items"]["rows"].as_u64().unwrap_or(0) >= at_least
        });
        assert!(reached, "no progress to {at_least}; log:\n{}", p.log());
        p.kill9();
    }
    let p = Pikachu::spawn(&setup, &[]);
    p.wait_for_log("backfill of `shop`.`items` read all", WAIT);
    running.store(false, Ordering::SeqCst);
    writer.join().unwrap();
    let want = table_state(&db, "SELECT id, v FROM shop.items", &["id", "v"], &["id"]);
    assert!(
        poll_until(WAIT, || apply(&rx.events(), &["id"]) == want),
        "receiver state differs from the table; log:\n{}",
        setup.logs()
    );
}
