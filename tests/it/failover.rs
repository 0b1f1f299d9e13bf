//! Issue 11, item 4: the source fails over by GTID. Two MariaDB servers in replication
//! (the replica with log_slave_updates); pikachu reads the primary, stops mid-stream, the
//! replica is promoted, and pikachu goes on from the promoted one by the GTID state in its
//! checkpoint: no change lost, none delivered twice.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{poll_until, task, wait_until, MariaDb, Pikachu, Receiver, Setup};

const WAIT: Duration = Duration::from_secs(30);

fn rows(db: &MariaDb) -> usize {
    db.query_strings("SELECT COUNT(*) FROM shop.t")[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

#[test]
fn pikachu_follows_a_promoted_replica_by_gtid() {
    let primary = MariaDb::start();
    let replica = MariaDb::start_with(&["--server-id=2", "--log-slave-updates"]);
    replica.exec(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', \
         MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos; START SLAVE",
        primary.port()
    ));
    primary.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))");
    let rx = Receiver::always(200);
    let setup = Setup::new(&primary, "shop", &task("t", "t", &rx.url("/t")), "");
    let mut p = Pikachu::spawn(&setup, &[]);
    primary.exec("INSERT INTO shop.t VALUES (1, 'primary'), (2, 'primary')");
    primary.exec("UPDATE shop.t SET v = 'primary again' WHERE id = 1");
    setup.settled_events(&rx, &primary, 3);
    p.sigterm();
    p.wait_exit(WAIT);
    let saved = setup.checkpoint().expect("a checkpoint");
    assert_eq!(saved["server_id"], 1, "{saved}");
    let state = saved["gtid"].as_str().expect("a GTID state").to_owned();
    assert!(state.starts_with("0-1-"), "{state}");

    // While pikachu is down: more changes on the primary, the replica catches up, and is
    // promoted; then changes on the promoted server.
    primary
        .exec("INSERT INTO shop.t VALUES (3, 'primary, unread'); DELETE FROM shop.t WHERE id = 2");
    wait_until("the replica to catch up", WAIT, || {
        rows(&replica) == 2 && {
            replica
                .query_strings("SELECT v FROM shop.t WHERE id = 3")
                .len()
                == 1
        }
    });
    replica.exec("STOP SLAVE; RESET SLAVE ALL");
    replica.exec("INSERT INTO shop.t VALUES (4, 'promoted')");

    // The old primary is gone; pikachu tries database.hosts in order and takes the
    // promoted server (a moved VIP or DNS name would do the same), same data_dir.
    primary.stop();
    let path = setup.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let hosts = format!(
        "  hosts: [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\n",
        primary.port(),
        replica.port()
    );
    let text = text.replace(
        &format!("  host: 127.0.0.1\n  port: {}\n", primary.port()),
        &hosts,
    );
    assert!(text.contains("hosts:"), "{text}");
    std::fs::write(&path, text).unwrap();
    let p = Pikachu::spawn(&setup, &[]);
    let all = setup.settled_events(&rx, &replica, 3 + 3);
    let log = p.log();
    assert!(
        log.contains("is a position in the binlog of server_id 1, and this server is server_id 2")
            && log.contains(&format!("going on after GTID state {state}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("reading the binlog after GTID state {state}")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "at 127.0.0.1:{} as `root` (server_id 2",
            replica.port()
        )),
        "{log}"
    );
    let after: Vec<(String, i64)> = all[3..]
        .iter()
        .map(|e: &Value| {
            let row = crate::harness::row_of(e);
            (
                e["event"].as_str().unwrap().to_owned(),
                row["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = after.clone();
    sorted.sort_by_key(|(_, id)| *id);
    assert_eq!(
        sorted,
        [
            ("delete".to_owned(), 2),
            ("insert".to_owned(), 3),
            ("insert".to_owned(), 4),
        ],
        "the changes after the checkpoint, once each: {after:?}"
    );
    // The checkpoint is now a position of the promoted server, with the GTID state.
    assert!(poll_until(WAIT, || {
        setup.checkpoint().is_some_and(|c| {
            c["server_id"] == 2 && c["gtid"].as_str().is_some_and(|g| g.contains("0-2-"))
        })
    }));
}
