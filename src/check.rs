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
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::http::Uri;
use mysql::prelude::Queryable;

use crate::checkpoint;
use crate::config::{host_port, CheckpointStore, Config, DbTlsMode, Task, ValueMode};
use crate::exit::Exit;
use crate::source::connect::{Connector, TlsSession};
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Checks that need no database: callback URLs, data_dir, the health port, the
/// certificate and secret files.
fn check_local(cfg: &Config, r: &mut Report) {
    for t in &cfg.tasks {
        check_callback(t, r);
    }
    check_value_modes(cfg, r);
    check_data_dir(&cfg.data_dir, r);
    check_certificate_files(cfg, r);
    check_secret_files(cfg, r);
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
            Ok(_) if t.callback_url.scheme_str() != Some("https") => {
                r.ok(
                    &what,
                    &format!("{shown} ({host}:{port} accepts connections)"),
                );
                return;
            }
            Ok(tcp) => {
                check_receiver_tls(tcp, &host, t, &what, &shown, r);
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

/// A TLS handshake with the receiver, with the task's CA and client certificate: what
/// every delivery will do, without sending a request.
fn check_receiver_tls(
    tcp: TcpStream,
    host: &str,
    t: &Task,
    what: &str,
    shown: &str,
    r: &mut Report,
) {
    match receiver_handshake(tcp, host, &t.tls) {
        Ok(not_after) => {
            let (level, text) = match not_after {
                Some(not_after) => expiry(not_after),
                None => (Level::Ok, "expiry date unreadable".to_owned()),
            };
            let detail = format!("{shown} (TLS handshake OK; its certificate is {text})");
            match level {
                Level::Ok => r.ok(what, &detail),
                _ => r.warn(what, &format!("{detail}; the receiver must renew it")),
            }
        }
        Err(e) => {
            let hint = match rustls_cause(&e) {
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                )) => {
                    "its certificate is not signed by a trusted CA: set the task's ca_file (or \
                     dispatcher.ca_file) to the CA that signed it"
                }
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) => "its certificate is not issued for this host name: use a name it lists",
                _ => "every delivery would fail the same way and be dead-lettered",
            };
            r.fail(what, &format!("{shown}: TLS handshake failed: {e}; {hint}"));
        }
    }
}

fn receiver_handshake(
    mut tcp: TcpStream,
    host: &str,
    tls: &crate::config::HttpTls,
) -> Result<Option<SystemTime>, std::io::Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(ca) => {
            for cert in crate::tls::read_certificates(ca).map_err(|e| invalid(&e))? {
                roots
                    .add(CertificateDer::from(cert.der().to_vec()))
                    .map_err(|e| invalid(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(&e))?
    .with_root_certificates(roots);
    let config = match &tls.client_cert {
        Some(client) => {
            let chain = crate::tls::read_certificates(&client.cert_file)
                .map_err(|e| invalid(&e))?
                .iter()
                .map(|c| CertificateDer::from(c.der().to_vec()))
                .collect();
            let key = crate::tls::read_private_key(&client.key_file).map_err(|e| invalid(&e))?;
            let key = PrivateKeyDer::try_from(key.der().to_vec()).map_err(|e| invalid(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(&e))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| invalid(&e))?;
    tcp.set_read_timeout(Some(CALLBACK_CONNECT_TIMEOUT))?;
    tcp.set_write_timeout(Some(CALLBACK_CONNECT_TIMEOUT))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| crate::tls::not_after(cert)))
}

fn rustls_cause(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
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
    for warning in checkpoint::private_paths(dir)
        .iter()
        .filter_map(|p| crate::fsutil::exposed(p))
    {
        r.warn("data_dir permissions", &warning);
    }
}

/// How close to its end a certificate must be for a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// `expires 2027-01-04 (in 30 days)`, and whether that is a problem yet.
fn expiry(not_after: SystemTime) -> (Level, String) {
    let date = crate::clock::rfc3339(not_after, false);
    let date = date.split('T').next().unwrap_or(&date).to_owned();
    match not_after.duration_since(SystemTime::now()) {
        Err(_) => (Level::Fail, format!("expired on {date}")),
        Ok(left) => {
            let days = left.as_secs() / 86_400;
            let level = if left < EXPIRY_WARNING {
                Level::Warn
            } else {
                Level::Ok
            };
            (level, format!("valid until {date} ({days} days left)"))
        }
    }
}

/// Every certificate file of the configuration: readable (the load checked that) and
/// not expired or about to.
fn check_certificate_files(cfg: &Config, r: &mut Report) {
    let db = &cfg.database.tls;
    let mut named: Vec<(String, Option<&std::path::PathBuf>)> = vec![
        ("database.ca_file".into(), db.ca_file.as_ref()),
        (
            "database.cert_file".into(),
            db.client_cert.as_ref().map(|c| &c.cert_file),
        ),
        (
            "dispatcher.ca_file".into(),
            cfg.dispatcher.tls.ca_file.as_ref(),
        ),
        (
            "dispatcher.cert_file".into(),
            cfg.dispatcher
                .tls
                .client_cert
                .as_ref()
                .map(|c| &c.cert_file),
        ),
    ];
    for t in &cfg.tasks {
        named.push((
            format!("task {} ca_file", t.task_id),
            t.tls.ca_file.as_ref(),
        ));
        named.push((
            format!("task {} cert_file", t.task_id),
            t.tls.client_cert.as_ref().map(|c| &c.cert_file),
        ));
    }
    // A task inherits the dispatcher's files: each file once, under its first name.
    let mut files: Vec<(String, &Path)> = Vec::new();
    for (key, path) in named {
        if let Some(path) = path {
            if !files.iter().any(|(_, p)| *p == path.as_path()) {
                files.push((key, path.as_path()));
            }
        }
    }
    for (key, path) in files {
        let what = format!("certificate {key}");
        match crate::tls::earliest_expiry(path) {
            Ok(Some(not_after)) => {
                let (level, text) = expiry(not_after);
                let detail = format!("{}: {text}", path.display());
                match level {
                    Level::Ok => r.ok(&what, &detail),
                    Level::Warn => r.warn(&what, &format!("{detail}; renew it")),
                    Level::Fail => r.fail(&what, &format!("{detail}; renew it")),
                }
            }
            Ok(None) => r.warn(
                &what,
                &format!("{}: cannot read its expiry date", path.display()),
            ),
            Err(e) => r.fail(&what, &e.to_string()),
        }
    }
}

/// Secrets read from files: readable (the load read them) and not open to every user.
fn check_secret_files(cfg: &Config, r: &mut Report) {
    for (key, path) in &cfg.secret_files {
        let what = format!("secret file {key}");
        let mode = file_mode(path);
        match mode {
            Some(mode) if mode & 0o077 != 0 => r.warn(
                &what,
                &format!(
                    "{} is readable by other users (mode {mode:03o}); chmod 400 it (in \
                     Kubernetes: defaultMode: 0400 on the secret volume)",
                    path.display()
                ),
            ),
            Some(mode) => r.ok(&what, &format!("{} (mode {mode:03o})", path.display())),
            None => r.ok(&what, &path.display().to_string()),
        }
    }
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> Option<u32> {
    None
}

/// The TLS in effect on the connection, whether the server insists on it, and how long
/// its certificate is valid.
fn check_database_tls(conn: &mut mysql::Conn, mode: DbTlsMode, r: &mut Report) {
    let what = "database TLS";
    let session = match TlsSession::read(conn) {
        Ok(s) => s,
        Err(e) => {
            r.warn(what, &format!("cannot read the session's TLS status: {e}"));
            return;
        }
    };
    let required = global_variable(conn, "require_secure_transport")
        .map(|v| matches!(v.to_ascii_uppercase().as_str(), "ON" | "1"));
    let server_side = match required {
        Some(true) => "the server requires TLS (require_secure_transport=ON)",
        Some(false) => "the server does not require TLS (require_secure_transport=OFF)",
        None => "the server does not say whether it requires TLS",
    };
    let verified = if mode.verifies() {
        "certificate verified"
    } else {
        "certificate not verified: set database.tls: verify_identity and database.ca_file to \
         verify it"
    };
    match &session.version {
        Some(_) => r.ok(
            what,
            &format!(
                "{}, database.tls: {}, {verified}; {server_side}",
                session.describe(),
                mode.as_str()
            ),
        ),
        None if mode == DbTlsMode::Disabled => r.ok(
            what,
            &format!("not encrypted (database.tls: disabled); {server_side}"),
        ),
        None => r.warn(
            what,
            &format!(
                "not encrypted: the server offers no TLS (database.tls: {}), so the password \
                 and every row cross the network in clear; enable TLS on the server (ssl_cert, \
                 ssl_key), then set database.tls: verify_identity; {server_side}",
                mode.as_str()
            ),
        ),
    }
    if session.version.is_none() {
        return;
    }
    let not_after: Option<String> = conn
        .query_first::<(String, String), _>("SHOW GLOBAL STATUS LIKE 'Ssl_server_not_after'")
        .ok()
        .flatten()
        .map(|(_, v)| v);
    let what = "database server certificate";
    match not_after.as_deref().and_then(parse_openssl_time) {
        Some(t) => {
            let (level, text) = expiry(t);
            match level {
                Level::Ok => r.ok(what, &text),
                _ => r.warn(
                    what,
                    &format!("{text}; renew it on the server (ssl_cert) before it runs out"),
                ),
            }
        }
        None => r.ok(what, "the server does not report its certificate's expiry"),
    }
}

/// OpenSSL's `ASN1_TIME_print` form, as in `Ssl_server_not_after`: `Dec  6 12:53:27
/// 2026 GMT`.
fn parse_openssl_time(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let month = parts.next()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u8>().ok());
    let year: i32 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)?;
    let month = time::Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let at = time::Date::from_calendar_date(year, month, day)
        .ok()?
        .with_hms(hms.next()??, hms.next()??, hms.next()??)
        .ok()?
        .assume_utc();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).ok()?))
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
    let connector = Connector::new(db, None);
    let mut conn = match connector.connect_to() {
        Ok((c, address)) => {
            r.ok(what, address);
            c
        }
        Err(e) => {
            r.fail_db(what, &e.to_string());
            // Nothing else can be checked without a connection.
            return;
        }
    };
    check_database_tls(&mut conn, db.tls.mode, r);
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
    check_task_selection(&mut conn, cfg, r);
    check_backfills(&mut conn, cfg, &info, r);
    check_ha(&mut conn, cfg, &who, r);
    check_start(&mut conn, cfg, info.server_id, r);
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

/// Each task's columns, trigger and filter as they apply, checked against the table.
/// For each `backfill: initial` task: whether the server can give a consistent snapshot
/// its binlog position (MariaDB), and how the table will be read.
fn check_backfills(conn: &mut mysql::Conn, cfg: &Config, info: &ServerInfo, r: &mut Report) {
    for t in cfg.tasks.iter().filter(|t| t.backfill_initial) {
        let what = format!("task {}: backfill", t.task_id);
        if !info.is_mariadb {
            r.fail_db(
                &what,
                "MySQL does not report the binlog position of a consistent snapshot \
                 (binlog_snapshot_file/position), which a consistent backfill needs; the \
                 backfill would stop with this error while streaming goes on: remove \
                 `backfill` from the task, or stream from MariaDB",
            );
            continue;
        }
        let table = format!("{}.{}", t.database, t.table);
        match crate::backfill::paging_key(conn, &t.database, &t.table) {
            Ok(Some((index, columns))) if index == "PRIMARY" => r.ok(
                &what,
                &format!("{table}: in chunks of {} by the primary key ({})", t.backfill_chunk_size, columns.join(", ")),
            ),
            Ok(Some((_, columns))) => r.ok(
                &what,
                &format!(
                    "{table}: in chunks of {} by the unique key ({}) (the table has no primary key)",
                    t.backfill_chunk_size,
                    columns.join(", ")
                ),
            ),
            Ok(None) => r.warn(
                &what,
                &format!(
                    "{table} has neither a primary key nor a unique key of NOT NULL columns: \
                     it is read in one pass inside one snapshot, which cannot resume after a \
                     restart; add a primary key to backfill it in chunks"
                ),
            ),
            Err(e) => r.fail_db(&what, &format!("cannot read the keys of {table}: {e}")),
        }
    }
}

fn check_task_selection(conn: &mut mysql::Conn, cfg: &Config, r: &mut Report) {
    for t in &cfg.tasks {
        let what = format!("task {} selection", t.task_id);
        let mut parts = Vec::new();
        match &t.columns {
            crate::filter::Columns::All => {}
            crate::filter::Columns::Only(c) => {
                parts.push(format!("columns {} (and the primary key)", c.join(", ")))
            }
            crate::filter::Columns::Except(c) => {
                parts.push(format!("all columns but {}", c.join(", ")))
            }
        }
        if !t.on_change.is_empty() {
            parts.push(format!("updates that change {}", t.on_change.join(", ")));
        }
        if let Some(f) = &t.filter {
            parts.push(format!("rows where {f}"));
        }
        if let Some(rate) = t.max_rate {
            parts.push(format!("at most {rate} requests/s"));
        }
        if let Some(n) = t.max_in_flight {
            parts.push(format!("at most {n} requests at once"));
        }
        if !parts.is_empty() {
            r.ok(&what, &parts.join("; "));
        }
    }
    match preflight::unknown_task_columns(conn, &cfg.tasks) {
        Ok(problems) => {
            for p in problems {
                r.fail("task columns", &p);
            }
        }
        Err(e) => r.warn("task columns", &e.to_string()),
    }
}

/// `ha.group`: who holds the lease now. `checkpoint.store: mysql`: the table can be
/// read (it is created at start when missing and the account may).
fn check_ha(conn: &mut mysql::Conn, cfg: &Config, who: &str, r: &mut Report) {
    if let Some(group) = &cfg.ha.group {
        let name = crate::ha::lock_name(group);
        let holder: mysql::Result<Option<Option<u64>>> =
            conn.exec_first("SELECT IS_USED_LOCK(?)", (&name,));
        match holder {
            Ok(Some(Some(id))) => r.ok(
                "ha lease",
                &format!(
                    "{name} is held by connection {id}: an instance of group {group} is active; \
                     this one would stand by"
                ),
            ),
            Ok(_) => r.ok(
                "ha lease",
                &format!("{name} is free: this instance would become active"),
            ),
            Err(e) => r.fail_db(
                "ha lease",
                &format!("{name}: the server cannot tell ({e}); ha.group needs GET_LOCK"),
            ),
        }
    }
    if let CheckpointStore::Mysql { schema, table } = &cfg.checkpoint {
        let what = "checkpoint table";
        let count: mysql::Result<Option<u64>> =
            conn.query_first(format!("SELECT COUNT(*) FROM `{schema}`.`{table}`"));
        match count {
            Ok(_) => r.ok(what, &format!("{schema}.{table} exists and is readable")),
            Err(e) => match server_error(&e) {
                Some((ER_NO_SUCH_TABLE, _)) => r.warn(
                    what,
                    &format!(
                        "{schema}.{table} does not exist yet: pikachu creates it at start, which \
                         needs: GRANT CREATE, SELECT, INSERT, UPDATE ON `{schema}`.* TO {who};"
                    ),
                ),
                _ => r.fail_db(
                    what,
                    &format!(
                        "{schema}.{table}: {e}; run: GRANT SELECT, INSERT, UPDATE ON \
                         `{schema}`.`{table}` TO {who};"
                    ),
                ),
            },
        }
    }
}

fn check_start(conn: &mut mysql::Conn, cfg: &Config, server_id: u32, r: &mut Report) {
    let saved = match &cfg.checkpoint {
        CheckpointStore::File => checkpoint::load(&cfg.data_dir).map_err(|e| e.to_string()),
        CheckpointStore::Mysql { schema, table } => {
            let key = crate::ha::checkpoint_key(cfg.ha.group.as_deref());
            match crate::ha::read_checkpoint(conn, schema, table, key) {
                Err(e) if server_error(&e).is_some_and(|(c, _)| c == ER_NO_SUCH_TABLE) => Ok(None),
                other => other.map_err(|e| e.to_string()),
            }
        }
    };
    let saved = match saved {
        Ok(s) => s,
        Err(e) => {
            r.fail("checkpoint", &e);
            return;
        }
    };
    let what = "start position";
    match preflight::resolve_start(conn, saved.as_ref(), &cfg.start_from, server_id) {
        Ok(cp) => {
            let from = if saved.is_some() {
                "the checkpoint in data_dir"
            } else {
                "start_from, no checkpoint yet"
            };
            let at = match &cp.gtid {
                Some(state) if cp.file.is_empty() => format!("after GTID state {state}"),
                _ => format!("{}:{}", cp.file, cp.pos),
            };
            r.ok(what, &format!("{at} ({from})"));
        }
        Err(e @ preflight::PreflightError::PositionGone(_)) => {
            match (saved.as_ref(), cfg.binlog_archive.as_deref()) {
                (Some(saved), Some(dir)) => match preflight::archive_plan(conn, dir, saved) {
                    Ok(plan) => r.ok(
                        what,
                        &format!(
                            "{}:{} was purged on the server; {} archived file(s) in {} bridge \
                             the gap",
                            saved.file,
                            saved.pos,
                            plan.files.len(),
                            dir.display()
                        ),
                    ),
                    Err(e) => r.fail_db(what, &e.to_string()),
                },
                _ => r.fail_db(what, &e.to_string()),
            }
        }
        Err(e) => r.fail_db(what, &e.to_string()),
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
    fn openssl_times_are_read() {
        let t = parse_openssl_time("Dec  6 12:53:27 2026 GMT").unwrap();
        assert_eq!(
            t,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_561_607)
        );
        assert_eq!(parse_openssl_time(""), None);
        assert_eq!(parse_openssl_time("Foo  6 12:53:27 2026 GMT"), None);
    }

    #[test]
    fn expiry_warns_within_30_days() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        assert_eq!(expiry(now + day * 90).0, Level::Ok);
        let (level, text) = expiry(now + day * 10 + Duration::from_secs(60));
        assert_eq!(level, Level::Warn);
        assert!(text.contains("(10 days left)"), "{text}");
        assert_eq!(expiry(now - day).0, Level::Fail);
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("10.11.19-MariaDB-0+deb12u1-log"), (10, 11));
        assert_eq!(major_minor("8.0.36"), (8, 0));
        assert_eq!(major_minor(""), (0, 0));
    }
}
