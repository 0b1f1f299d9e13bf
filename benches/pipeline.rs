//! Micro-benchmarks of the pipeline's stages, with inputs built here (no database):
//!
//! - `decode/<family>`: binlog row bytes → `RowImage`, rows/s;
//! - `encode/<family>`: `RowChange` → webhook JSON envelope, rows/s;
//! - `dispatch/batch_<n>`: routed deliveries → HTTP POSTs to an in-process tiny_http
//!   receiver on loopback → tracker completion, events/s;
//! - `tracker/...`: the checkpoint tracker with many completing workers, events/s.
//!
//! Run: `cargo bench --bench pipeline` (about a minute); one group:
//! `cargo bench --bench pipeline -- decode`. The end-to-end figures (a real MariaDB and
//! the release binary) come from `scripts/bench.sh`.
// A test or benchmark that cannot set itself up should stop loudly, not carry on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use pikachu::checkpoint::{Checkpoint, Tracker};
use pikachu::deadletter::DeadLetters;
use pikachu::dispatch::{DispatchContext, Dispatcher};
use pikachu::encode::{write_envelope, Form};
use pikachu::event::{BinlogPosition, ChangeKind, Delivery, RowChange, TableSchema, Value};
use pikachu::filter::Columns;
use pikachu::shutdown::Signal;
use pikachu::source::decode::{decode_image, Charset, ColumnDef, ColumnKind};
use pikachu::stats::{Metrics, Stats};

/// Rows per decode iteration: one rows event's worth, decoded back to back.
const ROWS_PER_EVENT: usize = 100;

// ---------------------------------------------------------------------------------
// Column families: definitions and the bytes of one row, as the server writes them.

struct Family {
    name: &'static str,
    columns: Vec<(&'static str, ColumnDef)>,
    /// One full row image: null bitmap then the values.
    row: Vec<u8>,
}

fn def(kind: ColumnKind) -> ColumnDef {
    ColumnDef {
        kind,
        unsigned: false,
        charset: Charset::Binary,
        labels: None,
    }
}

fn text_def(kind: ColumnKind, charset: Charset) -> ColumnDef {
    ColumnDef {
        charset,
        ..def(kind)
    }
}

fn labelled(kind: ColumnKind, labels: &[&str]) -> ColumnDef {
    let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    ColumnDef {
        labels: Some(labels.into()),
        charset: Charset::Utf8,
        ..def(kind)
    }
}

/// A row whose columns are all present and not NULL: a zero null bitmap, then `values`.
fn row(columns: usize, values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; columns.div_ceil(8)];
    for v in values {
        out.extend_from_slice(v);
    }
    out
}

/// MySQL's decimal2bin for a non-negative value.
fn decimal_bytes(value: &str, precision: usize, scale: usize) -> Vec<u8> {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let (ip, fp) = value.split_once('.').unwrap_or((value, ""));
    let intg = precision - scale;
    let ip = format!("{ip:0>intg$}");
    let fp = format!("{fp:0<scale$}");
    let mut out = Vec::new();
    let mut put = |digits: &str| {
        if digits.is_empty() {
            return;
        }
        let n: u32 = digits.parse().expect("digits");
        out.extend_from_slice(&n.to_be_bytes()[4 - DIG2BYTES[digits.len()]..]);
    };
    let lead = intg % 9;
    put(&ip[..lead]);
    for c in ip.as_bytes()[lead..].chunks(9) {
        put(std::str::from_utf8(c).expect("ascii"));
    }
    for c in fp.as_bytes().chunks(9) {
        put(std::str::from_utf8(c).expect("ascii"));
    }
    out[0] ^= 0x80;
    out
}

fn fraction(micros: u64, fsp: u8) -> Vec<u8> {
    match fsp {
        1 | 2 => vec![(micros / 10_000) as u8],
        3 | 4 => ((micros / 100) as u16).to_be_bytes().to_vec(),
        5 | 6 => (micros as u32).to_be_bytes()[1..].to_vec(),
        _ => Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn datetime2_bytes(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64, us: u64, fsp: u8) -> Vec<u8> {
    let ymd = ((y * 13 + mo) << 5) | d;
    let hms = (h << 12) | (mi << 6) | s;
    let int = ((ymd << 17) | hms) + 0x80_0000_0000;
    let mut out = int.to_be_bytes()[3..].to_vec();
    out.extend(fraction(us, fsp));
    out
}

fn timestamp2_bytes(secs: u32, us: u64, fsp: u8) -> Vec<u8> {
    let mut out = secs.to_be_bytes().to_vec();
    out.extend(fraction(us, fsp));
    out
}

fn time2_bytes(h: i64, m: i64, s: i64) -> Vec<u8> {
    let hms = (h << 12) | (m << 6) | s;
    ((0x80_0000 + hms) as u32).to_be_bytes()[1..].to_vec()
}

fn date_bytes(y: u32, m: u32, d: u32) -> Vec<u8> {
    ((y << 9) | (m << 5) | d).to_le_bytes()[..3].to_vec()
}

fn prefixed(len_bytes: usize, data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_le_bytes()[..len_bytes].to_vec();
    out.extend_from_slice(data);
    out
}

/// MySQL binary JSON: the small object {"id": 42, "name": "<name>", "score": 98.5}.
fn jsonb_object(name: &str) -> Vec<u8> {
    let keys = ["id", "name", "score"];
    let n = keys.len();
    // count, size, key entries (offset u16 + length u16), value entries (type + u16).
    let header = 4 + n * 4 + n * 3;
    let key_bytes: usize = keys.iter().map(|k| k.len()).sum();
    let string_at = header + key_bytes;
    let double_at = string_at + 1 + name.len();
    let size = double_at + 8;
    let mut out = vec![0u8]; // type: small object
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(size as u16).to_le_bytes());
    let mut at = header;
    for k in keys {
        out.extend_from_slice(&(at as u16).to_le_bytes());
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        at += k.len();
    }
    out.push(5); // int16, inlined
    out.extend_from_slice(&42i16.to_le_bytes());
    out.push(12); // string
    out.extend_from_slice(&(string_at as u16).to_le_bytes());
    out.push(11); // double
    out.extend_from_slice(&(double_at as u16).to_le_bytes());
    for k in keys {
        out.extend_from_slice(k.as_bytes());
    }
    out.push(name.len() as u8); // one-byte varlen: names here are < 128 bytes
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&98.5f64.to_le_bytes());
    out
}

fn families() -> Vec<Family> {
    let mut families = Vec::new();

    let unsigned = |kind| ColumnDef {
        unsigned: true,
        ..def(kind)
    };
    let columns = vec![
        ("id", unsigned(ColumnKind::LongLong)),
        ("tiny", def(ColumnKind::Tiny)),
        ("small", def(ColumnKind::Short)),
        ("medium", def(ColumnKind::Int24)),
        ("qty", def(ColumnKind::Long)),
        ("big", def(ColumnKind::LongLong)),
    ];
    let values = [
        123_456_789u64.to_le_bytes().to_vec(),
        vec![0x85],
        (-1234i16).to_le_bytes().to_vec(),
        vec![0x2e, 0xfb, 0xff],
        7_654_321i32.to_le_bytes().to_vec(),
        (-9_007_199_254_740_993i64).to_le_bytes().to_vec(),
    ];
    families.push(Family {
        name: "integers",
        row: row(columns.len(), &values),
        columns,
    });

    let columns = vec![
        ("id", def(ColumnKind::Long)),
        ("ratio", def(ColumnKind::Float)),
        ("score", def(ColumnKind::Double)),
    ];
    let values = [
        1i32.to_le_bytes().to_vec(),
        1.1f32.to_le_bytes().to_vec(),
        (-2.5e-3f64).to_le_bytes().to_vec(),
    ];
    families.push(Family {
        name: "floats",
        row: row(columns.len(), &values),
        columns,
    });

    let dec = |precision, scale| def(ColumnKind::Decimal { precision, scale });
    let columns = vec![
        ("id", def(ColumnKind::Long)),
        ("price", dec(10, 2)),
        ("rate", dec(20, 6)),
        ("huge", dec(65, 30)),
    ];
    let values = [
        1i32.to_le_bytes().to_vec(),
        decimal_bytes("1234.50", 10, 2),
        decimal_bytes("12345678901234.123456", 20, 6),
        decimal_bytes(
            "12345678901234567890.123456789012345678901234567890",
            65,
            30,
        ),
    ];
    families.push(Family {
        name: "decimal",
        row: row(columns.len(), &values),
        columns,
    });

    let columns = vec![
        ("id", def(ColumnKind::Long)),
        ("day", def(ColumnKind::Date)),
        ("at", def(ColumnKind::DateTime2 { fsp: 0 })),
        ("at6", def(ColumnKind::DateTime2 { fsp: 6 })),
        ("ts", def(ColumnKind::Timestamp2 { fsp: 0 })),
        ("ts3", def(ColumnKind::Timestamp2 { fsp: 3 })),
        ("t", def(ColumnKind::Time2 { fsp: 0 })),
        ("y", def(ColumnKind::Year)),
    ];
    let values = [
        1i32.to_le_bytes().to_vec(),
        date_bytes(2024, 2, 29),
        datetime2_bytes(2024, 2, 29, 13, 45, 1, 0, 0),
        datetime2_bytes(2024, 2, 29, 13, 45, 1, 120_000, 6),
        timestamp2_bytes(1_709_214_301, 0, 0),
        timestamp2_bytes(1_709_214_301, 789_000, 3),
        time2_bytes(838, 59, 59),
        vec![124],
    ];
    families.push(Family {
        name: "temporal",
        row: row(columns.len(), &values),
        columns,
    });

    let columns = vec![
        ("id", def(ColumnKind::Long)),
        (
            "name",
            text_def(ColumnKind::VarChar { max_len: 1020 }, Charset::Utf8),
        ),
        (
            "email",
            text_def(ColumnKind::VarChar { max_len: 255 }, Charset::Utf8),
        ),
        (
            "city",
            text_def(ColumnKind::VarChar { max_len: 100 }, Charset::Latin1),
        ),
        (
            "code",
            text_def(ColumnKind::Char { max_len: 40 }, Charset::Utf8),
        ),
        (
            "size",
            labelled(
                ColumnKind::Enum { pack_len: 1 },
                &["small", "medium", "large"],
            ),
        ),
        (
            "tags",
            labelled(ColumnKind::Set { pack_len: 1 }, &["a", "b", "c", "d"]),
        ),
    ];
    let values = [
        1i32.to_le_bytes().to_vec(),
        {
            let s = "Zoë Ångström — naïve café ☕".as_bytes();
            let mut v = (s.len() as u16).to_le_bytes().to_vec();
            v.extend_from_slice(s);
            v
        },
        {
            let s = b"zoe.angstrom@example.com";
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s);
            v
        },
        {
            let s = b"M\xfcnchen"; // latin1 ü
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s);
            v
        },
        {
            let s = b"ABC-123";
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s);
            v
        },
        vec![2],
        vec![0b0101],
    ];
    families.push(Family {
        name: "strings",
        row: row(columns.len(), &values),
        columns,
    });

    let body: String = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
        .repeat(8)
        .chars()
        .take(400)
        .collect();
    let blob: Vec<u8> = (0..256u32).map(|i| (i * 7 % 256) as u8).collect();
    let columns = vec![
        ("id", def(ColumnKind::Long)),
        (
            "body",
            text_def(ColumnKind::Blob { len_bytes: 2 }, Charset::Utf8),
        ),
        ("avatar", def(ColumnKind::Blob { len_bytes: 2 })),
        ("doc", def(ColumnKind::Json { len_bytes: 4 })),
    ];
    let values = [
        1i32.to_le_bytes().to_vec(),
        prefixed(2, body.as_bytes()),
        prefixed(2, &blob),
        prefixed(4, &jsonb_object("Zoë")),
    ];
    families.push(Family {
        name: "blobs_json",
        row: row(columns.len(), &values),
        columns,
    });

    families
}

impl Family {
    fn defs(&self) -> Vec<ColumnDef> {
        self.columns.iter().map(|(_, d)| d.clone()).collect()
    }

    fn schema(&self) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            database: "shop".into(),
            table: format!("bench_{}", self.name),
            columns: self.columns.iter().map(|(n, _)| n.to_string()).collect(),
            primary_key: vec![0],
        })
    }

    /// The family's row decoded, as an insert.
    fn change(&self) -> RowChange {
        let defs = self.defs();
        let present = vec![true; defs.len()];
        let mut input: &[u8] = &self.row;
        let image = decode_image(&defs, &present, &mut input).expect("bench row decodes");
        insert_change(self.schema(), image, 18_825)
    }

    /// A rows event body: `ROWS_PER_EVENT` images back to back.
    fn event(&self) -> Vec<u8> {
        self.row.repeat(ROWS_PER_EVENT)
    }
}

fn insert_change(table: Arc<TableSchema>, image: Vec<Option<Value>>, n: u64) -> RowChange {
    RowChange {
        kind: ChangeKind::Insert,
        table,
        before: None,
        after: Some(image),
        id: format!("mysql-bin.000003:{n}:0"),
        position: BinlogPosition::new("mysql-bin.000003", n),
        timestamp: 1_764_000_000,
        gtid: Some(Arc::from("0-1-1077")),
        go: None,
    }
}

// ---------------------------------------------------------------------------------
// decode and encode

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(ROWS_PER_EVENT as u64));
    for family in families() {
        let defs = family.defs();
        let present = vec![true; defs.len()];
        let event = family.event();
        // A failing decode would measure the error path: check once, outside the loop.
        let mut check: &[u8] = &event;
        for _ in 0..ROWS_PER_EVENT {
            decode_image(&defs, &present, &mut check).expect("bench rows decode");
        }
        assert!(
            check.is_empty(),
            "{}: rows must consume the event",
            family.name
        );
        group.bench_function(family.name, |b| {
            b.iter(|| {
                let mut input: &[u8] = black_box(&event);
                for _ in 0..ROWS_PER_EVENT {
                    let image = decode_image(&defs, &present, &mut input);
                    black_box(image.ok());
                }
            })
        });
    }
    group.finish();
}

/// What a task's `exclude_columns` and `filter` add per row: the encode of each family
/// with one column left out, and a filter on the first two columns.
fn bench_task_selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("task_selection");
    group.throughput(Throughput::Elements(1));
    for family in families() {
        let change = family.change();
        let schema = change.table.clone();
        let last = schema.columns.last().cloned().unwrap_or_default();
        let second = schema.columns.get(1).cloned().unwrap_or_default();
        let except = Form {
            columns: Columns::Except(vec![last]),
            ..Form::default()
        };
        let filter =
            pikachu::filter::Filter::parse(&format!("id > 0 and ({second} is not null or id = 1)"))
                .expect("bench filter parses");
        let mut out = Vec::with_capacity(4096);
        group.bench_function(format!("{}/exclude_one_column", family.name), |b| {
            b.iter(|| {
                out.clear();
                write_envelope(&mut out, "user_monitor", black_box(&change), &except, None);
                black_box(out.len());
            })
        });
        group.bench_function(format!("{}/filter", family.name), |b| {
            b.iter(|| black_box(filter.selects(black_box(&change))))
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    for family in families() {
        let change = family.change();
        let mut out = Vec::with_capacity(4096);
        write_envelope(&mut out, "user_monitor", &change, &Form::default(), None);
        serde_json::from_slice::<serde_json::Value>(&out).expect("the envelope is JSON");
        group.bench_function(family.name, |b| {
            b.iter(|| {
                out.clear();
                write_envelope(
                    &mut out,
                    "user_monitor",
                    black_box(&change),
                    &Form::default(),
                    None,
                );
                black_box(out.len());
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// dispatch: the worker pool against an in-process receiver

/// A loopback webhook receiver that answers 200 to everything, as fast as tiny_http can.
struct Receiver {
    url: String,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
}

impl Receiver {
    fn start(threads: usize) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let threads = (0..threads)
            .map(|_| {
                let server = server.clone();
                std::thread::spawn(move || {
                    let mut body = Vec::new();
                    while let Ok(mut request) = server.recv() {
                        body.clear();
                        let _ = request.as_reader().read_to_end(&mut body);
                        let _ = request.respond(tiny_http::Response::empty(200));
                    }
                })
            })
            .collect();
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            server,
            threads,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "pikachu-bench-{what}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The dispatcher as the engine starts it, from a configuration file, so the bench
/// follows the configuration's defaults.
struct Pipeline {
    dispatcher: Option<Dispatcher>,
    tracker: Arc<Tracker>,
    stats: Arc<Stats>,
    abort: Arc<Signal>,
    _dir: TempDir,
}

impl Pipeline {
    fn start(url: &str, workers: usize, batch_size: usize) -> Pipeline {
        let dir = TempDir::new("dispatch");
        let config_path = dir.0.join("config.yaml");
        let yaml = format!(
            "database:\n  host: 127.0.0.1\n  port: 3306\n  user: bench\n  database: shop\n  \
             server_id: 1001\n\
             dispatcher:\n  worker_count: {workers}\n  queue_size: 1000\n  \
             batch_size: {batch_size}\n  batch_timeout: 5ms\n  max_retries: 0\n\
             data_dir: {data}\n\
             tasks:\n  - task_id: bench\n    name: bench\n    table_name: users\n    \
             events: [insert, update, delete]\n    callback_url: {url}\n",
            data = dir.0.display()
        );
        std::fs::write(&config_path, yaml).expect("write config");
        let config = pikachu::config::load_with_env(&config_path, &|_| None)
            .unwrap_or_else(|e| panic!("bench config: {e}"));
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
            _dir: dir,
        }
    }

    /// Routes `n` inserts of distinct keys as the reader does and waits until all are
    /// delivered; returns the time it took.
    fn run(&self, changes: &[Arc<RowChange>], n: u64) -> Duration {
        let dispatcher = self.dispatcher.as_ref().expect("running");
        let start = Instant::now();
        let mut last = 0;
        for i in 0..n {
            let change = changes[(i % changes.len() as u64) as usize].clone();
            // What `Sink::deliver` does, with the number kept to wait for it below.
            let seq = self.tracker.begin();
            self.stats.source.captured(0, change.kind, 1);
            assert!(
                dispatcher.route(Delivery {
                    seq,
                    task: 0,
                    change,
                    txn: None,
                }),
                "route refused"
            );
            last = seq;
        }
        assert!(
            self.tracker.wait_below(last + 1, Duration::from_secs(60)),
            "deliveries did not complete within 60 s"
        );
        start.elapsed()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.finish();
        }
        self.abort.raise();
    }
}

fn bench_dispatch(c: &mut Criterion) {
    let family = families().remove(0);
    let defs = family.defs();
    let present = vec![true; defs.len()];
    let table = family.schema();
    // Distinct keys, so deliveries spread over all workers as a bulk insert's do.
    let changes: Vec<Arc<RowChange>> = (0..1024u64)
        .map(|n| {
            let mut input: &[u8] = &family.row;
            let mut image = decode_image(&defs, &present, &mut input).expect("bench row decodes");
            image[0] = Some(Value::UInt(n));
            Arc::new(insert_change(table.clone(), image, 4 + n))
        })
        .collect();

    let receiver = Receiver::start(4);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(1));
    for batch in [1usize, 100] {
        let pipeline = Pipeline::start(&receiver.url, 4, batch);
        // Warm the connection pool outside the measurement.
        pipeline.run(&changes, 200);
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            b.iter_custom(|iters| pipeline.run(&changes, iters))
        });
        assert_eq!(
            pipeline.stats.snapshot().tasks[0].dead_letters,
            0,
            "no dead letters"
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// the checkpoint tracker

/// `iters` events handed out with a commit mark every 10, then completed out of order
/// by `workers` threads, each `chunk` numbers per call.
fn tracker_run(iters: u64, workers: u64, chunk: usize) -> Duration {
    let tracker = Arc::new(Tracker::new(Checkpoint {
        file: "mysql-bin.000001".into(),
        pos: 4,
        gtid: None,
        server_id: None,
        gtid_set: None,
        backfills: Default::default(),
    }));
    let start = Instant::now();
    for i in 0..iters {
        tracker.begin();
        if i % 10 == 9 {
            tracker.commit(Checkpoint {
                file: "mysql-bin.000001".into(),
                pos: 4 + i,
                gtid: None,
                server_id: None,
                gtid_set: None,
                backfills: Default::default(),
            });
        }
    }
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let tracker = tracker.clone();
            std::thread::spawn(move || {
                // Worker w owns every workers-th number: completions interleave.
                let mine: Vec<u64> = (w..iters).step_by(workers as usize).collect();
                for part in mine.chunks(chunk) {
                    tracker.complete(part);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("tracker worker");
    }
    let elapsed = start.elapsed();
    assert_eq!(tracker.outstanding(), 0);
    elapsed
}

fn bench_tracker(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(1));
    for workers in [1u64, 4, 20, 64] {
        group.bench_function(BenchmarkId::new("workers_batch1", workers), |b| {
            b.iter_custom(|iters| tracker_run(iters.max(workers), workers, 1))
        });
    }
    group.bench_function(BenchmarkId::new("workers_batch100", 20), |b| {
        b.iter_custom(|iters| tracker_run(iters.max(20), 20, 100))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_encode, bench_task_selection, bench_dispatch, bench_tracker
}
criterion_main!(benches);
