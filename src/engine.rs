//! The engine: starts the parts in order (checks, checkpoint, workers, HTTP server,
//! flusher, reader), stops them in reverse on a signal or a fatal error, and maps
//! failures to `Exit` statuses. Also the one-shot command `replay-dead-letters`
//! (`check` lives in `crate::check`, which the engine does not use). It holds no
//! pipeline logic of its own: it wires the reader to the dispatcher as its `Sink`, and
//! hands each stage its own part of `Stats`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checkpoint::{self, CheckpointError, Tracker};
use crate::config::{Config, StartFrom};
use crate::deadletter::{self, DeadLetters};
use crate::dispatch::{self, DispatchContext, DispatchError, Dispatcher};
use crate::exit::Exit;
use crate::shutdown::Signal;
use crate::sink::SinkClosed;
use crate::source::mysql_opts;
use crate::source::preflight::{self, PreflightError, ServerInfo};
use crate::source::reader::{Reader, ReaderError};
use crate::stats::{Metrics, Stats};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The data directory (or a thread working in it) cannot be used; the message
    /// names the path.
    #[error("{0}")]
    DataDir(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot start the delivery workers: {0}")]
    Dispatch(#[source] DispatchError),
    #[error("cannot start the health server: {0}")]
    Http(#[source] io::Error),
    #[error("binlog reading stopped: {0}")]
    Reader(#[source] ReaderError),
    #[error("{0}")]
    Replay(String),
}

impl EngineError {
    /// The exit status this failure ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            EngineError::Preflight(_) => Exit::Database,
            EngineError::Reader(ReaderError::PositionGone(_) | ReaderError::Unsupported(_)) => {
                Exit::Database
            }
            _ => Exit::Runtime,
        }
    }
}

/// `start_from` as the configuration spells it.
fn describe_start(s: &StartFrom) -> String {
    match s {
        StartFrom::Latest => "latest".to_owned(),
        StartFrom::Earliest => "earliest".to_owned(),
        StartFrom::Position { file, pos } => format!("{file}:{pos}"),
    }
}

/// Waits for a thread of ours and returns what it returned.
///
/// A join fails only when the thread panicked. A panic is a bug and aborts the whole
/// process (`panic = "abort"` in every profile, after main.rs's hook logged it), so
/// there is no such outcome to handle here; under the test harness, which unwinds, the
/// panic is passed on to fail the test rather than turned into an invented error.
fn join<T>(handle: JoinHandle<T>) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn connect(cfg: &Config) -> Result<mysql::Conn, PreflightError> {
    mysql::Conn::new(mysql_opts(&cfg.database, None)).map_err(|error| PreflightError::Connect {
        address: format!(
            "{}:{} as `{}`",
            cfg.database.host, cfg.database.port, cfg.database.user
        ),
        error,
    })
}

/// Connects and refuses servers pikachu cannot read.
fn preflight(cfg: &Config) -> Result<(mysql::Conn, ServerInfo), PreflightError> {
    let mut conn = connect(cfg)?;
    let info = ServerInfo::read(&mut conn)?;
    let problems = info.blocking_problems();
    if !problems.is_empty() {
        return Err(PreflightError::Setting(format!(
            "the server cannot be read: {}",
            problems.join("; ")
        )));
    }
    for w in info.warnings() {
        log::warn!("{w}");
    }
    Ok((conn, info))
}

/// Runs the daemon until SIGINT/SIGTERM (Ok) or a fatal error.
pub fn run(cfg: Config) -> Result<(), EngineError> {
    let cfg = Arc::new(cfg);
    let (mut conn, info) = preflight(&cfg).map_err(EngineError::Preflight)?;
    log::info!(
        "connected to {} at {}:{} (binlog_format {}, binlog_row_image {}, binlog_row_metadata {})",
        info.version,
        cfg.database.host,
        cfg.database.port,
        info.binlog_format,
        info.binlog_row_image,
        info.binlog_row_metadata.as_deref().unwrap_or("n/a")
    );
    let _lock = lock_data_dir(&cfg.data_dir)?;
    warn_if_exposed(&cfg.data_dir);
    let saved = checkpoint::load(&cfg.data_dir).map_err(EngineError::Checkpoint)?;
    let start = preflight::resolve_start(&mut conn, saved.as_ref(), &cfg.start_from)
        .map_err(EngineError::Preflight)?;
    drop(conn);
    match &saved {
        Some(_) => log::info!(
            "resuming from the checkpoint at {}:{}",
            start.file,
            start.pos
        ),
        None => {
            log::info!(
                "no checkpoint in {}: starting at {}:{} (start_from: {})",
                cfg.data_dir.display(),
                start.file,
                start.pos,
                describe_start(&cfg.start_from)
            );
            // Saved at once, so that a crash before the first flush resumes here and
            // not at a later `latest`.
            checkpoint::save(&cfg.data_dir, &start).map_err(EngineError::Checkpoint)?;
        }
    }

    let queue_capacity = cfg.dispatcher.queue_size.max(cfg.dispatcher.worker_count);
    let stats = Arc::new(Stats::new(
        cfg.tasks.iter().map(|t| t.task_id.clone()),
        queue_capacity,
    ));
    let tracker = Arc::new(Tracker::new(start.clone()));
    let dead_letters = Arc::new(DeadLetters::open(&cfg.data_dir).map_err(|e| {
        EngineError::DataDir(format!(
            "cannot open the dead-letter file in {}: {e}",
            cfg.data_dir.display()
        ))
    })?);
    let stop = Arc::new(Signal::new());
    let abort = Arc::new(Signal::new());
    install_signal_handler(stop.clone());
    spawn_deadline(stop.clone(), abort.clone(), cfg.dispatcher.shutdown_timeout);

    if cfg.server.enabled {
        let metrics: Arc<dyn Metrics> = stats.clone();
        let addr = std::net::SocketAddr::new(cfg.server.bind, cfg.server.port);
        crate::http::spawn(addr, &cfg.server.path, metrics).map_err(EngineError::Http)?;
        log::info!("health on http://{addr}{} and /metrics", cfg.server.path);
    }
    let dispatcher = Dispatcher::start(DispatchContext {
        config: cfg.clone(),
        tracker: tracker.clone(),
        stats: stats.dispatch.clone(),
        dead_letters: dead_letters.clone(),
        abort: abort.clone(),
    })
    .map_err(EngineError::Dispatch)?;
    let flusher_stop = Arc::new(Signal::new());
    let flusher = checkpoint::spawn_flusher(
        tracker.clone(),
        cfg.data_dir.clone(),
        cfg.monitor.flush_interval,
        stats.checkpoint.clone(),
        flusher_stop.clone(),
    )
    .map_err(|e| EngineError::DataDir(format!("cannot start the checkpoint thread: {e}")))?;
    log::info!(
        "pikachu {} started with {} tasks",
        env!("CARGO_PKG_VERSION"),
        cfg.tasks.len()
    );

    let handoff = crate::handoff::Handoff::new();
    let reader = Reader::new(
        cfg.clone(),
        stats.source.clone(),
        dead_letters,
        stop.clone(),
        start,
    )
    .with_handoff(handoff.clone());
    // `backfill: initial` starts when the task starts without a checkpoint, and goes
    // on after a restart until its progress says it finished.
    let progress = Arc::new(crate::backfill::progress::ProgressFile::open(&cfg.data_dir));
    let safe_tracker = tracker.clone();
    let resume = crate::backfill::Resume {
        progress: progress.clone(),
        safe_point: Arc::new(move || safe_tracker.safe_point().position()),
        stats: stats.backfill.clone(),
        cancel: Arc::new(Signal::new()),
    };
    let controller = Arc::new(crate::backfill::Controller::new(
        cfg.clone(),
        handoff.clone(),
        stop.clone(),
        resume.clone(),
    ));
    for (i, t) in cfg.tasks.iter().enumerate() {
        if !t.backfill_initial {
            continue;
        }
        let run = match (progress.get(&t.task_id), &saved) {
            (_, None) => {
                let fresh = crate::backfill::progress::TaskProgress::default();
                progress
                    .set(&t.task_id, fresh)
                    .map_err(|e| EngineError::DataDir(e.to_string()))?;
                true
            }
            (Some(p), Some(_)) => !p.done,
            (None, Some(_)) => false,
        };
        if run {
            controller.start(i).map_err(|e| {
                EngineError::DataDir(format!("cannot start the backfill thread: {e}"))
            })?;
        }
    }
    // Requests left while the daemon was down are for the daemon that runs now.
    let status_stats = stats.clone();
    let status_progress = progress.clone();
    let task_ids: Vec<String> = cfg.tasks.iter().map(|t| t.task_id.clone()).collect();
    controller.serve(Arc::new(move || {
        use crate::stats::Metrics as _;
        let running = status_stats.snapshot().backfills;
        let tasks: Vec<serde_json::Value> = task_ids
            .iter()
            .filter_map(|id| {
                let saved = status_progress.get(id);
                let live = running.iter().find(|b| &b.task_id == id);
                if saved.is_none() && live.is_none() {
                    return None;
                }
                Some(serde_json::json!({
                    "task_id": id,
                    "status": match (live.is_some_and(|b| b.running), &saved) {
                        (true, _) => "running",
                        (false, Some(p)) if p.cancelled => "cancelled",
                        (false, Some(p)) if p.done => "done",
                        _ => "stopped",
                    },
                    "where": saved.as_ref().and_then(|p| p.condition.clone()),
                    "rows_confirmed": saved.as_ref().map_or(0, |p| p.rows),
                    "rows_read": live.map_or(0, |b| b.rows_read),
                    "rows_estimated": live.map_or(0, |b| b.rows_estimated),
                    "rows_per_second": live.map_or(0.0, |b| b.rows_per_second.round()),
                    "eta_seconds": live.map_or(0.0, |b| b.eta_seconds.round()),
                    "failures": live.map_or(0, |b| b.failures),
                }))
            })
            .collect();
        serde_json::json!({ "backfills": tasks })
    }));
    let reader_thread = std::thread::Builder::new()
        .name("binlog-reader".into())
        .spawn(move || {
            let result = reader.run(&dispatcher);
            (result, dispatcher)
        })
        .map_err(|e| EngineError::DataDir(format!("cannot start the reader thread: {e}")))?;
    let (result, dispatcher) = join(reader_thread);
    // Raised already when a signal (not a fatal error) ended reading.
    let signalled = stop.is_raised();
    // Nothing more will be read: let the deadline run from here if a fatal error, not a
    // signal, ended reading.
    stop.raise();
    let outstanding = tracker.outstanding();
    if outstanding > 0 {
        log::info!(
            "reading stopped; finishing {outstanding} queued deliveries (deadline {:.1}s)",
            cfg.dispatcher.shutdown_timeout.as_secs_f64()
        );
    }
    dispatcher.finish();
    flusher_stop.raise();
    join(flusher);
    let safe = tracker.safe_point();
    let left = tracker.outstanding();
    if left > 0 {
        log::warn!(
            "{left} deliveries were not finished before the deadline; they are sent again \
             after a restart (checkpoint {}:{})",
            safe.file,
            safe.pos
        );
    }
    log::info!("stopped; checkpoint at {}:{}", safe.file, safe.pos);
    match result {
        // The shutdown deadline passed while the reader waited for a full queue: the
        // deliveries it could not hand over were given up on purpose, and the
        // checkpoint stops before them. A signal asked for this stop: it is clean.
        Err(ReaderError::SinkClosed(SinkClosed)) if signalled => Ok(()),
        other => other.map_err(EngineError::Reader),
    }
}

/// First SIGINT/SIGTERM: stop reading at the next transaction boundary and drain.
/// Second: exit at once (the checkpoint file is only ever replaced atomically).
fn install_signal_handler(stop: Arc<Signal>) {
    let count = AtomicUsize::new(0);
    let result = ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            log::info!("signal received: stopping (a second signal exits at once)");
            stop.raise();
        } else {
            log::warn!(
                "second signal: exiting now; undelivered events are sent again after a restart"
            );
            std::process::exit(i32::from(Exit::SecondSignal.code()));
        }
    });
    if let Err(e) = result {
        log::warn!("cannot install the signal handler: {e}");
    }
}

/// Once `stop` is raised, gives the workers `timeout` to drain before raising `abort`.
fn spawn_deadline(stop: Arc<Signal>, abort: Arc<Signal>, timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-deadline".into())
        .spawn(move || {
            while stop.sleep(Duration::from_secs(3600)) {}
            if abort.sleep(timeout) {
                log::warn!(
                    "shutdown deadline of {:.1}s passed: giving up in-flight deliveries",
                    timeout.as_secs_f64()
                );
                abort.raise();
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the shutdown deadline thread: {e}");
    }
}

/// Takes the lock on `data_dir` for the life of the returned file: two daemons (or a
/// daemon and a replay) on one data directory would corrupt each other's checkpoint
/// and dead letters.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, EngineError> {
    crate::fsutil::create_private_dir(dir).map_err(|e| {
        EngineError::DataDir(format!("cannot create data_dir {}: {e}", dir.display()))
    })?;
    let path = dir.join("pikachu.lock");
    let file = crate::fsutil::private(&mut std::fs::OpenOptions::new())
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::DataDir(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::DataDir(format!(
            "another pikachu process is using data_dir {} (it holds {}); stop it first",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(EngineError::DataDir(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// `pikachu replay-dead-letters`: sends each dead-lettered request again; those that
/// succeed leave the file, the others stay (with their new status and error).
pub fn replay_dead_letters(cfg: &Config) -> Result<String, EngineError> {
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let path = deadletter::file_path(&cfg.data_dir);
    let letters = deadletter::read_all(&path).map_err(|e| EngineError::Replay(e.to_string()))?;
    if letters.is_empty() {
        return Ok(format!("no dead letters in {}", path.display()));
    }
    let total = letters.len();
    let mut kept = Vec::new();
    let mut delivered = 0usize;
    for letter in letters {
        // Row events that could not be decoded were never a request: they stay for a
        // person to look at.
        if letter.attempts == 0 {
            kept.push(letter);
            continue;
        }
        match dispatch::replay(cfg, &letter) {
            Ok(()) => delivered += 1,
            Err(updated) => kept.push(updated),
        }
    }
    deadletter::rewrite(&path, &kept).map_err(|e| EngineError::Replay(e.to_string()))?;
    Ok(format!(
        "replayed {total} dead letters from {}: {delivered} delivered, {} still failing (kept)",
        path.display(),
        kept.len()
    ))
}

/// Warns about a `data_dir` (or a file in it) that other users can read: one created by
/// an older pikachu or by hand keeps its mode, and dead letters hold whole rows.
fn warn_if_exposed(data_dir: &std::path::Path) {
    let files = [
        data_dir.to_path_buf(),
        checkpoint::file_path(data_dir),
        deadletter::file_path(data_dir),
        data_dir.join("pikachu.lock"),
    ];
    for warning in files.iter().filter_map(|p| crate::fsutil::exposed(p)) {
        log::warn!("{warning}");
    }
}
