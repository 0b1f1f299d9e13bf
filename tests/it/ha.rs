//! Issue 11: two instances of one `ha.group` against one MariaDB, the checkpoint shared in
//! a table. One delivers; the other stands by and takes over when the active one is
//! killed, frozen or stopped, with no change lost.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::{task, wait_until, MariaDb, Pikachu, Receiver, Setup};

const WAIT: Duration = Duration::from_secs(30);

/// Two setups of one group, with the same server_id (so that the server itself drops
/// the older binlog connection of the group) and the checkpoint in a table.
/// `rx_b`: the receiver of the second instance; the same as `rx_a` except where a
/// frozen first instance would hold the test receiver's threads with its open
/// connections (a real receiver serves many connections at once).
fn pair(db: &MariaDb, rx_a: &Receiver, rx_b: &Receiver, group: &str) -> (Setup, Setup) {
    let extra = format!(
        "ha:\n  group: {group}\n  lease_timeout: 3s\ncheckpoint:\n  store: mysql\n  table: pikachu.checkpoints\n"
    );
    let a = Setup::new(db, "shop", &task("t", "t", &rx_a.url("/t")), &extra);
    let b = Setup::new(db, "shop", &task("t", "t", &rx_b.url("/t")), &extra);
    let text = std::fs::read_to_string(a.config_path()).unwrap();
    let server_id = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server_id: "))
        .unwrap()
        .to_owned();
    let b_text = std::fs::read_to_string(b.config_path()).unwrap();
    let b_text: String = b_text
        .lines()
        .map(|l| {
            if l.trim().starts_with("server_id: ") {
                format!("  server_id: {server_id}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(b.config_path(), b_text).unwrap();
    (a, b)
}

fn role(p: &Pikachu) -> String {
    p.health()
        .and_then(|(_, v)| v["role"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wait_role(p: &Pikachu, want: &str) {
    wait_until(&format!("role {want}"), WAIT, || role(p) == want);
}

/// How many times each row id arrived (inserts only), at any of `rxs`.
fn arrivals_at(rxs: &[&Receiver]) -> HashMap<i64, usize> {
    let mut n = HashMap::new();
    for e in rxs.iter().flat_map(|rx| rx.events()) {
        if e["event"] == "insert" {
            *n.entry(e["data"]["id"].as_i64().unwrap()).or_default() += 1;
        }
    }
    n
}

fn insert(db: &MariaDb, ids: std::ops::RangeInclusive<i64>) {
    for id in ids {
        db.exec(&format!("INSERT INTO shop.t VALUES ({id})"));
    }
}

fn arrivals(rx: &Receiver) -> HashMap<i64, usize> {
    arrivals_at(&[rx])
}

fn all_arrived(rx: &Receiver, ids: std::ops::RangeInclusive<i64>) -> bool {
    all_arrived_at(&[rx], ids)
}

fn all_arrived_at(rxs: &[&Receiver], ids: std::ops::RangeInclusive<i64>) -> bool {
    let n = arrivals_at(rxs);
    ids.clone().all(|id| n.contains_key(&id))
}

/// The checkpoint row of the group, once it reached the server's last commit.
fn wait_checkpoint_caught_up(db: &MariaDb, group: &str) {
    let (file, pos) = db.last_commit();
    wait_until("the shared checkpoint", WAIT, || {
        let rows = db.query_strings(&format!(
            "SELECT file, pos FROM pikachu.checkpoints WHERE name = '{group}'"
        ));
        rows.first().is_some_and(|r| {
            let f = r[0].clone().unwrap_or_default();
            let p: u64 = r[1].as_deref().unwrap_or("0").parse().unwrap_or(0);
            (f.clone(), p) >= (file.clone(), pos)
        })
    });
}

#[test]
fn one_delivers_and_the_standby_takes_over_when_it_is_killed() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let (sa, sb) = pair(&db, &rx, &rx, "kill");
    let mut a = Pikachu::spawn(&sa, &[]);
    wait_role(&a, "active");
    let b = Pikachu::spawn(&sb, &[]);
    wait_role(&b, "standby");
    b.wait_for_log("is held by connection", WAIT);
    let config = sb.config_path();
    let (code, out, err) =
        crate::harness::run_binary(&["check", "-config", config.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("OK   ha lease: pikachu:kill is held by connection"),
        "{out}"
    );
    assert!(
        out.contains("OK   checkpoint table: pikachu.checkpoints exists and is readable"),
        "{out}"
    );

    insert(&db, 1..=20);
    wait_until("rows 1-20", WAIT, || all_arrived(&rx, 1..=20));
    wait_checkpoint_caught_up(&db, "kill");
    // Two instances, one delivery each.
    assert!(
        arrivals(&rx).values().all(|n| *n == 1),
        "{:?}",
        arrivals(&rx)
    );

    a.kill9();
    insert(&db, 21..=40);
    wait_role(&b, "active");
    wait_until("rows 21-40 from the standby", WAIT, || {
        all_arrived(&rx, 1..=40)
    });
    let log = b.log();
    assert!(
        log.contains("took over as the active instance of group kill"),
        "{log}"
    );
    // It went on from the shared checkpoint: nothing before it again.
    let n = arrivals(&rx);
    assert!((1..=20).all(|id| n[&id] == 1), "{n:?}");
}

#[test]
fn a_frozen_active_is_replaced_and_stands_by_when_it_wakes() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let rx_b = Receiver::always(200);
    let (sa, sb) = pair(&db, &rx, &rx_b, "freeze");
    let a = Pikachu::spawn(&sa, &[]);
    wait_role(&a, "active");
    let b = Pikachu::spawn(&sb, &[]);
    wait_role(&b, "standby");
    insert(&db, 1..=10);
    wait_until("rows 1-10", WAIT, || all_arrived(&rx, 1..=10));

    a.signal("STOP");
    // The server drops the frozen holder's silent session after the lease timeout.
    wait_role(&b, "active");
    insert(&db, 11..=20);
    assert!(
        crate::harness::poll_until(WAIT, || all_arrived_at(&[&rx, &rx_b], 1..=20)),
        "rows 11-20 from the new active; its log:\n{}",
        b.log()
    );
    a.signal("CONT");
    wait_until("the woken instance to stand by", WAIT, || {
        a.log().contains("lost the lease pikachu:freeze") && role(&a) == "standby"
    });
    insert(&db, 21..=30);
    wait_until("rows 21-30", WAIT, || all_arrived_at(&[&rx, &rx_b], 1..=30));
    assert_eq!(role(&b), "active");
    // The woken one delivered nothing after the rows it had before it froze.
    let late: Vec<i64> = arrivals(&rx)
        .keys()
        .copied()
        .filter(|id| *id > 10)
        .collect();
    assert!(
        late.is_empty(),
        "delivered by the fenced instance: {late:?}"
    );
}

#[test]
fn a_stopped_active_hands_over_cleanly() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let (sa, sb) = pair(&db, &rx, &rx, "term");
    let mut a = Pikachu::spawn(&sa, &[]);
    wait_role(&a, "active");
    let b = Pikachu::spawn(&sb, &[]);
    wait_role(&b, "standby");
    insert(&db, 1..=10);
    wait_until("rows 1-10", WAIT, || all_arrived(&rx, 1..=10));
    a.sigterm();
    let status = a.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", a.log());
    wait_role(&b, "active");
    insert(&db, 11..=20);
    wait_until("rows 11-20", WAIT, || all_arrived(&rx, 1..=20));
    // A clean stop saved the checkpoint and released the lease: nothing twice.
    let n = arrivals(&rx);
    assert!(n.values().all(|c| *c == 1), "{n:?}");
}

#[test]
fn two_instances_on_one_host_can_share_a_data_dir_and_its_checkpoint_file() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let rx = Receiver::always(200);
    let extra = "ha:\n  group: local\n  lease_timeout: 3s\n";
    let sa = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), extra);
    let sb = Setup::new(&db, "shop", &task("t", "t", &rx.url("/t")), extra);
    let shared = sa.data_dir().display().to_string();
    let text = std::fs::read_to_string(sb.config_path()).unwrap();
    let text = text.replace(&sb.data_dir().display().to_string(), &shared);
    std::fs::write(sb.config_path(), text).unwrap();
    let mut a = Pikachu::spawn(&sa, &[]);
    wait_role(&a, "active");
    let b = Pikachu::spawn(&sb, &[]);
    wait_role(&b, "standby");
    insert(&db, 1..=10);
    wait_until("rows 1-10", WAIT, || all_arrived(&rx, 1..=10));
    a.kill9();
    insert(&db, 11..=20);
    wait_role(&b, "active");
    wait_until("rows 11-20 from the standby", WAIT, || {
        all_arrived(&rx, 1..=20)
    });
    assert!(
        b.log().contains("resuming from the checkpoint at"),
        "{}",
        b.log()
    );
}

/// The backfill progress travels with the shared checkpoint: the standby that takes over
/// goes on after the active's last delivered chunk, not from the first row.
#[test]
fn the_standby_goes_on_with_the_actives_backfill() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)");
    let values: Vec<String> = (1..=2000).map(|i| format!("({i})")).collect();
    db.exec(&format!("INSERT INTO shop.t VALUES {}", values.join(",")));
    let rx = Receiver::always(200);
    let (sa, sb) = pair(&db, &rx, &rx, "fill");
    for setup in [&sa, &sb] {
        let mut text = std::fs::read_to_string(setup.config_path()).unwrap();
        text.push_str(
            "    backfill: initial\n    backfill_chunk_size: 100\n    backfill_rows_per_second: 400\n",
        );
        std::fs::write(setup.config_path(), text).unwrap();
    }
    let mut a = Pikachu::spawn(&sa, &[]);
    wait_role(&a, "active");
    let b = Pikachu::spawn(&sb, &[]);
    wait_role(&b, "standby");
    // Writes move the checkpoint past the handed-over chunks.
    let mut id = 10_000;
    let saved_rows = |db: &MariaDb| -> u64 {
        db.query_strings("SELECT backfills FROM pikachu.checkpoints WHERE name = 'fill'")
            .first()
            .and_then(|r| r[0].clone())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["t"]["rows"].as_u64())
            .unwrap_or(0)
    };
    wait_until("backfill progress in the shared checkpoint", WAIT, || {
        id += 1;
        insert(&db, id..=id);
        saved_rows(&db) >= 300
    });
    a.kill9();
    let confirmed = saved_rows(&db);
    wait_role(&b, "active");
    b.wait_for_log(
        "resuming the backfill of `shop`.`t` after the last delivered chunk",
        WAIT,
    );
    wait_until("every row read", WAIT, || {
        let read: std::collections::HashSet<i64> = rx
            .events()
            .iter()
            .filter(|e| e["event"] == "read")
            .filter_map(|e| e["data"]["id"].as_i64())
            .collect();
        (1..=2000).all(|i| read.contains(&i))
    });
    // Rows the shared checkpoint had confirmed were not read again by the standby.
    let first_read = rx
        .events()
        .iter()
        .filter(|e| e["event"] == "read" && e["data"]["id"] == 1)
        .count();
    assert_eq!(first_read, 1, "confirmed {confirmed} rows before the kill");
}
