//! Issue 12: binlog files as a source. `replay-binlog` on the binlogs MySQL 5.1–9.6 and
//! MariaDB wrote (../shared/binlogs), clear errors for bad files, and the catch-up from
//! an archive of a purged binlog followed by the live stream, on a real MariaDB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{
    free_port, run_binary, task, wait_until, MariaDb, Pikachu, Receiver, Setup, TempDir,
};

const WAIT: Duration = Duration::from_secs(30);

fn recorded(name: &str) -> PathBuf {
    crate::harness::repo_root()
        .join("../shared/binlogs")
        .join(name)
}

/// A config whose database nobody listens on: the files are all there is.
fn offline_config(dir: &Path, tasks: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let yaml = format!(
        "database:\n  host: 127.0.0.1\n  port: {}\n  user: nobody\n  database: test\n  server_id: 9\n  \
         connect_timeout: 1s\nlog:\n  level: debug\ndata_dir: {}\ndispatcher:\n  worker_count: 2\n\
         tasks:\n{tasks}",
        free_port(),
        dir.join("data").display()
    );
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn replay(config: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["replay-binlog", "-config", config.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    let (code, out, err) = run_binary(&all, &[]);
    (code, format!("{out}{err}"))
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn recorded_mysql_and_mariadb_binlogs_replay_as_the_live_reader_delivers() {
    let dir = TempDir::new("recorded");
    let rx = Receiver::always(200);
    let tasks = [
        task("outbox", "toddy_test.outbox", &rx.url("/outbox")),
        task("t1", "mysql.t1", &rx.url("/t1")),
        task("orders", "test.orders", &rx.url("/orders")),
        task("tb1", "test.tb1", &rx.url("/tb1")),
        task("ba", "test.ba", &rx.url("/ba")),
        task("json", "mysql.t", &rx.url("/json")),
    ]
    .concat();
    let config = offline_config(dir.path(), &tasks);
    let of = |path: &str| -> Vec<Value> {
        rx.events()
            .into_iter()
            .filter(|e| e["task_id"] == path)
            .collect()
    };

    // MariaDB 10.5, binlog_row_metadata=FULL: names, key and types from the file.
    let (code, out) = replay(&config, &[recorded("mariadb-bin.000001").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let outbox = rx.wait_for_events(2, WAIT);
    assert_eq!(
        ids(&outbox),
        ["mariadb-bin.000001:612:0", "mariadb-bin.000001:984:0"]
    );
    let blob = base64::engine::general_purpose::STANDARD.encode(br#"{"foo":1}"#);
    for (e, gtid) in outbox.iter().zip(["0-1-1", "0-1-2"]) {
        assert_eq!(e["event"], "insert");
        assert_eq!(e["gtid"], gtid);
        assert_eq!(e["data"]["topic"], "foo");
        assert_eq!(e["data"]["event_type"], "JSON");
        assert_eq!(e["data"]["event"], blob.as_str(), "a BLOB is base64");
        assert_eq!(e["primary_id"], e["data"]["id"]);
    }
    assert!(out.contains("checkpoint at mariadb-bin.000001:"), "{out}");

    // MySQL 8.0.26 with invisible columns: they are columns like the others.
    let (code, out) = replay(
        &config,
        &[recorded("binlog-invisible-columns.000001")
            .to_str()
            .unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    wait_until("t1's three changes", WAIT, || of("t1").len() == 3);
    let t1 = of("t1");
    // What `mariadb-binlog -v` shows for the first row: @1=1 @2=2 @3=-3 @4='4'
    // @5='\x05' @6=6000000000.
    assert_eq!(
        t1[0]["data"],
        json!({"f1": 1, "f2": 2, "f3": -3, "f4": "4", "f5": "BQ==", "f6": 6_000_000_000u64})
    );
    assert_eq!(t1[2]["event"], "update");
    assert_eq!(t1[2]["new_data"]["f1"], 111);
    assert_eq!(
        t1[0]["gtid"], "97c7af02-4c50-11ec-acd8-681842034964:3",
        "MySQL GTIDs are uuid:n"
    );

    // MySQL 9.6, a tagged GTID; MINIMAL metadata and no server: columns by position.
    let (code, out) = replay(
        &config,
        &[recorded("binlog_transaction_with_GTID_TAG.000001")
            .to_str()
            .unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    wait_until("the order", WAIT, || of("orders").len() == 1);
    let order = &of("orders")[0];
    let gtid = order["gtid"].as_str().unwrap_or_default();
    let parts: Vec<&str> = gtid.split(':').collect();
    assert_eq!(parts.len(), 3, "uuid:tag:n: {gtid}");
    assert_eq!(parts[1], "mytag", "{gtid}");
    let names: Vec<&String> = order["data"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["@1", "@2", "@3"]);
    assert!(
        out.contains("the columns of `test`.`orders` are named by position (@1, @2"),
        "{out}"
    );
    // The file's PREVIOUS_GTIDS (1-13 and mytag:1-2 of its server) and its one tagged
    // transaction make the GTID set the checkpoint keeps for a failover by GTID.
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(
        checkpoint["gtid_set"], "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-3",
        "{checkpoint}"
    );

    // MySQL 8.0.32, a zstd-compressed transaction.
    let (code, out) = replay(
        &config,
        &[recorded("transaction_compression.000001").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    wait_until("tb1's row", WAIT, || of("tb1").len() == 1);
    assert!(of("tb1")[0]["id"]
        .as_str()
        .unwrap()
        .starts_with("transaction_compression.000001:274:"));

    // MySQL 8.0.22 binary JSON, with two virtual columns MySQL computed from it
    // (name = json_col->>'$.name', age = json_col->'$.age'): each row checks itself.
    let (code, out) = replay(&config, &[recorded("json.binlog.000001").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    wait_until("the JSON rows", WAIT, || of("json").len() == 12);
    for e in of("json") {
        for row in [&e["data"], &e["new_data"], &e["old_data"]] {
            if row.is_null() {
                continue;
            }
            assert_eq!(row["@3"], row["@2"]["name"], "{e}");
            assert_eq!(row["@4"], row["@2"]["age"], "{e}");
        }
    }
    // Its PARTIAL_UPDATE_ROWS event comes with a MINIMAL before image (the key only):
    // the new documents cannot be known, so the event is a dead letter that says why,
    // and reading goes on.
    let letters = std::fs::read_to_string(dir.path().join("data/dead-letters.jsonl")).unwrap();
    let letter: Value = serde_json::from_str(letters.lines().last().unwrap()).unwrap();
    assert_eq!(letter["ids"], json!(["json.binlog.000001:3750:*"]));
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("a partial JSON update, but the before image does not hold the column"),
        "{letter}"
    );
    assert!(
        out.contains("checkpoint at json.binlog.000001:4011"),
        "{out}"
    );

    // MySQL 5.1 v1 rows events with partial row images: only the present columns.
    let (code, out) = replay(
        &config,
        &[recorded("update-partial-row.binlog").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    wait_until("ba's changes", WAIT, || of("ba").len() == 6);
    let update = of("ba")
        .into_iter()
        .find(|e| e["event"] == "update")
        .expect("an update");
    assert_eq!(update["old_data"], json!({"@1": 4, "@3": 4}));
    assert_eq!(update["new_data"], json!({"@1": 4, "@3": 40}));

    // Every other recorded binlog reads without an error.
    for name in [
        "write-full-row.binlog",
        "update-full-row.binlog",
        "write-partial-row.binlog",
        "binlog_transaction_previous_GTID_no_tag.000001",
    ] {
        let (code, out) = replay(&config, &[recorded(name).to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}");
    }
    wait_until("ba's other changes", WAIT, || of("ba").len() == 6 * 4);
}

#[test]
fn bad_files_stop_with_the_file_and_offset() {
    let dir = TempDir::new("badfiles");
    let rx = Receiver::always(200);
    let config = offline_config(dir.path(), &task("t", "test.t", &rx.url("/t")));
    let checkpoint = || {
        let text = std::fs::read_to_string(dir.path().join("data/checkpoint.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()
    };

    let (code, out) = replay(
        &config,
        &[recorded("binlog_truncated_event.000001").to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("binlog_truncated_event.000001: the file ends inside an event at offset 4 (the file has 14 bytes)"),
        "{out}"
    );

    // A relay log whose last event is cut short: the good events are read, the
    // checkpoint stays at the last complete transaction, the error names the offset.
    let (code, out) = replay(
        &config,
        &[recorded("corrupt-relay-bin.000624").to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("corrupt-relay-bin.000624: cannot read the event at offset 91204"),
        "{out}"
    );
    assert_eq!(checkpoint()["file"], "corrupt-relay-bin.000624");
    assert_eq!(checkpoint()["pos"], 91117);

    let (code, out) = replay(&config, &[recorded("README.md").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("README.md is not a binlog file"), "{out}");
    assert!(rx.events().is_empty(), "no task watches these tables");
}

/// `mariadb-binlog --read-from-remote-server --raw`: what archives binlogs in production.
fn archive(db: &MariaDb, dir: &Path, first: &str) {
    let out = Command::new("mariadb-binlog")
        .args(["--read-from-remote-server", "--raw", "--to-last-log"])
        .arg("--host=127.0.0.1")
        .arg(format!("--port={}", db.port()))
        .arg("--user=root")
        .arg(format!("--result-file={}/", dir.display()))
        .arg(first)
        .output()
        .expect("run mariadb-binlog");
    assert!(
        out.status.success(),
        "mariadb-binlog: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_purged_binlog_is_caught_up_from_the_archive_then_live() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))");
    let rx = Receiver::always(200);
    let archive_dir = TempDir::new("archive");
    let setup = Setup::new(
        &db,
        "shop",
        &task("t", "t", &rx.url("/t")),
        &format!("binlog_archive: {}\n", archive_dir.path().display()),
    );
    let mut p = Pikachu::spawn(&setup, &[]);
    db.exec("INSERT INTO shop.t VALUES (1, 'live'), (2, 'live')");
    let live = setup.settled_events(&rx, &db, 2);
    p.sigterm();
    p.wait_exit(WAIT);
    let checkpoint_file = setup.checkpoint().unwrap()["file"]
        .as_str()
        .unwrap()
        .to_owned();

    // While pikachu is down: changes across three binlog files, archived, then purged.
    db.exec("INSERT INTO shop.t VALUES (3, 'archived'); FLUSH BINARY LOGS");
    db.exec("UPDATE shop.t SET v = 'archived too' WHERE id = 1; DELETE FROM shop.t WHERE id = 2");
    db.exec("FLUSH BINARY LOGS; INSERT INTO shop.t VALUES (4, 'archived')");
    db.exec("FLUSH BINARY LOGS");
    archive(&db, archive_dir.path(), &checkpoint_file);
    let (current, _) = db.master_status();
    db.exec(&format!("PURGE BINARY LOGS TO '{current}'"));
    // MariaDB keeps a file that crash recovery may still need: the first file left is
    // where live reading must go on.
    let first_left = db.query_strings("SHOW BINARY LOGS")[0][0].clone().unwrap();
    assert!(first_left > checkpoint_file, "{first_left} was not purged");
    db.exec("INSERT INTO shop.t VALUES (5, 'after the purge')");

    let p = Pikachu::spawn(&setup, &[]);
    let all = setup.settled_events(&rx, &db, 2 + 5);
    let log = p.log();
    assert!(
        log.contains(&format!("the checkpoint position {checkpoint_file}:"))
            && log.contains("was purged from the server; reading ")
            && log.contains("archived file(s) from"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "the archive is read; continuing live from {first_left}:4"
        )),
        "{first_left}: {log}"
    );
    // Different keys may arrive in any order (per-key order is what holds): in binlog
    // order.
    let mut after = all[2..].to_vec();
    after.sort_by_key(|e| crate::harness::position_of(&e["position"]));
    let kinds: Vec<(String, Value)> = after
        .iter()
        .map(|e| {
            let row = crate::harness::row_of(e);
            (e["event"].as_str().unwrap().to_owned(), row["id"].clone())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("insert".to_owned(), json!(3)),
            ("update".to_owned(), json!(1)),
            ("delete".to_owned(), json!(2)),
            ("insert".to_owned(), json!(4)),
            ("insert".to_owned(), json!(5)),
        ],
        "every change once, in order, none before the checkpoint again"
    );
    let mut seen = ids(&all);
    seen.dedup();
    assert_eq!(seen.len(), 7, "no duplicate: {seen:?}");
    drop(p);

    // The same rows from the archive have the same ids as when they came live.
    let again = Receiver::always(200);
    let dir = TempDir::new("replay-again");
    let config = offline_config(dir.path(), &task("t", "shop.t", &again.url("/t")));
    let first = archive_dir.path().join(&checkpoint_file);
    let (code, out) = replay(&config, &[first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let replayed = again.wait_for_events(3, WAIT);
    let from_archive = ids(&replayed);
    for id in ids(&live) {
        assert!(from_archive.contains(&id), "{id} not in {from_archive:?}");
    }

    // A file missing in the middle of a range is named.
    let mut files: Vec<PathBuf> = std::fs::read_dir(archive_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (code, out) = replay(
        &config,
        &[files[0].to_str().unwrap(), files[2].to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    let missing = files[1].file_name().unwrap().to_str().unwrap();
    assert!(
        out.contains(&format!("ends with a rotate to {missing}")),
        "{out}"
    );
}
