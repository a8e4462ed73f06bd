//! Read-only tmux queries: session listing, pane paths, session of a pane,
//! canonical names, pane capture, and this process's own pane (server spec
//! §2.9, §3.6, §4.1, §4.2). Keystrokes live in `wake`.
//!
//! Invariants defended: tmux is exec'd directly (never through a shell) with
//! the ambient environment (`TMUX_TMPDIR` selects the server); every failure
//! degrades to empty/`None` or an error string, never a panic; a pane id is
//! only trusted from `TMUX_PANE` when it has the `%<digits>` shape.

use std::collections::HashMap;
use std::io;
use std::process::Stdio;

use crate::wake::pane::{ProcessTree, is_pane_id, walk_to_pane};
use crate::wake::tmux::Tmux;

/// One row of `tmux list-sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub name: String,
    pub path: String,
    pub attached: bool,
    pub created_at: i64,
    pub windows: i64,
}

/// Raw outcome of one tmux run.
enum Run {
    Ok(String),
    /// The binary is missing.
    NotFound,
    /// Non-zero exit (trimmed stderr) or another spawn failure (its message).
    Failed(String),
}

fn run(tmux: &Tmux, args: &[&str]) -> Run {
    let out = tmux
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    match out {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Run::NotFound,
        Err(e) => Run::Failed(e.to_string()),
        Ok(o) if o.status.success() => Run::Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Run::Failed(String::from_utf8_lossy(&o.stderr).trim().to_string()),
    }
}

fn ok_lines(r: Run) -> Vec<String> {
    match r {
        Run::Ok(s) => s.lines().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `tmux list-sessions`: the rows, plus the `error` field of
/// `list_project_sessions` (`tmux not found`; null for `no server running`;
/// else the trimmed stderr or `tmux failed`).
pub fn list_sessions(tmux: &Tmux) -> (Vec<SessionRow>, Option<String>) {
    let fmt =
        "#{session_name}|#{session_path}|#{session_created}|#{session_attached}|#{session_windows}";
    let out = match run(tmux, &["list-sessions", "-F", fmt]) {
        Run::Ok(s) => s,
        Run::NotFound => return (Vec::new(), Some("tmux not found".into())),
        Run::Failed(e) if e.contains("no server running") => return (Vec::new(), None),
        Run::Failed(e) if e.is_empty() => return (Vec::new(), Some("tmux failed".into())),
        Run::Failed(e) => return (Vec::new(), Some(e)),
    };
    let rows = out
        .lines()
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let mut parts = line.split('|');
            let name = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            if name.is_empty() || path.is_empty() {
                return None;
            }
            let int = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
            let created_at = int(parts.next());
            let attached = parts.next() == Some("1");
            let windows = int(parts.next());
            Some(SessionRow {
                name: name.into(),
                path: path.into(),
                attached,
                created_at,
                windows,
            })
        })
        .collect();
    (rows, None)
}

/// Session name → every pane's current path (`list-panes -a`); empty on failure.
pub fn pane_paths_by_session(tmux: &Tmux) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in ok_lines(run(
        tmux,
        &[
            "list-panes",
            "-a",
            "-F",
            "#{session_name}|#{pane_current_path}",
        ],
    )) {
        if let Some((s, p)) = line.split_once('|')
            && !s.is_empty()
            && !p.is_empty()
        {
            map.entry(s.to_string()).or_default().push(p.to_string());
        }
    }
    map
}

/// The session a pane belongs to (trimmed; `None` when empty or on failure).
pub fn session_of_pane(tmux: &Tmux, pane: &str) -> Option<String> {
    match run(
        tmux,
        &["display-message", "-p", "-t", pane, "#{session_name}"],
    ) {
        Run::Ok(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        _ => None,
    }
}

/// `(canonical name, session path)` of a tmux target, when both are non-empty.
pub fn describe_session(tmux: &Tmux, name: &str) -> Option<(String, String)> {
    let Run::Ok(out) = run(
        tmux,
        &[
            "display-message",
            "-p",
            "-t",
            name,
            "#{session_name}|#{session_path}",
        ],
    ) else {
        return None;
    };
    let line = out.trim();
    let (n, p) = line.split_once('|')?;
    (!n.is_empty() && !p.is_empty()).then(|| (n.to_string(), p.to_string()))
}

/// Current paths of the panes of `session`'s current window.
pub fn window_pane_paths(tmux: &Tmux, session: &str) -> Vec<String> {
    ok_lines(run(
        tmux,
        &["list-panes", "-t", session, "-F", "#{pane_current_path}"],
    ))
    .into_iter()
    .map(|l| l.trim().to_string())
    .filter(|l| !l.is_empty())
    .collect()
}

/// `capture-pane -p -J -t <session> -S -<lines> -E -`; `Err` is the error text
/// (`spawnSync tmux ENOENT` when tmux is missing, as the original reports).
pub fn capture_pane(tmux: &Tmux, session: &str, lines: i64) -> Result<String, String> {
    let start = format!("-{lines}");
    match run(
        tmux,
        &[
            "capture-pane",
            "-p",
            "-J",
            "-t",
            session,
            "-S",
            &start,
            "-E",
            "-",
        ],
    ) {
        Run::Ok(s) => Ok(s),
        Run::NotFound => Err("spawnSync tmux ENOENT".into()),
        Run::Failed(e) if e.is_empty() => Err("pane capture failed".into()),
        Run::Failed(e) => Err(e),
    }
}

/// This process's pane: a well-formed `TMUX_PANE`, else the first tmux pane
/// process found walking up from our own pid.
pub fn own_pane(tmux: &Tmux, env_pane: Option<&str>) -> Option<String> {
    if let Some(p) = env_pane.filter(|p| is_pane_id(p)) {
        return Some(p.to_string());
    }
    let panes = tmux.pane_map();
    if panes.is_empty() {
        return None;
    }
    let tree = ProcessTree::live();
    walk_to_pane(std::process::id(), &panes, |p| tree.parent(p))
}

/// `(tmux_pane, tmux_session)` of this process.
pub fn own_binding(tmux: &Tmux, env_pane: Option<&str>) -> (Option<String>, Option<String>) {
    let pane = own_pane(tmux, env_pane);
    let session = pane.as_deref().and_then(|p| session_of_pane(tmux, p));
    (pane, session)
}
