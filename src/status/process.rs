//! Is a registry entry's server still the process that wrote it? `kill(pid, 0)`
//! says whether *some* process has the pid; the process's start time says
//! whether it is the same one.
//!
//! Invariant defended: a pid reused by an unrelated process never makes a dead
//! agent look alive. A live pid whose process started more than
//! [`REUSE_SLACK_S`] after the entry's `started_at` (the server writes
//! `started_at` after it starts, so its own process always started before)
//! reads as `reused`. The start time comes from `/proc` on Linux and from one
//! `ps -o pid=,etime=` call elsewhere (or when `/proc` is unreadable); when
//! neither answers, the verdict is `unknown`, never `reused`.

use std::collections::HashMap;

use serde::Serialize;

use crate::identity::start_time;
use crate::store::registry;

/// Tolerance between the entry's `started_at` (floored seconds) and the
/// process start time read back (tick or second resolution, wall clock that
/// may have been stepped since): generous, because a false "reused" would
/// report a live agent as dead.
pub const REUSE_SLACK_S: i64 = 30;

/// What the start-time check concluded (the original's `proc_sig` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcSig {
    /// The process started before the entry was written: the same process.
    Ok,
    /// The process started after the entry was written: another process.
    Reused,
    /// No start time could be read, or the entry has no `started_at`.
    Unknown,
}

/// One pid's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcState {
    /// `kill(pid, 0)` found a process.
    pub exists: bool,
    pub sig: ProcSig,
}

impl ProcState {
    /// The entry's server is running: the pid exists and is not reused.
    pub fn alive(&self) -> bool {
        self.exists && self.sig != ProcSig::Reused
    }
}

/// Probe each `(pid, started_at)` (`started_at` <= 0: not known). `now_s`
/// is the wall clock the start times are compared against.
pub fn probe(pids: &[(u32, i64)], now_s: i64) -> HashMap<u32, ProcState> {
    let existing: Vec<u32> = pids
        .iter()
        .map(|&(p, _)| p)
        .filter(|&p| registry::is_alive(p))
        .collect();
    let starts = start_time::start_times(&existing, now_s);
    pids.iter()
        .map(|&(pid, started_at)| {
            let exists = existing.contains(&pid);
            let sig = match (exists, starts.get(&pid)) {
                (false, _) => ProcSig::Unknown,
                (true, _) if started_at <= 0 => ProcSig::Unknown,
                (true, None) => ProcSig::Unknown,
                (true, Some(&start)) => verdict(start, started_at),
            };
            (pid, ProcState { exists, sig })
        })
        .collect()
}

/// `Reused` when the process started clearly after the entry was written.
pub fn verdict(process_start_s: i64, entry_started_at: i64) -> ProcSig {
    if process_start_s > entry_started_at + REUSE_SLACK_S {
        ProcSig::Reused
    } else {
        ProcSig::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn verdict_uses_the_slack() {
        assert_eq!(verdict(1000, 1000), ProcSig::Ok);
        assert_eq!(verdict(900, 1000), ProcSig::Ok);
        assert_eq!(verdict(1000 + REUSE_SLACK_S, 1000), ProcSig::Ok);
        assert_eq!(verdict(1001 + REUSE_SLACK_S, 1000), ProcSig::Reused);
    }

    #[test]
    fn probes_this_process_a_dead_pid_and_a_reused_one() {
        let me = std::process::id();
        let now = crate::clock::now_s();
        let mut c = Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let got = probe(&[(me, now), (dead, now)], now);
        assert!(got[&me].exists);
        assert_eq!(probe(&[(me, 0)], now)[&me].sig, ProcSig::Unknown);
        assert_eq!(
            got[&dead],
            ProcState {
                exists: false,
                sig: ProcSig::Unknown
            }
        );
        // An entry "written" long before this process started: a reused pid.
        let old = probe(&[(me, 1_000_000_000)], now);
        assert_eq!(old[&me].sig, ProcSig::Reused);
        assert!(!old[&me].alive());
        let fresh = probe(&[(me, now)], now);
        assert_eq!(fresh[&me].sig, ProcSig::Ok);
        assert!(fresh[&me].alive());
    }
}
