//! oxtail's delivery hooks for Codex: `$CODEX_HOME/hooks.json`, which Codex
//! (0.169) reads in Claude Code's layout and runs with Claude Code's semantics
//! (`../shared/realclients/FINDINGS.md`). The entries run the same scripts
//! `install-hook` puts in `~/.oxtail/hooks/`, with the same command strings.
//!
//! Invariants defended:
//! - only handlers whose command names `oxtail/hooks/<script>` are touched;
//!   every other group and handler keeps its place, because Codex keys hook
//!   trust by (file, event, group index, handler index);
//! - an entry that is already right is not rewritten: Codex trusts a hook by
//!   the hash of its definition, so rewriting would ask the user to re-trust;
//! - nothing but `hooks` is added at the root (Codex refuses a hooks.json with
//!   unknown root keys).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::Edit;
use super::json_doc::{JsonDoc, kind, object_at};
use crate::cli::hook_assets::{HOOK_FILES, command_for, is_oxtail_command, managed_hooks};
use crate::store::paths::{Layout, ensure_private_dir};

/// Mode of the installed hook files (the same user runs and sources them).
const HOOK_FILE_MODE: u32 = 0o700;

/// How messages name the file: its path as the user knows it.
fn what() -> String {
    super::display(&super::ClientPaths::from_env().codex_hooks())
}

/// (event, installed script) of each hook Codex runs, in registration order.
pub fn managed() -> Vec<(&'static str, &'static str)> {
    managed_hooks()
        .filter(|(h, _)| h.codex)
        .map(|(h, event)| (event, h.file))
        .collect()
}

/// The events Codex gets, as messages name them ("PreToolUse, Stop, …").
pub fn event_list() -> String {
    managed()
        .iter()
        .map(|(event, _)| *event)
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_ours(handler: &Value, script: &str, home: &Path) -> bool {
    handler
        .get("command")
        .and_then(Value::as_str)
        .is_some_and(|c| is_oxtail_command(c, script, home))
}

/// (group index, handler index) of every oxtail handler for `script`.
fn find(groups: &[Value], script: &str, home: &Path) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for (gi, group) in groups.iter().enumerate() {
        if let Some(handlers) = group.get("hooks").and_then(Value::as_array) {
            for (hi, h) in handlers.iter().enumerate() {
                if is_ours(h, script, home) {
                    found.push((gi, hi));
                }
            }
        }
    }
    found
}

fn event_array<'a>(
    hooks: &'a mut Map<String, Value>,
    event: &str,
) -> Result<&'a mut Vec<Value>, String> {
    match hooks.entry(event.to_string()).or_insert_with(|| json!([])) {
        Value::Array(a) => Ok(a),
        other => Err(format!(
            "{}: hooks.{event} is {} where an array was expected; fix it by hand first",
            what(),
            kind(other)
        )),
    }
}

/// Register the three hooks (replacing older oxtail commands in place and
/// dropping duplicates).
pub fn install(text: Option<&str>, home: &Path) -> Result<Edit, String> {
    let mut doc = JsonDoc::parse(text, &what())?;
    let hooks = object_at(&mut doc.root, "hooks", &what())?;
    let mut done = Vec::new();
    for (event, script) in managed() {
        let want = command_for(script);
        let groups = event_array(hooks, event)?;
        let found = find(groups, script, home);
        let Some(&(gi, hi)) = found.first() else {
            groups.push(json!({"hooks": [{"type": "command", "command": want}]}));
            done.push(format!("added {event}"));
            continue;
        };
        let mut changed = false;
        if let Some(Value::Object(h)) = groups[gi]["hooks"].get_mut(hi) {
            if h.get("command").and_then(Value::as_str) != Some(want.as_str()) {
                h.insert("command".into(), json!(want));
                changed = true;
            }
            if h.get("type").and_then(Value::as_str) != Some("command") {
                h.insert("type".into(), json!("command"));
                changed = true;
            }
        }
        // Later duplicates go, from the back so indices stay valid.
        for &(dg, dh) in found[1..].iter().rev() {
            if let Some(Value::Array(hs)) = groups[dg].get_mut("hooks") {
                hs.remove(dh);
                if hs.is_empty() {
                    groups.remove(dg);
                }
            }
            changed = true;
        }
        if changed {
            done.push(format!("updated {event}"));
        }
    }
    if done.is_empty() {
        return Ok(Edit::unchanged(format!(
            "{} hooks already registered",
            event_list()
        )));
    }
    Ok(Edit::changed(doc.render(), done.join(", ")))
}

/// Remove every oxtail handler; a group or event list that becomes empty goes
/// too. Other hooks stay.
pub fn uninstall(text: Option<&str>, home: &Path) -> Result<Edit, String> {
    if text.is_none() {
        return Ok(Edit::unchanged("no hooks.json: nothing to remove".into()));
    }
    let mut doc = JsonDoc::parse(text, &what())?;
    let Some(Value::Object(hooks)) = doc.root.get_mut("hooks") else {
        return Ok(Edit::unchanged("no oxtail hooks: nothing to remove".into()));
    };
    let mut removed = Vec::new();
    for (event, script) in managed() {
        let Some(Value::Array(groups)) = hooks.get_mut(event) else {
            continue;
        };
        let found = find(groups, script, home);
        if found.is_empty() {
            continue;
        }
        for &(gi, hi) in found.iter().rev() {
            if let Some(Value::Array(hs)) = groups[gi].get_mut("hooks") {
                hs.remove(hi);
                if hs.is_empty() {
                    groups.remove(gi);
                }
            }
        }
        if groups.is_empty() {
            hooks.shift_remove(event);
        }
        removed.push(event);
    }
    if removed.is_empty() {
        return Ok(Edit::unchanged("no oxtail hooks: nothing to remove".into()));
    }
    Ok(Edit::changed(
        doc.render(),
        format!("removed {}", removed.join(", ")),
    ))
}

/// Make `~/.oxtail/hooks/` hold this binary's hook files (what the Codex
/// entries run) when `install-hook` is not run (`setup --no-claude`). Returns
/// the names written; files already identical are left alone.
pub fn ensure_files(layout: &Layout, dry_run: bool) -> Result<Vec<&'static str>, String> {
    let mut written = Vec::new();
    for h in &HOOK_FILES {
        let path = layout.hook(h.file);
        let same = std::fs::read(&path).is_ok_and(|b| b == h.text.as_bytes())
            && std::fs::metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o100 != 0
            });
        if same {
            continue;
        }
        if !dry_run {
            ensure_private_dir(&layout.hooks_dir())
                .and_then(|_| super::config_file::replace(&path, h.text.as_bytes(), HOOK_FILE_MODE))
                .map_err(|e| format!("cannot write {}: {e}", super::display(&path)))?;
        }
        written.push(h.file);
    }
    Ok(written)
}

/// The keys under which Codex records trust for oxtail's hooks in this
/// hooks.json: `<hooks.json path>:<event in snake_case>:<group>:<handler>`
/// (the form `hooks/list` reports), for uninstall to remove. A malformed
/// file gives none.
pub fn trust_keys(text: Option<&str>, home: &Path, hooks_json: &Path) -> Vec<String> {
    let Ok(doc) = JsonDoc::parse(text, &what()) else {
        return Vec::new();
    };
    let mut sources = vec![hooks_json.display().to_string()];
    if let Ok(real) = hooks_json.canonicalize()
        && real != hooks_json
    {
        sources.push(real.display().to_string());
    }
    let mut keys = Vec::new();
    for (event, script) in managed() {
        let Some(groups) = doc
            .root
            .get("hooks")
            .and_then(|h| h.get(event))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let label = snake_case(event);
        for (gi, hi) in find(groups, script, home) {
            for src in &sources {
                keys.push(format!("{src}:{label}:{gi}:{hi}"));
            }
        }
    }
    keys
}

/// `UserPromptSubmit` → `user_prompt_submit`.
fn snake_case(event: &str) -> String {
    let mut out = String::new();
    for (i, c) in event.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// For each managed event: is oxtail's hook registered with the current
/// command string? (for `doctor`)
pub fn inspect(
    text: Option<&str>,
    home: &Path,
    what: &str,
) -> Result<Vec<(&'static str, bool)>, String> {
    let doc = JsonDoc::parse(text, what)?;
    let hooks = doc.root.get("hooks");
    Ok(managed()
        .into_iter()
        .map(|(event, script)| {
            let ok = hooks
                .and_then(|h| h.get(event))
                .and_then(Value::as_array)
                .is_some_and(|groups| {
                    find(groups, script, home).iter().any(|&(g, h)| {
                        groups[g]["hooks"][h].get("command").and_then(Value::as_str)
                            == Some(command_for(script).as_str())
                    })
                });
            (event, ok)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> &'static Path {
        Path::new("/home/u")
    }

    #[test]
    fn fresh_install_registers_three_events_and_is_idempotent() {
        let new = install(None, h()).unwrap().new_text.unwrap();
        let v: Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            v["hooks"]["Stop"],
            json!([{"hooks": [{"type": "command", "command": "\"$HOME/.oxtail/hooks/stop.sh\""}]}])
        );
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert!(install(Some(&new), h()).unwrap().new_text.is_none());
        assert!(
            inspect(Some(&new), h(), "f")
                .unwrap()
                .iter()
                .all(|(_, ok)| *ok)
        );
        let back = uninstall(Some(&new), h()).unwrap().new_text.unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&back).unwrap(),
            json!({"hooks": {}})
        );
    }

    #[test]
    fn foreign_hooks_keep_their_positions_and_old_commands_are_replaced() {
        let old = json!({"hooks": {
            "Stop": [
                {"hooks": [{"type": "command", "command": "/their/stop"}]},
                {"hooks": [{"type": "command", "command": "~/.oxtail/hooks/stop.sh", "timeout": 30}]},
                {"hooks": [{"type": "command", "command": "\"$HOME/.oxtail/hooks/stop.sh\""}]}
            ],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/their/pre"}]}]
        }});
        let text = serde_json::to_string_pretty(&old).unwrap();
        let new = install(Some(&text), h()).unwrap().new_text.unwrap();
        let v: Value = serde_json::from_str(&new).unwrap();
        let stop = v["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        assert_eq!(stop[0]["hooks"][0]["command"], "/their/stop");
        assert_eq!(
            stop[1]["hooks"][0]["command"],
            "\"$HOME/.oxtail/hooks/stop.sh\""
        );
        assert_eq!(stop[1]["hooks"][0]["timeout"], 30);
        let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre[0]["matcher"], "Bash");
        assert_eq!(pre.len(), 2);
        let back: Value =
            serde_json::from_str(&uninstall(Some(&new), h()).unwrap().new_text.unwrap()).unwrap();
        assert_eq!(back["hooks"]["Stop"].as_array().unwrap().len(), 1);
        assert_eq!(back["hooks"]["PreToolUse"].as_array().unwrap().len(), 1);
        assert!(back["hooks"].get("UserPromptSubmit").is_none());
    }

    #[test]
    fn trust_keys_name_our_positions_in_codex_form() {
        let text = install(Some("{\"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"/x\"}]}]}}"), h())
            .unwrap()
            .new_text
            .unwrap();
        let keys = trust_keys(Some(&text), h(), Path::new("/nonexistent/c/hooks.json"));
        assert_eq!(
            keys,
            [
                "/nonexistent/c/hooks.json:pre_tool_use:0:0",
                "/nonexistent/c/hooks.json:stop:1:0",
                "/nonexistent/c/hooks.json:user_prompt_submit:0:0",
            ]
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert!(install(Some("{\"hooks\": []}"), h()).is_err());
        assert!(install(Some("{\"hooks\": {\"Stop\": {}}}"), h()).is_err());
        assert!(install(Some("{\"hooks\": "), h()).is_err());
    }
}
