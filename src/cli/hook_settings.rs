//! Pure edits of the parsed `~/.claude/settings.json` object for
//! `install-hook` / `uninstall-hook`: register or remove oxtail's three hook
//! commands, the idle watcher (a second `Stop` command with
//! `"asyncRewake": true` and a `timeout`, only when asked: the installer
//! detects support) and the `_oxtailHook` marker (which records `idleWatch`).
//!
//! Invariants defended:
//! - only oxtail's own command objects are touched: a user's `matcher`,
//!   `timeout` or third-party commands sharing a group with ours are kept, and
//!   a group is removed only when it was emptied by removing our commands;
//! - an existing oxtail command keeps its position (replace in place);
//!   otherwise ours is appended last; duplicates of ours are collapsed;
//! - a structure we cannot edit safely (`hooks` not an object, an event not an
//!   array) is an error before anything is changed; key order is kept
//!   (serde_json `preserve_order`).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::hook_assets::{
    HOOK_MARKER_VERSION, IDLE_WATCH_EVENT, IDLE_WATCH_FILE, MARKER_KEY, command_for,
    idle_watch_command, is_oxtail_command, managed_hooks, shipped_hashes,
};

/// Every (event, file) oxtail may register: the plain hooks and the watcher.
fn all_registrations() -> impl Iterator<Item = (&'static str, &'static str)> {
    managed_hooks()
        .map(|(h, event)| (event, h.file))
        .chain(std::iter::once((IDLE_WATCH_EVENT, IDLE_WATCH_FILE)))
}

/// Whether `cmd` is any oxtail command registered on `event`.
fn is_ours_on(event: &str, cmd: &str, home: &Path) -> bool {
    all_registrations().any(|(e, file)| e == event && is_oxtail_command(cmd, file, home))
}

/// Check that the settings can be edited: `hooks`, when present, is an object
/// and each managed event in it, when present, is an array.
pub fn check_shape(root: &Map<String, Value>) -> Result<(), String> {
    let Some(hooks) = root.get("hooks") else {
        return Ok(());
    };
    let Value::Object(hooks) = hooks else {
        return Err(
            "~/.claude/settings.json: \"hooks\" is not an object; fix it by hand first".into(),
        );
    };
    for (_, event) in managed_hooks() {
        if let Some(v) = hooks.get(event)
            && !v.is_array()
        {
            return Err(format!(
                "~/.claude/settings.json: \"hooks.{event}\" is not an array; fix it by hand first"
            ));
        }
    }
    Ok(())
}

/// Positions `(group, command)` of oxtail's commands for `file` in `groups`.
fn positions(groups: &[Value], file: &str, home: &Path) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (gi, group) in groups.iter().enumerate() {
        let Some(cmds) = group.get("hooks").and_then(Value::as_array) else {
            continue;
        };
        for (hi, h) in cmds.iter().enumerate() {
            let ours = h
                .get("command")
                .and_then(Value::as_str)
                .is_some_and(|c| is_oxtail_command(c, file, home));
            if ours {
                out.push((gi, hi));
            }
        }
    }
    out
}

/// Remove the commands at `at` (any order) and then every group that this
/// emptied. Returns how many commands were removed.
fn remove_at(groups: &mut Vec<Value>, mut at: Vec<(usize, usize)>) -> usize {
    at.sort_unstable();
    let removed = at.len();
    for &(gi, hi) in at.iter().rev() {
        if let Some(Value::Array(cmds)) = groups[gi].get_mut("hooks") {
            cmds.remove(hi);
        }
    }
    let mut touched: Vec<usize> = at.iter().map(|&(g, _)| g).collect();
    touched.dedup();
    for gi in touched.into_iter().rev() {
        let empty = groups[gi]
            .get("hooks")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty);
        if empty {
            groups.remove(gi);
        }
    }
    removed
}

/// Register the three hooks, and the idle watcher when `idle_watch` (else take
/// ours out), and set the marker (`installed_at` = ISO-8601). Call
/// [`check_shape`] first.
pub fn apply_install(
    root: &mut Map<String, Value>,
    home: &Path,
    installed_at: &str,
    idle_watch: bool,
) {
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(hooks) = hooks {
        for (hook, event) in managed_hooks() {
            let slot = hooks
                .entry(event)
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(groups) = slot else { continue };
            let want = command_for(hook.file);
            let mut at = positions(groups, hook.file, home);
            if at.is_empty() {
                groups.push(json!({"hooks": [{"type": "command", "command": want}]}));
                continue;
            }
            let (g0, h0) = at.remove(0);
            if let Some(Value::Object(cmd)) =
                groups[g0].get_mut("hooks").and_then(|c| c.get_mut(h0))
            {
                cmd.insert("type".into(), Value::String("command".into()));
                cmd.insert("command".into(), Value::String(want));
            }
            remove_at(groups, at);
        }
        if let Some(Value::Array(groups)) = hooks.get_mut(IDLE_WATCH_EVENT) {
            place_idle_watch(groups, home, idle_watch);
        }
    }
    let marker = json!({
        "version": HOOK_MARKER_VERSION,
        "installedAt": installed_at,
        "hashes": Value::Object(shipped_hashes()),
        "idleWatch": idle_watch,
    });
    root.insert(MARKER_KEY.into(), marker);
}

/// The watcher on its event: ours replaced in place (a user's extra keys
/// kept, ours set) or appended in a group of its own; or every copy removed.
fn place_idle_watch(groups: &mut Vec<Value>, home: &Path, wanted: bool) {
    let mut at = positions(groups, IDLE_WATCH_FILE, home);
    if !wanted {
        remove_at(groups, at);
        return;
    }
    let Value::Object(want) = idle_watch_command() else {
        return;
    };
    if at.is_empty() {
        groups.push(json!({"hooks": [Value::Object(want)]}));
        return;
    }
    let (g0, h0) = at.remove(0);
    if let Some(Value::Object(cmd)) = groups[g0].get_mut("hooks").and_then(|c| c.get_mut(h0)) {
        for (k, v) in want {
            cmd.insert(k, v);
        }
    }
    remove_at(groups, at);
}

/// Whether the idle watcher is registered on its event.
pub fn has_idle_watch(root: &Map<String, Value>, home: &Path) -> bool {
    root.get("hooks")
        .and_then(|h| h.get(IDLE_WATCH_EVENT))
        .and_then(Value::as_array)
        .is_some_and(|g| !positions(g, IDLE_WATCH_FILE, home).is_empty())
}

/// Remove every oxtail command (and groups emptied by that) and the marker.
/// Event arrays and the `hooks` object stay, even when empty. Returns whether
/// anything changed.
pub fn apply_uninstall(root: &mut Map<String, Value>, home: &Path) -> bool {
    let mut changed = false;
    if let Some(Value::Object(hooks)) = root.get_mut("hooks") {
        for (event, file) in all_registrations() {
            if let Some(Value::Array(groups)) = hooks.get_mut(event) {
                let at = positions(groups, file, home);
                changed |= remove_at(groups, at) > 0;
            }
        }
    }
    if root.get(MARKER_KEY).is_some_and(Value::is_object) {
        root.shift_remove(MARKER_KEY);
        changed = true;
    }
    changed
}

/// Whether any managed event holds an oxtail command.
pub fn has_oxtail_entries(root: &Map<String, Value>, home: &Path) -> bool {
    let Some(Value::Object(hooks)) = root.get("hooks") else {
        return false;
    };
    all_registrations().any(|(event, file)| {
        hooks
            .get(event)
            .and_then(Value::as_array)
            .is_some_and(|g| !positions(g, file, home).is_empty())
    })
}

/// Number of groups on the managed events holding a command that is not
/// oxtail's (they keep running alongside ours).
pub fn foreign_groups(root: &Map<String, Value>, home: &Path) -> usize {
    let Some(Value::Object(hooks)) = root.get("hooks") else {
        return 0;
    };
    let mut n = 0;
    for (_, event) in managed_hooks() {
        let Some(groups) = hooks.get(event).and_then(Value::as_array) else {
            continue;
        };
        for group in groups {
            let Some(cmds) = group.get("hooks").and_then(Value::as_array) else {
                continue;
            };
            let foreign = cmds.iter().any(|h| {
                !h.get("command")
                    .and_then(Value::as_str)
                    .is_some_and(|c| is_ours_on(event, c, home))
            });
            if foreign {
                n += 1;
            }
        }
    }
    n
}

/// The marker's `installedAt`, if it is a string (reused to detect "no change").
pub fn marker_installed_at(root: &Map<String, Value>) -> Option<String> {
    root.get(MARKER_KEY)?
        .get("installedAt")?
        .as_str()
        .map(str::to_string)
}

/// settings.json text as Claude Code writes it: 2-space indent, final newline.
pub fn render(root: &Map<String, Value>) -> String {
    let mut s = serde_json::to_string_pretty(root).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn replaces_only_our_command_inside_a_shared_group_and_collapses_duplicates() {
        let home = Path::new("/h");
        let mut root = obj(json!({
            "hooks": {"PreToolUse": [
                {"matcher": "Bash", "hooks": [
                    {"type": "command", "command": "third-party"},
                    {"type": "command", "command": "~/.oxtail/hooks/pretooluse.sh", "timeout": 5}
                ]},
                {"hooks": [{"type": "command", "command": "\"$HOME/.oxtail/hooks/pretooluse.sh\""}]}
            ]}
        }));
        apply_install(&mut root, home, "T", false);
        let pre = root["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 1, "duplicate group removed");
        assert_eq!(pre[0]["matcher"], "Bash");
        assert_eq!(pre[0]["hooks"][0]["command"], "third-party");
        assert_eq!(
            pre[0]["hooks"][1]["command"],
            "\"$HOME/.oxtail/hooks/pretooluse.sh\""
        );
        assert_eq!(pre[0]["hooks"][1]["timeout"], 5);
        assert_eq!(foreign_groups(&root, home), 1);
        assert!(apply_uninstall(&mut root, home));
        let pre = root["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 1);
        assert_eq!(pre[0]["hooks"].as_array().unwrap().len(), 1);
        assert!(root.get(MARKER_KEY).is_none());
        assert!(!apply_uninstall(&mut root, home));
    }

    #[test]
    fn the_idle_watcher_is_a_second_stop_command_added_and_removed_on_request() {
        let home = Path::new("/h");
        let mut root = obj(json!({"hooks": {"Stop": [
            {"hooks": [{"type": "command", "command": "~/.oxtail/hooks/idlewatch.sh", "statusMessage": "x"}]}
        ]}}));
        apply_install(&mut root, home, "T", true);
        let stop = root["hooks"]["Stop"].as_array().unwrap().clone();
        assert_eq!(stop.len(), 2, "watcher replaced in place, stop.sh appended");
        let w = &stop[0]["hooks"][0];
        assert_eq!(w["command"], "\"$HOME/.oxtail/hooks/idlewatch.sh\"");
        assert_eq!(w["asyncRewake"], true);
        assert_eq!(w["timeout"], 3600);
        assert_eq!(w["statusMessage"], "x", "a user's key is kept");
        assert_eq!(
            stop[1]["hooks"][0]["command"],
            "\"$HOME/.oxtail/hooks/stop.sh\""
        );
        assert_eq!(root[MARKER_KEY]["idleWatch"], true);
        assert!(has_idle_watch(&root, home));
        assert_eq!(
            foreign_groups(&root, home),
            0,
            "ours on Stop are not foreign"
        );
        apply_install(&mut root, home, "T", false);
        assert_eq!(root[MARKER_KEY]["idleWatch"], false);
        assert!(!has_idle_watch(&root, home));
        assert_eq!(root["hooks"]["Stop"].as_array().unwrap().len(), 1);
        apply_install(&mut root, home, "T", true);
        assert!(apply_uninstall(&mut root, home));
        assert!(!has_oxtail_entries(&root, home));
    }

    #[test]
    fn shape_errors_are_reported() {
        assert!(check_shape(&obj(json!({"hooks": []}))).is_err());
        assert!(check_shape(&obj(json!({"hooks": {"Stop": {}}}))).is_err());
        assert!(check_shape(&obj(json!({"hooks": {"Other": 1}}))).is_ok());
    }
}
