//! `pikachu check -config x` against a real MariaDB: one line per check, `OK`/`FAIL`
//! with the fix, and the exit status an operator's script can rely on (0 all good,
//! 2 bad configuration, 3 database not usable).

use crate::harness::{free_port, run_binary, MariaDb, Receiver, Setup, TempDir};

fn tasks(receiver: &Receiver, table: &str) -> String {
    format!(
        "  - task_id: users_task\n    table_name: {table}\n    events: [insert, update, delete]\n    callback_url: \"{}\"\n",
        receiver.url("/hook")
    )
}

fn check(setup: &Setup, env: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let config = setup.config_path();
    let (code, stdout, stderr) = run_binary(
        &["check", "-config", config.to_str().expect("utf-8 path")],
        env,
    );
    (code, stdout.lines().map(str::to_owned).collect(), stderr)
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{}", lines.join("\n")))
}

/// Rewrites the harness config to log in as `user` (password from the environment).
fn as_user(setup: &Setup, user: &str) {
    let path = setup.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    let text = text.replace(
        "  user: root\n  password: \"\"\n",
        &format!("  user: {user}\n"),
    );
    assert!(
        text.contains(&format!("user: {user}")),
        "config layout changed:\n{text}"
    );
    std::fs::write(&path, text).expect("write config");
}

#[test]
fn check_against_a_real_mariadb() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(20))");
    let receiver = Receiver::always(200);

    // A good setup: every line OK, exit 0, and the checks named in the contract ran.
    // The test server has no TLS: saying so (tls: disabled) is what makes that OK.
    let good = Setup::new(&db, "shop", &tasks(&receiver, "users"), "");
    let path = good.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    std::fs::write(
        &path,
        text.replacen(
            "  password: \"\"\n",
            "  password: \"\"\n  tls: disabled\n",
            1,
        ),
    )
    .expect("write config");
    let (code, lines, stderr) = check(&good, &[]);
    assert_eq!(code, 0, "stdout:\n{}\nstderr:\n{stderr}", lines.join("\n"));
    for l in &lines {
        assert!(l.starts_with("OK   "), "not OK: {l}\n{}", lines.join("\n"));
    }
    for prefix in [
        "OK   configuration",
        "OK   connection and login",
        "OK   database TLS: not encrypted (database.tls: disabled)",
        "OK   privilege REPLICATION SLAVE",
        "OK   privilege BINLOG MONITOR",
        "OK   log_bin: ON",
        "OK   binlog_format: ROW",
        "OK   binlog_row_image: FULL",
        "OK   task users_task table: `shop`.`users`",
        "OK   task users_task callback URL",
        "OK   start position",
    ] {
        line(&lines, prefix);
    }
    assert!(
        receiver.requests().is_empty(),
        "check must not deliver anything"
    );

    // A user without REPLICATION SLAVE: FAIL with the GRANT to run, exit 3. The
    // password comes from the environment and never shows.
    db.exec(
        "CREATE USER 'norepl'@'%' IDENTIFIED BY 'S3cret-pw-norepl'; \
         GRANT SELECT, BINLOG MONITOR ON *.* TO 'norepl'@'%'",
    );
    let weak = Setup::new(&db, "shop", &tasks(&receiver, "users"), "");
    as_user(&weak, "norepl");
    let (code, lines, stderr) = check(&weak, &[("PIKACHU_DATABASE_PASSWORD", "S3cret-pw-norepl")]);
    assert_eq!(code, 3, "stdout:\n{}\nstderr:\n{stderr}", lines.join("\n"));
    let fail = line(&lines, "FAIL privilege REPLICATION SLAVE");
    assert!(
        fail.contains("GRANT REPLICATION SLAVE ON *.* TO 'norepl'@'%';"),
        "{fail}"
    );
    line(&lines, "OK   connection and login");
    line(&lines, "OK   privilege BINLOG MONITOR");
    let all = format!("{}{stderr}", lines.join("\n"));
    assert!(
        !all.contains("S3cret-pw-norepl"),
        "the password was printed:\n{all}"
    );

    // The same user with a wrong password: the login fails, exit 3, hint names the env var.
    let (code, lines, _) = check(&weak, &[("PIKACHU_DATABASE_PASSWORD", "wrong")]);
    assert_eq!(code, 3);
    let fail = line(&lines, "FAIL connection and login");
    assert!(fail.contains("PIKACHU_DATABASE_PASSWORD"), "{fail}");

    // A task table that does not exist: FAIL naming it, exit 3.
    let missing = Setup::new(&db, "shop", &tasks(&receiver, "no_such_table"), "");
    let (code, lines, _) = check(&missing, &[]);
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let fail = line(&lines, "FAIL task users_task table");
    assert!(
        fail.contains("`shop`.`no_such_table` does not exist"),
        "{fail}"
    );

    // A server not in ROW format: FAIL with the setting to change, exit 3.
    db.exec("SET GLOBAL binlog_format = 'MIXED'");
    let (code, lines, _) = check(&good, &[]);
    db.exec("SET GLOBAL binlog_format = 'ROW'");
    assert_eq!(code, 3, "{}", lines.join("\n"));
    let fail = line(&lines, "FAIL binlog_format");
    assert!(
        fail.contains("MIXED") && fail.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{fail}"
    );
}

#[test]
fn check_without_a_server_exits_3() {
    // A port nobody listens on: connection refused at once.
    let dir = TempDir::new("check-unreachable");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  host: 127.0.0.1\n  port: {}\n  user: root\n  database: shop\n  server_id: 9\n\
             data_dir: {}\ntasks:\n  - task_id: t\n    table_name: users\n    events: [insert]\n    \
             callback_url: http://127.0.0.1:9/hook\n",
            free_port(),
            dir.path().join("data").display()
        ),
    )
    .expect("write config");
    let (code, stdout, stderr) =
        run_binary(&["check", "-config", config.to_str().expect("utf-8")], &[]);
    assert_eq!(code, 3, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL connection and login"))
        .unwrap_or_else(|| panic!("no FAIL connection line:\n{stdout}"));
    assert!(fail.contains("database.host"), "{fail}");
}

#[test]
fn check_with_a_bad_configuration_exits_2() {
    let dir = TempDir::new("check-badconfig");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "database:\n  host: 127.0.0.1\n  prot: 3306\n").expect("write config");
    let (code, stdout, stderr) =
        run_binary(&["check", "-config", config.to_str().expect("utf-8")], &[]);
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("FAIL configuration"), "{stdout}");
    assert!(
        stderr.contains("prot"),
        "the unknown key is not named:\n{stderr}"
    );

    let (code, stdout, _) = run_binary(
        &[
            "check",
            "-config",
            dir.path().join("missing.yaml").to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stdout.starts_with("FAIL configuration"), "{stdout}");
}
