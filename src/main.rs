//! The `pikachu` command: argv pre-pass (the Go tool's `-config`), argh, logger,
//! configuration, the panic hook and exit statuses (`Exit`). The pipeline itself lives
//! in `engine`, the checks in `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

use pikachu::config;
use pikachu::engine;
use pikachu::exit::Exit;
use pikachu::listen;
use pikachu::source::files;

// See Cargo.toml: rows cross threads (reader → worker), which glibc's malloc handles
// with a lock per free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// pikachu: delivers every insert, update and delete of the watched MySQL/MariaDB
/// tables as a JSON webhook. Run `pikachu -config config.yaml` to start; tasks come
/// from tasks.yaml beside the config file (or `tasks:` inside it).
#[derive(FromArgs)]
struct Cli {
    /// path of config.yaml (default: $CONFIG_PATH or config.yaml); `-config` works too
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,

    /// path of tasks.yaml (default: $TASKS_PATH or tasks.yaml beside the config file)
    #[argh(option)]
    tasks: Option<PathBuf>,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Version(VersionCmd),
    Check(CheckCmd),
    Listen(ListenCmd),
    ReplayDeadLetters(ReplayCmd),
    ReplayBinlog(ReplayBinlogCmd),
    Backfill(BackfillCmd),
}

/// Ask the running daemon to backfill a task's table (optionally the rows matching
/// --where), to cancel a backfill (--cancel), or show the backfills (--status). The
/// request goes through a file in data_dir; the daemon takes it within a second.
#[derive(FromArgs)]
#[argh(subcommand, name = "backfill")]
struct BackfillCmd {
    /// path of config.yaml
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// path of tasks.yaml
    #[argh(option)]
    tasks: Option<PathBuf>,
    /// the task whose table to backfill (or cancel)
    #[argh(option)]
    task: Option<String>,
    /// SQL condition limiting the rows, e.g. "created_at >= '2024-01-01'"
    #[argh(option, long = "where")]
    condition: Option<String>,
    /// show each backfill: status, rows, rate, ETA
    #[argh(switch)]
    status: bool,
    /// cancel the task's running backfill
    #[argh(switch)]
    cancel: bool,
}

/// Print the version.
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
struct VersionCmd {}

/// Check the configuration, the database connection, privileges and binlog settings
/// without delivering anything. Exit 0 when all pass, 2 for a bad configuration, 3 when
/// the database is not usable.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
struct CheckCmd {
    /// path of config.yaml
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// path of tasks.yaml
    #[argh(option)]
    tasks: Option<PathBuf>,
}

/// Run a small webhook receiver that prints every webhook it gets (for trying pikachu
/// out) and verifies Standard Webhooks signatures when given the secret.
#[derive(FromArgs)]
#[argh(subcommand, name = "listen")]
struct ListenCmd {
    /// port to listen on (default 3000)
    #[argh(option, default = "3000")]
    port: u16,
    /// address to bind (default 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    bind: String,
    /// signing secret (whsec_…) to verify signatures with; unsigned or badly signed
    /// requests then get 401
    #[argh(option)]
    secret: Option<String>,
}

/// Send the requests in the dead-letter file again; those that succeed are removed
/// from it, the others stay.
#[derive(FromArgs)]
#[argh(subcommand, name = "replay-dead-letters")]
struct ReplayCmd {
    /// path of config.yaml
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// path of tasks.yaml
    #[argh(option)]
    tasks: Option<PathBuf>,
}

/// Deliver the changes in binlog files (an archive, a copy, relay logs) to the tasks,
/// as the daemon delivers live ones, then exit. Needs the daemon stopped (same
/// data_dir); saves the checkpoint, so the daemon goes on where the files end.
#[derive(FromArgs)]
#[argh(subcommand, name = "replay-binlog")]
struct ReplayBinlogCmd {
    /// path of config.yaml
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// path of tasks.yaml
    #[argh(option)]
    tasks: Option<PathBuf>,
    /// start at this event, FILE:POS (default: the checkpoint when it is in these
    /// files, else the first file's start)
    #[argh(option)]
    from: Option<String>,
    /// stop at the end of the transaction that contains FILE:POS (default: the end of
    /// the last file)
    #[argh(option)]
    to: Option<String>,
    /// binlog files, read in the order given
    #[argh(positional)]
    files: Vec<PathBuf>,
}

/// The Go tool takes `-config x` / `-config=x` (Go's flag package); argh wants
/// `--config x`.
fn go_style_args(args: Vec<String>) -> Vec<String> {
    const LONG: [&str; 14] = [
        "config", "tasks", "version", "help", "secret", "port", "bind", "c", "from", "to", "task",
        "where", "status", "cancel",
    ];
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.into_iter().enumerate() {
        let bare = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        match bare {
            Some(flag) if i > 0 => {
                let (name, value) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (flag, None),
                };
                if LONG.contains(&name) {
                    out.push(if name.len() == 1 {
                        format!("-{name}")
                    } else {
                        format!("--{name}")
                    });
                    if let Some(v) = value {
                        out.push(v.to_owned());
                    }
                } else {
                    out.push(a);
                }
            }
            _ => out.push(a),
        }
    }
    out
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("CONFIG_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("config.yaml"))
}

fn tasks_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| std::env::var_os("TASKS_PATH").map(PathBuf::from))
}

fn load_config(
    config: Option<PathBuf>,
    tasks: Option<PathBuf>,
) -> Result<config::Config, ExitCode> {
    let path = config_path(config);
    match config::load_files(&path, tasks_path(tasks).as_deref(), &|k| {
        std::env::var(k).ok()
    }) {
        Ok(c) => Ok(c),
        Err(errors) => {
            eprintln!("pikachu: the configuration is not valid:");
            for line in errors.to_string().lines() {
                eprintln!("  {line}");
            }
            Err(Exit::Config.into())
        }
    }
}

/// A panic is a bug. Every build aborts on it (Cargo.toml: `panic = "abort"`), so
/// no thread carries on beside a dead one; this hook makes the abort's last line say
/// what happened and what it means for the data, at error level in the configured log
/// format (and on stderr, in case no logger is installed yet).
/// `pikachu backfill`: leaves a request for the daemon, or prints its status file.
fn backfill_command(
    cfg: &config::Config,
    task: Option<String>,
    condition: Option<String>,
    status: bool,
    cancel: bool,
) -> ExitCode {
    use pikachu::backfill::control;
    if status {
        let path = control::status_path(&cfg.data_dir);
        return match std::fs::read_to_string(&path) {
            Ok(text) => {
                println!("{}", text.trim_end());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "pikachu: no backfill status in {} ({e}); is the daemon running with this data_dir?",
                    path.display()
                );
                Exit::Runtime.into()
            }
        };
    }
    let Some(task) = task else {
        eprintln!("pikachu backfill: --task ID is required (or --status)");
        return Exit::Config.into();
    };
    if !cfg.tasks.iter().any(|t| t.task_id == task) {
        let ids: Vec<&str> = cfg.tasks.iter().map(|t| t.task_id.as_str()).collect();
        eprintln!(
            "pikachu backfill: no task {task:?}; the tasks are {}",
            ids.join(", ")
        );
        return Exit::Config.into();
    }
    let request = control::Request {
        task: task.clone(),
        condition,
        cancel,
    };
    match control::submit(&cfg.data_dir, &request) {
        Ok(path) => {
            let what = if cancel {
                "cancel of the backfill"
            } else {
                "backfill"
            };
            println!(
                "requested the {what} of task {task} ({}); the running daemon takes it within a \
                 second: see its log and `pikachu backfill --status`",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "pikachu backfill: cannot write the request into {}: {e}",
                control::requests_dir(&cfg.data_dir).display()
            );
            Exit::Runtime.into()
        }
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // One line, whatever the panic message holds.
        let what = what.replace('\n', " ");
        let message = format!(
            "internal error (a bug) in thread {name}{at}: {what}; the checkpoint on disk is \
             valid, a restart resumes from it; please report this"
        );
        if log::log_enabled!(log::Level::Error) {
            log::error!("{message}");
            log::logger().flush();
        } else {
            eprintln!("pikachu: {message}");
        }
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let args = go_style_args(std::env::args().collect());
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cli = match Cli::from_args(&strs[..1], &strs[1..]) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    ExitCode::SUCCESS
                }
                Err(()) => {
                    eprintln!("{}", early.output);
                    eprintln!("Run `pikachu --help` for the options.");
                    Exit::Config.into()
                }
            };
        }
    };
    if cli.version {
        println!("pikachu {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Version(_)) => {
            println!("pikachu {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(Command::Listen(l)) => {
            let opts = listen::ListenOptions {
                port: l.port,
                secret: l.secret,
                bind: l.bind,
            };
            match listen::run(&opts, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pikachu listen: {e}");
                    Exit::Runtime.into()
                }
            }
        }
        Some(Command::Check(c)) => {
            // `pikachu -config x check` names the file before the subcommand.
            let (config, tasks) = (c.config.or(cli.config), c.tasks.or(cli.tasks));
            let shown = config_path(config.clone());
            let cfg = match load_config(config, tasks) {
                Ok(cfg) => cfg,
                Err(code) => {
                    println!(
                        "FAIL configuration: {} is not valid (the problems are listed above, one per line)",
                        shown.display()
                    );
                    return code;
                }
            };
            println!(
                "OK   configuration: {} ({} tasks)",
                shown.display(),
                cfg.tasks.len()
            );
            for w in &cfg.warnings {
                println!("WARN configuration: {w}");
            }
            pikachu::check::run(&cfg, &mut std::io::stdout()).into()
        }
        Some(Command::Backfill(b)) => {
            let cfg = match load_config(b.config.or(cli.config), b.tasks.or(cli.tasks)) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            backfill_command(&cfg, b.task, b.condition, b.status, b.cancel)
        }
        Some(Command::ReplayDeadLetters(r)) => {
            let cfg = match load_config(r.config.or(cli.config), r.tasks.or(cli.tasks)) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            pikachu::logging::init(cfg.log.level, cfg.log.format);
            match engine::replay_dead_letters(&cfg) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pikachu: {e}");
                    e.exit().into()
                }
            }
        }
        Some(Command::ReplayBinlog(r)) => {
            let positions = (
                r.from.as_deref().map(files::parse_position).transpose(),
                r.to.as_deref().map(files::parse_position).transpose(),
            );
            let (from, to) = match positions {
                (Ok(from), Ok(to)) => (from, to),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("pikachu replay-binlog: {e}");
                    return Exit::Config.into();
                }
            };
            if r.files.is_empty() {
                eprintln!("pikachu replay-binlog: name the binlog files to read");
                return Exit::Config.into();
            }
            let cfg = match load_config(r.config.or(cli.config), r.tasks.or(cli.tasks)) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            pikachu::logging::init(cfg.log.level, cfg.log.format);
            let plan = files::FilePlan {
                files: r.files,
                from,
                to,
            };
            match engine::replay_binlog(cfg, plan) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    eprintln!("pikachu: {e}");
                    e.exit().into()
                }
            }
        }
        None => {
            let cfg = match load_config(cli.config, cli.tasks) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            pikachu::logging::init(cfg.log.level, cfg.log.format);
            for w in &cfg.warnings {
                log::warn!("{w}");
            }
            match engine::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    eprintln!("pikachu: {e}");
                    e.exit().into()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_flags_become_long_options() {
        let a = |v: &[&str]| go_style_args(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(a(&["p", "-config", "c.yaml"]), ["p", "--config", "c.yaml"]);
        assert_eq!(a(&["p", "-config=c.yaml"]), ["p", "--config", "c.yaml"]);
        assert_eq!(a(&["p", "--config=c.yaml"]), ["p", "--config", "c.yaml"]);
        assert_eq!(a(&["p", "-c", "c.yaml"]), ["p", "-c", "c.yaml"]);
        assert_eq!(a(&["p", "--config", "c.yaml"]), ["p", "--config", "c.yaml"]);
        assert_eq!(a(&["p", "-c=c.yaml"]), ["p", "-c", "c.yaml"]);
        assert_eq!(a(&["p", "-version"]), ["p", "--version"]);
        assert_eq!(
            a(&["p", "listen", "-port", "3000"]),
            ["p", "listen", "--port", "3000"]
        );
    }

    #[test]
    fn help_names_every_option() {
        let early = Cli::from_args(&["pikachu"], &["--help"])
            .err()
            .map(|e| e.output)
            .unwrap_or_default();
        for needle in [
            "--config",
            "--tasks",
            "--version",
            "check",
            "listen",
            "replay-dead-letters",
            "replay-binlog",
        ] {
            assert!(early.contains(needle), "--help lacks {needle}:\n{early}");
        }
    }
}
