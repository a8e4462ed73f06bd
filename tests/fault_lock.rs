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
//!
//! The same crowd also reclaims a *fresh* lock whose holder was SIGKILLed
//! (its owner names a pid that no longer exists), on every other round with
//! the steal marker of a clearer that was killed too: the crowd must reclaim
//! it without waiting out the stale window, still with one holder at a time,
//! and leave no marker or reclaimer file behind.

// Both support modules include tests/shared/process.rs (fault_support for
// its Sleeper, store_support for dead_pid); one copy per module is intended.
#![allow(clippy::duplicate_mod)]

mod fault_support;
mod store_support;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use oxtail::store::lock::{self, LockKind, LockOptions};

use fault_support::{env_num, figure};
use store_support::{backdate, dead_pid, side};

/// Counts of one crowd run.
struct Crowd {
    acquired: u64,
    overlaps: u64,
}

/// `threads` threads start together on `l` (already in the state `setup`
/// left it in) and each takes the lock once if it can, checking that nobody
/// else is inside while it is.
fn crowd(l: &Path, inside: &Path, threads: usize, opts: LockOptions) -> Crowd {
    let overlaps = Arc::new(AtomicU64::new(0));
    let acquired = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (l, inside) = (l.to_path_buf(), inside.to_path_buf());
            let (overlaps, acquired, barrier) = (
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
                    .open(&inside)
                {
                    Ok(_) => {
                        thread::sleep(Duration::from_millis(2));
                        fs::remove_file(&inside).unwrap();
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
    Crowd {
        acquired: acquired.load(Ordering::Relaxed),
        overlaps: overlaps.load(Ordering::Relaxed),
    }
}

/// `OXTAIL_LOCK_ROUNDS` rounds of an 8-thread crowd on a lock that
/// `prepare(lock, round)` leaves in some abandoned state; after each round
/// nothing may be left in the directory. Returns the overlaps seen.
fn rounds(figure_name: &str, prepare: impl Fn(&Path, u64), all_get_in: bool) -> u64 {
    let rounds = env_num("OXTAIL_LOCK_ROUNDS", 60);
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("m.jsonl.lock");
    let inside = tmp.path().join("inside");
    // The budget is far shorter than the stale window for a fresh lock: there
    // only the dead-holder rule can let the crowd in.
    let opts = LockOptions {
        max_wait: Duration::from_secs(10),
        max_attempts: 100_000,
        ..LockOptions::default()
    };
    let (mut acquired, mut overlaps) = (0, 0);
    for round in 0..rounds {
        prepare(&l, round);
        let c = crowd(&l, &inside, 8, opts);
        if all_get_in {
            assert_eq!(
                c.acquired, 8,
                "round {round}: a thread waited out a dead holder"
            );
        }
        acquired += c.acquired;
        overlaps += c.overlaps;
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // The last holder parks the lock for the next one (store::lock).
            .filter(|n| n != "m.jsonl.lock.spare" && n != "m.jsonl.lock.owner.spare")
            .collect();
        assert!(left.is_empty(), "round {round}: left behind {left:?}");
    }
    figure(
        figure_name,
        &[
            ("rounds", rounds),
            ("acquisitions", acquired),
            ("two_holders", overlaps),
        ],
    );
    overlaps
}

#[test]
fn a_crowd_clearing_an_ownerless_stale_lock_never_makes_two_holders() {
    let overlaps = rounds(
        "fault_lock",
        |l, _| {
            // A dead holder's leftover: the directory, no owner, long stale.
            fs::create_dir(l).unwrap();
            backdate(l, 120);
        },
        false,
    );
    assert_eq!(overlaps, 0, "two holders held the lock at once");
}

#[test]
fn a_crowd_reclaiming_a_killed_holders_lock_never_makes_two_holders() {
    let overlaps = rounds(
        "fault_lock_dead_holder",
        |l, round| {
            fs::create_dir(l).unwrap();
            let owner = format!("{}.00ff00ff00ff00ff", dead_pid());
            fs::write(side(l, ".owner"), owner).unwrap();
            if round % 2 == 1 {
                fs::create_dir(side(l, ".steal")).unwrap();
                let clearer = format!("{}.abcdef", dead_pid());
                fs::write(side(l, ".steal.owner"), clearer).unwrap();
            }
        },
        true,
    );
    assert_eq!(overlaps, 0, "two holders held the lock at once");
}
