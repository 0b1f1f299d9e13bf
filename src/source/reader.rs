//! The binlog reader thread: one blocking replication connection, registered with the
//! configured `server_id`, turning row events of watched tables into `RowChange`s for a
//! `Sink`.
//!
//! It owns the read position and `SourceStats`. It reconnects with backoff after any
//! error or silence (read timeout = a few heartbeat periods) and resumes at the last
//! transaction boundary it read, skipping the row events of a half-read transaction that
//! it had already handed over, so nothing is lost or handed over twice. A position
//! belongs to one server (`@@server_id`): on another one (a failover) it goes on after
//! the MariaDB GTID state instead. The same event handling reads binlog files from disk
//! (`run_files`, `run_archive_then_live`), at the files' own offsets. It tells the
//! sink where each transaction ends and stops only at a transaction boundary. It never
//! sends HTTP, never writes the checkpoint file, and does not know what is behind the
//! sink (tests drive it into a recording one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::binlog::events::{Event, EventData, RowsEventData};
use mysql::prelude::Queryable;
use mysql::BinlogRequest;
use mysql_common::packets::Sid;

use crate::checkpoint::{parse_mariadb_gtid_state, Checkpoint, GtidSet};
use crate::clock::{rfc3339_utc, unix_now};
use crate::config::{Config, ValueMode};
use crate::deadletter::{DeadLetter, DeadLetters};
use crate::event::{BinlogPosition, ChangeKind, GoRow, RowChange, TxnMeta};
use crate::handoff::Handoff;
use crate::shutdown::Signal;
use crate::sink::{Sink, SinkClosed};
use crate::source::connect::Connector;
use crate::source::decode::{
    decode_image, decode_image_go, decode_partial_after_image, decode_partial_after_image_go,
};
use crate::source::files::{file_name, FileError, FileEvents, FilePlan};
use crate::source::schema::{Mapped, SchemaCache, TableEntry};
use crate::source::{compressed, payload, preflight, schema};
use crate::stats::SourceStats;

/// Why the reader stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The server refused the position (purged log, or a position inside an event).
    #[error("{0}")]
    PositionGone(String),
    /// The stream carries something we cannot read; the message names the setting.
    #[error("{0}")]
    Unsupported(String),
    /// The sink is gone (shutdown deadline passed while the reader was blocked).
    #[error(transparent)]
    SinkClosed(#[from] SinkClosed),
    /// A binlog file cannot be read (further).
    #[error(transparent)]
    File(#[from] FileError),
}

/// How one streaming session ended.
enum SessionEnd {
    /// Stop was requested and the reader is at a transaction boundary.
    Stopped,
    /// Connection trouble: reconnect.
    Lost(String),
    Fatal(ReaderError),
}

impl From<ReaderError> for SessionEnd {
    fn from(e: ReaderError) -> Self {
        SessionEnd::Fatal(e)
    }
}

// MariaDB's own event types (the `mysql` crate returns `None` for them).
const MARIADB_ANNOTATE_ROWS: u8 = 160;
const MARIADB_GTID: u8 = 162;
const MARIADB_QUERY_COMPRESSED: u8 = 165;
const MARIADB_FIRST_COMPRESSED_ROWS: u8 = 166;
const MARIADB_LAST_COMPRESSED_ROWS: u8 = 171;
const MARIADB_GTID_FL_STANDALONE: u8 = 1;
const MYSQL_TRANSACTION_PAYLOAD: u8 = 40;

pub struct Reader {
    config: Arc<Config>,
    stats: Arc<SourceStats>,
    dead_letters: Arc<DeadLetters>,
    stop: Arc<Signal>,
    schema: SchemaCache,
    /// The last transaction boundary read: where a new session starts.
    resume: Checkpoint,
    /// Current file and the end position of the last event read.
    file: String,
    pos: u64,
    /// Inside a transaction (between GTID/BEGIN and XID/COMMIT).
    in_txn: bool,
    txn_gtid: Option<Arc<str>>,
    txn_timestamp: u32,
    /// Row events of the current transaction already queued, by start position: after a
    /// reconnect inside a transaction these are skipped instead of queued again.
    queued_in_txn: Option<BinlogPosition>,
    /// MySQL: the last transaction's GTID (`uuid[:tag]:n`).
    last_gtid: Option<String>,
    /// MariaDB: the GTID state, domain → (server id, sequence number) of the last
    /// transaction read in that domain.
    gtid_domains: std::collections::BTreeMap<u32, (u32, u64)>,
    /// The MariaDB GTID of the transaction being read, until its commit.
    txn_domain_gtid: Option<(u32, u32, u64)>,
    /// MySQL: every transaction executed up to `resume`, when known (from the
    /// checkpoint, a `latest` start, or a binlog file's PREVIOUS_GTIDS).
    gtid_set: Option<GtidSet>,
    /// The MySQL GTID of the transaction being read (uuid, tag, number), until its commit.
    txn_mysql_gtid: Option<(String, String, u64)>,
    /// Set: the next session asks a MySQL server for the transactions not in this set
    /// (COM_BINLOG_DUMP_GTID) instead of `resume`'s file and position.
    by_gtid_set: Option<GtidSet>,
    /// `@@server_id` of the server `resume` is a position of.
    server_id: Option<u32>,
    /// Set: the next session starts after this MariaDB GTID state instead of at
    /// `resume`'s file and position (another server, or `start_from` a GTID state).
    /// Cleared at the first transaction boundary read on the new server.
    by_gtid: Option<String>,
    events_since_stats: u64,
    /// The server writes checksums (`binlog_checksum` is not NONE).
    session_checksum: bool,
    /// No event read yet in this session.
    first_event: bool,
    /// Set while the events inside a TRANSACTION_PAYLOAD, or the uncompressed form of a
    /// MariaDB compressed event, are handled.
    inner: Option<InnerAt>,
    /// (start, end) of the event being handled, from its file offsets, when it comes
    /// from a file rather than the server.
    file_offsets: Option<(u64, u64)>,
    /// (task, column) already warned about as gone from the table.
    warned_columns: std::collections::HashSet<(usize, String)>,
    /// By task (`txn: true` ones only): its last change of the current transaction,
    /// held back until it is known whether it is the last one.
    txn_held: Vec<Option<(Arc<RowChange>, TxnMeta)>>,
    /// The current transaction's id once a `txn: true` task needed it.
    txn_id: Option<Arc<str>>,
    /// Backfill chunks waiting for their snapshot position in the stream.
    handoff: Option<Arc<Handoff>>,
}

/// Where an event inside a TRANSACTION_PAYLOAD sits: its own header carries no usable
/// position, so it takes the payload event's, and its offset in the decompressed
/// payload keeps row ids unique across the payload's rows events.
/// A decompressed MariaDB event likewise takes the compressed event's position (offset 0).
#[derive(Clone, Copy)]
struct InnerAt {
    start: u64,
    end: u64,
    offset: u64,
    /// Inside a TRANSACTION_PAYLOAD (handled whole), not a single decompressed event.
    payload: bool,
}

impl Reader {
    pub fn new(
        config: Arc<Config>,
        stats: Arc<SourceStats>,
        dead_letters: Arc<DeadLetters>,
        stop: Arc<Signal>,
        start: Checkpoint,
    ) -> Reader {
        let tasks = config.tasks.len();
        let mut watched = std::collections::HashMap::<(String, String), Vec<usize>>::new();
        for (i, t) in config.tasks.iter().enumerate() {
            watched
                .entry((t.database.clone(), t.table.clone()))
                .or_default()
                .push(i);
        }
        let lookup = schema::MysqlLookup::new(&config.database);
        Reader {
            schema: SchemaCache::new(watched, Box::new(lookup)),
            file: start.file.clone(),
            pos: start.pos,
            last_gtid: start.gtid.clone(),
            gtid_domains: crate::checkpoint::parse_mariadb_gtid_state(
                start.gtid.as_deref().unwrap_or_default(),
            )
            .unwrap_or_default(),
            txn_domain_gtid: None,
            gtid_set: start.gtid_set.as_deref().and_then(GtidSet::parse),
            txn_mysql_gtid: None,
            by_gtid_set: start
                .gtid_set
                .as_deref()
                .filter(|_| start.file.is_empty())
                .and_then(GtidSet::parse),
            server_id: start.server_id,
            // An empty file is a start by GTID (`start_from` a GTID state, or a
            // checkpoint saved before the first transaction read that way).
            by_gtid: start
                .gtid
                .clone()
                .filter(|g| start.file.is_empty() && parse_mariadb_gtid_state(g).is_some()),
            resume: start,
            config,
            stats,
            dead_letters,
            stop,
            in_txn: false,
            txn_gtid: None,
            txn_timestamp: 0,
            queued_in_txn: None,
            events_since_stats: 0,
            session_checksum: true,
            first_event: true,
            inner: None,
            file_offsets: None,
            warned_columns: Default::default(),
            txn_held: vec![None; tasks],
            txn_id: None,
            handoff: None,
        }
    }

    /// Backfill chunks come through `handoff` and are delivered at their position.
    pub fn with_handoff(mut self, handoff: Arc<Handoff>) -> Reader {
        self.handoff = Some(handoff);
        self
    }

    /// At a transaction boundary: hands over the backfill chunks whose snapshot position
    /// the stream has reached.
    fn hand_over_chunks(&mut self, sink: &dyn Sink) -> Result<(), SinkClosed> {
        let Some(handoff) = &self.handoff else {
            return Ok(());
        };
        hand_over(
            handoff,
            &self.config,
            &self.stats,
            &self.resume.position(),
            sink,
        )
        .map(drop)
    }

    /// Reads until stop is requested (Ok) or a fatal error. Connection problems are
    /// retried for ever with backoff.
    pub fn run(mut self, sink: &(dyn Sink + Sync)) -> Result<(), ReaderError> {
        self.stats.set_running(true);
        let result = self.with_hand_over_thread(sink, |r| r.run_sessions(sink));
        self.stats.set_running(false);
        result
    }

    /// Runs `read` beside the thread that hands over backfill chunks while the reader
    /// waits at a boundary (see `handoff`); without backfills, just `read`.
    fn with_hand_over_thread(
        &mut self,
        sink: &(dyn Sink + Sync),
        read: impl FnOnce(&mut Reader) -> Result<(), ReaderError>,
    ) -> Result<(), ReaderError> {
        let Some(handoff) = self.handoff.clone() else {
            return read(self);
        };
        let config = self.config.clone();
        let stats = self.stats.clone();
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("backfill-handover".into())
                .spawn_scoped(scope, || {
                    while handoff.wait_for_chunk(Duration::from_millis(200)) {
                        let gate = handoff.gate();
                        let handed = match gate.open_at() {
                            Some(at) => hand_over(&handoff, &config, &stats, at, sink),
                            None => Ok(0),
                        };
                        drop(gate);
                        match handed {
                            Err(SinkClosed) => return,
                            // The reader is busy or behind the chunk's position.
                            Ok(0) => handoff.pause(Duration::from_millis(10)),
                            Ok(_) => {}
                        }
                    }
                });
            if let Err(e) = spawned {
                log::warn!(
                    "cannot start the backfill hand-over thread ({e}); backfill chunks are \
                     handed over only at the stream's own events and heartbeats"
                );
            }
            let result = read(self);
            handoff.close();
            result
        })
    }

    /// Reads the events of `plan`'s files, as `run` reads the server's, and returns at
    /// their end (or at a transaction boundary once stop is requested).
    pub fn run_files(mut self, plan: &FilePlan, sink: &dyn Sink) -> Result<(), ReaderError> {
        self.stats.set_running(true);
        let result = self.read_files(plan, sink);
        self.flush_stats();
        self.stats.set_running(false);
        result
    }

    /// Catches up from archived files (`binlog_archive`), then reads the server's binlog
    /// from where they end, as `run` does.
    pub fn run_archive_then_live(
        mut self,
        plan: &FilePlan,
        sink: &(dyn Sink + Sync),
    ) -> Result<(), ReaderError> {
        self.stats.set_running(true);
        let result = self.read_files(plan, sink).and_then(|()| {
            if self.stop.is_raised() {
                return Ok(());
            }
            log::info!(
                "the archive is read; continuing live from {}",
                self.resume_position()
            );
            self.schema.forbid_positional_names();
            self.with_hand_over_thread(sink, |r| r.run_sessions(sink))
        });
        self.stats.set_running(false);
        result
    }

    fn read_files(&mut self, plan: &FilePlan, sink: &dyn Sink) -> Result<(), ReaderError> {
        self.schema.allow_positional_names();
        let mut started = plan.from.is_none();
        for (i, path) in plan.files.iter().enumerate() {
            let name = file_name(path);
            if let Some(from) = plan.from.as_ref().filter(|_| !started) {
                if from.file != name {
                    continue;
                }
            }
            let events = FileEvents::open(path)?;
            log::info!(
                "reading {} (file {} of {})",
                path.display(),
                i + 1,
                plan.files.len()
            );
            self.file = name.clone();
            self.pos = 4;
            // A file's last event, when it is a rotate: the name of the file after it.
            let mut rotate_to: Option<String> = None;
            for item in events {
                let (start, end, event) = item?;
                if let Some(from) = plan.from.as_ref().filter(|_| !started) {
                    if start < from.pos {
                        // Earlier events still pass through the file reader (the format
                        // description and table maps it keeps): not handed over.
                        continue;
                    }
                    if start > from.pos {
                        return Err(FileError::BadFrom {
                            file: from.file.clone(),
                            pos: from.pos,
                            why: "no event starts there; give the position of an event \
                                  (a checkpoint or `SHOW BINLOG EVENTS` shows them)"
                                .into(),
                        }
                        .into());
                    }
                    started = true;
                }
                let at_boundary = !self.in_txn;
                if let Some(to) = &plan.to {
                    if at_boundary && name == to.file && start >= to.pos {
                        self.end_of_files(sink);
                        return Ok(());
                    }
                }
                if at_boundary && self.stop.is_raised() {
                    self.end_of_files(sink);
                    return Ok(());
                }
                if let Ok(Some(EventData::RotateEvent(rotate))) = event.read_data() {
                    // The names in a relay log's rotates are the source server's: the
                    // file's own name stays the rows' name.
                    rotate_to = Some(String::from_utf8_lossy(rotate.name_raw()).into_owned());
                    self.pos = end;
                    continue;
                }
                rotate_to = None;
                self.file_offsets = Some((start, end));
                let handled = self.handle(&event, sink);
                self.file_offsets = None;
                match handled {
                    Ok(()) => {}
                    Err(SessionEnd::Fatal(e)) => return Err(e),
                    // What would make a live session reconnect is, in a file, an event
                    // that cannot be read.
                    Err(SessionEnd::Lost(why)) => {
                        return Err(FileError::Corrupt {
                            path: path.clone(),
                            offset: start,
                            source: std::io::Error::other(why),
                        }
                        .into())
                    }
                    Err(SessionEnd::Stopped) => return Ok(()),
                }
            }
            if !started {
                return Err(FileError::BadFrom {
                    file: name,
                    pos: plan.from.as_ref().map_or(0, |f| f.pos),
                    why: "the file ends before it".into(),
                }
                .into());
            }
            if self.in_txn {
                return Err(FileError::EndsInsideTransaction {
                    path: path.clone(),
                    offset: self.resume.pos,
                }
                .into());
            }
            let next = plan.files.get(i + 1).map(|p| file_name(p));
            match (rotate_to, next) {
                (Some(to), Some(given)) if to != given => {
                    return Err(FileError::Gap {
                        path: path.clone(),
                        next: to,
                        given,
                    }
                    .into());
                }
                // The next file's start is where reading goes on (live, or the next
                // archived file).
                (Some(to), _) => {
                    self.file = to;
                    self.pos = 4;
                }
                (None, _) => {}
            }
            self.end_of_files(sink);
            if plan.to.as_ref().is_some_and(|to| to.file == name) {
                return Ok(());
            }
        }
        if !started {
            if let Some(from) = &plan.from {
                return Err(FileError::BadFrom {
                    file: from.file.clone(),
                    pos: from.pos,
                    why: "no file of that name was given".into(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// A transaction boundary at the current file and position: where reading goes on.
    fn end_of_files(&mut self, sink: &dyn Sink) {
        self.resume = self.boundary(self.pos);
        sink.commit(self.resume.clone());
    }

    fn run_sessions(&mut self, sink: &dyn Sink) -> Result<(), ReaderError> {
        let mut attempt: u32 = 0;
        loop {
            if self.stop.is_raised() {
                return Ok(());
            }
            let started = Instant::now();
            match self.session(sink) {
                SessionEnd::Stopped => return Ok(()),
                SessionEnd::Fatal(e) => return Err(e),
                SessionEnd::Lost(why) => {
                    self.stats.lost();
                    // A session that streamed for a while resets the backoff.
                    if started.elapsed() > Duration::from_secs(30) {
                        attempt = 0;
                    }
                    let delay = Duration::from_millis(250u64 << attempt.min(7))
                        .min(Duration::from_secs(30));
                    attempt += 1;
                    log::warn!(
                        "binlog connection lost: {why}; reconnecting from {} in {:.1}s (attempt {attempt})",
                        self.resume_position(),
                        delay.as_secs_f64()
                    );
                    if !self.stop.sleep(delay) {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn resume_position(&self) -> BinlogPosition {
        self.resume.position()
    }

    fn session(&mut self, sink: &dyn Sink) -> SessionEnd {
        let hb = self
            .config
            .monitor
            .heartbeat_period
            .max(Duration::from_millis(100));
        // Silence for three heartbeat periods means the connection is dead (half-open
        // TCP, a paused server): give up and reconnect.
        let read_timeout = hb * 3 + Duration::from_secs(1);
        let connector = Connector::new(&self.config.database, Some(read_timeout));
        let mut conn = match connector.connect() {
            Ok(c) => c,
            Err(e) => return SessionEnd::Lost(e.to_string()),
        };
        let setup = [
            format!("SET @master_heartbeat_period = {}", hb.as_nanos()),
            format!("SET @source_heartbeat_period = {}", hb.as_nanos()),
            // Receive MariaDB's GTID events instead of BEGIN and dummy events.
            "SET @mariadb_slave_capability = 4".to_owned(),
            "SET @source_binlog_checksum = @@global.binlog_checksum".to_owned(),
            // A reader paused by backpressure must not be cut off by the server.
            "SET SESSION net_write_timeout = 86400".to_owned(),
        ];
        for q in &setup {
            if let Err(e) = conn.query_drop(q) {
                return SessionEnd::Lost(format!("cannot prepare the connection ({q}): {e}"));
            }
        }
        match conn.query_first::<String, _>("SELECT @@global.binlog_checksum") {
            Ok(v) => self.session_checksum = v.is_some_and(|v| !v.eq_ignore_ascii_case("NONE")),
            Err(e) => return SessionEnd::Lost(format!("cannot read binlog_checksum: {e}")),
        }
        match conn.query_first::<u32, _>("SELECT @@server_id") {
            Ok(Some(now)) => {
                if let Err(end) = self.follow_server(now) {
                    return end;
                }
            }
            Ok(None) => {}
            Err(e) => return SessionEnd::Lost(format!("cannot read server_id: {e}")),
        }
        if let Some(state) = &self.by_gtid {
            let setup = [
                format!("SET @slave_connect_state = '{}'", state.replace('\'', "")),
                // An unknown GTID is an error, not a silent start elsewhere.
                "SET @slave_gtid_strict_mode = 1".to_owned(),
            ];
            for q in &setup {
                if let Err(e) = conn.query_drop(q) {
                    return SessionEnd::Lost(format!("cannot prepare the connection ({q}): {e}"));
                }
            }
        }
        self.warn_missing_tables(&mut conn);
        self.first_event = true;
        // Start from the last transaction boundary; half-read transactions are read
        // again and their already-queued row events skipped.
        self.file = self.resume.file.clone();
        self.pos = self.resume.pos;
        self.in_txn = false;
        // By GTID: an empty file name, and the server starts after @slave_connect_state.
        let (file, pos) = match &self.by_gtid {
            Some(_) => (Vec::new(), 4),
            None => (self.resume.file.as_bytes().to_vec(), self.resume.pos),
        };
        let mut request = BinlogRequest::new(self.config.database.server_id)
            .with_filename(file)
            .with_pos(pos);
        if let Some(set) = &self.by_gtid_set {
            // MySQL: from the first transaction this set does not hold, wherever it is.
            let sids: Vec<Sid<'static>> = set.sids().filter_map(|s| s.parse().ok()).collect();
            request = BinlogRequest::new(self.config.database.server_id)
                .with_use_gtid(true)
                .with_filename(Vec::new())
                .with_pos(4u64)
                .with_sids(sids);
        }
        let stream = match conn.get_binlog_stream(request) {
            Ok(s) => s,
            Err(e) => return self.classify(e),
        };
        match (&self.by_gtid, &self.by_gtid_set) {
            (Some(state), _) => log::info!("reading the binlog after GTID state {state}"),
            (_, Some(set)) => log::info!("reading the binlog after GTID set {set}"),
            _ => log::info!("reading the binlog from {}", self.resume_position()),
        }
        self.stats.connected();
        let handoff = self.handoff.clone();
        for item in stream {
            let event = match item {
                Ok(ev) => ev,
                Err(e) => return self.classify(e),
            };
            let mut gate = handoff.as_deref().map(Handoff::shut);
            if let Err(end) = self.handle(&event, sink) {
                return end;
            }
            if !self.in_txn {
                if let Err(e) = self.hand_over_chunks(sink) {
                    return SessionEnd::Fatal(ReaderError::SinkClosed(e));
                }
                if let Some(gate) = &mut gate {
                    gate.open(self.resume.position());
                }
            }
            drop(gate);
            if !self.in_txn && self.stop.is_raised() {
                self.flush_stats();
                return SessionEnd::Stopped;
            }
        }
        // A clean server shutdown ends the stream exactly like this.
        SessionEnd::Lost("the server closed the binlog stream".to_owned())
    }

    /// A task whose table does not exist would otherwise wait in silence; a typo in
    /// `table_name` looks exactly like that. Said at start and at every reconnect (a
    /// table dropped meanwhile), not fatal: the table may be created later, and its rows
    /// are delivered from then on.
    fn warn_missing_tables(&self, conn: &mut mysql::Conn) {
        let tables = self
            .config
            .tasks
            .iter()
            .map(|t| (t.database.as_str(), t.table.as_str()));
        let missing = match preflight::missing_tables(conn, tables) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("cannot tell whether the tasks' tables exist: {e}");
                return;
            }
        };
        for task in &self.config.tasks {
            if missing.contains(&(task.database.as_str(), task.table.as_str())) {
                log::warn!(
                    "task {}: table {}.{} does not exist (yet); a typo in table_name? pikachu \
                     keeps running and delivers once it is created",
                    task.task_id,
                    task.database,
                    task.table
                );
            }
        }
    }

    fn classify(&self, e: mysql::Error) -> SessionEnd {
        if let mysql::Error::MySqlError(me) = &e {
            if me.code == 1236 {
                if let Some(state) = &self.by_gtid {
                    return SessionEnd::Fatal(ReaderError::PositionGone(format!(
                        "the server cannot send the binlog after GTID state {state}: {} (its \
                         binlogs do not hold those transactions: purged, or a server outside \
                         the replication topology)",
                        me.message
                    )));
                }
                return SessionEnd::Fatal(ReaderError::PositionGone(format!(
                    "the server cannot send the binlog from {}: {} (the binary log was purged \
                     or the position is not an event boundary; see `start_from` in README)",
                    self.resume_position(),
                    me.message
                )));
            }
        }
        SessionEnd::Lost(e.to_string())
    }

    fn handle(&mut self, event: &Event, sink: &dyn Sink) -> Result<(), SessionEnd> {
        let header = event.header();
        let type_raw = header.event_type_raw();
        let (start_pos, end_pos) = match (self.inner, self.file_offsets) {
            (Some(at), _) => (at.start, at.end),
            (None, Some(offsets)) => offsets,
            (None, None) => {
                let end = header.log_pos() as u64;
                (end.saturating_sub(header.event_size() as u64), end)
            }
        };
        self.events_since_stats += 1;
        let first_event = std::mem::replace(&mut self.first_event, false);

        // The crate strips the checksum without checking it.
        if let (Some(sum), Ok(Some(alg))) = (event.checksum(), event.footer().get_checksum_alg()) {
            if u32::from_le_bytes(sum) != event.calc_checksum(alg) {
                return Err(SessionEnd::Lost(format!(
                    "checksum mismatch in the event at {}:{start_pos}",
                    self.file
                )));
            }
        }

        match type_raw {
            MARIADB_GTID => {
                let d = event.data();
                if d.len() >= 13 {
                    let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
                    let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
                    let gtid = format!("{domain}-{}-{seq}", header.server_id());
                    self.txn_domain_gtid = Some((domain, header.server_id(), seq));
                    self.in_txn = d[12] & MARIADB_GTID_FL_STANDALONE == 0;
                    self.txn_gtid = Some(gtid.into());
                    self.txn_timestamp = header.timestamp();
                }
                self.pos = end_pos;
                return Ok(());
            }
            MARIADB_QUERY_COMPRESSED
            | MARIADB_FIRST_COMPRESSED_ROWS..=MARIADB_LAST_COMPRESSED_ROWS => {
                return self.decompressed(event, start_pos, end_pos, sink);
            }
            MYSQL_TRANSACTION_PAYLOAD => {
                return self.transaction_payload(event, start_pos, end_pos, sink);
            }
            MARIADB_ANNOTATE_ROWS => {
                self.pos = end_pos.max(self.pos);
                return Ok(());
            }
            _ => {}
        }

        let data = match event.read_data() {
            Ok(Some(d)) => d,
            Ok(None) => {
                // Event types nobody needs (MariaDB's GTID list, checkpoints …).
                if end_pos > 0 {
                    self.pos = end_pos;
                }
                return Ok(());
            }
            Err(e) => {
                return Err(SessionEnd::Lost(format!(
                    "cannot parse the event at {}:{start_pos}: {e}",
                    self.file
                )))
            }
        };
        match data {
            EventData::RotateEvent(rotate) => {
                let fake = end_pos == 0;
                let mut raw = rotate.name_raw();
                // The fake rotate that opens a session arrives before the format
                // description, so the crate does not strip its checksum: 4 bytes after
                // the name.
                if fake && self.session_checksum && first_event && raw.len() > 4 {
                    raw = &raw[..raw.len() - 4];
                }
                let name = String::from_utf8_lossy(raw).into_owned();
                let moved = name != self.file;
                if !fake || moved {
                    log::info!("binlog rotated to {name}");
                }
                self.file = name;
                self.pos = rotate.position();
                // After a start by GTID the first rotate names the file but not where
                // in it reading starts: only a transaction's end is a position then.
                let gtid_start = fake && self.by_gtid.is_some();
                if !self.in_txn && !gtid_start {
                    self.resume = self.boundary(self.pos);
                    // A fake rotate to another file is how the server moves on past a
                    // file that ended without a rotate event (server restart: the old
                    // file ends with STOP). Marking it lets an idle checkpoint follow, so
                    // purging the old file later does not strand the next start. The
                    // fake rotate opening a session names the file asked for: nothing new.
                    if !fake || moved {
                        sink.commit(self.resume.clone());
                    }
                }
            }
            EventData::HeartbeatEvent => {
                self.flush_stats();
                self.stats.set_lag(0.0);
            }
            EventData::PreviousGtidsEvent(prev) => {
                // A file's start: every transaction before this file.
                let mut before = GtidSet::default();
                for sid in prev.sids() {
                    let tag = sid.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
                    for interval in sid.intervals() {
                        if interval.end() > interval.start() {
                            before.add_range(
                                &uuid(&sid.uuid()),
                                &tag,
                                interval.start(),
                                interval.end() - 1,
                            );
                        }
                    }
                }
                match &mut self.gtid_set {
                    Some(set) => set.union(&before),
                    None => self.gtid_set = Some(before),
                }
                self.pos = end_pos;
            }
            EventData::GtidEvent(g) => {
                self.txn_mysql_gtid = Some((
                    uuid(&g.sid()),
                    g.tag().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    g.gno(),
                ));
                // MySQL 8.4+ tagged GTIDs are `uuid:tag:n`, as MySQL writes them.
                self.txn_gtid = Some(
                    match g.tag() {
                        Some(tag) => format!("{}:{}:{}", uuid(&g.sid()), tag.as_str(), g.gno()),
                        None => format!("{}:{}", uuid(&g.sid()), g.gno()),
                    }
                    .into(),
                );
                // MySQL 8 records the commit time in microseconds; older ones don't.
                let ts = g.immediate_commit_timestamp();
                self.txn_timestamp = if ts > 0 {
                    (ts / 1_000_000) as u32
                } else {
                    header.timestamp()
                };
                self.pos = end_pos;
            }
            EventData::QueryEvent(q) => {
                let query = q.query();
                let word = first_word(&query);
                self.pos = end_pos;
                match word.as_str() {
                    "BEGIN" => {
                        self.in_txn = true;
                        if self.txn_timestamp == 0 {
                            self.txn_timestamp = header.timestamp();
                        }
                    }
                    "COMMIT" | "ROLLBACK" => self
                        .commit(end_pos, header.timestamp(), sink)
                        .map_err(ReaderError::SinkClosed)?,
                    _ => {
                        if matches!(
                            word.as_str(),
                            "ALTER" | "CREATE" | "DROP" | "RENAME" | "TRUNCATE"
                        ) {
                            let watched: Vec<String> = self
                                .config
                                .tasks
                                .iter()
                                .map(|t| t.table.to_ascii_lowercase())
                                .collect();
                            match ddl_for_log(&query, &watched) {
                                Some(text) => {
                                    log::info!("DDL read at {}:{start_pos}: {text}", self.file)
                                }
                                None => log::debug!(
                                    "DDL read at {}:{start_pos} (on no watched table, or an \
                                     account statement: its text is not logged)",
                                    self.file
                                ),
                            }
                            self.schema.on_ddl();
                        }
                        if !self.in_txn || word == "XA" {
                            self.commit(end_pos, header.timestamp(), sink)
                                .map_err(ReaderError::SinkClosed)?;
                        }
                    }
                }
            }
            EventData::XidEvent(_) => {
                self.pos = end_pos;
                self.commit(end_pos, header.timestamp(), sink)
                    .map_err(ReaderError::SinkClosed)?;
            }
            EventData::TableMapEvent(tme) => {
                self.schema.on_table_map(&tme, event.data());
                self.warn_dropped_columns(tme.table_id());
                self.pos = end_pos;
            }
            EventData::RowsEvent(rows) => {
                self.rows(&rows, header.timestamp(), start_pos, sink)?;
                self.pos = end_pos;
            }
            _ => {
                if end_pos > 0 {
                    self.pos = end_pos;
                }
            }
        }
        Ok(())
    }

    /// MySQL's compressed transaction: its inner events go through `handle` like top-level
    /// ones, at the payload's position. Ids stay unique because the row index is offset by
    /// the inner event's position in the decompressed payload (every row takes at least
    /// one byte of its event) and stable because that offset depends only on the binlog.
    fn transaction_payload(
        &mut self,
        event: &Event,
        start: u64,
        end: u64,
        sink: &dyn Sink,
    ) -> Result<(), SessionEnd> {
        if self.inner.is_some() {
            return Err(ReaderError::Unsupported(format!(
                "a compressed transaction inside a compressed transaction at {}:{start}",
                self.file
            ))
            .into());
        }
        // The outer checksum was verified: a payload that still cannot be read would fail
        // the same way after a reconnect, so stop with the reason instead of looping.
        let bad = |file: &str, e: payload::PayloadError| {
            SessionEnd::Fatal(ReaderError::Unsupported(format!(
                "cannot read the compressed transaction at {file}:{start}: {e}; pikachu stops \
                 here rather than skip it (binlog_transaction_compression=OFF on the server \
                 avoids compressed transactions)"
            )))
        };
        let events = payload::inner_events(event).map_err(|e| bad(&self.file, e))?;
        for item in events {
            let (offset, inner) = item.map_err(|e| bad(&self.file, e))?;
            let at = InnerAt {
                start,
                end,
                offset,
                payload: true,
            };
            self.handle_at(at, &inner, sink)?;
        }
        // The payload is the whole transaction: its end is a boundary even if no commit
        // event was inside.
        if self.in_txn {
            self.commit(end, event.header().timestamp(), sink)
                .map_err(ReaderError::SinkClosed)?;
        }
        self.pos = end;
        Ok(())
    }

    /// MariaDB's compressed event (`log_bin_compress=ON`): handled as the uncompressed
    /// event it stands for, at its own position, so ids, checkpoints and the skipping of
    /// rows queued before a reconnect are as without compression.
    fn decompressed(
        &mut self,
        event: &Event,
        start: u64,
        end: u64,
        sink: &dyn Sink,
    ) -> Result<(), SessionEnd> {
        // The checksum was verified: the same bytes would fail again after a reconnect.
        let plain = compressed::decompress(event).map_err(|e| {
            SessionEnd::Fatal(ReaderError::Unsupported(format!(
                "cannot decompress the compressed event at {}:{start}: {e}; pikachu stops here \
                 rather than skip it (log_bin_compress=OFF on the server avoids compressed \
                 events)",
                self.file
            )))
        })?;
        // One binlog event, counted once.
        self.events_since_stats = self.events_since_stats.saturating_sub(1);
        // Inside a payload it keeps the payload's position.
        let at = self.inner.unwrap_or(InnerAt {
            start,
            end,
            offset: 0,
            payload: false,
        });
        self.handle_at(at, &plain, sink)
    }

    /// Handles an event that stands inside (or for) another one, at `at`'s position.
    fn handle_at(&mut self, at: InnerAt, event: &Event, sink: &dyn Sink) -> Result<(), SessionEnd> {
        let outer = self.inner.replace(at);
        let handled = self.handle(event, sink);
        self.inner = outer;
        handled
    }

    /// A `txn: true` task's change: whether it is the transaction's last for the task is
    /// known only at the next one or the commit, so each is handed over one step late.
    fn hold_for_txn(
        &mut self,
        task: usize,
        change: Arc<RowChange>,
        sink: &dyn Sink,
    ) -> Result<(), SinkClosed> {
        let id = match &self.txn_id {
            Some(id) => id.clone(),
            None => {
                let id: Arc<str> = match &self.txn_gtid {
                    Some(g) => g.clone(),
                    None => format!("{}:{}", self.resume.file, self.resume.pos).into(),
                };
                self.txn_id = Some(id.clone());
                id
            }
        };
        // Nothing held: the task's first change of the transaction.
        let seq = match self.txn_held[task].take() {
            Some((previous, meta)) => {
                let seq = meta.seq + 1;
                sink.deliver(task, previous, Some(meta))?;
                seq
            }
            None => 0,
        };
        self.txn_held[task] = Some((
            change,
            TxnMeta {
                id,
                seq,
                last: false,
            },
        ));
        Ok(())
    }

    /// After DDL a task may name a column its table no longer has: said once per task
    /// and column (the task goes on with the columns there are).
    fn warn_dropped_columns(&mut self, table_id: u64) {
        let Some(Mapped {
            entry: Ok(entry), ..
        }) = self.schema.get(table_id)
        else {
            return;
        };
        let names = &entry.schema.columns;
        for &task in &entry.tasks {
            let t = &self.config.tasks[task];
            let on_change = t.on_change.iter().map(String::as_str);
            let filter = t.filter.iter().flat_map(|f| f.columns());
            for name in t
                .columns
                .unknown(names)
                .into_iter()
                .chain(on_change)
                .chain(filter)
            {
                if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    continue;
                }
                if self.warned_columns.insert((task, name.to_owned())) {
                    log::warn!(
                        "task {}: `{}`.`{}` has no column {name} any more (after DDL?); the task \
                         goes on without it: fix columns/exclude_columns/on_change/filter",
                        t.task_id,
                        t.database,
                        t.table
                    );
                }
            }
        }
    }

    /// A transaction boundary at `pos` of the current file, with the GTID state.
    fn boundary(&self, pos: u64) -> Checkpoint {
        Checkpoint {
            file: self.file.clone(),
            pos,
            gtid: self.mariadb_gtid_state().or_else(|| self.last_gtid.clone()),
            server_id: self.server_id,
            // An empty set (gtid_mode OFF writes anonymous GTIDs only) is no set: going on
            // from it would ask another server for its whole history.
            gtid_set: self
                .gtid_set
                .as_ref()
                .map(GtidSet::to_string)
                .filter(|s| !s.is_empty()),
            backfills: Default::default(),
        }
    }

    /// `0-1-42,1-2-7`: the last GTID of every domain read.
    fn mariadb_gtid_state(&self) -> Option<String> {
        if self.gtid_domains.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .gtid_domains
            .iter()
            .map(|(domain, (server, seq))| format!("{domain}-{server}-{seq}"))
            .collect();
        Some(parts.join(","))
    }

    /// A session on another server than the one `resume` is a position of: go on by the
    /// MariaDB GTID state (file and position mean nothing there), or stop saying why.
    fn follow_server(&mut self, now: u32) -> Result<(), SessionEnd> {
        let Some(was) = self.server_id.filter(|was| *was != now) else {
            self.server_id = Some(now);
            return Ok(());
        };
        if self.by_gtid.is_none() && self.by_gtid_set.is_none() {
            let Some(state) = self.mariadb_gtid_state() else {
                if let Some(set) = &self.gtid_set {
                    log::warn!(
                        "the server is now server_id {now}, but {} is a position in the binlog \
                         of server_id {was} (a failover?): going on after GTID set {set}",
                        self.resume_position()
                    );
                    self.by_gtid_set = Some(set.clone());
                    self.server_id = Some(now);
                    return Ok(());
                }
                return Err(ReaderError::PositionGone(format!(
                    "the server is server_id {now}, but the position {} is in the binlog of \
                     server_id {was}, and neither a MariaDB GTID state nor a MySQL GTID set is \
                     known to go on from (a MySQL set is known after a `latest` start or once \
                     a binlog file was read from its start); to start over on this server, \
                     move the checkpoint file away and choose start_from",
                    self.resume_position()
                ))
                .into());
            };
            log::warn!(
                "the server is now server_id {now}, but {} is a position in the binlog of \
                 server_id {was} (a failover?): going on after GTID state {state}",
                self.resume_position()
            );
            self.by_gtid = Some(state);
        }
        self.server_id = Some(now);
        Ok(())
    }

    /// A transaction (or a standalone statement) ended at `end_pos`. The changes held
    /// back for `txn: true` tasks go first, the last of each marked so.
    fn commit(&mut self, end_pos: u64, timestamp: u32, sink: &dyn Sink) -> Result<(), SinkClosed> {
        for task in 0..self.txn_held.len() {
            if let Some((change, meta)) = self.txn_held[task].take() {
                sink.deliver(task, change, Some(TxnMeta { last: true, ..meta }))?;
            }
        }
        self.txn_id = None;
        self.in_txn = false;
        if let Some(g) = self.txn_gtid.take() {
            self.last_gtid = Some(g.to_string());
        }
        if let Some((domain, server, seq)) = self.txn_domain_gtid.take() {
            self.gtid_domains.insert(domain, (server, seq));
        }
        if let Some((uuid, tag, gno)) = self.txn_mysql_gtid.take() {
            if let Some(set) = &mut self.gtid_set {
                set.add(&uuid, &tag, gno);
            }
        }
        self.resume = self.boundary(end_pos);
        self.by_gtid = None;
        self.by_gtid_set = None;
        self.queued_in_txn = None;
        sink.commit(self.resume.clone());
        let lag = if timestamp > 0 {
            (unix_now() - timestamp as i64).max(0) as f64
        } else {
            0.0
        };
        self.txn_timestamp = 0;
        if self.events_since_stats >= 256 || lag > 0.0 {
            self.flush_stats();
        }
        self.stats.set_lag(lag);
        Ok(())
    }

    fn flush_stats(&mut self) {
        self.stats
            .read_up_to(self.events_since_stats, &self.file, self.pos);
        self.events_since_stats = 0;
    }

    fn rows(
        &mut self,
        rows: &RowsEventData<'_>,
        header_ts: u32,
        start_pos: u64,
        sink: &dyn Sink,
    ) -> Result<(), SessionEnd> {
        let entry = match self.schema.get(rows.table_id()) {
            None => return Ok(()),
            Some(Mapped { entry: Ok(e), .. }) => e.clone(),
            Some(Mapped { entry: Err(e), .. }) => {
                let msg = e.to_string();
                self.dead_letter_event(rows, start_pos, &msg, true);
                return Ok(());
            }
        };
        let here = BinlogPosition::new(self.file.clone(), start_pos);
        // A payload is handled whole within one call (its errors are fatal), so there is
        // nothing queued before a reconnect to skip, and its rows events share a position.
        if let Some(done) = self
            .queued_in_txn
            .as_ref()
            .filter(|_| !self.inner.is_some_and(|at| at.payload))
        {
            if done.file == here.file && here.pos <= done.pos {
                // Queued before the connection was lost.
                return Ok(());
            }
        }
        let kind = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                ChangeKind::Insert
            }
            RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => {
                ChangeKind::Update
            }
            RowsEventData::PartialUpdateRowsEvent(_) => ChangeKind::Update,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                ChangeKind::Delete
            }
        };
        let tasks: Vec<usize> = entry
            .tasks
            .iter()
            .copied()
            .filter(|&t| self.config.tasks[t].events.accepts(kind))
            .collect();
        // A change no task takes still makes a backfilled copy of its row stale.
        let watching = self.handoff.as_ref().is_some_and(|h| h.watching());
        if tasks.is_empty() && !watching {
            return Ok(());
        }
        let timestamp = if self.txn_timestamp > 0 {
            self.txn_timestamp
        } else {
            header_ts
        };
        // The Go tool's value shapes are decoded only for tables a `values: go` task
        // watches; the default path does not pay for them.
        let go = tasks
            .iter()
            .any(|&t| self.config.tasks[t].values == ValueMode::Go);
        let changes = match self.decode(&entry, rows, kind, &here, timestamp, go) {
            Ok(c) => c,
            Err(msg) => {
                self.dead_letter_event(rows, start_pos, &msg, false);
                return Ok(());
            }
        };
        if tasks.is_empty() {
            if let Some(h) = &self.handoff {
                for change in changes {
                    let change = Arc::new(change);
                    for &task in &entry.tasks {
                        h.observe(task, &change);
                    }
                }
            }
            return Ok(());
        }
        for change in changes {
            let change = Arc::new(change);
            if let Some(h) = &self.handoff {
                for &task in &entry.tasks {
                    h.observe(task, &change);
                }
            }
            for &task in &tasks {
                let t = &self.config.tasks[task];
                if !crate::filter::wants(&t.on_change, t.filter.as_ref(), &change) {
                    continue;
                }
                // Counted before routing, so that `captured` is never behind `delivered`.
                self.stats.captured(task, kind, 1);
                if t.txn {
                    self.hold_for_txn(task, change.clone(), sink)
                        .map_err(ReaderError::SinkClosed)?;
                } else {
                    sink.deliver(task, change.clone(), None)
                        .map_err(ReaderError::SinkClosed)?;
                }
            }
        }
        self.queued_in_txn = Some(here);
        Ok(())
    }

    /// Decodes every row of the event before anything is queued, so that a bad event is
    /// dead-lettered whole rather than half-delivered.
    fn decode(
        &self,
        entry: &TableEntry,
        rows: &RowsEventData<'_>,
        kind: ChangeKind,
        here: &BinlogPosition,
        timestamp: u32,
        go: bool,
    ) -> Result<Vec<RowChange>, String> {
        let n = entry.columns.len();
        if rows.num_columns() as usize != n {
            return Err(format!(
                "the rows event has {} columns but its table map has {n}",
                rows.num_columns()
            ));
        }
        let before_present: Vec<bool> = rows
            .columns_before_image()
            .map(|b| b.iter().by_vals().take(n).collect())
            .unwrap_or_default();
        let after_present: Vec<bool> = rows
            .columns_after_image()
            .map(|b| b.iter().by_vals().take(n).collect())
            .unwrap_or_default();
        let partial = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
        let mut input = rows.rows_data();
        let mut out = Vec::new();
        let mut index = 0usize;
        // The Go tool's `timestamp` was `time.Now()` when it processed the row; one
        // reading of the clock per rows event.
        let processed_at = if go {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (now.as_secs() as i64, now.subsec_nanos())
        } else {
            (0, 0)
        };
        while !input.is_empty() {
            let row_start = input;
            let before = if kind != ChangeKind::Insert {
                Some(
                    decode_image(&entry.columns, &before_present, &mut input)
                        .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            let after = match (kind, &before) {
                (ChangeKind::Delete, _) => None,
                // MySQL's partial JSON updates: changes to the before image's documents.
                (_, Some(before)) if partial => Some(
                    decode_partial_after_image(&entry.columns, &after_present, before, &mut input)
                        .map_err(|e| e.to_string())?,
                ),
                _ => Some(
                    decode_image(&entry.columns, &after_present, &mut input)
                        .map_err(|e| e.to_string())?,
                ),
            };
            let go_row = if go {
                // A second pass over the same bytes with go-mysql's rules.
                let mut go_input = row_start;
                let go_before = if kind != ChangeKind::Insert {
                    Some(
                        decode_image_go(&entry.columns, &before_present, &mut go_input)
                            .map_err(|e| e.to_string())?,
                    )
                } else {
                    None
                };
                let go_after = match (kind, &before) {
                    (ChangeKind::Delete, _) => None,
                    (_, Some(before)) if partial => Some(
                        decode_partial_after_image_go(
                            &entry.columns,
                            &after_present,
                            before,
                            &mut go_input,
                        )
                        .map_err(|e| e.to_string())?,
                    ),
                    _ => Some(
                        decode_image_go(&entry.columns, &after_present, &mut go_input)
                            .map_err(|e| e.to_string())?,
                    ),
                };
                Some(Box::new(GoRow {
                    before: go_before,
                    after: go_after,
                    processed_at,
                }))
            } else {
                None
            };
            out.push(RowChange {
                kind,
                table: entry.schema.clone(),
                before,
                after,
                id: format!(
                    "{}:{}:{}",
                    here.file,
                    here.pos,
                    self.inner.map_or(0, |at| at.offset) + index as u64
                ),
                position: here.clone(),
                timestamp,
                gtid: self.txn_gtid.clone(),
                go: go_row,
            });
            index += 1;
        }
        Ok(out)
    }

    /// A row event of a watched table that cannot be turned into changes: keep what is
    /// known of it in the dead-letter file, count it, and go on.
    fn dead_letter_event(
        &self,
        rows: &RowsEventData<'_>,
        start_pos: u64,
        error: &str,
        schema: bool,
    ) {
        let Some(mapped) = self.schema.get(rows.table_id()) else {
            return;
        };
        log::error!(
            "row event at {}:{start_pos} (`{}`.`{}`) cannot be delivered: {error}; it is \
             written to the dead-letter file",
            self.file,
            mapped.database,
            mapped.table
        );
        self.stats.undeliverable(schema, &mapped.tasks);
        for &i in &mapped.tasks {
            let task = &self.config.tasks[i];
            let letter = DeadLetter {
                task_id: task.task_id.clone(),
                ids: vec![format!("{}:{start_pos}:*", self.file)],
                url: task.callback_url.to_string(),
                body: serde_json::json!({
                    "database": mapped.database,
                    "table": mapped.table,
                    "position": {"file": self.file, "pos": start_pos},
                    "gtid": self.txn_gtid.as_deref(),
                    "rows_data_bytes": rows.rows_data().len(),
                }),
                status: None,
                error: error.to_owned(),
                attempts: 0,
                failed_at: rfc3339_utc(unix_now()),
            };
            if let Err(e) = self.dead_letters.write(&letter) {
                log::error!("cannot write the dead-letter file: {e}");
            }
        }
    }
}

fn uuid(sid: &[u8; 16]) -> String {
    super::decode::format_uuid(sid)
}

/// The first keyword of a statement, upper-cased, after comments and whitespace.
fn first_word(query: &str) -> String {
    let mut s = query.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => s = rest[end + 2..].trim_start(),
                None => return String::new(),
            }
        } else if s.starts_with("--") || s.starts_with('#') {
            match s.find('\n') {
                Some(end) => s = s[end + 1..].trim_start(),
                None => return String::new(),
            }
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What the log may show of a DDL statement. MariaDB writes account statements to the
/// binlog as typed (`CREATE USER … IDENTIFIED BY 'plain text'`), and any statement may
/// carry data in its literals (a DEFAULT, a partition bound), so: `None` for account
/// statements and for statements that name no watched table (`watched`: lower-case
/// table names); otherwise the statement on one line with every string literal shown
/// as `'…'`.
fn ddl_for_log(query: &str, watched: &[String]) -> Option<String> {
    let masked = mask_literals(query);
    let words: Vec<String> = masked
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let account = match words.first().map(String::as_str) {
        Some("grant" | "revoke") => true,
        Some("set") => words.get(1).is_some_and(|w| w == "password"),
        // `CREATE OR REPLACE USER`, `DROP USER IF EXISTS`, `ALTER ROLE` …
        Some(_) => words
            .iter()
            .take(4)
            .any(|w| w == "user" || w == "role" || w == "password"),
        None => false,
    };
    if account || !words.iter().any(|w| watched.contains(w)) {
        return None;
    }
    Some(abbreviate(&masked))
}

/// `query` with the content of every quoted string ('…', "…") replaced by `…`. Handles
/// backslash escapes and doubled quotes; an unterminated string is masked to the end.
fn mask_literals(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '\'' && c != '"' {
            continue;
        }
        let quote = c;
        loop {
            match chars.next() {
                None => break,
                Some('\\') => {
                    chars.next();
                }
                Some(q) if q == quote => {
                    if chars.peek() == Some(&quote) {
                        chars.next();
                    } else {
                        break;
                    }
                }
                Some(_) => {}
            }
        }
        out.push('…');
        out.push(quote);
    }
    out
}

fn abbreviate(q: &str) -> String {
    let one_line: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

/// Hands the backfill chunks due at boundary `at` to the sink, each task's rows through
/// its row filter; how many chunks were due.
fn hand_over(
    handoff: &Handoff,
    config: &Config,
    stats: &SourceStats,
    at: &BinlogPosition,
    sink: &dyn Sink,
) -> Result<usize, SinkClosed> {
    let mut total = 0;
    for (chunk, dropped) in handoff.due(at) {
        let t = &config.tasks[chunk.task];
        let mut n = 0;
        for row in chunk.rows {
            // A task's row filter selects its backfilled rows too.
            if !crate::filter::wants(&[], t.filter.as_ref(), &row) {
                continue;
            }
            stats.captured(chunk.task, row.kind, 1);
            sink.deliver(chunk.task, row, None)?;
            n += 1;
        }
        (chunk.done)(n, dropped, at);
        total += 1;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_text_is_logged_only_for_watched_tables_with_literals_masked() {
        let watched = vec!["users".to_owned()];
        assert_eq!(
            ddl_for_log(
                "ALTER TABLE `shop`.`users` ADD note VARCHAR(9) DEFAULT 'it''s secret'",
                &watched
            )
            .as_deref(),
            Some("ALTER TABLE `shop`.`users` ADD note VARCHAR(9) DEFAULT '…'")
        );
        assert_eq!(
            ddl_for_log("CREATE TABLE users (a TEXT COMMENT \"x\\\"y\")", &watched).as_deref(),
            Some("CREATE TABLE users (a TEXT COMMENT \"…\")")
        );
        assert_eq!(
            ddl_for_log("DROP TABLE other", &watched),
            None,
            "not watched"
        );
        for account in [
            "CREATE USER 'users'@'%' IDENTIFIED BY 'pw'",
            "CREATE OR REPLACE USER users IDENTIFIED BY 'pw'",
            "ALTER USER users IDENTIFIED BY 'pw'",
            "DROP USER IF EXISTS users",
            "CREATE ROLE users",
            "GRANT SELECT ON shop.users TO 'x'@'%' IDENTIFIED BY 'pw'",
            "SET PASSWORD FOR users = PASSWORD('pw')",
        ] {
            assert_eq!(ddl_for_log(account, &watched), None, "{account}");
        }
        assert_eq!(mask_literals("'unterminated secret"), "'…'");
    }

    #[test]
    fn first_word_skips_comments() {
        assert_eq!(first_word("  /* x */ alter table t add c int"), "ALTER");
        assert_eq!(first_word("-- c\nDROP TABLE t"), "DROP");
        assert_eq!(first_word("BEGIN"), "BEGIN");
        assert_eq!(first_word("XA START 'x'"), "XA");
    }

    #[test]
    fn mysql_gtid_uuid_is_formatted() {
        let sid = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(uuid(&sid), "3e11fa47-71ca-11e1-9e33-c80aa9429562");
    }

    /// A sink that records what the reader hands it; `closed` makes it refuse.
    #[derive(Default)]
    struct Recorder {
        delivered: parking_lot::Mutex<Vec<(usize, Arc<RowChange>)>>,
        commits: parking_lot::Mutex<Vec<Checkpoint>>,
        closed: bool,
    }

    impl Sink for Recorder {
        fn deliver(
            &self,
            task: usize,
            change: Arc<RowChange>,
            _txn: Option<TxnMeta>,
        ) -> Result<(), SinkClosed> {
            if self.closed {
                return Err(SinkClosed);
            }
            self.delivered.lock().push((task, change));
            Ok(())
        }

        fn commit(&self, at: Checkpoint) {
            self.commits.lock().push(at);
        }
    }

    struct Setup {
        reader: Reader,
        stats: Arc<SourceStats>,
        dir: std::path::PathBuf,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A reader of one `orders` task (inserts only) that never connects anywhere.
    fn setup(name: &str) -> Setup {
        let dir =
            std::env::temp_dir().join(format!("pikachu-reader-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let yaml = format!(
            "database:\n  host: 127.0.0.1\n  port: 1\n  user: root\n  database: shop\n  server_id: 77\n\
             data_dir: {}\ntasks:\n  - task_id: orders\n    table_name: orders\n    \
             events: [insert]\n    callback_url: http://127.0.0.1:9/hook\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yaml"), yaml).expect("write config");
        let config = Arc::new(crate::config::load(&dir.join("config.yaml")).expect("config loads"));
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let dead_letters = Arc::new(DeadLetters::open(&config.data_dir).expect("dead-letter file"));
        let stats = Arc::new(SourceStats::new(config.tasks.len()));
        let start = Checkpoint {
            file: "binlog.000001".into(),
            pos: 4,
            gtid: None,
            server_id: None,
            gtid_set: None,
            backfills: Default::default(),
        };
        let reader = Reader::new(
            config,
            stats.clone(),
            dead_letters,
            Arc::new(Signal::new()),
            start,
        );
        Setup { reader, stats, dir }
    }

    /// On another MySQL server (a failover), the reader goes on after the GTID set it
    /// keeps, with COM_BINLOG_DUMP_GTID; without one it stops and says what is missing.
    #[test]
    fn a_mysql_failover_goes_on_after_the_gtid_set_or_says_why_not() {
        let mut s = setup("gtid-set");
        s.reader.server_id = Some(1);
        let Err(SessionEnd::Fatal(e)) = s.reader.follow_server(2) else {
            panic!("no GTID set: expected a fatal error");
        };
        assert!(e.to_string().contains("nor a MySQL GTID set"), "{e}");
        let set = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:mytag:1-2";
        s.reader.server_id = Some(1);
        s.reader.gtid_set = GtidSet::parse(set);
        assert!(s.reader.follow_server(2).is_ok());
        assert_eq!(
            s.reader.by_gtid_set.as_ref().map(ToString::to_string),
            Some(set.to_owned())
        );
        assert_eq!(s.reader.server_id, Some(2));
        // The request names each source and tag with its intervals.
        let sids: Vec<Sid<'static>> = s
            .reader
            .by_gtid_set
            .iter()
            .flat_map(GtidSet::sids)
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(sids.len(), 2);
    }

    /// A MySQL compressed transaction through the reader's event handling into a
    /// recording sink: every row of both inner rows events is handed over in order, with
    /// distinct ids at the payload's position, counted as captured, and one commit
    /// marks the end of the payload event.
    #[test]
    fn compressed_transaction_rows_reach_the_sink_and_commit_at_its_end() {
        use crate::source::payload::testing::*;

        let mut s = setup("payload");
        let sink = Recorder::default();
        let mut inner = event_bytes(19, 0, &table_map_full());
        let rows_at = inner.len() as u64;
        inner.extend(event_bytes(30, 0, &write_rows()));
        let second_at = inner.len() as u64;
        inner.extend(event_bytes(30, 0, &write_rows()));
        inner.extend(event_bytes(16, 0, &42u64.to_le_bytes()));
        let compressed = zstd::encode_all(&inner[..], 3).expect("zstd compresses");
        let outer = payload_event(0, inner.len() as u64, &compressed);
        let end = outer.header().log_pos() as u64;
        let start_pos = end - outer.header().event_size() as u64;

        if s.reader.handle(&outer, &sink).is_err() {
            panic!("the compressed transaction was refused");
        }
        let delivered = sink.delivered.lock();
        let ids: Vec<&str> = delivered.iter().map(|(_, c)| c.id.as_str()).collect();
        let want = [rows_at, rows_at + 1, second_at, second_at + 1]
            .map(|i| format!("binlog.000001:{start_pos}:{i}"));
        assert_eq!(ids, want, "every row, in binlog order");
        for (task, change) in delivered.iter() {
            assert_eq!(*task, 0);
            assert_eq!(
                change.position,
                BinlogPosition::new("binlog.000001", start_pos)
            );
            assert_eq!(change.table.table, "orders");
            assert_eq!(change.kind, ChangeKind::Insert);
        }
        let commits = sink.commits.lock();
        assert_eq!(commits.len(), 1, "one transaction, one commit: {commits:?}");
        assert_eq!(
            commits[0].position(),
            BinlogPosition::new("binlog.000001", end)
        );
        assert!(!s.reader.in_txn);
        let mut d = crate::stats::StatsData {
            tasks: vec![crate::stats::TaskStats::default()],
            ..Default::default()
        };
        s.stats.fill_for_test(&mut d);
        assert_eq!(d.tasks[0].captured, [4, 0, 0]);
        assert!(d.last_event_time.is_some());
    }

    /// A sink that is gone stops the reader for good (it is not a lost connection to
    /// retry), and nothing is committed past the changes it could not take.
    #[test]
    fn a_closed_sink_is_fatal_and_commits_nothing() {
        use crate::source::payload::testing::*;

        let mut s = setup("closed");
        let sink = Recorder {
            closed: true,
            ..Recorder::default()
        };
        let mut inner = event_bytes(19, 0, &table_map_full());
        inner.extend(event_bytes(30, 0, &write_rows()));
        inner.extend(event_bytes(16, 0, &42u64.to_le_bytes()));
        let compressed = zstd::encode_all(&inner[..], 3).expect("zstd compresses");
        let outer = payload_event(0, inner.len() as u64, &compressed);
        match s.reader.handle(&outer, &sink) {
            Err(SessionEnd::Fatal(ReaderError::SinkClosed(_))) => {}
            Err(SessionEnd::Fatal(e)) => panic!("another fatal error: {e}"),
            Err(SessionEnd::Lost(why)) => panic!("taken for a lost connection: {why}"),
            Err(SessionEnd::Stopped) | Ok(()) => panic!("the reader went on"),
        }
        assert!(sink.commits.lock().is_empty());
    }
}
