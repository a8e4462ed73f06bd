//! Store figures: enqueue, drains, selective drain, delivery with a full
//! ledger, ledger lookup, lock round trips (Rust and the bash library), and
//! multi-process contention throughput with loss/duplicate counts.
//!
//! Everything runs under a private temp root (`Layout::at`), never `~/.oxtail`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oxtail::delivery;
use oxtail::store::ledger;
use oxtail::store::lock::{self, LockKind, LockOptions};
use oxtail::store::mailbox;
use oxtail::store::message::{Message, NewMessage};
use oxtail::store::paths::Layout;

use super::{Ctx, Row};

pub(crate) const LOCK_LIB: &str = include_str!("../../../assets/oxtail-lock.sh");
const SENDER: &str = "22222222-2222-2222-2222-222222222222";
const RECEIVER: &str = "11111111-1111-1111-1111-111111111111";

/// A temp root removed on drop (tempfile is a dev-dependency only).
pub(crate) struct TempRoot(pub(crate) PathBuf);

impl TempRoot {
    pub(crate) fn new(tag: &str) -> TempRoot {
        let mut b = [0u8; 6];
        rand::fill(&mut b[..]);
        let p = std::env::temp_dir().join(format!("oxtail-bench-{tag}-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempRoot(p)
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout::at(self.0.join(".oxtail"))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn body(n: usize) -> String {
    "x".repeat(n)
}

fn none() -> NewMessage<'static> {
    NewMessage::default()
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    if ctx.other_cmd.is_some() {
        eprintln!(
            "store: --other-cmd is used by the command-driving scenarios; store figures are in-process"
        );
    }
    let root = TempRoot::new("store");
    let l = root.layout();
    let n = ctx.samples;
    let mut rows = Vec::new();

    let mut s = Vec::new();
    for _ in 0..n {
        s.push(timed(|| {
            mailbox::enqueue(&l, 1, &body(200), Some(SENDER), &none()).unwrap();
        }));
    }
    mailbox::drain(&l, 1).unwrap();
    rows.push(Row::micros("store enqueue (200 B body)", &s));

    let mut s = Vec::new();
    for _ in 0..n {
        s.push(timed(|| {
            delivery::deliver(&l, Some(RECEIVER), 2, &body(200), Some(SENDER), &none()).unwrap();
        }));
        mailbox::drain(&l, 2).unwrap();
    }
    rows.push(Row::micros("store deliver (ledger empty→200 + append)", &s));

    // Fill the ledger to its default cap: every record rewrites it whole.
    let filler: Vec<Message> = (0..1000)
        .map(|_| Message::build(&body(200), Some(SENDER), &none()))
        .collect();
    for m in &filler {
        ledger::record(&l, RECEIVER, m).unwrap();
    }
    let mut s = Vec::new();
    for _ in 0..n.min(100) {
        s.push(timed(|| {
            delivery::deliver(&l, Some(RECEIVER), 2, &body(200), Some(SENDER), &none()).unwrap();
        }));
        mailbox::drain(&l, 2).unwrap();
    }
    rows.push(Row::micros("store deliver (ledger at 1000 cap)", &s));

    let oldest = filler
        .last()
        .map(|m| m.id().unwrap_or_default().to_string());
    let target = ledger::lookup(&l, RECEIVER, oldest.as_deref().unwrap_or(""))
        .ok()
        .flatten()
        .map(|m| m.id().unwrap_or_default().to_string())
        .unwrap_or_default();
    let mut s = Vec::new();
    for _ in 0..n.min(100) {
        s.push(timed(|| {
            ledger::lookup(&l, RECEIVER, &target).unwrap();
        }));
    }
    rows.push(Row::micros("store ledger lookup (1000 entries)", &s));

    let mut s = Vec::new();
    for _ in 0..n {
        mailbox::enqueue(&l, 3, &body(200), Some(SENDER), &none()).unwrap();
        s.push(timed(|| {
            assert_eq!(mailbox::drain(&l, 3).unwrap().len(), 1);
        }));
    }
    rows.push(Row::micros("store drain (1 message)", &s));

    let batch: Vec<Message> = (0..100)
        .map(|_| Message::build(&body(200), Some(SENDER), &none()))
        .collect();
    let mut s = Vec::new();
    for _ in 0..n.min(100) {
        mailbox::requeue_many(&l, 4, &batch).unwrap();
        s.push(timed(|| {
            assert_eq!(mailbox::drain(&l, 4).unwrap().len(), 100);
        }));
    }
    rows.push(Row::micros("store drain (100 messages)", &s));

    let mut s = Vec::new();
    for _ in 0..n.min(100) {
        mailbox::requeue_many(&l, 5, &batch[..99]).unwrap();
        mailbox::enqueue(&l, 5, "reply", Some(RECEIVER), &none()).unwrap();
        s.push(timed(|| {
            let m = mailbox::drain_first_matching(&l, 5, mailbox::from_session(RECEIVER)).unwrap();
            assert!(m.is_some());
        }));
        mailbox::drain(&l, 5).unwrap();
    }
    rows.push(Row::micros("store selective drain (last of 100)", &s));

    let mut s = Vec::new();
    for _ in 0..n {
        s.push(timed(|| {
            mailbox::has_messages(&l, 6).unwrap();
        }));
    }
    rows.push(Row::micros("store emptiness probe", &s));

    let lp = root.0.join("bench.lock");
    let mut s = Vec::new();
    for _ in 0..n {
        s.push(timed(|| {
            drop(lock::acquire(&lp, &LockKind::Other, &LockOptions::default()).unwrap());
        }));
    }
    rows.push(Row::micros("lock acquire+release (Rust)", &s));

    if let Some(row) = bash_lock_row(&root.0) {
        rows.push(row);
    }
    rows.extend(contention_rows(ctx, &root));
    rows
}

/// Per-op cost of the bash library's acquire+release, net of bash startup.
fn bash_lock_row(dir: &Path) -> Option<Row> {
    let lib = dir.join("oxtail-lock.sh");
    std::fs::write(&lib, LOCK_LIB).ok()?;
    let lock = dir.join("bash.lock");
    const OPS: usize = 200;
    let run = |ops: usize| -> Option<Duration> {
        let script = format!(
            ". '{}'; i=0; while [ $i -lt {ops} ]; do oxtail_lock_acquire '{}' || exit 1; oxtail_lock_release '{}' \"$OXTAIL_LOCK_TOKEN\"; i=$((i+1)); done",
            lib.display(),
            lock.display(),
            lock.display()
        );
        let t = Instant::now();
        let ok = Command::new("bash")
            .arg("-c")
            .arg(script)
            .status()
            .ok()?
            .success();
        ok.then(|| t.elapsed())
    };
    let mut s = Vec::new();
    for _ in 0..5 {
        let base = run(0)?;
        let full = run(OPS)?;
        s.push(full.saturating_sub(base) / OPS as u32);
    }
    Some(Row::micros("lock acquire+release (bash lib)", &s))
}

/// Helper process: `__child store writer <root> <pid> <writer> <count>`.
pub fn child(args: &[String]) -> i32 {
    let [role, root, pid, writer, count] = args else {
        return 2;
    };
    if role != "writer" {
        return 2;
    }
    let l = Layout::at(root);
    let (Ok(pid), Ok(count)) = (pid.parse::<u32>(), count.parse::<usize>()) else {
        return 2;
    };
    let from = format!("writer-{writer}");
    for seq in 0..count {
        loop {
            match mailbox::enqueue(&l, pid, &format!("{writer}:{seq}"), Some(&from), &none()) {
                Ok(_) => break,
                Err(e) if e.is_lock_timeout() => continue,
                Err(_) => return 1,
            }
        }
    }
    0
}

/// 4 writer processes × 500 messages into one mailbox while this process
/// drains: throughput, lost, duplicated, out-of-order.
fn contention_rows(ctx: &Ctx, root: &TempRoot) -> Vec<Row> {
    const WRITERS: usize = 4;
    const PER: usize = 500;
    let l = root.layout();
    let (mut rate, mut lost, mut dup, mut disorder) = (vec![], vec![], vec![], vec![]);
    for round in 0..3u32 {
        let pid = 1000 + round;
        let t = Instant::now();
        let mut children: Vec<_> = (0..WRITERS)
            .filter_map(|w| {
                Command::new(&ctx.exe)
                    .args(["__child", "store", "writer"])
                    .arg(l.root())
                    .args([pid.to_string(), w.to_string(), PER.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect();
        let mut got = Vec::new();
        loop {
            let alive = children
                .iter_mut()
                .map(|c| matches!(c.try_wait(), Ok(None)))
                .filter(|a| *a)
                .count();
            if let Ok(m) = mailbox::drain(&l, pid) {
                got.extend(m);
            }
            if alive == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        got.extend(mailbox::drain(&l, pid).unwrap_or_default());
        let secs = t.elapsed().as_secs_f64();
        let mut ids = HashSet::new();
        let mut next: HashMap<String, usize> = HashMap::new();
        let (mut d, mut o) = (0usize, 0usize);
        for m in &got {
            if !ids.insert(m.id().unwrap_or_default().to_string()) {
                d += 1;
            }
            let b = m.body().unwrap_or_default();
            if let Some((w, seq)) = b.split_once(':') {
                let want = next.entry(w.to_string()).or_insert(0);
                if seq.parse::<usize>().ok() != Some(*want) {
                    o += 1;
                }
                *want += 1;
            }
        }
        rate.push(got.len() as f64 / secs);
        lost.push((WRITERS * PER).saturating_sub(ids.len()) as f64);
        dup.push(d as f64);
        disorder.push(o as f64);
    }
    vec![
        Row::new("contention 4 procs × 500 + reader", "msgs/s", rate),
        Row::new("contention lost", "msgs", lost),
        Row::new("contention duplicated", "msgs", dup),
        Row::new("contention out of order", "msgs", disorder),
    ]
}
