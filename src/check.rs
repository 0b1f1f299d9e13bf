//! `pikachu check`: everything that can be checked without delivering anything, one
//! line per check (`OK`, `WARN` or `FAIL`, what was checked, and for a failure the exact
//! statement or setting that fixes it).
//!
//! It only reads: it never starts a binlog dump (that would take over the dump thread of
//! a running pikachu with the same `server_id`), never creates `data_dir` and never
//! sends a request to a callback URL (it only opens and closes a TCP connection).
//!
//! Exit status: 0 when nothing failed (warnings allowed), 3 when the database is not
//! usable, 1 when only something else failed (e.g. `data_dir`).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use ::http::Uri;
use mysql::prelude::Queryable;

use crate::checkpoint;
use crate::config::{host_port, Config, Task, ValueMode};
use crate::exit::Exit;
use crate::source::mysql_opts;
use crate::source::preflight::{self, ServerInfo};

/// How long the reachability probe of a callback host may take.
const CALLBACK_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Server error codes the checks tell apart.
const ER_DBACCESS_DENIED: u16 = 1044;
const ER_ACCESS_DENIED: u16 = 1045;
const ER_BAD_DB: u16 = 1049;
const ER_TABLEACCESS_DENIED: u16 = 1142;
const ER_NO_SUCH_TABLE: u16 = 1146;
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
const ER_NO_BINARY_LOGGING: u16 = 1381;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// Collects the lines and remembers what failed.
struct Report<'a> {
    out: &'a mut dyn Write,
    failed_db: usize,
    failed_other: usize,
    warnings: usize,
}

impl Report<'_> {
    fn line(&mut self, level: Level, what: &str, detail: &str) {
        let tag = match level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        let sep = if detail.is_empty() { "" } else { ": " };
        // A closed stdout (`pikachu check | head`) must not turn into a panic.
        let _ = writeln!(self.out, "{tag} {what}{sep}{detail}");
    }
    fn ok(&mut self, what: &str, detail: &str) {
        self.line(Level::Ok, what, detail);
    }
    fn warn(&mut self, what: &str, detail: &str) {
        self.warnings += 1;
        self.line(Level::Warn, what, detail);
    }
    /// A failure that makes the database unusable for pikachu (exit 3).
    fn fail_db(&mut self, what: &str, detail: &str) {
        self.failed_db += 1;
        self.line(Level::Fail, what, detail);
    }
    fn fail(&mut self, what: &str, detail: &str) {
        self.failed_other += 1;
        self.line(Level::Fail, what, detail);
    }
}

/// Runs every check for `cfg` (already loaded and valid) and writes one line per check
/// to `out`; returns the exit status.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Exit {
    let mut r = Report {
        out,
        failed_db: 0,
        failed_other: 0,
        warnings: 0,
    };
    check_local(cfg, &mut r);
    check_database(cfg, &mut r);
    let status = if r.failed_db > 0 {
        Exit::Database
    } else if r.failed_other > 0 {
        Exit::Runtime
    } else {
        Exit::Ok
    };
    let failed = r.failed_db + r.failed_other;
    if failed == 0 {
        eprintln!(
            "pikachu check: all checks passed{}",
            match r.warnings {
                0 => String::new(),
                n => format!(" ({n} warnings)"),
            }
        );
    } else {
        let noun = if failed == 1 { "check" } else { "checks" };
        eprintln!(
            "pikachu check: {failed} {noun} failed (exit status {})",
            status.code()
        );
    }
    status
}

/// Checks that need no database: callback URLs, data_dir, the health port.
fn check_local(cfg: &Config, r: &mut Report) {
    for t in &cfg.tasks {
        check_callback(t, r);
    }
    check_value_modes(cfg, r);
    check_data_dir(&cfg.data_dir, r);
    if cfg.server.enabled {
        let addr = SocketAddr::new(cfg.server.bind, cfg.server.port);
        match TcpListener::bind(addr) {
            Ok(_) => r.ok(
                "health server port",
                &format!(
                    "{} is free (GET {} and /metrics will be served there)",
                    cfg.server.port, cfg.server.path
                ),
            ),
            Err(e) => r.warn(
                "health server port",
                &format!(
                    "cannot listen on {addr}: {e}; if pikachu is already running that is why, \
                     otherwise choose another server.port"
                ),
            ),
        }
    }
}

/// Which tasks send which values (`values:`), one line per mode in use, so that a
/// migration from the Go tool can be followed task by task.
fn check_value_modes(cfg: &Config, r: &mut Report) {
    for mode in [ValueMode::Default, ValueMode::Go] {
        let tasks: Vec<&str> = cfg
            .tasks
            .iter()
            .filter(|t| t.values == mode)
            .map(|t| t.task_id.as_str())
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let what = match mode {
            ValueMode::Default => "the SPEC's values",
            ValueMode::Go => "the Go tool's values (go-mysql's decoding, README \"values: go\")",
        };
        r.ok(
            &format!("values: {}", mode.as_str()),
            &format!("{what} for task(s) {}", tasks.join(", ")),
        );
    }
}

/// The URL without user info and query, which may carry credentials.
fn shown_url(url: &Uri) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}{}",
        url.scheme_str().unwrap_or("http"),
        url.host().unwrap_or_default(),
        url.path(),
        if url.query().is_some() { "?…" } else { "" }
    )
}

fn check_callback(t: &Task, r: &mut Report) {
    let what = format!("task {} callback URL", t.task_id);
    let shown = shown_url(&t.callback_url);
    let (host, port) = host_port(&t.callback_url);
    // A receiver that is down is not a configuration error (deliveries wait and retry),
    // so reachability is a warning.
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            r.warn(&what, &format!("{shown}: cannot resolve {host}: {e}"));
            return;
        }
    };
    let mut last_error = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CALLBACK_CONNECT_TIMEOUT) {
            Ok(_) => {
                r.ok(
                    &what,
                    &format!("{shown} ({host}:{port} accepts connections)"),
                );
                return;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let why = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
    r.warn(
        &what,
        &format!(
            "{shown}: cannot connect to {host}:{port} ({why}); deliveries will be retried and \
             then dead-lettered until the receiver is up"
        ),
    );
}

fn check_data_dir(dir: &Path, r: &mut Report) {
    let what = "data_dir";
    // The directory itself when it exists, else the nearest ancestor that does (pikachu
    // creates the rest at start); `check` creates nothing that stays.
    let mut probe_dir = dir.to_path_buf();
    let exists = dir.is_dir();
    if !exists {
        if dir.exists() {
            r.fail(
                what,
                &format!("{} exists and is not a directory", dir.display()),
            );
            return;
        }
        while !probe_dir.is_dir() {
            match probe_dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe_dir = p.to_path_buf(),
                _ => {
                    probe_dir = std::path::PathBuf::from(".");
                    break;
                }
            }
        }
    }
    let probe = probe_dir.join(format!(".pikachu-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            r.fail(
                what,
                &format!(
                    "cannot write in {}: {e}; pikachu keeps its checkpoint and dead letters \
                     there (give the user running it write access, or change data_dir)",
                    probe_dir.display()
                ),
            );
            return;
        }
    }
    if !exists {
        r.ok(what, &format!("{} (created at start)", dir.display()));
        return;
    }
    match running_daemon(dir) {
        true => r.warn(
            what,
            &format!(
                "{} is in use by a running pikachu (it holds pikachu.lock); a second one on \
                 the same data_dir will refuse to start",
                dir.display()
            ),
        ),
        false => r.ok(what, &format!("{} is writable", dir.display())),
    }
}

/// Whether a pikachu process holds the lock on `dir` right now.
fn running_daemon(dir: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("pikachu.lock"))
    else {
        return false;
    };
    // Dropping `file` releases the lock again at once.
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

fn server_error(e: &mysql::Error) -> Option<(u16, &str)> {
    match e {
        mysql::Error::MySqlError(m) => Some((m.code, m.message.as_str())),
        _ => None,
    }
}

/// `'user'@'host'` of the account the server logged us in as.
fn account(conn: &mut mysql::Conn, user: &str) -> String {
    let current: Option<String> = conn.query_first("SELECT CURRENT_USER()").ok().flatten();
    match current.as_deref().and_then(|c| c.rsplit_once('@')) {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{user}'@'%'"),
    }
}

/// `major.minor` of a version string such as `10.11.19-MariaDB-0+deb12u1-log`.
fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// The privileges of one `GRANT … ON … TO …` line of `SHOW GRANTS`.
struct Grant {
    privileges: Vec<String>,
    on: String,
}

fn parse_grants(lines: &[String]) -> Vec<Grant> {
    let mut grants = Vec::new();
    for line in lines {
        let upper = line.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        // Role grants (`GRANT role TO user`) have no ON.
        let Some(on_at) = rest.find(" ON ") else {
            continue;
        };
        let privs = &rest[..on_at];
        let object = &rest[on_at + 4..];
        let on = object.split(" TO ").next().unwrap_or("").trim().to_owned();
        let mut privileges = Vec::new();
        let (mut depth, mut current) = (0usize, String::new());
        for c in privs.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => privileges.push(std::mem::take(&mut current)),
                _ if depth == 0 => current.push(c),
                _ => {}
            }
        }
        privileges.push(current);
        let privileges = privileges
            .into_iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        grants.push(Grant { privileges, on });
    }
    grants
}

/// Whether one of `names` is granted on `*.*` (directly, or by ALL PRIVILEGES).
fn has_global(grants: &[Grant], names: &[&str]) -> bool {
    grants.iter().filter(|g| g.on == "*.*").any(|g| {
        g.privileges
            .iter()
            .any(|p| p == "ALL" || p == "ALL PRIVILEGES" || names.contains(&p.as_str()))
    })
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn check_database(cfg: &Config, r: &mut Report) {
    let db = &cfg.database;
    let what = "connection and login";
    let mut conn = match mysql::Conn::new(mysql_opts(db, None)) {
        Ok(c) => {
            r.ok(what, &format!("{}:{} as {}", db.host, db.port, db.user));
            c
        }
        Err(e) => {
            let hint = match server_error(&e) {
                Some((ER_ACCESS_DENIED, _)) => {
                    "check database.user and the password (database.password or the \
                     environment variable PIKACHU_DATABASE_PASSWORD)"
                }
                Some((ER_BAD_DB, _)) => "check database.database",
                _ => {
                    "check database.host and database.port, and that the server accepts TCP \
                     connections from this machine (bind-address, firewall, skip-networking)"
                }
            };
            r.fail_db(
                what,
                &format!("{}:{} as {}: {e}; {hint}", db.host, db.port, db.user),
            );
            // Nothing else can be checked without a connection.
            return;
        }
    };
    let info = match ServerInfo::read(&mut conn) {
        Ok(i) => i,
        Err(e) => {
            r.fail_db("server variables", &e.to_string());
            return;
        }
    };
    let (major, minor) = major_minor(&info.version);
    // MariaDB 10.5 split REPLICATION CLIENT into BINLOG MONITOR (and others) and shows
    // the new name; the old one is still accepted as an alias in GRANT.
    let new_mariadb_names = info.is_mariadb && (major, minor) >= (10, 5);
    let kind = if info.is_mariadb { "MariaDB" } else { "MySQL" };
    r.ok("server version", &format!("{kind} {}", info.version));

    let who = account(&mut conn, &db.user);
    check_privileges(&mut conn, new_mariadb_names, &who, r);
    check_server_id(&mut conn, cfg.database.server_id, r);
    check_binlog_settings(&mut conn, &info, r);
    for t in &cfg.tasks {
        check_table(&mut conn, t, &who, r);
    }
    check_start(&mut conn, cfg, r);
}

fn check_privileges(conn: &mut mysql::Conn, new_mariadb_names: bool, who: &str, r: &mut Report) {
    let grant_lines: Vec<String> = match conn.query("SHOW GRANTS") {
        Ok(l) => l,
        Err(e) => {
            r.fail_db("privileges", &format!("cannot read SHOW GRANTS: {e}"));
            return;
        }
    };
    let grants = parse_grants(&grant_lines);
    // Role grants are listed, but their privileges only when the role is active; say so
    // instead of guessing.
    let via_roles = grant_lines.iter().any(|l| {
        let u = l.to_ascii_uppercase();
        u.starts_with("GRANT ") && !u.contains(" ON ")
    });
    let role_note = if via_roles {
        " (if a role gives it, make that role the account's default role)"
    } else {
        ""
    };

    if has_global(&grants, &["REPLICATION SLAVE", "REPLICATION REPLICA"]) {
        r.ok("privilege REPLICATION SLAVE", "granted (reads the binlog)");
    } else {
        r.fail_db(
            "privilege REPLICATION SLAVE",
            &format!(
                "missing: needed to read the binlog{role_note}; run: GRANT REPLICATION SLAVE ON *.* TO {who};"
            ),
        );
    }

    // REPLICATION CLIENT (MySQL, MariaDB before 10.5) = BINLOG MONITOR (MariaDB 10.5+):
    // tried for real with the statement pikachu runs at start.
    let client = if new_mariadb_names {
        "BINLOG MONITOR"
    } else {
        "REPLICATION CLIENT"
    };
    let what = if new_mariadb_names {
        "privilege BINLOG MONITOR (REPLICATION CLIENT before MariaDB 10.5 and on MySQL)".to_owned()
    } else {
        "privilege REPLICATION CLIENT".to_owned()
    };
    let missing = format!(
        "missing: needed for SHOW BINARY LOGS / SHOW MASTER STATUS{role_note}; run: GRANT {client} ON *.* TO {who};"
    );
    match conn.query_drop("SHOW BINARY LOGS") {
        Ok(()) => r.ok(&what, "granted (SHOW BINARY LOGS works)"),
        Err(e) => match server_error(&e) {
            Some((ER_SPECIFIC_ACCESS_DENIED | ER_ACCESS_DENIED | ER_DBACCESS_DENIED, _)) => {
                r.fail_db(&what, &missing)
            }
            // Without a binlog the statement fails for another reason: log_bin's line
            // says so; judge the privilege from the grants.
            Some((ER_NO_BINARY_LOGGING, _)) => {
                if has_global(&grants, &["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"]) {
                    r.ok(&what, "granted");
                } else {
                    r.fail_db(&what, &missing);
                }
            }
            _ => r.fail_db(&what, &format!("SHOW BINARY LOGS failed: {e}")),
        },
    }
}

fn check_server_id(conn: &mut mysql::Conn, ours: u32, r: &mut Report) {
    let theirs: Option<u64> = conn.query_first("SELECT @@server_id").ok().flatten();
    match theirs {
        Some(s) if s == u64::from(ours) => r.fail_db(
            "server_id",
            &format!(
                "database.server_id {ours} is the server's own server_id: the server refuses \
                 a replica with its own id; choose another one, unique among all replicas"
            ),
        ),
        Some(s) => r.ok(
            "server_id",
            &format!("{ours} (the server is {s}; keep {ours} unique among its replicas)"),
        ),
        None => r.warn("server_id", "cannot read @@server_id"),
    }
}

fn global_variable(conn: &mut mysql::Conn, name: &str) -> Option<String> {
    let row: Option<(String, Option<String>)> = conn
        .exec_first("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .ok()
        .flatten();
    row.and_then(|(_, v)| v)
}

fn check_binlog_settings(conn: &mut mysql::Conn, info: &ServerInfo, r: &mut Report) {
    if info.log_bin {
        r.ok("log_bin", "ON");
    } else {
        r.fail_db(
            "log_bin",
            "OFF: start the server with log-bin (in the server's configuration, [mysqld] \
             log_bin = mysql-bin); it cannot be changed at runtime",
        );
    }
    if info.binlog_format == "ROW" {
        r.ok("binlog_format", "ROW");
    } else {
        let shown = if info.binlog_format.is_empty() {
            "unknown"
        } else {
            &info.binlog_format
        };
        r.fail_db(
            "binlog_format",
            &format!(
                "{shown}, pikachu needs ROW: SET GLOBAL binlog_format = 'ROW'; and \
                 binlog_format = ROW in the server's configuration (sessions already open keep \
                 the old format until they reconnect)"
            ),
        );
    }
    if info.binlog_row_image == "FULL" {
        r.ok("binlog_row_image", "FULL");
    } else {
        r.warn(
            "binlog_row_image",
            &format!(
                "{}: webhooks carry only the columns the server logs; SET GLOBAL \
                 binlog_row_image = 'FULL' (and in the server's configuration) for whole rows",
                info.binlog_row_image
            ),
        );
    }
    match info.binlog_row_metadata.as_deref() {
        Some("FULL") => r.ok(
            "binlog_row_metadata",
            "FULL (column names come with each event)",
        ),
        Some(m) => r.warn(
            "binlog_row_metadata",
            &format!(
                "{m}: column names are read from information_schema, which only knows the \
                 current table definition; SET GLOBAL binlog_row_metadata = 'FULL' (and in the \
                 server's configuration) is safer across ALTER TABLE"
            ),
        ),
        // MySQL 5.7 and MariaDB before 10.5 have no such variable.
        None => {}
    }
    if info.is_mariadb {
        // Compressed events are decompressed by the reader; say so, since the Go tool
        // could not read them.
        r.ok(
            "log_bin_compress",
            if info.log_bin_compress {
                "ON (compressed events are decompressed)"
            } else {
                "OFF"
            },
        );
    } else if let Some(v) = global_variable(conn, "binlog_transaction_compression") {
        // Compressed transactions are decompressed by the reader; say so, since the
        // Go tool could not read them.
        let on = v.eq_ignore_ascii_case("ON") || v == "1";
        r.ok(
            "binlog_transaction_compression",
            if on {
                "ON (compressed transactions are decompressed)"
            } else {
                "OFF"
            },
        );
    }
    // How long the server keeps binlogs bounds how long pikachu may be down.
    let seconds =
        global_variable(conn, "binlog_expire_logs_seconds").and_then(|v| v.parse::<u64>().ok());
    let days = global_variable(conn, "expire_logs_days").and_then(|v| v.parse::<f64>().ok());
    let after = match (seconds, days) {
        (Some(s), _) if s > 0 => Some(human_seconds(s)),
        (_, Some(d)) if d > 0.0 => Some(format!("{d} days")),
        _ => None,
    };
    match (after, seconds.is_some() || days.is_some()) {
        (Some(after), _) => r.ok(
            "binlog retention",
            &format!(
                "binary logs are purged after {after}: a pikachu stopped for longer cannot \
                 resume from its checkpoint"
            ),
        ),
        (None, true) => r.ok(
            "binlog retention",
            "binary logs are not purged automatically",
        ),
        (None, false) => {}
    }
}

fn human_seconds(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} seconds"),
    }
}

fn check_table(conn: &mut mysql::Conn, t: &Task, who: &str, r: &mut Report) {
    let what = format!("task {} table", t.task_id);
    let name = format!("{}.{}", quote_ident(&t.database), quote_ident(&t.table));
    // LIMIT 0 reads no row but checks existence and the SELECT privilege like a read.
    match conn.query_drop(format!("SELECT 1 FROM {name} LIMIT 0")) {
        Ok(()) => r.ok(&what, &format!("{name} exists and is readable")),
        Err(e) => match server_error(&e) {
            Some((ER_NO_SUCH_TABLE, _)) => r.fail_db(
                &what,
                &format!(
                    "{name} does not exist: create it, or fix table_name of task {} (and \
                     database.database)",
                    t.task_id
                ),
            ),
            Some((ER_BAD_DB, _)) => r.fail_db(
                &what,
                &format!(
                    "{name}: the database {} does not exist",
                    quote_ident(&t.database)
                ),
            ),
            // The server says "denied" also for tables that do not exist, so as not to
            // reveal which ones do.
            Some((ER_TABLEACCESS_DENIED | ER_DBACCESS_DENIED, _)) => r.fail_db(
                &what,
                &format!(
                    "{name}: no SELECT privilege (or the table does not exist); run: GRANT \
                     SELECT ON {}.* TO {who};",
                    quote_ident(&t.database)
                ),
            ),
            _ => r.fail_db(&what, &format!("{name}: {e}")),
        },
    }
}

fn check_start(conn: &mut mysql::Conn, cfg: &Config, r: &mut Report) {
    let saved = match checkpoint::load(&cfg.data_dir) {
        Ok(s) => s,
        Err(e) => {
            r.fail("checkpoint", &e.to_string());
            return;
        }
    };
    match preflight::resolve_start(conn, saved.as_ref(), &cfg.start_from) {
        Ok(cp) => {
            let from = if saved.is_some() {
                "the checkpoint in data_dir"
            } else {
                "start_from, no checkpoint yet"
            };
            r.ok(
                "start position",
                &format!("{}:{} ({from})", cp.file, cp.pos),
            );
        }
        Err(e) => r.fail_db("start position", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_parsed_by_exact_privilege() {
        let lines = vec![
            "GRANT SELECT, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'".to_owned(),
            "GRANT SELECT (`a`, `b`), INSERT ON `shop`.`t` TO `u`@`%`".to_owned(),
            "GRANT `reader` TO `u`@`%`".to_owned(),
        ];
        let g = parse_grants(&lines);
        assert_eq!(g.len(), 2);
        // REPLICATION SLAVE ADMIN is not REPLICATION SLAVE.
        assert!(!has_global(&g, &["REPLICATION SLAVE"]));
        assert!(has_global(&g, &["BINLOG MONITOR"]));
        assert_eq!(g[1].privileges, ["SELECT", "INSERT"]);
        assert_eq!(g[1].on, "`SHOP`.`T`");
        let all = parse_grants(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION".to_owned(),
        ]);
        assert!(has_global(&all, &["REPLICATION SLAVE"]));
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let uri = |s: &'static str| Uri::from_static(s);
        assert_eq!(
            shown_url(&uri("https://user:pw@hook.example.com:8443/x?token=abc")),
            "https://hook.example.com:8443/x?…"
        );
        assert_eq!(
            shown_url(&uri("http://127.0.0.1:3000/webhook")),
            "http://127.0.0.1:3000/webhook"
        );
        assert_eq!(
            shown_url(&uri("http://[::1]:3000/x")),
            "http://[::1]:3000/x"
        );
        assert_eq!(
            host_port(&uri("https://user:pw@hook.example.com/x")),
            ("hook.example.com".into(), 443)
        );
        assert_eq!(host_port(&uri("http://[::1]:3000/x")), ("::1".into(), 3000));
        assert_eq!(host_port(&uri("http://h")), ("h".into(), 80));
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("10.11.19-MariaDB-0+deb12u1-log"), (10, 11));
        assert_eq!(major_minor("8.0.36"), (8, 0));
        assert_eq!(major_minor(""), (0, 0));
    }
}
