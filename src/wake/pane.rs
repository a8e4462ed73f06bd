//! Verified wake pane: the tmux pane a peer's server process really runs in,
//! derived from live process state, never from the peer's self-written registry
//! entry.
//!
//! Invariant defended: keystrokes only ever target a `%<digits>` pane that the
//! process tree confirms — the first tmux pane process met walking up the parent
//! chain from the peer's `server_pid` (at most 64 steps, stopping at pid ≤ 1).
//! An entry without a cached pane gets no target at all (suspect entry).

use std::collections::HashMap;
use std::fs;

use super::tmux::Tmux;

/// Maximum number of steps of the ancestry walk (also bounds ppid cycles).
pub const ANCESTRY_CAP: usize = 64;

/// `%` followed by one or more ASCII digits and nothing else.
pub fn is_pane_id(s: &str) -> bool {
    s.len() > 1 && s.starts_with('%') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `[A-Za-z0-9_-]+` (tested, unused by production paths, as in the original).
pub fn is_session_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parse `tmux list-panes -a -F '#{pane_pid}|#{pane_id}'` output into
/// pane-process pid → pane id (bad rows ignored, later rows win).
pub fn parse_pane_map(output: &str) -> HashMap<u32, String> {
    let mut map = HashMap::new();
    for line in output.lines() {
        let line = line.trim();
        let Some((pid, pane)) = line.split_once('|') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let pane = pane.trim();
        if pid == 0 || pane.is_empty() {
            continue;
        }
        map.insert(pid, pane.to_string());
    }
    map
}

/// Parse `ps -A -o pid=,ppid=` output into pid → parent pid.
pub fn parse_ps(output: &str) -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    for line in output.lines() {
        let mut it = line.split_whitespace();
        if let (Some(Ok(pid)), Some(Ok(ppid))) =
            (it.next().map(str::parse), it.next().map(str::parse))
        {
            map.insert(pid, ppid);
        }
    }
    map
}

/// Where parent pids come from.
pub enum ProcessTree {
    /// Linux: read `/proc/<pid>/stat` lazily, one file per step of the walk.
    Proc,
    /// Elsewhere (macOS): one `ps -A -o pid=,ppid=` snapshot.
    Snapshot(HashMap<u32, u32>),
}

impl ProcessTree {
    /// `/proc` when it is there, else a `ps` snapshot (empty when `ps` fails).
    pub fn live() -> ProcessTree {
        if fs::metadata("/proc/self/stat").is_ok() {
            ProcessTree::Proc
        } else {
            ProcessTree::Snapshot(ps_snapshot())
        }
    }

    pub fn parent(&self, pid: u32) -> Option<u32> {
        match self {
            ProcessTree::Proc => proc_parent(pid),
            ProcessTree::Snapshot(map) => map.get(&pid).copied(),
        }
    }
}

fn ps_snapshot() -> HashMap<u32, u32> {
    std::process::Command::new("ps")
        .args(["-A", "-o", "pid=,ppid="])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_ps(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// Parent pid from `/proc/<pid>/stat`: the field after the state, which follows
/// the last `)` (the command name may itself contain parentheses and spaces).
fn proc_parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Walk from `start` up the parent chain; the first pid that is a pane process
/// gives the pane.
pub fn walk_to_pane(
    start: u32,
    panes: &HashMap<u32, String>,
    parent: impl Fn(u32) -> Option<u32>,
) -> Option<String> {
    if panes.is_empty() {
        return None;
    }
    let mut pid = Some(start);
    for _ in 0..ANCESTRY_CAP {
        let current = match pid {
            Some(p) if p > 1 => p,
            _ => return None,
        };
        if let Some(pane) = panes.get(&current) {
            return Some(pane.clone());
        }
        pid = parent(current);
    }
    None
}

/// The verified pane of a peer, or `None`.
///
/// `cached_pane` is the peer's self-written `tmux_pane`: only its presence is
/// used (no cached pane → no target); the value is never a target.
pub fn verified_pane(tmux: &Tmux, cached_pane: Option<&str>, server_pid: u32) -> Option<String> {
    if cached_pane.is_none_or(str::is_empty) {
        return None;
    }
    let panes = tmux.pane_map();
    if panes.is_empty() {
        return None;
    }
    let tree = ProcessTree::live();
    walk_to_pane(server_pid, &panes, |p| tree.parent(p)).filter(|p| is_pane_id(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_id_shape() {
        for ok in ["%0", "%42"] {
            assert!(is_pane_id(ok), "{ok}");
        }
        for bad in ["%1; rm -rf /", "1", "%", "%1.2", "main", "", "%-1"] {
            assert!(!is_pane_id(bad), "{bad}");
        }
        assert!(is_session_name("oxtail-codex_2"));
        for bad in ["", "has space", "a:b", "a.b", "%1"] {
            assert!(!is_session_name(bad), "{bad}");
        }
    }

    #[test]
    fn parses_tmux_and_ps_output() {
        let panes = parse_pane_map("100|%1\nx|%2\n0|%3\n101|\n\n102|%4\n100|%5\n");
        assert_eq!(panes.len(), 2);
        assert_eq!(panes[&100], "%5");
        assert_eq!(panes[&102], "%4");
        let ps = parse_ps("  1     0\n 200   1\nbad line\n 300 200 extra\n");
        assert_eq!(ps[&200], 1);
        assert_eq!(ps[&300], 200);
        assert_eq!(ps.len(), 3);
    }

    #[test]
    fn ancestry_walk() {
        let panes: HashMap<u32, String> = [(10, "%1".to_string())].into();
        let tree: HashMap<u32, u32> = [(30, 20), (20, 10), (10, 1), (40, 1)].into();
        let parent = |p: u32| tree.get(&p).copied();
        assert_eq!(walk_to_pane(10, &panes, parent), Some("%1".into()));
        assert_eq!(walk_to_pane(30, &panes, parent), Some("%1".into()));
        assert_eq!(walk_to_pane(40, &panes, parent), None);
        assert_eq!(walk_to_pane(30, &HashMap::new(), parent), None);
        // Stops at pid 1 even if pid 1 were a pane process.
        let init: HashMap<u32, String> = [(1, "%9".to_string())].into();
        assert_eq!(walk_to_pane(40, &init, parent), None);
        // Bounded on cycles.
        let cycle: HashMap<u32, u32> = [(50, 51), (51, 50)].into();
        assert_eq!(walk_to_pane(50, &panes, |p| cycle.get(&p).copied()), None);
    }

    #[test]
    fn proc_parent_of_self_is_our_parent() {
        if fs::metadata("/proc/self/stat").is_err() {
            return;
        }
        let me = std::process::id();
        let expected = std::os::unix::process::parent_id();
        assert_eq!(proc_parent(me), Some(expected));
        let snap = ps_snapshot();
        if !snap.is_empty() {
            assert_eq!(snap.get(&me), Some(&expected));
        }
    }
}
