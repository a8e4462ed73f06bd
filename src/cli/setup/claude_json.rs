//! Claude Code's user-scope MCP registration: `mcpServers.oxtail` in
//! `~/.claude.json`, the entry `claude mcp add -s user oxtail <binary>` writes
//! (checked with Claude Code 2.1.332):
//! `{"type": "stdio", "command": "<absolute binary>", "args": [], "env": {}}`.
//!
//! Invariants defended: only `mcpServers.oxtail` is ever changed; an existing
//! entry keeps its `env` (the user's knobs) and any extra keys, and an entry
//! that already matches is not rewritten (no write, no backup).

use serde_json::{Map, Value, json};

use super::Edit;
use super::json_doc::{JsonDoc, object_at};

/// The MCP server name oxtail registers under.
pub const SERVER_NAME: &str = "oxtail";

/// What `~/.claude.json` says about oxtail.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Missing,
    /// Present; the command it runs (if a string) and whether it runs `binary`
    /// with no arguments.
    Present {
        command: Option<String>,
        current: bool,
    },
}

/// Register oxtail, running `binary`.
pub fn install(text: Option<&str>, binary: &str) -> Result<Edit, String> {
    let mut doc = JsonDoc::parse(text, "~/.claude.json")?;
    let servers = object_at(&mut doc.root, "mcpServers", "~/.claude.json")?;
    let summary = match servers.get_mut(SERVER_NAME) {
        None => {
            servers.insert(
                SERVER_NAME.into(),
                json!({"type": "stdio", "command": binary, "args": [], "env": {}}),
            );
            format!("added mcpServers.{SERVER_NAME} (command {binary})")
        }
        Some(Value::Object(entry)) => {
            if is_current(entry, binary) {
                return Ok(Edit::unchanged(format!(
                    "mcpServers.{SERVER_NAME} already runs {binary}"
                )));
            }
            let before = describe(entry);
            entry.insert("type".into(), json!("stdio"));
            entry.insert("command".into(), json!(binary));
            entry.insert("args".into(), json!([]));
            if !matches!(entry.get("env"), Some(Value::Object(_))) {
                entry.insert("env".into(), json!({}));
            }
            format!("updated mcpServers.{SERVER_NAME} (was {before}, now {binary})")
        }
        Some(other) => {
            return Err(format!(
                "~/.claude.json: mcpServers.{SERVER_NAME} is {} where an object was expected; fix it by hand first",
                super::json_doc::kind(other)
            ));
        }
    };
    Ok(Edit::changed(doc.render(), summary))
}

/// Remove `mcpServers.oxtail` (the `mcpServers` object itself stays).
pub fn uninstall(text: Option<&str>) -> Result<Edit, String> {
    if text.is_none() {
        return Ok(Edit::unchanged(
            "no ~/.claude.json: nothing to remove".into(),
        ));
    }
    let mut doc = JsonDoc::parse(text, "~/.claude.json")?;
    let removed = match doc.root.get_mut("mcpServers") {
        Some(Value::Object(servers)) => servers.shift_remove(SERVER_NAME).is_some(),
        _ => false,
    };
    if !removed {
        return Ok(Edit::unchanged(format!(
            "no mcpServers.{SERVER_NAME} entry: nothing to remove"
        )));
    }
    Ok(Edit::changed(
        doc.render(),
        format!("removed mcpServers.{SERVER_NAME}"),
    ))
}

/// Read-only look at the entry (for `doctor`).
pub fn inspect(text: Option<&str>, binary: &str) -> Result<Entry, String> {
    let doc = JsonDoc::parse(text, "~/.claude.json")?;
    Ok(
        match doc.root.get("mcpServers").and_then(|s| s.get(SERVER_NAME)) {
            Some(Value::Object(entry)) => Entry::Present {
                command: entry
                    .get("command")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                current: is_current(entry, binary),
            },
            Some(_) => Entry::Present {
                command: None,
                current: false,
            },
            None => Entry::Missing,
        },
    )
}

fn is_current(entry: &Map<String, Value>, binary: &str) -> bool {
    let stdio = entry.get("type").is_none_or(|t| t == "stdio");
    let args_empty = match entry.get("args") {
        None => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    let env_ok = matches!(entry.get("env"), None | Some(Value::Object(_)));
    stdio && args_empty && env_ok && entry.get("command").and_then(Value::as_str) == Some(binary)
}

fn describe(entry: &Map<String, Value>) -> String {
    let command = entry
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or("<no command>");
    match entry.get("args").and_then(Value::as_array) {
        Some(args) if !args.is_empty() => {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            format!("{command} {}", args.join(" "))
        }
        _ => command.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_file_gets_the_claude_mcp_add_shape() {
        let e = install(None, "/bin/oxtail").unwrap();
        let v: Value = serde_json::from_str(e.new_text.as_deref().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"mcpServers": {"oxtail": {"type": "stdio", "command": "/bin/oxtail", "args": [], "env": {}}}})
        );
    }

    #[test]
    fn old_entry_is_updated_keeping_env_and_other_servers_in_place() {
        let old = "{\n  \"a\": 1,\n  \"mcpServers\": {\n    \"x\": {\n      \"command\": \"x\"\n    },\n    \"oxtail\": {\n      \"type\": \"stdio\",\n      \"command\": \"npx\",\n      \"args\": [\n        \"-y\",\n        \"oxtail\"\n      ],\n      \"env\": {\n        \"K\": \"v\"\n      }\n    }\n  },\n  \"z\": 2\n}";
        let e = install(Some(old), "/b/oxtail").unwrap();
        let new = e.new_text.unwrap();
        assert!(e.summary.contains("was npx"));
        let expected = old
            .replace("\"npx\"", "\"/b/oxtail\"")
            .replace("[\n        \"-y\",\n        \"oxtail\"\n      ]", "[]");
        assert_eq!(new, expected);
        assert!(install(Some(&new), "/b/oxtail").unwrap().new_text.is_none());
        let un = uninstall(Some(&new)).unwrap().new_text.unwrap();
        assert!(!un.contains("oxtail"));
        assert!(un.contains("\"x\""));
        assert!(uninstall(Some(&un)).unwrap().new_text.is_none());
    }

    #[test]
    fn refuses_non_object_server_tables() {
        assert!(install(Some("{\"mcpServers\": []}"), "/b").is_err());
        assert!(install(Some("{\"mcpServers\": {\"oxtail\": \"x\"}}"), "/b").is_err());
        assert_eq!(inspect(Some("{}"), "/b").unwrap(), Entry::Missing,);
    }
}
