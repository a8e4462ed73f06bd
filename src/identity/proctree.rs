//! The ancestor chain used to key sticky claims (server spec §6.8.2), and the
//! client process a server serves (its parent, with its start time).
//!
//! Invariant defended: each ancestor carries its start-time signature exactly as
//! `ps -A -o pid=,ppid=,lstart=` prints it (fields after the ppid, joined with
//! single spaces, inherited locale and TZ), so chains written by the original
//! and by us match; a reused pid never matches because its signature differs.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::store::claims::Ancestor;

/// Maximum number of ancestors recorded.
pub const ANCESTRY_DEPTH: usize = 8;

/// pid → (ppid, lstart signature).
pub type Snapshot = HashMap<i64, (i64, String)>;

/// Parse `ps -A -o pid=,ppid=,lstart=` output.
pub fn parse_snapshot(out: &str) -> Snapshot {
    let mut map = Snapshot::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let (Ok(pid), Ok(ppid)) = (fields[0].parse::<i64>(), fields[1].parse::<i64>()) else {
            continue;
        };
        map.insert(pid, (ppid, fields[2..].join(" ")));
    }
    map
}

/// One process snapshot (empty when `ps` fails).
pub fn snapshot() -> Snapshot {
    Command::new("ps")
        .args(["-A", "-o", "pid=,ppid=,lstart="])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_snapshot(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// The chain from `start` (normally our parent) upwards, nearest first.
pub fn chain_from(start: i64, snap: &Snapshot) -> Vec<Ancestor> {
    let mut out = Vec::new();
    let mut pid = start;
    while out.len() < ANCESTRY_DEPTH && pid > 1 {
        match snap.get(&pid) {
            Some((ppid, sig)) => {
                out.push(Ancestor {
                    pid,
                    sig: sig.clone(),
                });
                pid = *ppid;
            }
            None => {
                out.push(Ancestor {
                    pid,
                    sig: String::new(),
                });
                break;
            }
        }
    }
    out
}

/// This process's ancestor chain, starting at its parent.
pub fn own_chain() -> Vec<Ancestor> {
    // SAFETY: getppid has no preconditions.
    let ppid = i64::from(unsafe { libc::getppid() });
    chain_from(ppid, &snapshot())
}

/// The client process this server serves: its parent (Claude Code and Codex
/// spawn MCP servers directly), or `None` when orphaned.
pub fn client_pid() -> Option<u32> {
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    u32::try_from(ppid).ok().filter(|&p| p > 1)
}

/// When process `pid` started, in Unix seconds: from `/proc` where it exists
/// (exact, no process spawned), else from `ps -o etime=` (to the second).
pub fn start_time_s(pid: u32) -> Option<i64> {
    proc_start_time_s(pid).or_else(|| ps_start_time_s(pid))
}

fn proc_start_time_s(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime, clock ticks since boot); fields 3.. follow the
    // last ')' (the command name may itself contain ')' or spaces).
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| btime + (ticks / hz as u64) as i64)
}

fn ps_start_time_s(pid: u32) -> Option<i64> {
    let out = Command::new("ps")
        .args(["-o", "etime=", "-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let elapsed = parse_etime(String::from_utf8_lossy(&out.stdout).trim())?;
    Some(crate::clock::now_s() - elapsed)
}

/// `ps` elapsed time `[[dd-]hh:]mm:ss` in seconds.
pub fn parse_etime(s: &str) -> Option<i64> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<i64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<i64> = rest
        .split(':')
        .map(|p| p.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etime_formats() {
        assert_eq!(parse_etime("00:05"), Some(5));
        assert_eq!(parse_etime("01:02:03"), Some(3723));
        assert_eq!(parse_etime("2-00:00:01"), Some(172_801));
        for bad in ["", "5", "a:b", "1:2:3:4", "x-00:01"] {
            assert_eq!(parse_etime(bad), None, "{bad}");
        }
    }

    #[test]
    fn start_times_of_a_fresh_child_agree() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let now = crate::clock::now_s();
        let pid = child.id();
        let exact = start_time_s(pid);
        let by_ps = ps_start_time_s(pid);
        let _ = child.kill();
        let _ = child.wait();
        // Seconds resolution, and a loaded machine may stall between calls.
        for t in [exact, by_ps].into_iter().flatten() {
            assert!((t - now).abs() <= 5, "{exact:?} / {by_ps:?} vs {now}");
        }
        assert!(exact.is_some() || by_ps.is_some());
        assert_eq!(client_pid(), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn parses_and_walks() {
        let snap = parse_snapshot(
            "  1     0 Thu Nov 26 05:17:16 2026\n 50    1 Thu Nov 26 05:17:17 2026\n 60   50 Fri Nov  27 01:02:03 2026\nbad\n 70 x y z\n",
        );
        assert_eq!(snap[&60].1, "Fri Nov 27 01:02:03 2026");
        let chain = chain_from(60, &snap);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].pid, 60);
        assert_eq!(chain[1].sig, "Thu Nov 26 05:17:17 2026");
        let missing = chain_from(99, &snap);
        assert_eq!(
            missing,
            vec![Ancestor {
                pid: 99,
                sig: String::new()
            }]
        );
        assert!(chain_from(1, &snap).is_empty());
    }

    #[test]
    fn own_chain_has_signatures_when_ps_exists() {
        let chain = own_chain();
        if let Some(first) = chain.first() {
            // SAFETY: getppid has no preconditions.
            assert_eq!(first.pid, i64::from(unsafe { libc::getppid() }));
        }
    }
}
