//! Two or more instances, one delivers: the lease that elects the active instance of an
//! `ha.group` through the database itself, and the checkpoint row the instances share.
//!
//! The lease is MySQL's `GET_LOCK('pikachu:<group>')` on a session of its own. The
//! session's `wait_timeout` is `ha.lease_timeout`, and a keeper thread pings it three
//! times per lease timeout: a holder that dies, is killed, loses the network or is frozen
//! (SIGSTOP, a VM pause) stops pinging, the server drops its session and with it the
//! lock, and a standby's next `GET_LOCK` succeeds. The keeper that finds its lease gone
//! raises the fence: the engine then stops reading and gives up in-flight deliveries at
//! once. This module decides who is active and keeps the shared checkpoint; it never
//! reads the binlog or sends webhooks.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::checkpoint::{Checkpoint, CheckpointError, Store};
use crate::config::DatabaseConfig;
use crate::shutdown::{Fence, Signal};
use crate::source::connect::{ConnectError, Connector};
use crate::stats::HaStats;

/// How often a standby asks for the lease.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("lease {name}: {message}")]
    Lease { name: String, message: String },
}

/// The lock name of a group.
pub fn lock_name(group: &str) -> String {
    format!("pikachu:{group}")
}

/// A held lease: the session that holds the lock.
pub struct Lease {
    conn: mysql::Conn,
    name: String,
}

/// Why `acquire` returned without a lease.
pub enum Waited {
    Got(Lease),
    /// Stop was requested while waiting.
    Stopped,
}

/// Waits as a standby until this instance holds the lease of `group`, or `stop`.
/// Connection trouble is retried (a standby outlives its database's restarts); a server
/// that cannot give locks at all is an error.
pub fn acquire(
    db: &DatabaseConfig,
    group: &str,
    lease_timeout: Duration,
    stop: &Signal,
    stats: &HaStats,
) -> Result<Waited, HaError> {
    let name = lock_name(group);
    let connector = Connector::new(db, Some(ping_timeout(lease_timeout)));
    let mut said_holder: Option<u64> = None;
    let mut said_error = false;
    loop {
        if stop.is_raised() {
            return Ok(Waited::Stopped);
        }
        match try_acquire(&connector, &name, lease_timeout) {
            Ok(Ok(lease)) => return Ok(Waited::Got(lease)),
            Ok(Err(holder)) => {
                stats.set_holder(holder);
                if said_holder != holder {
                    log::info!(
                        "standby: the lease {name} is held by {} (its database connection \
                         id); taking over when it is released",
                        holder.map_or("another instance".to_owned(), |h| format!("connection {h}"))
                    );
                    said_holder = holder;
                }
                said_error = false;
            }
            Err(e) => {
                stats.lease_error();
                if !said_error {
                    log::warn!("standby: cannot ask for the lease {name}: {e}; asking again");
                    said_error = true;
                }
            }
        }
        stop.sleep(POLL);
    }
}

/// How often the holder pings, and how long one ping may take: a third of the lease.
fn ping_timeout(lease_timeout: Duration) -> Duration {
    (lease_timeout / 3).max(Duration::from_secs(1))
}

/// How long after its last good ping a holder still sends: five sixths of the lease, so
/// that it has stopped before the server can drop its session (`wait_timeout` is the
/// whole lease, counted from that same ping) and a standby can take over.
pub fn fence_age(lease_timeout: Duration) -> Duration {
    lease_timeout * 5 / 6
}

/// `Ok(Ok(lease))`, or `Ok(Err(holder connection id))` when another session holds it.
#[allow(clippy::result_large_err)]
fn try_acquire(
    connector: &Connector,
    name: &str,
    lease_timeout: Duration,
) -> Result<Result<Lease, Option<u64>>, LeaseFailure> {
    let mut conn = connector.connect()?;
    // The server drops the session (and the lock) of a holder silent this long.
    conn.query_drop(format!(
        "SET SESSION wait_timeout = {}",
        lease_timeout.as_secs().max(1)
    ))?;
    let got: Option<Option<i64>> = conn.exec_first("SELECT GET_LOCK(?, 0)", (name,))?;
    match got.flatten() {
        Some(1) => Ok(Ok(Lease {
            conn,
            name: name.to_owned(),
        })),
        Some(_) => {
            let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (name,))?;
            Ok(Err(holder.flatten()))
        }
        None => Err(LeaseFailure::Refused),
    }
}

#[derive(Debug, thiserror::Error)]
enum LeaseFailure {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Query(#[from] mysql::Error),
    #[error("GET_LOCK returned NULL (the server cannot give named locks)")]
    Refused,
}

impl Lease {
    /// Starts the keeper: it pings the lease session every third of `lease_timeout`,
    /// renewing `validity` after each good ping, and raises `lost` when the lease is
    /// gone (the session failed or is not the holder any more). Raising `done` ends it,
    /// releasing the lock.
    pub fn keep(
        self,
        lease_timeout: Duration,
        validity: Arc<Fence>,
        lost: Arc<Signal>,
        done: Arc<Signal>,
        stats: Arc<HaStats>,
    ) -> std::io::Result<JoinHandle<()>> {
        let Lease { mut conn, name } = self;
        std::thread::Builder::new()
            .name("lease".into())
            .spawn(move || {
                let every = ping_timeout(lease_timeout);
                loop {
                    if !done.sleep(every) {
                        // Released so that a standby takes over at once.
                        let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (&name,));
                        return;
                    }
                    let held: Result<Option<Option<i64>>, _> =
                        conn.exec_first("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", (&name,));
                    let why = match held {
                        Ok(Some(Some(1))) if validity.holds() => {
                            validity.renew();
                            continue;
                        }
                        // Held, but after a pause longer than the fence's age: the
                        // server may have given it away and back meanwhile.
                        Ok(Some(Some(1))) => "this process was paused too long".to_owned(),
                        Ok(_) => "another session holds it now".to_owned(),
                        Err(e) => format!("its database session failed ({e})"),
                    };
                    stats.lease_lost();
                    log::error!(
                        "lost the lease {name}: {why}; stopping delivery now (another instance \
                         takes over)"
                    );
                    lost.raise();
                    return;
                }
            })
    }
}

/// The checkpoint as a row of a table on the database server, keyed by group, so that
/// whichever instance is active goes on where the last active left off.
pub struct MysqlStore {
    connector: Connector,
    names: (String, String),
    /// `schema`.`table`, quoted.
    table: String,
    shown: String,
    key: String,
    conn: parking_lot::Mutex<Option<mysql::Conn>>,
}

impl MysqlStore {
    /// Creates the table when missing (when the account may), and checks that it can
    /// be read and written.
    pub fn open(
        db: &DatabaseConfig,
        schema: &str,
        table: &str,
        key: &str,
    ) -> Result<MysqlStore, CheckpointError> {
        let store = MysqlStore {
            connector: Connector::new(db, None),
            names: (schema.to_owned(), table.to_owned()),
            table: format!("`{schema}`.`{table}`"),
            shown: format!("{schema}.{table}"),
            key: key.to_owned(),
            conn: parking_lot::Mutex::new(None),
        };
        store.with_conn(|conn, table| {
            let exists: Option<String> = conn.exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
                 TABLE_NAME = ?",
                (schema, table),
            )?;
            if exists.is_none() {
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{schema}`"))?;
                conn.query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS {} ({CHECKPOINT_COLUMNS})",
                    store.table
                ))?;
                log::info!("created the checkpoint table {}", store.shown);
            }
            let _ = table;
            Ok(())
        })?;
        Ok(store)
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut mysql::Conn, &str) -> Result<T, mysql::Error>,
    ) -> Result<T, CheckpointError> {
        let fail = |message: String| CheckpointError::Table {
            table: self.shown.clone(),
            message,
        };
        let mut slot = self.conn.lock();
        if slot.is_none() {
            let mut conn = self.connector.connect().map_err(|e| fail(e.to_string()))?;
            // pikachu's own writes need not be in the binlog it reads; an account
            // without the privilege writes them there (harmless: no task watches the
            // table).
            if conn.query_drop("SET SESSION sql_log_bin = 0").is_err() {
                log::debug!(
                    "checkpoint writes to {} are binlogged (the account may not SET \
                     sql_log_bin)",
                    self.shown
                );
            }
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(fail("no connection".into()));
        };
        let result = f(conn, &self.shown);
        if result.is_err() {
            // Reopened at the next use.
            *slot = None;
        }
        result.map_err(|e| {
            let hint = match &e {
                mysql::Error::MySqlError(me) if [1142, 1044, 1227].contains(&me.code) => {
                    "; grant the account SELECT, INSERT, UPDATE (and CREATE, to create it) on \
                     that table"
                }
                _ => "",
            };
            fail(format!("{e}{hint}"))
        })
    }
}

/// The checkpoint table's columns.
const CHECKPOINT_COLUMNS: &str = "name VARCHAR(64) NOT NULL PRIMARY KEY, \
     file VARCHAR(255) NOT NULL, pos BIGINT UNSIGNED NOT NULL, gtid TEXT NULL, \
     server_id INT UNSIGNED NULL, gtid_set TEXT NULL, backfills TEXT NULL, \
     saved_at TIMESTAMP(6) NOT NULL";

type Row = (
    String,
    u64,
    Option<String>,
    Option<u32>,
    Option<String>,
    Option<String>,
);

/// The key of a group's row: the group, or `default` without one.
pub fn checkpoint_key(group: Option<&str>) -> &str {
    group.unwrap_or("default")
}

/// The checkpoint row `key` of `schema`.`table`, read on `conn` (also by `check`, which
/// creates nothing).
pub fn read_checkpoint(
    conn: &mut mysql::Conn,
    schema: &str,
    table: &str,
    key: &str,
) -> mysql::Result<Option<Checkpoint>> {
    let row: Option<Row> = conn.exec_first(
        format!(
            "SELECT file, pos, gtid, server_id, gtid_set, backfills FROM `{schema}`.`{table}` \
             WHERE name = ?"
        ),
        (key,),
    )?;
    Ok(row.map(
        |(file, pos, gtid, server_id, gtid_set, backfills)| Checkpoint {
            file,
            pos,
            gtid,
            server_id,
            gtid_set,
            // Written by pikachu as JSON; unreadable (edited by hand) means no backfill to
            // go on with, which at worst sends rows again.
            backfills: backfills
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default(),
        },
    ))
}

impl Store for MysqlStore {
    fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let (schema, table) = self.names.clone();
        let key = self.key.clone();
        self.with_conn(|conn, _| read_checkpoint(conn, &schema, &table, &key))
    }

    fn save(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let key = self.key.clone();
        self.with_conn(|conn, _| {
            conn.exec_drop(
                format!(
                    "INSERT INTO {} (name, file, pos, gtid, server_id, gtid_set, backfills, \
                     saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(6)) ON DUPLICATE KEY UPDATE \
                     file = VALUES(file), pos = VALUES(pos), gtid = VALUES(gtid), server_id = \
                     VALUES(server_id), gtid_set = VALUES(gtid_set), backfills = \
                     VALUES(backfills), saved_at = VALUES(saved_at)",
                    self.table
                ),
                (
                    key,
                    &cp.file,
                    cp.pos,
                    &cp.gtid,
                    cp.server_id,
                    &cp.gtid_set,
                    (!cp.backfills.is_empty())
                        .then(|| serde_json::to_string(&cp.backfills).unwrap_or_default()),
                ),
            )
        })
    }

    fn describe(&self) -> String {
        format!("{} (row {})", self.shown, self.key)
    }
}
