//! What the server is and whether pikachu can read it: version, binlog settings,
//! privileges, binary logs, and where to start reading.
//!
//! Used at startup (refuse to run on a server without `log_bin` or with a
//! `binlog_format` other than ROW) and by `pikachu check`. Only queries; it never
//! starts the binlog stream.

use mysql::prelude::Queryable;

use crate::checkpoint::Checkpoint;
use crate::config::StartFrom;
use crate::event::BinlogPosition;
use crate::source::files::FilePlan;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Could not connect or log in (the message names the cause and the fix).
    #[error(transparent)]
    Connect(#[from] crate::source::connect::ConnectError),
    /// A query failed.
    #[error("cannot read {what}: {error}")]
    Query {
        what: &'static str,
        #[source]
        error: mysql::Error,
    },
    /// A server setting makes reading impossible: the message names the fix.
    #[error("{0}")]
    Setting(String),
    /// The position to start from is not on the server (purged, or never existed).
    #[error("{0}")]
    PositionGone(String),
}

/// The binlog-related settings of the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub is_mariadb: bool,
    pub log_bin: bool,
    pub binlog_format: String,
    pub binlog_row_image: String,
    /// `None` on servers without the variable (MySQL 5.7).
    pub binlog_row_metadata: Option<String>,
    /// MariaDB's `log_bin_compress`: compressed events, which the reader decompresses.
    pub log_bin_compress: bool,
    pub binlog_checksum: String,
    /// `@@server_id`: whose binlog a position is in.
    pub server_id: u32,
}

fn query_err(what: &'static str) -> impl Fn(mysql::Error) -> PreflightError {
    move |error| PreflightError::Query { what, error }
}

fn variable(conn: &mut mysql::Conn, name: &str) -> Result<Option<String>, PreflightError> {
    let row: Option<(String, Option<String>)> = conn
        .exec_first("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .map_err(query_err("server variables"))?;
    Ok(row.and_then(|(_, v)| v))
}

impl ServerInfo {
    pub fn read(conn: &mut mysql::Conn) -> Result<ServerInfo, PreflightError> {
        let version: String = variable(conn, "version")?.unwrap_or_default();
        let on = |v: Option<String>| v.is_some_and(|v| v.eq_ignore_ascii_case("ON") || v == "1");
        Ok(ServerInfo {
            is_mariadb: version.to_ascii_lowercase().contains("mariadb"),
            version,
            log_bin: on(variable(conn, "log_bin")?),
            binlog_format: variable(conn, "binlog_format")?
                .unwrap_or_default()
                .to_ascii_uppercase(),
            binlog_row_image: variable(conn, "binlog_row_image")?
                .unwrap_or_else(|| "FULL".into())
                .to_ascii_uppercase(),
            binlog_row_metadata: variable(conn, "binlog_row_metadata")?
                .map(|v| v.to_ascii_uppercase()),
            log_bin_compress: on(variable(conn, "log_bin_compress")?),
            binlog_checksum: variable(conn, "binlog_checksum")?.unwrap_or_default(),
            server_id: variable(conn, "server_id")?
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
        })
    }

    /// The settings without which pikachu cannot run, each with the fix.
    pub fn blocking_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.log_bin {
            p.push(
                "log_bin is OFF: start the server with --log-bin (log_bin cannot be changed \
                 at runtime)"
                    .to_owned(),
            );
        }
        if self.binlog_format != "ROW" {
            p.push(format!(
                "binlog_format is {}, pikachu needs ROW: SET GLOBAL binlog_format = 'ROW' and \
                 put binlog_format=ROW in the server's configuration",
                if self.binlog_format.is_empty() {
                    "unknown"
                } else {
                    &self.binlog_format
                }
            ));
        }
        p
    }

    /// Settings pikachu works with, but not at its best.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.binlog_row_image != "FULL" {
            w.push(format!(
                "binlog_row_image is {}: row images carry only some columns, and webhooks \
                 carry only those (SET GLOBAL binlog_row_image = 'FULL' for whole rows)",
                self.binlog_row_image
            ));
        }
        if let Some(m) = &self.binlog_row_metadata {
            if m != "FULL" {
                w.push(format!(
                    "binlog_row_metadata is {m}: column names come from information_schema, \
                     which only knows the current table definition (SET GLOBAL \
                     binlog_row_metadata = 'FULL' to carry names in the binlog)"
                ));
            }
        }
        w
    }
}

/// `SHOW BINARY LOGS`: file names and sizes, oldest first.
pub fn binary_logs(conn: &mut mysql::Conn) -> Result<Vec<(String, u64)>, PreflightError> {
    let rows: Vec<mysql::Row> = conn
        .query("SHOW BINARY LOGS")
        .map_err(query_err("SHOW BINARY LOGS"))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let name: Option<String> = r.get(0);
            let size: Option<u64> = r.get(1);
            Some((name?, size.unwrap_or(0)))
        })
        .collect())
}

/// The server's current write position (`SHOW MASTER STATUS`, or MySQL 8.4's
/// `SHOW BINARY LOG STATUS`).
pub fn current_position(conn: &mut mysql::Conn) -> Result<BinlogPosition, PreflightError> {
    master_status(conn).map(|(at, _)| at)
}

/// The current position and, on MySQL, the GTID set executed up to it, read together.
fn master_status(
    conn: &mut mysql::Conn,
) -> Result<(BinlogPosition, Option<String>), PreflightError> {
    let row: Option<mysql::Row> = match conn.query_first("SHOW BINARY LOG STATUS") {
        Ok(r) => r,
        Err(_) => conn
            .query_first("SHOW MASTER STATUS")
            .map_err(query_err("SHOW MASTER STATUS"))?,
    };
    let row = row.ok_or_else(|| {
        PreflightError::Setting("SHOW MASTER STATUS is empty: the binary log is not enabled".into())
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    // MySQL's Executed_Gtid_Set; MariaDB has four columns.
    let executed: Option<String> = row.get_opt(4).and_then(Result::ok);
    match (file, pos) {
        (Some(f), Some(p)) => Ok((BinlogPosition::new(f, p), executed)),
        _ => Err(PreflightError::Setting(
            "SHOW MASTER STATUS returned no position".into(),
        )),
    }
}

/// Where reading starts: the checkpoint when there is one, else `start_from`. A position
/// that is no longer on the server is an error, never silently skipped.
/// `server_id` is the server's own: a checkpoint of another server's binlog is going on
/// by its GTID state (the reader switches), and positions chosen here are this one's.
pub fn resolve_start(
    conn: &mut mysql::Conn,
    checkpoint: Option<&Checkpoint>,
    start_from: &StartFrom,
    server_id: u32,
) -> Result<Checkpoint, PreflightError> {
    let logs = binary_logs(conn)?;
    let check = |file: &str, pos: u64, origin: &str| -> Result<(), PreflightError> {
        match logs.iter().find(|(f, _)| f == file) {
            Some((_, size)) if pos <= *size => Ok(()),
            Some((_, size)) => Err(PreflightError::PositionGone(format!(
                "{origin} position {file}:{pos} is past the end of that binary log ({size} bytes)"
            ))),
            None => Err(PreflightError::PositionGone(format!(
                "{origin} position {file}:{pos} is no longer on the server (binary logs there: \
                 {}); the events after it were purged and cannot be delivered. To accept the \
                 gap, move the checkpoint file away and choose `start_from` (latest or \
                 earliest); to avoid it, keep binary logs longer (expire_logs_days / \
                 binlog_expire_logs_seconds)",
                match (logs.first(), logs.last()) {
                    (Some(a), Some(b)) => format!("{} … {}", a.0, b.0),
                    _ => "none".to_owned(),
                }
            ))),
        }
    };
    if let Some(cp) = checkpoint {
        // Saved before the first transaction of a start by GTID: that start again.
        if cp.file.is_empty() {
            return Ok(cp.clone());
        }
        if let Some(was) = cp.server_id.filter(|was| *was != server_id) {
            let state = cp
                .gtid
                .as_deref()
                .filter(|g| crate::checkpoint::parse_mariadb_gtid_state(g).is_some());
            let set = cp
                .gtid_set
                .as_deref()
                .filter(|s| crate::checkpoint::GtidSet::parse(s).is_some());
            let after = match (state, set) {
                (Some(state), _) => format!("GTID state {state}"),
                (None, Some(set)) => format!("GTID set {set}"),
                (None, None) => {
                    return Err(PreflightError::PositionGone(format!(
                        "the checkpoint {}:{} is a position in the binlog of server_id {was}, \
                         and this server is server_id {server_id}; the checkpoint has neither \
                         a MariaDB GTID state nor a MySQL GTID set, so pikachu cannot tell \
                         where to go on here; to start over on this server, move the \
                         checkpoint file away and choose start_from",
                        cp.file, cp.pos
                    )))
                }
            };
            log::warn!(
                "the checkpoint {}:{} is a position in the binlog of server_id {was}, and this \
                 server is server_id {server_id} (a failover?): going on after {after}",
                cp.file,
                cp.pos,
            );
            return Ok(Checkpoint {
                file: String::new(),
                pos: 4,
                gtid: cp.gtid.clone(),
                server_id: Some(server_id),
                gtid_set: cp.gtid_set.clone(),
                backfills: Default::default(),
            });
        }
        check(&cp.file, cp.pos, "the checkpoint")?;
        return Ok(Checkpoint {
            server_id: Some(server_id),
            gtid_set: None,
            backfills: Default::default(),
            ..cp.clone()
        });
    }
    let here = |file: String, pos: u64| Checkpoint {
        file,
        pos,
        gtid: None,
        server_id: Some(server_id),
        gtid_set: None,
        backfills: Default::default(),
    };
    match start_from {
        StartFrom::Latest => {
            let (p, executed) = master_status(conn)?;
            Ok(Checkpoint {
                // Empty with gtid_mode OFF: no set to go on from.
                gtid_set: executed.filter(|s| {
                    !s.trim().is_empty() && crate::checkpoint::GtidSet::parse(s).is_some()
                }),
                ..here(p.file, p.pos)
            })
        }
        StartFrom::Earliest => match logs.first() {
            Some((f, _)) => Ok(here(f.clone(), 4)),
            None => Err(PreflightError::Setting(
                "the server has no binary logs".into(),
            )),
        },
        StartFrom::Position { file, pos } => {
            check(file, *pos, "the start_from")?;
            Ok(here(file.clone(), *pos))
        }
        StartFrom::Gtid(state) => Ok(Checkpoint {
            file: String::new(),
            pos: 4,
            gtid: Some(state.clone()),
            server_id: Some(server_id),
            gtid_set: None,
            backfills: Default::default(),
        }),
        StartFrom::GtidSet(set) => Ok(Checkpoint {
            file: String::new(),
            pos: 4,
            gtid: None,
            server_id: Some(server_id),
            gtid_set: Some(set.clone()),
            backfills: Default::default(),
        }),
    }
}

/// When `checkpoint`'s binlog file is no longer on the server: the archived files that
/// lead from it to the first file the server still has, or why the archive in `dir`
/// cannot bridge the gap. Files are matched by name (`mysql-bin.000042`): the archive
/// must hold the checkpoint's file and every file after it up to the server's first one.
pub fn archive_plan(
    conn: &mut mysql::Conn,
    dir: &std::path::Path,
    checkpoint: &Checkpoint,
) -> Result<FilePlan, PreflightError> {
    let logs = binary_logs(conn)?;
    let gone = |why: String| {
        PreflightError::PositionGone(format!(
            "the checkpoint position {}:{} is no longer on the server, and binlog_archive \
             {} cannot bridge the gap: {why}",
            checkpoint.file,
            checkpoint.pos,
            dir.display()
        ))
    };
    let first_live = logs
        .first()
        .map(|(f, _)| f.clone())
        .ok_or_else(|| gone("the server has no binary logs".into()))?;
    let entries = std::fs::read_dir(dir).map_err(|e| gone(format!("cannot list it: {e}")))?;
    let mut archived: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    archived.sort();
    let base = |p: &std::path::Path| crate::source::files::file_name(p);
    let number = |name: &str| -> Option<(String, u64)> {
        let (stem, n) = name.rsplit_once('.')?;
        Some((stem.to_owned(), n.parse().ok()?))
    };
    let (stem, from_n) = number(&checkpoint.file)
        .ok_or_else(|| gone(format!("{} has no numbered name", checkpoint.file)))?;
    let live_n = match number(&first_live) {
        Some((s, n)) if s == stem => n,
        _ => {
            return Err(gone(format!(
                "the server's binary logs ({first_live}) have another name"
            )))
        }
    };
    let mut files = Vec::new();
    for n in from_n..live_n {
        let wanted = format!("{stem}.{n:06}");
        match archived
            .iter()
            .find(|p| number(&base(p)) == Some((stem.clone(), n)))
        {
            Some(p) => files.push(p.clone()),
            None => {
                return Err(gone(format!(
                    "{wanted} is missing (the archive must hold {} up to the file before \
                     {first_live}, the server's first)",
                    checkpoint.file
                )))
            }
        }
    }
    if files.is_empty() {
        return Err(gone(format!(
            "the server's first file {first_live} is not after it"
        )));
    }
    Ok(FilePlan {
        files,
        from: Some(checkpoint.position()),
        to: None,
    })
}

/// The column names a task's `columns`, `exclude_columns`, `on_change` and `filter`
/// name that its table (when it exists) does not have: one sentence per task with a
/// problem, naming the task, the key and the table's real columns.
pub fn unknown_task_columns(
    conn: &mut mysql::Conn,
    tasks: &[crate::config::Task],
) -> Result<Vec<String>, PreflightError> {
    let mut problems = Vec::new();
    for t in tasks {
        let named = !matches!(t.columns, crate::filter::Columns::All)
            || !t.on_change.is_empty()
            || t.filter.is_some();
        if !named {
            continue;
        }
        let columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND \
                 TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&t.database, &t.table),
            )
            .map_err(query_err("the tasks' table columns"))?;
        if columns.is_empty() {
            // No such table (yet): said elsewhere; nothing to compare with.
            continue;
        }
        let has = |name: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(name));
        let mut unknown: Vec<String> = Vec::new();
        let key = match &t.columns {
            crate::filter::Columns::Except(_) => "exclude_columns",
            _ => "columns",
        };
        for name in t.columns.unknown(&columns) {
            unknown.push(format!("{name} ({key})"));
        }
        for name in t.on_change.iter().filter(|n| !has(n)) {
            unknown.push(format!("{name} (on_change)"));
        }
        if let Some(f) = &t.filter {
            for name in f.columns().into_iter().filter(|n| !has(n)) {
                unknown.push(format!("{name} (filter)"));
            }
        }
        if !unknown.is_empty() {
            problems.push(format!(
                "task {}: `{}`.`{}` has no column {}; its columns are {}",
                t.task_id,
                t.database,
                t.table,
                unknown.join(", "),
                columns.join(", ")
            ));
        }
    }
    Ok(problems)
}

/// Which of `tables` (database, table) the server does not have, in one query. The
/// names are compared without regard to case, so that a server with
/// `lower_case_table_names` set does not make existing tables look missing.
pub fn missing_tables<'a>(
    conn: &mut mysql::Conn,
    tables: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(&'a str, &'a str)>, PreflightError> {
    let wanted: Vec<(&str, &str)> = tables.into_iter().collect();
    let mut databases: Vec<&str> = wanted.iter().map(|(d, _)| *d).collect();
    databases.sort_unstable();
    databases.dedup();
    if databases.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; databases.len()].join(", ");
    let existing: Vec<(String, String)> = conn
        .exec(
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA IN ({marks})"
            ),
            databases,
        )
        .map_err(query_err("the list of tables"))?;
    Ok(wanted
        .into_iter()
        .filter(|(db, table)| {
            !existing
                .iter()
                .any(|(d, t)| d.eq_ignore_ascii_case(db) && t.eq_ignore_ascii_case(table))
        })
        .collect())
}
