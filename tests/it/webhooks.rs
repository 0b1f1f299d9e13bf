//! End to end: the real binary against a real MariaDB delivers inserts, updates and
//! deletes of the watched tables as the SPEC's webhook, with its headers and signature.

use std::time::Duration;

use crate::harness::{run_binary, task, MariaDb, Receiver, Setup};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn insert_update_delete_arrive_as_the_spec_envelope() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(40))");
    let rx = Receiver::always(200);
    let setup = Setup::new(
        &db,
        "shop",
        &task("user_monitor", "users", &rx.url("/hook")),
        "",
    );
    let p = setup.start();
    db.exec("INSERT INTO shop.users VALUES (42, 'Ann', 'a@x.io')");
    db.exec("UPDATE shop.users SET name = 'Ann B' WHERE id = 42");
    db.exec("DELETE FROM shop.users WHERE id = 42");
    let events = rx.wait_for_events(3, WAIT);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["insert", "update", "delete"], "{}", p.log());

    let ins = &events[0];
    assert_eq!(ins["task_id"], "user_monitor");
    assert_eq!(ins["database"], "shop");
    assert_eq!(ins["table"], "users");
    assert_eq!(ins["primary_id"], 42);
    assert_eq!(
        ins["data"],
        json!({"id": 42, "name": "Ann", "email": "a@x.io"})
    );
    assert!(ins.get("old_data").is_none() && ins.get("new_data").is_none());
    let file = ins["position"]["file"].as_str().expect("position.file");
    let pos = ins["position"]["pos"].as_u64().expect("position.pos");
    assert_eq!(ins["id"], format!("{file}:{pos}:0"));
    let ts = ins["timestamp"].as_str().expect("timestamp");
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.contains('T'),
        "RFC 3339 UTC: {ts}"
    );
    assert!(
        ins["gtid"]
            .as_str()
            .is_some_and(|g| g.split('-').count() == 3),
        "MariaDB GTID: {ins}"
    );

    let upd = &events[1];
    assert_eq!(
        upd["old_data"],
        json!({"id": 42, "name": "Ann", "email": "a@x.io"})
    );
    assert_eq!(
        upd["new_data"],
        json!({"id": 42, "name": "Ann B", "email": "a@x.io"})
    );
    assert!(upd.get("data").is_none());
    let del = &events[2];
    assert_eq!(
        del["data"],
        json!({"id": 42, "name": "Ann B", "email": "a@x.io"})
    );

    let req = &rx.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook");
    assert_eq!(req.headers["content-type"], "application/json");
    assert!(req.headers["user-agent"].starts_with("pikachu/"));
    assert_eq!(
        req.headers["x-pikachu-event-id"],
        ins["id"].as_str().unwrap()
    );
    assert_eq!(req.headers["x-pikachu-task-id"], "user_monitor");
    assert!(
        !req.headers.contains_key("webhook-signature"),
        "unsigned without a secret"
    );
}

#[test]
fn tasks_match_exact_tables_events_and_sign_with_their_secret() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.`order` (id INT PRIMARY KEY, v INT); \
         CREATE TABLE shop.`user-events` (id INT PRIMARY KEY, v INT); \
         CREATE TABLE shop.`1st` (a INT, b INT, PRIMARY KEY (a, b)); \
         CREATE TABLE shop.orders (id INT PRIMARY KEY, v INT); CREATE TABLE shop.nokey (v INT)",
    );
    let rx = Receiver::always(200);
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let tasks = format!(
        "  - task_id: orders_all\n    table_name: order\n    events: [insert, update, delete]\n    callback_url: /orders\n    secret: {secret}\n    headers:\n      Authorization: Bearer t0k3n\n\
         \x20 - task_id: orders_deletes\n    table_name: order\n    events: [delete]\n    callback_url: /orders-deleted\n\
         \x20 - task_id: hyphen\n    table_name: user-events\n    events: [insert]\n    callback_url: {}\n\
         \x20 - task_id: digit\n    table_name: 1st\n    events: [insert]\n    callback_url: /digit\n\
         \x20 - task_id: nokey\n    table_name: nokey\n    events: [insert]\n    callback_url: /nokey\n",
        rx.url("/hyphen")
    );
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        &format!("callback_host: {}\n", rx.url("")),
    );
    let p = setup.start();
    db.exec("INSERT INTO shop.orders VALUES (1, 1)"); // a similar name: not watched
    db.exec("INSERT INTO shop.`order` VALUES (7, 1)");
    db.exec("DELETE FROM shop.`order` WHERE id = 7");
    db.exec("INSERT INTO shop.`user-events` VALUES (1, 2)");
    db.exec("UPDATE shop.`user-events` SET v = 3"); // hyphen task takes inserts only
    db.exec("INSERT INTO shop.`1st` VALUES (3, 4)");
    db.exec("INSERT INTO shop.nokey VALUES (9)");
    // Every row above was read: what was to be delivered is, nothing else comes.
    let events = setup.settled_events(&rx, &db, 6);
    let by_task = |t: &str| {
        events
            .iter()
            .filter(|e| e["task_id"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(by_task("orders_all").len(), 2, "{}", p.log());
    assert_eq!(by_task("orders_deletes").len(), 1);
    assert_eq!(by_task("orders_deletes")[0]["event"], "delete");
    assert_eq!(by_task("hyphen").len(), 1);
    assert_eq!(by_task("hyphen")[0]["table"], "user-events");
    assert_eq!(by_task("digit")[0]["primary_id"], json!({"a": 3, "b": 4}));
    assert_eq!(by_task("nokey")[0]["primary_id"], json!(null));
    assert!(
        events.iter().all(|e| e["table"] != "orders"),
        "orders is not watched"
    );
    assert_eq!(events.len(), 6);

    let reqs = rx.requests();
    let signed = reqs
        .iter()
        .find(|r| r.path == "/orders")
        .expect("request to /orders");
    assert_eq!(signed.headers["authorization"], "Bearer t0k3n");
    let id = &signed.headers["webhook-id"];
    let ts: i64 = signed.headers["webhook-timestamp"]
        .parse()
        .expect("unix seconds");
    let key = pikachu::signature::SigningKey::parse(secret).expect("key");
    assert_eq!(id, &signed.headers["x-pikachu-event-id"]);
    assert!(
        key.verify(id, ts, &signed.raw, &signed.headers["webhook-signature"]),
        "signature verifies"
    );
    let unsigned = reqs
        .iter()
        .find(|r| r.path == "/orders-deleted")
        .expect("request");
    assert!(!unsigned.headers.contains_key("webhook-signature"));
}

#[test]
fn version_and_help_and_bad_config_exit_codes() {
    let (code, out, _) = run_binary(&["version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("pikachu {}", env!("CARGO_PKG_VERSION")));
    let (code, out, _) = run_binary(&["-version"], &[]);
    assert_eq!((code, out.trim().starts_with("pikachu ")), (0, true));
    let (code, out, _) = run_binary(&["--help"], &[]);
    assert_eq!(code, 0);
    for opt in [
        "--config",
        "--tasks",
        "check",
        "listen",
        "replay-dead-letters",
    ] {
        assert!(out.contains(opt), "--help explains {opt}:\n{out}");
    }
    let (code, _, err) = run_binary(&["-config", "/nonexistent/config.yaml"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/config.yaml"), "{err}");
}

#[test]
fn refuses_a_server_without_row_format_naming_the_setting() {
    let db = MariaDb::start_with(&["--binlog-format=STATEMENT"]);
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let setup = Setup::new(&db, "shop", "  - task_id: t\n    table_name: t\n    events: [insert]\n    callback_url: http://127.0.0.1:9/x\n", "");
    let (code, _, err) = run_binary(&["-config", setup.config_path().to_str().unwrap()], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("binlog_format") && err.contains("ROW"),
        "{err}"
    );
}
