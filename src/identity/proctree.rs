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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_parent() {
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
