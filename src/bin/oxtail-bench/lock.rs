//! Lock reclaim figures: a holder is SIGKILLed inside each critical section —
//! the receiver's mailbox lock (a sender process, and a bash hook through the
//! lock library), the receiver's ledger lock, and the steal marker of a
//! clearer killed while clearing a stale mailbox lock — and the figure is the
//! time from the SIGKILL until the next send succeeds. For the ledger lock
//! "succeeds" means its reply handle resolves too (delivery beats the ledger:
//! without the ledger lock a send is still delivered, after a ~500 ms wait,
//! but cannot be replied to by id).
//!
//! The clock starts at `kill(2)` and includes the kernel tearing the holder
//! down and this process reaping it (a zombie's pid still exists, so the
//! lock counts as held until the parent reaps it, as Claude Code and Codex do
//! at once). A sample that has not succeeded after 40 s is recorded as 40 s.
//! Everything runs under a private temp root, never `~/.oxtail`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxtail::delivery;
use oxtail::store::ledger;
use oxtail::store::lock::{self, LockKind, LockOptions};
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;

use super::store::{LOCK_LIB, TempRoot};
use super::{Ctx, Row};

const RECEIVER: &str = "11111111-1111-1111-1111-111111111111";
const SENDER: &str = "22222222-2222-2222-2222-222222222222";
const PID: u32 = 4242;
const GIVE_UP: Duration = Duration::from_secs(40);

/// What the killed process held.
#[derive(Clone, Copy)]
enum Section {
    /// The receiver's mailbox lock, held by a Rust process.
    Mailbox,
    /// The receiver's mailbox lock, held by bash through the lock library.
    MailboxBash,
    /// The receiver's ledger lock.
    Ledger,
    /// The mailbox lock's steal marker (the lock itself is stale), taken by
    /// a Rust process.
    Steal,
    /// The same, taken by bash through the lock library.
    StealBash,
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let root = TempRoot::new("lock");
    let l = root.layout();
    let lib = root.0.join("oxtail-lock.sh");
    if std::fs::write(&lib, LOCK_LIB).is_err() {
        return Vec::new();
    }
    // Creates the mailbox and ledger directories.
    if send(&l).is_err() {
        return Vec::new();
    }
    let n = ctx.samples.min(30);
    [
        (Section::Mailbox, "mailbox lock, Rust sender"),
        (Section::MailboxBash, "mailbox lock, bash hook"),
        (Section::Ledger, "ledger lock, Rust sender"),
        (Section::Steal, "steal marker, Rust clearer"),
        (Section::StealBash, "steal marker, bash clearer"),
    ]
    .into_iter()
    .map(|(section, what)| {
        let samples: Vec<f64> = (0..n)
            .filter_map(|_| sample(ctx, &l, &lib, section))
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        Row::new(
            format!("lock reclaim: SIGKILL in {what} → next send"),
            "ms",
            samples,
        )
    })
    .collect()
}

fn mailbox_lock(l: &Layout) -> std::path::PathBuf {
    lock::lock_path_for(&l.mailbox(PID))
}

fn send(l: &Layout) -> Result<bool, ()> {
    match delivery::deliver(
        l,
        Some(RECEIVER),
        PID,
        "ping",
        Some(SENDER),
        &NewMessage::default(),
    ) {
        Ok(m) => Ok(ledger::lookup(l, RECEIVER, m.id().unwrap_or_default())
            .ok()
            .flatten()
            .is_some()),
        Err(e) if e.is_lock_timeout() => Ok(false),
        Err(_) => Err(()),
    }
}

/// One kill → next-send measurement; `None` when the holder could not be set up.
fn sample(ctx: &Ctx, l: &Layout, lib: &Path, section: Section) -> Option<Duration> {
    let mbox = mailbox_lock(l);
    let mut holder = match section {
        Section::Mailbox => spawn_rust(ctx, "hold", &mbox)?,
        Section::MailboxBash => spawn_bash(lib, &mbox, "lock")?,
        Section::Ledger => spawn_rust(ctx, "hold", &lock::lock_path_for(&l.ledger(RECEIVER)))?,
        Section::Steal | Section::StealBash => {
            // What a holder killed between mkdir and its owner write leaves,
            // aged past the window: only a clearer can free it.
            std::fs::create_dir(&mbox).ok()?;
            let past = std::time::SystemTime::now() - Duration::from_secs(120);
            std::fs::File::open(&mbox).ok()?.set_modified(past).ok()?;
            if matches!(section, Section::Steal) {
                spawn_rust(ctx, "steal", &mbox)?
            } else {
                spawn_bash(lib, &mbox, "steal")?
            }
        }
    };
    let t = Instant::now();
    let _ = holder.kill();
    let _ = holder.wait();
    loop {
        match send(l) {
            Ok(true) => break,
            Ok(false) if t.elapsed() < GIVE_UP => {}
            _ => return Some(GIVE_UP),
        }
    }
    let took = t.elapsed();
    let _ = oxtail::store::mailbox::drain(l, PID);
    Some(took)
}

/// Wait for the holder's first stdout line (it holds the lock by then).
fn ready(mut child: Child) -> Option<Child> {
    let out = child.stdout.take()?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).ok()?;
    if line.trim().is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    Some(child)
}

fn spawn_rust(ctx: &Ctx, what: &str, lock: &Path) -> Option<Child> {
    let child = Command::new(&ctx.exe)
        .args(["__child", "lock", what])
        .arg(lock)
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    ready(child)
}

/// bash holding `lock` (`what` = "lock") or only its steal marker ("steal").
fn spawn_bash(lib: &Path, lock: &Path, what: &str) -> Option<Child> {
    let take = if what == "lock" {
        "oxtail_lock_acquire \"$L\" || exit 1; tok=$OXTAIL_LOCK_TOKEN"
    } else {
        "tok=$$.000000000001; _oxtail_lock_stale_s; _oxtail_lock_take_steal \"$L\" \"$tok\" || exit 1"
    };
    let script = format!(
        ". '{}'; L='{}'; {take}; echo \"$tok\"; exec sleep 600",
        lib.display(),
        lock.display()
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    ready(child)
}

/// Helper process: `__child lock hold|steal <lock>` takes the lock (or only
/// its steal marker), prints its token and sleeps until killed.
pub fn child(args: &[String]) -> i32 {
    let [what, path] = args else {
        return 2;
    };
    let path = Path::new(path);
    let token = match what.as_str() {
        "hold" => match lock::acquire(path, &LockKind::Other, &LockOptions::default()) {
            Ok(g) => {
                let t = g.token().to_string();
                std::mem::forget(g);
                t
            }
            Err(_) => return 1,
        },
        "steal" => match lock::take_steal_marker(path) {
            Some(m) => {
                std::mem::forget(m);
                "steal".to_string()
            }
            None => return 1,
        },
        _ => return 2,
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{token}");
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
