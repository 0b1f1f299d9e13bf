//! Every configuration shipped in `conf/` loads through `pikachu::config::load` and
//! yields what its comments promise. `conf/config.yaml` + `conf/tasks.yaml` are in the Go
//! tool's own format: loading them proves its files work unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pikachu::config::{self, Config, EventFilter, LogFormat, StartFrom};

fn conf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conf")
        .join(name)
}

fn load(name: &str) -> Config {
    config::load(&conf(name)).unwrap_or_else(|errors| panic!("{name} does not load:\n{errors}"))
}

/// Loads with a given environment instead of the process's.
fn load_env(path: &Path, env: &[(&str, &str)]) -> Config {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    config::load_with_env(path, &lookup)
        .unwrap_or_else(|errors| panic!("{} does not load:\n{errors}", path.display()))
}

fn urls(config: &Config) -> Vec<(&str, String)> {
    config
        .tasks
        .iter()
        .map(|t| (t.task_id.as_str(), t.callback_url.to_string()))
        .collect()
}

/// The tasks of conf/tasks.yaml, with callback_host `host` applied.
fn shared_tasks(host: &str) -> Vec<(String, String)> {
    [
        ("user_monitor", format!("{host}/webhook/user")),
        (
            "order_monitor",
            "https://api.example.com/webhook/order".to_string(),
        ),
        ("keyword_table_monitor", format!("{host}/webhook/order")),
        ("user_events_monitor", format!("{host}/webhook/user-events")),
        (
            "activity_log_monitor",
            "https://external-api.example.com/webhook/activity".to_string(),
        ),
    ]
    .into_iter()
    .map(|(id, url)| (id.to_string(), url))
    .collect()
}

fn owned(urls: Vec<(&str, String)>) -> Vec<(String, String)> {
    urls.into_iter().map(|(a, b)| (a.to_string(), b)).collect()
}

#[test]
fn go_format_config_and_tasks_load_unchanged() {
    let c = load("config.yaml");
    assert_eq!(c.database.host, "localhost");
    assert_eq!(c.database.port, 3306);
    assert_eq!(c.database.password.expose(), "password");
    assert_eq!(c.database.server_id, 100);
    assert_eq!(c.database.charset, "utf8mb4");
    assert_eq!(c.log.level, log::LevelFilter::Info);
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.server.enabled);
    assert_eq!((c.server.port, c.server.path.as_str()), (8080, "/health"));
    assert_eq!(c.dispatcher.worker_count, 20);
    assert_eq!(c.dispatcher.max_retries, Some(3));
    assert_eq!(c.dispatcher.retry_base_delay, Duration::from_secs(5));
    assert_eq!(c.dispatcher.batch_timeout, Duration::from_millis(100));
    assert_eq!(c.monitor.event_queue_size, 10000);
    assert_eq!(c.monitor.flush_interval, Duration::from_secs(1));
    assert_eq!(c.callback_host.as_deref(), Some("http://localhost:3000"));

    // Tasks come from tasks.yaml beside it: relative URLs joined, absolute ones kept.
    assert_eq!(owned(urls(&c)), shared_tasks("http://localhost:3000"));
    let tables: Vec<(&str, &str)> = c
        .tasks
        .iter()
        .map(|t| (t.database.as_str(), t.table.as_str()))
        .collect();
    assert_eq!(
        tables,
        [
            ("test_db", "users"),
            ("test_db", "orders"),
            ("test_db", "order"),
            ("test_db", "user-events"),
            ("test_db", "2024_user-activity_log"),
        ]
    );
    assert_eq!(
        c.tasks[1].events,
        EventFilter {
            insert: true,
            update: true,
            delete: false
        }
    );
    assert_eq!(c.tasks[0].name, "Users table changes");

    // The Go tool's log rotation and monitor batching keys are accepted, with a warning.
    for key in [
        "log.directory",
        "log.max_size",
        "log.max_backups",
        "log.max_age",
        "monitor.batch_size",
        "monitor.batch_timeout",
    ] {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains(key) && w.contains("ignored")),
            "no warning for {key}: {:?}",
            c.warnings
        );
    }
}

#[test]
fn the_reference_example_loads_and_states_the_defaults() {
    let c = load("config.example.yaml");
    assert_eq!(c.database.port, 3306);
    assert_eq!(c.database.charset, "utf8mb4");
    assert_eq!(c.database.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.database.read_timeout, Duration::from_secs(30));
    assert!(c.database.password.expose().is_empty());
    assert_eq!(c.log.level, log::LevelFilter::Info);
    assert!(!c.server.enabled);
    assert_eq!(c.server.bind.to_string(), "0.0.0.0");
    assert_eq!((c.server.port, c.server.path.as_str()), (8080, "/health"));
    let d = &c.dispatcher;
    assert_eq!((d.worker_count, d.queue_size), (20, 1000));
    assert_eq!(d.timeout, Duration::from_secs(30));
    assert_eq!(d.max_retries, Some(3));
    assert_eq!(d.retry_base_delay, Duration::from_secs(5));
    assert_eq!(d.retry_max_delay, Duration::from_secs(60));
    assert_eq!((d.max_connections, d.max_idle_conns), (100, 20));
    assert_eq!(d.idle_conn_timeout, Duration::from_secs(90));
    assert_eq!(
        (d.batch_size, d.batch_timeout),
        (1, Duration::from_millis(100))
    );
    assert_eq!(d.shutdown_timeout, Duration::from_secs(30));
    assert!(d.secret.is_none());
    let m = &c.monitor;
    assert_eq!(m.event_queue_size, 10000);
    assert_eq!(m.event_queue_timeout, Duration::from_secs(2));
    assert_eq!(m.flush_interval, Duration::from_secs(1));
    assert_eq!(m.heartbeat_period, Duration::from_secs(1));
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!(c.start_from, StartFrom::Latest);
    assert_eq!(owned(urls(&c)), shared_tasks("http://localhost:3000"));
    // Everything in the reference is used: nothing to warn about. (Warnings about the
    // test process's own PIKACHU_* variables are not the file's doing.)
    let about_file: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| !w.starts_with("environment variable"))
        .collect();
    assert!(about_file.is_empty(), "{about_file:?}");
}

#[test]
fn the_dev_config_points_at_the_local_mariadb_with_its_inline_tasks() {
    let c = load("dev/config.yaml");
    assert_eq!(c.database.host, "127.0.0.1");
    assert_eq!(c.database.port, 3307);
    assert_eq!(c.database.user, "root");
    assert_eq!(c.database.password.expose(), "");
    assert_eq!(c.database.database, "pikachu_demo");
    assert_eq!(c.data_dir, PathBuf::from(".local/data"));
    assert_eq!(c.log.level, log::LevelFilter::Info);
    assert_eq!(c.dispatcher.retry_base_delay, Duration::from_millis(100));
    assert_eq!(c.dispatcher.retry_max_delay, Duration::from_secs(2));
    // No tasks.yaml beside it: the inline tasks are used (scripts/demo.sh relies on it).
    assert_eq!(
        urls(&c),
        [
            ("demo_users", "http://127.0.0.1:3000/webhook".to_string()),
            ("demo_orders", "http://127.0.0.1:3000/webhook".to_string())
        ]
    );
    assert!(c.tasks.iter().all(|t| t.database == "pikachu_demo"));
    let about_file: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| !w.starts_with("environment variable"))
        .collect();
    assert!(about_file.is_empty(), "{about_file:?}");
}

#[test]
fn the_prod_config_takes_its_secrets_from_the_environment() {
    // Standard Webhooks test-vector key: a well-formed secret, not a real one.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let c = load_env(
        &conf("config.prod.yaml"),
        &[
            ("PIKACHU_DATABASE_PASSWORD", "s3cret-from-env"),
            ("PIKACHU_DISPATCHER_SECRET", secret),
        ],
    );
    assert_eq!(c.database.password.expose(), "s3cret-from-env");
    // The key is the one given: it signs as a key parsed from the same secret does.
    let expected = pikachu::signature::SigningKey::parse(secret).expect("a good secret");
    assert_eq!(
        c.dispatcher
            .secret
            .as_ref()
            .map(|k| k.sign("id", 1, b"body")),
        Some(expected.sign("id", 1, b"body"))
    );
    assert_eq!(c.dispatcher.worker_count, 4);
    assert_eq!(c.dispatcher.batch_size, 100);
    assert_eq!(c.dispatcher.batch_timeout, Duration::from_millis(200));
    assert_eq!(c.dispatcher.max_retries, Some(8));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/pikachu"));
    assert_eq!(owned(urls(&c)), shared_tasks("https://api.example.com"));
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cret-from-env") && !debug.contains(secret),
        "{debug}"
    );

    // Without the environment the file alone still loads: no password, no signing.
    let c = load_env(&conf("config.prod.yaml"), &[]);
    assert!(c.database.password.expose().is_empty());
    assert!(c.dispatcher.secret.is_none());
}

#[test]
fn every_config_in_conf_loads() {
    // conf/ and its subdirectories (conf/dev/): every config there must load as shipped.
    let mut loaded = 0;
    let mut dirs = vec![conf("")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a conf/ directory") {
            let path = entry.expect("read conf/ entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.display().to_string();
            if !name.ends_with(".yaml") || name.ends_with("tasks.yaml") {
                continue;
            }
            let c = load_env(&path, &[]);
            assert!(!c.tasks.is_empty(), "{name} yields no tasks");
            loaded += 1;
        }
    }
    assert!(loaded >= 4, "only {loaded} configs found in conf/");
}
