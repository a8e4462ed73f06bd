//! Approvals: let both clients call oxtail's own tools without asking the
//! user each time. Without it `codex exec` fails every oxtail call ("MCP tool
//! call requires approval, but approval policy is never"), `claude -p` denies
//! them, and interactive sessions prompt on each call.
//!
//! - Claude Code: the rule `"mcp__oxtail"` (every tool of the `oxtail` server)
//!   in `permissions.allow` of `~/.claude/settings.json` (Claude Code 2.1.197,
//!   2.1.332, `-p` and interactive).
//! - Codex: `default_tools_approval_mode = "approve"` in `[mcp_servers.oxtail]`
//!   of `$CODEX_HOME/config.toml` (Codex 0.169, 0.171, exec and interactive).
//!
//! Invariants defended — setup claims only what it added:
//! - Claude Code: setup appends the rule only when no rule already covers all
//!   of oxtail's tools, and then records that it did under
//!   `_oxtailApprovals.permissionsAllow` in the same file (the way
//!   `_oxtailHook` records the hooks). Uninstall removes a rule only when the
//!   record names it and it is still spelled exactly so, then the record, then
//!   a `permissions.allow` / `permissions` that this left empty. A rule the
//!   user wrote (no record) is never removed; `permissions.deny` and
//!   `permissions.ask` are never touched.
//! - Codex: the key lives inside oxtail's own server table. Setup adds it only
//!   when absent and never overwrites the user's value (e.g. `"prompt"`);
//!   uninstall removes the whole `[mcp_servers.oxtail]` table as before, and
//!   with it whatever approval mode it held (a setting of a server that is no
//!   longer there means nothing).
//! - A `permissions` shape we cannot edit safely is refused before anything
//!   is written (`claude_check`).

use serde_json::{Map, Value, json};
use toml_edit::{Item, TableLike, value};

use crate::server::tools::TOOLS;

/// The Claude Code rule that covers every tool of the `oxtail` server.
pub const CLAUDE_RULE: &str = "mcp__oxtail";
/// Root key of `~/.claude/settings.json` recording what setup added.
pub const RECORD_KEY: &str = "_oxtailApprovals";
const RECORD_ALLOW: &str = "permissionsAllow";
/// Codex's per-server approval key, and the value that runs without asking.
pub const CODEX_KEY: &str = "default_tools_approval_mode";
pub const CODEX_APPROVE: &str = "approve";

/// What an edit did (or found), for setup's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub changed: bool,
    pub summary: String,
}

fn change(changed: bool, summary: impl Into<String>) -> Change {
    Change {
        changed,
        summary: summary.into(),
    }
}

/// What a client's configuration says about oxtail's tools (for `doctor`).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Every oxtail tool runs without asking; `how` names the setting.
    Allowed { how: String },
    /// Only some tools run without asking.
    Partial { asking: Vec<&'static str> },
    /// The user's own setting makes the client ask or refuse (e.g. a
    /// `permissions.deny` rule, or Codex `"prompt"`).
    UserChoice { what: String },
    /// Nothing allows them: the client asks before each call.
    Missing,
}

// ------------------------------------------------------------ Claude Code

fn tool_names() -> impl Iterator<Item = &'static str> {
    TOOLS.iter().map(|t| t.spec.name)
}

/// Whether a permission rule covers every oxtail tool.
fn covers_all(rule: &str) -> bool {
    rule == CLAUDE_RULE || rule == "mcp__oxtail__*"
}

/// Whether a permission rule names oxtail tool `tool` (or all of them).
fn covers(rule: &str, tool: &str) -> bool {
    covers_all(rule)
        || rule
            .strip_prefix("mcp__oxtail__")
            .is_some_and(|t| t == tool)
}

fn rules<'a>(root: &'a Map<String, Value>, list: &str) -> Vec<&'a str> {
    root.get("permissions")
        .and_then(|p| p.get(list))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Refuse a `permissions` we cannot edit: not an object, or `allow` not an
/// array.
pub fn claude_check(root: &Map<String, Value>) -> Result<(), String> {
    let Some(p) = root.get("permissions") else {
        return Ok(());
    };
    let Value::Object(p) = p else {
        return Err(
            "~/.claude/settings.json: \"permissions\" is not an object; fix it by hand first \
             (or pass --no-approvals)"
                .into(),
        );
    };
    if p.get("allow").is_some_and(|a| !a.is_array()) {
        return Err(
            "~/.claude/settings.json: \"permissions.allow\" is not an array; fix it by hand first \
             (or pass --no-approvals)"
                .into(),
        );
    }
    Ok(())
}

/// The rules the record says setup added.
fn recorded(root: &Map<String, Value>) -> Vec<String> {
    root.get(RECORD_KEY)
        .and_then(|r| r.get(RECORD_ALLOW))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The user's `deny` (else `ask`) rules that still stop some oxtail tools:
/// (list name, what Claude Code does, the rules). Claude Code applies them
/// before `allow`.
fn overridden(root: &Map<String, Value>) -> Option<(&'static str, &'static str, String)> {
    for (list, does) in [("deny", "refuses"), ("ask", "asks before")] {
        let hits: Vec<&str> = rules(root, list)
            .into_iter()
            .filter(|r| tool_names().any(|t| covers(r, t)))
            .collect();
        if !hits.is_empty() {
            return Some((list, does, quoted(&hits)));
        }
    }
    None
}

fn quoted(rules: &[&str]) -> String {
    rules
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_note(summary: String, root: &Map<String, Value>) -> String {
    match overridden(root) {
        Some((list, does, hits)) => format!(
            "{summary}; note: your permissions.{list} lists {hits}, so Claude Code still {does} \
             those (left alone)"
        ),
        None => summary,
    }
}

/// Allow every oxtail tool (setup). Leaves a `permissions` shape it cannot
/// edit alone (`claude_check` refuses it earlier).
pub fn claude_allow(root: &mut Map<String, Value>) -> Change {
    if claude_check(root).is_err() {
        return change(false, "permissions cannot be edited: left alone");
    }
    if let Some(rule) = rules(root, "allow").into_iter().find(|r| covers_all(r)) {
        let whose = if recorded(root).iter().any(|r| r == rule) {
            String::new()
        } else {
            " (your rule; uninstall leaves it)".into()
        };
        let s =
            format!("permissions.allow has \"{rule}\"{whose}: oxtail's tools run without asking");
        return change(false, with_note(s, root));
    }
    let perms = root
        .entry("permissions")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(perms) = perms
        && let Value::Array(allow) = perms
            .entry("allow")
            .or_insert_with(|| Value::Array(Vec::new()))
    {
        allow.push(json!(CLAUDE_RULE));
    }
    let mut record = recorded(root);
    if !record.iter().any(|r| r == CLAUDE_RULE) {
        record.push(CLAUDE_RULE.into());
    }
    root.insert(RECORD_KEY.into(), json!({ RECORD_ALLOW: record }));
    let s =
        format!("added \"{CLAUDE_RULE}\" to permissions.allow: oxtail's tools run without asking");
    change(true, with_note(s, root))
}

/// Remove what [`claude_allow`] added (uninstall).
pub fn claude_revoke(root: &mut Map<String, Value>) -> Change {
    let record = recorded(root);
    let had_record = root.contains_key(RECORD_KEY);
    if !had_record {
        let mine = rules(root, "allow").into_iter().find(|r| covers_all(r));
        return change(
            false,
            match mine {
                Some(r) => format!("permissions.allow \"{r}\" is yours: left alone"),
                None => "setup allowed nothing: nothing to remove".into(),
            },
        );
    }
    let mut removed = Vec::new();
    if let Some(Value::Object(perms)) = root.get_mut("permissions") {
        if let Some(Value::Array(allow)) = perms.get_mut("allow") {
            for rule in &record {
                // The last exact copy: setup appended it; a copy the user
                // wrote earlier stays.
                if let Some(i) = allow.iter().rposition(|v| v.as_str() == Some(rule)) {
                    allow.remove(i);
                    removed.push(rule.clone());
                }
            }
            if allow.is_empty() && !removed.is_empty() {
                perms.shift_remove("allow");
            }
        }
        if perms.is_empty() && !removed.is_empty() {
            root.shift_remove("permissions");
        }
    }
    root.shift_remove(RECORD_KEY);
    let summary = if removed.is_empty() {
        "removed setup's record (its permissions.allow rule was already gone)".to_string()
    } else {
        let r: Vec<&str> = removed.iter().map(String::as_str).collect();
        format!(
            "removed {} from permissions.allow (added by setup)",
            quoted(&r)
        )
    };
    change(true, summary)
}

/// What `~/.claude/settings.json` says (user scope only: project settings and
/// `--allowedTools` can allow more).
pub fn claude_state(root: &Map<String, Value>) -> State {
    if let Some((list, does, hits)) = overridden(root) {
        return State::UserChoice {
            what: format!("permissions.{list} lists {hits}: Claude Code {does} those calls"),
        };
    }
    let allow = rules(root, "allow");
    if let Some(r) = allow.iter().find(|r| covers_all(r)) {
        return State::Allowed {
            how: format!("permissions.allow \"{r}\""),
        };
    }
    let asking: Vec<&'static str> = tool_names()
        .filter(|t| !allow.iter().any(|r| covers(r, t)))
        .collect();
    if asking.len() == TOOLS.len() {
        State::Missing
    } else {
        State::Partial { asking }
    }
}

// ------------------------------------------------------------------ Codex

/// Allow every oxtail tool in oxtail's `[mcp_servers.oxtail]` table (setup):
/// the key is added when absent; a value the user set is kept.
pub fn codex_allow(entry: &mut dyn TableLike) -> Change {
    match entry.get(CODEX_KEY) {
        None => {
            entry.insert(CODEX_KEY, value(CODEX_APPROVE));
            change(
                true,
                format!(
                    "added {CODEX_KEY} = \"{CODEX_APPROVE}\": oxtail's tools run without asking"
                ),
            )
        }
        Some(item) if item.as_str() == Some(CODEX_APPROVE) => change(
            false,
            format!("{CODEX_KEY} = \"{CODEX_APPROVE}\": oxtail's tools run without asking"),
        ),
        Some(item) => change(
            false,
            format!("{CODEX_KEY} = {} is your setting: left alone", shown(item)),
        ),
    }
}

/// A TOML value as written, without its comments and spacing.
fn shown(item: &Item) -> String {
    match item.as_value() {
        Some(v) => {
            let mut v = v.clone();
            v.decor_mut().clear();
            v.to_string()
        }
        None => "a table".into(),
    }
}

/// What oxtail's Codex server table says (`None`: no such table).
pub fn codex_state(entry: Option<&dyn TableLike>) -> State {
    let Some(entry) = entry else {
        return State::Missing;
    };
    match entry.get(CODEX_KEY) {
        None => State::Missing,
        Some(item) if item.as_str() == Some(CODEX_APPROVE) => State::Allowed {
            how: format!("{CODEX_KEY} = \"{CODEX_APPROVE}\""),
        },
        Some(item) => State::UserChoice {
            what: format!(
                "{CODEX_KEY} = {}: Codex does not run oxtail's tools unasked",
                shown(item)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn claude_allow_adds_records_and_revoke_restores_exactly() {
        let before = obj(
            json!({"theme": "dark", "permissions": {"allow": ["Bash(ls)"], "defaultMode": "default"}}),
        );
        let mut root = before.clone();
        let c = claude_allow(&mut root);
        assert!(c.changed, "{c:?}");
        assert_eq!(
            root["permissions"]["allow"],
            json!(["Bash(ls)", "mcp__oxtail"])
        );
        assert_eq!(
            root[RECORD_KEY],
            json!({"permissionsAllow": ["mcp__oxtail"]})
        );
        assert_eq!(
            claude_state(&root),
            State::Allowed {
                how: "permissions.allow \"mcp__oxtail\"".into()
            }
        );
        // Idempotent.
        let again = root.clone();
        assert!(!claude_allow(&mut root).changed);
        assert_eq!(root, again);
        assert!(claude_revoke(&mut root).changed);
        assert_eq!(root, before);
        assert!(!claude_revoke(&mut root).changed);
    }

    #[test]
    fn a_fresh_file_gets_permissions_and_loses_them_again() {
        let mut root = Map::new();
        assert!(claude_allow(&mut root).changed);
        assert_eq!(
            Value::Object(root.clone()),
            json!({"permissions": {"allow": ["mcp__oxtail"]}, "_oxtailApprovals": {"permissionsAllow": ["mcp__oxtail"]}})
        );
        assert!(claude_revoke(&mut root).changed);
        assert!(root.is_empty(), "{root:?}");
    }

    #[test]
    fn the_users_own_rule_is_neither_claimed_nor_removed() {
        let before = obj(json!({"permissions": {"allow": ["mcp__oxtail"]}}));
        let mut root = before.clone();
        let c = claude_allow(&mut root);
        assert!(!c.changed);
        assert!(c.summary.contains("your rule"), "{}", c.summary);
        assert_eq!(root, before, "no record either");
        let r = claude_revoke(&mut root);
        assert!(!r.changed && r.summary.contains("yours"), "{r:?}");
        assert_eq!(root, before);
        // The wildcard form covers every tool too.
        let mut root = obj(json!({"permissions": {"allow": ["mcp__oxtail__*"]}}));
        assert!(!claude_allow(&mut root).changed);
    }

    #[test]
    fn a_user_copy_added_after_setup_survives_uninstall() {
        let mut root = Map::new();
        claude_allow(&mut root);
        if let Value::Array(a) = &mut root["permissions"]["allow"] {
            a.insert(0, json!("mcp__oxtail"));
            a.push(json!("Read"));
        }
        claude_revoke(&mut root);
        assert_eq!(root["permissions"]["allow"], json!(["mcp__oxtail", "Read"]));
        assert!(root.get(RECORD_KEY).is_none());
    }

    #[test]
    fn deny_and_ask_rules_are_noted_and_never_touched() {
        let mut root = obj(json!({"permissions": {"deny": ["mcp__oxtail__ask_peer"]}}));
        let c = claude_allow(&mut root);
        assert!(c.changed && c.summary.contains("permissions.deny"), "{c:?}");
        assert_eq!(
            root["permissions"]["deny"],
            json!(["mcp__oxtail__ask_peer"])
        );
        assert!(matches!(claude_state(&root), State::UserChoice { .. }));
        let partial = obj(json!({"permissions": {"allow": ["mcp__oxtail__send_message"]}}));
        match claude_state(&partial) {
            State::Partial { asking } => {
                assert_eq!(asking.len(), TOOLS.len() - 1);
                assert!(!asking.contains(&"send_message"));
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(claude_state(&Map::new()), State::Missing);
    }

    #[test]
    fn odd_permission_shapes_are_refused() {
        assert!(claude_check(&obj(json!({"permissions": []}))).is_err());
        assert!(claude_check(&obj(json!({"permissions": {"allow": "x"}}))).is_err());
        assert!(claude_check(&obj(json!({"permissions": {"deny": []}}))).is_ok());
    }

    #[test]
    fn codex_adds_the_key_once_and_keeps_the_users_value() {
        let mut doc: toml_edit::DocumentMut =
            "[mcp_servers.oxtail]\ncommand = \"/b\"\n".parse().unwrap();
        let entry = doc["mcp_servers"]["oxtail"].as_table_like_mut().unwrap();
        assert!(codex_allow(entry).changed);
        assert!(!codex_allow(entry).changed);
        assert_eq!(
            doc.to_string(),
            "[mcp_servers.oxtail]\ncommand = \"/b\"\ndefault_tools_approval_mode = \"approve\"\n"
        );
        let text = "[mcp_servers.oxtail]\ncommand = \"/b\"\ndefault_tools_approval_mode = \"prompt\" # mine\n";
        let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
        let entry = doc["mcp_servers"]["oxtail"].as_table_like_mut().unwrap();
        let c = codex_allow(entry);
        assert!(
            !c.changed && c.summary.contains("\"prompt\" is your setting"),
            "{c:?}"
        );
        assert_eq!(doc.to_string(), text);
        let entry = doc["mcp_servers"]["oxtail"].as_table_like().unwrap();
        assert!(matches!(codex_state(Some(entry)), State::UserChoice { .. }));
        assert_eq!(codex_state(None), State::Missing);
    }
}
