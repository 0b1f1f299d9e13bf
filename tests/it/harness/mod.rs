//! The integration-test harness: a real MariaDB started through the project's own
//! `scripts/mariadb.sh`, a real webhook receiver on loopback, and the real `pikachu`
//! binary as a child process.

pub mod tls;
pub mod writer;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Ports handed out by `free_port` in this process.
static PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A port nobody listens on right now, and never handed out before in this process:
/// the tests run in parallel threads, and a port the kernel hands out again before the
/// first taker bound it would put two servers on one port.
pub fn free_port() -> u16 {
    let mut taken = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port on 127.0.0.1");
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

/// A binlog position, `(file, pos)`: ordered as the binlog is, since file names have a
/// fixed-width number.
pub type Position = (String, u64);

/// tasks.yaml entry `id` taking every event of `table` and posting to `url`.
pub fn task(id: &str, table: &str, url: &str) -> String {
    format!(
        "  - task_id: {id}\n    table_name: {table}\n    events: [insert, update, delete]\n    callback_url: \"{url}\"\n"
    )
}

/// `task` with more keys for it, each `key: value` line indented as a task key.
pub fn task_with(id: &str, table: &str, url: &str, keys: &[&str]) -> String {
    let mut t = task(id, table, url);
    for k in keys {
        t.push_str(&format!("    {k}\n"));
    }
    t
}

/// The row an envelope is about: `new_data` of an update, else `data`.
pub fn row_of(e: &Value) -> &Value {
    if e["event"] == "update" {
        &e["new_data"]
    } else {
        &e["data"]
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("pikachu-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway MariaDB with `log_bin`, `binlog_format=ROW`, `binlog_row_metadata=FULL`.
pub struct MariaDb {
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
}

impl MariaDb {
    pub fn start() -> MariaDb {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> MariaDb {
        let db = MariaDb {
            port: free_port(),
            dir: TempDir::new("mariadb"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        db.run_script("start");
        db
    }

    fn run_script(&self, action: &str) {
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/mariadb.sh"))
            .arg(action)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--datadir")
            .arg(self.dir.path());
        if action == "start" && !self.extra.is_empty() {
            cmd.arg("--").args(&self.extra);
        }
        let out = cmd.output().expect("run scripts/mariadb.sh");
        assert!(
            out.status.success(),
            "scripts/mariadb.sh {action} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("mysqld.pid"))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    pub fn conn(&self) -> mysql::Conn {
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(self.port)
            .user(Some("root"))
            .prefer_socket(false)
            .init(vec!["SET NAMES utf8mb4"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match mysql::Conn::new(opts.clone()) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to MariaDB: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs one or more statements (separated by `;` as the server takes them).
    pub fn exec(&self, sql: &str) {
        let mut c = self.conn();
        // query_drop reports only the first statement's error: walk every result set so
        // that a failing later statement fails the test here, not three steps later.
        let mut result = c
            .query_iter(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
        while let Some(set) = result.iter() {
            for row in set {
                if let Err(e) = row {
                    panic!("SQL failed: {e}\n{sql}");
                }
            }
        }
    }

    pub fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut c = self.conn();
        let rows: Vec<mysql::Row> = c
            .query(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
        rows.into_iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| match r.as_ref(i) {
                        Some(mysql::Value::NULL) | None => None,
                        Some(mysql::Value::Bytes(b)) => {
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                        Some(v) => Some(v.as_sql(true).trim_matches('\'').to_owned()),
                    })
                    .collect()
            })
            .collect()
    }

    /// `SHOW MASTER STATUS`: where the server writes next.
    pub fn master_status(&self) -> Position {
        let rows = self.query_strings("SHOW MASTER STATUS");
        let file = rows[0][0].clone().expect("binlog file");
        let pos = rows[0][1]
            .as_deref()
            .and_then(|p| p.parse().ok())
            .expect("binlog position");
        (file, pos)
    }

    /// The end of the last transaction in the binlog: once pikachu's checkpoint is
    /// there, every change committed so far is delivered or dead-lettered. Not simply
    /// `SHOW MASTER STATUS`: after a rotation or a restart the server writes events of
    /// its own (`Binlog_checkpoint`) that are no transaction boundary, and the
    /// checkpoint only ever stops at one. A file without a transaction yet: its start.
    pub fn last_commit(&self) -> Position {
        let (file, _) = self.master_status();
        // Log_name, Pos, Event_type, Server_id, End_log_pos, Info
        let end = self
            .query_strings(&format!("SHOW BINLOG EVENTS IN '{file}'"))
            .into_iter()
            .filter(|r| {
                let kind = r[2].as_deref().unwrap_or("");
                let info = r[5].as_deref().unwrap_or("");
                kind == "Xid" || (kind.starts_with("Query") && !info.starts_with("BEGIN"))
            })
            .filter_map(|r| r[4].as_deref().and_then(|p| p.parse().ok()))
            .next_back()
            .unwrap_or(4);
        (file, end)
    }

    pub fn stop(&self) {
        self.run_script("stop");
    }

    pub fn start_again(&self) {
        self.run_script("start");
    }

    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub n: usize,
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
    pub status: u16,
}

/// What the receiver answers: (status, extra headers, delay before answering).
pub type Policy = dyn Fn(usize, &Received) -> (u16, Vec<(String, String)>, Duration) + Send + Sync;

/// A webhook receiver on 127.0.0.1 that records every request.
pub struct Receiver {
    port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    server: Arc<tiny_http::Server>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn always(status: u16) -> Receiver {
        Self::with_policy(move |_, _| (status, vec![], Duration::ZERO))
    }

    pub fn with_policy(
        policy: impl Fn(usize, &Received) -> (u16, Vec<(String, String)>, Duration)
            + Send
            + Sync
            + 'static,
    ) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind receiver"));
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("receiver port");
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let policy: Arc<Policy> = Arc::new(policy);
        let counter = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for _ in 0..8 {
            let (server, log, policy, counter) =
                (server.clone(), log.clone(), policy.clone(), counter.clone());
            threads.push(std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let mut raw = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut raw);
                    let headers = req
                        .headers()
                        .iter()
                        .map(|h| {
                            (
                                h.field.as_str().as_str().to_ascii_lowercase(),
                                h.value.as_str().to_owned(),
                            )
                        })
                        .collect();
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let mut rec = Received {
                        n,
                        method: req.method().as_str().to_owned(),
                        path: req.url().to_owned(),
                        headers,
                        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                        raw,
                        status: 0,
                    };
                    let (status, extra, delay) = policy(n, &rec);
                    if !delay.is_zero() {
                        // A slow receiver on purpose: pikachu waits for the answer
                        // (it is no time limit on the test, which waits for facts).
                        std::thread::sleep(delay);
                    }
                    rec.status = status;
                    log.lock().unwrap().push(rec);
                    let mut resp = tiny_http::Response::from_string("{}").with_status_code(status);
                    for (k, v) in extra {
                        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                            resp = resp.with_header(h);
                        }
                    }
                    let _ = req.respond(resp);
                }
            }));
        }
        Receiver {
            port,
            log,
            server,
            threads,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// tasks.yaml entries: one task per table, named after it, taking every event and
    /// posting to `/<table>` here.
    pub fn task_per_table(&self, tables: &[&str]) -> String {
        tables
            .iter()
            .map(|t| task(t, t, &self.url(&format!("/{t}"))))
            .collect()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Envelopes answered with 2xx, batches expanded, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        flatten(
            self.requests()
                .iter()
                .filter(|r| (200..300).contains(&r.status)),
        )
    }

    /// Every envelope received whatever the answer, in arrival order.
    pub fn all_events(&self) -> Vec<Value> {
        flatten(self.requests().iter())
    }

    /// Waits until at least `n` envelopes were accepted; panics listing what arrived.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> Vec<Value> {
        if poll_until(timeout, || self.events().len() >= n) {
            return self.events();
        }
        let ev = self.events();
        let ids: Vec<String> = ev.iter().map(|e| e["id"].to_string()).collect();
        panic!(
            "expected {n} events within {timeout:?}, got {}: {}",
            ev.len(),
            ids.join(", ")
        );
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn flatten<'a>(reqs: impl Iterator<Item = &'a Received>) -> Vec<Value> {
    let mut out = Vec::new();
    for r in reqs {
        match &r.body {
            Value::Array(items) => out.extend(items.iter().cloned()),
            Value::Null => {}
            v => out.push(v.clone()),
        }
    }
    out
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
    }
}

/// A config for the real binary against `db`, written into its own directory.
pub struct Setup {
    pub dir: TempDir,
    pub health_port: u16,
}

impl Setup {
    /// `tasks_yaml`: the `tasks:` list (YAML, indented by two spaces per level);
    /// `extra_yaml`: more top-level sections (e.g. a `dispatcher:` block).
    pub fn new(db: &MariaDb, database: &str, tasks_yaml: &str, extra_yaml: &str) -> Setup {
        let dir = TempDir::new("pikachu");
        let health_port = free_port();
        let mut dispatcher = "dispatcher:\n  worker_count: 4\n  retry_base_delay: 50ms\n  retry_max_delay: 500ms\n  shutdown_timeout: 5s\n".to_owned();
        let mut monitor =
            "monitor:\n  flush_interval: 200ms\n  heartbeat_period: 500ms\n".to_owned();
        let mut log = "log:\n  level: debug\n".to_owned();
        let mut rest = String::new();
        // Sections given in extra_yaml replace the defaults above.
        for block in split_sections(extra_yaml) {
            if block.starts_with("dispatcher:") {
                dispatcher = block;
            } else if block.starts_with("monitor:") {
                monitor = block;
            } else if block.starts_with("log:") {
                log = block;
            } else {
                rest.push_str(&block);
            }
        }
        let yaml = format!(
            "database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  password: \"\"\n  database: {database}\n  server_id: {}\n\
             {log}server:\n  enabled: true\n  port: {health_port}\n{dispatcher}{monitor}\
             data_dir: {}\n{rest}tasks:\n{tasks_yaml}",
            db.port(),
            1000 + COUNTER.fetch_add(1, Ordering::SeqCst),
            dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("config.yaml"), yaml).expect("write config");
        Setup { dir, health_port }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Runs `pikachu backfill -config <this config> <args>`; its output, after asserting
    /// it succeeded.
    pub fn backfill(&self, args: &[&str]) -> String {
        let config = self.config_path();
        let mut all = vec!["backfill", "-config", config.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        let (code, out, err) = run_binary(&all, &[]);
        assert_eq!(code, 0, "pikachu {all:?}: {out}{err}");
        out
    }

    /// What `pikachu check` prints for this setup.
    pub fn check(&self) -> String {
        let config = self.config_path();
        run_binary(&["check", "-config", &config.to_string_lossy()], &[]).1
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dead_letters(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data_dir().join("dead-letters.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("dead letter line is JSON"))
            .collect()
    }

    pub fn checkpoint(&self) -> Option<Value> {
        std::fs::read_to_string(self.data_dir().join("checkpoint.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
    }

    /// The checkpoint file's `(file, pos)`.
    pub fn checkpoint_position(&self) -> Option<Position> {
        self.checkpoint().map(|c| position_of(&c))
    }

    /// Waits until the checkpoint file is at `at` or after it; false after `timeout`.
    pub fn checkpoint_reaches(&self, at: &Position, timeout: Duration) -> bool {
        poll_until(timeout, || {
            self.checkpoint_position().is_some_and(|cp| &cp >= at)
        })
    }

    /// Waits until the checkpoint file has passed every transaction committed so far:
    /// then each of their changes was delivered (the receiver recorded the request
    /// before answering it) or dead-lettered, and nothing about them is still to come.
    /// This is how a test knows that something did not happen.
    pub fn wait_until_caught_up(&self, db: &MariaDb) {
        let at = db.last_commit();
        if !self.checkpoint_reaches(&at, CAUGHT_UP) {
            panic!(
                "the checkpoint never reached {at:?} within {CAUGHT_UP:?}: it is at {:?}; log:\n{}",
                self.checkpoint_position(),
                self.logs()
            );
        }
    }

    /// Waits for `n` envelopes accepted by `rx`, then until the checkpoint has passed
    /// every commit so far; returns every accepted envelope: the whole list, with
    /// nothing of those commits still to come.
    pub fn settled_events(&self, rx: &Receiver, db: &MariaDb, n: usize) -> Vec<Value> {
        rx.wait_for_events(n, CAUGHT_UP);
        self.wait_until_caught_up(db);
        rx.events()
    }

    /// Fails the test, with the dead letters and the log, when there is one.
    pub fn assert_no_dead_letters(&self) {
        let letters = self.dead_letters();
        assert!(
            letters.is_empty(),
            "dead letters: {letters:?}\nlog:\n{}",
            self.logs()
        );
    }

    /// Everything the binaries started from this setup wrote to stderr, oldest first.
    pub fn logs(&self) -> String {
        let mut logs: Vec<(usize, PathBuf)> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = name
                    .strip_prefix("pikachu-")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        logs.sort();
        logs.iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- next start ---\n")
    }

    pub fn start(&self) -> Pikachu {
        Pikachu::spawn(self, &[])
    }
}

fn split_sections(yaml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    out
}

/// The real binary as a child process.
pub struct Pikachu {
    child: Option<Child>,
    log_path: PathBuf,
    health_port: u16,
    health_path: String,
    stdout_path: Option<PathBuf>,
}

/// How `Pikachu::spawn_with` starts the binary; the default is what `spawn` does.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// The whole command line instead of `-config <config.yaml>` + `extra_args`
    /// (e.g. `-config=<path>`, or nothing at all with `CONFIG_PATH` set).
    pub args: Option<Vec<String>>,
    /// Arguments after `-config <config.yaml>`.
    pub extra_args: Vec<String>,
    /// Environment variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// The health endpoint to wait on (`server.path`); `/health` when `None`.
    pub health_path: Option<String>,
    /// stdout to its own file (`Pikachu::stdout`), so that `log()` is stderr alone.
    pub separate_stdout: bool,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pikachu")
}

impl Pikachu {
    pub fn spawn(setup: &Setup, extra_args: &[&str]) -> Pikachu {
        let opts = SpawnOptions {
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        Self::spawn_with(setup, &opts)
    }

    /// Starts the binary as `opts` says and waits until its health endpoint answers 200.
    pub fn spawn_with(setup: &Setup, opts: &SpawnOptions) -> Pikachu {
        let p = Self::spawn_unchecked(setup, opts);
        p.wait_until_healthy(Duration::from_secs(30));
        p
    }

    /// Starts the binary as `opts` says without waiting for anything.
    pub fn spawn_unchecked(setup: &Setup, opts: &SpawnOptions) -> Pikachu {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let log_path = setup.dir.path().join(format!("pikachu-{n}.log"));
        let log = std::fs::File::create(&log_path).expect("create log file");
        let stdout_path = opts
            .separate_stdout
            .then(|| setup.dir.path().join(format!("pikachu-{n}.stdout")));
        let stdout = match &stdout_path {
            Some(p) => std::fs::File::create(p).expect("create stdout file"),
            None => log.try_clone().expect("log file"),
        };
        let mut cmd = Command::new(binary());
        match &opts.args {
            Some(args) => {
                cmd.args(args);
            }
            None => {
                cmd.arg("-config")
                    .arg(setup.config_path())
                    .args(&opts.extra_args);
            }
        }
        let child = cmd
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("spawn pikachu");
        Pikachu {
            child: Some(child),
            log_path,
            health_port: setup.health_port,
            health_path: opts
                .health_path
                .clone()
                .unwrap_or_else(|| "/health".to_owned()),
            stdout_path,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// What the binary wrote to stdout (with `SpawnOptions::separate_stdout`; else "").
    pub fn stdout(&self) -> String {
        self.stdout_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn health(&self) -> Option<(u16, Value)> {
        self.get_json(&self.health_path)
    }

    /// `/metrics-json` (`Null` when it does not answer).
    pub fn metrics(&self) -> Value {
        self.get_json("/metrics-json")
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)
    }

    fn get_json(&self, path: &str) -> Option<(u16, Value)> {
        let (status, text) = self.get_text(path)?;
        let body: Value = serde_json::from_str(&text).ok()?;
        Some((status, body))
    }

    fn get_text(&self, path: &str) -> Option<(u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let mut resp = agent
            .get(&format!("http://127.0.0.1:{}{path}", self.health_port))
            .header("Accept", "text/plain")
            .call()
            .ok()?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().ok()?;
        Some((status, text))
    }

    /// `/metrics` in Prometheus text ("" when it does not answer).
    pub fn metrics_text(&self) -> String {
        self.get_text("/metrics")
            .map(|(_, t)| t)
            .unwrap_or_default()
    }

    pub fn wait_until_healthy(&self, timeout: Duration) {
        self.wait_for_health_status(200, timeout);
    }

    /// Waits until `/health` answers with `status` (e.g. 503 while disconnected).
    pub fn wait_for_health_status(&self, status: u16, timeout: Duration) {
        if !poll_until(timeout, || self.health().map(|(s, _)| s) == Some(status)) {
            panic!(
                "/health never answered {status} within {timeout:?}; log:\n{}",
                self.log()
            );
        }
    }

    /// Waits until the log (stderr) holds `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        if !poll_until(timeout, || self.log().contains(text)) {
            panic!(
                "the log never said {text:?} within {timeout:?}; log:\n{}",
                self.log()
            );
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    pub fn kill9(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("child");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "pikachu did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pikachu {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the binary to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run pikachu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How long `Setup::wait_until_caught_up` waits: far longer than it takes on a busy
/// machine (one `flush_interval` after the last delivery).
pub const CAUGHT_UP: Duration = Duration::from_secs(60);

/// The `(file, pos)` of a checkpoint or of an envelope's `position`.
pub fn position_of(v: &Value) -> Position {
    (
        v["file"].as_str().expect("file").to_owned(),
        v["pos"].as_u64().expect("pos"),
    )
}

/// Polls `f` every 50 ms until it holds (true) or `timeout` passed (false).
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` every 50 ms until it holds; fails the test naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, f),
        "timed out after {timeout:?} waiting for {what}"
    );
}
