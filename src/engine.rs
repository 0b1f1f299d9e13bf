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

use crate::checkpoint::{self, Checkpoint, CheckpointError, FileStore, Store, Tracker};
use crate::config::{CheckpointStore, Config, DbTlsMode, StartFrom};
use crate::deadletter::{self, DeadLetters};
use crate::dispatch::{self, DispatchContext, DispatchError, Dispatcher};
use crate::event::BinlogPosition;
use crate::exit::Exit;
use crate::shutdown::{Fence, Signal};
use crate::sink::SinkClosed;
use crate::source::connect::{Connector, TlsSession};
use crate::source::files::FilePlan;
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
    #[error(transparent)]
    Ha(#[from] crate::ha::HaError),
    /// A task names columns its table does not have (a configuration error found
    /// against the live table).
    #[error("the configuration names columns the tables do not have: {0}")]
    TaskColumns(String),
}

impl EngineError {
    /// The exit status this failure ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            EngineError::Preflight(_) => Exit::Database,
            EngineError::TaskColumns(_) => Exit::Config,
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
        StartFrom::Gtid(state) => format!("GTID state {state}"),
        StartFrom::GtidSet(set) => format!("GTID set {set}"),
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

/// Connects and refuses servers pikachu cannot read.
/// Also says which of `database.hosts` took the connection (`host:port as `user``).
fn preflight(cfg: &Config) -> Result<(mysql::Conn, ServerInfo, String), PreflightError> {
    let connector = Connector::new(&cfg.database, None);
    let (mut conn, address) = connector.connect_to()?;
    let address = address.to_owned();
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
    Ok((conn, info, address))
}

/// What lives as long as the process: the stats the health server reads, and the stop
/// that SIGINT/SIGTERM raise.
struct Process {
    stats: Arc<Stats>,
    stop: Arc<Signal>,
}

impl Process {
    fn start(cfg: &Config) -> Result<Process, EngineError> {
        let queue_capacity = cfg.dispatcher.queue_size.max(cfg.dispatcher.worker_count);
        let stats = Arc::new(Stats::new(
            cfg.tasks.iter().map(|t| t.task_id.clone()),
            queue_capacity,
        ));
        let stop = Arc::new(Signal::new());
        install_signal_handler(stop.clone());
        if cfg.server.enabled {
            let metrics: Arc<dyn Metrics> = stats.clone();
            let addr = std::net::SocketAddr::new(cfg.server.bind, cfg.server.port);
            crate::http::spawn(addr, &cfg.server.path, metrics).map_err(EngineError::Http)?;
            log::info!("health on http://{addr}{} and /metrics", cfg.server.path);
        }
        Ok(Process { stats, stop })
    }
}

/// The checkpoint store of `checkpoint.store`; the row of a group is named after it.
fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, EngineError> {
    Ok(match &cfg.checkpoint {
        CheckpointStore::File => Arc::new(FileStore(cfg.data_dir.clone())),
        CheckpointStore::Mysql { schema, table } => {
            let key = crate::ha::checkpoint_key(cfg.ha.group.as_deref());
            Arc::new(
                crate::ha::MysqlStore::open(&cfg.database, schema, table, key)
                    .map_err(EngineError::Checkpoint)?,
            )
        }
    })
}

/// Runs the daemon until SIGINT/SIGTERM (Ok) or a fatal error. With `ha.group`, it
/// waits as a standby until it holds the group's lease, delivers while it holds it,
/// and stands by again when it loses it.
pub fn run(cfg: Config) -> Result<(), EngineError> {
    let cfg = Arc::new(cfg);
    let process = Process::start(&cfg)?;
    let store = open_store(&cfg)?;
    let Some(group) = cfg.ha.group.clone() else {
        return term(&cfg, &process, store, None);
    };
    let lease_timeout = cfg.ha.lease_timeout;
    loop {
        process.stats.ha.standby();
        log::info!(
            "standby in group {group}: waiting for the lease {} (lease timeout {:.0}s)",
            crate::ha::lock_name(&group),
            lease_timeout.as_secs_f64()
        );
        let waited = crate::ha::acquire(
            &cfg.database,
            &group,
            lease_timeout,
            &process.stop,
            &process.stats.ha,
        )
        .map_err(EngineError::Ha)?;
        let lease = match waited {
            crate::ha::Waited::Got(lease) => lease,
            crate::ha::Waited::Stopped => {
                log::info!("stopped while standing by");
                return Ok(());
            }
        };
        process.stats.ha.active();
        log::info!(
            "took over as the active instance of group {group}; the checkpoint is in {}",
            store.describe()
        );
        let held = Held {
            lost: Arc::new(Signal::new()),
            validity: Arc::new(Fence::new(crate::ha::fence_age(lease_timeout))),
        };
        let done = Arc::new(Signal::new());
        let keeper = lease
            .keep(
                lease_timeout,
                held.validity.clone(),
                held.lost.clone(),
                done.clone(),
                process.stats.ha.clone(),
            )
            .map_err(|e| EngineError::DataDir(format!("cannot start the lease thread: {e}")))?;
        let lost = held.lost.clone();
        let result = term(&cfg, &process, store.clone(), Some(held));
        done.raise();
        join(keeper);
        if lost.is_raised() && !process.stop.is_raised() {
            log::warn!("the lease of group {group} was lost: standing by again");
            continue;
        }
        // The database went away between taking the lease and reading: another
        // instance may reach it, so stand by again rather than end the process.
        if let Err(EngineError::Preflight(PreflightError::Connect(e))) = &result {
            if !process.stop.is_raised() {
                log::warn!("{e}; standing by again");
                process.stop.sleep(Duration::from_secs(1));
                continue;
            }
        }
        return result;
    }
}

/// The lease a term runs under: `lost` is raised when it is gone (the term then ends at
/// once, giving up in-flight deliveries: whoever goes on sends them again), and
/// `validity` stops requests as soon as the lease may be gone.
struct Held {
    lost: Arc<Signal>,
    validity: Arc<Fence>,
}

/// One term of delivery (the whole run without `ha`): preflight, the start position,
/// the pipeline.
fn term(
    cfg: &Arc<Config>,
    process: &Process,
    store: Arc<dyn Store>,
    held: Option<Held>,
) -> Result<(), EngineError> {
    let (mut conn, info, address) = preflight(cfg).map_err(EngineError::Preflight)?;
    let tls = TlsSession::read(&mut conn).map_err(|error| {
        EngineError::Preflight(PreflightError::Query {
            what: "the session's TLS status",
            error,
        })
    })?;
    log::info!(
        "connected to {} at {address} (server_id {}; TLS: {}, database.tls: {}; binlog_format \
         {}, binlog_row_image {}, binlog_row_metadata {})",
        info.version,
        info.server_id,
        tls.describe(),
        cfg.database.tls.mode.as_str(),
        info.binlog_format,
        info.binlog_row_image,
        info.binlog_row_metadata.as_deref().unwrap_or("n/a")
    );
    if tls.version.is_none() && cfg.database.tls.mode != DbTlsMode::Disabled {
        log::warn!(
            "the connection to the database is not encrypted: the server offers no TLS, so \
             the password and every row cross the network in clear; enable TLS on the server \
             (ssl_cert, ssl_key), then set database.tls: verify_identity and database.ca_file"
        );
    } else if tls.version.is_some() && !cfg.database.tls.mode.verifies() {
        log::info!(
            "the database's certificate is not verified (database.tls: {}); set database.tls: \
             verify_identity and database.ca_file to be sure who you are talking to",
            cfg.database.tls.mode.as_str()
        );
    }
    let unknown = preflight::unknown_task_columns(&mut conn, &cfg.tasks)?;
    if !unknown.is_empty() {
        return Err(EngineError::TaskColumns(unknown.join("; ")));
    }
    let _lock = match &held {
        // Instances of a group on one host may share data_dir: the one that just lost
        // the lease lets go of it once it has stopped (a frozen one when it wakes).
        Some(held) => wait_for_data_dir(&cfg.data_dir, &process.stop, &held.lost)?,
        None => lock_data_dir(&cfg.data_dir)?,
    };
    warn_if_exposed(&cfg.data_dir);
    let saved = store.load().map_err(EngineError::Checkpoint)?;
    let resolved =
        preflight::resolve_start(&mut conn, saved.as_ref(), &cfg.start_from, info.server_id);
    let (mut start, source) = match (resolved, &saved, &cfg.binlog_archive) {
        (Ok(start), _, _) => (start, Source::Live),
        // Purged on the server: the archive may hold what the server no longer has.
        (Err(PreflightError::PositionGone(_)), Some(saved), Some(dir)) => {
            let plan = preflight::archive_plan(&mut conn, dir, saved)?;
            log::info!(
                "the checkpoint position {}:{} was purged from the server; reading {} \
                 archived file(s) from {} first ({} … {}), then going on live",
                saved.file,
                saved.pos,
                plan.files.len(),
                dir.display(),
                plan.files
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                plan.files
                    .last()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            (saved.clone(), Source::ArchiveThenLive(plan))
        }
        (Err(e), _, _) => return Err(EngineError::Preflight(e)),
    };
    drop(conn);
    // Backfills go on from the checkpoint, whichever way its position was resolved (a
    // GTID failover included).
    start.backfills = saved
        .as_ref()
        .map(|s| s.backfills.clone())
        .unwrap_or_default();
    match &saved {
        Some(_) => log::info!(
            "resuming from the checkpoint at {}:{}",
            start.file,
            start.pos
        ),
        None => {
            log::info!(
                "no checkpoint in {}: starting at {}:{} (start_from: {})",
                store.describe(),
                start.file,
                start.pos,
                describe_start(&cfg.start_from)
            );
            // Saved at once, so that a crash before the first flush resumes here and
            // not at a later `latest`.
            store.save(&start).map_err(EngineError::Checkpoint)?;
        }
    }
    let first_start = saved.is_none();
    deliver(
        cfg.clone(),
        process,
        store,
        start,
        source,
        held,
        first_start,
    )
}

/// Where the changes come from.
enum Source {
    /// The server's binlog, until a signal or a fatal error.
    Live,
    /// Binlog files, to their end (`replay-binlog`).
    Files(FilePlan),
    /// Archived binlog files (`binlog_archive`), then the server's binlog from where
    /// they end.
    ArchiveThenLive(FilePlan),
}

/// The pipeline from `start`: the reader thread on `source`, the dispatcher, the
/// checkpoint flusher, the backfills (`first_start`: no checkpoint was found) and the
/// health server, until the source ends (files), a signal or
/// a fatal error; then the deliveries are finished and the checkpoint saved.
fn deliver(
    cfg: Arc<Config>,
    process: &Process,
    store: Arc<dyn Store>,
    start: Checkpoint,
    source: Source,
    held: Option<Held>,
    first_start: bool,
) -> Result<(), EngineError> {
    let stats = process.stats.clone();
    let tracker = Arc::new(Tracker::new(start.clone()));
    let dead_letters = Arc::new(DeadLetters::open(&cfg.data_dir).map_err(|e| {
        EngineError::DataDir(format!(
            "cannot open the dead-letter file in {}: {e}",
            cfg.data_dir.display()
        ))
    })?);
    // This term's stop: the process's, or a lost lease (which also gives up in-flight
    // deliveries at once: another instance delivers them).
    let stop = Arc::new(Signal::new());
    let abort = Arc::new(Signal::new());
    let term_over = Arc::new(Signal::new());
    let (lost, fence) = match held {
        Some(Held { lost, validity }) => (Some(lost), Some(validity)),
        None => (None, None),
    };
    spawn_term_watch(
        process.stop.clone(),
        lost,
        stop.clone(),
        abort.clone(),
        term_over.clone(),
    );
    spawn_deadline(stop.clone(), abort.clone(), cfg.dispatcher.shutdown_timeout);
    let dispatcher = Dispatcher::start(DispatchContext {
        config: cfg.clone(),
        tracker: tracker.clone(),
        stats: stats.dispatch.clone(),
        dead_letters: dead_letters.clone(),
        abort: abort.clone(),
        fence: fence.clone(),
    })
    .map_err(EngineError::Dispatch)?;
    let flusher_stop = Arc::new(Signal::new());
    let flusher = checkpoint::spawn_flusher(
        tracker.clone(),
        store,
        fence.clone(),
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

    // Backfills feed the live stream only: a file replay (`replay-binlog`) runs none.
    let backfills = !matches!(source, Source::Files(_));
    let handoff = crate::handoff::Handoff::new();
    let reader = Reader::new(
        cfg.clone(),
        stats.source.clone(),
        dead_letters,
        stop.clone(),
        start,
    )
    .with_handoff(handoff.clone());
    if backfills {
        crate::backfill::start(
            cfg.clone(),
            handoff.clone(),
            stop.clone(),
            tracker.clone(),
            stats.backfill.clone(),
            first_start,
        )
        .map_err(EngineError::DataDir)?;
    }
    let reader_thread = std::thread::Builder::new()
        .name("binlog-reader".into())
        .spawn(move || {
            let result = match &source {
                Source::Live => reader.run(&dispatcher),
                Source::Files(plan) => reader.run_files(plan, &dispatcher),
                Source::ArchiveThenLive(plan) => reader.run_archive_then_live(plan, &dispatcher),
            };
            let files = matches!(source, Source::Files(_));
            (result, dispatcher, files)
        })
        .map_err(|e| EngineError::DataDir(format!("cannot start the reader thread: {e}")))?;
    let (result, dispatcher, files) = join(reader_thread);
    // Raised already when a signal (not a fatal error) ended reading.
    let signalled = stop.is_raised();
    // Nothing more will be read: let the deadline run from here if a fatal error, not a
    // signal, ended reading. Files read to their end are not a shutdown: their
    // deliveries finish with every retry they need (a signal still stops them).
    if !(files && result.is_ok()) {
        stop.raise();
    }
    let outstanding = tracker.outstanding();
    if outstanding > 0 && stop.is_raised() {
        log::info!(
            "reading stopped; finishing {outstanding} queued deliveries (deadline {:.1}s)",
            cfg.dispatcher.shutdown_timeout.as_secs_f64()
        );
    } else if outstanding > 0 {
        log::info!("the files are read; waiting for {outstanding} queued deliveries");
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
    term_over.raise();
    if files && left > 0 && result.is_ok() {
        return Err(EngineError::Replay(format!(
            "stopped before every change of the files was delivered; the checkpoint is at \
             {}:{}, so running the same command again continues from there",
            safe.file, safe.pos
        )));
    }
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

/// Ends a term: the process's stop raises the term's `stop`; a lost lease (`fence`)
/// raises `stop` and `abort` at once. Returns when `over` is raised.
fn spawn_term_watch(
    process_stop: Arc<Signal>,
    fence: Option<Arc<Signal>>,
    stop: Arc<Signal>,
    abort: Arc<Signal>,
    over: Arc<Signal>,
) {
    let term_stop = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("term-watch".into())
        .spawn(move || {
            let stop = term_stop;
            while over.sleep(Duration::from_millis(50)) {
                if process_stop.is_raised() {
                    stop.raise();
                }
                if fence.as_ref().is_some_and(|f| f.is_raised()) {
                    abort.raise();
                    stop.raise();
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the stop watch thread: {e}");
        // Without it a signal would not reach this term: stop it now rather than never.
        stop.raise();
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
/// `lock_data_dir`, waiting while another process holds it (until `stop` or `lost`).
fn wait_for_data_dir(
    dir: &std::path::Path,
    stop: &Signal,
    lost: &Signal,
) -> Result<std::fs::File, EngineError> {
    let mut said = false;
    loop {
        match lock_data_dir(dir) {
            Err(EngineError::DataDir(why)) if why.contains("another pikachu process") => {
                if !said {
                    log::warn!("{why}; waiting for it (the previous active instance?)");
                    said = true;
                }
                if stop.is_raised() || lost.is_raised() || !stop.sleep(Duration::from_millis(200)) {
                    return Err(EngineError::DataDir(why));
                }
            }
            other => return other,
        }
    }
}

fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, EngineError> {
    crate::fsutil::create_private_dir(dir).map_err(|e| {
        EngineError::DataDir(format!("cannot create data_dir {}: {e}", dir.display()))
    })?;
    let path = checkpoint::lock_path(dir);
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

/// `replay-binlog`: delivers the changes in binlog files as the daemon delivers live
/// ones, and saves the checkpoint as it goes, so that the daemon started afterwards
/// goes on where the files end.
///
/// Without `--from` it starts at the checkpoint when the checkpoint names one of the
/// files (a run that was interrupted goes on without sending anything twice), else at
/// the start of the first file.
pub fn replay_binlog(cfg: Config, mut plan: FilePlan) -> Result<(), EngineError> {
    let cfg = Arc::new(cfg);
    let _lock = lock_data_dir(&cfg.data_dir)?;
    warn_if_exposed(&cfg.data_dir);
    let store = open_store(&cfg)?;
    let saved = store.load().map_err(EngineError::Checkpoint)?;
    let first = plan
        .files
        .first()
        .map(|p| crate::source::files::file_name(p))
        .ok_or_else(|| EngineError::Replay("no binlog file given".into()))?;
    if plan.from.is_none() {
        if let Some(saved) = saved.as_ref().filter(|c| {
            plan.files
                .iter()
                .any(|p| crate::source::files::file_name(p) == c.file)
        }) {
            log::info!(
                "the checkpoint at {}:{} is in these files: going on from there",
                saved.file,
                saved.pos
            );
            plan.from = Some(saved.position());
        }
    }
    let from = plan
        .from
        .clone()
        .unwrap_or_else(|| BinlogPosition::new(first, 4));
    // The saved GTID set describes the saved position only.
    let set_here = saved
        .as_ref()
        .filter(|c| c.position() == from)
        .and_then(|c| c.gtid_set.clone());
    let start = Checkpoint {
        file: from.file.clone(),
        pos: from.pos,
        gtid: saved.as_ref().and_then(|c| c.gtid.clone()),
        // The files' server is not known: taken as the one the daemon reads later.
        server_id: None,
        gtid_set: set_here,
        // Kept for the daemon: a replay runs no backfill.
        backfills: saved.map(|c| c.backfills).unwrap_or_default(),
    };
    log::info!(
        "replaying {} binlog file(s) from {}:{}{}",
        plan.files.len(),
        from.file,
        from.pos,
        plan.to
            .as_ref()
            .map(|to| format!(" to {}:{}", to.file, to.pos))
            .unwrap_or_default()
    );
    store.save(&start).map_err(EngineError::Checkpoint)?;
    let process = Process::start(&cfg)?;
    deliver(
        cfg,
        &process,
        store,
        start,
        Source::Files(plan),
        None,
        false,
    )
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
    let files = checkpoint::private_paths(data_dir);
    for warning in files.iter().filter_map(|p| crate::fsutil::exposed(p)) {
        log::warn!("{warning}");
    }
}
