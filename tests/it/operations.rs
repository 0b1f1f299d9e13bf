//! End to end, what an operator configures: batching, the JSON log and what it must never
//! show, environment overrides, `start_from`, stable ids across a rewound checkpoint,
//! where tasks come from, and the HTTP endpoints of the running daemon.

use std::time::{Duration, Instant};

use crate::harness::{
    poll_until, run_binary, task, wait_until, MariaDb, Pikachu, Receiver, Setup, SpawnOptions,
    TempDir,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "Pw-7f3e9a1c-never-shown";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The key inside SECRET: leaking it is as bad as leaking the whole secret.
const SECRET_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rewrite_config(setup: &Setup, from: &str, to: &str) {
    let path = setup.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    assert!(text.contains(from), "config lacks {from:?}:\n{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write config");
}

/// A login with a password, so that there is a password to leak.
fn create_user_with_password(db: &MariaDb) {
    db.exec(&format!(
        "CREATE USER 'pika'@'%' IDENTIFIED BY '{PASSWORD}'; \
         GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'pika'@'%'"
    ));
}

fn stop(p: &mut Pikachu) {
    p.sigterm();
    let status = p.wait_exit(WAIT);
    assert!(
        status.success(),
        "pikachu exit {status:?}; log:\n{}",
        p.log()
    );
}

// --- 2 + 3: the JSON log, secrets, environment overrides --------------------------------

#[test]
fn json_log_shows_rows_only_at_debug_and_never_a_password_or_secret_and_env_overrides_apply() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40))");
    create_user_with_password(&db);
    // 400 for one row: the dead-letter path is where a request body could leak.
    let rx = Receiver::with_policy(|_, r| {
        let status = if r.raw.windows(8).any(|w| w == b"rejected") {
            400
        } else {
            200
        };
        (status, vec![], Duration::ZERO)
    });
    // Relative callback URL: only PIKACHU_CALLBACK_HOST makes it deliverable.
    let tasks = format!("{}    secret: {SECRET}\n", task("users", "users", "/users"));
    // One worker, so that the batch size alone decides how rows are grouped.
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "log:\n  level: debug\n  format: json\ndispatcher:\n  worker_count: 1\n  batch_timeout: 100ms\n  shutdown_timeout: 5s\n",
    );
    rewrite_config(&setup, "  user: root\n  password: \"\"\n", "  user: pika\n");
    let opts = SpawnOptions {
        env: env(&[
            ("PIKACHU_DATABASE_PASSWORD", PASSWORD),
            ("PIKACHU_DISPATCHER_BATCH_SIZE", "3"),
            ("PIKACHU_CALLBACK_HOST", &rx.url("")),
        ]),
        separate_stdout: true,
        ..Default::default()
    };
    let mut p = Pikachu::spawn_with(&setup, &opts);
    db.exec(
        "BEGIN; INSERT INTO shop.users VALUES (1, 'debug-row-marker-1'), (2, 'debug-row-marker-2'), \
         (3, 'debug-row-marker-3'), (4, 'debug-row-marker-4'); COMMIT",
    );
    rx.wait_for_events(4, WAIT);
    // Only now: in a batch with the rows above it would take them into the dead letter.
    db.exec("INSERT INTO shop.users VALUES (5, 'rejected-debug-marker')");
    wait_until("the dead letter", WAIT, || !setup.dead_letters().is_empty());
    stop(&mut p);

    // Environment overrides took effect: the password logged in, the callback host
    // made /users reachable, and requests carry arrays of at most 3.
    let reqs = rx.requests();
    assert!(reqs.iter().all(|r| r.path == "/users"), "{reqs:?}");
    assert!(
        reqs.iter().all(|r| r
            .body
            .as_array()
            .is_some_and(|a| (1..=3).contains(&a.len()))),
        "{reqs:?}"
    );
    let sizes: Vec<usize> = reqs
        .iter()
        .filter_map(|r| r.body.as_array().map(Vec::len))
        .collect();
    assert_eq!(
        sizes[..2],
        [3, 1],
        "PIKACHU_DISPATCHER_BATCH_SIZE=3: {reqs:?}"
    );

    let log = p.log();
    assert_eq!(p.stdout(), "", "the daemon writes nothing to stdout");
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            v["time"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
            "{line}"
        );
        assert!(
            ["debug", "info", "warn", "error"].contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{line}");
    }
    assert!(log.contains("started with 1 tasks"), "{log}");
    // Libraries' debug lines (ureq logs each request) stay out, as in the text format.
    for line in log
        .lines()
        .filter(|l| l.contains(r#""level":"debug""#) || l.contains(r#""level":"info""#))
    {
        assert!(
            line.contains(r#""target":"pikachu"#),
            "a library's line at debug/info: {line}"
        );
    }
    assert!(
        log.contains("debug-row-marker-1"),
        "row data appears at debug:\n{log}"
    );
    assert!(
        log.contains("rejected-debug-marker"),
        "a dead-lettered body appears at debug:\n{log}"
    );
    for leak in [PASSWORD, SECRET, SECRET_KEY] {
        assert!(!log.contains(leak), "{leak} in the log:\n{log}");
    }
    let letters =
        std::fs::read_to_string(setup.data_dir().join("dead-letters.jsonl")).expect("dead letters");
    assert!(
        !letters.contains(SECRET_KEY) && !letters.contains(PASSWORD),
        "{letters}"
    );

    // `check` with the same environment: everything OK, and no secret on either stream.
    let config = setup.config_path();
    let check_env = [
        ("PIKACHU_DATABASE_PASSWORD", PASSWORD),
        ("PIKACHU_CALLBACK_HOST", &rx.url("")[..]),
    ];
    let (code, out, err) = run_binary(
        &["check", "-config", config.to_str().expect("utf-8")],
        &check_env,
    );
    assert_eq!(code, 0, "{out}{err}");
    for leak in [PASSWORD, SECRET, SECRET_KEY] {
        assert!(
            !out.contains(leak) && !err.contains(leak),
            "{leak} in check output:\n{out}{err}"
        );
    }
    // Without PIKACHU_DATABASE_PASSWORD the same config cannot log in: it was the
    // variable that did.
    let (code, out, err) = run_binary(
        &["-config", config.to_str().expect("utf-8")],
        &[("PIKACHU_CALLBACK_HOST", &rx.url("")[..])],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("pika"), "the failed login is named: {err}");

    // At info the same kind of rows (and a dead letter) leave no payload in the log.
    rewrite_config(&setup, "  level: debug\n", "  level: info\n");
    rx.clear();
    let mut p = Pikachu::spawn_with(&setup, &opts);
    db.exec("INSERT INTO shop.users VALUES (6, 'info-row-marker')");
    rx.wait_for_events(1, WAIT);
    db.exec("INSERT INTO shop.users VALUES (7, 'rejected-info-marker')");
    wait_until("the second dead letter", WAIT, || {
        setup.dead_letters().len() >= 2
    });
    stop(&mut p);
    let log = p.log();
    assert!(log.contains("resuming from the checkpoint"), "{log}");
    for hidden in [
        "info-row-marker",
        "rejected-info-marker",
        PASSWORD,
        SECRET,
        SECRET_KEY,
    ] {
        assert!(!log.contains(hidden), "{hidden} in the info log:\n{log}");
    }
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert_ne!(v["level"], "debug", "{line}");
    }
}

#[test]
fn configuration_errors_never_print_the_password_or_a_secret() {
    let dir = TempDir::new("ops-config");
    let bad_task_secret = "whsec_!!Pw-bad-task-secret-value";
    let bad_default_secret = "Pw-not-a-whsec-default-secret";
    let base = |password_line: &str| {
        format!(
            "database:\n  host: 127.0.0.1\n  port: notaport\n  user: pika\n{password_line}  database: shop\n  server_id: 7\n\
             dispatcher:\n  secret: {bad_default_secret}\n  workers: 3\n\
             tasks:\n  - task_id: a\n    table_name: t\n    events: [insert]\n    callback_url: http://127.0.0.1:9/a\n    secret: \"{bad_task_secret}\"\n"
        )
    };
    let as_string = dir.path().join("string.yaml");
    std::fs::write(&as_string, base(&format!("  password: \"{PASSWORD}\"\n")))
        .expect("write config");
    // A wrong type is where a value is most tempting to echo.
    let as_list = dir.path().join("list.yaml");
    std::fs::write(&as_list, base(&format!("  password: [{PASSWORD}]\n"))).expect("write config");
    for config in [&as_string, &as_list] {
        let config = config.to_str().expect("utf-8 path");
        for args in [vec!["-config", config], vec!["check", "-config", config]] {
            let (code, out, err) = run_binary(&args, &[("PIKACHU_DATABASE_PASSWORD", PASSWORD)]);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            // The problems are reported, one per line, naming the keys…
            for key in [
                "database.port",
                "dispatcher.workers",
                "dispatcher.secret",
                "tasks[0].secret",
            ] {
                assert!(err.contains(key), "{args:?} does not name {key}:\n{err}");
            }
            // …and none of the values that must stay private.
            for leak in [PASSWORD, bad_task_secret, "Pw-bad-task", bad_default_secret] {
                assert!(
                    !out.contains(leak) && !err.contains(leak),
                    "{leak} printed by {args:?}:\n{out}{err}"
                );
            }
        }
    }
}

// --- 1: batching -------------------------------------------------------------------------

#[test]
fn batches_hold_up_to_batch_size_envelopes_of_one_task_in_commit_order() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v INT); CREATE TABLE shop.notes (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let tasks = format!(
        "{}    secret: {SECRET}\n{}",
        task("items", "items", &rx.url("/items")),
        task("notes", "notes", &rx.url("/notes"))
    );
    // One worker: every envelope goes through the same queue, so order is total.
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 1\n  batch_size: 5\n  batch_timeout: 200ms\n  shutdown_timeout: 5s\n",
    );
    let p = setup.start();
    let values: Vec<String> = (1..=12).map(|i| format!("({i}, {i})")).collect();
    db.exec(&format!(
        "BEGIN; INSERT INTO shop.items VALUES {}; INSERT INTO shop.notes VALUES (1), (2); COMMIT",
        values.join(", ")
    ));
    setup.settled_events(&rx, &db, 14);
    let key = pikachu::signature::SigningKey::parse(SECRET).expect("key");
    let reqs = rx.requests();
    let mut item_sizes = Vec::new();
    let mut item_keys = Vec::new();
    let mut note_sizes = Vec::new();
    for r in &reqs {
        let batch = r
            .body
            .as_array()
            .unwrap_or_else(|| panic!("batch_size 5: the body is an array: {}", r.body));
        assert!((1..=5).contains(&batch.len()), "{} envelopes", batch.len());
        let task = &r.headers["x-pikachu-task-id"];
        assert!(
            batch.iter().all(|e| &e["task_id"] == task),
            "one task per batch: {}",
            r.body
        );
        assert_eq!(r.path, format!("/{task}"));
        assert_eq!(
            r.headers["x-pikachu-event-id"],
            batch[0]["id"].as_str().expect("id"),
            "first id of the batch"
        );
        if task == "items" {
            assert_eq!(
                r.headers["webhook-id"],
                batch[0]["id"].as_str().expect("id")
            );
            let ts: i64 = r.headers["webhook-timestamp"]
                .parse()
                .expect("unix seconds");
            assert!(
                key.verify(
                    &r.headers["webhook-id"],
                    ts,
                    &r.raw,
                    &r.headers["webhook-signature"]
                ),
                "batch signature"
            );
            item_sizes.push(batch.len());
            item_keys.extend(
                batch
                    .iter()
                    .map(|e| e["primary_id"].as_i64().expect("primary_id")),
            );
        } else {
            note_sizes.push(batch.len());
        }
    }
    // The last items batch closes early: the next delivery in the queue is of the
    // notes task, and a batch holds one task.
    assert_eq!(item_sizes, [5, 5, 2], "{}", p.log());
    assert_eq!(note_sizes, [2]);
    assert_eq!(item_keys, (1..=12).collect::<Vec<i64>>(), "commit order");

    // A lone change waits for batch_timeout, then goes alone, still as an array.
    rx.clear();
    let before = Instant::now();
    db.exec("INSERT INTO shop.items VALUES (13, 13)");
    rx.wait_for_events(1, WAIT);
    let waited = before.elapsed();
    setup.wait_until_caught_up(&db);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let batch = reqs[0].body.as_array().expect("an array of one");
    assert_eq!(
        (batch.len(), &batch[0]["primary_id"]),
        (1, &Value::from(13))
    );
    assert!(
        waited >= Duration::from_millis(200),
        "sent after {waited:?}, before batch_timeout"
    );
}

// --- 4: start_from -------------------------------------------------------------------------

#[test]
fn start_from_earliest_latest_and_a_position_apply_only_without_a_checkpoint() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    db.exec("INSERT INTO shop.t VALUES (1)");
    let (file, pos) = db.master_status();
    db.exec("INSERT INTO shop.t VALUES (2)");
    // A receiver per daemon (see the tasks test: tiny_http and keep-alive connections).
    let setup = |name: &str, start_from: &str| {
        let rx = Receiver::always(200);
        let tasks = task(name, "t", &rx.url(&format!("/{name}")));
        (Setup::new(&db, "shop", &tasks, start_from), rx)
    };

    // `resumed` gets a checkpoint (after row 2) from a first run with `latest`, then is
    // told `earliest`: the checkpoint must win.
    let resumed = setup("resumed", "start_from: latest\n");
    let mut p = resumed.0.start();
    stop(&mut p);
    db.exec("INSERT INTO shop.t VALUES (3)");
    rewrite_config(&resumed.0, "start_from: latest\n", "start_from: earliest\n");

    let earliest = setup("earliest", "start_from: earliest\n");
    let latest = setup("latest", "start_from: latest\n");
    let position = setup(
        "position",
        &format!("start_from:\n  file: {file}\n  pos: {pos}\n"),
    );
    let all = [
        (&resumed, vec![3, 4]),
        (&earliest, vec![1, 2, 3, 4]),
        (&latest, vec![4]),
        (&position, vec![2, 3, 4]),
    ];
    let running: Vec<Pikachu> = all.iter().map(|((s, _), _)| s.start()).collect();
    db.exec("INSERT INTO shop.t VALUES (4)");

    for ((setup, rx), rows) in &all {
        rx.wait_for_events(rows.len(), WAIT);
        // Row 4 read and everything before it: a wrongly delivered extra row is in.
        setup.wait_until_caught_up(&db);
    }
    for (((setup, rx), rows), p) in all.iter().zip(&running) {
        let mut got: Vec<i64> = rx
            .events()
            .iter()
            .map(|e| e["primary_id"].as_i64().expect("primary_id"))
            .collect();
        // Different keys may go over different workers: compare the sets.
        got.sort();
        let config = std::fs::read_to_string(setup.config_path()).unwrap_or_default();
        assert_eq!(&got, rows, "{config}\n{}", p.log());
    }
    assert!(
        running[0].log().contains("resuming from the checkpoint"),
        "{}",
        running[0].log()
    );
}

// --- 5: stable ids -------------------------------------------------------------------------

#[test]
fn a_change_delivered_again_from_an_older_checkpoint_keeps_its_id_and_webhook_id() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(20))");
    let rx = Receiver::always(200);
    let tasks = format!(
        "{}    secret: {SECRET}\n",
        task("users", "users", &rx.url("/users"))
    );
    let setup = Setup::new(&db, "shop", &tasks, "");
    let mut p = setup.start();
    // Saved at start, before any of the rows below.
    let checkpoint = setup.data_dir().join("checkpoint.json");
    let older = std::fs::read(&checkpoint).expect("checkpoint written at start");
    db.exec("INSERT INTO shop.users VALUES (1, 'a'), (2, 'b')");
    db.exec("UPDATE shop.users SET name = 'c' WHERE id = 1");
    db.exec("DELETE FROM shop.users WHERE id = 2");
    rx.wait_for_events(4, WAIT);
    stop(&mut p);
    let first = rx.requests();
    rx.clear();

    std::fs::write(&checkpoint, &older).expect("restore the older checkpoint");
    let mut p = setup.start();
    rx.wait_for_events(4, WAIT);
    stop(&mut p);
    let again = rx.requests();
    assert!(
        p.log().contains("resuming from the checkpoint"),
        "{}",
        p.log()
    );

    let key = pikachu::signature::SigningKey::parse(SECRET).expect("key");
    let by_id = |reqs: &[crate::harness::Received]| {
        let mut v: Vec<(String, String, Value)> = reqs
            .iter()
            .map(|r| {
                assert!(
                    r.body.is_object(),
                    "batch_size 1: one object per request: {}",
                    r.body
                );
                let ts: i64 = r.headers["webhook-timestamp"]
                    .parse()
                    .expect("unix seconds");
                assert!(key.verify(
                    &r.headers["webhook-id"],
                    ts,
                    &r.raw,
                    &r.headers["webhook-signature"]
                ));
                (
                    r.body["id"].as_str().expect("id").to_owned(),
                    r.headers["webhook-id"].clone(),
                    r.body.clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let (first, again) = (by_id(&first), by_id(&again));
    assert_eq!(first.len(), 4);
    assert!(
        first.iter().all(|(id, webhook_id, _)| id == webhook_id),
        "webhook-id is the id: {first:?}"
    );
    // Same ids, same webhook-ids, and the very same envelopes.
    assert_eq!(first, again);
}

// --- 6: where tasks come from ---------------------------------------------------------------

#[test]
fn tasks_come_from_tasks_yaml_the_tasks_flag_or_env_and_the_config_from_every_go_form() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    // A receiver per daemon: tiny_http's pool (4 threads, each serving one keep-alive
    // connection to its end) can leave a fifth connection unserved for a long time.
    let rxs: Vec<Receiver> = (0..5).map(|_| Receiver::always(200)).collect();
    let tasks_file = |setup: &Setup, file: &str, name: &str, rx: &Receiver| {
        let path = setup.dir.path().join(file);
        std::fs::write(
            &path,
            format!("tasks:\n{}", task(name, "t", &rx.url(&format!("/{name}")))),
        )
        .expect("write tasks");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let inline = |name: &str, rx: &Receiver| {
        Setup::new(
            &db,
            "shop",
            &task(name, "t", &rx.url(&format!("/{name}"))),
            "",
        )
    };

    // tasks.yaml beside the config wins over the inline list, with a warning.
    let beside = inline("beside_inline", &rxs[0]);
    tasks_file(&beside, "tasks.yaml", "beside_file", &rxs[0]);
    // --tasks wins over tasks.yaml beside the config.
    let flag = inline("flag_inline", &rxs[1]);
    tasks_file(&flag, "tasks.yaml", "flag_beside", &rxs[1]);
    let other = tasks_file(&flag, "other.yaml", "flag_other", &rxs[1]);
    // TASKS_PATH names the file when --tasks does not.
    let env_tasks = inline("env_inline", &rxs[2]);
    let env_other = tasks_file(&env_tasks, "elsewhere.yaml", "env_tasks", &rxs[2]);
    // No tasks.yaml: the inline list; the config found through CONFIG_PATH alone.
    let config_env = inline("config_env_inline", &rxs[3]);
    // The Go flag package's `-config=path`.
    let equals = inline("equals_inline", &rxs[4]);

    let path = |s: &Setup| s.config_path().to_str().expect("utf-8 path").to_owned();
    let running = [
        Pikachu::spawn_with(&beside, &SpawnOptions::default()),
        Pikachu::spawn_with(
            &flag,
            &SpawnOptions {
                extra_args: vec!["--tasks".into(), other],
                ..Default::default()
            },
        ),
        Pikachu::spawn_with(
            &env_tasks,
            &SpawnOptions {
                env: env(&[("TASKS_PATH", &env_other)]),
                ..Default::default()
            },
        ),
        Pikachu::spawn_with(
            &config_env,
            &SpawnOptions {
                args: Some(vec![]),
                env: env(&[("CONFIG_PATH", &path(&config_env))]),
                ..Default::default()
            },
        ),
        Pikachu::spawn_with(
            &equals,
            &SpawnOptions {
                args: Some(vec![format!("-config={}", path(&equals))]),
                ..Default::default()
            },
        ),
    ];
    db.exec("INSERT INTO shop.t VALUES (1)");
    let paths = || {
        let mut paths: Vec<String> = rxs
            .iter()
            .flat_map(|rx| rx.requests())
            .map(|r| r.path)
            .collect();
        paths.sort();
        paths
    };
    if !poll_until(WAIT, || paths().len() >= 5) {
        let logs: Vec<String> = running.iter().map(Pikachu::log).collect();
        panic!("got only {:?}; logs:\n{}", paths(), logs.join("\n-----\n"));
    }
    // Each daemon read the row: a task that should not have taken it would have by now.
    for setup in [&beside, &flag, &env_tasks, &config_env, &equals] {
        setup.wait_until_caught_up(&db);
    }
    let paths = paths();
    assert_eq!(
        paths,
        [
            "/beside_file",
            "/config_env_inline",
            "/env_tasks",
            "/equals_inline",
            "/flag_other"
        ]
    );
    let log = running[0].log();
    assert!(
        log.contains("tasks: ignored, because") && log.contains("tasks.yaml exists"),
        "{log}"
    );
    assert!(
        !running[4].log().contains("tasks: ignored"),
        "{}",
        running[4].log()
    );
}

// --- 7: HTTP endpoints --------------------------------------------------------------------

fn http(method: &str, url: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let resp = match method {
        "GET" => agent.get(url).call(),
        "HEAD" => agent.head(url).call(),
        "POST" => agent.post(url).send("{}"),
        other => panic!("no such method here: {other}"),
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), allow, body)
}

#[test]
fn health_and_metrics_answer_over_http_with_404_405_head_and_a_moved_health_path() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    let port = setup.health_port;
    rewrite_config(
        &setup,
        &format!("  port: {port}\n"),
        &format!("  port: {port}\n  path: /healthz\n"),
    );
    let _p = Pikachu::spawn_with(
        &setup,
        &SpawnOptions {
            health_path: Some("/healthz".into()),
            ..Default::default()
        },
    );
    db.exec("INSERT INTO shop.t VALUES (1), (2)");
    rx.wait_for_events(2, WAIT);
    let base = format!("http://127.0.0.1:{port}");

    let (status, _, body) = http("GET", &format!("{base}/healthz"));
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(
        (status, &health["status"]),
        (200, &Value::from("UP")),
        "{body}"
    );
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        http("GET", &format!("{base}/health")).0,
        404,
        "server.path moved the health endpoint"
    );
    assert_eq!(http("GET", &format!("{base}/nope")).0, 404);

    let mut delivered = Value::Null;
    wait_until("metrics counting both inserts", WAIT, || {
        let (status, _, body) = http("GET", &format!("{base}/metrics"));
        assert_eq!(status, 200, "{body}");
        let m: Value = serde_json::from_str(&body).expect("metrics are JSON");
        delivered = m["tasks"][0]["events_delivered"]["insert"].clone();
        delivered == 2
    });

    for path in ["/healthz", "/metrics"] {
        let (status, allow, _) = http("POST", &format!("{base}{path}"));
        assert_eq!(status, 405, "POST {path}");
        assert!(allow.contains("GET"), "405 says what is allowed: {allow:?}");
        let (status, _, body) = http("HEAD", &format!("{base}{path}"));
        assert_eq!((status, body.as_str()), (200, ""), "HEAD {path}");
    }
}

#[test]
fn a_task_on_a_missing_table_warns_and_delivers_once_it_exists_and_health_binds_where_told() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("late", "late_table", &rx.url("/l")), "");
    let port = setup.health_port;
    // Another loopback address than the harness's 127.0.0.1: answering there and not on
    // 127.0.0.1 shows that server.bind is the address listened on.
    rewrite_config(
        &setup,
        &format!("  port: {port}\n"),
        &format!("  port: {port}\n  bind: 127.0.0.2\n"),
    );
    let mut p = Pikachu::spawn_unchecked(&setup, &SpawnOptions::default());
    p.wait_for_log("task late: table shop.late_table does not exist", WAIT);
    let warned = p.log();
    assert!(
        warned.contains("WARN") && warned.contains("typo in table_name"),
        "the warning says what to look at: {warned}"
    );

    let bound = format!("http://127.0.0.2:{port}");
    wait_until("health answering on server.bind", WAIT, || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        agent.get(&format!("{bound}/health")).call().is_ok()
    });
    assert!(
        p.health().is_none(),
        "nothing listens on 127.0.0.1 when server.bind is 127.0.0.2"
    );
    let (status, _, body) = http("GET", &format!("{bound}/metrics"));
    assert_eq!(status, 200, "{body}");
    let metrics: Value = serde_json::from_str(&body).expect("metrics are JSON");
    let system = &metrics["system"];
    assert!(
        system["threads"].as_u64().unwrap_or(0) >= 3,
        "reader, workers and the HTTP thread are threads: {system}"
    );
    assert_eq!(system["goroutines"], system["threads"], "{system}");
    assert!(
        system["memory_sys"].as_u64().unwrap_or(0) > 1 << 20,
        "resident memory in bytes: {system}"
    );

    // The daemon kept running: a table created later is delivered.
    db.exec(
        "CREATE TABLE shop.late_table (id INT PRIMARY KEY); INSERT INTO shop.late_table VALUES (7)",
    );
    let events = rx.wait_for_events(1, WAIT);
    assert_eq!(events[0]["data"]["id"], 7, "{events:?}");
    stop(&mut p);
}

#[test]
fn account_statements_and_literals_read_from_the_binlog_never_reach_the_log() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    // Setup's default log level is debug: nothing may show there either. The literal is a
    // column comment, not a value a row carries (rows are logged at debug by design).
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    let mut p = Pikachu::spawn(&setup, &[]);
    db.exec(
        "CREATE USER 'acct'@'%' IDENTIFIED BY 'Acct-pw-4d2c81'; \
         ALTER USER 'acct'@'%' IDENTIFIED BY 'Acct-pw-second-77'; \
         ALTER TABLE shop.t ADD COLUMN note VARCHAR(20) COMMENT 'literal-9f31'; \
         INSERT INTO shop.t (id) VALUES (1)",
    );
    setup.settled_events(&rx, &db, 1);
    let log = p.log();
    for secret in ["Acct-pw-4d2c81", "Acct-pw-second-77", "literal-9f31"] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    assert!(
        log.contains("ADD COLUMN note VARCHAR(20) COMMENT '…'"),
        "a watched table's DDL is logged, its literals masked:\n{log}"
    );
    stop(&mut p);
}

#[test]
fn data_dir_and_its_files_are_private_and_an_exposed_one_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    let mut p = Pikachu::spawn(&setup, &[]);
    db.exec("INSERT INTO shop.t VALUES (1)");
    setup.settled_events(&rx, &db, 1);
    let data = setup.data_dir();
    assert_eq!(mode(&data), 0o700, "data_dir");
    for file in ["checkpoint.json", "dead-letters.jsonl", "pikachu.lock"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert!(!p.log().contains("readable by other users"), "{}", p.log());
    stop(&mut p);

    // A data_dir made by hand (or by an older pikachu) keeps its mode: a warning says so.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut p = Pikachu::spawn(&setup, &[]);
    p.wait_for_log("readable by other users (mode 755)", WAIT);
    assert!(
        p.log().contains(&format!("chmod 700 {}", data.display())),
        "the warning names the fix: {}",
        p.log()
    );
    stop(&mut p);
}
