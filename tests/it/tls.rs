//! Issue 13: TLS to the database (every mode, right and wrong CA, name mismatch, client
//! certificates, a server that requires TLS, a server without it), TLS to receivers
//! (a private CA, client certificates, proxies as curl picks them), secrets from files,
//! and that no secret reaches any output.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::tls::{ConnectProxy, HttpsReceiver, Pki};
use crate::harness::{
    run_binary, task, wait_until, MariaDb, Pikachu, Receiver, Setup, SpawnOptions,
};

const WAIT: Duration = Duration::from_secs(30);
const DB_PASSWORD: &str = "Db-Pass-7731-tls";
const ACCOUNT_PASSWORD: &str = "Acct-Pass-991-created-while-running";
const SECRET_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "Bearer tok-5521-from-a-file";

const GRANTS: &str = "SELECT, REPLICATION SLAVE, BINLOG MONITOR";

/// The `database:` lines after `port:` in the harness's config, replaced by `lines`.
fn set_database(setup: &Setup, lines: &str) {
    let path = setup.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    let start = text.find("  user:").expect("user line");
    let end = text.find("  database: ").expect("database line");
    let text = format!("{}{lines}{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("write config");
}

fn check(setup: &Setup) -> (i32, String) {
    let config = setup.config_path();
    let (code, out, err) = run_binary(&["check", "-config", config.to_str().expect("utf-8")], &[]);
    (code, format!("{out}{err}"))
}

fn private_file(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write secret");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn database_tls_modes_certificates_and_no_secret_in_any_output() {
    let pki = Pki::new();
    let options = pki.mariadb_options();
    let db = MariaDb::start_with(&options.iter().map(String::as_str).collect::<Vec<_>>());
    db.exec(&format!(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(40)); \
         CREATE USER 'cdc'@'%' IDENTIFIED BY '{DB_PASSWORD}'; GRANT {GRANTS} ON *.* TO 'cdc'@'%'; \
         CREATE USER 'x509'@'%' IDENTIFIED BY '{DB_PASSWORD}' REQUIRE X509; \
         GRANT {GRANTS} ON *.* TO 'x509'@'%'"
    ));
    let rx = Receiver::always(200);
    let failing = Receiver::always(400);
    let secrets = crate::harness::TempDir::new("secrets");
    let password_file = secrets.path().join("db-password");
    private_file(&password_file, &format!("{DB_PASSWORD}\n"));
    private_file(
        &secrets.path().join("webhook-secret"),
        &format!("whsec_{SECRET_KEY}\n"),
    );
    private_file(&secrets.path().join("token"), TOKEN);
    let s = secrets.path().display();
    let tasks = format!(
        "{}    secret_file: {s}/webhook-secret\n    headers:\n      Authorization: {{file: {s}/token}}\n{}",
        task("t", "t", &rx.url("/t")),
        task("refused", "t", &failing.url("/refused")),
    );
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 2\n  max_retries: 0\n  shutdown_timeout: 5s\n",
    );
    let p = password_file.display();
    let ca = pki.p("ca.pem");
    let verified =
        format!("  user: cdc\n  password_file: {p}\n  tls: verify_identity\n  ca_file: {ca}\n");

    // verify_identity with the right CA: encrypted, verified, reported by check.
    set_database(&setup, &verified);
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK   database TLS: TLSv1."), "{out}");
    assert!(
        out.contains("database.tls: verify_identity, certificate verified"),
        "{out}"
    );
    assert!(
        out.contains("the server does not require TLS (require_secure_transport=OFF)"),
        "{out}"
    );
    assert!(
        out.contains("OK   database server certificate: valid until"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "OK   certificate database.ca_file: {ca}: valid until"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "OK   secret file database.password_file: {p} (mode 600)"
        )),
        "{out}"
    );
    let mut check_output = out;

    // The daemon on that connection, while an account is created with a password.
    let mut daemon = Pikachu::spawn(&setup, &[]);
    db.exec(&format!(
        "INSERT INTO shop.t VALUES (1, 'over-tls'); \
         CREATE USER 'app'@'%' IDENTIFIED BY '{ACCOUNT_PASSWORD}'; \
         INSERT INTO shop.t VALUES (2, 'after-create-user')"
    ));
    let events = setup.settled_events(&rx, &db, 2);
    assert_eq!(events[1]["data"]["v"], "after-create-user");
    let request = &rx.requests()[0];
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some(TOKEN),
        "header from a file"
    );
    assert!(
        request.headers.contains_key("webhook-signature"),
        "signed with the key from a file"
    );
    wait_until("the dead letters", WAIT, || setup.dead_letters().len() == 2);
    let metrics = get(&format!("http://127.0.0.1:{}/metrics", setup.health_port));
    let log = daemon.log();
    assert!(log.contains("TLS: TLSv1."), "{log}");
    let modes = |path: &std::path::Path| {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    assert_eq!(modes(&setup.data_dir()), Some(0o700));
    assert_eq!(
        modes(&setup.data_dir().join("dead-letters.jsonl")),
        Some(0o600)
    );
    daemon.sigterm();
    daemon.wait_exit(WAIT);

    // The wrong CA: refused, saying why and what to set.
    set_database(&setup, &verified.replace("ca.pem", "other-ca.pem"));
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not signed by a CA pikachu trusts"), "{out}");
    assert!(out.contains("set database.ca_file"), "{out}");
    check_output.push_str(&out);

    // verify_identity by a name the certificate does not list; verify_ca accepts it.
    let text = std::fs::read_to_string(setup.config_path()).unwrap();
    std::fs::write(
        setup.config_path(),
        text.replace("host: 127.0.0.1", "host: localhost"),
    )
    .unwrap();
    set_database(&setup, &verified);
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not issued for \"localhost\""), "{out}");
    assert!(out.contains("database.tls: verify_ca"), "{out}");
    set_database(&setup, &verified.replace("verify_identity", "verify_ca"));
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("database.tls: verify_ca, certificate verified"),
        "{out}"
    );
    let text = std::fs::read_to_string(setup.config_path()).unwrap();
    std::fs::write(
        setup.config_path(),
        text.replace("host: localhost", "host: 127.0.0.1"),
    )
    .unwrap();

    // required: encrypted without verification, and check says so.
    set_database(
        &setup,
        &format!("  user: cdc\n  password_file: {p}\n  tls: required\n"),
    );
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("database.tls: required, certificate not verified"),
        "{out}"
    );

    // An account that requires a client certificate: refused without, accepted with.
    let x509 =
        format!("  user: x509\n  password_file: {p}\n  tls: verify_identity\n  ca_file: {ca}\n");
    set_database(&setup, &x509);
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("REQUIRE X509 also needs database.tls, and X509 a database.cert_file"),
        "{out}"
    );
    set_database(
        &setup,
        &format!(
            "{x509}  cert_file: {}\n  key_file: {}\n",
            pki.p("client.pem"),
            pki.p("client.key")
        ),
    );
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OK   connection and login: 127.0.0.1:"),
        "{out}"
    );
    check_output.push_str(&out);

    // A client certificate that runs out within 30 days is a warning.
    set_database(
        &setup,
        &format!(
            "{x509}  cert_file: {}\n  key_file: {}\n",
            pki.p("soon.pem"),
            pki.p("soon.key")
        ),
    );
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARN certificate database.cert_file:"),
        "{out}"
    );
    assert!(out.contains("days left); renew it"), "{out}");

    // The server now requires TLS: `disabled` is refused with the fix, `preferred` works.
    db.exec("SET GLOBAL require_secure_transport = ON");
    set_database(
        &setup,
        &format!("  user: cdc\n  password_file: {p}\n  tls: disabled\n"),
    );
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    // MariaDB answers "access denied" (MySQL has an error of its own, 3159): the hint
    // names both causes.
    assert!(
        out.contains("a server with require_secure_transport=ON refuses logins without TLS like this too: set database.tls"),
        "{out}"
    );
    set_database(&setup, &format!("  user: cdc\n  password_file: {p}\n"));
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("database.tls: preferred, certificate not verified"),
        "{out}"
    );
    assert!(
        out.contains("the server requires TLS (require_secure_transport=ON)"),
        "{out}"
    );
    check_output.push_str(&out);

    // No secret anywhere: the log (debug level), check, /metrics, the dead letters.
    let letters = std::fs::read_to_string(setup.data_dir().join("dead-letters.jsonl")).unwrap();
    for (name, text) in [
        ("log", &log),
        ("check", &check_output),
        ("/metrics", &metrics),
        ("dead letters", &letters),
    ] {
        for secret in [DB_PASSWORD, ACCOUNT_PASSWORD, SECRET_KEY, "tok-5521"] {
            assert!(!text.contains(secret), "{secret} in the {name}:\n{text}");
        }
    }
}

#[test]
fn a_server_without_tls_is_used_only_when_preferred() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    let (code, out) = check(&setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "WARN database TLS: not encrypted: the server offers no TLS (database.tls: preferred)"
        ),
        "{out}"
    );

    set_database(&setup, "  user: root\n  password: \"\"\n  tls: required\n");
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("the server does not offer TLS and database.tls is required"),
        "{out}"
    );
    // The daemon stops at once with the same explanation and the database exit status.
    let mut p = Pikachu::spawn_unchecked(&setup, &SpawnOptions::default());
    let status = p.wait_exit(WAIT);
    assert_eq!(status.code(), Some(3), "{}", p.log());
    assert!(p.log().contains("enable TLS on the server"), "{}", p.log());
}

#[test]
fn https_receivers_with_a_private_ca_client_certificates_and_proxies() {
    let pki = Pki::new();
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let private_ca = HttpsReceiver::start(&pki, false);
    let mutual = HttpsReceiver::start(&pki, true);
    let direct = HttpsReceiver::start_on(&pki, false, "127.0.0.2");
    let proxy = ConnectProxy::start();
    let (ca, cert, key) = (pki.p("ca.pem"), pki.p("client.pem"), pki.p("client.key"));
    let other = pki.p("other-ca.pem");
    let tasks = [
        // The dispatcher's CA; through the proxy (HTTPS_PROXY).
        task("via-proxy", "t", &private_ca.url("/a")),
        // The dispatcher's CA and the task's client certificate.
        format!(
            "{}    cert_file: {cert}\n    key_file: {key}\n",
            task("mutual", "t", &mutual.url("/m"))
        ),
        // Direct: 127.0.0.2 is in NO_PROXY.
        task("no-proxy", "t", &direct.url("/d")),
        // Without a client certificate the mutual-TLS receiver refuses the handshake.
        task("no-cert", "t", &mutual.url("/n")),
        // A task's own ca_file replaces the dispatcher's; this CA did not sign server.pem.
        format!(
            "{}    ca_file: {other}\n",
            task("wrong-ca", "t", &private_ca.url("/w"))
        ),
    ]
    .concat();
    let extra = format!(
        "dispatcher:\n  worker_count: 2\n  max_retries: 0\n  shutdown_timeout: 5s\n  ca_file: {ca}\n"
    );
    let setup = Setup::new(&db, "shop", &tasks, &extra);
    let opts = SpawnOptions {
        env: vec![
            ("HTTPS_PROXY".into(), proxy.url()),
            ("NO_PROXY".into(), "127.0.0.2".into()),
        ],
        ..Default::default()
    };
    let p = Pikachu::spawn_with(&setup, &opts);
    db.exec("INSERT INTO shop.t VALUES (1)");
    wait_until("the deliveries", WAIT, || {
        private_ca.events().len() == 1 && mutual.events().len() == 1 && direct.events().len() == 1
    });
    wait_until("the dead letters", WAIT, || setup.dead_letters().len() == 2);
    let mut failed: Vec<String> = setup
        .dead_letters()
        .iter()
        .map(|l| format!("{} {}", l["task_id"].as_str().unwrap(), l["error"]))
        .collect();
    failed.sort();
    assert!(failed[0].starts_with("no-cert "), "{failed:?}");
    assert!(
        failed[1].starts_with("wrong-ca ") && failed[1].contains("UnknownIssuer"),
        "{failed:?}"
    );
    assert_eq!(
        *mutual.client_names.lock().unwrap(),
        ["pikachu-client"],
        "the client certificate was presented"
    );
    let tunnels = proxy.tunnels.lock().unwrap().clone();
    assert!(
        tunnels.contains(&format!("127.0.0.1:{}", private_ca.port)),
        "{tunnels:?}"
    );
    assert!(
        !tunnels.iter().any(|t| t.starts_with("127.0.0.2")),
        "NO_PROXY bypassed: {tunnels:?}"
    );
    // check shakes hands with each HTTPS receiver with the task's TLS settings.
    let (code, out) = check(&setup);
    assert_eq!(
        code, 1,
        "a receiver that no delivery can reach fails the check: {out}"
    );
    assert!(
        out.contains(&format!(
            "OK   task mutual callback URL: {} (TLS handshake OK; its certificate is valid until",
            mutual.url("/m")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL task wrong-ca callback URL: {}: TLS handshake failed:",
            private_ca.url("/w")
        )) && out.contains("UnknownIssuer")
            && out.contains("set the task's ca_file (or dispatcher.ca_file)"),
        "{out}"
    );
    let log = p.log();
    assert!(
        log.contains(&format!(
            "task via-proxy: requests go through the proxy {}",
            proxy.url()
        )),
        "{log}"
    );
    assert!(!log.contains("task no-proxy: requests go through"), "{log}");
}

fn get(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.body_mut().read_to_string().expect("body")
}

#[test]
fn authentication_plugins_work_or_are_named() {
    let db = MariaDb::start();
    db.exec(&format!(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); \
         INSTALL SONAME 'auth_ed25519'; INSTALL SONAME 'auth_pam'; \
         CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{DB_PASSWORD}'); \
         CREATE USER 'native'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{DB_PASSWORD}'); \
         CREATE USER 'pam'@'%' IDENTIFIED VIA pam; \
         GRANT {GRANTS} ON *.* TO 'ed'@'%', 'native'@'%', 'pam'@'%'"
    ));
    let rx = Receiver::always(200);
    let setup = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), "");
    for user in ["ed", "native"] {
        set_database(
            &setup,
            &format!("  user: {user}\n  password: {DB_PASSWORD}\n"),
        );
        let (code, out) = check(&setup);
        assert_eq!(code, 0, "{user}: {out}");
        assert!(
            out.contains(&format!(
                "OK   connection and login: 127.0.0.1:{} as `{user}`",
                db.port()
            )),
            "{out}"
        );
    }
    // PAM asks for the `dialog` plugin, which the driver cannot speak: named, with the fix.
    set_database(&setup, &format!("  user: pam\n  password: {DB_PASSWORD}\n"));
    let (code, out) = check(&setup);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("dialog"), "{out}");
    assert!(out.contains("give pikachu's account one of them"), "{out}");
    assert!(!out.contains(DB_PASSWORD), "{out}");
}
