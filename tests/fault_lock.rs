//! The lock under a crowd at its most fragile moment: a stale lock left
//! without an owner record (its holder died between `mkdir` and writing the
//! owner, or between removing the owner and the directory on release) is
//! cleared by many contenders at once. At most one of them may hold the lock
//! at any time, round after round.
//!
//! The danger: "owner absent" is also what a brand-new lock looks like in the
//! instant between its `mkdir` and its owner write, so a clearer that only
//! compares owners can remove a successor's fresh lock. CI runs
//! `OXTAIL_LOCK_ROUNDS` (default 60) rounds of 8 threads.

mod fault_support;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime};

use oxtail::store::lock::{self, LockKind, LockOptions};

use fault_support::{env_num, figure};

fn backdate(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    fs::File::open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

#[test]
fn a_crowd_clearing_an_ownerless_stale_lock_never_makes_two_holders() {
    let rounds = env_num("OXTAIL_LOCK_ROUNDS", 60);
    let threads = 8;
    let tmp = tempfile::tempdir().unwrap();
    let l = Arc::new(tmp.path().join("m.jsonl.lock"));
    let inside = Arc::new(tmp.path().join("inside"));
    let overlaps = Arc::new(AtomicU64::new(0));
    let acquired = Arc::new(AtomicU64::new(0));
    let opts = LockOptions {
        max_wait: Duration::from_secs(10),
        max_attempts: 100_000,
        ..LockOptions::default()
    };
    for _ in 0..rounds {
        // A dead holder's leftover: the directory, no owner, long stale.
        fs::create_dir(&*l).unwrap();
        backdate(&l, 120);
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (l, inside, overlaps, acquired, barrier) = (
                    Arc::clone(&l),
                    Arc::clone(&inside),
                    Arc::clone(&overlaps),
                    Arc::clone(&acquired),
                    Arc::clone(&barrier),
                );
                thread::spawn(move || {
                    barrier.wait();
                    let Ok(guard) = lock::acquire(&l, &LockKind::Other, &opts) else {
                        return;
                    };
                    acquired.fetch_add(1, Ordering::Relaxed);
                    // The critical section: exclusive iff nobody else is in.
                    match fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&*inside)
                    {
                        Ok(_) => {
                            thread::sleep(Duration::from_millis(2));
                            fs::remove_file(&*inside).unwrap();
                        }
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                            overlaps.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    drop(guard);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(!l.exists(), "the lock was left behind");
    }
    let overlaps = overlaps.load(Ordering::Relaxed);
    figure(
        "fault_lock",
        &[
            ("rounds", rounds),
            ("acquisitions", acquired.load(Ordering::Relaxed)),
            ("two_holders", overlaps),
        ],
    );
    assert_eq!(overlaps, 0, "two holders held the lock at once");
}
