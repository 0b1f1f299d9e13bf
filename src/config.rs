//! Configuration: the Go tool's `config.yaml` / `tasks.yaml` turned into a typed `Config`.
//!
//! Owns reading the files, defaults, `PIKACHU_*` environment overrides and validation.
//! It must not touch the network or the database, and never prints a password, secret or
//! header value (not in errors, not in `Debug`). Everything downstream takes the typed
//! values as they are: nothing re-validates.
//!
//! How a file becomes a `Config`:
//! 1. `read_yaml`: the document becomes a `serde_norway::Value` whose scalars are all the
//!    text as written (`password: 0x1F`, `task_id: 007` stay text; numbers are read later
//!    the way the Go tool reads them), plus the line of every key.
//! 2. `apply_env`: `PIKACHU_<SECTION>_<KEY>` variables replace values in that tree.
//! 3. The tree is read into the raw structs declared with `section!`: each key is declared
//!    once there, with the form of its value. The same declaration yields the unknown keys
//!    (with a did-you-mean) and the list of environment variables.
//! 4. `Conv`: one validation pass turns the raw structs into `Config`, applying the Go
//!    tool's defaults and collecting every problem, so that one run reports all of them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::http::{HeaderName, HeaderValue, Uri};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_yaml::{Mapping, Value};

use crate::signature::SigningKey;

/// A password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// The first of `hosts`.
    pub host: String,
    pub port: u16,
    /// Every server to try, in order: `database.hosts`, or `host` and `port` alone.
    pub hosts: Vec<(String, u16)>,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub server_id: u32,
    pub charset: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub tls: DbTls,
    /// The server's RSA public key for `caching_sha2_password` without TLS; without it
    /// the driver asks the server for the key.
    pub server_public_key_file: Option<PathBuf>,
}

/// `database.tls`: the modes of the MySQL client's `--ssl-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbTlsMode {
    Disabled,
    /// TLS when the server offers it, without verifying its certificate.
    Preferred,
    /// TLS or no connection; the certificate is not verified.
    Required,
    /// TLS with a certificate signed by a trusted CA, whatever name it is for.
    VerifyCa,
    /// `VerifyCa`, and the certificate is for `database.host`.
    VerifyIdentity,
}

impl DbTlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DbTlsMode::Disabled => "disabled",
            DbTlsMode::Preferred => "preferred",
            DbTlsMode::Required => "required",
            DbTlsMode::VerifyCa => "verify_ca",
            DbTlsMode::VerifyIdentity => "verify_identity",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, DbTlsMode::VerifyCa | DbTlsMode::VerifyIdentity)
    }
}

/// A client certificate (and its chain) with its private key, both PEM files that were
/// readable and well-formed when the configuration was loaded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Clone, Debug)]
pub struct DbTls {
    pub mode: DbTlsMode,
    /// Trusted in addition to the bundled Mozilla roots.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<ClientCert>,
}

/// TLS towards receivers: `dispatcher.ca_file`/`cert_file`/`key_file`, or a task's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpTls {
    /// Trusted instead of the bundled Mozilla roots (as curl's `--cacert`).
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<ClientCert>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    pub format: LogFormat,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub enabled: bool,
    /// The address the health/metrics server listens on (`0.0.0.0`: every interface, as
    /// Kubernetes probes need).
    pub bind: IpAddr,
    pub port: u16,
    pub path: String,
}

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    pub worker_count: usize,
    pub queue_size: usize,
    pub timeout: Duration,
    /// `None`: retry for ever (`max_retries: -1`).
    pub max_retries: Option<u32>,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    pub max_connections: usize,
    pub max_idle_conns: usize,
    pub idle_conn_timeout: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Default signing key for tasks without their own.
    pub secret: Option<SigningKey>,
    /// Default TLS settings for tasks without their own.
    pub tls: HttpTls,
}

#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub event_queue_size: usize,
    pub event_queue_timeout: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub flush_interval: Duration,
    pub heartbeat_period: Duration,
}

/// `ha`: instances with the same group elect one active through the database.
#[derive(Clone, Debug)]
pub struct HaConfig {
    /// `None`: no election, this instance is always active.
    pub group: Option<String>,
    /// The lease session's `wait_timeout`: a silent holder is dropped by the server
    /// after this, and a standby can take over.
    pub lease_timeout: Duration,
}

/// Where the checkpoint is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointStore {
    /// `data_dir/checkpoint.json`.
    File,
    /// A row in a table of the database server, shared by the instances of a group.
    Mysql { schema: String, table: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    Latest,
    Earliest,
    Position {
        file: String,
        pos: u64,
    },
    /// A MariaDB GTID state (`0-1-42,1-2-7`): after those transactions.
    Gtid(String),
    /// A MySQL GTID set (`uuid:1-42`): the first transaction not in it, wherever it is.
    GtidSet(String),
}

/// How a task's webhook writes column values and `primary_id` (`values:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ValueMode {
    /// The SPEC's values (section 3).
    #[default]
    Default,
    /// What the Go tool (go-mysql canal v1.15) sent: README "values: go".
    Go,
}

impl ValueMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueMode::Default => "default",
            ValueMode::Go => "go",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl EventFilter {
    pub fn accepts(&self, kind: crate::event::ChangeKind) -> bool {
        use crate::event::ChangeKind::*;
        match kind {
            Insert => self.insert,
            Update => self.update,
            Delete => self.delete,
            // A backfill that was asked for is never hidden by the filter.
            Read => true,
        }
    }
}

#[derive(Clone)]
pub struct Task {
    pub task_id: String,
    pub name: String,
    /// The database the table lives in (`database.database` of the config).
    pub database: String,
    pub table: String,
    pub events: EventFilter,
    /// Absolute http(s) URL, `callback_host` already applied; never with credentials.
    pub callback_url: Uri,
    /// Sent after pikachu's own headers; none of them is one pikachu sets.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The task's own signing key (`dispatcher.secret` is the default).
    pub secret: Option<SigningKey>,
    /// The task's own `ca_file`/`cert_file`/`key_file`, each defaulting to the
    /// dispatcher's.
    pub tls: HttpTls,
    /// `columns` / `exclude_columns`.
    pub columns: crate::filter::Columns,
    /// `on_change`: an update goes out only if one of these changed; empty: any update.
    pub on_change: Vec<String>,
    pub filter: Option<crate::filter::Filter>,
    /// `max_rate`: requests per second to this task's URL at most.
    pub max_rate: Option<f64>,
    /// `max_in_flight`: requests of this task open at once at most.
    pub max_in_flight: Option<usize>,
    /// `txn`: the envelope says where the change stands in its transaction.
    pub txn: bool,
    /// The task's `values:`, or the top-level one when the task has none.
    pub values: ValueMode,
    /// `backfill: initial`: deliver the table's existing rows when the task has no
    /// backfill progress yet (see README, Backfill).
    pub backfill_initial: bool,
    /// Rows per chunk of a backfill (`backfill_chunk_size`, default 1000).
    pub backfill_chunk_size: usize,
    /// Throttle of a backfill (`backfill_rows_per_second`); 0: as fast as it can.
    pub backfill_rows_per_second: usize,
    /// `backfill_event: insert`: backfilled rows say `"event": "insert"` (for receivers
    /// that know only the Go tool's three events); default `read`.
    pub backfill_as_insert: bool,
}

/// Header values are redacted: they often carry credentials (`Authorization`), and a
/// `{:?}` of the config must be safe to log.
impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "***"))
            .collect();
        f.debug_struct("Task")
            .field("task_id", &self.task_id)
            .field("name", &self.name)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("events", &self.events)
            .field("callback_url", &self.callback_url)
            .field("headers", &headers)
            .field("secret", &self.secret)
            .field("tls", &self.tls)
            .field("columns", &self.columns)
            .field("on_change", &self.on_change)
            .field("filter", &self.filter)
            .field("max_rate", &self.max_rate)
            .field("max_in_flight", &self.max_in_flight)
            .field("txn", &self.txn)
            .field("values", &self.values)
            .field("backfill_initial", &self.backfill_initial)
            .field("backfill_chunk_size", &self.backfill_chunk_size)
            .field("backfill_rows_per_second", &self.backfill_rows_per_second)
            .field("backfill_as_insert", &self.backfill_as_insert)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub dispatcher: DispatcherConfig,
    pub monitor: MonitorConfig,
    /// Validated, without a trailing `/`; already joined into the relative callback URLs.
    pub callback_host: Option<String>,
    pub data_dir: PathBuf,
    /// A directory of archived binlog files to catch up from when the checkpoint's
    /// binlog was purged on the server.
    pub binlog_archive: Option<PathBuf>,
    pub ha: HaConfig,
    pub checkpoint: CheckpointStore,
    pub start_from: StartFrom,
    /// The top-level `values:` (each task's own is resolved into `Task::values`).
    pub values: ValueMode,
    pub tasks: Vec<Task>,
    /// (key, path) of every secret read from a file, for `check`.
    pub secret_files: Vec<(String, PathBuf)>,
    /// Things that are accepted but probably not what the user meant (Go keys that
    /// pikachu ignores, inline tasks shadowed by `tasks.yaml`, …), one sentence each,
    /// naming file and key. `main` logs them at startup.
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Where a bad value came from: a file, or an environment variable that replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// What is wrong with one value. Never holds a password, secret or header value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A required key is absent or empty; the hint says what it is for.
    #[error("is required ({0})")]
    Missing(&'static str),
    /// `found` is already redacted for secret keys.
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("{0} is not a duration (use 30s, 100ms, 2m)")]
    BadDuration(String),
    /// A value of the right type that is not allowed: why, and what to write instead.
    #[error("{0}")]
    Invalid(String),
    /// `url` is `None` when the URL itself must not be shown (it carries credentials).
    #[error("{}not a usable callback URL: {reason}", shown_first(.url))]
    BadUrl { url: Option<String>, reason: String },
    #[error("{0} (the value is not shown)")]
    BadSecret(String),
}

fn shown_first(url: &Option<String>) -> String {
    url.as_ref()
        .map(|u| format!("{u:?} is "))
        .unwrap_or_default()
}

/// One problem with the configuration: one line that names the file (or environment
/// variable) and the key path, and says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: file not found", .file.display())]
    NotFound { file: PathBuf },
    #[error("{}: cannot read the file: {reason}", .file.display())]
    Unreadable { file: PathBuf, reason: String },
    #[error("{}: {}invalid YAML: {message}", .file.display(), position(*.line, *.column))]
    Syntax {
        file: PathBuf,
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error(
        "{}: holds more than one YAML document (a `---` line is followed by more keys); put \
         everything into one document",
        .file.display()
    )]
    MultipleDocuments { file: PathBuf },
    #[error("{}: unknown key {key}{}{}", .file.display(), at_line(*.line),
        .suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    UnknownKey {
        file: PathBuf,
        key: String,
        line: Option<usize>,
        /// A known key of the same section close to the typo, as a full path.
        suggestion: Option<String>,
    },
    #[error("{}: key {key} is given twice{}", .file.display(),
        .line.map(|l| format!(" (second time at line {l})")).unwrap_or_default())]
    DuplicateKey {
        file: PathBuf,
        key: String,
        line: Option<usize>,
    },
    /// `key` is empty for the document as a whole.
    #[error("{origin}: {}{problem}", if .key.is_empty() { String::new() } else { format!("{}: ", .key) })]
    Value {
        origin: Origin,
        key: String,
        problem: Problem,
    },
    #[error(
        "{}: tasks[{index}].task_id: duplicate task_id {task_id:?} (first used by \
         tasks[{first}]); every task needs its own task_id",
        .file.display()
    )]
    DuplicateTaskId {
        file: PathBuf,
        index: usize,
        task_id: String,
        first: usize,
    },
    #[error("{}: no tasks configured: {reason}", .file.display())]
    NoTasks { file: PathBuf, reason: String },
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        _ => String::new(),
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// Every problem found in one load. `Display` prints one problem per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// ---------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------

/// Loads `path` (config.yaml), the tasks from `tasks.yaml` beside it (or the `tasks:` list
/// inside the config when that file does not exist), applies PIKACHU_* environment
/// overrides, validates.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let mut config = load_with_env(path, &|name| std::env::var(name).ok())?;
    // A mistyped variable (PIKACHU_DATABASE_PASWORD) would otherwise be ignored in silence.
    let known = env_var_names();
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with(ENV_PREFIX) && !known.contains(name))
        .collect();
    unknown.sort();
    for name in unknown {
        config.warnings.push(format!(
            "environment variable {name} matches no configuration key and is ignored \
             (keys are PIKACHU_<SECTION>_<KEY>, e.g. PIKACHU_DATABASE_PASSWORD)"
        ));
    }
    Ok(config)
}

/// `load` with the environment given as a function, for tests.
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    load_files(path, None, env)
}

/// `load` with an explicit tasks file (the Go tool's `-tasks` flag). With `tasks: None`
/// the tasks file is `tasks.yaml` beside the config. Either way a tasks file that does
/// not exist falls back to the config's own `tasks:` list, as in the Go tool.
pub fn load_files(
    config_path: &Path,
    tasks_path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let config_text = match read_text(config_path) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(ConfigErrors(vec![ConfigError::NotFound {
                file: config_path.to_path_buf(),
            }]))
        }
        Err(error) => return Err(ConfigErrors(vec![error])),
    };
    let tasks_file = match tasks_path {
        Some(path) => path.to_path_buf(),
        None => default_tasks_path(config_path),
    };
    let tasks_text = read_text(&tasks_file).map_err(|e| ConfigErrors(vec![e]))?;
    load_texts(
        config_path,
        &config_text,
        &tasks_file,
        tasks_text.as_deref(),
        env,
    )
}

/// Where the tasks file is looked for: `tasks.yaml` in the config file's directory.
pub fn default_tasks_path(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(dir) => dir.join(TASKS_FILE_NAME),
        None => PathBuf::from(TASKS_FILE_NAME),
    }
}

/// Host (without IPv6 brackets) and port of a callback URL, which the configuration
/// guarantees to be absolute http(s).
pub fn host_port(url: &Uri) -> (String, u16) {
    let host = url.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let default_port = if url.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    (host, url.port_u16().unwrap_or(default_port))
}

/// Every environment variable that overrides a key, e.g. `PIKACHU_DATABASE_PASSWORD`.
pub fn env_var_names() -> Vec<String> {
    env_overridable()
        .into_iter()
        .map(|(var, _, _)| var)
        .collect()
}

/// Parses a duration as Go's `time.ParseDuration` writes it (`30s`, `100ms`, `1h30m`,
/// `1.5s`, `500us`/`500µs`, `10ns`); `None` when it is not one or is negative.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let nanos = parse_go_duration(text.trim())?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

const TASKS_FILE_NAME: &str = "tasks.yaml";
const ROOT_EXPECTED: &str =
    "a mapping of keys (database:, log:, server:, dispatcher:, monitor:, …)";
const TASKS_ROOT_EXPECTED: &str = "a list of tasks, or a mapping with a `tasks:` list";
const ENV_PREFIX: &str = "PIKACHU_";

/// `Ok(None)` when the file does not exist.
fn read_text(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConfigError::Unreadable {
                file: path.to_path_buf(),
                reason: "it is not UTF-8 text".into(),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ConfigError::Unreadable {
            file: path.to_path_buf(),
            reason: error.to_string(),
        }),
    }
}

/// The whole load once the files are read: `tasks_text` is `None` when the tasks file
/// does not exist.
fn load_texts(
    config_file: &Path,
    config_text: &str,
    tasks_file: &Path,
    tasks_text: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let config_doc = read_yaml(config_file, config_text)
        .map_err(|e| errors.push(e))
        .ok();
    // Read even when the config is broken, so that both files' problems show at once.
    let tasks_doc = match tasks_text.map(|text| read_yaml(tasks_file, text)) {
        None => None,
        Some(Ok(doc)) => Some(Some(bare_list_as_tasks(doc))),
        Some(Err(error)) => {
            errors.push(error);
            Some(None)
        }
    };
    let no_env = BTreeMap::new();

    let mut config_doc = match config_doc {
        Some(doc) if matches!(doc.value, Value::Mapping(_) | Value::Null) => doc,
        broken => {
            // Without a config mapping every key would read as missing, which would bury
            // the one real problem: report it, and what can be said of the tasks file.
            if let Some(doc) = &broken {
                let mut conv = Conv::new(config_file, &doc.lines, &no_env, env);
                conv.wrong_type("", ROOT_EXPECTED, &doc.value, false);
                errors.extend(conv.errors);
            }
            if let Some(Some(doc)) = &tasks_doc {
                errors.extend(read_tasks_doc(tasks_file, doc, &no_env, env).0.errors);
            }
            return Err(ConfigErrors(errors));
        }
    };

    let env_paths = apply_env(&mut config_doc.value, env);
    let mut conv = Conv::new(config_file, &config_doc.lines, &env_paths, env);
    conv.duplicates(&config_doc.duplicates);
    let raw = RootRaw::read(Some(&config_doc.value), "", &mut conv);
    let (mut config, host) = conv.config(&raw);
    let database = config.database.database.clone();
    let tls_defaults = config.dispatcher.tls.clone();
    let mut warnings = Vec::new();
    match &tasks_doc {
        Some(Some(doc)) => {
            if matches!(&raw.tasks, TaskList::Items(items) if !items.is_empty()) {
                conv.warnings.push(format!(
                    "{}: tasks: ignored, because {} exists and tasks are read from it (as the \
                     Go tool does); remove one of the two",
                    config_file.display(),
                    tasks_file.display()
                ));
            }
            let (mut task_conv, tasks_raw) = read_tasks_doc(tasks_file, doc, &no_env, env);
            if let Some(tasks_raw) = tasks_raw {
                let values = config.values;
                config.tasks =
                    task_conv.tasks(&tasks_raw, &database, &host, &tls_defaults, values, || {
                        format!("the `tasks:` list in {} is empty", tasks_file.display())
                    });
            }
            errors.append(&mut conv.errors);
            errors.append(&mut task_conv.errors);
            warnings.append(&mut conv.warnings);
            warnings.append(&mut task_conv.warnings);
            config.secret_files.append(&mut conv.secret_files);
            config.secret_files.append(&mut task_conv.secret_files);
        }
        None => {
            let values = config.values;
            config.tasks = conv.tasks(&raw.tasks, &database, &host, &tls_defaults, values, || {
                format!(
                    "{} does not exist and the config has no `tasks:` list; add tasks to one \
                     of them",
                    tasks_file.display()
                )
            });
            errors.append(&mut conv.errors);
            warnings.append(&mut conv.warnings);
            config.secret_files.append(&mut conv.secret_files);
        }
        Some(None) => errors.append(&mut conv.errors),
    }
    // pikachu's own checkpoint writes are never a task's events.
    if let CheckpointStore::Mysql { schema, table } = &config.checkpoint {
        for t in &config.tasks {
            if t.database.eq_ignore_ascii_case(schema) && t.table.eq_ignore_ascii_case(table) {
                errors.push(ConfigError::Value {
                    origin: Origin::File(tasks_file.to_path_buf()),
                    key: format!("task {}", t.task_id),
                    problem: Problem::Invalid(format!(
                        "watches {schema}.{table}, pikachu's own checkpoint table \
                         (checkpoint.table); choose another table for one of them"
                    )),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    config.warnings = warnings;
    Ok(config)
}

/// The tasks file's own problems (keys, types) so far, and its task list when its root
/// is usable.
fn read_tasks_doc<'a>(
    file: &'a Path,
    doc: &'a Doc,
    no_env: &'a BTreeMap<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> (Conv<'a>, Option<TaskList>) {
    let mut conv = Conv::new(file, &doc.lines, no_env, env);
    conv.duplicates(&doc.duplicates);
    let tasks = match &doc.value {
        Value::Mapping(_) | Value::Null => {
            Some(TasksFileRaw::read(Some(&doc.value), "", &mut conv).tasks)
        }
        other => {
            conv.wrong_type("", TASKS_ROOT_EXPECTED, other, false);
            None
        }
    };
    (conv, tasks)
}

/// A tasks.yaml that is a bare list is read as `tasks: [...]`, so that its problems are
/// named `tasks[i].…` like those of the usual form.
fn bare_list_as_tasks(doc: Doc) -> Doc {
    if !matches!(doc.value, Value::Sequence(_)) {
        return doc;
    }
    let mut root = Mapping::new();
    root.insert(Value::String("tasks".into()), doc.value);
    Doc {
        value: Value::Mapping(root),
        lines: doc
            .lines
            .into_iter()
            .map(|(path, line)| (format!("tasks{path}"), line))
            .collect(),
        duplicates: doc
            .duplicates
            .into_iter()
            .map(|(path, line)| (format!("tasks{path}"), line))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading YAML
// ---------------------------------------------------------------------------------------

/// One document as read: every scalar is `Value::String` with the text as written (a
/// plain `~`/`null`/empty scalar is `Value::Null`), and the line of every key by path.
struct Doc {
    value: Value,
    lines: HashMap<String, usize>,
    /// Keys given a second time in one mapping (path, line); the first value is kept.
    duplicates: Vec<(String, Option<usize>)>,
}

/// Reads the first document of `text`; a second one that is not empty is an error.
///
/// Two walks over the document: the first learns its shape (serde_norway's own reading,
/// which knows lists from scalars); the second asks for each scalar as a string, which
/// makes serde_norway hand over the text as written (`0x1F`, `1.10`, `007`) where the
/// first walk would have turned it into a number. A scalar can only be asked for as a
/// string once it is known not to be a list or mapping: that ends the read otherwise.
fn read_yaml(file: &Path, text: &str) -> Result<Doc, ConfigError> {
    let syntax = |e: serde_yaml::Error| syntax_error(file, &e);
    let mut docs = serde_yaml::Deserializer::from_str(text);
    let shape = match docs.next() {
        Some(doc) => KindSeed.deserialize(doc).map_err(syntax)?,
        None => Kind::Null,
    };
    // A trailing `---` with nothing after it yields an empty document: harmless.
    for doc in docs {
        if !matches!(KindSeed.deserialize(doc).map_err(syntax)?, Kind::Null) {
            return Err(ConfigError::MultipleDocuments {
                file: file.to_path_buf(),
            });
        }
    }
    let located = RefCell::new(Located::default());
    let value = match serde_yaml::Deserializer::from_str(text).next() {
        Some(doc) => TextSeed {
            kind: &shape,
            path: String::new(),
            located: &located,
        }
        .deserialize(doc)
        .map_err(syntax)?,
        None => Value::Null,
    };
    let Located { lines, duplicates } = located.into_inner();
    Ok(Doc {
        value,
        lines,
        duplicates,
    })
}

fn syntax_error(file: &Path, error: &serde_yaml::Error) -> ConfigError {
    let location = error.location();
    let line = location.as_ref().map(|l| l.line());
    let column = location.as_ref().map(|l| l.column());
    let mut message = error.to_string();
    // The position is shown up front; drop serde_norway's copy of it at the end.
    if let (Some(l), Some(c)) = (line, column) {
        if let Some(stripped) = message.strip_suffix(&format!(" at line {l} column {c}")) {
            message = stripped.to_string();
        }
    }
    ConfigError::Syntax {
        file: file.to_path_buf(),
        message,
        line,
        column,
    }
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The shape of a document, from the first walk.
enum Kind {
    Null,
    Scalar,
    Seq(Vec<Kind>),
    /// The values, in document order.
    Map(Vec<Kind>),
}

struct KindSeed;

macro_rules! scalars {
    ($($visit:ident: $ty:ty),*) => {
        $(fn $visit<E: de::Error>(self, _: $ty) -> Result<Kind, E> {
            Ok(Kind::Scalar)
        })*
    };
}

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindSeed)
    }
}

impl<'de> Visitor<'de> for KindSeed {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value without tags")
    }

    // Any scalar: its value is read by the second walk.
    scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindSeed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(KindSeed)? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut values = Vec::new();
        while let Some(key) = map.next_key_seed(KindSeed)? {
            if matches!(key, Kind::Seq(_) | Kind::Map(_)) {
                return Err(de::Error::custom(
                    "a key is a list or mapping; keys must be plain names",
                ));
            }
            values.push(map.next_value_seed(KindSeed)?);
        }
        Ok(Kind::Map(values))
    }
}

#[derive(Default)]
struct Located {
    lines: HashMap<String, usize>,
    duplicates: Vec<(String, Option<usize>)>,
}

/// The second walk: one node, whose shape the first walk found.
struct TextSeed<'a> {
    kind: &'a Kind,
    path: String,
    located: &'a RefCell<Located>,
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.kind {
            Kind::Null => d.deserialize_ignored_any(IgnoredAny).map(|_| Value::Null),
            Kind::Scalar => d.deserialize_str(TextVisitor).map(Value::String),
            Kind::Seq(_) | Kind::Map(_) => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the same document as in the first reading")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Kind::Seq(kinds) = self.kind else {
            return Err(de::Error::custom("the document changed while it was read"));
        };
        let mut items = Vec::with_capacity(kinds.len());
        for (index, kind) in kinds.iter().enumerate() {
            let seed = TextSeed {
                kind,
                path: format!("{}[{index}]", self.path),
                located: self.located,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let Kind::Map(kinds) = self.kind else {
            return Err(de::Error::custom("the document changed while it was read"));
        };
        let mut map = Mapping::new();
        for kind in kinds {
            let Some((key, line)) = access.next_key_seed(KeySeed)? else {
                break;
            };
            let path = child_path(&self.path, &key);
            let value = access.next_value_seed(TextSeed {
                kind,
                path: path.clone(),
                located: self.located,
            })?;
            let mut located = self.located.borrow_mut();
            if map.contains_key(key.as_str()) {
                located.duplicates.push((path, line));
            } else {
                if let Some(line) = line {
                    located.lines.insert(path, line);
                }
                map.insert(Value::String(key), value);
            }
        }
        Ok(Value::Mapping(map))
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Reads a mapping key as text, with its line. serde_norway tells where something is only
/// in an error raised while that thing is read, so the key's visitor keeps the key and
/// fails; the error then carries the key's line, and the key has been read all the same.
struct KeySeed;

/// The message of that error; it never leaves `KeySeed`.
const LOCATING_KEY: &str = "pikachu: locating a key";

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = (String, Option<usize>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let slot = RefCell::new(None);
        let error = match d.deserialize_str(KeyVisitor(&slot)) {
            Ok(never) => match never {},
            Err(error) => error,
        };
        match slot.into_inner() {
            Some(key) => Ok((key, line_of(&error.to_string()))),
            None => Err(error),
        }
    }
}

struct KeyVisitor<'a>(&'a RefCell<Option<String>>);

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = std::convert::Infallible;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        *self.0.borrow_mut() = Some(v.to_string());
        Err(E::custom(LOCATING_KEY))
    }
}

/// The line in serde_norway's "… at line 9 column 3"; it leaves the position out at the
/// very start of the document (line 1, column 1).
fn line_of(message: &str) -> Option<usize> {
    match message.rsplit_once(" at line ") {
        Some((_, rest)) => rest.split(' ').next()?.parse().ok(),
        None if message.ends_with(LOCATING_KEY) => Some(1),
        None => None,
    }
}

// ---------------------------------------------------------------------------------------
// The keys: each declared once, with the form of its value
// ---------------------------------------------------------------------------------------

/// Declares a section: a struct with one field per key, and how it is read from a
/// mapping (unknown keys reported with a did-you-mean among `KEYS`). `ENV_KEYS` is how
/// the environment reaches each key.
macro_rules! section {
    ($(#[$doc:meta])* $name:ident { $($key:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        struct $name {
            $($key: $ty,)*
        }

        impl $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];
            #[allow(dead_code)]
            const ENV_KEYS: &'static [(&'static str, Env)] =
                &[$((stringify!($key), <$ty as Read>::ENV)),*];

            fn from_map(map: &Mapping, path: &str, conv: &mut Conv) -> Self {
                conv.unknown_keys(map, path, Self::KEYS);
                $name {
                    $($key: <$ty as Read>::read(
                        map.get(stringify!($key)),
                        &child_path(path, stringify!($key)),
                        conv,
                    ),)*
                }
            }
        }

        impl Read for $name {
            const ENV: Env = Env::PerKey($name::KEYS);

            fn read(value: Option<&Value>, path: &str, conv: &mut Conv) -> Self {
                let empty = Mapping::new();
                let map = match value {
                    None | Some(Value::Null) => &empty,
                    Some(Value::Mapping(map)) => map,
                    Some(other) => {
                        conv.wrong_type(path, "a mapping of keys", other, false);
                        &empty
                    }
                };
                Self::from_map(map, path, conv)
            }
        }
    };
}

section!(
    /// config.yaml.
    RootRaw {
        database: DatabaseRaw,
        tasks: TaskList,
        log: LogRaw,
        server: ServerRaw,
        dispatcher: DispatcherRaw,
        monitor: MonitorRaw,
        callback_host: Field<String>,
        data_dir: Field<String>,
        binlog_archive: Field<String>,
        start_from: StartFromRaw,
        ha: HaRaw,
        checkpoint: CheckpointRaw,
        values: Field<ValueMode>,
    }
);

section!(
    /// tasks.yaml.
    TasksFileRaw { tasks: TaskList, }
);

section!(DatabaseRaw {
    host: Field<String>,
    hosts: Field<Vec<Value>>,
    port: Field<Int>,
    user: Field<String>,
    password: Field<SecretSource>,
    password_file: Field<String>,
    database: Field<String>,
    server_id: Field<Int>,
    charset: Field<String>,
    connect_timeout: Field<GoDuration>,
    read_timeout: Field<GoDuration>,
    tls: Field<DbTlsMode>,
    ca_file: Field<String>,
    cert_file: Field<String>,
    key_file: Field<String>,
    server_public_key_file: Field<String>,
});

section!(HaRaw {
    group: Field<String>,
    lease_timeout: Field<GoDuration>,
});

section!(CheckpointRaw {
    store: Field<String>,
    table: Field<String>,
});

section!(LogRaw {
    level: Field<log::LevelFilter>,
    format: Field<LogFormat>,
    // The Go tool's log file rotation: type-checked, then ignored with a warning.
    directory: Field<String>,
    max_size: Field<Int>,
    max_backups: Field<Int>,
    max_age: Field<Int>,
});

section!(ServerRaw {
    enabled: Field<bool>,
    bind: Field<IpAddr>,
    port: Field<Int>,
    path: Field<String>,
});

section!(DispatcherRaw {
    shutdown_timeout: Field<GoDuration>,
    worker_count: Field<Int>,
    queue_size: Field<Int>,
    timeout: Field<GoDuration>,
    max_retries: Field<Int>,
    retry_base_delay: Field<GoDuration>,
    retry_max_delay: Field<GoDuration>,
    max_connections: Field<Int>,
    max_idle_conns: Field<Int>,
    idle_conn_timeout: Field<GoDuration>,
    batch_size: Field<Int>,
    batch_timeout: Field<GoDuration>,
    secret: Field<SecretSource>,
    secret_file: Field<String>,
    ca_file: Field<String>,
    cert_file: Field<String>,
    key_file: Field<String>,
});

section!(MonitorRaw {
    event_queue_size: Field<Int>,
    event_queue_timeout: Field<GoDuration>,
    batch_size: Field<Int>,
    batch_timeout: Field<GoDuration>,
    flush_interval: Field<GoDuration>,
    heartbeat_period: Field<GoDuration>,
});

section!(TaskRaw {
    task_id: Field<String>,
    name: Field<String>,
    table_name: Field<String>,
    events: Field<Vec<Value>>,
    callback_url: Field<String>,
    headers: Field<Headers>,
    secret: Field<SecretSource>,
    secret_file: Field<String>,
    ca_file: Field<String>,
    cert_file: Field<String>,
    key_file: Field<String>,
    columns: Field<Vec<Value>>,
    exclude_columns: Field<Vec<Value>>,
    on_change: Field<Vec<Value>>,
    filter: Field<String>,
    max_rate: Field<String>,
    max_in_flight: Field<Int>,
    txn: Field<bool>,
    values: Field<ValueMode>,
    backfill: Field<String>,
    backfill_chunk_size: Field<Int>,
    backfill_rows_per_second: Field<Int>,
    backfill_event: Field<String>,
});

section!(
    /// `start_from: {file: …, pos: …}`.
    PositionRaw {
        file: Field<String>,
        pos: Field<Int>,
    }
);

/// How the environment reaches a key of config.yaml.
#[derive(Clone, Copy)]
enum Env {
    /// One variable for the whole value: `PIKACHU_<KEY>` at the top level.
    Whole,
    /// A section: one variable per key, `PIKACHU_<SECTION>_<KEY>`.
    PerKey(&'static [&'static str]),
    /// Not from the environment (the task list).
    Never,
}

/// A key's value read from the tree at `path` (`None`: the key is absent).
trait Read: Sized {
    const ENV: Env = Env::Whole;
    fn read(value: Option<&Value>, path: &str, conv: &mut Conv) -> Self;
}

/// A scalar key (or a list or mapping taken whole): its path, and what was found there.
struct Field<T> {
    key: String,
    /// `None` when absent or null (the Go tool treats both as unset).
    value: Option<Result<T, Problem>>,
}

impl<T> Field<T> {
    fn given(&self) -> bool {
        self.value.is_some()
    }
}

/// The form of a scalar key: how its text (or list, or mapping) becomes a value.
trait Leaf: Sized {
    fn parse(value: &Value) -> Result<Self, Problem>;
}

impl<T: Leaf> Read for Field<T> {
    fn read(value: Option<&Value>, path: &str, _: &mut Conv) -> Self {
        Field {
            key: path.to_string(),
            value: value.filter(|v| !v.is_null()).map(T::parse),
        }
    }
}

/// The value as text; anything else is a type error that shows `found` unless `secret`.
fn text<'v>(value: &'v Value, expected: &'static str, secret: bool) -> Result<&'v str, Problem> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Problem::WrongType {
            expected,
            found: describe(other, secret),
        }),
    }
}

/// How a value is shown in "found …": numbers as written, other text quoted, secrets not.
fn describe(value: &Value, secret: bool) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        _ if secret => "a value".into(),
        Value::String(s) if parse_int(s).is_ok() || s.trim().parse::<f64>().is_ok() => s.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

impl Leaf for String {
    fn parse(value: &Value) -> Result<String, Problem> {
        text(value, "a string", false).map(str::to_string)
    }
}

/// Where a secret's text is: written in the file, in another file (`{file: /path}`, a
/// mounted Kubernetes or Docker secret) or in an environment variable (`{env: NAME}`).
/// Resolved by `Conv::secret`, which reports unreadable files without their content.
#[derive(Clone)]
enum SecretSource {
    Text(String),
    File(PathBuf),
    Env(String),
}

const SECRET_FORMS: &str = "a string, {file: /path/to/secret} or {env: VARIABLE}";

impl Leaf for SecretSource {
    fn parse(value: &Value) -> Result<SecretSource, Problem> {
        let wrong = || Problem::WrongType {
            expected: SECRET_FORMS,
            found: describe(value, true),
        };
        match value {
            Value::String(s) => Ok(SecretSource::Text(s.clone())),
            Value::Mapping(map) if map.len() == 1 => {
                let Some((Value::String(form), Value::String(at))) = map.iter().next() else {
                    return Err(wrong());
                };
                match form.as_str() {
                    "file" => Ok(SecretSource::File(PathBuf::from(at))),
                    "env" => Ok(SecretSource::Env(at.clone())),
                    _ => Err(wrong()),
                }
            }
            _ => Err(wrong()),
        }
    }
}

/// A secret file's text without its trailing line break (`echo pw > file` writes one).
fn read_secret_file(path: &Path) -> Result<String, String> {
    let mut text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => {
            format!("the secret file {} is not UTF-8 text", path.display())
        }
        _ => format!(
            "cannot read the secret file {}: {e}; it must be readable by the user pikachu \
             runs as",
            path.display()
        ),
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(text)
}

impl Leaf for DbTlsMode {
    fn parse(value: &Value) -> Result<Self, Problem> {
        let written = text(value, "a TLS mode", false)?;
        Ok(
            match written
                .trim()
                .to_ascii_lowercase()
                .replace('-', "_")
                .as_str()
            {
                "disabled" => DbTlsMode::Disabled,
                "preferred" => DbTlsMode::Preferred,
                "required" => DbTlsMode::Required,
                "verify_ca" => DbTlsMode::VerifyCa,
                "verify_identity" => DbTlsMode::VerifyIdentity,
                _ => {
                    return Err(Problem::Invalid(format!(
                        "unknown TLS mode {written:?} (expected disabled, preferred, required, \
                     verify_ca or verify_identity)"
                    )))
                }
            },
        )
    }
}

/// An integer as Go's yaml.v3 reads one (`1_000`, `0x10`; a leading 0 is refused).
#[derive(Clone, Copy)]
struct Int(i128);

impl Leaf for Int {
    fn parse(value: &Value) -> Result<Int, Problem> {
        let written = text(value, "a whole number", false)?;
        match parse_int(written) {
            Ok(i) => Ok(Int(i)),
            Err(IntError::NotANumber) => Err(Problem::WrongType {
                expected: "a whole number",
                found: describe(value, false),
            }),
            Err(IntError::LeadingZero(digits)) => Err(Problem::Invalid(format!(
                "{written:?} starts with 0, which the Go tool reads as an octal number; write \
                 {digits} (or 0o{digits} if you mean octal)"
            ))),
        }
    }
}

/// The spellings Go's yaml.v3 accepts for a boolean field (YAML 1.1 style).
impl Leaf for bool {
    fn parse(value: &Value) -> Result<bool, Problem> {
        let written = text(value, "true or false", false)?;
        match written.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" => Ok(true),
            "false" | "no" | "n" | "off" | "0" => Ok(false),
            _ => Err(Problem::WrongType {
                expected: "true or false",
                found: describe(value, false),
            }),
        }
    }
}

/// A non-negative Go duration. A bare integer is nanoseconds, as Go's yaml.v3 reads an
/// integer into a `time.Duration`; `bare` says it was one, for a warning.
#[derive(Clone, Copy)]
struct GoDuration {
    value: Duration,
    bare: bool,
}

impl Leaf for GoDuration {
    fn parse(value: &Value) -> Result<GoDuration, Problem> {
        let written = text(value, "a duration such as 30s", false)?;
        let (nanos, bare) = match parse_int(written) {
            Ok(i) => (Some(i), true),
            Err(_) => (parse_go_duration(written.trim()), false),
        };
        let nanos = nanos.ok_or_else(|| Problem::BadDuration(describe(value, false)))?;
        match u64::try_from(nanos) {
            Ok(nanos) => Ok(GoDuration {
                value: Duration::from_nanos(nanos),
                bare,
            }),
            Err(_) if nanos < 0 => Err(Problem::Invalid(format!(
                "{} is negative; durations must not be",
                describe(value, false)
            ))),
            Err(_) => Err(Problem::Invalid(format!(
                "{} is too long",
                describe(value, false)
            ))),
        }
    }
}

impl Leaf for IpAddr {
    fn parse(value: &Value) -> Result<IpAddr, Problem> {
        let written = text(value, "an IP address", false)?;
        written.trim().parse().map_err(|_| {
            Problem::Invalid(format!(
                "{written:?} is not an IP address (0.0.0.0 for every interface, 127.0.0.1 for \
                 this machine only)"
            ))
        })
    }
}

impl Leaf for log::LevelFilter {
    fn parse(value: &Value) -> Result<Self, Problem> {
        let written = text(value, "a log level", false)?;
        Ok(match written.trim().to_ascii_lowercase().as_str() {
            "" | "info" => log::LevelFilter::Info,
            "trace" => log::LevelFilter::Trace,
            "debug" => log::LevelFilter::Debug,
            "warn" | "warning" => log::LevelFilter::Warn,
            // The Go tool's fatal and panic levels log errors only.
            "error" | "fatal" | "panic" => log::LevelFilter::Error,
            other => {
                return Err(Problem::Invalid(format!(
                    "unknown level {other:?} (expected debug, info, warn, error, fatal, panic)"
                )))
            }
        })
    }
}

impl Leaf for LogFormat {
    fn parse(value: &Value) -> Result<Self, Problem> {
        let written = text(value, "text or json", false)?;
        match written.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Problem::Invalid(format!(
                "unknown format {other:?} (expected text or json)"
            ))),
        }
    }
}

impl Leaf for ValueMode {
    fn parse(value: &Value) -> Result<Self, Problem> {
        let written = text(value, "default or go", false)?;
        match written.trim().to_ascii_lowercase().as_str() {
            "" | "default" => Ok(ValueMode::Default),
            "go" => Ok(ValueMode::Go),
            other => Err(Problem::Invalid(format!(
                "unknown value mode {other:?} (expected default or go)"
            ))),
        }
    }
}

/// A signing secret's text as a key: `None` when empty (not signed).
fn signing_key(written: &str) -> Result<Option<SigningKey>, Problem> {
    if written.is_empty() {
        return Ok(None);
    }
    if !written.trim().starts_with("whsec_") {
        return Err(Problem::BadSecret(
            "not a Standard Webhooks secret: it must start with `whsec_` followed by the \
             base64 of the key (e.g. `whsec_` + the output of `openssl rand -base64 32`)"
                .into(),
        ));
    }
    SigningKey::parse(written)
        .map(Some)
        .map_err(|e| Problem::BadSecret(e.to_string()))
}

/// A list taken whole (task `events`), checked item by item by the validation.
impl Leaf for Vec<Value> {
    fn parse(value: &Value) -> Result<Self, Problem> {
        match value {
            Value::Sequence(items) => Ok(items.clone()),
            other => Err(Problem::WrongType {
                expected: "a list such as [insert, update, delete]",
                found: describe(other, false),
            }),
        }
    }
}

/// Task `headers`: free-form names, checked one by one by the validation.
#[derive(Clone)]
struct Headers(Vec<(String, Value)>);

impl Leaf for Headers {
    fn parse(value: &Value) -> Result<Headers, Problem> {
        match value {
            Value::Mapping(map) => Ok(Headers(
                map.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.clone()))
                    .collect(),
            )),
            other => Err(Problem::WrongType {
                expected: "a mapping of header names to values",
                found: describe(other, false),
            }),
        }
    }
}

/// `start_from`: `latest`, `earliest`, `file:pos` (handy in the environment) or a mapping.
enum StartFromRaw {
    Absent,
    Text(String),
    Position(PositionRaw),
    Bad,
}

impl Read for StartFromRaw {
    fn read(value: Option<&Value>, path: &str, conv: &mut Conv) -> Self {
        match value {
            None | Some(Value::Null) => StartFromRaw::Absent,
            Some(Value::String(s)) => StartFromRaw::Text(s.clone()),
            Some(Value::Mapping(map)) => {
                StartFromRaw::Position(PositionRaw::from_map(map, path, conv))
            }
            Some(other) => {
                conv.wrong_type(path, "latest, earliest or {file: …, pos: …}", other, false);
                StartFromRaw::Bad
            }
        }
    }
}

/// The `tasks:` list; items that are not mappings are reported and left out.
enum TaskList {
    Absent,
    Bad,
    Items(Vec<(usize, TaskRaw)>),
}

impl Read for TaskList {
    const ENV: Env = Env::Never;

    fn read(value: Option<&Value>, path: &str, conv: &mut Conv) -> Self {
        match value {
            None | Some(Value::Null) => TaskList::Absent,
            Some(Value::Sequence(items)) => {
                let mut tasks = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    match item {
                        Value::Mapping(map) => {
                            tasks.push((index, TaskRaw::from_map(map, &item_path, conv)))
                        }
                        other => conv.wrong_type(
                            &item_path,
                            "a task (task_id:, table_name:, events:, callback_url:)",
                            other,
                            false,
                        ),
                    }
                }
                TaskList::Items(tasks)
            }
            Some(other) => {
                conv.wrong_type(path, "a list of tasks (- task_id: …)", other, false);
                TaskList::Bad
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Environment overrides
// ---------------------------------------------------------------------------------------

/// (variable, section or "" for top level, key) for every overridable key, from the
/// declaration of `RootRaw`.
fn env_overridable() -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for (name, env) in RootRaw::ENV_KEYS {
        match env {
            Env::Whole => out.push((format!("{ENV_PREFIX}{}", name.to_uppercase()), "", *name)),
            Env::PerKey(keys) => {
                for key in keys.iter() {
                    let var = format!("{ENV_PREFIX}{}_{}", name.to_uppercase(), key.to_uppercase());
                    out.push((var, *name, *key));
                }
            }
            Env::Never => {}
        }
    }
    out
}

/// Writes each set variable into the tree as text, which is then read like the YAML it
/// replaces. Returns key path → variable, so that a bad value is reported against the
/// variable rather than the file.
fn apply_env(root: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut applied = BTreeMap::new();
    if root.is_null() {
        *root = Value::Mapping(Mapping::new());
    }
    for (var, section, key) in env_overridable() {
        let Some(value) = env(&var) else { continue };
        // A root of the wrong type is reported as such; nothing to override.
        let Value::Mapping(top) = &mut *root else {
            break;
        };
        let target = if section.is_empty() {
            top
        } else {
            let node = top
                .entry(Value::String(section.to_string()))
                .or_insert(Value::Null);
            if node.is_null() {
                *node = Value::Mapping(Mapping::new());
            }
            // A section of the wrong type is reported as such; the override has no place.
            match node {
                Value::Mapping(map) => map,
                _ => continue,
            }
        };
        target.insert(Value::String(key.to_string()), Value::String(value));
        applied.insert(child_path(section, key), var);
    }
    applied
}

// ---------------------------------------------------------------------------------------
// Validation: raw structs → Config
// ---------------------------------------------------------------------------------------

/// What `callback_host` turned out to be; relative callback URLs depend on it.
#[derive(Clone, Debug)]
enum HostState {
    Unset,
    Valid(String),
    /// Set but invalid: already reported, so relative URLs are not reported again.
    Invalid,
}

/// One file's reading and validation: collects every problem and warning.
struct Conv<'a> {
    file: &'a Path,
    lines: &'a HashMap<String, usize>,
    env_paths: &'a BTreeMap<String, String>,
    /// The environment, for secrets written as `{env: NAME}`.
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    secret_files: Vec<(String, PathBuf)>,
}

impl<'a> Conv<'a> {
    fn new(
        file: &'a Path,
        lines: &'a HashMap<String, usize>,
        env_paths: &'a BTreeMap<String, String>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Conv {
            file,
            lines,
            env_paths,
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
            secret_files: Vec::new(),
        }
    }

    fn origin(&self, key: &str) -> Origin {
        match self.env_paths.get(key) {
            Some(var) => Origin::Env(var.clone()),
            None => Origin::File(self.file.to_path_buf()),
        }
    }

    fn problem(&mut self, key: &str, problem: Problem) {
        let origin = self.origin(key);
        self.errors.push(ConfigError::Value {
            origin,
            key: key.to_string(),
            problem,
        });
    }

    fn invalid(&mut self, key: &str, reason: String) {
        self.problem(key, Problem::Invalid(reason));
    }

    fn wrong_type(&mut self, key: &str, expected: &'static str, found: &Value, secret: bool) {
        let found = describe(found, secret);
        self.problem(key, Problem::WrongType { expected, found });
    }

    fn warn(&mut self, key: &str, what: String) {
        let origin = self.origin(key);
        self.warnings.push(format!("{origin}: {key}: {what}"));
    }

    fn unknown_keys(&mut self, map: &Mapping, path: &str, known: &[&'static str]) {
        for key in map.keys().filter_map(Value::as_str) {
            if known.contains(&key) {
                continue;
            }
            let full = child_path(path, key);
            self.errors.push(ConfigError::UnknownKey {
                file: self.file.to_path_buf(),
                line: self.lines.get(&full).copied(),
                key: full,
                suggestion: suggest(key, known).map(|k| child_path(path, k)),
            });
        }
    }

    fn duplicates(&mut self, duplicates: &[(String, Option<usize>)]) {
        for (key, line) in duplicates {
            self.errors.push(ConfigError::DuplicateKey {
                file: self.file.to_path_buf(),
                key: key.clone(),
                line: *line,
            });
        }
    }

    // --- values ------------------------------------------------------------------------

    /// The value, or `None` when absent or bad (then the problem is recorded).
    fn get<T: Clone>(&mut self, field: &Field<T>) -> Option<T> {
        match &field.value {
            None => None,
            Some(Ok(value)) => Some(value.clone()),
            Some(Err(problem)) => {
                self.problem(&field.key, problem.clone());
                None
            }
        }
    }

    /// Text that must be given and not blank.
    fn required(&mut self, field: &Field<String>, hint: &'static str) -> String {
        match self.get(field) {
            Some(text) if !text.trim().is_empty() => text,
            // A value of the wrong type: `get` has reported it.
            _ if matches!(field.value, Some(Err(_))) => String::new(),
            _ => {
                self.problem(&field.key, Problem::Missing(hint));
                String::new()
            }
        }
    }

    fn duration(&mut self, field: &Field<GoDuration>) -> Option<Duration> {
        let GoDuration { value, bare } = self.get(field)?;
        let nanos = value.as_nanos();
        if bare && nanos > 0 && nanos < 1_000_000 {
            self.warn(
                &field.key,
                format!(
                    "{nanos} is read as {nanos} nanoseconds (a number without a unit is \
                     nanoseconds, as in the Go tool); write {nanos}s or {nanos}ms if that is \
                     what you mean"
                ),
            );
        }
        Some(value)
    }

    /// A duration where, as in the Go tool, 0 or leaving it out means the default.
    fn wait(&mut self, field: &Field<GoDuration>, default: Duration) -> Duration {
        self.duration(field)
            .filter(|d| !d.is_zero())
            .unwrap_or(default)
    }

    /// A count where, as in the Go tool, 0 or leaving it out means the default.
    fn count(&mut self, field: &Field<Int>, default: usize) -> usize {
        match self.get(field).map(|Int(n)| n) {
            None | Some(0) => default,
            Some(n) if n < 0 => {
                self.invalid(
                    &field.key,
                    format!(
                        "{n} is negative; use a positive number (0 or leaving it out means the \
                         default, {default})"
                    ),
                );
                default
            }
            Some(n) => match u32::try_from(n) {
                Ok(n) => n as usize,
                Err(_) => {
                    self.invalid(&field.key, format!("{n} is too large"));
                    default
                }
            },
        }
    }

    /// A TCP port; `zero_is_default` as in the Go tool's `server.port`.
    fn port(&mut self, field: &Field<Int>, default: u16, zero_is_default: bool) -> u16 {
        match self.get(field).map(|Int(n)| n) {
            None => default,
            Some(0) if zero_is_default => default,
            Some(p) => match u16::try_from(p) {
                Ok(p) if p >= 1 => p,
                _ => {
                    self.invalid(&field.key, format!("{p} is not a port; use 1 to 65535"));
                    default
                }
            },
        }
    }

    /// A secret's text from the config, a file or the environment. `file` is the
    /// `…_file` key beside it (the Docker convention), an alternative to `{file: …}`.
    fn secret(&mut self, field: &Field<SecretSource>, file: &Field<String>) -> Option<String> {
        let source = match (self.get(field), self.get(file)) {
            (Some(_), Some(_)) => {
                self.invalid(
                    &file.key,
                    format!("both {} and {} are set; keep one", field.key, file.key),
                );
                return None;
            }
            (Some(source), None) => source,
            (None, Some(path)) => SecretSource::File(PathBuf::from(path)),
            (None, None) => return None,
        };
        let key = if file.given() { &file.key } else { &field.key };
        self.resolve_secret(key, source)
    }

    fn resolve_secret(&mut self, key: &str, source: SecretSource) -> Option<String> {
        let resolved = match source {
            SecretSource::Text(text) => Ok(text),
            SecretSource::File(path) => {
                self.secret_files.push((key.to_owned(), path.clone()));
                read_secret_file(&path)
            }
            SecretSource::Env(name) => (self.env)(&name)
                .ok_or_else(|| format!("the environment variable {name} is not set")),
        };
        resolved.map_err(|why| self.invalid(key, why)).ok()
    }

    fn signing_key(
        &mut self,
        field: &Field<SecretSource>,
        file: &Field<String>,
    ) -> Option<SigningKey> {
        let text = self.secret(field, file)?;
        let key_name = if file.given() { &file.key } else { &field.key };
        let key = match signing_key(&text) {
            Ok(key) => key,
            Err(problem) => {
                self.problem(key_name, problem);
                return None;
            }
        };
        if key.is_none() {
            // An empty value (often an unset variable in a template) means "not signed";
            // say so, because someone who wrote the key probably wanted signing.
            self.warn(
                &field.key,
                "is empty, so requests are not signed with it".into(),
            );
        }
        key
    }

    /// A PEM file of certificates, read now so that a wrong path or file is reported
    /// with the others instead of failing the first connection.
    fn certificate_file(&mut self, field: &Field<String>) -> Option<PathBuf> {
        let path = PathBuf::from(self.get(field).filter(|p| !p.trim().is_empty())?);
        match crate::tls::read_certificates(&path) {
            Ok(_) => Some(path),
            Err(e) => {
                self.invalid(&field.key, e.to_string());
                None
            }
        }
    }

    /// `cert_file` and `key_file`: both or neither, each a readable PEM file.
    fn client_cert(&mut self, cert: &Field<String>, key: &Field<String>) -> Option<ClientCert> {
        let cert_file = self.certificate_file(cert);
        let key_file = match self.get(key).filter(|p| !p.trim().is_empty()) {
            None => None,
            Some(path) => {
                let path = PathBuf::from(path);
                match crate::tls::read_private_key(&path) {
                    Ok(_) => Some(path),
                    Err(e) => {
                        self.invalid(&key.key, e.to_string());
                        None
                    }
                }
            }
        };
        match (cert.given(), key.given()) {
            (true, false) => self.invalid(
                &key.key,
                format!(
                    "is missing: {} needs the private key it was issued for",
                    cert.key
                ),
            ),
            (false, true) => self.invalid(
                &cert.key,
                format!("is missing: {} is the key of a certificate", key.key),
            ),
            _ => {}
        }
        Some(ClientCert {
            cert_file: cert_file?,
            key_file: key_file?,
        })
    }

    fn http_tls(
        &mut self,
        ca: &Field<String>,
        cert: &Field<String>,
        key: &Field<String>,
    ) -> HttpTls {
        HttpTls {
            ca_file: self.certificate_file(ca),
            client_cert: self.client_cert(cert, key),
        }
    }

    fn warn_ignored<T>(&mut self, field: &Field<T>, why: &str) {
        if field.given() {
            self.warn(
                &field.key,
                format!("accepted for compatibility with the Go tool and ignored: {why}"),
            );
        }
    }

    // --- sections ----------------------------------------------------------------------

    fn config(&mut self, raw: &RootRaw) -> (Config, HostState) {
        let database = self.database(&raw.database);
        let log = self.log(&raw.log);
        let server = self.server(&raw.server);
        let dispatcher = self.dispatcher(&raw.dispatcher);
        let monitor = self.monitor(&raw.monitor);
        let host = self.callback_host(&raw.callback_host);
        let data_dir = match self.get(&raw.data_dir) {
            None => PathBuf::from("data"),
            Some(dir) if dir.trim().is_empty() => {
                self.invalid(
                    &raw.data_dir.key,
                    "is empty; name a directory (default: data, relative to the working \
                     directory)"
                        .into(),
                );
                PathBuf::from("data")
            }
            Some(dir) => PathBuf::from(dir),
        };
        let start_from = self.start_from(&raw.start_from);
        let binlog_archive = self
            .get(&raw.binlog_archive)
            .filter(|d| !d.trim().is_empty())
            .map(PathBuf::from);
        if let Some(dir) = &binlog_archive {
            if !dir.is_dir() {
                self.invalid(
                    &raw.binlog_archive.key,
                    format!(
                        "{} is not a directory pikachu can read; name the directory the \
                         archived binlog files are in",
                        dir.display()
                    ),
                );
            }
        }
        let values = self.get(&raw.values).unwrap_or_default();
        let callback_host = match &host {
            HostState::Valid(host) => Some(host.clone()),
            _ => None,
        };
        let ha = self.ha(&raw.ha);
        let checkpoint = self.checkpoint_store(&raw.checkpoint, &ha);
        let config = Config {
            database,
            log,
            server,
            dispatcher,
            monitor,
            callback_host,
            data_dir,
            binlog_archive,
            ha,
            checkpoint,
            start_from,
            values,
            tasks: Vec::new(),
            secret_files: Vec::new(),
            warnings: Vec::new(),
        };
        (config, host)
    }

    fn database(&mut self, s: &DatabaseRaw) -> DatabaseConfig {
        // Not in the Go tool, which requires the port; 3306 is what everyone would write.
        let port = self.port(&s.port, 3306, false);
        let hosts = self.hosts(&s.hosts, port);
        let host = match hosts.first() {
            Some((host, _)) if !s.host.given() => host.clone(),
            Some(_) => {
                self.invalid(
                    &s.hosts.key,
                    "set database.host (one server) or database.hosts (servers to try in \
                     order), not both"
                        .into(),
                );
                String::new()
            }
            None => self.required(&s.host, "the MySQL/MariaDB server to read the binlog from"),
        };
        let hosts = if hosts.is_empty() {
            vec![(host.clone(), port)]
        } else {
            hosts
        };
        let port = hosts.first().map_or(port, |(_, p)| *p);
        let user = self.required(
            &s.user,
            "a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT",
        );
        let database = self.required(&s.database, "the database whose tables the tasks watch");
        let server_id = match self.get(&s.server_id).map(|Int(n)| n) {
            None | Some(0) => {
                if !matches!(s.server_id.value, Some(Err(_))) {
                    self.problem(
                        &s.server_id.key,
                        Problem::Missing(
                            "a non-zero replica id, unique among the server's replicas",
                        ),
                    );
                }
                0
            }
            Some(id) => u32::try_from(id).unwrap_or_else(|_| {
                self.invalid(
                    &s.server_id.key,
                    format!("{id} is not between 1 and 4294967295"),
                );
                0
            }),
        };
        let password = Secret(
            self.secret(&s.password, &s.password_file)
                .unwrap_or_default(),
        );
        let tls = self.database_tls(s);
        let server_public_key_file = self
            .get(&s.server_public_key_file)
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        if let Some(path) = &server_public_key_file {
            if let Err(e) = std::fs::read(path) {
                self.invalid(
                    &s.server_public_key_file.key,
                    format!("cannot read {}: {e}", path.display()),
                );
            }
        }
        let charset = match self.get(&s.charset) {
            None => "utf8mb4".to_string(),
            Some(c) if c.is_empty() => "utf8mb4".to_string(),
            Some(c) => {
                // It ends up in `SET NAMES <charset>`: only a plain name may pass.
                if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    self.invalid(
                        &s.charset.key,
                        format!("{c:?} is not a character set name (e.g. utf8mb4, latin1)"),
                    );
                }
                c
            }
        };
        DatabaseConfig {
            host,
            port,
            hosts,
            user,
            password,
            database,
            server_id,
            charset,
            connect_timeout: self.wait(&s.connect_timeout, Duration::from_secs(10)),
            read_timeout: self.wait(&s.read_timeout, Duration::from_secs(30)),
            tls,
            server_public_key_file,
        }
    }

    /// `database.hosts`: `host` or `host:port` items (a list, or one comma-separated
    /// string as the environment gives it), `database.port` by default.
    fn hosts(&mut self, field: &Field<Vec<Value>>, default_port: u16) -> Vec<(String, u16)> {
        let items: Vec<String> = match &field.value {
            None => return Vec::new(),
            Some(Ok(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => describe(other, false),
                })
                .collect(),
            // From the environment (PIKACHU_DATABASE_HOSTS=a:3306,b:3306): one string.
            Some(Err(_)) => match self
                .env_paths
                .get(&field.key)
                .and_then(|var| (self.env)(var))
            {
                Some(text) => text.split(',').map(str::to_owned).collect(),
                None => {
                    self.get(field);
                    return Vec::new();
                }
            },
        };
        let mut hosts = Vec::new();
        for item in items {
            let item = item.trim();
            let (host, port) = match item.rsplit_once(':') {
                // `[::1]:3306`, `db:3306`; a bare IPv6 address has more than one colon.
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
                    Ok(p) if p > 0 => (h.trim_matches(['[', ']']).to_owned(), p),
                    _ => {
                        self.invalid(&field.key, format!("{item:?}: {p:?} is not a port"));
                        continue;
                    }
                },
                _ => (item.to_owned(), default_port),
            };
            if host.is_empty() {
                self.invalid(&field.key, format!("{item:?} names no host"));
                continue;
            }
            hosts.push((host, port));
        }
        if hosts.is_empty() {
            self.invalid(
                &field.key,
                "is empty; list the servers to try, e.g. [db1:3306, db2:3306]".into(),
            );
        }
        hosts
    }

    fn ha(&mut self, s: &HaRaw) -> HaConfig {
        let group = self
            .get(&s.group)
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty());
        if let Some(g) = &group {
            // It becomes part of a lock name (64 characters at most on MySQL).
            if g.len() > 48
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                self.invalid(
                    &s.group.key,
                    format!("{g:?}: use at most 48 letters, digits, '-', '_' or '.'"),
                );
            }
        }
        let lease_timeout = self.wait(&s.lease_timeout, Duration::from_secs(10));
        if lease_timeout < Duration::from_secs(3) {
            self.invalid(
                &s.lease_timeout.key,
                format!(
                    "{} is too short: the server checks idle sessions once a second; use 3s or \
                     more (default 10s)",
                    format_duration(lease_timeout)
                ),
            );
        }
        HaConfig {
            group,
            lease_timeout,
        }
    }

    fn checkpoint_store(&mut self, s: &CheckpointRaw, ha: &HaConfig) -> CheckpointStore {
        let store = self.get(&s.store).unwrap_or_default();
        match store.trim().to_ascii_lowercase().as_str() {
            "" | "file" => {
                if s.table.given() {
                    self.warn(
                        &s.table.key,
                        "is only used with checkpoint.store: mysql".into(),
                    );
                }
                if ha.group.is_some() {
                    self.warn(
                        &s.store.key,
                        "is file while ha.group is set: a standby on another host starts without \
                         the active's checkpoint; use checkpoint.store: mysql (or one shared \
                         data_dir on one host)"
                            .into(),
                    );
                }
                CheckpointStore::File
            }
            "mysql" => {
                let written = self
                    .get(&s.table)
                    .unwrap_or_else(|| "pikachu.checkpoints".to_owned());
                let name_ok = |n: &str| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                match written.trim().split_once('.') {
                    Some((schema, table)) if name_ok(schema) && name_ok(table) => {
                        CheckpointStore::Mysql {
                            schema: schema.to_owned(),
                            table: table.to_owned(),
                        }
                    }
                    _ => {
                        self.invalid(
                            &s.table.key,
                            format!(
                                "{written:?} is not schema.table (letters, digits and _), e.g. \
                                 pikachu.checkpoints"
                            ),
                        );
                        CheckpointStore::File
                    }
                }
            }
            other => {
                self.invalid(
                    &s.store.key,
                    format!("unknown store {other:?} (expected file or mysql)"),
                );
                CheckpointStore::File
            }
        }
    }

    fn database_tls(&mut self, s: &DatabaseRaw) -> DbTls {
        let ca_file = self.certificate_file(&s.ca_file);
        let client_cert = self.client_cert(&s.cert_file, &s.key_file);
        // As the MySQL client: a CA without a mode means "verify with it".
        let mode = self.get(&s.tls).unwrap_or(if s.ca_file.given() {
            DbTlsMode::VerifyCa
        } else {
            DbTlsMode::Preferred
        });
        if s.ca_file.given() && !mode.verifies() {
            self.warn(
                &s.ca_file.key,
                format!(
                    "is not used with tls: {} (the server's certificate is not verified); \
                     set tls: verify_identity (or verify_ca) to verify it",
                    mode.as_str()
                ),
            );
        }
        if mode == DbTlsMode::Disabled && (s.cert_file.given() || s.key_file.given()) {
            self.warn(
                &s.cert_file.key,
                "is not used with tls: disabled (no TLS, so no client certificate)".into(),
            );
        }
        DbTls {
            mode,
            ca_file,
            client_cert,
        }
    }

    fn log(&mut self, s: &LogRaw) -> LogConfig {
        let level = self.get(&s.level).unwrap_or(log::LevelFilter::Info);
        let format = self.get(&s.format).unwrap_or(LogFormat::Text);
        self.get(&s.directory);
        for field in [&s.max_size, &s.max_backups, &s.max_age] {
            if let Some(Int(n)) = self.get(field) {
                if n < 0 {
                    self.invalid(&field.key, format!("{n} is negative"));
                }
            }
        }
        const WHY: &str = "pikachu logs to stderr; rotate with the service manager";
        self.warn_ignored(&s.directory, WHY);
        for field in [&s.max_size, &s.max_backups, &s.max_age] {
            self.warn_ignored(field, WHY);
        }
        LogConfig { level, format }
    }

    fn server(&mut self, s: &ServerRaw) -> ServerConfig {
        let enabled = self.get(&s.enabled).unwrap_or(false);
        let bind = self
            .get(&s.bind)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // As in the Go tool, 0 means the default.
        let port = self.port(&s.port, 8080, true);
        let path = match self.get(&s.path) {
            None => "/health".to_string(),
            Some(p) if p.is_empty() => "/health".to_string(),
            Some(p) => {
                let reason = if !p.starts_with('/') {
                    Some(format!("{p:?} must start with / (e.g. /health)"))
                } else if p == "/metrics" {
                    Some(
                        "/metrics is where pikachu serves its metrics; choose another health \
                         path (default /health)"
                            .into(),
                    )
                } else if p
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "?#{}".contains(c))
                {
                    Some(format!(
                        "{p:?} must be a plain path without spaces, ?, #, {{ or }}"
                    ))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    self.invalid(&s.path.key, reason);
                }
                p
            }
        };
        ServerConfig {
            enabled,
            bind,
            port,
            path,
        }
    }

    fn dispatcher(&mut self, s: &DispatcherRaw) -> DispatcherConfig {
        let worker_count = self.count(&s.worker_count, 20);
        let queue_size = self.count(&s.queue_size, 1000);
        let timeout = self.wait(&s.timeout, Duration::from_secs(30));
        let max_retries = match self.get(&s.max_retries).map(|Int(n)| n) {
            None => Some(3),
            Some(-1) => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.invalid(
                        &s.max_retries.key,
                        format!("{n} is out of range; use 0 or more, or -1 to retry for ever"),
                    );
                    Some(3)
                }
            },
        };
        let retry_base_delay = self.wait(&s.retry_base_delay, Duration::from_secs(5));
        let retry_max_delay = self.wait(&s.retry_max_delay, Duration::from_secs(60));
        if retry_base_delay > retry_max_delay {
            let key = if s.retry_max_delay.given() {
                &s.retry_max_delay.key
            } else {
                &s.retry_base_delay.key
            };
            self.invalid(
                key,
                format!(
                    "retry_base_delay ({}) is longer than retry_max_delay ({}); the delay starts \
                     at the first and doubles up to the second",
                    format_duration(retry_base_delay),
                    format_duration(retry_max_delay)
                ),
            );
        }
        let max_connections = self.count(&s.max_connections, 100);
        let max_idle_conns = self.count(&s.max_idle_conns, 20);
        if max_idle_conns > max_connections {
            let key = if s.max_idle_conns.given() {
                &s.max_idle_conns.key
            } else {
                &s.max_connections.key
            };
            self.invalid(
                key,
                format!(
                    "max_idle_conns ({max_idle_conns}) is more than max_connections \
                     ({max_connections})"
                ),
            );
        }
        DispatcherConfig {
            worker_count,
            queue_size,
            timeout,
            max_retries,
            retry_base_delay,
            retry_max_delay,
            max_connections,
            max_idle_conns,
            idle_conn_timeout: self.wait(&s.idle_conn_timeout, Duration::from_secs(90)),
            batch_size: self.count(&s.batch_size, 1),
            batch_timeout: self.wait(&s.batch_timeout, Duration::from_millis(100)),
            shutdown_timeout: self.wait(&s.shutdown_timeout, Duration::from_secs(30)),
            secret: self.signing_key(&s.secret, &s.secret_file),
            tls: self.http_tls(&s.ca_file, &s.cert_file, &s.key_file),
        }
    }

    fn monitor(&mut self, s: &MonitorRaw) -> MonitorConfig {
        let event_queue_size = self.count(&s.event_queue_size, 10000);
        let event_queue_timeout = self.wait(&s.event_queue_timeout, Duration::from_secs(2));
        let batch_size = self.count(&s.batch_size, 1);
        let batch_timeout = self.wait(&s.batch_timeout, Duration::from_millis(50));
        let flush_interval = self.wait(&s.flush_interval, Duration::from_secs(1));
        let heartbeat_period = self.wait(&s.heartbeat_period, Duration::from_secs(1));
        if heartbeat_period < Duration::from_millis(1) {
            self.invalid(
                &s.heartbeat_period.key,
                "must be at least 1ms (the server counts heartbeats in milliseconds)".into(),
            );
        }
        // The binlog reader hands events over one by one; the Go tool had already made
        // these two no-ops.
        const WHY: &str = "the binlog reader hands events to the dispatcher one by one";
        self.warn_ignored(&s.batch_size, WHY);
        self.warn_ignored(&s.batch_timeout, WHY);
        MonitorConfig {
            event_queue_size,
            event_queue_timeout,
            batch_size,
            batch_timeout,
            flush_interval,
            heartbeat_period,
        }
    }

    fn callback_host(&mut self, field: &Field<String>) -> HostState {
        let Some(host) = self.get(field).filter(|h| !h.is_empty()) else {
            return if matches!(field.value, Some(Err(_))) {
                HostState::Invalid
            } else {
                HostState::Unset
            };
        };
        let reason = match absolute_url(&host) {
            Err(reason) => Some(reason),
            Ok(_) if host.contains('?') => Some(
                "it has a ?query; callback_host is only a scheme, host and optional path prefix"
                    .to_string(),
            ),
            Ok(_) => None,
        };
        if let Some(reason) = reason {
            let url = (!has_userinfo(&host)).then(|| host.clone());
            self.problem(&field.key, Problem::BadUrl { url, reason });
            return HostState::Invalid;
        }
        HostState::Valid(host.trim_end_matches('/').to_string())
    }

    fn start_from(&mut self, raw: &StartFromRaw) -> StartFrom {
        const EXPECTED: &str = "expected latest, earliest, {file: mysql-bin.000003, pos: 4} \
                                (file:pos in the environment), a MariaDB GTID state such as \
                                0-1-42, or a MySQL GTID set such as \
                                3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42";
        const KEY: &str = "start_from";
        match raw {
            StartFromRaw::Absent | StartFromRaw::Bad => StartFrom::Latest,
            StartFromRaw::Text(s) => {
                let s = s.trim();
                match s.to_ascii_lowercase().as_str() {
                    "" | "latest" => return StartFrom::Latest,
                    "earliest" => return StartFrom::Earliest,
                    _ => {}
                }
                if crate::checkpoint::parse_mariadb_gtid_state(s).is_some() {
                    return StartFrom::Gtid(s.replace(' ', ""));
                }
                if let Some(set) = crate::checkpoint::GtidSet::parse(s) {
                    return StartFrom::GtidSet(set.to_string());
                }
                match s.rsplit_once(':') {
                    Some((file, pos)) if !file.is_empty() => match pos.parse::<u64>() {
                        Ok(pos) => self.position(KEY, file.to_string(), pos),
                        Err(_) => {
                            self.invalid(
                                KEY,
                                format!("{s:?}: {pos:?} is not a byte position; {EXPECTED}"),
                            );
                            StartFrom::Latest
                        }
                    },
                    _ => {
                        self.invalid(KEY, format!("{s:?} is not a start position; {EXPECTED}"));
                        StartFrom::Latest
                    }
                }
            }
            StartFromRaw::Position(p) => {
                let file = self.get(&p.file).filter(|f| !f.trim().is_empty());
                let pos = self.get(&p.pos);
                if file.is_none() && !matches!(p.file.value, Some(Err(_))) {
                    self.problem(
                        &p.file.key,
                        Problem::Missing("the binlog file to start in, e.g. mysql-bin.000003"),
                    );
                }
                if !p.pos.given() {
                    self.problem(
                        &p.pos.key,
                        Problem::Missing("the byte position in that file; 4 is its first event"),
                    );
                }
                match (file, pos) {
                    (Some(file), Some(Int(pos))) => match u64::try_from(pos) {
                        Ok(pos) => self.position(&p.pos.key, file, pos),
                        Err(_) => {
                            self.invalid(&p.pos.key, format!("{pos} is negative"));
                            StartFrom::Latest
                        }
                    },
                    _ => StartFrom::Latest,
                }
            }
        }
    }

    fn position(&mut self, key: &str, file: String, pos: u64) -> StartFrom {
        if file
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\\')
        {
            self.invalid(
                key,
                format!("{file:?} is not a binlog file name (e.g. mysql-bin.000003)"),
            );
        }
        if pos < 4 {
            self.invalid(
                key,
                format!("position {pos} is inside the file header; the first event is at 4"),
            );
        }
        StartFrom::Position { file, pos }
    }

    // --- tasks -------------------------------------------------------------------------

    fn tasks(
        &mut self,
        list: &TaskList,
        database: &str,
        host: &HostState,
        defaults: &HttpTls,
        values: ValueMode,
        empty_reason: impl FnOnce() -> String,
    ) -> Vec<Task> {
        let items: &[(usize, TaskRaw)] = match list {
            TaskList::Bad => return Vec::new(),
            TaskList::Absent => &[],
            TaskList::Items(items) => items,
        };
        if items.is_empty() {
            self.errors.push(ConfigError::NoTasks {
                file: self.file.to_path_buf(),
                reason: empty_reason(),
            });
            return Vec::new();
        }
        let mut tasks = Vec::new();
        let mut first_index: BTreeMap<String, usize> = BTreeMap::new();
        for (index, raw) in items {
            let Some(task) = self.task(raw, database, host, defaults, values) else {
                continue;
            };
            if let Some(first) = first_index.get(&task.task_id) {
                self.errors.push(ConfigError::DuplicateTaskId {
                    file: self.file.to_path_buf(),
                    index: *index,
                    task_id: task.task_id.clone(),
                    first: *first,
                });
            } else {
                first_index.insert(task.task_id.clone(), *index);
            }
            tasks.push(task);
        }
        tasks
    }

    /// `None` when the task is too broken to use; its problems are recorded. A task with
    /// problems is still returned when it has an id, so that a duplicate id is reported
    /// too; the load fails on the recorded errors either way.
    fn task(
        &mut self,
        s: &TaskRaw,
        database: &str,
        host: &HostState,
        defaults: &HttpTls,
        default_values: ValueMode,
    ) -> Option<Task> {
        let task_id = self.required(
            &s.task_id,
            "a unique name for the task, sent as X-Pikachu-Task-Id",
        );
        if task_id.chars().any(char::is_control) {
            self.invalid(
                &s.task_id.key,
                format!("{task_id:?} contains control characters"),
            );
        }
        let name = self
            .get(&s.name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| task_id.clone());
        let table_name = self.required(
            &s.table_name,
            "the table whose row changes this task delivers",
        );
        let (database, table) = match table_name.split_once('.') {
            _ if table_name.is_empty() => (String::new(), String::new()),
            // `db.table` watches a table of another database on the same server.
            Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                (db.to_string(), table.to_string())
            }
            Some(_) => {
                self.invalid(
                    &s.table_name.key,
                    format!("{table_name:?} is neither a table name nor database.table"),
                );
                (String::new(), String::new())
            }
            None => (database.to_string(), table_name),
        };
        let events = self.events(&s.events);
        let callback_url = self.callback_url(&s.callback_url, host);
        let headers = self.headers(&s.headers);
        let secret = self.signing_key(&s.secret, &s.secret_file);
        let own_tls = self.http_tls(&s.ca_file, &s.cert_file, &s.key_file);
        let tls = HttpTls {
            ca_file: own_tls.ca_file.or_else(|| defaults.ca_file.clone()),
            client_cert: own_tls.client_cert.or_else(|| defaults.client_cert.clone()),
        };
        let columns = match (self.names(&s.columns), self.names(&s.exclude_columns)) {
            (Some(_), Some(_)) => {
                self.invalid(
                    &s.exclude_columns.key,
                    "set columns (only these) or exclude_columns (all but these), not both".into(),
                );
                crate::filter::Columns::All
            }
            (Some(only), None) => crate::filter::Columns::Only(only),
            (None, Some(except)) => crate::filter::Columns::Except(except),
            (None, None) => crate::filter::Columns::All,
        };
        let on_change = self.names(&s.on_change).unwrap_or_default();
        if !on_change.is_empty() && !events.update {
            self.warn(
                &s.on_change.key,
                "has no effect: the task does not take updates (events)".into(),
            );
        }
        let filter = self
            .get(&s.filter)
            .filter(|f| !f.trim().is_empty())
            .and_then(|text| {
                crate::filter::Filter::parse(&text)
                    .map_err(|e| {
                        self.invalid(
                            &s.filter.key,
                            format!("{e} in {text:?}; see README \"Row filters\" for the syntax"),
                        )
                    })
                    .ok()
            });
        let max_rate = self
            .get(&s.max_rate)
            .and_then(|text| match text.trim().parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => Some(r),
                _ => {
                    self.invalid(
                        &s.max_rate.key,
                        format!(
                            "{text:?} is not a rate; write requests per second, e.g. 20 or 0.5"
                        ),
                    );
                    None
                }
            });
        let max_in_flight = match self.get(&s.max_in_flight).map(|Int(n)| n) {
            None => None,
            Some(n) if n >= 1 => usize::try_from(n).ok(),
            Some(n) => {
                self.invalid(
                    &s.max_in_flight.key,
                    format!("{n} is not a count of 1 or more"),
                );
                None
            }
        };
        let values = self.get(&s.values);
        let values = values.unwrap_or(default_values);
        let backfill_initial = match self.get(&s.backfill).as_deref() {
            None | Some("" | "none") => false,
            // The Go tool had no backfill, and its value shapes come from go-mysql's
            // decoding of the binlog: rows read with a SELECT would reach a receiver
            // of the Go tool's shapes in other shapes.
            Some("initial") if values == ValueMode::Go => {
                self.invalid(
                    &s.backfill.key,
                    "a task with `values: go` cannot backfill (its receiver expects the Go \
                     tool's value shapes, which only the binlog gives); move the task to \
                     `values: default` first, or leave `backfill` unset"
                        .into(),
                );
                false
            }
            Some("initial") => true,
            Some(other) => {
                self.invalid(
                    &s.backfill.key,
                    format!("{other:?} is not a backfill mode: use `initial` or `none`"),
                );
                false
            }
        };
        let backfill_chunk_size = self.count(&s.backfill_chunk_size, 1000);
        let backfill_rows_per_second = self.count(&s.backfill_rows_per_second, 0);
        let backfill_as_insert = match self.get(&s.backfill_event).as_deref() {
            None | Some("" | "read") => false,
            Some("insert") => true,
            Some(other) => {
                self.invalid(
                    &s.backfill_event.key,
                    format!(
                        "{other:?} is not an event for backfilled rows: use `read` or `insert`"
                    ),
                );
                false
            }
        };
        if task_id.is_empty() {
            return None;
        }
        Some(Task {
            task_id,
            name,
            database,
            table,
            events,
            // Only used when the load succeeds, which needs a valid URL.
            callback_url: callback_url.unwrap_or_default(),
            headers,
            secret,
            tls,
            columns,
            on_change,
            filter,
            max_rate,
            max_in_flight,
            txn: self.get(&s.txn).unwrap_or(false),
            values,
            backfill_initial,
            backfill_chunk_size,
            backfill_rows_per_second,
            backfill_as_insert,
        })
    }

    /// A list of column names; `None` when absent or not a list of names.
    fn names(&mut self, field: &Field<Vec<Value>>) -> Option<Vec<String>> {
        let items = self.get(field)?;
        let mut names = Vec::with_capacity(items.len());
        for item in &items {
            match item {
                Value::String(s) if !s.trim().is_empty() => names.push(s.trim().to_owned()),
                other => {
                    self.invalid(
                        &field.key,
                        format!("{} is not a column name", describe(other, false)),
                    );
                    return None;
                }
            }
        }
        if names.is_empty() {
            self.invalid(&field.key, "is empty; name at least one column".into());
            return None;
        }
        Some(names)
    }

    fn events(&mut self, field: &Field<Vec<Value>>) -> EventFilter {
        let mut filter = EventFilter::default();
        let items = match self.get(field) {
            Some(items) => items,
            None => {
                if !field.given() {
                    self.problem(
                        &field.key,
                        Problem::Missing(
                            "the row changes to deliver, e.g. [insert, update, delete]",
                        ),
                    );
                }
                return filter;
            }
        };
        if items.is_empty() {
            self.invalid(
                &field.key,
                "is empty; list at least one of insert, update, delete".into(),
            );
        }
        for item in &items {
            let written = match item {
                Value::String(s) => s.clone(),
                other => describe(other, false),
            };
            // Duplicates are harmless and folded, as the Go tool does.
            match written.trim().to_ascii_lowercase().as_str() {
                "insert" => filter.insert = true,
                "update" => filter.update = true,
                "delete" => filter.delete = true,
                _ => self.invalid(
                    &field.key,
                    format!("unknown event {written:?} (expected insert, update, delete)"),
                ),
            }
        }
        filter
    }

    fn callback_url(&mut self, field: &Field<String>, host: &HostState) -> Option<Uri> {
        let Some(url) = self.get(field).filter(|u| !u.trim().is_empty()) else {
            if !matches!(field.value, Some(Err(_))) {
                self.problem(
                    &field.key,
                    Problem::Missing(
                        "where to POST the changes: https://host/path, or /path joined to \
                         callback_host",
                    ),
                );
            }
            return None;
        };
        let result =
            if url.starts_with("//") {
                Err("it starts with //; write https://host/path, or a path such as /webhook".into())
            } else if url.starts_with('/') {
                match host {
                    HostState::Valid(host) => absolute_url(&format!("{host}{url}")),
                    HostState::Invalid => return None,
                    HostState::Unset => Err("it is a path, but callback_host is not set; set \
                                         callback_host (e.g. http://localhost:3000) or write an \
                                         absolute http(s) URL"
                        .into()),
                }
            } else if url.contains("://") {
                absolute_url(&url)
            } else {
                Err("it is neither an absolute http(s) URL (https://host/path) nor a path starting \
                 with / (joined to callback_host)"
                .into())
            };
        match result {
            Ok(uri) => Some(uri),
            Err(reason) => {
                let shown = (!has_userinfo(&url)).then(|| url.clone());
                self.problem(&field.key, Problem::BadUrl { url: shown, reason });
                None
            }
        }
    }

    fn headers(&mut self, field: &Field<Headers>) -> Vec<(HeaderName, HeaderValue)> {
        let Some(Headers(entries)) = self.get(field) else {
            return Vec::new();
        };
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for (name, value) in entries {
            let key = format!("{}.{name}", field.key);
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.invalid(&key, format!("{name:?} is not a valid HTTP header name"));
                continue;
            };
            if RESERVED_HEADERS.contains(&header.as_str()) {
                self.invalid(
                    &key,
                    format!("{name} is set by pikachu itself and cannot be replaced"),
                );
                continue;
            }
            if headers.iter().any(|(n, _)| *n == header) {
                self.invalid(
                    &key,
                    format!("header {name} is given twice (names ignore case)"),
                );
                continue;
            }
            if value.is_null() {
                self.problem(
                    &key,
                    Problem::Missing("a header value; write \"\" for an empty one"),
                );
                continue;
            }
            // Header values often carry credentials (`Authorization`): they may come from
            // a file or the environment like any secret.
            let text = match SecretSource::parse(&value) {
                Ok(source) => match self.resolve_secret(&key, source) {
                    Some(text) => text,
                    None => continue,
                },
                Err(problem) => {
                    self.problem(&key, problem);
                    continue;
                }
            };
            // A line break would end the header and let the value inject others.
            match HeaderValue::from_bytes(text.as_bytes()) {
                Ok(value) => headers.push((header, value)),
                Err(_) => self.invalid(
                    &key,
                    "the value contains a line break or control character".into(),
                ),
            }
        }
        headers
    }
}

/// Headers pikachu sets on every request, lower-case; a task must not replace them (the
/// signature and event id headers in particular are what receivers verify and
/// de-duplicate on).
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-pikachu-event-id",
    "x-pikachu-task-id",
];

fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..authority_end].contains('@')
}

/// An absolute callback URL as the Go tool accepts it (http/https, a host, a port in
/// range, no credentials, no fragment); `Err` says what is wrong without quoting it.
fn absolute_url(url: &str) -> Result<Uri, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("it has no http:// or https:// in front".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "the scheme is {scheme:?}; only http and https are supported"
        ));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(
            "it contains user:password@; send credentials with the task's headers \
             (e.g. Authorization) instead"
                .into(),
        );
    }
    if tail.contains('#') {
        return Err("it contains a #fragment, which is never sent to the server".into());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("unexpected text after the IPv6 address".into()),
            },
            None => return Err("the IPv6 address is missing its closing ]".into()),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p >= 1 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("the port {port:?} is not between 1 and 65535")),
        }
    }
    url.parse::<Uri>()
        .map_err(|e| format!("it is not a valid URL ({e})"))
}

/// The known key closest to a typo, when it is close enough to be a typo.
fn suggest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Debug)]
enum IntError {
    NotANumber,
    /// Decimal digits with a leading zero: the digits without it.
    LeadingZero(String),
}

/// An integer as Go's yaml.v3 reads one: optional sign, `_` separators, and `0x`, `0o`,
/// `0b` prefixes. A leading `0` (octal to yaml.v3, decimal to most people) is refused
/// rather than guessed.
fn parse_int(text: &str) -> Result<i128, IntError> {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits: String = unsigned.chars().filter(|c| *c != '_').collect();
    let (radix, body) = match digits.get(..2) {
        Some("0x") | Some("0X") => (16, &digits[2..]),
        Some("0o") | Some("0O") => (8, &digits[2..]),
        Some("0b") | Some("0B") => (2, &digits[2..]),
        _ => (10, digits.as_str()),
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(IntError::NotANumber);
    }
    if radix == 10 && body.len() > 1 && body.starts_with('0') {
        return Err(IntError::LeadingZero(
            body.trim_start_matches('0').to_string(),
        ));
    }
    let value = i128::from_str_radix(body, radix).map_err(|_| IntError::NotANumber)?;
    Ok(if negative { -value } else { value })
}

/// Go's `time.ParseDuration`, in nanoseconds (may be negative); `None` when invalid or
/// beyond Go's range (about 292 years).
fn parse_go_duration(text: &str) -> Option<i128> {
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &rest[..frac_len];
            s = &rest[frac_len..];
            if int_len == 0 && frac_len == 0 {
                return None;
            }
        } else if int_len == 0 {
            return None;
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int_value: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().ok()?
        };
        // Digits beyond nanosecond precision cannot matter; 18 keeps the sum in range.
        let (mut frac_value, mut scale) = (0u128, 1u128);
        for b in frac_digits.bytes().take(18) {
            frac_value = frac_value * 10 + u128::from(b - b'0');
            scale *= 10;
        }
        total = total
            .checked_add(int_value.checked_mul(unit_nanos)?)?
            .checked_add(frac_value * unit_nanos / scale)?;
        if total > i64::MAX as u128 {
            return None;
        }
    }
    let total = total as i128;
    Some(if negative { -total } else { total })
}

/// A duration as Go prints one (`1m30s`, `1.5s`, `100ms`), for messages.
fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (value, unit) = if nanos.is_multiple_of(1_000_000) {
            (nanos / 1_000_000, "ms")
        } else if nanos.is_multiple_of(1_000) {
            (nanos / 1_000, "µs")
        } else {
            (nanos, "ns")
        };
        return format!("{value}{unit}");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sub = d.subsec_nanos();
    let seconds = if sub == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{sub:09}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const DB: &str = "\
database:
  host: db.local
  user: cdc
  password: hunter2-pw
  database: shop
  server_id: 7
";

    const ONE_TASK: &str = "\
tasks:
  - task_id: t1
    table_name: users
    events: [insert]
    callback_url: https://hooks.example.com/u
";

    /// A signing secret from the Standard Webhooks test vectors.
    const GOOD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn good_key() -> SigningKey {
        SigningKey::parse(GOOD_SECRET).expect("the test-vector secret parses")
    }

    /// What a key signs: equal for equal keys (a key itself is never shown or compared).
    fn signed(key: &SigningKey) -> String {
        key.sign("msg_id", 1_700_000_000, b"{\"a\":1}")
    }

    /// A task's headers as (lower-case name, value bytes).
    fn header_pairs(task: &Task) -> Vec<(&str, &[u8])> {
        task.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_env(config: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        load_texts(
            Path::new("config.yaml"),
            config,
            Path::new("tasks.yaml"),
            None,
            &lookup,
        )
    }

    fn load_str(config: &str) -> Result<Config, ConfigErrors> {
        load_env(config, &[])
    }

    fn load_pair(config: &str, tasks: &str) -> Result<Config, ConfigErrors> {
        load_texts(
            Path::new("config.yaml"),
            config,
            Path::new("tasks.yaml"),
            Some(tasks),
            &no_env,
        )
    }

    fn messages(result: Result<Config, ConfigErrors>) -> Vec<String> {
        match result {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[track_caller]
    fn assert_has(messages: &[String], expected: &str) {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "no error contains {expected:?}; errors:\n{}",
            messages.join("\n")
        );
    }

    fn ok(config: &str) -> Config {
        match load_str(config) {
            Ok(config) => config,
            Err(errors) => panic!("unexpected errors:\n{errors}"),
        }
    }

    /// A throw-away directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(files: &[(&str, &str)]) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pikachu-config-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            for (name, text) in files {
                std::fs::write(dir.join(name), text).expect("write temp file");
            }
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // --- defaults and Go compatibility ----------------------------------------------

    #[test]
    fn defaults_are_the_go_tools() {
        let c = ok(&format!("{DB}{ONE_TASK}"));
        assert_eq!(c.database.port, 3306);
        assert_eq!(c.database.charset, "utf8mb4");
        assert_eq!(c.database.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.database.read_timeout, Duration::from_secs(30));
        assert_eq!(c.log.level, log::LevelFilter::Info);
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(!c.server.enabled);
        assert_eq!(c.server.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.server.path, "/health");
        let d = &c.dispatcher;
        assert_eq!(d.worker_count, 20);
        assert_eq!(d.queue_size, 1000);
        assert_eq!(d.timeout, Duration::from_secs(30));
        assert_eq!(d.max_retries, Some(3));
        assert_eq!(d.retry_base_delay, Duration::from_secs(5));
        assert_eq!(d.retry_max_delay, Duration::from_secs(60));
        assert_eq!(d.max_connections, 100);
        assert_eq!(d.max_idle_conns, 20);
        assert_eq!(d.idle_conn_timeout, Duration::from_secs(90));
        assert_eq!(d.batch_size, 1);
        assert_eq!(d.batch_timeout, Duration::from_millis(100));
        assert_eq!(d.shutdown_timeout, Duration::from_secs(30));
        assert!(d.secret.is_none());
        let m = &c.monitor;
        assert_eq!(m.event_queue_size, 10000);
        assert_eq!(m.event_queue_timeout, Duration::from_secs(2));
        assert_eq!(m.batch_size, 1);
        assert_eq!(m.batch_timeout, Duration::from_millis(50));
        assert_eq!(m.flush_interval, Duration::from_secs(1));
        assert_eq!(m.heartbeat_period, Duration::from_secs(1));
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.start_from, StartFrom::Latest);
        assert_eq!(c.callback_host, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn zero_means_default_as_in_go() {
        let c = ok(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  worker_count: 0\n  timeout: 0\n  batch_size: 0\n\
             server:\n  port: 0\n  path: \"\"\n"
        ));
        assert_eq!(c.dispatcher.worker_count, 20);
        assert_eq!(c.dispatcher.timeout, Duration::from_secs(30));
        assert_eq!(c.dispatcher.batch_size, 1);
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.server.path, "/health");
    }

    #[test]
    fn the_go_example_config_loads_with_every_key() {
        let config = "\
database:
  connect_timeout: 10s
  read_timeout: 30s
  host: \"localhost\"
  port: 3306
  user: \"root\"
  password: \"password\"
  database: \"test_db\"
  server_id: 100
  charset: \"utf8mb4\"
log:
  directory: \"logs\"
  max_size: 100
  max_backups: 5
  max_age: 7
  level: \"warn\"
  format: \"json\"
server:
  enabled: true
  port: 8081
  path: \"/health\"
dispatcher:
  shutdown_timeout: 45s
  worker_count: 10
  queue_size: 500
  timeout: 60s
  max_retries: 5
  retry_base_delay: 30s
  retry_max_delay: 120s
  max_connections: 100
  max_idle_conns: 20
  idle_conn_timeout: 90s
  batch_size: 1
  batch_timeout: 100ms
monitor:
  event_queue_size: 5000
  event_queue_timeout: 10s
  batch_size: 1
  batch_timeout: 50ms
  flush_interval: 1s
callback_host: \"http://localhost:3000\"
";
        let tasks = "\
tasks:
  - task_id: \"user_monitor\"
    name: \"用户表变更监控\"
    table_name: \"users\"
    events: [\"insert\", \"update\", \"delete\"]
    callback_url: \"/webhook/user\"
  - task_id: \"external_service\"
    name: \"外部服务监控\"
    table_name: \"logs\"
    events: [\"insert\"]
    callback_url: \"https://external-api.example.com/webhook/log\"
";
        let c = load_pair(config, tasks).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.host, "localhost");
        assert_eq!(c.database.password.expose(), "password");
        assert_eq!(c.database.server_id, 100);
        assert_eq!(c.log.level, log::LevelFilter::Warn);
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(c.server.enabled);
        assert_eq!(c.server.port, 8081);
        assert_eq!(c.dispatcher.shutdown_timeout, Duration::from_secs(45));
        assert_eq!(c.dispatcher.worker_count, 10);
        assert_eq!(c.dispatcher.max_retries, Some(5));
        assert_eq!(c.dispatcher.retry_max_delay, Duration::from_secs(120));
        assert_eq!(c.monitor.event_queue_timeout, Duration::from_secs(10));
        assert_eq!(c.tasks.len(), 2);
        assert_eq!(c.tasks[0].name, "用户表变更监控");
        assert_eq!(c.tasks[0].database, "test_db");
        assert_eq!(
            c.tasks[0].callback_url,
            "http://localhost:3000/webhook/user"
        );
        assert_eq!(
            c.tasks[1].callback_url,
            "https://external-api.example.com/webhook/log"
        );
        assert_eq!(
            c.tasks[0].events,
            EventFilter {
                insert: true,
                update: true,
                delete: true
            }
        );
        // Go keys we accept but do not use are named in warnings.
        for key in [
            "log.directory",
            "log.max_size",
            "log.max_backups",
            "log.max_age",
        ] {
            assert!(
                c.warnings.iter().any(|w| w.contains(key)),
                "no warning for {key}: {:?}",
                c.warnings
            );
        }
        assert!(c.warnings.iter().any(|w| w.contains("monitor.batch_size")));
    }

    #[test]
    fn lifted_go_restrictions_are_accepted() {
        let c = ok(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  max_retries: -1\n  retry_base_delay: 10ms\n  \
             retry_max_delay: 10ms\n  batch_size: 50\n  batch_timeout: 250ms\n  worker_count: 2000\n"
        ));
        assert_eq!(c.dispatcher.max_retries, None);
        assert_eq!(c.dispatcher.retry_base_delay, Duration::from_millis(10));
        assert_eq!(c.dispatcher.batch_size, 50);
        assert_eq!(c.dispatcher.batch_timeout, Duration::from_millis(250));
        assert_eq!(c.dispatcher.worker_count, 2000);
    }

    #[test]
    fn max_retries_zero_means_no_retries_and_below_minus_one_is_an_error() {
        let c = ok(&format!("{DB}{ONE_TASK}dispatcher:\n  max_retries: 0\n"));
        assert_eq!(c.dispatcher.max_retries, Some(0));
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  max_retries: -2\n"
        )));
        assert_has(&m, "config.yaml: dispatcher.max_retries: -2 is out of range; use 0 or more, or -1 to retry for ever");
    }

    // --- durations ------------------------------------------------------------------

    #[test]
    fn durations_as_go_writes_them() {
        let cases: &[(&str, Option<u64>)] = &[
            ("30s", Some(30_000_000_000)),
            ("100ms", Some(100_000_000)),
            ("2m", Some(120_000_000_000)),
            ("1h30m", Some(5_400_000_000_000)),
            ("1.5s", Some(1_500_000_000)),
            (".5s", Some(500_000_000)),
            ("500us", Some(500_000)),
            ("500µs", Some(500_000)),
            ("500μs", Some(500_000)),
            ("10ns", Some(10)),
            ("1m0.5s", Some(60_500_000_000)),
            ("+2s", Some(2_000_000_000)),
            ("0", Some(0)),
            ("30", None),
            ("30x", None),
            ("", None),
            ("s", None),
            (".s", None),
            ("1.5.5s", None),
            ("-1s", None),
            ("3000000h", None),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                parse_duration(text),
                nanos.map(Duration::from_nanos),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_bare_integer_duration_is_nanoseconds() {
        let c = ok(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  timeout: 2000000000\n  batch_timeout: 500\n"
        ));
        assert_eq!(c.dispatcher.timeout, Duration::from_secs(2));
        assert_eq!(c.dispatcher.batch_timeout, Duration::from_nanos(500));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("dispatcher.batch_timeout: 500 is read as 500 nanoseconds")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn bad_duration_names_file_key_and_value() {
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  timeout: 30x\n"
        )));
        assert_eq!(
            m,
            ["config.yaml: dispatcher.timeout: \"30x\" is not a duration (use 30s, 100ms, 2m)"]
        );
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}monitor:\n  flush_interval: 1.5\n"
        )));
        assert_eq!(
            m,
            ["config.yaml: monitor.flush_interval: 1.5 is not a duration (use 30s, 100ms, 2m)"]
        );
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  timeout: -5s\n"
        )));
        assert_eq!(
            m,
            ["config.yaml: dispatcher.timeout: \"-5s\" is negative; durations must not be"]
        );
    }

    // --- YAML-level errors ------------------------------------------------------------

    #[test]
    fn unknown_key_names_path_and_line_and_suggests() {
        let config = format!("{DB}{ONE_TASK}dispatcher:\n  worker_count: 4\n  workr_count: 4\n");
        let line = config
            .lines()
            .position(|l| l.contains("workr_count"))
            .map(|i| i + 1);
        let m = messages(load_str(&config));
        assert_eq!(
            m,
            [format!(
                "config.yaml: unknown key dispatcher.workr_count (line {}); did you mean dispatcher.worker_count?",
                line.unwrap_or(0)
            )]
        );
    }

    #[test]
    fn unknown_keys_everywhere_are_all_reported() {
        let config = format!("{DB}colour: red\nlog:\n  levle: info\n");
        let tasks = "tasks:\n  - task_id: a\n    table_name: t\n    evnts: [insert]\n    \
                     events: [insert]\n    callback_url: https://x.io/h\nextra: 1\n";
        let m = messages(load_pair(&config, tasks));
        assert_has(&m, "config.yaml: unknown key colour (line 7)");
        assert_has(
            &m,
            "config.yaml: unknown key log.levle (line 9); did you mean log.level?",
        );
        assert_has(
            &m,
            "tasks.yaml: unknown key tasks[0].evnts (line 4); did you mean tasks[0].events?",
        );
        assert_has(&m, "tasks.yaml: unknown key extra (line 7)");
        assert_eq!(m.len(), 4, "{m:?}");
    }

    #[test]
    fn a_key_on_the_first_line_has_line_1_and_flow_mappings_have_lines_too() {
        let m = messages(load_str(&format!("colour: red\n{DB}{ONE_TASK}")));
        assert_eq!(m, ["config.yaml: unknown key colour (line 1)"]);
        let m = messages(load_pair(
            DB,
            "tasks:\n- {task_id: a, table_name: t, events: [insert],\n   callbak_url: https://x.io/1}\n",
        ));
        assert_has(&m, "tasks.yaml: unknown key tasks[0].callbak_url (line 3); did you mean tasks[0].callback_url?");
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}server:\n  port: 1\n  port: 2\n"
        )));
        assert_has(
            &m,
            "config.yaml: key server.port is given twice (second time at line 14)",
        );
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        let m = messages(load_str("database:\n  host: a: b\n"));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("config.yaml: line 2, column 10: invalid YAML: "),
            "{}",
            m[0]
        );
    }

    #[test]
    fn both_files_syntax_errors_are_reported() {
        let m = messages(load_pair("database: [\n", "tasks:\n\t- x\n"));
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("config.yaml: line"), "{m:?}");
        assert!(m[1].starts_with("tasks.yaml: line"), "{m:?}");
    }

    #[test]
    fn more_than_one_document_is_an_error_but_a_trailing_separator_is_not() {
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}---\nlog:\n  level: debug\n"
        )));
        assert_eq!(m, ["config.yaml: holds more than one YAML document (a `---` line is followed by more keys); put everything into one document"]);
        ok(&format!("---\n{DB}{ONE_TASK}---\n"));
    }

    #[test]
    fn wrong_types_name_key_expectation_and_value() {
        let config = format!(
            "{DB}{ONE_TASK}dispatcher:\n  worker_count: many\nserver:\n  enabled: maybe\nmonitor: 5\n"
        );
        let m = messages(load_str(&config));
        assert_has(
            &m,
            "config.yaml: dispatcher.worker_count: expected a whole number, found \"many\"",
        );
        assert_has(
            &m,
            "config.yaml: server.enabled: expected true or false, found \"maybe\"",
        );
        assert_has(
            &m,
            "config.yaml: monitor: expected a mapping of keys, found 5",
        );
        assert_eq!(m.len(), 3, "{m:?}");
    }

    #[test]
    fn a_string_key_given_a_list_is_a_type_error() {
        let config = format!(
            "{}{ONE_TASK}callback_host: [a]\ndispatcher:\n  timeout: 30x\n",
            DB.replace("password: hunter2-pw", "password: {pw: hunter2-pw}")
        );
        let m = messages(load_str(&config));
        // The other problems of the file are still reported, and the password is not.
        assert_eq!(
            m,
            [
                "config.yaml: database.password: expected a string, {file: /path/to/secret} or {env: \
                 VARIABLE}, found a mapping",
                "config.yaml: dispatcher.timeout: \"30x\" is not a duration (use 30s, 100ms, 2m)",
                "config.yaml: callback_host: expected a string, found a list",
            ]
        );
    }

    #[test]
    fn the_top_level_must_be_a_mapping() {
        let m = messages(load_str("- a\n- b\n"));
        assert_eq!(m, ["config.yaml: expected a mapping of keys (database:, log:, server:, dispatcher:, monitor:, …), found a list"]);
    }

    #[test]
    fn go_integer_spellings_and_ambiguous_leading_zero() {
        let c = ok(&format!("{DB}{ONE_TASK}dispatcher:\n  queue_size: 1_000\n  worker_count: 0x10\n  max_connections: \"64\"\n"));
        assert_eq!(c.dispatcher.queue_size, 1000);
        assert_eq!(c.dispatcher.worker_count, 16);
        assert_eq!(c.dispatcher.max_connections, 64);
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}dispatcher:\n  worker_count: 010\n"
        )));
        assert_has(&m, "dispatcher.worker_count: \"010\" starts with 0, which the Go tool reads as an octal number; write 10");
    }

    #[test]
    fn yaml_11_booleans_as_go_reads_them() {
        for (text, expected) in [
            ("yes", true),
            ("on", true),
            ("\"true\"", true),
            ("off", false),
            ("No", false),
        ] {
            let c = ok(&format!("{DB}{ONE_TASK}server:\n  enabled: {text}\n"));
            assert_eq!(c.server.enabled, expected, "{text}");
        }
    }

    // --- validation -------------------------------------------------------------------

    #[test]
    fn all_validation_problems_are_reported_at_once() {
        let config = "\
database:
  port: 70000
  server_id: 0
  charset: \"utf8; DROP TABLE x\"
log:
  level: loud
  format: xml
server:
  path: /metrics
dispatcher:
  worker_count: -1
  queue_size: -5
  retry_base_delay: 2m
  retry_max_delay: 1m
  max_connections: 5
  max_idle_conns: 10
monitor:
  heartbeat_period: 10ns
";
        let m = messages(load_str(&format!("{config}{ONE_TASK}")));
        for expected in [
            "config.yaml: database.host: is required",
            "config.yaml: database.user: is required",
            "config.yaml: database.database: is required",
            "config.yaml: database.port: 70000 is not a port; use 1 to 65535",
            "config.yaml: database.server_id: is required",
            "config.yaml: database.charset: \"utf8; DROP TABLE x\" is not a character set name",
            "config.yaml: log.level: unknown level \"loud\" (expected debug, info, warn, error, fatal, panic)",
            "config.yaml: log.format: unknown format \"xml\" (expected text or json)",
            "config.yaml: server.path: /metrics is where pikachu serves its metrics",
            "config.yaml: dispatcher.worker_count: -1 is negative",
            "config.yaml: dispatcher.queue_size: -5 is negative",
            "config.yaml: dispatcher.retry_max_delay: retry_base_delay (2m0s) is longer than retry_max_delay (1m0s)",
            "config.yaml: dispatcher.max_idle_conns: max_idle_conns (10) is more than max_connections (5)",
            "config.yaml: monitor.heartbeat_period: must be at least 1ms",
        ] {
            assert_has(&m, expected);
        }
        assert_eq!(m.len(), 14, "{}", m.join("\n"));
    }

    #[test]
    fn log_levels_map_to_filters() {
        for (level, filter) in [
            ("debug", log::LevelFilter::Debug),
            ("warn", log::LevelFilter::Warn),
            ("error", log::LevelFilter::Error),
            ("fatal", log::LevelFilter::Error),
            ("panic", log::LevelFilter::Error),
            ("INFO", log::LevelFilter::Info),
        ] {
            let c = ok(&format!("{DB}{ONE_TASK}log:\n  level: {level}\n"));
            assert_eq!(c.log.level, filter, "{level}");
        }
    }

    #[test]
    fn server_path_must_start_with_slash() {
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}server:\n  path: health\n"
        )));
        assert_eq!(
            m,
            ["config.yaml: server.path: \"health\" must start with / (e.g. /health)"]
        );
    }

    #[test]
    fn server_bind_is_an_ip_address() {
        let c = ok(&format!("{DB}{ONE_TASK}server:\n  bind: 127.0.0.1\n"));
        assert_eq!(c.server.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let c = ok(&format!("{DB}{ONE_TASK}server:\n  bind: \"::\"\n"));
        assert_eq!(c.server.bind, "::".parse::<IpAddr>().unwrap());
        let c = load_env(
            &format!("{DB}{ONE_TASK}"),
            &[("PIKACHU_SERVER_BIND", "10.0.0.7")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server.bind, "10.0.0.7".parse::<IpAddr>().unwrap());
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}server:\n  bind: localhost\n"
        )));
        assert_eq!(m, ["config.yaml: server.bind: \"localhost\" is not an IP address (0.0.0.0 for every interface, 127.0.0.1 for this machine only)"]);
    }

    // --- tasks ------------------------------------------------------------------------

    #[test]
    fn duplicate_task_id_is_an_error() {
        let tasks = "tasks:\n\
            - {task_id: a, table_name: t1, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: b, table_name: t2, events: [insert], callback_url: https://x.io/2}\n\
            - {task_id: a, table_name: t3, events: [insert], callback_url: https://x.io/3}\n";
        let m = messages(load_pair(DB, tasks));
        assert_eq!(m, ["tasks.yaml: tasks[2].task_id: duplicate task_id \"a\" (first used by tasks[0]); every task needs its own task_id"]);
    }

    #[test]
    fn unknown_event_is_named_with_the_task_index() {
        let tasks = "tasks:\n\
            - {task_id: a, table_name: t1, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: b, table_name: t2, events: [delete], callback_url: https://x.io/2}\n\
            - {task_id: c, table_name: t3, events: [insert, upsert], callback_url: https://x.io/3}\n";
        let m = messages(load_pair(DB, tasks));
        assert_eq!(m, ["tasks.yaml: tasks[2].events: unknown event \"upsert\" (expected insert, update, delete)"]);
    }

    #[test]
    fn events_fold_duplicates_and_must_not_be_empty_or_a_scalar() {
        let c = load_pair(
            DB,
            "tasks:\n- {task_id: a, table_name: t, events: [update, update, DELETE], callback_url: https://x.io/1}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.tasks[0].events,
            EventFilter {
                insert: false,
                update: true,
                delete: true
            }
        );
        let m = messages(load_pair(
            DB,
            "tasks:\n- {task_id: a, table_name: t, events: [], callback_url: https://x.io/1}\n\
             - {task_id: b, table_name: t, events: insert, callback_url: https://x.io/1}\n\
             - {task_id: c, table_name: t, callback_url: https://x.io/1}\n",
        ));
        assert_has(
            &m,
            "tasks.yaml: tasks[0].events: is empty; list at least one of insert, update, delete",
        );
        assert_has(&m, "tasks.yaml: tasks[1].events: expected a list such as [insert, update, delete], found \"insert\"");
        assert_has(&m, "tasks.yaml: tasks[2].events: is required");
    }

    #[test]
    fn required_task_fields() {
        let m = messages(load_pair(DB, "tasks:\n- {name: x, events: [insert]}\n"));
        assert_has(&m, "tasks.yaml: tasks[0].task_id: is required");
        assert_has(&m, "tasks.yaml: tasks[0].table_name: is required");
        assert_has(&m, "tasks.yaml: tasks[0].callback_url: is required");
    }

    #[test]
    fn no_tasks_anywhere_is_an_error() {
        let m = messages(load_str(DB));
        assert_eq!(m, ["config.yaml: no tasks configured: tasks.yaml does not exist and the config has no `tasks:` list; add tasks to one of them"]);
        let m = messages(load_pair(DB, "tasks: []\n"));
        assert_eq!(
            m,
            ["tasks.yaml: no tasks configured: the `tasks:` list in tasks.yaml is empty"]
        );
        let m = messages(load_pair(DB, "# nothing yet\n"));
        assert_eq!(
            m,
            ["tasks.yaml: no tasks configured: the `tasks:` list in tasks.yaml is empty"]
        );
    }

    #[test]
    fn a_tasks_file_may_be_a_bare_list() {
        let c = load_pair(
            DB,
            "- {task_id: a, table_name: t, events: [insert], callback_url: https://x.io/1}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks[0].task_id, "a");
        let m = messages(load_pair(
            DB,
            "- task_id: a\n  table_name: t\n  events: [insert]\n  callback_ur: https://x.io/1\n",
        ));
        assert_has(&m, "tasks.yaml: unknown key tasks[0].callback_ur (line 4); did you mean tasks[0].callback_url?");
        let m = messages(load_pair(DB, "just text\n"));
        assert_eq!(m, ["tasks.yaml: expected a list of tasks, or a mapping with a `tasks:` list, found \"just text\""]);
    }

    #[test]
    fn tasks_file_wins_over_inline_tasks_with_a_warning() {
        let tasks = "tasks:\n- {task_id: from_file, table_name: t, events: [insert], callback_url: https://x.io/1}\n";
        let c = load_pair(&format!("{DB}{ONE_TASK}"), tasks).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks.len(), 1);
        assert_eq!(c.tasks[0].task_id, "from_file");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("config.yaml: tasks: ignored, because tasks.yaml exists")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn table_names_keywords_hyphens_digits_and_database_prefix() {
        let tasks = "tasks:\n\
            - {task_id: a, table_name: order, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: b, table_name: user-events, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: c, table_name: 2024_user-activity_log, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: d, table_name: 2024, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: e, table_name: audit.log_entries, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: 007, table_name: t, events: [insert], callback_url: https://x.io/1}\n";
        let c = load_pair(DB, tasks).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&str, &str, &str)> = c
            .tasks
            .iter()
            .map(|t| (t.task_id.as_str(), t.database.as_str(), t.table.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "shop", "order"),
                ("b", "shop", "user-events"),
                ("c", "shop", "2024_user-activity_log"),
                ("d", "shop", "2024"),
                ("e", "audit", "log_entries"),
                ("007", "shop", "t"),
            ]
        );
        assert_eq!(c.tasks[0].name, "a", "name defaults to the task_id");
        let m = messages(load_pair(
            DB,
            "tasks:\n- {task_id: a, table_name: .t, events: [insert], callback_url: https://x.io/1}\n",
        ));
        assert_has(
            &m,
            "tasks.yaml: tasks[0].table_name: \".t\" is neither a table name nor database.table",
        );
    }

    #[test]
    fn string_values_keep_their_text() {
        // yaml would read these as numbers; the password must stay what was typed.
        let c = ok(&format!(
            "{}{ONE_TASK}",
            DB.replace("hunter2-pw", "0x1F").replace("shop", "1.10")
        ));
        assert_eq!(c.database.password.expose(), "0x1F");
        assert_eq!(c.database.database, "1.10");
        assert_eq!(c.tasks[0].database, "1.10");
        for written in ["007", "true", "1e3", ".inf", "'~'", "\"null\"", "-0"] {
            let c = ok(&format!("{}{ONE_TASK}", DB.replace("hunter2-pw", written)));
            let expected = written.trim_matches(|c| c == '\'' || c == '"');
            assert_eq!(c.database.password.expose(), expected, "{written}");
        }
        // A plain null is no value at all.
        let c = ok(&format!("{}{ONE_TASK}", DB.replace("hunter2-pw", "~")));
        assert_eq!(c.database.password.expose(), "");
    }

    // --- callback URLs ----------------------------------------------------------------

    fn task_with_url(url: &str) -> String {
        format!(
            "tasks:\n- {{task_id: a, table_name: t, events: [insert], callback_url: \"{url}\"}}\n"
        )
    }

    #[test]
    fn relative_callbacks_join_callback_host() {
        for (host, url, expected) in [
            (
                "http://localhost:3000",
                "/webhook/user",
                "http://localhost:3000/webhook/user",
            ),
            (
                "http://localhost:3000/",
                "/webhook/user",
                "http://localhost:3000/webhook/user",
            ),
            (
                "https://api.example.com/v1",
                "/hook?x=1",
                "https://api.example.com/v1/hook?x=1",
            ),
            ("http://[::1]:8080", "/h", "http://[::1]:8080/h"),
            (
                "http://localhost:3000",
                "https://other.example.com/x",
                "https://other.example.com/x",
            ),
        ] {
            let config = format!("{DB}callback_host: \"{host}\"\n");
            let c = load_pair(&config, &task_with_url(url)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.tasks[0].callback_url, expected, "{host} + {url}");
        }
    }

    #[test]
    fn absolute_callbacks_without_host() {
        let c = load_pair(DB, &task_with_url("HTTPS://hooks.example.com:8443/x"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks[0].callback_url, "HTTPS://hooks.example.com:8443/x");
    }

    #[test]
    fn bad_callback_urls() {
        let cases = [
            ("/webhook", "\"/webhook\" is not a usable callback URL: it is a path, but callback_host is not set"),
            ("ftp://x.io/h", "the scheme is \"ftp\"; only http and https are supported"),
            ("api.example.com/hook", "it is neither an absolute http(s) URL (https://host/path) nor a path starting with /"),
            ("//x.io/h", "it starts with //"),
            ("http:///h", "it has no host"),
            ("http://x.io:99999/h", "the port \"99999\" is not between 1 and 65535"),
            ("http://x.io/h#frag", "it contains a #fragment"),
            ("http://x.io/a b", "it contains spaces"),
        ];
        for (url, expected) in cases {
            let m = messages(load_pair(DB, &task_with_url(url)));
            assert_eq!(m.len(), 1, "{url}: {m:?}");
            assert!(
                m[0].starts_with("tasks.yaml: tasks[0].callback_url: "),
                "{m:?}"
            );
            assert_has(&m, expected);
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused_without_being_shown() {
        let m = messages(load_pair(DB, &task_with_url("https://user:s3cr3t@x.io/h")));
        assert_eq!(m.len(), 1);
        assert!(!m[0].contains("s3cr3t"), "{m:?}");
        assert_has(&m, "send credentials with the task's headers");
    }

    #[test]
    fn a_bad_callback_host_is_reported_once() {
        let config = format!("{DB}callback_host: \"localhost:3000\"\n");
        let tasks = format!(
            "{}- {{task_id: b, table_name: t, events: [insert], callback_url: /y}}\n",
            task_with_url("/x")
        );
        let m = messages(load_pair(&config, &tasks));
        assert_eq!(m, ["config.yaml: callback_host: \"localhost:3000\" is not a usable callback URL: it has no http:// or https:// in front"]);
        let m = messages(load_pair(
            &format!("{DB}callback_host: \"http://x.io?a=1\"\n"),
            &task_with_url("/x"),
        ));
        assert_has(&m, "config.yaml: callback_host: \"http://x.io?a=1\" is not a usable callback URL: it has a ?query");
    }

    // --- values -----------------------------------------------------------------------

    #[test]
    fn values_mode_global_and_per_task() {
        let tasks = "tasks:\n\
            - {task_id: a, table_name: t, events: [insert], callback_url: https://x.io/1}\n\
            - {task_id: b, table_name: t, events: [insert], callback_url: https://x.io/1, values: default}\n\
            - {task_id: c, table_name: t, events: [insert], callback_url: https://x.io/1, values: go}\n";
        let c = ok(&format!("{DB}{tasks}"));
        assert_eq!(c.values, ValueMode::Default);
        let modes: Vec<ValueMode> = c.tasks.iter().map(|t| t.values).collect();
        assert_eq!(
            modes,
            [ValueMode::Default, ValueMode::Default, ValueMode::Go]
        );
        // The top-level key is every task's default; a task's own key wins.
        let c = ok(&format!("{DB}values: go\n{tasks}"));
        let modes: Vec<ValueMode> = c.tasks.iter().map(|t| t.values).collect();
        assert_eq!(modes, [ValueMode::Go, ValueMode::Default, ValueMode::Go]);
        // Also from tasks.yaml, and from the environment.
        let c = load_pair(&format!("{DB}values: GO\n"), tasks).unwrap();
        assert_eq!(c.tasks[0].values, ValueMode::Go);
        let c = load_env(&format!("{DB}{tasks}"), &[("PIKACHU_VALUES", "go")]).unwrap();
        assert_eq!(c.tasks[0].values, ValueMode::Go);
        let m = messages(load_str(&format!("{DB}values: golang\n{ONE_TASK}")));
        assert_has(
            &m,
            "values: unknown value mode \"golang\" (expected default or go)",
        );
    }

    // --- start_from -------------------------------------------------------------------

    #[test]
    fn start_from_forms() {
        let base = format!("{DB}{ONE_TASK}");
        for (yaml, expected) in [
            ("start_from: 0-1-42\n", StartFrom::Gtid("0-1-42".into())),
            (
                "start_from: \"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42:44\"\n",
                StartFrom::GtidSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:44".into()),
            ),
            (
                "start_from: \"0-1-42, 1-2-7\"\n",
                StartFrom::Gtid("0-1-42,1-2-7".into()),
            ),
            ("start_from: latest\n", StartFrom::Latest),
            ("start_from: earliest\n", StartFrom::Earliest),
            (
                "start_from: {file: mysql-bin.000003, pos: 4}\n",
                StartFrom::Position {
                    file: "mysql-bin.000003".into(),
                    pos: 4,
                },
            ),
            (
                "start_from:\n  file: mysql-bin.000012\n  pos: 18825\n",
                StartFrom::Position {
                    file: "mysql-bin.000012".into(),
                    pos: 18825,
                },
            ),
            (
                "start_from: \"mysql-bin.000003:120\"\n",
                StartFrom::Position {
                    file: "mysql-bin.000003".into(),
                    pos: 120,
                },
            ),
        ] {
            assert_eq!(ok(&format!("{base}{yaml}")).start_from, expected, "{yaml}");
        }
        let c = load_env(&base, &[("PIKACHU_START_FROM", "mysql-bin.000009:4")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.start_from,
            StartFrom::Position {
                file: "mysql-bin.000009".into(),
                pos: 4
            }
        );
    }

    #[test]
    fn backfill_keys_and_their_refusals() {
        let c = load_str(&format!(
            "{DB}{ONE_TASK}    backfill: initial\n    backfill_chunk_size: 500\n    \
             backfill_rows_per_second: 100\n    backfill_event: insert\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let t = &c.tasks[0];
        assert!(t.backfill_initial && t.backfill_as_insert);
        assert_eq!(
            (t.backfill_chunk_size, t.backfill_rows_per_second),
            (500, 100)
        );
        let m = messages(load_str(&format!(
            "{DB}{ONE_TASK}    backfill: all\n    backfill_event: upsert\n"
        )));
        assert_has(
            &m,
            "\"all\" is not a backfill mode: use `initial` or `none`",
        );
        assert_has(
            &m,
            "\"upsert\" is not an event for backfilled rows: use `read` or `insert`",
        );
        let m = messages(load_str(&format!(
            "{DB}values: go\n{ONE_TASK}    backfill: initial\n"
        )));
        assert_has(&m, "a task with `values: go` cannot backfill");
    }

    #[test]
    fn bad_start_from() {
        let base = format!("{DB}{ONE_TASK}");
        let m = messages(load_str(&format!("{base}start_from: newest\n")));
        assert_has(&m, "config.yaml: start_from: \"newest\" is not a start position; expected latest, earliest, {file: mysql-bin.000003, pos: 4} (file:pos in the environment), a MariaDB GTID state such as 0-1-42, or a MySQL GTID set such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42");
        let m = messages(load_str(&format!("{base}start_from: 0-1-x\n")));
        assert_has(
            &m,
            "config.yaml: start_from: \"0-1-x\" is not a start position",
        );
        let m = messages(load_str(&format!(
            "{base}start_from: {{file: mysql-bin.000003, pos: 2}}\n"
        )));
        assert_has(&m, "config.yaml: start_from.pos: position 2 is inside the file header; the first event is at 4");
        let m = messages(load_str(&format!("{base}start_from: {{pos: 4}}\n")));
        assert_has(&m, "config.yaml: start_from.file: is required");
        let m = messages(load_str(&format!(
            "{base}start_from: {{file: f, position: 4}}\n"
        )));
        assert_has(&m, "config.yaml: unknown key start_from.position (line 12)");
    }

    // --- environment ------------------------------------------------------------------

    #[test]
    fn env_overrides_replace_and_fill_in_values() {
        let config = format!("{}{ONE_TASK}", DB.replace("  password: hunter2-pw\n", ""));
        let c = load_env(
            &config,
            &[
                ("PIKACHU_DATABASE_PASSWORD", "from-env"),
                ("PIKACHU_DISPATCHER_WORKER_COUNT", "4"),
                ("PIKACHU_DISPATCHER_TIMEOUT", "5s"),
                ("PIKACHU_SERVER_ENABLED", "true"),
                ("PIKACHU_LOG_LEVEL", "DEBUG"),
                ("PIKACHU_DATA_DIR", "/var/lib/pikachu"),
                ("PIKACHU_CALLBACK_HOST", "http://hooks.internal"),
                ("PIKACHU_DISPATCHER_SECRET", GOOD_SECRET),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.password.expose(), "from-env");
        assert_eq!(c.dispatcher.worker_count, 4);
        assert_eq!(c.dispatcher.timeout, Duration::from_secs(5));
        assert!(c.server.enabled);
        assert_eq!(c.log.level, log::LevelFilter::Debug);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/pikachu"));
        assert_eq!(c.callback_host.as_deref(), Some("http://hooks.internal"));
        assert_eq!(
            c.dispatcher.secret.as_ref().map(signed),
            Some(signed(&good_key()))
        );
    }

    #[test]
    fn env_override_beats_the_file() {
        let c = load_env(
            &format!("{DB}{ONE_TASK}"),
            &[("PIKACHU_DATABASE_HOST", "other.host")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.host, "other.host");
    }

    #[test]
    fn a_bad_env_value_names_the_variable() {
        let m = messages(load_env(
            &format!("{DB}{ONE_TASK}"),
            &[
                ("PIKACHU_DISPATCHER_WORKER_COUNT", "four"),
                ("PIKACHU_MONITOR_FLUSH_INTERVAL", "soon"),
            ],
        ));
        assert_eq!(
            m,
            [
                "environment variable PIKACHU_DISPATCHER_WORKER_COUNT: dispatcher.worker_count: expected a whole number, found \"four\"",
                "environment variable PIKACHU_MONITOR_FLUSH_INTERVAL: monitor.flush_interval: \"soon\" is not a duration (use 30s, 100ms, 2m)",
            ]
        );
    }

    #[test]
    fn env_var_names_cover_every_section_key() {
        let names = env_var_names();
        for name in [
            "PIKACHU_DATABASE_PASSWORD",
            "PIKACHU_DATABASE_SERVER_ID",
            "PIKACHU_DISPATCHER_WORKER_COUNT",
            "PIKACHU_DISPATCHER_SECRET",
            "PIKACHU_SERVER_ENABLED",
            "PIKACHU_SERVER_BIND",
            "PIKACHU_MONITOR_HEARTBEAT_PERIOD",
            "PIKACHU_LOG_FORMAT",
            "PIKACHU_CALLBACK_HOST",
            "PIKACHU_DATA_DIR",
            "PIKACHU_START_FROM",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        // The task list is not one variable.
        assert!(
            !names.iter().any(|n| n.starts_with("PIKACHU_TASKS")),
            "{names:?}"
        );
    }

    // --- secrets and headers ----------------------------------------------------------

    #[test]
    fn signing_secrets_are_validated_without_being_shown() {
        let tasks = format!(
            "tasks:\n- {{task_id: a, table_name: t, events: [insert], callback_url: https://x.io/1, secret: \"{GOOD_SECRET}\"}}\n\
             - {{task_id: b, table_name: t, events: [insert], callback_url: https://x.io/1, secret: \"whsec_@@notbase64@@\"}}\n\
             - {{task_id: c, table_name: t, events: [insert], callback_url: https://x.io/1, secret: \"plain-password-123\"}}\n\
             - {{task_id: d, table_name: t, events: [insert], callback_url: https://x.io/1, secret: \"whsec_\"}}\n"
        );
        let m = messages(load_pair(DB, &tasks));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].starts_with("tasks.yaml: tasks[1].secret: "), "{m:?}");
        assert!(m[1].starts_with("tasks.yaml: tasks[2].secret: not a Standard Webhooks secret: it must start with `whsec_`"), "{m:?}");
        assert!(m[2].starts_with("tasks.yaml: tasks[3].secret: "), "{m:?}");
        for message in &m {
            assert!(message.ends_with("(the value is not shown)"), "{message}");
            for secret in ["notbase64", "plain-password-123", GOOD_SECRET] {
                assert!(!message.contains(secret), "{message}");
            }
        }
        let tasks = tasks.lines().take(2).collect::<Vec<_>>().join("\n");
        let c = load_pair(DB, &tasks).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.tasks[0].secret.as_ref().map(signed),
            Some(signed(&good_key()))
        );
    }

    #[test]
    fn a_bad_dispatcher_secret_from_env_names_the_variable_not_the_value() {
        let m = messages(load_env(
            &format!("{DB}{ONE_TASK}"),
            &[("PIKACHU_DISPATCHER_SECRET", "letmein")],
        ));
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("environment variable PIKACHU_DISPATCHER_SECRET: dispatcher.secret: "),
            "{m:?}"
        );
        assert!(!m[0].contains("letmein"));
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let tasks = format!(
            "tasks:\n- task_id: a\n  table_name: t\n  events: [insert]\n  callback_url: https://x.io/1\n  \
             secret: \"{GOOD_SECRET}\"\n  headers:\n    Authorization: \"Bearer tok-abc123\"\n"
        );
        let config = format!("{DB}dispatcher:\n  secret: \"{GOOD_SECRET}\"\n");
        let c = load_pair(&config, &tasks).unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{c:?}");
        for secret in ["hunter2-pw", GOOD_SECRET, "tok-abc123"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("authorization"), "header names stay visible");
        // Wrong types on secret keys do not echo the value either.
        let m = messages(load_pair(
            &format!("{DB}log:\n  level: 5\n"),
            "tasks:\n- task_id: a\n  table_name: t\n  events: [insert]\n  callback_url: https://x.io/1\n  \
             headers:\n    X-Key: [tok-abc123]\n",
        ));
        let all = m.join("\n");
        assert!(
            !all.contains("tok-abc123") && !all.contains("hunter2-pw"),
            "{all}"
        );
    }

    #[test]
    fn headers_are_kept_in_order_and_checked() {
        let tasks = "tasks:\n- task_id: a\n  table_name: t\n  events: [insert]\n  callback_url: https://x.io/1\n  \
                     headers:\n    Authorization: Bearer abc\n    X-Tenant: 42\n";
        let c = load_pair(DB, tasks).unwrap_or_else(|e| panic!("{e}"));
        // Names are case-insensitive in HTTP; `HeaderName` keeps them lower-case.
        let headers = header_pairs(&c.tasks[0]);
        assert_eq!(
            headers,
            [
                ("authorization", &b"Bearer abc"[..]),
                ("x-tenant", &b"42"[..])
            ]
        );
        let tasks = "tasks:\n- task_id: a\n  table_name: t\n  events: [insert]\n  callback_url: https://x.io/1\n  \
                     headers:\n    Content-Type: text/plain\n    \"Bad Name\": x\n    X-Evil: \"a\\r\\nInjected: 1\"\n    \
                     x-tenant: 1\n    X-Tenant: 2\n";
        let m = messages(load_pair(DB, tasks));
        assert_has(&m, "tasks.yaml: tasks[0].headers.Content-Type: Content-Type is set by pikachu itself and cannot be replaced");
        assert_has(
            &m,
            "tasks.yaml: tasks[0].headers.Bad Name: \"Bad Name\" is not a valid HTTP header name",
        );
        assert_has(
            &m,
            "tasks.yaml: tasks[0].headers.X-Evil: the value contains a line break",
        );
        assert_has(
            &m,
            "tasks.yaml: tasks[0].headers.X-Tenant: header X-Tenant is given twice",
        );
        assert_eq!(m.len(), 4, "{m:?}");
    }

    // --- files ------------------------------------------------------------------------

    #[test]
    fn missing_config_file() {
        let dir = TempDir::new(&[]);
        let path = dir.0.join("config.yaml");
        let errors = load_with_env(&path, &no_env).unwrap_err();
        assert_eq!(errors.0, [ConfigError::NotFound { file: path.clone() }]);
        assert_eq!(
            errors.to_string(),
            format!("{}: file not found", path.display())
        );
    }

    #[test]
    fn tasks_yaml_is_read_from_beside_the_config() {
        let tasks = "tasks:\n- {task_id: beside, table_name: t, events: [insert], callback_url: https://x.io/1}\n";
        let dir = TempDir::new(&[("config.yaml", DB), ("tasks.yaml", tasks)]);
        let c =
            load_with_env(&dir.0.join("config.yaml"), &no_env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks[0].task_id, "beside");
        // Without tasks.yaml the config's own list is used.
        let dir = TempDir::new(&[("config.yaml", &format!("{DB}{ONE_TASK}"))]);
        let c =
            load_with_env(&dir.0.join("config.yaml"), &no_env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks[0].task_id, "t1");
        // An explicit tasks file (the Go tool's -tasks flag).
        let dir = TempDir::new(&[("c.yaml", DB), ("other.yaml", tasks)]);
        let c = load_files(
            &dir.0.join("c.yaml"),
            Some(&dir.0.join("other.yaml")),
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tasks[0].task_id, "beside");
    }

    #[test]
    fn secrets_come_from_files_and_the_environment() {
        let dir = TempDir::new(&[
            ("db-password", "from-a-file\n"),
            ("webhook-secret", &format!("{GOOD_SECRET}\r\n")),
            ("token", "Bearer t0ken"),
        ]);
        let d = dir.0.display();
        let config = format!(
            "{}{ONE_TASK}    secret: {{file: {d}/webhook-secret}}\n    headers:\n      \
             Authorization: {{file: {d}/token}}\n      X-Env: {{env: TOKEN_VAR}}\n",
            DB.replace(
                "  password: hunter2-pw\n",
                &format!("  password_file: {d}/db-password\n")
            )
        );
        let c = load_env(&config, &[("TOKEN_VAR", "from-env")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.password.expose(), "from-a-file");
        assert_eq!(
            signed(c.tasks[0].secret.as_ref().unwrap()),
            signed(&good_key())
        );
        let headers = header_pairs(&c.tasks[0]);
        assert_eq!(
            headers,
            [
                ("authorization", &b"Bearer t0ken"[..]),
                ("x-env", b"from-env")
            ]
        );
        let files: Vec<&str> = c.secret_files.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            files,
            [
                "database.password_file",
                "tasks[0].headers.Authorization",
                "tasks[0].secret"
            ]
        );
        // The Docker convention through the environment: PIKACHU_DATABASE_PASSWORD_FILE.
        let config = format!("{}{ONE_TASK}", DB.replace("  password: hunter2-pw\n", ""));
        let path = format!("{d}/db-password");
        let c = load_env(&config, &[("PIKACHU_DATABASE_PASSWORD_FILE", &path)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.password.expose(), "from-a-file");
    }

    #[test]
    fn bad_secret_sources_are_named_without_content() {
        let dir = TempDir::new(&[("empty", "\n"), ("pw", "s3cret-in-file\n")]);
        let d = dir.0.display();
        let config = format!(
            "{}  password_file: {d}/pw\n{ONE_TASK}    secret_file: {d}/missing\n    headers:\n      \
             X-A: {{file: {d}/empty}}\n      X-B: {{env: NOT_SET}}\n      X-C: {{vault: x}}\n",
            DB
        );
        let m = messages(load_str(&config));
        assert_has(&m, "database.password_file: both database.password and database.password_file are set; keep one");
        assert_has(
            &m,
            &format!("tasks[0].secret_file: cannot read the secret file {d}/missing: No such file"),
        );
        assert_has(
            &m,
            &format!("tasks[0].headers.X-A: the secret file {d}/empty is empty"),
        );
        assert_has(
            &m,
            "tasks[0].headers.X-B: the environment variable NOT_SET is not set",
        );
        assert_has(&m, "tasks[0].headers.X-C: expected a string, {file: /path/to/secret} or {env: VARIABLE}, found a mapping");
        let all = m.join("\n");
        assert!(
            !all.contains("s3cret-in-file") && !all.contains("hunter2"),
            "{all}"
        );
    }

    #[test]
    fn ha_and_the_checkpoint_store() {
        let base = format!("{DB}{ONE_TASK}");
        let c = ok(&base);
        assert_eq!(c.ha.group, None);
        assert_eq!(c.checkpoint, CheckpointStore::File);
        let c = ok(&format!(
            "{base}ha:\n  group: orders-cdc\n  lease_timeout: 6s\ncheckpoint:\n  store: mysql\n"
        ));
        assert_eq!(c.ha.group.as_deref(), Some("orders-cdc"));
        assert_eq!(c.ha.lease_timeout, Duration::from_secs(6));
        assert_eq!(
            c.checkpoint,
            CheckpointStore::Mysql {
                schema: "pikachu".into(),
                table: "checkpoints".into()
            }
        );
        let c = ok(&format!("{base}ha:\n  group: g\n"));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("checkpoint.store: is file while ha.group is set")),
            "{:?}",
            c.warnings
        );
        let m = messages(load_str(&format!(
            "{base}ha:\n  group: \"a b\"\n  lease_timeout: 1s\ncheckpoint:\n  store: redis\n"
        )));
        assert_has(&m, "ha.group: \"a b\": use at most 48 letters");
        assert_has(&m, "ha.lease_timeout: 1s is too short");
        assert_has(
            &m,
            "checkpoint.store: unknown store \"redis\" (expected file or mysql)",
        );
        let m = messages(load_str(&format!(
            "{}checkpoint:\n  store: mysql\n  table: shop.users\n",
            base
        )));
        assert_has(
            &m,
            "task t1: watches shop.users, pikachu's own checkpoint table",
        );
    }

    #[test]
    fn database_hosts_are_tried_in_order() {
        let with = |lines: &str| format!("{}{ONE_TASK}", DB.replace("  host: db.local\n", lines));
        let c = ok(&with(
            "  hosts: [db1, \"db2:3307\", \"[::1]:3308\"]\n  port: 3310\n",
        ));
        assert_eq!(
            c.database.hosts,
            [
                ("db1".to_owned(), 3310),
                ("db2".to_owned(), 3307),
                ("::1".to_owned(), 3308)
            ]
        );
        assert_eq!((c.database.host.as_str(), c.database.port), ("db1", 3310));
        // One host: a list of one.
        let c = ok(&with("  host: db.local\n"));
        assert_eq!(c.database.hosts, [("db.local".to_owned(), 3306)]);
        // From the environment, comma-separated.
        let c = load_env(&with(""), &[("PIKACHU_DATABASE_HOSTS", "a:1, b:2")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database.hosts, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        let m = messages(load_str(&with("  host: x\n  hosts: [a]\n")));
        assert_has(
            &m,
            "database.hosts: set database.host (one server) or database.hosts",
        );
        let m = messages(load_str(&with("  hosts: [\"a:x\"]\n")));
        assert_has(&m, "database.hosts: \"a:x\": \"x\" is not a port");
    }

    #[test]
    fn database_tls_modes_and_files() {
        let dir = TempDir::new(&[
            ("ca.pem", crate::tls::tests::CERT),
            ("key.pem", crate::tls::tests::KEY),
        ]);
        let d = dir.0.display();
        let with = |extra: &str| format!("{DB}{extra}{ONE_TASK}");
        let c = ok(&with(""));
        assert_eq!(c.database.tls.mode, DbTlsMode::Preferred);
        for (written, mode) in [
            ("disabled", DbTlsMode::Disabled),
            ("REQUIRED", DbTlsMode::Required),
            ("verify-ca", DbTlsMode::VerifyCa),
            ("verify_identity", DbTlsMode::VerifyIdentity),
        ] {
            let c = ok(&with(&format!("  tls: {written}\n")));
            assert_eq!(c.database.tls.mode, mode, "{written}");
        }
        // A CA without a mode verifies with it, as the MySQL client does.
        let c = ok(&with(&format!(
            "  ca_file: {d}/ca.pem\n  cert_file: {d}/ca.pem\n  key_file: {d}/key.pem\n"
        )));
        assert_eq!(c.database.tls.mode, DbTlsMode::VerifyCa);
        assert_eq!(c.database.tls.ca_file, Some(dir.0.join("ca.pem")));
        assert_eq!(
            c.database
                .tls
                .client_cert
                .as_ref()
                .map(|c| c.key_file.clone()),
            Some(dir.0.join("key.pem"))
        );
        let c = ok(&with(&format!("  tls: required\n  ca_file: {d}/ca.pem\n")));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("database.ca_file: is not used with tls: required")),
            "{:?}",
            c.warnings
        );
        let m = messages(load_str(&with(&format!(
            "  tls: sometimes\n  ca_file: {d}/key.pem\n  cert_file: {d}/ca.pem\n"
        ))));
        assert_has(&m, "database.tls: unknown TLS mode \"sometimes\" (expected disabled, preferred, required, verify_ca or verify_identity)");
        assert_has(
            &m,
            &format!("database.ca_file: {d}/key.pem holds no certificate"),
        );
        assert_has(&m, "database.key_file: is missing: database.cert_file needs the private key it was issued for");
        assert!(
            !m.join("\n").contains("PRIVATE KEY-----\nM"),
            "no key material in messages"
        );
    }

    #[test]
    fn receiver_tls_defaults_to_the_dispatchers_per_file() {
        let dir = TempDir::new(&[
            ("ca.pem", crate::tls::tests::CERT),
            ("other.pem", crate::tls::tests::CERT),
            ("key.pem", crate::tls::tests::KEY),
        ]);
        let d = dir.0.display();
        let config = format!(
            "{DB}dispatcher:\n  ca_file: {d}/ca.pem\n  cert_file: {d}/ca.pem\n  key_file: {d}/key.pem\n\
             tasks:\n  - {{task_id: a, table_name: t, events: [insert], callback_url: https://x.io/1}}\n  \
             - {{task_id: b, table_name: t, events: [insert], callback_url: https://x.io/2, ca_file: {d}/other.pem}}\n"
        );
        let c = ok(&config);
        assert_eq!(c.dispatcher.tls.ca_file, Some(dir.0.join("ca.pem")));
        assert_eq!(c.tasks[0].tls, c.dispatcher.tls);
        assert_eq!(c.tasks[1].tls.ca_file, Some(dir.0.join("other.pem")));
        assert_eq!(c.tasks[1].tls.client_cert, c.dispatcher.tls.client_cert);
    }

    #[test]
    fn errors_display_one_per_line() {
        let errors = load_str("database:\n  port: 0\n").unwrap_err();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), errors.0.len());
        assert!(errors.0.len() >= 5, "{text}");
    }
}
