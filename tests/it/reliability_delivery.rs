//! Delivery guarantees (SPEC 4) seen from the receiver's side: dead letters and their
//! replay, per-key order over many workers (also across a primary-key change), bounded
//! queues with a slow receiver, a purged start position, a checkpoint that never runs
//! ahead of an undelivered event, and the second signal.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::writer::{accepted_in_arrival_order, purge_until_gone};
use crate::harness::{
    position_of, run_binary, task, wait_until, MariaDb, Pikachu, Receiver, Setup,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Accepted envelopes of one path, in arrival order.
fn accepted_on(rx: &Receiver, path: &str) -> Vec<Value> {
    let mut reqs: Vec<_> = rx
        .requests()
        .into_iter()
        .filter(|r| r.path == path && (200..300).contains(&r.status))
        .collect();
    reqs.sort_by_key(|r| r.n);
    reqs.into_iter().map(|r| r.body).collect()
}

#[test]
fn rejected_events_are_dead_lettered_other_tasks_flow_and_replay_delivers_them() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let reject = Arc::new(AtomicBool::new(true));
    let r = reject.clone();
    let rx = Receiver::with_policy(move |_, req| {
        let status = if req.path == "/a" && r.load(Ordering::SeqCst) {
            400
        } else {
            200
        };
        (status, vec![], Duration::ZERO)
    });
    let tasks = format!(
        "{}{}",
        task("a", "t", &rx.url("/a")),
        task("b", "t", &rx.url("/b"))
    );
    let setup = Setup::new(&db, "shop", &tasks, "");
    let mut p = setup.start();
    for i in 1..=10 {
        db.exec(&format!("INSERT INTO shop.t VALUES ({i}, {i})"));
    }
    wait_until("task b's 10 events", WAIT, || {
        accepted_on(&rx, "/b").len() >= 10
    });
    wait_until("task a's 10 dead letters", WAIT, || {
        setup.dead_letters().len() >= 10
    });
    // Every row read: no letter and no delivery of them is still to come.
    setup.wait_until_caught_up(&db);
    let letters = setup.dead_letters();
    assert_eq!(letters.len(), 10, "{letters:?}\n{}", p.log());
    for l in &letters {
        assert_eq!(l["task_id"], "a", "{l}");
        assert_eq!(l["status"], 400, "{l}");
        assert_eq!(l["attempts"], 1, "a 400 is not retried: {l}");
        assert_eq!(l["url"], rx.url("/a"));
        assert!(
            l["error"].as_str().is_some_and(|e| e.contains("400")),
            "{l}"
        );
        assert!(
            l["failed_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{l}"
        );
        assert_eq!(
            l["ids"][0], l["body"]["id"],
            "the letter holds the request whole: {l}"
        );
        assert_eq!(l["body"]["task_id"], "a");
    }
    let mut b_ids: Vec<u64> = accepted_on(&rx, "/b")
        .iter()
        .map(|e| e["data"]["id"].as_u64().expect("id"))
        .collect();
    b_ids.sort();
    assert_eq!(
        b_ids,
        (1..=10).collect::<Vec<_>>(),
        "task b got every row once"
    );

    p.sigterm();
    assert_eq!(p.wait_exit(WAIT).code(), Some(0));
    reject.store(false, Ordering::SeqCst);
    let config = setup.config_path();
    let (code, out, err) = run_binary(
        &[
            "replay-dead-letters",
            "-config",
            config.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(code, 0, "replay: {out}\n{err}");
    assert!(out.contains("10 delivered"), "{out}\n{err}");
    let a = accepted_on(&rx, "/a");
    let mut a_ids: Vec<u64> = a
        .iter()
        .map(|e| e["data"]["id"].as_u64().expect("id"))
        .collect();
    a_ids.sort();
    assert_eq!(a_ids, (1..=10).collect::<Vec<_>>());
    let letter_ids: Vec<&Value> = letters.iter().map(|l| &l["ids"][0]).collect();
    for e in &a {
        assert!(
            letter_ids.contains(&&e["id"]),
            "replayed with its original id: {e}"
        );
    }
    assert!(
        setup.dead_letters().is_empty(),
        "delivered letters leave the file"
    );
}

#[test]
fn per_key_order_holds_over_eight_workers_also_across_a_primary_key_change() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.kv (id INT PRIMARY KEY, seq INT NOT NULL)");
    // Varying answer times so that workers overtake each other.
    let rx = Receiver::with_policy(|n, _| (200, vec![], Duration::from_millis((n as u64 * 7) % 5)));
    let setup = Setup::new(
        &db,
        "shop",
        &task("kv", "kv", &rx.url("/kv")),
        "dispatcher:\n  worker_count: 8\n  retry_base_delay: 50ms\n  retry_max_delay: 500ms\n  shutdown_timeout: 5s\n",
    );
    let p = setup.start();
    let mut sql = vec!["INSERT INTO shop.kv VALUES (1, 0), (2, 0), (3, 0)".to_owned()];
    for s in 1..=40 {
        if s % 2 == 0 {
            // One statement, three rows: three changes routed at once.
            sql.push(format!(
                "UPDATE shop.kv SET seq = {s} WHERE id IN (1, 2, 3)"
            ));
        } else {
            for k in 1..=3 {
                sql.push(format!("UPDATE shop.kv SET seq = {s} WHERE id = {k}"));
            }
        }
    }
    sql.push("UPDATE shop.kv SET id = 10, seq = 41 WHERE id = 1".to_owned());
    for s in 42..=70 {
        sql.push(format!(
            "UPDATE shop.kv SET seq = {s} WHERE id IN (10, 2, 3)"
        ));
    }
    sql.push("DELETE FROM shop.kv WHERE id = 10".to_owned());
    let mut conn = db.conn();
    for q in &sql {
        mysql::prelude::Queryable::query_drop(&mut conn, q).expect("statement");
    }
    // 3 inserts, 3×40 updates, the key change, 3×29 updates, 1 delete.
    let total = 3 + 120 + 1 + 87 + 1;
    setup.settled_events(&rx, &db, total);
    let events = accepted_in_arrival_order(&rx);
    assert_eq!(
        events.len(),
        total,
        "no loss, no duplicate; log:\n{}",
        p.log()
    );

    // Every key's seq strictly increases in arrival order.
    let mut seqs: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut at: HashMap<(i64, i64), usize> = HashMap::new();
    let mut key_change = None;
    for (n, e) in events.iter().enumerate() {
        let row = if e["event"] == "update" {
            &e["new_data"]
        } else {
            &e["data"]
        };
        let (key, seq) = (
            row["id"].as_i64().expect("id"),
            row["seq"].as_i64().expect("seq"),
        );
        if e["event"] == "update" && e["old_data"]["id"] != e["new_data"]["id"] {
            assert_eq!((e["old_data"]["id"].as_i64(), key), (Some(1), 10));
            key_change = Some(n);
        }
        if e["event"] == "delete" {
            at.insert((key, -1), n);
            continue;
        }
        seqs.entry(key).or_default().push(seq);
        at.insert((key, seq), n);
    }
    let expect = |range: std::ops::RangeInclusive<i64>| -> Vec<i64> {
        std::iter::once(0).chain(range).collect()
    };
    assert_eq!(
        seqs[&2],
        expect(1..=70)
            .into_iter()
            .filter(|&s| s != 41)
            .collect::<Vec<_>>(),
        "key 2 in commit order"
    );
    assert_eq!(seqs[&3], seqs[&2], "key 3 in commit order");
    assert_eq!(seqs[&1], expect(1..=40), "key 1 in commit order");
    assert_eq!(
        seqs[&10],
        (41..=70).collect::<Vec<_>>(),
        "key 10 in commit order"
    );
    let change = key_change.expect("the key-changing update arrived");
    assert_eq!(at[&(10, 41)], change);
    assert!(
        at[&(1, 40)] < change,
        "the key change did not overtake key 1's last change"
    );
    assert!(
        change < at[&(10, 42)],
        "key 10's next change did not overtake the key change"
    );
    assert!(at[&(10, 70)] < at[&(10, -1)], "the delete came last");
}

#[test]
fn slow_receiver_with_tiny_queues_pauses_reading_and_loses_nothing() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let rx = Receiver::with_policy(|_, _| (200, vec![], Duration::from_millis(20)));
    let setup = Setup::new(
        &db,
        "shop",
        &task("t", "t", &rx.url("/t")),
        "dispatcher:\n  worker_count: 2\n  queue_size: 4\n  retry_base_delay: 50ms\n  shutdown_timeout: 5s\n\
         monitor:\n  event_queue_size: 4\n  flush_interval: 200ms\n  heartbeat_period: 500ms\n",
    );
    let p = setup.start();
    let rss_before = vm_rss_kb(p.pid());
    for chunk in 0..12 {
        let rows: Vec<String> = (1..=10)
            .map(|i| format!("({}, {i})", chunk * 10 + i))
            .collect();
        db.exec(&format!("INSERT INTO shop.t VALUES {}", rows.join(", ")));
    }
    let mut max_depth = 0;
    let mut samples = 0;
    let deadline = Instant::now() + WAIT;
    while rx.events().len() < 120 && Instant::now() < deadline {
        if let Some((_, h)) = p.health() {
            max_depth = max_depth.max(h["event_queue_size"].as_u64().expect("event_queue_size"));
            samples += 1;
        }
        // Samples /health while the rows go through (bounded by the deadline above).
        std::thread::sleep(Duration::from_millis(5));
    }
    setup.wait_until_caught_up(&db);
    let mut ids: Vec<u64> = rx
        .events()
        .iter()
        .map(|e| e["data"]["id"].as_u64().expect("id"))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=120).collect::<Vec<_>>(),
        "every row once; log:\n{}",
        p.log()
    );
    assert!(
        samples > 10 && max_depth > 0,
        "the queue was seen in use ({samples} samples)"
    );
    assert!(
        max_depth <= 4,
        "event_queue_size {max_depth} exceeded the configured queue_size 4"
    );
    let rss_after = vm_rss_kb(p.pid());
    eprintln!("VmRSS {rss_before:?} kB -> {rss_after:?} kB, max queue depth {max_depth}");
    if let (Some(_), Some(after)) = (rss_before, rss_after) {
        assert!(
            after < 200_000,
            "VmRSS {after} kB: memory is not bounded by the queues"
        );
    }
}

/// Running (not exited, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("State:") && !l.contains('Z'))
    })
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_purged_checkpoint_stops_with_exit_3_and_says_what_to_do() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    let mut p = setup.start();
    db.exec("INSERT INTO shop.t VALUES (1, 1)");
    rx.wait_for_events(1, WAIT);
    p.sigterm();
    assert_eq!(p.wait_exit(WAIT).code(), Some(0));
    let saved = setup.checkpoint().expect("a checkpoint after a clean stop");
    let (saved_file, _) = position_of(&saved);

    db.exec("FLUSH BINARY LOGS");
    db.exec("INSERT INTO shop.t VALUES (2, 2)"); // an event that would be skipped
    db.exec("FLUSH BINARY LOGS");
    let (current, _) = db.master_status();
    purge_until_gone(&db, &current, &saved_file);

    let (code, out, err) = run_binary(
        &["-config", setup.config_path().to_str().expect("path")],
        &[],
    );
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(&saved_file) && err.contains("purged"),
        "names the position and the cause:\n{err}"
    );
    assert!(
        err.contains("start_from") && err.contains("checkpoint"),
        "says what to do:\n{err}"
    );
    assert_eq!(
        setup.checkpoint(),
        Some(saved),
        "the checkpoint is left as it was"
    );
    assert_eq!(rx.events().len(), 1, "nothing after the gap was delivered");
}

/// Inserts the running daemon counts as delivered (`/metrics`).
fn delivered_inserts(p: &Pikachu) -> u64 {
    p.metrics()["tasks"][0]["events_delivered"]["insert"]
        .as_u64()
        .unwrap_or(0)
}

/// How often the receiver refused key 1.
fn refusals_of_key_1(rx: &Receiver) -> usize {
    rx.requests()
        .iter()
        .filter(|r| r.status == 503 && r.body["data"]["id"] == 1)
        .count()
}

#[test]
fn checkpoint_never_passes_an_undelivered_event_also_across_kill_9() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    let rx = Receiver::with_policy(move |_, req| {
        let stuck = req.body["data"]["id"] == 1 && f.load(Ordering::SeqCst);
        (if stuck { 503 } else { 200 }, vec![], Duration::ZERO)
    });
    let setup = Setup::new(
        &db,
        "shop",
        &task("t", "t", &rx.url("/t")),
        "dispatcher:\n  worker_count: 4\n  max_retries: -1\n  retry_base_delay: 20ms\n  retry_max_delay: 100ms\n  shutdown_timeout: 2s\n",
    );
    let mut p = setup.start();
    for id in [2, 3, 4, 5, 1] {
        db.exec(&format!("INSERT INTO shop.t VALUES ({id}, 0)"));
    }
    for id in 6..=30 {
        db.exec(&format!("INSERT INTO shop.t VALUES ({id}, 0)"));
    }
    let delivered = |rx: &Receiver| -> Vec<u64> {
        rx.events()
            .iter()
            .filter_map(|e| e["data"]["id"].as_u64())
            .collect()
    };
    // One key failing holds back no other key, also not those sharing its worker.
    wait_until("every key but 1 delivered", WAIT, || {
        delivered(&rx).len() >= 29
    });
    assert!(!delivered(&rx).contains(&1));
    let refused = rx
        .all_events()
        .into_iter()
        .find(|e| e["data"]["id"] == 1)
        .expect("key 1 was attempted");
    let stuck_at = position_of(&refused["position"]);
    let fifth = rx
        .events()
        .into_iter()
        .find(|e| e["data"]["id"] == 5)
        .expect("key 5");
    let before_stuck = position_of(&fifth["position"]);
    let furthest = rx
        .events()
        .iter()
        .map(|e| position_of(&e["position"]))
        .max()
        .expect("events");
    assert!(
        furthest > stuck_at,
        "events after the stuck one were delivered"
    );
    // Every change but key 1's acknowledged, and the checkpoint saved up to key 1's: it
    // can move no further while key 1 is refused.
    wait_until("the workers to count 29 deliveries", WAIT, || {
        delivered_inserts(&p) >= 29
    });
    wait_until("the checkpoint to move up to the stuck event", WAIT, || {
        setup
            .checkpoint_position()
            .is_some_and(|cp| cp > before_stuck)
    });
    let cp = setup.checkpoint_position().expect("checkpoint");
    assert!(
        cp <= stuck_at,
        "checkpoint {cp:?} passed the undelivered event at {stuck_at:?}"
    );
    assert!(
        cp > before_stuck,
        "checkpoint {cp:?} moved up to the stuck event (after {before_stuck:?})"
    );

    p.kill9();
    let refused_before = refusals_of_key_1(&rx);
    let p = setup.start();
    // After the restart: everything after the checkpoint is read again, the changes after
    // key 1's delivered again (25 of them), key 1 refused again.
    wait_until("the changes after key 1 delivered again", WAIT, || {
        delivered_inserts(&p) >= 25
    });
    wait_until("key 1 refused again after the restart", WAIT, || {
        refusals_of_key_1(&rx) > refused_before
    });
    assert_eq!(
        position_of(&setup.checkpoint().expect("checkpoint")),
        cp,
        "still held back after the restart"
    );
    failing.store(false, Ordering::SeqCst);
    wait_until("key 1 delivered after recovery", WAIT, || {
        delivered(&rx).contains(&1)
    });
    let ok = rx
        .events()
        .into_iter()
        .find(|e| e["data"]["id"] == 1)
        .expect("key 1");
    assert_eq!(
        ok["id"], refused["id"],
        "the same id on every attempt and after the restart"
    );
    assert_eq!(position_of(&ok["position"]), stuck_at);
    wait_until("the checkpoint to pass the delivered event", WAIT, || {
        setup
            .checkpoint()
            .is_some_and(|c| position_of(&c) > stuck_at)
    });
    let mut ids = delivered(&rx);
    ids.sort();
    ids.dedup();
    assert_eq!(ids, (1..=30).collect::<Vec<_>>(), "log:\n{}", p.log());
}

#[test]
fn a_second_signal_exits_at_once_with_130_and_a_valid_checkpoint() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let hang = Arc::new(AtomicBool::new(true));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (h, a) = (hang.clone(), arrived.clone());
    let answered_after_restart = Arc::new(Mutex::new(Vec::<Value>::new()));
    let later = answered_after_restart.clone();
    let rx = Receiver::with_policy(move |_, req| {
        a.fetch_add(1, Ordering::SeqCst);
        if h.load(Ordering::SeqCst) {
            // Hangs until the test lets go; the request pikachu sent is long gone then.
            // (A receiver held on purpose: the test waits on pikachu's log, not on this.)
            while h.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return (503, vec![], Duration::ZERO);
        }
        later.lock().expect("lock").push(req.body.clone());
        (200, vec![], Duration::ZERO)
    });
    let setup = Setup::new(
        &db,
        "shop",
        &task("t", "t", &rx.url("/t")),
        "dispatcher:\n  worker_count: 2\n  timeout: 60s\n  shutdown_timeout: 30s\n",
    );
    let mut p = setup.start();
    db.exec("INSERT INTO shop.t VALUES (1, 1)");
    wait_until("the request to reach the receiver", WAIT, || {
        arrived.load(Ordering::SeqCst) >= 1
    });
    p.sigterm();
    // The first signal stopped reading and left the hanging delivery to finish.
    p.wait_for_log("reading stopped", WAIT);
    assert!(
        alive(p.pid()),
        "after the first signal it still waits for the delivery; log:\n{}",
        p.log()
    );
    assert!(p.log().contains("signal received"), "{}", p.log());
    p.signal("INT");
    let started = Instant::now();
    let status = p.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "log:\n{}", p.log());
    eprintln!("exited {:?} after the second signal", started.elapsed());
    let text =
        std::fs::read_to_string(setup.data_dir().join("checkpoint.json")).expect("checkpoint file");
    let cp: Value = serde_json::from_str(&text).expect("the checkpoint is whole JSON");
    assert!(cp["file"].is_string() && cp["pos"].is_u64(), "{cp}");

    hang.store(false, Ordering::SeqCst);
    let p = setup.start();
    wait_until("the undelivered row after the restart", WAIT, || {
        answered_after_restart
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e["data"]["id"] == 1)
    });
    assert!(
        p.log().contains("resuming from the checkpoint"),
        "{}",
        p.log()
    );
}

#[test]
fn sigterm_with_a_receiver_down_or_hanging_gives_up_at_the_deadline_and_exits_0() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)");
    let down = Arc::new(AtomicBool::new(true));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (d, a) = (down.clone(), arrived.clone());
    // Key 1 hangs far longer than any deadline; every other key gets 503.
    let rx = Receiver::with_policy(move |_, req| {
        if !d.load(Ordering::SeqCst) {
            return (200, vec![], Duration::ZERO);
        }
        a.fetch_add(1, Ordering::SeqCst);
        if req.body["data"]["id"] == 1 {
            // Held on purpose; the test waits on pikachu's log, not on this.
            while d.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        (503, vec![], Duration::ZERO)
    });
    let setup = Setup::new(
        &db,
        "shop",
        &task("t", "t", &rx.url("/t")),
        "dispatcher:\n  worker_count: 2\n  queue_size: 2\n  timeout: 120s\n  max_retries: -1\n  retry_base_delay: 20ms\n  retry_max_delay: 100ms\n  shutdown_timeout: 1s\n\
         monitor:\n  event_queue_timeout: 100ms\n  flush_interval: 200ms\n  heartbeat_period: 500ms\n",
    );
    let mut p = setup.start();
    let start = position_of(&setup.checkpoint().expect("checkpoint at start"));
    for id in 1..=12 {
        // Enough rows to fill the queues, so that the reader is blocked too.
        db.exec(&format!("INSERT INTO shop.t VALUES ({id}, 0)"));
    }
    wait_until("key 1 to reach the receiver", WAIT, || {
        arrived.load(Ordering::SeqCst) >= 1
    });
    // The queues are full and the reader waits for room (it says so after
    // event_queue_timeout): the signal comes while it is blocked.
    p.wait_for_log("reading the binlog is paused", WAIT);
    p.sigterm();
    let status = p.wait_exit(Duration::from_secs(20));
    let log = p.log();
    assert_eq!(
        status.code(),
        Some(0),
        "a signal is a clean stop even when deliveries are given up; log:\n{log}"
    );
    assert!(
        log.contains("deadline"),
        "the log says deliveries were given up:\n{log}"
    );
    assert_eq!(
        position_of(&setup.checkpoint().expect("checkpoint")),
        start,
        "nothing was delivered, nothing passed"
    );
    down.store(false, Ordering::SeqCst);
    let p = setup.start();
    wait_until("all 12 rows after the restart", WAIT, || {
        let mut ids: Vec<u64> = rx
            .events()
            .iter()
            .filter_map(|e| e["data"]["id"].as_u64())
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() == 12
    });
    drop(p);
}
