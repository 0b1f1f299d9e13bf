//! Configuration: the Go tool's `config.yaml` / `tasks.yaml` (raw YAML tree) turned into
//! a validated `Config`.
//!
//! Owns parsing, defaults, environment overrides and validation. It must not touch the
//! network or the database, and never prints a password or secret.
//!
//! How a file becomes a `Config`:
//! 1. The YAML is read into a small tree (`Node`) guided by a schema (`Shape`). String
//!    keys (passwords, table names, URLs) keep the text exactly as written, so that
//!    `password: 0x1F` or `task_id: 007` are not turned into numbers. Unknown and
//!    duplicate keys are noted with their line while reading.
//! 2. `PIKACHU_<SECTION>_<KEY>` environment variables replace values in that tree, so a
//!    file may leave out the password entirely.
//! 3. The tree is converted key by key, applying the Go tool's defaults and collecting
//!    every problem, so that one run reports all of them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A secret string (password, signing key): never shown by `Debug` or `Display`.
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
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub server_id: u32,
    pub charset: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
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
    /// Default signing secret for tasks without their own.
    pub secret: Option<Secret>,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    Latest,
    Earliest,
    Position { file: String, pos: u64 },
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
    /// Absolute http(s) URL, `callback_host` already applied.
    pub callback_url: String,
    pub headers: Vec<(String, String)>,
    pub secret: Option<Secret>,
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
    pub callback_host: Option<String>,
    pub data_dir: PathBuf,
    pub start_from: StartFrom,
    pub tasks: Vec<Task>,
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

/// One problem with the configuration. `Display` gives one line that names the file (or
/// environment variable) and the key path, and says what to write instead. No variant
/// ever holds a password, secret or header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NotFound {
        file: PathBuf,
    },
    Unreadable {
        file: PathBuf,
        reason: String,
    },
    Syntax {
        file: PathBuf,
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    MultipleDocuments {
        file: PathBuf,
    },
    UnknownKey {
        file: PathBuf,
        key: String,
        line: Option<usize>,
        /// A known key of the same section close to the typo, as a full path.
        suggestion: Option<String>,
    },
    DuplicateKey {
        file: PathBuf,
        key: String,
        line: Option<usize>,
    },
    /// A required key is absent or empty.
    Missing {
        origin: Origin,
        key: String,
        hint: &'static str,
    },
    WrongType {
        origin: Origin,
        key: String,
        expected: &'static str,
        /// The value found, already redacted for secret keys.
        found: String,
    },
    BadDuration {
        origin: Origin,
        key: String,
        value: String,
    },
    /// A value of the right type that is not allowed; `reason` says why and what to use.
    BadValue {
        origin: Origin,
        key: String,
        reason: String,
    },
    DuplicateTaskId {
        file: PathBuf,
        index: usize,
        task_id: String,
        first: usize,
    },
    UnknownEvent {
        file: PathBuf,
        index: usize,
        event: String,
    },
    NoTasks {
        file: PathBuf,
        reason: String,
    },
    BadCallbackUrl {
        origin: Origin,
        key: String,
        /// `None` when the URL itself must not be shown (it carries credentials).
        url: Option<String>,
        reason: String,
    },
    BadSecret {
        origin: Origin,
        key: String,
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotFound { file } => write!(f, "{}: file not found", file.display()),
            ConfigError::Unreadable { file, reason } => {
                write!(f, "{}: cannot read the file: {reason}", file.display())
            }
            ConfigError::Syntax {
                file,
                message,
                line,
                column,
            } => {
                write!(f, "{}: ", file.display())?;
                if let (Some(line), Some(column)) = (line, column) {
                    write!(f, "line {line}, column {column}: ")?;
                }
                write!(f, "invalid YAML: {message}")
            }
            ConfigError::MultipleDocuments { file } => write!(
                f,
                "{}: holds more than one YAML document (a `---` line is followed by more \
                 keys); put everything into one document",
                file.display()
            ),
            ConfigError::UnknownKey {
                file,
                key,
                line,
                suggestion,
            } => {
                write!(f, "{}: unknown key {key}", file.display())?;
                if let Some(line) = line {
                    write!(f, " (line {line})")?;
                }
                if let Some(suggestion) = suggestion {
                    write!(f, "; did you mean {suggestion}?")?;
                }
                Ok(())
            }
            ConfigError::DuplicateKey { file, key, line } => {
                write!(f, "{}: key {key} is given twice", file.display())?;
                if let Some(line) = line {
                    write!(f, " (second time at line {line})")?;
                }
                Ok(())
            }
            ConfigError::Missing { origin, key, hint } => {
                write!(f, "{origin}: {key}: is required ({hint})")
            }
            ConfigError::WrongType {
                origin,
                key,
                expected,
                found,
            } => {
                if key.is_empty() {
                    write!(f, "{origin}: expected {expected}, found {found}")
                } else {
                    write!(f, "{origin}: {key}: expected {expected}, found {found}")
                }
            }
            ConfigError::BadDuration { origin, key, value } => write!(
                f,
                "{origin}: {key}: {value} is not a duration (use 30s, 100ms, 2m)"
            ),
            ConfigError::BadValue {
                origin,
                key,
                reason,
            } => write!(f, "{origin}: {key}: {reason}"),
            ConfigError::DuplicateTaskId {
                file,
                index,
                task_id,
                first,
            } => write!(
                f,
                "{}: tasks[{index}].task_id: duplicate task_id {task_id:?} (first used by \
                 tasks[{first}]); every task needs its own task_id",
                file.display()
            ),
            ConfigError::UnknownEvent { file, index, event } => write!(
                f,
                "{}: tasks[{index}].events: unknown event {event:?} (expected insert, update, \
                 delete)",
                file.display()
            ),
            ConfigError::NoTasks { file, reason } => {
                write!(f, "{}: no tasks configured: {reason}", file.display())
            }
            ConfigError::BadCallbackUrl {
                origin,
                key,
                url,
                reason,
            } => match url {
                Some(url) => write!(
                    f,
                    "{origin}: {key}: {url:?} is not a usable callback URL: {reason}"
                ),
                None => write!(f, "{origin}: {key}: not a usable callback URL: {reason}"),
            },
            ConfigError::BadSecret {
                origin,
                key,
                reason,
            } => {
                write!(f, "{origin}: {key}: {reason} (the value is not shown)")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

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
    let tasks_text = match read_text(&tasks_file) {
        Ok(text) => text,
        Err(error) => return Err(ConfigErrors(vec![error])),
    };
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
    let config_doc = match parse_yaml(config_file, config_text, CONFIG_SHAPE) {
        Ok(doc) => Some(doc),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    // Parsed even when the config is broken, so that both files' problems show at once.
    let tasks_doc = match tasks_text.map(|text| parse_yaml(tasks_file, text, TASKS_SHAPE)) {
        None => TasksDoc::Absent,
        Some(Ok(doc)) => TasksDoc::Parsed(doc),
        Some(Err(error)) => {
            errors.push(error);
            TasksDoc::Broken
        }
    };
    let Some(mut config_doc) = config_doc else {
        // Without the config there is nothing to convert: its keys would all read as
        // missing, which would bury the one real problem.
        if let TasksDoc::Parsed(doc) = &tasks_doc {
            errors.extend(doc.key_errors(tasks_file));
        }
        return Err(ConfigErrors(errors));
    };

    errors.extend(config_doc.key_errors(config_file));
    if !matches!(config_doc.root, Node::Map(_) | Node::Null) {
        // Every key would read as missing; the one real problem is the file's shape.
        let mut conv = Conv::new(config_file, BTreeMap::new());
        conv.wrong_type("", ROOT_EXPECTED, &config_doc.root);
        errors.extend(conv.errors);
        if let TasksDoc::Parsed(doc) = &tasks_doc {
            errors.extend(doc.key_errors(tasks_file));
        }
        return Err(ConfigErrors(errors));
    }
    let env_paths = apply_env(&mut config_doc.root, env);
    let mut conv = Conv::new(config_file, env_paths);
    let mut config = conv.config(&config_doc.root);

    let host = conv.host_state.clone();
    let database = config.database.database.clone();
    let inline = lookup(entries(&config_doc.root), "tasks");
    match &tasks_doc {
        TasksDoc::Parsed(doc) => {
            if inline.is_some_and(|node| !matches!(node, Node::Seq(items) if items.is_empty())) {
                conv.warnings.push(format!(
                    "{}: tasks: ignored, because {} exists and tasks are read from it (as the \
                     Go tool does); remove one of the two",
                    config_file.display(),
                    tasks_file.display()
                ));
            }
            let mut task_conv = Conv::new(tasks_file, BTreeMap::new());
            match lookup(entries(&doc.root), "tasks") {
                None if !matches!(doc.root, Node::Null | Node::Map(_)) => {
                    task_conv.wrong_type("", "a mapping with a `tasks:` list", &doc.root)
                }
                node => {
                    config.tasks = task_conv.tasks(node, &database, &host, || {
                        format!("the `tasks:` list in {} is empty", tasks_file.display())
                    })
                }
            }
            errors.append(&mut conv.errors);
            errors.extend(doc.key_errors(tasks_file));
            errors.extend(task_conv.errors);
            conv.warnings.extend(task_conv.warnings);
        }
        TasksDoc::Absent => {
            config.tasks = conv.tasks(inline, &database, &host, || {
                format!(
                    "{} does not exist and the config has no `tasks:` list; add tasks to one \
                     of them",
                    tasks_file.display()
                )
            });
            errors.append(&mut conv.errors);
        }
        TasksDoc::Broken => errors.append(&mut conv.errors),
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    config.warnings = conv.warnings;
    Ok(config)
}

enum TasksDoc {
    Absent,
    Parsed(Parsed),
    Broken,
}

// ---------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------

/// What the reader expects at a place in the document.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A string, read as the text written (never re-formatted as a number).
    Text,
    /// A scalar whose YAML type matters: number, boolean, duration.
    Value,
    /// A mapping with a fixed set of keys; others are reported as unknown.
    Struct(&'static [(&'static str, Shape)]),
    List(&'static Shape),
    /// A mapping with free-form keys (task `headers`).
    Dict(&'static Shape),
    /// Anything; used below an unknown key, whose error is already reported.
    Any,
}

use Shape::{Text, Value};

const DATABASE_KEYS: &[(&str, Shape)] = &[
    ("host", Text),
    ("port", Value),
    ("user", Text),
    ("password", Text),
    ("database", Text),
    ("server_id", Value),
    ("charset", Text),
    ("connect_timeout", Value),
    ("read_timeout", Value),
];

const LOG_KEYS: &[(&str, Shape)] = &[
    ("level", Text),
    ("format", Text),
    ("directory", Text),
    ("max_size", Value),
    ("max_backups", Value),
    ("max_age", Value),
];

const SERVER_KEYS: &[(&str, Shape)] = &[("enabled", Value), ("port", Value), ("path", Text)];

const DISPATCHER_KEYS: &[(&str, Shape)] = &[
    ("shutdown_timeout", Value),
    ("worker_count", Value),
    ("queue_size", Value),
    ("timeout", Value),
    ("max_retries", Value),
    ("retry_base_delay", Value),
    ("retry_max_delay", Value),
    ("max_connections", Value),
    ("max_idle_conns", Value),
    ("idle_conn_timeout", Value),
    ("batch_size", Value),
    ("batch_timeout", Value),
    ("secret", Text),
];

const MONITOR_KEYS: &[(&str, Shape)] = &[
    ("event_queue_size", Value),
    ("event_queue_timeout", Value),
    ("batch_size", Value),
    ("batch_timeout", Value),
    ("flush_interval", Value),
    ("heartbeat_period", Value),
];

const START_FROM_KEYS: &[(&str, Shape)] = &[("file", Text), ("pos", Value)];

const TASK_KEYS: &[(&str, Shape)] = &[
    ("task_id", Text),
    ("name", Text),
    ("table_name", Text),
    ("events", Shape::List(&Text)),
    ("callback_url", Text),
    ("headers", Shape::Dict(&Text)),
    ("secret", Text),
];

const TASK_LIST: Shape = Shape::List(&Shape::Struct(TASK_KEYS));

/// Sections whose keys can each be overridden by `PIKACHU_<SECTION>_<KEY>`.
const SECTIONS: &[(&str, &[(&str, Shape)])] = &[
    ("database", DATABASE_KEYS),
    ("log", LOG_KEYS),
    ("server", SERVER_KEYS),
    ("dispatcher", DISPATCHER_KEYS),
    ("monitor", MONITOR_KEYS),
];

/// Top-level keys overridden as a whole by `PIKACHU_<KEY>`.
const TOP_LEVEL_ENV: &[&str] = &["callback_host", "data_dir", "start_from"];

const CONFIG_SHAPE: Shape = Shape::Struct(&[
    ("database", Shape::Struct(DATABASE_KEYS)),
    ("tasks", TASK_LIST),
    ("log", Shape::Struct(LOG_KEYS)),
    ("server", Shape::Struct(SERVER_KEYS)),
    ("dispatcher", Shape::Struct(DISPATCHER_KEYS)),
    ("monitor", Shape::Struct(MONITOR_KEYS)),
    ("callback_host", Text),
    ("data_dir", Text),
    ("start_from", Shape::Struct(START_FROM_KEYS)),
]);

const TASKS_SHAPE: Shape = Shape::Struct(&[("tasks", TASK_LIST)]);

// ---------------------------------------------------------------------------------------
// Reading YAML into a tree
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A string: the text as written in the file, or an environment variable's value.
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

type Entries = [(String, Node)];

fn entries(node: &Node) -> Option<&Entries> {
    match node {
        Node::Map(entries) => Some(entries),
        _ => None,
    }
}

/// The value of `key`; `None` when absent or null (the Go tool treats both as unset).
fn lookup<'n>(map: Option<&'n Entries>, key: &str) -> Option<&'n Node> {
    map?.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| **v != Node::Null)
}

#[derive(Clone, Debug)]
enum IssueKind {
    Unknown {
        known: &'static [(&'static str, Shape)],
    },
    Duplicate,
}

#[derive(Clone, Debug)]
struct KeyIssue {
    path: String,
    key: String,
    kind: IssueKind,
    line: Option<usize>,
}

/// Unknown and duplicate keys seen while reading, in document order. To learn an
/// issue's line, the document is read again and made to fail at that issue: serde_yaml
/// then reports the key's position, which it does not expose otherwise.
#[derive(Default)]
struct Collector {
    issues: Vec<KeyIssue>,
    stop_at: Option<usize>,
    /// String keys found to hold a list or mapping. Asking serde_yaml for a string there
    /// stops the whole read, so the document is read again with these taken as they
    /// come; the conversion then reports each as a type error, alongside all the rest.
    not_text: Vec<String>,
}

const STOP_MARKER: &str = "pikachu: locating a key";

struct Parsed {
    root: Node,
    issues: Vec<KeyIssue>,
}

impl Parsed {
    fn key_errors(&self, file: &Path) -> Vec<ConfigError> {
        self.issues
            .iter()
            .map(|issue| match issue.kind {
                IssueKind::Unknown { known } => ConfigError::UnknownKey {
                    file: file.to_path_buf(),
                    key: issue.path.clone(),
                    line: issue.line,
                    suggestion: suggest(&issue.key, known).map(|k| {
                        let parent = &issue.path[..issue.path.len() - issue.key.len()];
                        format!("{parent}{k}")
                    }),
                },
                IssueKind::Duplicate => ConfigError::DuplicateKey {
                    file: file.to_path_buf(),
                    key: issue.path.clone(),
                    line: issue.line,
                },
            })
            .collect()
    }
}

fn parse_yaml(file: &Path, text: &str, shape: Shape) -> Result<Parsed, ConfigError> {
    let mut not_text: Vec<String> = Vec::new();
    let (root, collector) = loop {
        let collector = RefCell::new(Collector {
            not_text: not_text.clone(),
            ..Collector::default()
        });
        let Some(doc) = serde_yaml::Deserializer::from_str(text).next() else {
            break (Node::Null, collector);
        };
        let seed = NodeSeed {
            shape,
            path: String::new(),
            col: &collector,
        };
        match seed.deserialize(doc) {
            Ok(root) => break (root, collector),
            Err(e) => {
                let error = syntax_error(file, &e);
                match &error {
                    // Bounded: each round adds a new key of the document.
                    ConfigError::WrongType { key, .. } if !not_text.contains(key) => {
                        not_text.push(key.clone())
                    }
                    _ => return Err(error),
                }
            }
        }
    };
    let mut docs = serde_yaml::Deserializer::from_str(text);
    docs.next();
    // A trailing `---` with nothing after it yields an empty document: harmless.
    for doc in docs {
        let spare = RefCell::new(Collector::default());
        match (NodeSeed {
            shape: Shape::Any,
            path: String::new(),
            col: &spare,
        })
        .deserialize(doc)
        {
            Ok(Node::Null) => {}
            Ok(_) => {
                return Err(ConfigError::MultipleDocuments {
                    file: file.to_path_buf(),
                })
            }
            Err(e) => return Err(syntax_error(file, &e)),
        }
    }
    let mut issues = collector.into_inner().issues;
    for (index, issue) in issues.iter_mut().enumerate() {
        issue.line = locate_issue(text, shape, index, &not_text);
    }
    Ok(Parsed { root, issues })
}

fn locate_issue(text: &str, shape: Shape, index: usize, not_text: &[String]) -> Option<usize> {
    let collector = RefCell::new(Collector {
        not_text: not_text.to_vec(),
        issues: Vec::new(),
        stop_at: Some(index),
    });
    let doc = serde_yaml::Deserializer::from_str(text).next()?;
    match (NodeSeed {
        shape,
        path: String::new(),
        col: &collector,
    })
    .deserialize(doc)
    {
        Err(e) if e.to_string().contains(STOP_MARKER) => e.location().map(|l| l.line()),
        _ => None,
    }
}

fn syntax_error(file: &Path, error: &serde_yaml::Error) -> ConfigError {
    // A string key given a list or mapping stops serde_yaml with "<path>: invalid type:
    // sequence, expected a string at line …": a type error, not a syntax error.
    let message = error.to_string();
    if let Some((key, rest)) = message.split_once(": invalid type: ") {
        if let Some((found, _)) = rest.split_once(", expected a string") {
            let found = match found {
                "sequence" => "a list".to_string(),
                "map" => "a mapping".to_string(),
                other => other.to_string(),
            };
            return ConfigError::WrongType {
                origin: Origin::File(file.to_path_buf()),
                key: key.to_string(),
                expected: "a string",
                found,
            };
        }
    }
    let location = error.location();
    let line = location.as_ref().map(|l| l.line());
    let column = location.as_ref().map(|l| l.column());
    let mut message = error.to_string();
    // The position is shown up front; drop serde_yaml's copy of it at the end.
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

struct NodeSeed<'c> {
    shape: Shape,
    path: String,
    col: &'c RefCell<Collector>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        match self.shape {
            // Asking for a string makes serde_yaml hand over the scalar's text as written
            // (`0x1F`, `1.10`, `007`), which `deserialize_any` would turn into numbers.
            Shape::Text if !self.col.borrow().not_text.contains(&self.path) => {
                d.deserialize_option(TextVisitor)
            }
            _ => d.deserialize_any(NodeVisitor(self)),
        }
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_string(StringVisitor).map(Node::Str)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
}

struct StringVisitor;

impl<'de> Visitor<'de> for StringVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

struct NodeVisitor<'c>(NodeSeed<'c>);

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        // Beyond i128 it is out of range for every key; keep the digits for the message.
        Ok(i128::try_from(v)
            .map(Node::Int)
            .unwrap_or_else(|_| Node::Str(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        self.0.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let NodeSeed { shape, path, col } = self.0;
        let item = match shape {
            Shape::List(item) => *item,
            _ => Shape::Any,
        };
        let mut items = Vec::new();
        loop {
            let seed = NodeSeed {
                shape: item,
                path: format!("{path}[{}]", items.len()),
                col,
            };
            match seq.next_element_seed(seed)? {
                Some(node) => items.push(node),
                None => break,
            }
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let NodeSeed { shape, path, col } = self.0;
        let mut entries: Vec<(String, Node)> = Vec::new();
        loop {
            let key_seed = KeySeed {
                parent: shape,
                path: &path,
                seen: &entries,
                col,
            };
            let Some((key, child)) = map.next_key_seed(key_seed)? else {
                break;
            };
            let seed = NodeSeed {
                shape: child,
                path: child_path(&path, &key),
                col,
            };
            let value = map.next_value_seed(seed)?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Reads a mapping key as text and decides the shape of its value. Unknown and
/// duplicate keys are recorded here, inside the visitor, so that the error raised to
/// locate one carries the key's own line and column.
struct KeySeed<'a, 'c> {
    parent: Shape,
    path: &'a str,
    seen: &'a Entries,
    col: &'c RefCell<Collector>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = (String, Shape);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(String, Shape), D::Error> {
        d.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = (String, Shape);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(String, Shape), E> {
        let (child, issue) = match self.parent {
            Shape::Struct(known) => match known.iter().find(|(k, _)| *k == key) {
                Some((_, shape)) => (*shape, None),
                None => (Shape::Any, Some(IssueKind::Unknown { known })),
            },
            Shape::Dict(value) => (*value, None),
            _ => (Shape::Any, None),
        };
        let issue = if self.seen.iter().any(|(k, _)| k == key) {
            Some(IssueKind::Duplicate)
        } else {
            issue
        };
        if let Some(kind) = issue {
            let mut col = self.col.borrow_mut();
            let index = col.issues.len();
            col.issues.push(KeyIssue {
                path: child_path(self.path, key),
                key: key.to_string(),
                kind,
                line: None,
            });
            if col.stop_at == Some(index) {
                return Err(E::custom(STOP_MARKER));
            }
        }
        Ok((key.to_string(), child))
    }
}

/// The known key closest to a typo, when it is close enough to be a typo.
fn suggest(key: &str, known: &[(&'static str, Shape)]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|(k, _)| (edit_distance(&key, k), *k))
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

// ---------------------------------------------------------------------------------------
// Environment overrides
// ---------------------------------------------------------------------------------------

/// (variable, section or "" for top level, key) for every overridable key.
fn env_overridable() -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for (section, keys) in SECTIONS {
        for (key, _) in keys.iter() {
            let var = format!(
                "{ENV_PREFIX}{}_{}",
                section.to_uppercase(),
                key.to_uppercase()
            );
            out.push((var, *section, *key));
        }
    }
    for key in TOP_LEVEL_ENV {
        out.push((format!("{ENV_PREFIX}{}", key.to_uppercase()), "", *key));
    }
    out
}

/// Writes each set variable into the tree as a string, which the conversion then parses
/// like the YAML value it replaces. Returns key path → variable, so that a bad value is
/// reported against the variable rather than the file.
fn apply_env(root: &mut Node, env: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut applied = BTreeMap::new();
    if *root == Node::Null {
        *root = Node::Map(Vec::new());
    }
    // A root of the wrong type is reported by the conversion; nothing to override.
    let Node::Map(top) = root else { return applied };
    for (var, section, key) in env_overridable() {
        let Some(value) = env(&var) else { continue };
        let target: &mut Vec<(String, Node)> = if section.is_empty() {
            &mut *top
        } else {
            let index = match top.iter().position(|(k, _)| k == section) {
                Some(index) => index,
                None => {
                    top.push((section.to_string(), Node::Map(Vec::new())));
                    top.len() - 1
                }
            };
            let node = &mut top[index].1;
            if *node == Node::Null {
                *node = Node::Map(Vec::new());
            }
            // A section of the wrong type is reported as such; the override has no place.
            match node {
                Node::Map(entries) => entries,
                _ => continue,
            }
        };
        match target.iter_mut().find(|(k, _)| k == key) {
            Some((_, node)) => *node = Node::Str(value),
            None => target.push((key.to_string(), Node::Str(value))),
        }
        applied.insert(child_path(section, key), var);
    }
    applied
}

// ---------------------------------------------------------------------------------------
// Conversion and validation
// ---------------------------------------------------------------------------------------

/// One section of the tree being converted.
struct Sec<'n> {
    prefix: String,
    map: Option<&'n Entries>,
}

impl<'n> Sec<'n> {
    fn node(&self, key: &str) -> Option<&'n Node> {
        lookup(self.map, key)
    }

    fn path(&self, key: &str) -> String {
        child_path(&self.prefix, key)
    }

    fn has(&self, key: &str) -> bool {
        self.node(key).is_some()
    }
}

/// Passwords, secrets and header values are never echoed back, even in a type error.
fn is_secret_path(path: &str) -> bool {
    path.ends_with("password") || path.ends_with("secret") || path.contains(".headers.")
}

fn describe(node: &Node, secret: bool) -> String {
    match node {
        Node::Null => "nothing".into(),
        Node::Bool(b) if !secret => b.to_string(),
        Node::Int(i) if !secret => i.to_string(),
        Node::Float(f) if !secret => format!("{f:?}"),
        Node::Str(s) if !secret => format!("{s:?}"),
        Node::Bool(_) | Node::Int(_) | Node::Float(_) | Node::Str(_) => "a value".into(),
        Node::Seq(_) => "a list".into(),
        Node::Map(_) => "a mapping".into(),
    }
}

/// What `callback_host` turned out to be; relative callback URLs depend on it.
#[derive(Clone, Debug)]
enum HostState {
    Unset,
    Valid(String),
    /// Set but invalid: already reported, so relative URLs are not reported again.
    Invalid,
}

struct Conv<'a> {
    file: &'a Path,
    env_paths: BTreeMap<String, String>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    host_state: HostState,
}

impl<'a> Conv<'a> {
    fn new(file: &'a Path, env_paths: BTreeMap<String, String>) -> Self {
        Conv {
            file,
            env_paths,
            errors: Vec::new(),
            warnings: Vec::new(),
            host_state: HostState::Unset,
        }
    }

    fn origin(&self, path: &str) -> Origin {
        match self.env_paths.get(path) {
            Some(var) => Origin::Env(var.clone()),
            None => Origin::File(self.file.to_path_buf()),
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &'static str, node: &Node) {
        let found = describe(node, is_secret_path(path));
        let origin = self.origin(path);
        self.errors.push(ConfigError::WrongType {
            origin,
            key: path.to_string(),
            expected,
            found,
        });
    }

    fn bad_value(&mut self, path: &str, reason: String) {
        let origin = self.origin(path);
        self.errors.push(ConfigError::BadValue {
            origin,
            key: path.to_string(),
            reason,
        });
    }

    fn missing(&mut self, path: &str, hint: &'static str) {
        let origin = self.origin(path);
        self.errors.push(ConfigError::Missing {
            origin,
            key: path.to_string(),
            hint,
        });
    }

    fn warn_ignored(&mut self, sec: &Sec, key: &str, why: &str) {
        if sec.has(key) {
            let path = sec.path(key);
            let origin = self.origin(&path);
            self.warnings.push(format!(
                "{origin}: {path}: accepted for compatibility with the Go tool and ignored: {why}"
            ));
        }
    }

    fn section<'n>(&mut self, root: &Sec<'n>, key: &str) -> Sec<'n> {
        let path = root.path(key);
        let map = match root.node(key) {
            None => None,
            Some(Node::Map(entries)) => Some(entries.as_slice()),
            Some(other) => {
                self.wrong_type(&path, "a mapping of keys", other);
                None
            }
        };
        Sec { prefix: path, map }
    }

    // --- scalars -----------------------------------------------------------------------

    fn node_text(&mut self, path: &str, node: Option<&Node>) -> Option<String> {
        match node? {
            Node::Str(s) => Some(s.clone()),
            // Only reachable for keys read as values; a number or boolean has one spelling.
            Node::Int(i) => Some(i.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    fn text(&mut self, sec: &Sec, key: &str) -> Option<String> {
        self.node_text(&sec.path(key), sec.node(key))
    }

    fn node_int(&mut self, path: &str, node: Option<&Node>) -> Option<i128> {
        let node = node?;
        let parsed = match node {
            Node::Int(i) => Ok(*i),
            Node::Str(s) => parse_int(s),
            _ => Err(IntError::NotANumber),
        };
        match parsed {
            Ok(i) => Some(i),
            Err(IntError::NotANumber) => {
                self.wrong_type(path, "a whole number", node);
                None
            }
            Err(IntError::LeadingZero(digits)) => {
                self.bad_value(
                    path,
                    format!(
                        "{:?} starts with 0, which the Go tool reads as an octal number; write \
                         {digits} (or 0o{digits} if you mean octal)",
                        describe(node, false).trim_matches('"')
                    ),
                );
                None
            }
        }
    }

    fn int(&mut self, sec: &Sec, key: &str) -> Option<i128> {
        self.node_int(&sec.path(key), sec.node(key))
    }

    fn flag(&mut self, sec: &Sec, key: &str) -> Option<bool> {
        let path = sec.path(key);
        let node = sec.node(key)?;
        let parsed = match node {
            Node::Bool(b) => Some(*b),
            Node::Int(0) => Some(false),
            Node::Int(1) => Some(true),
            // The spellings Go's yaml.v3 accepts for a boolean field (YAML 1.1 style).
            Node::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Some(true),
                "false" | "no" | "n" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.wrong_type(&path, "true or false", node);
        }
        parsed
    }

    /// A non-negative duration. A bare integer is nanoseconds, as Go's yaml.v3 reads an
    /// integer into a `time.Duration`; the same holds for an environment value of digits.
    fn duration(&mut self, sec: &Sec, key: &str) -> Option<Duration> {
        let path = sec.path(key);
        let node = sec.node(key)?;
        let (nanos, bare) = match node {
            Node::Int(i) => (Some(*i), true),
            Node::Str(s) => match parse_int(s) {
                Ok(i) => (Some(i), true),
                Err(_) => (parse_go_duration(s.trim()), false),
            },
            Node::Float(_) => (None, false),
            other => {
                self.wrong_type(&path, "a duration such as 30s", other);
                return None;
            }
        };
        let Some(nanos) = nanos else {
            let origin = self.origin(&path);
            let value = describe(node, false);
            self.errors.push(ConfigError::BadDuration {
                origin,
                key: path,
                value,
            });
            return None;
        };
        let Ok(nanos) = u64::try_from(nanos) else {
            let reason = if nanos < 0 {
                format!(
                    "{} is negative; durations must not be",
                    describe(node, false)
                )
            } else {
                format!("{} is too long", describe(node, false))
            };
            self.bad_value(&path, reason);
            return None;
        };
        if bare && nanos > 0 && nanos < 1_000_000 {
            let origin = self.origin(&path);
            self.warnings.push(format!(
                "{origin}: {path}: {nanos} is read as {nanos} nanoseconds (a number without \
                 a unit is nanoseconds, as in the Go tool); write {nanos}s or {nanos}ms if \
                 that is what you mean"
            ));
        }
        Some(Duration::from_nanos(nanos))
    }

    /// A count where, as in the Go tool, 0 or leaving it out means the default.
    fn count(&mut self, sec: &Sec, key: &str, default: usize) -> usize {
        let path = sec.path(key);
        match self.int(sec, key) {
            None | Some(0) => default,
            Some(n) if n < 0 => {
                self.bad_value(
                    &path,
                    format!(
                        "{n} is negative; use a positive number (0 or leaving it out means the \
                         default, {default})"
                    ),
                );
                default
            }
            Some(n) => match usize::try_from(n) {
                Ok(n) if n <= u32::MAX as usize => n,
                _ => {
                    self.bad_value(&path, format!("{n} is too large"));
                    default
                }
            },
        }
    }

    /// A duration where, as in the Go tool, 0 or leaving it out means the default.
    fn wait(&mut self, sec: &Sec, key: &str, default: Duration) -> Duration {
        match self.duration(sec, key) {
            None => default,
            Some(d) if d.is_zero() => default,
            Some(d) => d,
        }
    }

    fn port(&mut self, sec: &Sec, key: &str, default: u16) -> u16 {
        let path = sec.path(key);
        match self.int(sec, key) {
            None => default,
            Some(p) => match u16::try_from(p) {
                Ok(p) if p >= 1 => p,
                _ => {
                    self.bad_value(&path, format!("{p} is not a port; use 1 to 65535"));
                    default
                }
            },
        }
    }

    fn secret(&mut self, sec: &Sec, key: &str) -> Option<Secret> {
        let path = sec.path(key);
        let value = self.text(sec, key)?;
        if value.is_empty() {
            // An empty value (often an unset variable in a template) means "not signed";
            // say so, because someone who wrote the key probably wanted signing.
            let origin = self.origin(&path);
            self.warnings.push(format!(
                "{origin}: {path}: is empty, so requests are not signed with it"
            ));
            return None;
        }
        let reason = if !value.trim().starts_with("whsec_") {
            Some(
                "not a Standard Webhooks secret: it must start with `whsec_` followed by the \
                 base64 of the key (e.g. `whsec_` + the output of `openssl rand -base64 32`)"
                    .to_string(),
            )
        } else {
            // The signer's own parser decides, so that what passes here can sign later.
            crate::signature::SigningKey::parse(&value)
                .err()
                .map(|e| e.to_string())
        };
        match reason {
            Some(reason) => {
                let origin = self.origin(&path);
                self.errors.push(ConfigError::BadSecret {
                    origin,
                    key: path,
                    reason,
                });
                None
            }
            None => Some(Secret(value)),
        }
    }

    // --- sections ----------------------------------------------------------------------

    fn config(&mut self, root: &Node) -> Config {
        let map = match root {
            Node::Map(entries) => Some(entries.as_slice()),
            Node::Null => None,
            other => {
                self.wrong_type("", ROOT_EXPECTED, other);
                None
            }
        };
        let top = Sec {
            prefix: String::new(),
            map,
        };
        let database = self.database(&top);
        let log = self.log(&top);
        let server = self.server(&top);
        let dispatcher = self.dispatcher(&top);
        let monitor = self.monitor(&top);
        let callback_host = self.callback_host(&top);
        let data_dir = match self.text(&top, "data_dir") {
            None => PathBuf::from("data"),
            Some(dir) if dir.trim().is_empty() => {
                self.bad_value(
                    "data_dir",
                    "is empty; name a directory (default: data, relative to the working \
                     directory)"
                        .into(),
                );
                PathBuf::from("data")
            }
            Some(dir) => PathBuf::from(dir),
        };
        let start_from = self.start_from(&top);
        Config {
            database,
            log,
            server,
            dispatcher,
            monitor,
            callback_host,
            data_dir,
            start_from,
            tasks: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn database(&mut self, top: &Sec) -> DatabaseConfig {
        let s = self.section(top, "database");
        let required = |conv: &mut Self, key: &str, hint: &'static str| -> String {
            match conv.text(&s, key) {
                Some(v) if !v.trim().is_empty() => v,
                _ => {
                    conv.missing(&s.path(key), hint);
                    String::new()
                }
            }
        };
        let host = required(
            self,
            "host",
            "the MySQL/MariaDB server to read the binlog from",
        );
        let user = required(
            self,
            "user",
            "a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT",
        );
        let database = required(
            self,
            "database",
            "the database whose tables the tasks watch",
        );
        // Not in the Go tool, which requires the port; 3306 is what everyone would write.
        let port = self.port(&s, "port", 3306);
        let server_id = match self.int(&s, "server_id") {
            None | Some(0) => {
                self.missing(
                    &s.path("server_id"),
                    "a non-zero replica id, unique among the server's replicas",
                );
                0
            }
            Some(id) => u32::try_from(id).unwrap_or_else(|_| {
                self.bad_value(
                    &s.path("server_id"),
                    format!("{id} is not between 1 and 4294967295"),
                );
                0
            }),
        };
        let password = Secret(self.text(&s, "password").unwrap_or_default());
        let charset = match self.text(&s, "charset") {
            None => "utf8mb4".to_string(),
            Some(c) if c.is_empty() => "utf8mb4".to_string(),
            Some(c) => {
                // It ends up in `SET NAMES <charset>`: only a plain name may pass.
                if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    self.bad_value(
                        &s.path("charset"),
                        format!("{c:?} is not a character set name (e.g. utf8mb4, latin1)"),
                    );
                }
                c
            }
        };
        let connect_timeout = self.wait(&s, "connect_timeout", Duration::from_secs(10));
        let read_timeout = self.wait(&s, "read_timeout", Duration::from_secs(30));
        DatabaseConfig {
            host,
            port,
            user,
            password,
            database,
            server_id,
            charset,
            connect_timeout,
            read_timeout,
        }
    }

    fn log(&mut self, top: &Sec) -> LogConfig {
        let s = self.section(top, "log");
        let level = match self
            .text(&s, "level")
            .map(|l| l.trim().to_ascii_lowercase())
        {
            None => log::LevelFilter::Info,
            Some(l) => {
                match l.as_str() {
                    "" | "info" => log::LevelFilter::Info,
                    "trace" => log::LevelFilter::Trace,
                    "debug" => log::LevelFilter::Debug,
                    "warn" | "warning" => log::LevelFilter::Warn,
                    // The Go tool's fatal and panic levels log errors only.
                    "error" | "fatal" | "panic" => log::LevelFilter::Error,
                    _ => {
                        self.bad_value(
                        &s.path("level"),
                        format!("unknown level {l:?} (expected debug, info, warn, error, fatal, panic)"),
                    );
                        log::LevelFilter::Info
                    }
                }
            }
        };
        let format = match self
            .text(&s, "format")
            .map(|f| f.trim().to_ascii_lowercase())
        {
            None => LogFormat::Text,
            Some(f) => match f.as_str() {
                "" | "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    self.bad_value(
                        &s.path("format"),
                        format!("unknown format {f:?} (expected text or json)"),
                    );
                    LogFormat::Text
                }
            },
        };
        // The Go tool's log file rotation: still type-checked, so a typo'd value is caught
        // the same way, then ignored because pikachu logs to stderr.
        let _ = self.text(&s, "directory");
        for key in ["max_size", "max_backups", "max_age"] {
            if let Some(n) = self.int(&s, key) {
                if n < 0 {
                    self.bad_value(&s.path(key), format!("{n} is negative"));
                }
            }
        }
        for key in ["directory", "max_size", "max_backups", "max_age"] {
            self.warn_ignored(
                &s,
                key,
                "pikachu logs to stderr; rotate with the service manager",
            );
        }
        LogConfig { level, format }
    }

    fn server(&mut self, top: &Sec) -> ServerConfig {
        let s = self.section(top, "server");
        let enabled = self.flag(&s, "enabled").unwrap_or(false);
        // As in the Go tool, 0 means the default.
        let port = match self.int(&s, "port") {
            None | Some(0) => 8080,
            Some(p) => match u16::try_from(p) {
                Ok(p) => p,
                Err(_) => {
                    self.bad_value(
                        &s.path("port"),
                        format!("{p} is not a port; use 1 to 65535"),
                    );
                    8080
                }
            },
        };
        let path = match self.text(&s, "path") {
            None => "/health".to_string(),
            Some(p) if p.is_empty() => "/health".to_string(),
            Some(p) => {
                if !p.starts_with('/') {
                    self.bad_value(
                        &s.path("path"),
                        format!("{p:?} must start with / (e.g. /health)"),
                    );
                } else if p == "/metrics" {
                    self.bad_value(
                        &s.path("path"),
                        "/metrics is where pikachu serves its metrics; choose another health \
                         path (default /health)"
                            .into(),
                    );
                } else if p
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "?#{}".contains(c))
                {
                    self.bad_value(
                        &s.path("path"),
                        format!("{p:?} must be a plain path without spaces, ?, #, {{ or }}"),
                    );
                }
                p
            }
        };
        ServerConfig {
            enabled,
            port,
            path,
        }
    }

    fn dispatcher(&mut self, top: &Sec) -> DispatcherConfig {
        let s = self.section(top, "dispatcher");
        let worker_count = self.count(&s, "worker_count", 20);
        let queue_size = self.count(&s, "queue_size", 1000);
        let timeout = self.wait(&s, "timeout", Duration::from_secs(30));
        let max_retries = match self.int(&s, "max_retries") {
            None => Some(3),
            Some(-1) => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.bad_value(
                        &s.path("max_retries"),
                        format!("{n} is out of range; use 0 or more, or -1 to retry for ever"),
                    );
                    Some(3)
                }
            },
        };
        let retry_base_delay = self.wait(&s, "retry_base_delay", Duration::from_secs(5));
        let retry_max_delay = self.wait(&s, "retry_max_delay", Duration::from_secs(60));
        if retry_base_delay > retry_max_delay {
            let key = if s.has("retry_max_delay") {
                "retry_max_delay"
            } else {
                "retry_base_delay"
            };
            self.bad_value(
                &s.path(key),
                format!(
                    "retry_base_delay ({}) is longer than retry_max_delay ({}); the delay starts \
                     at the first and doubles up to the second",
                    format_duration(retry_base_delay),
                    format_duration(retry_max_delay)
                ),
            );
        }
        let max_connections = self.count(&s, "max_connections", 100);
        let max_idle_conns = self.count(&s, "max_idle_conns", 20);
        if max_idle_conns > max_connections {
            let key = if s.has("max_idle_conns") {
                "max_idle_conns"
            } else {
                "max_connections"
            };
            self.bad_value(
                &s.path(key),
                format!(
                    "max_idle_conns ({max_idle_conns}) is more than max_connections \
                     ({max_connections})"
                ),
            );
        }
        let idle_conn_timeout = self.wait(&s, "idle_conn_timeout", Duration::from_secs(90));
        let batch_size = self.count(&s, "batch_size", 1);
        let batch_timeout = self.wait(&s, "batch_timeout", Duration::from_millis(100));
        let shutdown_timeout = self.wait(&s, "shutdown_timeout", Duration::from_secs(30));
        let secret = self.secret(&s, "secret");
        DispatcherConfig {
            worker_count,
            queue_size,
            timeout,
            max_retries,
            retry_base_delay,
            retry_max_delay,
            max_connections,
            max_idle_conns,
            idle_conn_timeout,
            batch_size,
            batch_timeout,
            shutdown_timeout,
            secret,
        }
    }

    fn monitor(&mut self, top: &Sec) -> MonitorConfig {
        let s = self.section(top, "monitor");
        let event_queue_size = self.count(&s, "event_queue_size", 10000);
        let event_queue_timeout = self.wait(&s, "event_queue_timeout", Duration::from_secs(2));
        let batch_size = self.count(&s, "batch_size", 1);
        let batch_timeout = self.wait(&s, "batch_timeout", Duration::from_millis(50));
        let flush_interval = self.wait(&s, "flush_interval", Duration::from_secs(1));
        let heartbeat_period = self.wait(&s, "heartbeat_period", Duration::from_secs(1));
        if heartbeat_period < Duration::from_millis(1) {
            self.bad_value(
                &s.path("heartbeat_period"),
                "must be at least 1ms (the server counts heartbeats in milliseconds)".into(),
            );
        }
        // The binlog reader hands events over one by one; the Go tool had already made
        // these two no-ops.
        for key in ["batch_size", "batch_timeout"] {
            self.warn_ignored(
                &s,
                key,
                "the binlog reader hands events to the dispatcher one by one",
            );
        }
        MonitorConfig {
            event_queue_size,
            event_queue_timeout,
            batch_size,
            batch_timeout,
            flush_interval,
            heartbeat_period,
        }
    }

    fn callback_host(&mut self, top: &Sec) -> Option<String> {
        let host = self.text(top, "callback_host")?;
        if host.is_empty() {
            return None;
        }
        let reason = match check_absolute_url(&host) {
            Err(reason) => Some(reason),
            Ok(()) if host.contains('?') => Some(
                "it has a ?query; callback_host is only a scheme, host and optional path prefix"
                    .to_string(),
            ),
            Ok(()) => None,
        };
        if let Some(reason) = reason {
            let origin = self.origin("callback_host");
            let url = (!has_userinfo(&host)).then(|| host.clone());
            self.errors.push(ConfigError::BadCallbackUrl {
                origin,
                key: "callback_host".into(),
                url,
                reason,
            });
            self.host_state = HostState::Invalid;
            return None;
        }
        let host = host.trim_end_matches('/').to_string();
        self.host_state = HostState::Valid(host.clone());
        Some(host)
    }

    fn start_from(&mut self, top: &Sec) -> StartFrom {
        const EXPECTED: &str =
            "expected latest, earliest or {file: mysql-bin.000003, pos: 4} (file:pos in the environment)";
        let path = "start_from";
        let Some(node) = top.node(path) else {
            return StartFrom::Latest;
        };
        match node {
            Node::Str(s) => {
                let s = s.trim();
                match s.to_ascii_lowercase().as_str() {
                    "" | "latest" => return StartFrom::Latest,
                    "earliest" => return StartFrom::Earliest,
                    _ => {}
                }
                match s.rsplit_once(':') {
                    Some((file, pos)) if !file.is_empty() => match pos.parse::<u64>() {
                        Ok(pos) => self.position(path, file.to_string(), pos),
                        Err(_) => {
                            self.bad_value(
                                path,
                                format!("{s:?}: {pos:?} is not a byte position; {EXPECTED}"),
                            );
                            StartFrom::Latest
                        }
                    },
                    _ => {
                        self.bad_value(path, format!("{s:?} is not a start position; {EXPECTED}"));
                        StartFrom::Latest
                    }
                }
            }
            Node::Map(entries) => {
                let s = Sec {
                    prefix: path.to_string(),
                    map: Some(entries),
                };
                let file = self.text(&s, "file").filter(|f| !f.trim().is_empty());
                let pos = self.int(&s, "pos");
                if file.is_none() {
                    self.missing(
                        &s.path("file"),
                        "the binlog file to start in, e.g. mysql-bin.000003",
                    );
                }
                if !s.has("pos") {
                    self.missing(
                        &s.path("pos"),
                        "the byte position in that file; 4 is its first event",
                    );
                }
                match (file, pos) {
                    (Some(file), Some(pos)) => match u64::try_from(pos) {
                        Ok(pos) => self.position(&s.path("pos"), file, pos),
                        Err(_) => {
                            self.bad_value(&s.path("pos"), format!("{pos} is negative"));
                            StartFrom::Latest
                        }
                    },
                    _ => StartFrom::Latest,
                }
            }
            other => {
                self.wrong_type(path, "latest, earliest or {file: …, pos: …}", other);
                StartFrom::Latest
            }
        }
    }

    fn position(&mut self, path: &str, file: String, pos: u64) -> StartFrom {
        if file
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\\')
        {
            self.bad_value(
                path,
                format!("{file:?} is not a binlog file name (e.g. mysql-bin.000003)"),
            );
        }
        if pos < 4 {
            self.bad_value(
                path,
                format!("position {pos} is inside the file header; the first event is at 4"),
            );
        }
        StartFrom::Position { file, pos }
    }

    // --- tasks -------------------------------------------------------------------------

    fn tasks(
        &mut self,
        node: Option<&Node>,
        database: &str,
        host: &HostState,
        empty_reason: impl FnOnce() -> String,
    ) -> Vec<Task> {
        let items = match node {
            None => Vec::new(),
            Some(Node::Seq(items)) => items.iter().collect(),
            Some(other) => {
                self.wrong_type("tasks", "a list of tasks (- task_id: …)", other);
                return Vec::new();
            }
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
        for (index, item) in items.into_iter().enumerate() {
            let prefix = format!("tasks[{index}]");
            let map = match item {
                Node::Map(entries) => entries.as_slice(),
                other => {
                    self.wrong_type(
                        &prefix,
                        "a task (task_id:, table_name:, events:, callback_url:)",
                        other,
                    );
                    continue;
                }
            };
            let sec = Sec {
                prefix,
                map: Some(map),
            };
            if let Some(task) = self.task(&sec, index, database, host) {
                if let Some(first) = first_index.get(&task.task_id) {
                    self.errors.push(ConfigError::DuplicateTaskId {
                        file: self.file.to_path_buf(),
                        index,
                        task_id: task.task_id.clone(),
                        first: *first,
                    });
                } else {
                    first_index.insert(task.task_id.clone(), index);
                }
                tasks.push(task);
            }
        }
        tasks
    }

    /// `None` when the task is too broken to use; its problems are recorded.
    fn task(&mut self, s: &Sec, index: usize, database: &str, host: &HostState) -> Option<Task> {
        let task_id = match self.text(s, "task_id") {
            Some(id) if !id.trim().is_empty() => {
                if id.chars().any(char::is_control) {
                    self.bad_value(
                        &s.path("task_id"),
                        format!("{id:?} contains control characters"),
                    );
                }
                id
            }
            _ => {
                self.missing(
                    &s.path("task_id"),
                    "a unique name for the task, sent as X-Pikachu-Task-Id",
                );
                String::new()
            }
        };
        let name = self
            .text(s, "name")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| task_id.clone());
        let (database, table) = match self.text(s, "table_name") {
            Some(t) if !t.trim().is_empty() => match t.split_once('.') {
                // `db.table` watches a table of another database on the same server.
                Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                    (db.to_string(), table.to_string())
                }
                Some(_) => {
                    self.bad_value(
                        &s.path("table_name"),
                        format!("{t:?} is neither a table name nor database.table"),
                    );
                    (String::new(), String::new())
                }
                None => (database.to_string(), t),
            },
            _ => {
                self.missing(
                    &s.path("table_name"),
                    "the table whose row changes this task delivers",
                );
                (String::new(), String::new())
            }
        };
        let events = self.events(s, index);
        let callback_url = self.callback_url(s, host);
        let headers = self.headers(s);
        let secret = self.secret(s, "secret");
        // A task with problems is still returned when it has an id, so that a duplicate
        // id is reported too; the load fails on the recorded errors either way.
        if task_id.is_empty() {
            return None;
        }
        Some(Task {
            task_id,
            name,
            database,
            table,
            events,
            callback_url,
            headers,
            secret,
        })
    }

    fn events(&mut self, s: &Sec, index: usize) -> EventFilter {
        let path = s.path("events");
        let mut filter = EventFilter::default();
        let items = match s.node("events") {
            None => {
                self.missing(
                    &path,
                    "the row changes to deliver, e.g. [insert, update, delete]",
                );
                return filter;
            }
            Some(Node::Seq(items)) => items,
            Some(other) => {
                self.wrong_type(&path, "a list such as [insert, update, delete]", other);
                return filter;
            }
        };
        if items.is_empty() {
            self.bad_value(
                &path,
                "is empty; list at least one of insert, update, delete".into(),
            );
        }
        for item in items {
            let name = match item {
                Node::Str(s) => s.trim().to_ascii_lowercase(),
                other => describe(other, false),
            };
            // Duplicates are harmless and folded, as the Go tool does.
            match name.as_str() {
                "insert" => filter.insert = true,
                "update" => filter.update = true,
                "delete" => filter.delete = true,
                _ => {
                    let event = match item {
                        Node::Str(s) => s.clone(),
                        other => describe(other, false),
                    };
                    self.errors.push(ConfigError::UnknownEvent {
                        file: self.file.to_path_buf(),
                        index,
                        event,
                    });
                }
            }
        }
        filter
    }

    fn callback_url(&mut self, s: &Sec, host: &HostState) -> String {
        let path = s.path("callback_url");
        let Some(url) = self
            .text(s, "callback_url")
            .filter(|u| !u.trim().is_empty())
        else {
            self.missing(
                &path,
                "where to POST the changes: https://host/path, or /path joined to callback_host",
            );
            return String::new();
        };
        let result =
            if url.starts_with("//") {
                Err(
                    "it starts with //; write https://host/path, or a path such as /webhook"
                        .to_string(),
                )
            } else if url.starts_with('/') {
                match host {
                    HostState::Valid(host) => {
                        let joined = format!("{host}{url}");
                        check_absolute_url(&joined).map(|()| joined)
                    }
                    HostState::Invalid => return String::new(),
                    HostState::Unset => Err(
                        "it is a path, but callback_host is not set; set callback_host (e.g. \
                     http://localhost:3000) or write an absolute http(s) URL"
                            .to_string(),
                    ),
                }
            } else if url.contains("://") {
                check_absolute_url(&url).map(|()| url.clone())
            } else {
                Err("it is neither an absolute http(s) URL (https://host/path) nor a path starting \
                 with / (joined to callback_host)"
                .to_string())
            };
        match result {
            Ok(url) => url,
            Err(reason) => {
                let origin = self.origin(&path);
                let shown = (!has_userinfo(&url)).then(|| url.clone());
                self.errors.push(ConfigError::BadCallbackUrl {
                    origin,
                    key: path,
                    url: shown,
                    reason,
                });
                String::new()
            }
        }
    }

    fn headers(&mut self, s: &Sec) -> Vec<(String, String)> {
        let path = s.path("headers");
        let entries = match s.node("headers") {
            None => return Vec::new(),
            Some(Node::Map(entries)) => entries,
            Some(other) => {
                self.wrong_type(&path, "a mapping of header names to values", other);
                return Vec::new();
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in entries {
            let key = format!("{path}.{name}");
            let is_token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !is_token {
                self.bad_value(&key, format!("{name:?} is not a valid HTTP header name"));
                continue;
            }
            if RESERVED_HEADERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
            {
                self.bad_value(
                    &key,
                    format!("{name} is set by pikachu itself and cannot be replaced"),
                );
                continue;
            }
            if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                self.bad_value(
                    &key,
                    format!("header {name} is given twice (names ignore case)"),
                );
                continue;
            }
            if *value == Node::Null {
                self.missing(&key, "a header value; write \"\" for an empty one");
                continue;
            }
            let Some(value) = self.node_text(&key, Some(value)) else {
                continue;
            };
            // A line break would end the header and let the value inject others.
            if value.chars().any(|c| c.is_control() && c != '\t') {
                self.bad_value(
                    &key,
                    "the value contains a line break or control character".into(),
                );
                continue;
            }
            headers.push((name.clone(), value));
        }
        headers
    }
}

/// Headers pikachu sets on every request; a task must not replace them (the signature
/// and event id headers in particular are what receivers verify and de-duplicate on).
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

/// Checks an absolute callback URL the way the Go tool does (http/https, a host, a port
/// in range, no credentials, no fragment); `Err` says what is wrong.
fn check_absolute_url(url: &str) -> Result<(), String> {
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
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("the IPv6 address is missing its closing ]".into());
        };
        if !host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            || host.is_empty()
        {
            return Err(format!("[{host}] is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("unexpected text after the IPv6 address".into()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_alphanumeric() || "-._~%".contains(c))
    {
        return Err(format!("{host:?} is not a host name"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p >= 1 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("the port {port:?} is not between 1 and 65535")),
        }
    }
    Ok(())
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
                "config.yaml: database.password: expected a string, found a mapping",
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

    // --- start_from -------------------------------------------------------------------

    #[test]
    fn start_from_forms() {
        let base = format!("{DB}{ONE_TASK}");
        for (yaml, expected) in [
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
    fn bad_start_from() {
        let base = format!("{DB}{ONE_TASK}");
        let m = messages(load_str(&format!("{base}start_from: newest\n")));
        assert_has(&m, "config.yaml: start_from: \"newest\" is not a start position; expected latest, earliest or {file: mysql-bin.000003, pos: 4}");
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
            c.dispatcher.secret.as_ref().map(Secret::expose),
            Some(GOOD_SECRET)
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
            "PIKACHU_MONITOR_HEARTBEAT_PERIOD",
            "PIKACHU_LOG_FORMAT",
            "PIKACHU_CALLBACK_HOST",
            "PIKACHU_DATA_DIR",
            "PIKACHU_START_FROM",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
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
            c.tasks[0].secret.as_ref().map(Secret::expose),
            Some(GOOD_SECRET)
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
        assert!(debug.contains("Authorization"), "header names stay visible");
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
        assert_eq!(
            c.tasks[0].headers,
            [
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("X-Tenant".to_string(), "42".to_string())
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
    fn errors_display_one_per_line() {
        let errors = load_str("database:\n  port: 0\n").unwrap_err();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), errors.0.len());
        assert!(errors.0.len() >= 5, "{text}");
    }
}
