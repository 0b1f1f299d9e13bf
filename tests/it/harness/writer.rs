//! Shared parts of the reliability tests: a writer that keeps committing small
//! transactions while the test does damage, the database's own record of what was
//! committed, and a checker that counts lost, duplicated and reordered deliveries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mysql::prelude::Queryable;
use serde_json::Value;

use super::{poll_until, task, wait_until, MariaDb, Receiver, Setup, CAUGHT_UP};

/// Keys 1..=HOT are updated by every writer transaction in turn; inserted rows start
/// at `FIRST_ROW`.
pub const HOT: u64 = 5;
pub const FIRST_ROW: u64 = 1000;

/// The `shop.t` table with the hot keys already in it (before pikachu starts, so their
/// inserts are not part of what is checked).
pub fn create_table(db: &MariaDb) {
    let hot: Vec<String> = (1..=HOT).map(|k| format!("({k}, 0)")).collect();
    db.exec(&format!(
        "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, seq INT NOT NULL); \
         INSERT INTO shop.t VALUES {}",
        hot.join(", ")
    ));
}

pub fn one_task(rx: &Receiver) -> String {
    task("t", "t", &rx.url("/hook"))
}

fn connect(port: u16) -> Option<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(2)))
        .read_timeout(Some(Duration::from_secs(10)))
        .write_timeout(Some(Duration::from_secs(10)));
    mysql::Conn::new(opts).ok()
}

/// A thread committing transaction after transaction: number i inserts row
/// `FIRST_ROW + i` with `seq = i` and sets `seq = i` on hot key `i % HOT + 1`. It
/// survives a database that goes away (reconnects and goes on with the next number);
/// whether a transaction whose COMMIT failed was committed is read from the table at
/// the end, not guessed.
pub struct Writer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: &MariaDb, pause: Duration) -> Writer {
        let port = db.port();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (s, d) = (stop.clone(), done.clone());
        let handle = std::thread::spawn(move || {
            let mut conn: Option<mysql::Conn> = None;
            let mut i = 1u64;
            while !s.load(Ordering::SeqCst) {
                let Some(c) = conn.as_mut() else {
                    conn = connect(port);
                    if conn.is_none() {
                        // The database is down on purpose: try again a little later.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    continue;
                };
                let result = (|| -> mysql::Result<()> {
                    let mut tx = c.start_transaction(mysql::TxOpts::default())?;
                    tx.query_drop(format!(
                        "INSERT INTO shop.t VALUES ({}, {i})",
                        FIRST_ROW + i
                    ))?;
                    tx.query_drop(format!(
                        "UPDATE shop.t SET seq = {i} WHERE id = {}",
                        i % HOT + 1
                    ))?;
                    tx.commit()
                })();
                i += 1;
                if result.is_err() {
                    conn = None;
                    continue;
                }
                d.fetch_add(1, Ordering::SeqCst);
                if !pause.is_zero() {
                    // Paces the writer; what is checked is read from the database at
                    // the end, so the pace never decides an outcome.
                    std::thread::sleep(pause);
                }
            }
        });
        Writer {
            stop,
            done,
            handle: Some(handle),
        }
    }

    /// Transactions committed (as far as the writer knows) so far.
    pub fn committed(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` more transactions were committed.
    pub fn wait_for_more(&self, n: u64, timeout: Duration) {
        let target = self.committed() + n;
        wait_until(
            &format!("the writer to commit {n} more transactions"),
            timeout,
            || self.committed() >= target,
        );
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The writer transactions the database holds: their numbers, ascending.
pub fn committed_transactions(db: &MariaDb) -> Vec<u64> {
    db.query_strings(&format!(
        "SELECT id FROM shop.t WHERE id >= {FIRST_ROW} ORDER BY id"
    ))
    .into_iter()
    .map(|r| r[0].as_deref().expect("id").parse::<u64>().expect("number") - FIRST_ROW)
    .collect()
}

/// What a delivered envelope says happened, in the writer's terms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    Insert(u64),
    /// (hot key, new seq)
    Update(u64, u64),
    Other(String),
}

fn change_of(e: &Value) -> Change {
    let num = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    match e["event"].as_str() {
        Some("insert") if num(&e["data"]["id"]) >= FIRST_ROW => {
            Change::Insert(num(&e["data"]["id"]) - FIRST_ROW)
        }
        Some("update") if num(&e["new_data"]["id"]) <= HOT => {
            Change::Update(num(&e["new_data"]["id"]), num(&e["new_data"]["seq"]))
        }
        _ => Change::Other(e.to_string()),
    }
}

/// Envelopes the receiver accepted (2xx), in the order the requests arrived.
pub fn accepted_in_arrival_order(rx: &Receiver) -> Vec<Value> {
    let mut reqs = rx.requests();
    reqs.sort_by_key(|r| r.n);
    let mut out = Vec::new();
    for r in reqs.iter().filter(|r| (200..300).contains(&r.status)) {
        match &r.body {
            Value::Array(items) => out.extend(items.iter().cloned()),
            Value::Null => {}
            v => out.push(v.clone()),
        }
    }
    out
}

/// Lost, duplicated and reordered deliveries against the committed transactions.
#[derive(Debug, Default)]
pub struct Tally {
    pub expected: usize,
    pub received: usize,
    pub lost: Vec<Change>,
    /// Envelopes whose `id` had been accepted before.
    pub duplicates: usize,
    /// Changes that nothing committed explains, or one change under two ids, or one id
    /// for two changes.
    pub wrong: Vec<String>,
    /// Hot-key updates that arrived (first time) after a later update of that key.
    pub reordered: Vec<String>,
}

impl Tally {
    pub fn of(events: &[Value], committed: &[u64]) -> Tally {
        let mut expected = BTreeSet::new();
        for &i in committed {
            expected.insert(Change::Insert(i));
            expected.insert(Change::Update(i % HOT + 1, i));
        }
        let mut t = Tally {
            expected: expected.len(),
            received: events.len(),
            ..Tally::default()
        };
        let mut by_id: HashMap<String, Change> = HashMap::new();
        let mut id_of: HashMap<Change, String> = HashMap::new();
        let mut last_seq: BTreeMap<u64, u64> = BTreeMap::new();
        for e in events {
            let id = e["id"].as_str().unwrap_or("").to_owned();
            let change = change_of(e);
            if let Some(prev) = by_id.get(&id) {
                t.duplicates += 1;
                if *prev != change {
                    t.wrong
                        .push(format!("id {id} carried {prev:?} and {change:?}"));
                }
                continue;
            }
            by_id.insert(id.clone(), change.clone());
            if let Some(other) = id_of.insert(change.clone(), id.clone()) {
                t.wrong
                    .push(format!("{change:?} arrived as {other} and as {id}"));
            }
            if !expected.contains(&change) {
                t.wrong.push(format!("not committed: {change:?}"));
            }
            if let Change::Update(k, seq) = change {
                if let Some(&before) = last_seq.get(&k) {
                    if seq <= before {
                        t.reordered
                            .push(format!("key {k}: seq {seq} arrived after {before}"));
                    }
                }
                last_seq.insert(k, seq.max(last_seq.get(&k).copied().unwrap_or(0)));
            }
        }
        t.lost = expected
            .into_iter()
            .filter(|c| !id_of.contains_key(c))
            .collect();
        t
    }

    /// Nothing lost, nothing wrong, nothing out of order.
    pub fn assert_complete_and_ordered(&self, log: &str) {
        assert!(
            self.expected > 0,
            "the writer committed nothing: the test proves nothing"
        );
        assert!(
            self.lost.is_empty() && self.wrong.is_empty() && self.reordered.is_empty(),
            "{} of {} changes lost: {:?}\nwrong: {:?}\nreordered: {:?}\n(received {}, duplicates {})\npikachu log:\n{log}",
            self.lost.len(),
            self.expected,
            self.lost.iter().take(20).collect::<Vec<_>>(),
            self.wrong.iter().take(20).collect::<Vec<_>>(),
            self.reordered.iter().take(20).collect::<Vec<_>>(),
            self.received,
            self.duplicates
        );
    }
}

/// After the writer stopped: waits until pikachu's checkpoint has passed the last
/// committed transaction (so every change was delivered or dead-lettered, and
/// repeats of them are over too), then tallies what the receiver accepted. A checkpoint
/// that never gets there is counted as `wrong`, next to what was lost.
pub fn settle(rx: &Receiver, db: &MariaDb, setup: &Setup) -> Tally {
    let committed = committed_transactions(db);
    let end = db.last_commit();
    let caught_up = setup.checkpoint_reaches(&end, CAUGHT_UP);
    let mut t = Tally::of(&accepted_in_arrival_order(rx), &committed);
    if !caught_up {
        t.wrong.push(format!(
            "the checkpoint never reached {end:?} within {CAUGHT_UP:?}: it is at {:?}",
            setup.checkpoint_position()
        ));
    }
    t
}

/// `PURGE BINARY LOGS TO current` until `gone` is no longer on the server: MariaDB keeps
/// a file until its binlog checkpoint has moved on, which happens in the background
/// shortly after a rotation or a restart.
pub fn purge_until_gone(db: &MariaDb, current: &str, gone: &str) {
    let purged = poll_until(Duration::from_secs(30), || {
        db.exec(&format!("PURGE BINARY LOGS TO '{current}'"));
        !db.query_strings("SHOW BINARY LOGS")
            .iter()
            .any(|r| r[0].as_deref() == Some(gone))
    });
    assert!(purged, "{gone} could not be purged");
}
