//! Issue 14: what leaves the database per task: columns, change triggers, row filters
//! and rate limits, end to end on a real MariaDB with the real binary.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{row_of, task, task_with, wait_until, MariaDb, Pikachu, Receiver, Setup};

const WAIT: Duration = Duration::from_secs(30);

fn of<'a>(events: &'a [Value], task_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["task_id"] == task_id).collect()
}

#[test]
fn excluded_columns_never_leave_and_updates_say_what_changed() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40), \
         password_hash VARCHAR(80), email VARCHAR(80))",
    );
    let rx = Receiver::always(200);
    let refused = Receiver::always(400);
    let tasks = [
        task_with(
            "safe",
            "users",
            &rx.url("/safe"),
            &["exclude_columns: [password_hash]"],
        ),
        task_with("names", "users", &rx.url("/names"), &["columns: [name]"]),
        task_with(
            "refused",
            "users",
            &refused.url("/refused"),
            &["exclude_columns: [password_hash, email]"],
        ),
    ]
    .concat();
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 2\n  max_retries: 0\n  shutdown_timeout: 5s\n",
    );
    let p = Pikachu::spawn(&setup, &[]);
    db.exec(
        "INSERT INTO shop.users VALUES (1, 'Ann', 'hash-secret-1', 'ann@example.com'); \
         UPDATE shop.users SET name = 'Ann B', password_hash = 'hash-secret-2' WHERE id = 1",
    );
    let events = setup.settled_events(&rx, &db, 4);
    let safe = of(&events, "safe");
    assert_eq!(
        safe[0]["data"],
        json!({"id": 1, "name": "Ann", "email": "ann@example.com"})
    );
    assert_eq!(safe[1]["changed"], json!(["name"]), "{}", safe[1]);
    let names = of(&events, "names");
    assert_eq!(
        names[0]["data"],
        json!({"id": 1, "name": "Ann"}),
        "the key stays"
    );
    assert_eq!(names[1]["new_data"], json!({"id": 1, "name": "Ann B"}));
    wait_until("the dead letters", WAIT, || setup.dead_letters().len() == 2);
    let letters = std::fs::read_to_string(setup.data_dir().join("dead-letters.jsonl")).unwrap();
    let log = p.log();
    for (what, text) in [("dead letters", &letters), ("debug log", &log)] {
        for secret in ["hash-secret-1", "hash-secret-2"] {
            assert!(!text.contains(secret), "{secret} in the {what}:\n{text}");
        }
    }
    assert!(!letters.contains("ann@example.com"), "{letters}");
    assert!(
        letters.contains("Ann B"),
        "the dead letters hold the rest: {letters}"
    );
}

#[test]
fn triggers_and_filters_select_the_changes_a_task_gets() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, status \
         VARCHAR(20), total DECIMAL(10,2), country CHAR(2) NULL, placed DATE, \
         updated_at DATETIME)",
    );
    let rx = Receiver::always(200);
    let tasks = [
        task_with("status", "orders", &rx.url("/status"), &["on_change: [status]"]),
        format!(
            "{}    filter: \"status = 'paid' and total >= 100 and country in ('DE', 'AT') and placed >= '2024-01-01'\"\n",
            task("paid", "orders", &rx.url("/paid"))
        ),
        format!(
            "{}    filter: \"country is null or id > 100\"\n",
            task("nulls", "orders", &rx.url("/nulls"))
        ),
        task("all", "orders", &rx.url("/all")),
    ]
    .concat();
    let setup = Setup::new(&db, "shop", &tasks, "");
    let _p = Pikachu::spawn(&setup, &[]);
    db.exec(
        "INSERT INTO shop.orders VALUES \
         (1, 'open', 150.00, 'DE', '2024-03-01', NOW()), \
         (2, 'paid', 99.99, 'DE', '2024-03-01', NOW()), \
         (3, 'paid', 500.00, 'FR', '2024-03-01', NOW()), \
         (4, 'paid', 500.00, NULL, '2024-03-01', NOW()), \
         (5, 'paid', 500.00, 'AT', '2023-12-31', NOW()); \
         UPDATE shop.orders SET updated_at = '2030-01-01 00:00:00' WHERE id = 1; \
         UPDATE shop.orders SET status = 'paid' WHERE id = 1; \
         UPDATE shop.orders SET status = 'refunded' WHERE id = 1; \
         DELETE FROM shop.orders WHERE id = 4",
    );
    // Every change reaches "all"; once the checkpoint is past the last one, whatever
    // the others did not get, they will not get.
    let events = setup.settled_events(&rx, &db, 9);
    let all = of(&events, "all");
    assert_eq!(all.len(), 9);
    let status: Vec<(&str, Value)> = of(&events, "status")
        .iter()
        .filter(|e| e["event"] == "update")
        .map(|e| {
            (
                e["new_data"]["status"].as_str().unwrap(),
                e["changed"].clone(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [("paid", json!(["status"])), ("refunded", json!(["status"]))],
        "the updated_at-only update is not delivered"
    );
    // Row 1 moves into the filter and out again: both updates arrive.
    let paid: Vec<(i64, &str)> = of(&events, "paid")
        .iter()
        .map(|e| {
            let row = row_of(e);
            (row["id"].as_i64().unwrap(), e["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(paid, [(1, "update"), (1, "update")], "{paid:?}");
    let nulls: Vec<(i64, &str)> = of(&events, "nulls")
        .iter()
        .map(|e| {
            let row = row_of(e);
            (row["id"].as_i64().unwrap(), e["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(nulls, [(4, "insert"), (4, "delete")], "{nulls:?}");
}

#[test]
fn a_bad_filter_or_an_unknown_column_is_refused_naming_the_task() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, a INT)");
    let rx = Receiver::always(200);
    let bad_filter = format!(
        "{}    filter: \"a = = 1\"\n",
        task("broken", "t", &rx.url("/b"))
    );
    let setup = Setup::new(&db, "shop", &bad_filter, "");
    let config = setup.config_path();
    let (code, _, err) =
        crate::harness::run_binary(&["check", "-config", config.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tasks[0].filter: expected a value") && err.contains("a = = 1"),
        "{err}"
    );

    let unknown = task_with(
        "typo",
        "t",
        &rx.url("/t"),
        &["exclude_columns: [secret]", "on_change: [b]"],
    );
    let setup = Setup::new(&db, "shop", &unknown, "");
    let mut p = Pikachu::spawn_unchecked(&setup, &Default::default());
    let status = p.wait_exit(WAIT);
    assert_eq!(status.code(), Some(2), "{}", p.log());
    let log = p.log();
    assert!(
        log.contains("task typo: `shop`.`t` has no column secret (exclude_columns), b (on_change); its columns are id, a"),
        "{log}"
    );
}

#[test]
fn max_rate_spaces_one_tasks_requests_and_not_the_others() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let tasks = [
        task_with("limited", "t", &rx.url("/limited"), &["max_rate: 20"]),
        task("free", "t", &rx.url("/free")),
    ]
    .concat();
    let setup = Setup::new(&db, "shop", &tasks, "");
    let p = Pikachu::spawn(&setup, &[]);
    let values: Vec<String> = (1..=60).map(|i| format!("({i})")).collect();
    db.exec(&format!("INSERT INTO shop.t VALUES {}", values.join(", ")));
    let started = Instant::now();
    let events = setup.settled_events(&rx, &db, 120);
    let took = started.elapsed();
    // 60 requests at 20/s: the last leaves at least 59/20 s after the first.
    assert!(took >= Duration::from_millis(2_900), "{took:?}");
    // Per-key order is untouched: ids arrive in insert order for one worker's keys;
    // every row arrived once to each task.
    for t in ["limited", "free"] {
        let mut ids: Vec<i64> = of(&events, t)
            .iter()
            .map(|e| e["data"]["id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=60).collect::<Vec<_>>(), "{t}");
    }
    let metrics = p.metrics_text();
    let waited = |task: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "pikachu_limit_wait_seconds_total{{task=\"{task}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(waited("limited") > 1.0, "{metrics}");
    assert_eq!(waited("free"), 0.0, "the other task never waits: {metrics}");
}

#[test]
fn a_429_with_retry_after_slows_only_its_endpoint() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    // The first request of the busy endpoint is told to come back in 3 s.
    let busy = Receiver::with_policy(|n, _| {
        if n == 0 {
            (
                429,
                vec![("Retry-After".into(), "3".into())],
                Duration::ZERO,
            )
        } else {
            (200, vec![], Duration::ZERO)
        }
    });
    let other = Receiver::always(200);
    let tasks = [
        task("busy", "t", &busy.url("/busy")),
        task("other", "t", &other.url("/other")),
    ]
    .concat();
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 2\n  retry_base_delay: 100ms\n  retry_max_delay: 10s\n  shutdown_timeout: 5s\n",
    );
    let _p = Pikachu::spawn(&setup, &[]);
    let values: Vec<String> = (1..=20).map(|i| format!("({i})")).collect();
    db.exec(&format!("INSERT INTO shop.t VALUES {}", values.join(", ")));
    other.wait_for_events(20, WAIT);
    // Everything of the other endpoint arrived while the busy one still waits out its
    // Retry-After: it has had its one answered request, nothing more.
    let busy_requests = busy.requests();
    assert_eq!(
        busy_requests.iter().filter(|r| r.status == 429).count(),
        1,
        "{busy_requests:?}"
    );
    assert!(busy_requests.len() <= 2, "{busy_requests:?}");
    busy.wait_for_events(20, WAIT);
}

#[test]
fn txn_metadata_says_where_a_change_stands_in_its_transaction() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let rx = Receiver::always(200);
    let tasks = [
        task_with("txn", "t", &rx.url("/txn"), &["txn: true"]),
        task("plain", "t", &rx.url("/plain")),
    ]
    .concat();
    let setup = Setup::new(&db, "shop", &tasks, "");
    let _p = Pikachu::spawn(&setup, &[]);
    db.exec(
        "BEGIN; INSERT INTO shop.t VALUES (1, 0), (2, 0); UPDATE shop.t SET v = 1 WHERE id = 1; \
         COMMIT; INSERT INTO shop.t VALUES (3, 0)",
    );
    let events = setup.settled_events(&rx, &db, 8);
    let mut txn: Vec<&Value> = of(&events, "txn");
    txn.sort_by_key(|e| {
        (
            e["txn"]["id"].as_str().unwrap_or_default().to_owned(),
            e["txn"]["seq"].as_u64(),
        )
    });
    let meta: Vec<(u64, bool)> = txn
        .iter()
        .map(|e| {
            (
                e["txn"]["seq"].as_u64().unwrap(),
                e["txn"]["last"].as_bool().unwrap(),
            )
        })
        .collect();
    let first_id = txn[0]["txn"]["id"].clone();
    let same: Vec<bool> = txn.iter().map(|e| e["txn"]["id"] == first_id).collect();
    assert_eq!(same.iter().filter(|s| **s).count(), 3, "{txn:?}");
    assert_eq!(first_id, txn[0]["gtid"], "the GTID is the transaction's id");
    assert!(
        meta.contains(&(2, true)) && meta.contains(&(0, false)) && meta.contains(&(1, false)),
        "{meta:?}"
    );
    assert_eq!(
        meta.iter().filter(|(_, last)| *last).count(),
        2,
        "one last per transaction: {meta:?}"
    );
    assert!(of(&events, "plain").iter().all(|e| e.get("txn").is_none()));
}
