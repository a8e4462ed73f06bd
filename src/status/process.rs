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
use std::process::{Command, Stdio};

use serde::Serialize;

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
    let starts = start_times(&existing, now_s);
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

/// Start times (unix seconds) of the given live pids: `/proc` first, `ps`
/// for whatever it could not answer.
pub fn start_times(pids: &[u32], now_s: i64) -> HashMap<u32, i64> {
    let mut out = HashMap::new();
    if pids.is_empty() {
        return out;
    }
    if let Some(boot) = proc_boot_time() {
        let ticks = clock_ticks();
        for &pid in pids {
            if let Some(t) = proc_start_ticks(pid) {
                out.insert(pid, boot + (t / ticks) as i64);
            }
        }
    }
    let rest: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !out.contains_key(p))
        .collect();
    out.extend(ps_start_times(&rest, now_s));
    out
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `btime` of `/proc/stat` (Linux).
fn proc_boot_time() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Field 22 (`starttime`, clock ticks since boot) of `/proc/<pid>/stat`.
fn proc_start_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&text)
}

/// `starttime` from a `/proc/<pid>/stat` line. The command name (field 2) is
/// in parentheses and may itself hold spaces or parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; starttime is field 22.
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// One `ps -o pid=,etime= -p <pids>` call: start = now - elapsed.
fn ps_start_times(pids: &[u32], now_s: i64) -> HashMap<u32, i64> {
    if pids.is_empty() {
        return HashMap::new();
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let Ok(out) = Command::new("ps")
        .args(["-o", "pid=,etime=", "-p", &list.join(",")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse::<u32>().ok()?;
            let elapsed = parse_etime(f.next()?)?;
            Some((pid, now_s - elapsed))
        })
        .collect()
}

/// POSIX `etime`: `[[dd-]hh:]mm:ss` → seconds.
pub fn parse_etime(s: &str) -> Option<i64> {
    let (days, clock) = match s.split_once('-') {
        Some((d, rest)) => (d.parse::<i64>().ok()?, rest),
        None => (0, s),
    };
    let parts: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts[..] {
        [m, s] => (0, m, s),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etime_forms() {
        assert_eq!(parse_etime("00:05"), Some(5));
        assert_eq!(parse_etime("12:34"), Some(754));
        assert_eq!(parse_etime("01:00:00"), Some(3600));
        assert_eq!(
            parse_etime("2-03:04:05"),
            Some(2 * 86400 + 3 * 3600 + 4 * 60 + 5)
        );
        for bad in ["", "5", "a:b", "1:2:3:4", "x-00:01"] {
            assert_eq!(parse_etime(bad), None, "{bad}");
        }
    }

    #[test]
    fn stat_start_survives_odd_command_names() {
        let fields: Vec<String> = (3..=25).map(|i| i.to_string()).collect();
        let rest = fields.join(" ");
        assert_eq!(parse_stat_start(&format!("42 (a b) {rest}")), Some(22));
        assert_eq!(parse_stat_start(&format!("42 (x) y)) {rest}")), Some(22));
        assert_eq!(parse_stat_start("42 (short) R 1"), None);
    }

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

    #[test]
    fn ps_and_proc_agree_on_this_process() {
        let me = std::process::id();
        let now = crate::clock::now_s();
        let ps = ps_start_times(&[me], now);
        let all = start_times(&[me], now);
        let (Some(a), Some(b)) = (ps.get(&me), all.get(&me)) else {
            eprintln!("note: no ps on this machine; the ps fallback is not exercised");
            return;
        };
        assert!((a - b).abs() <= 2, "ps {a} vs proc/any {b}");
        assert!(*a <= now && now - *a < 86_400, "{a} {now}");
    }
}
