//! Dispatcher tests against real HTTP receivers (tiny_http on 127.0.0.1, port 0).
//! They check what a receiver and an operator see: requests, headers, bodies, order,
//! the dead-letter file, counters and the checkpoint tracker.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::*;
use crate::checkpoint::Checkpoint;
use crate::config::{
    DatabaseConfig, DbTls, DbTlsMode, DispatcherConfig, EventFilter, HttpTls, LogConfig, LogFormat,
    MonitorConfig, Secret, ServerConfig, StartFrom, Task,
};
use crate::deadletter::tests::TempDir;
use crate::deadletter::{self, DeadLetter};
use crate::event::{BinlogPosition, ChangeKind, RowChange, TableSchema, Value};
use crate::stats::{Metrics, Stats};

// ---------------------------------------------------------------------------------
// A receiver

#[derive(Clone, Debug)]
struct Received {
    path: String,
    /// The client's address: one port per connection.
    peer: Option<std::net::SocketAddr>,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn event_id(&self) -> &str {
        self.header("x-pikachu-event-id")
            .expect("X-Pikachu-Event-Id")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok() -> Reply {
    status(200)
}

fn status(code: u16) -> Reply {
    Reply {
        status: code,
        headers: Vec::new(),
        body: String::new(),
    }
}

/// An HTTP receiver on 127.0.0.1 with `threads` handler threads. `answer` is called
/// for every request (with its number, from 0, in arrival order) after it is recorded;
/// it may sleep to play a slow receiver.
struct Hook {
    base: String,
    log: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Hook {
    fn start(
        threads: usize,
        answer: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Hook {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let threads = (0..threads)
            .map(|_| {
                let (server, log, stop, answer) =
                    (server.clone(), log.clone(), stop.clone(), answer.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(20))
                        else {
                            continue;
                        };
                        let mut body = Vec::new();
                        std::io::Read::read_to_end(request.as_reader(), &mut body).unwrap();
                        let received = Received {
                            path: request.url().to_owned(),
                            peer: request.remote_addr().copied(),
                            headers: request
                                .headers()
                                .iter()
                                .map(|h| {
                                    (
                                        h.field.as_str().as_str().to_ascii_lowercase(),
                                        h.value.to_string(),
                                    )
                                })
                                .collect(),
                            body,
                            at: Instant::now(),
                        };
                        let n = {
                            let mut log = log.lock();
                            log.push(received.clone());
                            log.len() - 1
                        };
                        let reply = answer(&received, n);
                        let mut response = tiny_http::Response::from_string(reply.body)
                            .with_status_code(reply.status);
                        for (name, value) in reply.headers {
                            response.add_header(
                                tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                                    .unwrap(),
                            );
                        }
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        Hook {
            base: format!("http://127.0.0.1:{port}"),
            log,
            stop,
            threads,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().clone()
    }

    fn count(&self) -> usize {
        self.log.lock().len()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Polls `done` until it holds; fails the test after 20 s (a hang, not a slow run).
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------
// Configuration and changes, built by hand

fn config(urls: &[String]) -> Config {
    Config {
        database: DatabaseConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            hosts: vec![("127.0.0.1".into(), 3306)],
            user: "pikachu".into(),
            password: Secret::default(),
            database: "shop".into(),
            server_id: 1001,
            charset: "utf8mb4".into(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            tls: DbTls {
                mode: DbTlsMode::Preferred,
                ca_file: None,
                client_cert: None,
            },
            server_public_key_file: None,
        },
        log: LogConfig {
            level: log::LevelFilter::Info,
            format: LogFormat::Text,
        },
        server: ServerConfig {
            enabled: false,
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            path: "/health".into(),
        },
        dispatcher: DispatcherConfig {
            worker_count: 2,
            queue_size: 100,
            timeout: Duration::from_secs(10),
            max_retries: Some(3),
            retry_base_delay: Duration::from_millis(10),
            retry_max_delay: Duration::from_millis(100),
            max_connections: 10,
            max_idle_conns: 10,
            idle_conn_timeout: Duration::from_secs(30),
            batch_size: 1,
            batch_timeout: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(5),
            secret: None,
            tls: HttpTls::default(),
        },
        monitor: MonitorConfig {
            event_queue_size: 100,
            event_queue_timeout: Duration::from_secs(1),
            batch_size: 1,
            batch_timeout: Duration::from_millis(100),
            flush_interval: Duration::from_secs(1),
            heartbeat_period: Duration::from_secs(5),
        },
        callback_host: None,
        data_dir: PathBuf::new(),
        binlog_archive: None,
        ha: crate::config::HaConfig {
            group: None,
            lease_timeout: Duration::from_secs(10),
        },
        checkpoint: crate::config::CheckpointStore::File,
        start_from: StartFrom::Latest,
        secret_files: Vec::new(),
        values: Default::default(),
        tasks: urls
            .iter()
            .enumerate()
            .map(|(i, url)| Task {
                task_id: format!("task{i}"),
                name: format!("Task {i}"),
                database: "shop".into(),
                table: "users".into(),
                events: EventFilter {
                    insert: true,
                    update: true,
                    delete: true,
                },
                callback_url: url.parse().expect("a test URL"),
                headers: Vec::new(),
                secret: None,
                tls: HttpTls::default(),
                columns: crate::filter::Columns::All,
                on_change: Vec::new(),
                filter: None,
                max_rate: None,
                max_in_flight: None,
                txn: false,
                values: Default::default(),
                backfill_initial: false,
                backfill_chunk_size: 1000,
                backfill_rows_per_second: 0,
                backfill_as_insert: false,
            })
            .collect(),
        warnings: Vec::new(),
    }
}

fn users(with_primary_key: bool) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        database: "shop".into(),
        table: "users".into(),
        columns: vec!["id".into(), "v".into()],
        primary_key: if with_primary_key { vec![0] } else { vec![] },
    })
}

/// Event number `n`: id `mysql-bin.000001:<n>:0`, so tests can read order from ids.
fn event_id(n: u64) -> String {
    format!("mysql-bin.000001:{n}:0")
}

fn id_number(id: &str) -> u64 {
    id.split(':')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("test id")
}

fn row(key: i64, v: i64) -> Vec<Option<Value>> {
    vec![Some(Value::Int(key)), Some(Value::Int(v))]
}

fn change(
    table: &Arc<TableSchema>,
    kind: ChangeKind,
    before: Option<Vec<Option<Value>>>,
    after: Option<Vec<Option<Value>>>,
    n: u64,
) -> Arc<RowChange> {
    Arc::new(RowChange {
        kind,
        table: table.clone(),
        before,
        after,
        id: event_id(n),
        position: BinlogPosition::new("mysql-bin.000001", n),
        timestamp: 1_700_000_000,
        gtid: None,
        go: None,
    })
}

fn insert(table: &Arc<TableSchema>, key: i64, n: u64) -> Arc<RowChange> {
    change(table, ChangeKind::Insert, None, Some(row(key, n as i64)), n)
}

fn update(table: &Arc<TableSchema>, old_key: i64, new_key: i64, n: u64) -> Arc<RowChange> {
    change(
        table,
        ChangeKind::Update,
        Some(row(old_key, n as i64 - 1)),
        Some(row(new_key, n as i64)),
        n,
    )
}

// ---------------------------------------------------------------------------------
// A dispatcher with its tracker, stats and data directory

struct Pipeline {
    dispatcher: Option<Dispatcher>,
    tracker: Arc<Tracker>,
    stats: Arc<Stats>,
    abort: Arc<Signal>,
    dir: TempDir,
}

impl Pipeline {
    fn start(mut config: Config) -> Pipeline {
        let dir = TempDir::new("dispatch");
        config.data_dir = dir.0.clone();
        let stats = Arc::new(Stats::new(
            config.tasks.iter().map(|t| t.task_id.clone()),
            config.dispatcher.queue_size,
        ));
        let tracker = Arc::new(Tracker::new(Checkpoint {
            file: "mysql-bin.000001".into(),
            pos: 4,
            gtid: None,
            server_id: None,
            gtid_set: None,
            backfills: Default::default(),
        }));
        let abort = Arc::new(Signal::new());
        let dispatcher = Dispatcher::start(DispatchContext {
            dead_letters: Arc::new(DeadLetters::open(&dir.0).expect("dead-letter file")),
            config: Arc::new(config),
            tracker: tracker.clone(),
            stats: stats.dispatch.clone(),
            abort: abort.clone(),
            fence: None,
        })
        .expect("dispatcher starts");
        Pipeline {
            dispatcher: Some(dispatcher),
            tracker,
            stats,
            abort,
            dir,
        }
    }

    fn dispatcher(&self) -> &Dispatcher {
        self.dispatcher.as_ref().expect("running")
    }

    /// Numbers, counts and routes one change as the reader does; returns its number.
    fn send(&self, task: usize, change: Arc<RowChange>) -> u64 {
        let seq = self.tracker.begin();
        self.stats.source.captured(task, change.kind, 1);
        assert!(
            self.dispatcher().route(Delivery {
                seq,
                task,
                change,
                txn: None,
            }),
            "route refused"
        );
        seq
    }

    fn finish(&mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.finish();
        }
    }

    fn dead_letters(&self) -> Vec<DeadLetter> {
        deadletter::read_all(&deadletter::file_path(&self.dir.0)).expect("readable dead letters")
    }

    fn task(&self, task: usize) -> crate::stats::TaskStats {
        self.stats.snapshot().tasks[task].clone()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // A failed test must not leave workers retrying for ever.
        self.abort.raise();
        self.finish();
    }
}

const INSERT: usize = 0;
const UPDATE: usize = 1;
const CLASS_ERROR: usize = 0;
const CLASS_2XX: usize = 1;
const CLASS_3XX: usize = 2;
const CLASS_4XX: usize = 3;
const CLASS_5XX: usize = 4;

// ---------------------------------------------------------------------------------
// Tests

#[test]
fn delivers_each_change_with_its_headers_and_body() {
    let hook = Hook::start(1, |_, _| ok());
    let mut cfg = config(&[hook.url("/users?src=pikachu")]);
    cfg.tasks[0].headers = vec![(
        HeaderName::from_static("authorization"),
        HeaderValue::from_static("Bearer t0ken"),
    )];
    let mut p = Pipeline::start(cfg);
    assert!(p.stats.snapshot().dispatcher_running);
    let table = users(true);
    let seq = p.send(0, insert(&table, 42, 7));
    wait_for("the request", || hook.count() == 1);
    p.finish();
    assert!(!p.stats.snapshot().dispatcher_running);

    let r = &hook.received()[0];
    assert_eq!(r.path, "/users?src=pikachu");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("pikachu/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.event_id(), event_id(7));
    assert_eq!(r.header("x-pikachu-task-id"), Some("task0"));
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(
        r.header("webhook-signature"),
        None,
        "no secret, no signature"
    );
    let body = r.json();
    assert!(body.is_object(), "batch_size 1: one object, not an array");
    assert_eq!(body["id"], event_id(7));
    assert_eq!(body["task_id"], "task0");
    assert_eq!(body["event"], "insert");

    assert!(
        p.tracker.wait_below(seq + 1, Duration::ZERO),
        "delivered = complete"
    );
    let t = p.task(0);
    assert_eq!(t.delivered[INSERT], 1);
    assert_eq!(t.requests[CLASS_2XX], 1);
    assert_eq!((t.retries, t.dead_letters), (0, 0));
    let s = p.stats.snapshot();
    assert_eq!(s.latency.count, 1);
    assert_eq!(s.queue_depth, 0);
    assert!(p.dead_letters().is_empty());
}

#[test]
fn signed_requests_verify_with_the_task_or_the_default_key() {
    const DEFAULT: &str = "whsec_ZGVmYXVsdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5";
    const OWN: &str = "whsec_dGFzay1vd24tc2lnbmluZy1rZXktOTg3NjU0MzIx";
    let hook = Hook::start(1, |_, _| ok());
    let mut cfg = config(&[hook.url("/a"), hook.url("/b")]);
    cfg.dispatcher.secret = Some(SigningKey::parse(DEFAULT).unwrap());
    cfg.tasks[1].secret = Some(SigningKey::parse(OWN).unwrap());
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    p.send(0, insert(&table, 1, 1));
    p.send(1, insert(&table, 2, 2));
    wait_for("two requests", || hook.count() == 2);
    p.finish();

    let now = crate::clock::unix_now();
    for r in hook.received() {
        let key = SigningKey::parse(if r.path == "/a" { DEFAULT } else { OWN }).unwrap();
        let id = r.header("webhook-id").expect("webhook-id");
        assert_eq!(id, r.event_id(), "webhook-id is the event id");
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!(
            (ts - now).abs() < 300,
            "timestamp of the attempt: {ts} vs {now}"
        );
        let sig = r.header("webhook-signature").expect("webhook-signature");
        assert!(
            key.verify(id, ts, &r.body, sig),
            "{} signature verifies",
            r.path
        );
        let other = SigningKey::parse(if r.path == "/a" { OWN } else { DEFAULT }).unwrap();
        assert!(!other.verify(id, ts, &r.body, sig));
    }
}

#[test]
fn server_errors_are_retried_until_delivered_once() {
    let hook = Hook::start(1, |_, n| if n < 2 { status(503) } else { ok() });
    let mut p = Pipeline::start(config(&[hook.url("/")]));
    let seq = p.send(0, insert(&users(true), 1, 1));
    wait_for("three attempts", || hook.count() == 3);
    assert!(p.tracker.wait_below(seq + 1, Duration::from_secs(10)));
    p.finish();

    let got = hook.received();
    assert_eq!(got.len(), 3, "delivered once, no attempt after the 200");
    assert!(got
        .iter()
        .all(|r| r.body == got[0].body && r.event_id() == event_id(1)));
    let t = p.task(0);
    assert_eq!(t.delivered[INSERT], 1);
    assert_eq!(t.retries, 2);
    assert_eq!((t.requests[CLASS_5XX], t.requests[CLASS_2XX]), (2, 1));
    assert_eq!(t.dead_letters, 0);
    assert!(p.dead_letters().is_empty());
}

#[test]
fn a_client_error_is_dead_lettered_at_once_and_other_tasks_go_on() {
    let hook = Hook::start(2, |r, _| {
        if r.path == "/bad" {
            Reply {
                status: 400,
                headers: Vec::new(),
                body: "missing field `email`".into(),
            }
        } else {
            ok()
        }
    });
    let mut p = Pipeline::start(config(&[hook.url("/bad"), hook.url("/good")]));
    let table = users(true);
    let bad = p.send(0, insert(&table, 1, 1));
    let good = p.send(1, insert(&table, 1, 1));
    assert!(p
        .tracker
        .wait_below(bad.max(good) + 1, Duration::from_secs(20)));
    p.finish();

    let got = hook.received();
    let sent_bad: Vec<_> = got.iter().filter(|r| r.path == "/bad").collect();
    assert_eq!(sent_bad.len(), 1, "a 400 is not retried");
    assert_eq!(got.iter().filter(|r| r.path == "/good").count(), 1);

    let letters = p.dead_letters();
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.task_id, "task0");
    assert_eq!(l.ids, vec![event_id(1)]);
    assert_eq!(l.url, hook.url("/bad"));
    assert_eq!(l.status, Some(400));
    assert_eq!(l.attempts, 1);
    assert_eq!(l.body, sent_bad[0].json(), "the whole body that was sent");
    assert!(
        l.error.contains("400") && l.error.contains("missing field"),
        "{}",
        l.error
    );
    assert!(l.failed_at.ends_with('Z'));

    let (t0, t1) = (p.task(0), p.task(1));
    assert_eq!(
        (t0.dead_letters, t0.delivered[INSERT], t0.retries),
        (1, 0, 0)
    );
    assert_eq!(t0.requests[CLASS_4XX], 1);
    assert_eq!((t1.dead_letters, t1.delivered[INSERT]), (0, 1));
    assert_eq!(
        p.tracker.outstanding(),
        0,
        "dead-lettered events are complete"
    );
}

#[test]
fn a_redirect_is_not_followed_nor_retried() {
    let hook = Hook::start(1, |_, _| Reply {
        status: 302,
        headers: vec![("Location", "/elsewhere".into())],
        body: String::new(),
    });
    let mut p = Pipeline::start(config(&[hook.url("/moved")]));
    let seq = p.send(0, insert(&users(true), 1, 1));
    assert!(p.tracker.wait_below(seq + 1, Duration::from_secs(20)));
    p.finish();
    assert_eq!(hook.count(), 1);
    assert_eq!(p.dead_letters()[0].status, Some(302));
    assert_eq!(p.task(0).requests[CLASS_3XX], 1);
}

#[test]
fn retry_after_is_honoured() {
    let hook = Hook::start(1, |_, n| {
        if n == 0 {
            Reply {
                status: 429,
                headers: vec![("Retry-After", "1".into())],
                body: String::new(),
            }
        } else {
            ok()
        }
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.retry_base_delay = Duration::from_millis(10);
    cfg.dispatcher.retry_max_delay = Duration::from_secs(5);
    let mut p = Pipeline::start(cfg);
    p.send(0, insert(&users(true), 1, 1));
    wait_for("the retry", || hook.count() == 2);
    p.finish();
    let got = hook.received();
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}, not after the 1 s the receiver asked for"
    );
    assert_eq!(p.task(0).delivered[INSERT], 1);
}

#[test]
fn connection_refused_is_retried_then_dead_lettered_with_the_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(&[format!("http://127.0.0.1:{port}/hook")]);
    cfg.dispatcher.max_retries = Some(2);
    cfg.dispatcher.retry_base_delay = Duration::from_millis(1);
    cfg.dispatcher.retry_max_delay = Duration::from_millis(5);
    let mut p = Pipeline::start(cfg);
    let seq = p.send(0, insert(&users(true), 1, 1));
    assert!(p.tracker.wait_below(seq + 1, Duration::from_secs(20)));
    p.finish();

    let letters = p.dead_letters();
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.status, None, "no answer");
    assert!(!l.error.is_empty());
    assert_eq!(l.attempts, 3, "the first attempt and 2 retries");
    assert_eq!(l.body["id"], event_id(1));
    let t = p.task(0);
    assert_eq!(
        (t.requests[CLASS_ERROR], t.retries, t.dead_letters),
        (3, 2, 1)
    );
}

#[test]
fn batches_hold_up_to_batch_size_events_of_one_task_in_order() {
    let hook = Hook::start(1, |_, _| ok());
    let mut cfg = config(&[hook.url("/t0"), hook.url("/t1")]);
    cfg.dispatcher.worker_count = 1;
    cfg.dispatcher.batch_size = 3;
    cfg.dispatcher.batch_timeout = Duration::from_millis(200);
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    // Two tasks interleaved on one worker (as two tasks on one table are): each task
    // still gets full batches, in its own order.
    let plan = [0, 1, 0, 1, 0, 1, 0, 1, 0];
    for (n, &task) in plan.iter().enumerate() {
        p.send(task, insert(&table, n as i64, n as u64 + 1));
    }
    wait_for("all events", || p.tracker.outstanding() == 0);
    p.finish();

    let mut order: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut sizes: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for r in hook.received() {
        let body = r.json();
        let items = body.as_array().expect("batching sends arrays");
        let (t, task) = if r.path == "/t0" {
            (0, "task0")
        } else {
            (1, "task1")
        };
        assert_eq!(r.header("x-pikachu-task-id"), Some(task));
        assert_eq!(r.event_id(), items[0]["id"], "header carries the first id");
        sizes[t].push(items.len());
        for item in items {
            assert_eq!(item["task_id"], task, "one task per batch");
            order[t].push(id_number(item["id"].as_str().unwrap()));
        }
    }
    assert_eq!(
        order[0],
        [1, 3, 5, 7, 9],
        "task0: every event once, in order"
    );
    assert_eq!(order[1], [2, 4, 6, 8], "task1: every event once, in order");
    assert_eq!(
        sizes[0],
        [3, 2],
        "task0's batches fill up despite task1 between"
    );
    assert_eq!(sizes[1], [3, 1]);
    assert_eq!(p.task(0).delivered[INSERT], 5);
    assert_eq!(p.task(1).delivered[INSERT], 4);
    assert_eq!(p.stats.snapshot().latency.count, 9);
}

#[test]
fn a_lone_event_is_sent_when_the_batch_timeout_passes() {
    let hook = Hook::start(1, |_, _| ok());
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.batch_size = 100;
    cfg.dispatcher.batch_timeout = Duration::from_millis(20);
    let p = Pipeline::start(cfg);
    p.send(0, insert(&users(true), 1, 1));
    // Not finished: only the timeout can send it.
    wait_for("the batch of one", || hook.count() == 1);
    assert_eq!(hook.received()[0].json().as_array().map(Vec::len), Some(1));
}

#[test]
fn one_key_is_delivered_in_order_and_never_concurrently_across_8_workers() {
    const KEYS: u64 = 5;
    const EVENTS: u64 = 500;
    let in_flight = Arc::new(Mutex::new(HashSet::new()));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (flight, overlap) = (in_flight.clone(), overlaps.clone());
    let hook = Hook::start(4, move |r, n| {
        let key = id_number(r.event_id()) % KEYS;
        if !flight.lock().insert(key) {
            overlap.fetch_add(1, Ordering::SeqCst);
        }
        // Uneven service times give other workers every chance to overtake.
        std::thread::sleep(Duration::from_micros((n as u64 * 7919) % 1500));
        flight.lock().remove(&key);
        ok()
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 8;
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    for n in 1..=EVENTS {
        let key = (n % KEYS) as i64;
        p.send(0, update(&table, key, key, n));
    }
    wait_for("all events", || p.tracker.outstanding() == 0);
    p.finish();

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "a key was sent twice at once"
    );
    let mut per_key: HashMap<u64, Vec<u64>> = HashMap::new();
    for r in hook.received() {
        let n = id_number(r.event_id());
        per_key.entry(n % KEYS).or_default().push(n);
    }
    for (key, ns) in per_key {
        let expected: Vec<u64> = (1..=EVENTS).filter(|n| n % KEYS == key).collect();
        assert_eq!(ns, expected, "key {key} in commit order, each once");
    }
    assert_eq!(p.task(0).delivered[UPDATE], EVENTS);
}

#[test]
fn a_table_without_primary_key_keeps_the_order_of_its_task() {
    let hook = Hook::start(4, |_, n| {
        std::thread::sleep(Duration::from_micros((n as u64 * 7919) % 700));
        ok()
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 8;
    let mut p = Pipeline::start(cfg);
    let table = users(false);
    for n in 1..=100u64 {
        p.send(0, insert(&table, n as i64, n));
    }
    wait_for("all events", || p.tracker.outstanding() == 0);
    p.finish();
    let order: Vec<u64> = hook
        .received()
        .iter()
        .map(|r| id_number(r.event_id()))
        .collect();
    assert_eq!(order, (1..=100).collect::<Vec<u64>>());
}

#[test]
fn an_update_of_the_primary_key_is_not_overtaken_and_overtakes_nothing() {
    let hook = Hook::start(4, |r, _| {
        // The first change of the old key is slow.
        if id_number(r.event_id()) == 1 {
            std::thread::sleep(Duration::from_millis(300));
        }
        ok()
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 8;
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    // Old and new key on different workers, so only the barrier can keep the order.
    let worker = |key: i64| {
        p.dispatcher().worker_for(&Delivery {
            seq: 0,
            task: 0,
            change: insert(&table, key, 0),
            txn: None,
        })
    };
    let old_key = 1;
    let new_key = (2..100).find(|&k| worker(k) != worker(old_key)).unwrap();
    let third = (2..100)
        .find(|&k| k != new_key && worker(k) != worker(new_key))
        .unwrap();
    p.send(0, insert(&table, old_key, 1));
    let moved = p.send(0, update(&table, old_key, new_key, 2));
    assert!(
        p.tracker.wait_below(moved + 1, Duration::ZERO),
        "route returns after the key change is delivered"
    );
    p.send(0, update(&table, new_key, new_key, 3));
    p.send(0, insert(&table, third, 4));
    wait_for("all events", || p.tracker.outstanding() == 0);
    p.finish();

    let got = hook.received();
    let at = |n: u64| {
        got.iter()
            .position(|r| id_number(r.event_id()) == n)
            .unwrap()
    };
    assert!(at(1) < at(2) && at(2) < at(3) && at(2) < at(4));
}

#[test]
fn a_failing_key_does_not_hold_back_other_keys_of_its_worker_and_keeps_its_order() {
    // Key 1 is refused until it was tried 4 times; the other keys are accepted.
    let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = tries.clone();
    let hook = Hook::start(1, move |r, _| {
        if r.json()["data"]["id"] == 1 && t.fetch_add(1, Ordering::SeqCst) < 4 {
            status(503)
        } else {
            ok()
        }
    });
    let mut cfg = config(&[hook.url("/")]);
    // One worker: every key shares it.
    cfg.dispatcher.worker_count = 1;
    cfg.dispatcher.queue_size = 10;
    cfg.dispatcher.max_retries = None;
    cfg.dispatcher.retry_base_delay = Duration::from_millis(100);
    cfg.dispatcher.retry_max_delay = Duration::from_millis(100);
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    for (n, key) in [(1, 1), (2, 2), (3, 1), (4, 2), (5, 3), (6, 1)] {
        p.send(0, insert(&table, key, n));
    }
    wait_for("key 1 delivered", || {
        hook.received()
            .iter()
            .filter(|r| id_number(r.event_id()) == 6)
            .count()
            == 1
    });
    p.finish();
    let got: Vec<u64> = hook
        .received()
        .iter()
        .map(|r| id_number(r.event_id()))
        .collect();
    let first = |n: u64| got.iter().position(|&g| g == n).unwrap();
    let last = |n: u64| got.iter().rposition(|&g| g == n).unwrap();
    assert!(
        last(1) > first(2) && last(1) > first(4) && last(1) > first(5),
        "the other keys went while key 1 was retried: {got:?}"
    );
    assert!(
        last(1) < first(3) && last(3) < first(6),
        "key 1 in order, one at a time: {got:?}"
    );
    assert_eq!(
        got.iter().filter(|&&g| g == 1).count(),
        5,
        "4 refusals and the delivery"
    );
    assert_eq!(p.tracker.outstanding(), 0);
    assert!(p.dead_letters().is_empty());
}

#[test]
fn a_failing_key_holds_back_at_most_the_queue_before_reading_pauses() {
    let hook = Hook::start(1, |r, _| {
        if r.json()["data"]["id"] == 1 {
            status(503)
        } else {
            ok()
        }
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 1;
    cfg.dispatcher.queue_size = 3;
    cfg.dispatcher.max_retries = None;
    cfg.dispatcher.retry_base_delay = Duration::from_millis(20);
    cfg.dispatcher.retry_max_delay = Duration::from_millis(20);
    let p = Pipeline::start(cfg);
    let table = users(true);
    // Key 1 is stuck: the worker holds 3 of its changes (the parked one and two set
    // aside), the queue 3 more; the next one blocks the reader.
    for n in 1..=6 {
        p.send(0, insert(&table, 1, n));
        if n == 1 {
            wait_for("the first attempt", || hook.count() >= 1);
        }
    }
    let (dispatcher, tracker, abort) = (p.dispatcher(), p.tracker.clone(), p.abort.clone());
    std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            let seq = tracker.begin();
            dispatcher.route(Delivery {
                seq,
                task: 0,
                change: insert(&table, 1, 7),
                txn: None,
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !blocked.is_finished(),
            "reading pauses once the worker holds its limit"
        );
        abort.raise();
        assert!(!blocked.join().unwrap());
    });
    assert!(
        hook.received().iter().all(|r| id_number(r.event_id()) == 1),
        "only key 1 was tried"
    );
}

#[test]
fn a_key_change_waits_for_its_own_keys_only_not_for_a_failing_third_key() {
    // Key 3 is refused for ever; keys 1 and 2 are accepted.
    let hook = Hook::start(2, |r, _| {
        if r.json()["data"]["id"] == 3 {
            status(503)
        } else {
            ok()
        }
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 2;
    cfg.dispatcher.max_retries = None;
    cfg.dispatcher.retry_base_delay = Duration::from_millis(20);
    cfg.dispatcher.retry_max_delay = Duration::from_millis(50);
    let p = Pipeline::start(cfg);
    let table = users(true);
    p.send(0, insert(&table, 3, 1));
    wait_for("key 3 refused", || hook.count() >= 2);
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::scope(|s| {
        s.spawn(|| {
            p.send(0, insert(&table, 1, 2));
            let moved = p.send(0, update(&table, 1, 2, 3));
            let _ = tx.send(p.tracker.wait_below(moved, Duration::ZERO));
            p.send(0, update(&table, 2, 2, 4));
        });
        let done = rx.recv_timeout(Duration::from_secs(10));
        if done.is_ok() {
            wait_for("the new key's next change", || {
                hook.received().iter().any(|r| id_number(r.event_id()) == 4)
            });
        }
        p.abort.raise();
        assert_eq!(
            done,
            Ok(false),
            "the key change went through while key 3 (earlier) was failing"
        );
    });
    let got: Vec<u64> = hook
        .received()
        .iter()
        .map(|r| id_number(r.event_id()))
        .filter(|&n| n != 1)
        .collect();
    assert_eq!(got, [2, 3, 4], "old key, key change, new key: in order");
}

#[test]
fn queue_depth_never_exceeds_the_queue_capacity() {
    let hook = Hook::start(1, |_, _| {
        std::thread::sleep(Duration::from_millis(1));
        ok()
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 2;
    cfg.dispatcher.queue_size = 4;
    let mut p = Pipeline::start(cfg);
    let capacity = p.stats.snapshot().queue_capacity;
    assert_eq!(capacity, 4);
    let stats = p.stats.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = done.clone();
    // Samples the published depth while the reader side is blocked on full queues.
    let watcher = std::thread::spawn(move || {
        let mut max = 0;
        while !watching.load(std::sync::atomic::Ordering::SeqCst) {
            max = max.max(stats.snapshot().queue_depth);
            std::thread::yield_now();
        }
        max
    });
    let table = users(true);
    for n in 1..=300u64 {
        p.send(0, insert(&table, (n % 7) as i64, n));
    }
    p.finish();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let max = watcher.join().expect("watcher");
    assert!(max > 0, "the queues were used");
    assert!(
        max <= capacity,
        "queue_depth {max} above capacity {capacity}"
    );
    assert_eq!(p.stats.snapshot().queue_depth, 0, "empty at the end");
    assert_eq!(hook.received().len(), 300);
}

#[test]
fn tiny_queues_and_a_slow_receiver_lose_nothing() {
    let hook = Hook::start(1, |_, _| {
        std::thread::sleep(Duration::from_millis(2));
        ok()
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 2;
    cfg.dispatcher.queue_size = 2;
    let mut p = Pipeline::start(cfg);
    assert_eq!(p.stats.snapshot().queue_capacity, 2);
    let table = users(true);
    for n in 1..=200u64 {
        p.send(0, insert(&table, (n % 10) as i64, n));
    }
    p.finish(); // drains the queues
    let mut ids: Vec<u64> = hook
        .received()
        .iter()
        .map(|r| id_number(r.event_id()))
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<u64>>(),
        "each event exactly once"
    );
    assert_eq!(p.tracker.outstanding(), 0);
    assert_eq!(p.stats.snapshot().queue_depth, 0);
}

#[test]
fn abort_ends_a_retry_for_ever_at_once_and_leaves_events_unacknowledged() {
    let hook = Hook::start(1, |_, _| status(503));
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 1;
    cfg.dispatcher.max_retries = None;
    // Only abort can end a wait this long.
    cfg.dispatcher.retry_base_delay = Duration::from_secs(3600);
    cfg.dispatcher.retry_max_delay = Duration::from_secs(7200);
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    for n in 1..=3 {
        p.send(0, insert(&table, 1, n));
    }
    wait_for("the first attempt", || hook.count() == 1);
    p.tracker.commit(Checkpoint {
        file: "mysql-bin.000001".into(),
        pos: 999,
        gtid: None,
        server_id: None,
        gtid_set: None,
        backfills: Default::default(),
    });

    p.abort.raise();
    let dispatcher = p.dispatcher.take().unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        dispatcher.finish();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("finish returns once abort is raised");

    assert_eq!(hook.count(), 1, "nothing sent after abort");
    assert_eq!(
        p.tracker.outstanding(),
        3,
        "undelivered events stay incomplete"
    );
    assert_eq!(
        p.tracker.safe_point().pos,
        4,
        "the checkpoint does not pass them"
    );
    assert!(p.dead_letters().is_empty());
    assert_eq!(p.task(0).delivered[INSERT], 0);
    assert!(!p.stats.snapshot().dispatcher_running);
}

#[test]
fn route_refuses_once_the_workers_are_gone() {
    let hook = Hook::start(1, |_, _| status(503));
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 1;
    cfg.dispatcher.queue_size = 1;
    cfg.dispatcher.max_retries = None;
    cfg.dispatcher.retry_base_delay = Duration::from_secs(3600);
    cfg.dispatcher.retry_max_delay = Duration::from_secs(3600);
    let p = Pipeline::start(cfg);
    let table = users(true);
    p.send(0, insert(&table, 1, 1));
    wait_for("the first attempt", || hook.count() == 1);
    p.send(0, insert(&table, 1, 2)); // fills the queue
                                     // The reader blocks on the full queue until abort makes the worker exit.
    let (dispatcher, tracker, abort) = (p.dispatcher(), p.tracker.clone(), p.abort.clone());
    std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            let seq = tracker.begin();
            dispatcher.route(Delivery {
                seq,
                task: 0,
                change: insert(&table, 1, 3),
                txn: None,
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        abort.raise();
        assert!(
            !blocked.join().unwrap(),
            "route reports that the workers are gone"
        );
    });
}

#[test]
fn minimal_images_route_every_change_of_a_row_to_the_same_worker() {
    let hook = Hook::start(1, |_, _| ok());
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 8;
    let p = Pipeline::start(cfg);
    let table = users(true);
    let worker = |c: Arc<RowChange>| {
        p.dispatcher().worker_for(&Delivery {
            seq: 0,
            task: 0,
            change: c,
            txn: None,
        })
    };
    for key in 0..50 {
        let full = worker(insert(&table, key, 1));
        // binlog_row_image=MINIMAL: the new image of an update holds only what changed.
        let minimal = change(
            &table,
            ChangeKind::Update,
            Some(vec![Some(Value::Int(key)), None]),
            Some(vec![None, Some(Value::Int(5))]),
            2,
        );
        assert_eq!(worker(minimal), full, "key {key}");
        let unsigned = change(
            &table,
            ChangeKind::Delete,
            Some(vec![Some(Value::UInt(key as u64)), None]),
            None,
            3,
        );
        assert_eq!(worker(unsigned), full, "key {key}");
    }
}

#[test]
fn replay_sends_a_dead_letter_again_to_the_current_receiver() {
    // First life: the receiver rejects the event.
    let hook = Hook::start(1, |r, _| if r.path == "/old" { status(400) } else { ok() });
    const KEY: &str = "whsec_dGFzay1vd24tc2lnbmluZy1rZXktOTg3NjU0MzIx";
    let mut cfg = config(&[hook.url("/old")]);
    cfg.tasks[0].secret = Some(SigningKey::parse(KEY).unwrap());
    let mut p = Pipeline::start(cfg.clone());
    let seq = p.send(0, insert(&users(true), 1, 1));
    assert!(p.tracker.wait_below(seq + 1, Duration::from_secs(20)));
    p.finish();
    let letter = p.dead_letters().pop().expect("a dead letter");
    let first_body = hook.received()[0].json();

    // Still failing: kept, with the new attempt recorded.
    let kept = replay(&cfg, &letter).expect_err("still 400");
    assert_eq!((kept.status, kept.attempts), (Some(400), 2));

    // The operator points the task at a working receiver: delivered.
    cfg.tasks[0].callback_url = hook.url("/new").parse().unwrap();
    assert_eq!(replay(&cfg, &letter), Ok(()));
    let r = hook.received().pop().unwrap();
    assert_eq!(r.path, "/new");
    assert_eq!(r.event_id(), event_id(1));
    assert_eq!(r.json(), first_body, "the same JSON as the first time");
    let key = SigningKey::parse(KEY).unwrap();
    let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(key.verify(
        &event_id(1),
        ts,
        &r.body,
        r.header("webhook-signature").unwrap()
    ));

    // A task that is gone: kept unchanged, nothing sent.
    let before = hook.count();
    cfg.tasks[0].task_id = "renamed".into();
    assert_eq!(replay(&cfg, &letter), Err(letter.clone()));
    assert_eq!(hook.count(), before);
}

#[test]
fn connections_are_kept_and_reused_between_requests() {
    // Answers with a body (and errors with one): it must be read for the connection
    // to be reused.
    let hook = Hook::start(2, |_, n| Reply {
        status: if n % 10 == 3 { 503 } else { 200 },
        headers: Vec::new(),
        body: "accepted, thank you".into(),
    });
    let mut cfg = config(&[hook.url("/")]);
    cfg.dispatcher.worker_count = 2;
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    for n in 1..=100u64 {
        p.send(0, insert(&table, n as i64, n));
    }
    p.finish();
    let ports: HashSet<_> = hook.received().iter().filter_map(|r| r.peer).collect();
    assert!(hook.count() >= 100);
    assert!(
        ports.len() <= 2,
        "{} connections for 2 workers",
        ports.len()
    );
}

/// Counts requests being answered at once, and the most seen.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn slow_counting_hook(seen: Arc<Concurrency>) -> Hook {
    Hook::start(8, move |_, _| {
        seen.enter();
        std::thread::sleep(Duration::from_millis(40));
        seen.leave();
        ok()
    })
}

#[test]
fn max_connections_caps_concurrent_requests_per_host_and_keeps_key_order() {
    let seen = Arc::new(Concurrency::default());
    let hook = slow_counting_hook(seen.clone());
    let mut cfg = config(&[hook.url("/h")]);
    cfg.dispatcher.worker_count = 8;
    cfg.dispatcher.max_connections = 2;
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    // 8 keys, 4 changes each: every worker has work at once.
    let mut n = 0;
    for round in 0..4 {
        for key in 0..8 {
            n += 1;
            let _ = round;
            p.send(0, insert(&table, key, n));
        }
    }
    wait_for("every request", || hook.count() == 32);
    p.finish();
    assert_eq!(
        seen.max.load(Ordering::SeqCst),
        2,
        "at most max_connections requests to the host at once, and the cap is reached"
    );
    // One key's changes arrive in the order they were routed.
    let mut last: HashMap<i64, u64> = HashMap::new();
    for r in hook.received() {
        let body = r.json();
        let key = body["data"]["id"].as_i64().expect("id");
        let pos = body["position"]["pos"].as_u64().expect("pos");
        if let Some(before) = last.insert(key, pos) {
            assert!(before < pos, "key {key}: {pos} after {before}");
        }
    }
    assert_eq!(p.task(0).delivered[INSERT], 32);
}

#[test]
fn max_connections_at_or_above_the_worker_count_limits_nothing() {
    let seen = Arc::new(Concurrency::default());
    let hook = slow_counting_hook(seen.clone());
    let mut cfg = config(&[hook.url("/h")]);
    cfg.dispatcher.worker_count = 4;
    cfg.dispatcher.max_connections = 4;
    let mut p = Pipeline::start(cfg);
    let table = users(true);
    for key in 0..16 {
        p.send(0, insert(&table, key, key as u64 + 1));
    }
    wait_for("every request", || hook.count() == 16);
    p.finish();
    assert!(
        seen.max.load(Ordering::SeqCst) > 2,
        "workers ran side by side"
    );
}

#[test]
fn a_tasks_max_in_flight_and_max_rate_make_workers_wait() {
    use super::TaskLimit;
    let mut task = config(&["http://127.0.0.1:9/x".to_owned()]).tasks.remove(0);
    task.max_in_flight = Some(1);
    let limit = Arc::new(TaskLimit::new(&task));
    let abort = Signal::new();
    let (first, waited) = limit.acquire(&abort).expect("a place");
    assert!(waited < Duration::from_millis(50));
    let second = {
        let limit = limit.clone();
        std::thread::spawn(move || {
            let abort = Signal::new();
            limit.acquire(&abort).map(|(_, waited)| waited)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !second.is_finished(),
        "the second request waits for the first"
    );
    drop(first);
    let waited = second.join().unwrap().expect("a place after the first");
    assert!(waited >= Duration::from_millis(90), "{waited:?}");

    // 10 requests per second: the third leaves about 0.2 s after the first.
    task.max_in_flight = None;
    task.max_rate = Some(10.0);
    let limit = TaskLimit::new(&task);
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let _ = limit.acquire(&abort).expect("a slot");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    // An abort ends a wait.
    let raised = Signal::new();
    raised.raise();
    assert!(limit.acquire(&raised).is_none());
}
