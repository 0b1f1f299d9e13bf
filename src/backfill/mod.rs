//! Backfill: delivers the rows a table already has, chunk by chunk in primary-key
//! order, consistently with the live stream and without locking the table.
//!
//! One thread per backfill. Each chunk is read inside its own
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT`, together with the exact binlog position
//! of that snapshot (MariaDB's `binlog_snapshot_file/position`), and handed to the
//! reader through `handoff::Handoff`, which delivers it at that position of the stream
//! (README, "Backfill", says why that is correct). This thread never touches the sink.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use mysql::consts::{ColumnFlags, ColumnType};
use mysql::prelude::Queryable;

use crate::checkpoint::{BackfillProgress, KeyValue, Tracker};
use crate::clock::unix_now;
use crate::config::Config;
use crate::event::{BinlogPosition, ChangeKind, RowChange, TableSchema, Value};
use crate::handoff::{Chunk, Handoff};
use crate::shutdown::Signal;
use crate::source::connect::{ConnectError, Connector};
use crate::stats::BackfillStats;

pub mod control;

/// What a backfill needs to be resumable: the checkpoint tracker, which keeps each
/// task's progress with the safe point (rows handed over before a boundary the safe
/// point passed were delivered or dead-lettered) and saves both together.
#[derive(Clone)]
pub struct Resume {
    pub tracker: Arc<Tracker>,
    pub stats: Arc<BackfillStats>,
    /// Raised by `pikachu backfill --cancel`.
    pub cancel: Arc<Signal>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("task {task}: cannot backfill {table}: {error}")]
    Query {
        task: String,
        table: String,
        #[source]
        error: mysql::Error,
    },
    #[error("task {task}: cannot backfill: {error}")]
    Connect {
        task: String,
        #[source]
        error: ConnectError,
    },
    #[error(
        "task {task}: cannot backfill: the server does not report binlog_snapshot_file/position \
         (MariaDB 10.x and later do; a consistent backfill needs them)"
    )]
    NoSnapshotPosition { task: String },
}

/// Starts the backfill of task `task` in its own thread.
pub fn spawn(
    config: Arc<Config>,
    task: usize,
    handoff: Arc<Handoff>,
    stop: Arc<Signal>,
    resume: Resume,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("backfill-{task}"))
        .spawn(move || {
            let Some(c) = resume.stats.task(task) else {
                return;
            };
            c.started.store(true, Relaxed);
            c.running.store(true, Relaxed);
            *c.run.lock() = (c.rows_read.load(Relaxed), Some(Instant::now()));
            handoff.begin();
            let result = run(&config, task, &handoff, &stop, &resume);
            handoff.end(task);
            c.running.store(false, Relaxed);
            if let Err(e) = result {
                c.failures.fetch_add(1, Relaxed);
                log::error!("{e}");
            }
        })
}

fn run(
    config: &Config,
    task: usize,
    handoff: &Handoff,
    stop: &Signal,
    resume: &Resume,
) -> Result<(), BackfillError> {
    let t = &config.tasks[task];
    let stats = &resume.stats;
    let Some(progress) = stats.task(task) else {
        return Ok(());
    };
    let saved = resume.tracker.backfill(&t.task_id).unwrap_or_default();
    // Rows of earlier runs count as read, so that the ETA is about what is left.
    progress.rows_read.fetch_add(saved.rows, Relaxed);
    *progress.run.lock() = (progress.rows_read.load(Relaxed), Some(Instant::now()));
    let mut read_this_run = 0u64;
    let name = format!("`{}`.`{}`", t.database, t.table);
    let err = |error| BackfillError::Query {
        task: t.task_id.clone(),
        table: name.clone(),
        error,
    };
    // The same connection settings as the binlog reader's (hosts, TLS, credentials).
    let mut conn = Connector::new(&config.database, None)
        .connect()
        .map_err(|error| BackfillError::Connect {
            task: t.task_id.clone(),
            error,
        })?;
    // TIMESTAMP values come in UTC, as the SPEC wants them.
    conn.query_drop("SET time_zone = '+00:00'").map_err(err)?;
    let columns: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&t.database, &t.table),
        )
        .map_err(err)?;
    let position_of = |names: &[String]| -> Vec<usize> {
        names
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect()
    };
    // Paged by the primary key, else by the unique key of NOT NULL columns the server
    // takes as the primary key (the stream's events of the table name it as theirs, so
    // `primary_id` and per-key order agree); a table with neither is read in one pass.
    let (unique, key_names) = match paging_key(&mut conn, &t.database, &t.table).map_err(err)? {
        Some((index, columns)) => (index != "PRIMARY", columns),
        None => (false, Vec::new()),
    };
    let paging = position_of(&key_names);
    let primary_key = paging.clone();
    let keyless = paging.is_empty();
    if keyless {
        log::warn!(
            "task {}: {name} has neither a primary key nor a unique key of NOT NULL columns: \
             its backfill reads the table in one pass inside one snapshot (an open \
             transaction for the whole read), cannot resume after a restart (it starts \
             over), and a receiver cannot tell rows apart; add a primary key to backfill it \
             in chunks",
            t.task_id
        );
    } else if unique {
        log::info!(
            "task {}: {name} has no primary key; its backfill pages by the unique key ({})",
            t.task_id,
            key_names.join(", ")
        );
    }
    // What identifies a row for the hand-off: the paging key, or the whole row.
    let identity: Arc<[usize]> = if keyless {
        (0..columns.len()).collect()
    } else {
        paging.clone().into()
    };
    let estimated: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ?",
            (&t.database, &t.table),
        )
        .map_err(err)?
        .flatten();
    progress
        .rows_estimated
        .store(estimated.unwrap_or(0), Relaxed);
    let schema = Arc::new(TableSchema {
        database: t.database.clone(),
        table: t.table.clone(),
        columns: columns.clone(),
        primary_key: primary_key.clone(),
    });
    let quote = |c: &str| format!("`{}`", c.replace('`', "``"));
    let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let keys: Vec<String> = key_names.iter().map(|c| quote(c)).collect();
    let order = keys.join(", ");
    let chunk_size = t.backfill_chunk_size.max(1);
    let filter = saved
        .condition
        .as_ref()
        .map(|c| format!("({c}) AND "))
        .unwrap_or_default();
    let whole = saved
        .condition
        .as_ref()
        .map(|c| format!("WHERE ({c})"))
        .unwrap_or_default();
    let first = if keyless {
        format!("SELECT {} FROM {name} {whole}", list.join(", "))
    } else {
        format!(
            "SELECT {} FROM {name} {whole} ORDER BY {order} LIMIT {chunk_size}",
            list.join(", ")
        )
    };
    // The whole key tuple: a composite key whose first column has few values still
    // gives bounded chunks.
    let marks = vec!["?"; keys.len()].join(", ");
    let next = format!(
        "SELECT {} FROM {name} WHERE {filter}({order}) > ({marks}) ORDER BY {order} LIMIT \
         {chunk_size}",
        list.join(", ")
    );
    log::info!(
        "task {}: backfill of {name} started ({} rows estimated, chunks of {chunk_size})",
        t.task_id,
        estimated.unwrap_or(0)
    );
    let started = Instant::now();
    let mut last_log = Instant::now();
    // A keyless pass cannot resume: it starts over.
    let mut last_key: Option<Vec<mysql::Value>> = saved
        .after
        .as_ref()
        .filter(|_| !keyless)
        .map(|k| k.iter().map(key_to_mysql).collect());
    if last_key.is_some() {
        log::info!(
            "task {}: resuming the backfill of {name} after the last delivered chunk ({} rows \
             delivered before)",
            t.task_id,
            saved.rows
        );
    }
    let mut keyless_seq = 0u64;
    let kind = if t.backfill_as_insert {
        ChangeKind::Insert
    } else {
        ChangeKind::Read
    };
    loop {
        if stop.is_raised() {
            log::info!("task {}: backfill stopped by shutdown", t.task_id);
            return Ok(());
        }
        if resume.cancel.is_raised() {
            resume.tracker.end_backfill(&t.task_id, true);
            log::info!(
                "task {}: backfill of {name} cancelled after {} rows read",
                t.task_id,
                progress.rows_read.load(Relaxed)
            );
            return Ok(());
        }
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .map_err(err)?;
        let status: Vec<(String, String)> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .map_err(err)?;
        let file = status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("binlog_snapshot_file"))
            .map(|(_, v)| v.clone());
        let pos = status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("binlog_snapshot_position"))
            .and_then(|(_, v)| v.parse::<u64>().ok());
        let (Some(file), Some(pos)) = (file, pos) else {
            return Err(BackfillError::NoSnapshotPosition {
                task: t.task_id.clone(),
            });
        };
        let at = BinlogPosition::new(file, pos);
        let result = match &last_key {
            None => conn.exec_iter(first.as_str(), ()),
            Some(k) => conn.exec_iter(next.as_str(), k.clone()),
        }
        .map_err(err)?;
        let cols = result.columns().as_ref().to_vec();
        // Converts rows read at `at` and queues them for the reader; false when a
        // shutdown or cancel stopped the wait for room.
        let mut hand = |rows: Vec<Vec<mysql::Value>>, last_key: &mut Option<Vec<mysql::Value>>| {
            let n = rows.len();
            if let Some(last) = rows.last().filter(|_| !keyless) {
                *last_key = Some(paging.iter().map(|&i| last[i].clone()).collect());
            }
            let now = unix_now().max(0) as u32;
            let changes: Vec<Arc<RowChange>> = rows
                .into_iter()
                .map(|raw| {
                    let image: Vec<Option<Value>> = raw
                        .into_iter()
                        .zip(&cols)
                        .map(|(v, c)| Some(convert(v, c)))
                        .collect();
                    // Stable across redeliveries: the key; a keyless row's place in
                    // the pass.
                    let id = if keyless {
                        keyless_seq += 1;
                        format!("read:{}:#{keyless_seq}", t.task_id)
                    } else {
                        let key: Vec<String> = paging
                            .iter()
                            .map(|&i| image[i].as_ref().map(value_text).unwrap_or_default())
                            .collect();
                        format!("read:{}:{}", t.task_id, key.join(","))
                    };
                    Arc::new(RowChange {
                        kind,
                        table: schema.clone(),
                        before: None,
                        after: Some(image),
                        id,
                        position: at.clone(),
                        timestamp: now,
                        gtid: None,
                        go: None,
                    })
                })
                .collect();
            progress.rows_read.fetch_add(n as u64, Relaxed);
            read_this_run += n as u64;
            progress.chunks.fetch_add(1, Relaxed);
            let p = stats.clone();
            let tracker = resume.tracker.clone();
            let task_id = t.task_id.clone();
            // A keyless pass has no key to go on from.
            let key: Option<Vec<KeyValue>> = last_key
                .as_ref()
                .map(|k| k.iter().map(key_from_mysql).collect());
            let chunk = Chunk {
                task,
                at: at.clone(),
                key: identity.clone(),
                rows: changes,
                done: Box::new(move |delivered, dropped, boundary| {
                    if let Some(p) = p.task(task) {
                        p.rows_delivered.fetch_add(delivered as u64, Relaxed);
                        p.rows_superseded.fetch_add(dropped as u64, Relaxed);
                    }
                    tracker.backfill_handed(&task_id, boundary.clone(), key, n as u64);
                }),
            };
            n == 0 || handoff.submit(chunk, &|| stop.is_raised() || resume.cancel.is_raised())
        };
        let mut rows: Vec<Vec<mysql::Value>> = Vec::new();
        let mut n = 0;
        let mut gave_up = false;
        for row in result {
            rows.push(row.map_err(err)?.unwrap());
            // One pass: a chunk at a time while the snapshot stays open.
            if keyless && rows.len() == chunk_size {
                n += chunk_size;
                if !hand(std::mem::take(&mut rows), &mut last_key) {
                    gave_up = true;
                    break;
                }
            }
        }
        conn.query_drop("COMMIT").map_err(err)?;
        n += rows.len();
        if gave_up || !hand(rows, &mut last_key) {
            // Shutdown or cancel: the loop's top says which.
            continue;
        }
        // The pass read the whole table.
        let n = if keyless { 0 } else { n };
        if t.backfill_rows_per_second > 0 {
            let due = read_this_run as f64 / t.backfill_rows_per_second as f64;
            let ahead = due - started.elapsed().as_secs_f64();
            if ahead > 0.0 {
                // The cancel signal's sleep; a shutdown is seen at the next chunk.
                resume
                    .cancel
                    .sleep(std::time::Duration::from_secs_f64(ahead.min(1.0)));
            }
        }
        if last_log.elapsed().as_secs() >= 5 || n < chunk_size {
            last_log = Instant::now();
            let done = progress.rows_read.load(Relaxed);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = read_this_run as f64 / secs;
            let est = progress.rows_estimated.load(Relaxed);
            let eta = if rate > 0.0 && est > done {
                (est - done) as f64 / rate
            } else {
                0.0
            };
            log::info!(
                "task {}: backfill of {name}: {done} of ~{est} rows read, {:.0} rows/s, ETA {:.0}s, \
                 {} delivered, {} superseded by newer changes",
                t.task_id,
                rate,
                eta,
                progress.rows_delivered.load(Relaxed),
                progress.rows_superseded.load(Relaxed)
            );
        }
        if n < chunk_size {
            log::info!(
                "task {}: backfill of {name} read all {} rows in {} chunks",
                t.task_id,
                read_this_run,
                progress.chunks.load(Relaxed)
            );
            // Finished once the checkpoint has passed every chunk.
            while resume.tracker.backfill_pending(&t.task_id) {
                if !stop.sleep(std::time::Duration::from_millis(100)) {
                    return Ok(());
                }
            }
            resume.tracker.end_backfill(&t.task_id, false);
            log::info!("task {}: backfill of {name} finished", t.task_id);
            return Ok(());
        }
    }
}

/// The key a backfill pages by, as (index name, columns): the primary key, else the
/// unique key of NOT NULL columns the server treats as the primary key of a table
/// without one (InnoDB clusters by it, and the binlog's metadata names it). Both are the
/// first unique index of NOT NULL columns `SHOW INDEX` lists, as the server sorts them
/// (`PRIMARY` first). `None`: the table has neither.
pub fn paging_key(
    conn: &mut mysql::Conn,
    database: &str,
    table: &str,
) -> mysql::Result<Option<(String, Vec<String>)>> {
    let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
    let rows: Vec<mysql::Row> = conn.query(format!(
        "SHOW INDEX FROM {}.{}",
        quote(database),
        quote(table)
    ))?;
    // (index, columns, any nullable) in the order listed.
    let mut keys: Vec<(String, Vec<String>, bool)> = Vec::new();
    for row in rows {
        let text = |name: &str| -> String {
            row.get_opt::<String, _>(name)
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        if text("Non_unique") != "0" {
            continue;
        }
        let (index, column) = (text("Key_name"), text("Column_name"));
        let nullable = text("Null").eq_ignore_ascii_case("YES");
        match keys.iter_mut().find(|k| k.0 == index) {
            Some(k) => {
                k.1.push(column);
                k.2 |= nullable;
            }
            None => keys.push((index, vec![column], nullable)),
        }
    }
    Ok(keys
        .into_iter()
        .find(|k| !k.2)
        .map(|(index, columns, _)| (index, columns)))
}

fn key_from_mysql(v: &mysql::Value) -> KeyValue {
    use base64::Engine as _;
    match v {
        mysql::Value::Int(i) => KeyValue::Int(*i),
        mysql::Value::UInt(u) => KeyValue::UInt(*u),
        mysql::Value::Bytes(b) => {
            KeyValue::Bytes(base64::engine::general_purpose::STANDARD.encode(b))
        }
        other => KeyValue::Text(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}

fn key_to_mysql(k: &KeyValue) -> mysql::Value {
    use base64::Engine as _;
    match k {
        KeyValue::Int(i) => mysql::Value::Int(*i),
        KeyValue::UInt(u) => mysql::Value::UInt(*u),
        KeyValue::Bytes(b) => mysql::Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default(),
        ),
        KeyValue::Text(t) => mysql::Value::Bytes(t.clone().into_bytes()),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Text(t) => t.clone(),
        other => format!("{other:?}"),
    }
}

fn fraction(us: u32, decimals: u8) -> String {
    let d = usize::from(decimals.min(6));
    if d == 0 {
        return String::new();
    }
    let s = format!("{us:06}");
    format!(".{}", &s[..d])
}

/// A value of the binary protocol in the shape the binlog decoder gives the same
/// column (SPEC section 3), so that both encode identically.
fn convert(v: mysql::Value, c: &mysql::Column) -> Value {
    use mysql::Value as M;
    let ty = c.column_type();
    match v {
        M::NULL => Value::Null,
        M::Int(i) => Value::Int(i),
        M::UInt(u) => Value::UInt(u),
        M::Float(f) => Value::Float(f),
        M::Double(d) => Value::Double(d),
        M::Date(y, mo, d, h, mi, s, us) => match ty {
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
                Value::Text(format!("{y:04}-{mo:02}-{d:02}"))
            }
            // The zero TIMESTAMP is no instant: written as the stream writes it.
            ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2
                if (y, mo, d, h, mi, s, us) == (0, 0, 0, 0, 0, 0, 0) =>
            {
                Value::Text(format!("0000-00-00 00:00:00{}", fraction(0, c.decimals())))
            }
            ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
                Value::Text(format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z",
                    fraction(us, c.decimals())
                ))
            }
            _ => Value::Text(format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}",
                fraction(us, c.decimals())
            )),
        },
        M::Time(neg, days, h, mi, s, us) => Value::Text(format!(
            "{}{:02}:{mi:02}:{s:02}{}",
            if neg { "-" } else { "" },
            u32::from(h) + days * 24,
            fraction(us, c.decimals())
        )),
        M::Bytes(b) => match ty {
            // MySQL's JSON type (MariaDB's JSON is LONGTEXT, text in the binlog too).
            ColumnType::MYSQL_TYPE_JSON => match serde_json::from_slice(&b) {
                Ok(doc) => Value::Json(doc),
                Err(_) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
            },
            ColumnType::MYSQL_TYPE_BIT => {
                Value::UInt(b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
            }
            ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_GEOMETRY
                if c.character_set() == 63
                    && !c
                        .flags()
                        .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG) =>
            {
                Value::Bytes(b)
            }
            _ => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        },
    }
}

/// Starts and cancels backfills while the daemon runs: `backfill: initial` at start,
/// then what `pikachu backfill` asks through `control`.
pub struct Controller {
    config: Arc<Config>,
    handoff: Arc<Handoff>,
    stop: Arc<Signal>,
    resume: Resume,
    cancels: parking_lot::Mutex<std::collections::HashMap<usize, Arc<Signal>>>,
}

impl Controller {
    pub fn new(
        config: Arc<Config>,
        handoff: Arc<Handoff>,
        stop: Arc<Signal>,
        resume: Resume,
    ) -> Self {
        Controller {
            config,
            handoff,
            stop,
            resume,
            cancels: Default::default(),
        }
    }

    /// Starts the backfill of `task` from its saved progress.
    pub fn start(&self, task: usize) -> std::io::Result<()> {
        let cancel = Arc::new(Signal::new());
        self.cancels.lock().insert(task, cancel.clone());
        let resume = Resume {
            cancel,
            ..self.resume.clone()
        };
        spawn(
            self.config.clone(),
            task,
            self.handoff.clone(),
            self.stop.clone(),
            resume,
        )
        .map(drop)
    }

    fn running(&self, task: usize) -> bool {
        self.resume
            .stats
            .task(task)
            .is_some_and(|c| c.running.load(Relaxed))
    }

    /// Acts on one request from `pikachu backfill`.
    pub fn handle(&self, request: control::Request) {
        let Some(task) = self
            .config
            .tasks
            .iter()
            .position(|t| t.task_id == request.task)
        else {
            log::warn!(
                "backfill request for an unknown task {:?} ignored",
                request.task
            );
            return;
        };
        if request.cancel {
            match self.cancels.lock().get(&task) {
                Some(c) if self.running(task) => {
                    log::info!("task {}: backfill cancel requested", request.task);
                    c.raise();
                }
                _ => log::warn!("task {}: no backfill running to cancel", request.task),
            }
            return;
        }
        if self.config.tasks[task].values == crate::config::ValueMode::Go {
            log::error!(
                "task {}: backfill refused: the task has `values: go`, and a backfill's rows \
                 (read with a SELECT) cannot take the Go tool's value shapes; move the task \
                 to `values: default` first",
                request.task
            );
            return;
        }
        if self.running(task) {
            log::warn!(
                "task {}: a backfill is already running; cancel it first (`pikachu backfill \
                 --cancel --task {}`)",
                request.task,
                request.task
            );
            return;
        }
        let fresh = BackfillProgress {
            condition: request.condition.clone(),
            ..BackfillProgress::default()
        };
        self.resume.tracker.set_backfill(&request.task, fresh);
        log::info!(
            "task {}: backfill requested{}",
            request.task,
            request
                .condition
                .as_ref()
                .map(|c| format!(" where {c}"))
                .unwrap_or_default()
        );
        if let Err(e) = self.start(task) {
            log::error!(
                "task {}: cannot start the backfill thread: {e}",
                request.task
            );
        }
    }

    /// What `pikachu backfill --status` prints: per task with a backfill, this run's
    /// figures and the saved progress.
    fn status(&self) -> serde_json::Value {
        let tasks: Vec<serde_json::Value> = self
            .config
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let saved = self.resume.tracker.backfill(&t.task_id);
                let live = self.resume.stats.data(i, &t.task_id);
                if saved.is_none() && live.is_none() {
                    return None;
                }
                let live = live.unwrap_or_default();
                Some(serde_json::json!({
                    "task_id": t.task_id,
                    "status": match &saved {
                        _ if live.running => "running",
                        Some(p) if p.cancelled => "cancelled",
                        Some(p) if p.done => "done",
                        _ => "stopped",
                    },
                    "where": saved.as_ref().and_then(|p| p.condition.clone()),
                    "rows_confirmed": saved.as_ref().map_or(0, |p| p.rows),
                    "rows_read": live.rows_read,
                    "rows_estimated": live.rows_estimated,
                    "rows_per_second": live.rows_per_second.round(),
                    "eta_seconds": live.eta_seconds.round(),
                    "failures": live.failures,
                }))
            })
            .collect();
        serde_json::json!({ "backfills": tasks })
    }

    fn any_backfill(&self) -> bool {
        self.resume.tracker.any_backfill()
            || (0..self.config.tasks.len()).any(|i| self.resume.stats.started(i))
    }

    /// Polls for requests until shutdown, and keeps the status file current.
    pub fn serve(self: Arc<Self>) {
        let requests = control::requests_dir(&self.config.data_dir);
        let status_path = control::status_path(&self.config.data_dir);
        let spawned = std::thread::Builder::new()
            .name("backfill-control".into())
            .spawn(move || {
                let mut last = serde_json::Value::Null;
                loop {
                    for r in control::take(&requests) {
                        self.handle(r);
                    }
                    // Idle (no backfill ever): nothing to build, so the thread stays
                    // without a heap of its own.
                    let now = if self.any_backfill() {
                        self.status()
                    } else {
                        serde_json::Value::Null
                    };
                    if now != last {
                        let text = serde_json::to_vec_pretty(&now).unwrap_or_default();
                        if let Err((path, e)) = crate::fsutil::replace_file(&status_path, &text) {
                            log::warn!("cannot write {}: {e}", path.display());
                        }
                        last = now;
                    }
                    if !self.stop.sleep(std::time::Duration::from_millis(500)) {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the backfill control thread: {e}; `pikachu backfill` will not be heard");
        }
    }
}

/// Starts the backfills due when the daemon starts (`backfill: initial` on a
/// `first_start` without a checkpoint or for a task the checkpoint has no backfill of,
/// and any backfill a restart or a takeover interrupted) and the thread that serves
/// `pikachu backfill`. `tracker` holds the progress the checkpoint was loaded with.
pub fn start(
    config: Arc<Config>,
    handoff: Arc<Handoff>,
    stop: Arc<Signal>,
    tracker: Arc<Tracker>,
    stats: Arc<BackfillStats>,
    first_start: bool,
) -> Result<(), String> {
    let resume = Resume {
        tracker: tracker.clone(),
        stats,
        cancel: Arc::new(Signal::new()),
    };
    let controller = Arc::new(Controller::new(config.clone(), handoff, stop, resume));
    for (i, t) in config.tasks.iter().enumerate() {
        let saved = tracker.backfill(&t.task_id);
        let run = match saved {
            // A `backfill: initial` task begins its backfill when the daemon starts
            // without a checkpoint, or when the task is new (no progress yet).
            _ if t.backfill_initial && (first_start || saved.is_none()) => {
                tracker.set_backfill(&t.task_id, BackfillProgress::default());
                true
            }
            // Initial or on demand, a backfill goes on until it finished.
            Some(p) => !p.done,
            None => false,
        };
        if run {
            controller
                .start(i)
                .map_err(|e| format!("cannot start the backfill thread: {e}"))?;
        }
    }
    // Requests left while the daemon was down are for the daemon that runs now.
    controller.serve();
    Ok(())
}
