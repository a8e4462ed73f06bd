//! Codex's MCP registration: `[mcp_servers.oxtail]` with `command = "<binary>"`
//! in `$CODEX_HOME/config.toml` — what `codex mcp add oxtail -- <binary>`
//! writes (checked with Codex 0.169.0).
//!
//! With approvals (the default; `setup --no-approvals` leaves them alone) the
//! same edit adds `default_tools_approval_mode = "approve"` to that table
//! (`approvals`), so Codex runs oxtail's tools without asking.
//!
//! Invariants defended: edits go through `toml_edit`, so comments, key order
//! and formatting of everything we do not touch survive byte for byte; only
//! `mcp_servers.oxtail` is changed (its other keys, e.g. `env` or the user's
//! own `default_tools_approval_mode`, are kept); a matching entry is not
//! rewritten.

use toml_edit::{DocumentMut, Item, Table, value};

use super::claude_json::{Entry, SERVER_NAME};
use super::{Edit, Part, approvals};

/// How messages name the file: its path as the user knows it.
fn what() -> String {
    super::display(&super::ClientPaths::from_env().codex_config())
}

/// A command path as setup prints it (`~/…` under HOME).
fn shown(command: &str) -> String {
    super::display(std::path::Path::new(command))
}

fn parse(text: Option<&str>) -> Result<DocumentMut, String> {
    text.unwrap_or("").parse::<DocumentMut>().map_err(|e| {
        format!(
            "{} is not valid TOML: {}; fix it by hand first",
            what(),
            e.to_string().trim()
        )
    })
}

/// Register oxtail, running `binary`; with `approvals`, also let oxtail's
/// tools run without asking (`approvals::codex_allow`, reported as a part of
/// the edit labelled `Codex approvals`).
pub fn install(text: Option<&str>, binary: &str, approvals: bool) -> Result<Edit, String> {
    let mut doc = parse(text)?;
    if doc.get("mcp_servers").is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("mcp_servers", Item::Table(t));
    }
    let servers = doc["mcp_servers"].as_table_like_mut().ok_or_else(|| {
        format!(
            "{}: mcp_servers is not a table; fix it by hand first",
            what()
        )
    })?;
    let (summary, main_changed) = match servers.get_mut(SERVER_NAME) {
        None => {
            let mut t = Table::new();
            t.insert("command", value(binary));
            servers.insert(SERVER_NAME, Item::Table(t));
            (
                format!(
                    "added [mcp_servers.{SERVER_NAME}] (command {})",
                    shown(binary)
                ),
                true,
            )
        }
        Some(item) => {
            let entry = item.as_table_like_mut().ok_or_else(|| {
                format!(
                    "{}: mcp_servers.{SERVER_NAME} is not a table; fix it by hand first",
                    what()
                )
            })?;
            let command = entry
                .get("command")
                .and_then(Item::as_str)
                .map(str::to_string);
            let args_empty = entry
                .get("args")
                .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty()));
            if command.as_deref() == Some(binary) && args_empty {
                (
                    format!("[mcp_servers.{SERVER_NAME}] already runs {}", shown(binary)),
                    false,
                )
            } else {
                entry.insert("command", value(binary));
                if !args_empty {
                    entry.remove("args");
                }
                (
                    format!(
                        "updated [mcp_servers.{SERVER_NAME}] (was {}, now {})",
                        command
                            .as_deref()
                            .map(shown)
                            .unwrap_or_else(|| "<no command>".into()),
                        shown(binary)
                    ),
                    true,
                )
            }
        }
    };
    let mut parts = Vec::new();
    if approvals && let Some(entry) = doc["mcp_servers"][SERVER_NAME].as_table_like_mut() {
        let c = approvals::codex_allow(entry);
        parts.push(Part {
            label: "Codex approvals",
            summary: c.summary,
            changed: c.changed,
        });
    }
    let changed = main_changed || parts.iter().any(|p| p.changed);
    Ok(Edit {
        new_text: changed.then(|| doc.to_string()),
        summary,
        main_changed,
        parts,
    })
}

/// Remove `mcp_servers.oxtail` (and an `mcp_servers` table left empty that
/// had no header of its own), and the Codex trust records
/// `[hooks.state."<key>"]` of oxtail's hooks (`trust_keys`, from
/// `codex_hooks::trust_keys`), dropping `hooks.state` / `hooks` when emptied.
pub fn uninstall(text: Option<&str>, trust_keys: &[String]) -> Result<Edit, String> {
    if text.is_none() {
        return Ok(Edit::unchanged("no config.toml: nothing to remove".into()));
    }
    let mut doc = parse(text)?;
    let mut done = Vec::new();
    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut)
        && let Some(entry) = servers.remove(SERVER_NAME)
    {
        let with = match entry
            .as_table_like()
            .and_then(|t| t.get(approvals::CODEX_KEY))
        {
            Some(_) => format!(" (and its {})", approvals::CODEX_KEY),
            None => String::new(),
        };
        done.push(format!("removed [mcp_servers.{SERVER_NAME}]{with}"));
    }
    drop_if_empty_implicit(&mut doc, "mcp_servers");
    let mut untrusted = 0;
    if let Some(state) = doc
        .get_mut("hooks")
        .and_then(Item::as_table_like_mut)
        .and_then(|h| h.get_mut("state"))
        .and_then(Item::as_table_like_mut)
    {
        for key in trust_keys {
            if state.remove(key).is_some() {
                untrusted += 1;
            }
        }
        if state.is_empty()
            && let Some(hooks) = doc.get_mut("hooks").and_then(Item::as_table_like_mut)
        {
            hooks.remove("state");
        }
    }
    drop_if_empty_implicit(&mut doc, "hooks");
    if untrusted > 0 {
        done.push(format!(
            "removed Codex's trust record of {untrusted} oxtail hook(s)"
        ));
    }
    if done.is_empty() {
        return Ok(Edit::unchanged(format!(
            "no [mcp_servers.{SERVER_NAME}]: nothing to remove"
        )));
    }
    Ok(Edit::changed(doc.to_string(), done.join(", ")))
}

/// Remove the root table `key` when it is empty and has no header of its own.
fn drop_if_empty_implicit(doc: &mut DocumentMut, key: &str) {
    let empty_implicit = doc
        .get(key)
        .and_then(Item::as_table)
        .is_some_and(|t| t.is_empty() && t.is_implicit());
    if empty_implicit {
        doc.remove(key);
    }
}

/// Read-only look at the entry (for `doctor`).
pub fn inspect(text: Option<&str>, binary: &str) -> Result<Entry, String> {
    let doc = parse(text)?;
    let entry = doc
        .get("mcp_servers")
        .and_then(Item::as_table_like)
        .and_then(|s| s.get(SERVER_NAME));
    Ok(match entry {
        None => Entry::Missing,
        Some(item) => {
            let t = item.as_table_like();
            let command = t
                .and_then(|t| t.get("command"))
                .and_then(Item::as_str)
                .map(str::to_string);
            let args_empty = t
                .and_then(|t| t.get("args"))
                .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty()));
            Entry::Present {
                current: command.as_deref() == Some(binary) && args_empty,
                command,
            }
        }
    })
}

/// Read-only look at the approvals of oxtail's tools (for `doctor`).
pub fn approval_state(text: Option<&str>) -> Result<approvals::State, String> {
    let doc = parse(text)?;
    let entry = doc
        .get("mcp_servers")
        .and_then(Item::as_table_like)
        .and_then(|s| s.get(SERVER_NAME))
        .and_then(Item::as_table_like);
    Ok(approvals::codex_state(entry))
}

/// A warning when the user's config switches Codex hooks off
/// (`[features] hooks = false`, or the older alias `codex_hooks = false`).
pub fn hooks_disabled(text: Option<&str>) -> Option<String> {
    let doc = parse(text).ok()?;
    let features = doc.get("features")?.as_table_like()?;
    for key in ["hooks", "codex_hooks"] {
        if features.get(key).and_then(Item::as_bool) == Some(false) {
            return Some(format!(
                "{} sets [features] {key} = false, so Codex runs no hooks; \
                 remove that line (hooks are on by default in Codex 0.169) to get oxtail delivery in Codex",
                what()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "# my settings\nmodel = \"o3\"   # keep this comment\n\n[features]\nfoo = true # x\n\n[mcp_servers.other]\ncommand = \"other\"\nargs = [\"a\"]  # theirs\n";

    #[test]
    fn add_keeps_everything_else_byte_for_byte_and_uninstall_restores() {
        let e = install(Some(USER), "/b/oxtail", false).unwrap();
        let new = e.new_text.unwrap();
        assert!(
            new.starts_with(USER),
            "user text must be kept as is:\n{new}"
        );
        assert!(
            new.ends_with("[mcp_servers.oxtail]\ncommand = \"/b/oxtail\"\n"),
            "{new}"
        );
        assert!(
            install(Some(&new), "/b/oxtail", false)
                .unwrap()
                .new_text
                .is_none()
        );
        let back = uninstall(Some(&new), &[]).unwrap().new_text.unwrap();
        assert_eq!(back, USER);
    }

    #[test]
    fn fresh_file_and_uninstall_of_an_implicit_parent() {
        let new = install(None, "/b/oxtail", false).unwrap().new_text.unwrap();
        assert_eq!(new, "[mcp_servers.oxtail]\ncommand = \"/b/oxtail\"\n");
        let plain = "model = \"x\"\n";
        let with = install(Some(plain), "/b/oxtail", false)
            .unwrap()
            .new_text
            .unwrap();
        assert_eq!(
            uninstall(Some(&with), &[]).unwrap().new_text.unwrap(),
            plain
        );
    }

    #[test]
    fn old_entry_is_updated_in_place_keeping_its_other_keys() {
        let old = "[mcp_servers.oxtail]\ncommand = \"npx\" # old\nargs = [\"-y\", \"oxtail\"]\ndefault_tools_approval_mode = \"approve\"\n\n[after]\nk = 1\n";
        let e = install(Some(old), "/b/oxtail", true).unwrap();
        let new = e.new_text.unwrap();
        assert!(e.summary.contains("was npx"));
        assert!(!new.contains("args"));
        assert!(new.contains("default_tools_approval_mode = \"approve\"\n"));
        assert!(new.ends_with("\n[after]\nk = 1\n"), "{new}");
        assert_eq!(
            inspect(Some(&new), "/b/oxtail").unwrap(),
            Entry::Present {
                command: Some("/b/oxtail".into()),
                current: true
            }
        );
    }

    #[test]
    fn uninstall_drops_only_oxtails_trust_records() {
        let text = "model = \"o3\"\n\n[mcp_servers.oxtail]\ncommand = \"/b\"\n\n[hooks.state]\n\n[hooks.state.\"/h/hooks.json:stop:1:0\"]\ntrusted_hash = \"sha256:a\"\n\n[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:b\"\n";
        let e = uninstall(Some(text), &["/h/hooks.json:stop:1:0".into()]).unwrap();
        let new = e.new_text.unwrap();
        assert!(e.summary.contains("trust record of 1"), "{}", e.summary);
        assert!(
            !new.contains("stop:1:0") && !new.contains("mcp_servers"),
            "{new}"
        );
        assert!(
            new.contains("[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:b\""),
            "{new}"
        );
        let only = "model = \"o3\"\n\n[hooks.state]\n\n[hooks.state.\"/h/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:b\"\n";
        let e = uninstall(Some(only), &["/h/hooks.json:stop:0:0".into()]).unwrap();
        assert_eq!(e.new_text.unwrap(), "model = \"o3\"\n");
    }

    #[test]
    fn approvals_go_into_the_same_edit_and_leave_with_the_entry() {
        let e = install(Some(USER), "/b/oxtail", true).unwrap();
        assert!(e.main_changed);
        assert_eq!(e.parts.len(), 1);
        assert!(e.parts[0].changed, "{:?}", e.parts);
        let new = e.new_text.unwrap();
        assert!(
            new.ends_with("[mcp_servers.oxtail]\ncommand = \"/b/oxtail\"\ndefault_tools_approval_mode = \"approve\"\n"),
            "{new}"
        );
        // Only the approval missing: the entry is current, the part changes.
        let plain = install(Some(USER), "/b/oxtail", false)
            .unwrap()
            .new_text
            .unwrap();
        let e = install(Some(&plain), "/b/oxtail", true).unwrap();
        assert!(!e.main_changed && e.parts[0].changed);
        assert_eq!(e.new_text.as_deref(), Some(new.as_str()));
        let e = install(Some(&new), "/b/oxtail", true).unwrap();
        assert!(e.new_text.is_none() && !e.parts[0].changed);
        let un = uninstall(Some(&new), &[]).unwrap();
        assert!(
            un.summary.contains("and its default_tools_approval_mode"),
            "{}",
            un.summary
        );
        assert_eq!(un.new_text.unwrap(), USER);
    }

    #[test]
    fn malformed_or_odd_shapes_are_refused() {
        assert!(install(Some("model = \n"), "/b", true).is_err());
        assert!(install(Some("mcp_servers = 3\n"), "/b", true).is_err());
        assert!(install(Some("[mcp_servers]\noxtail = 3\n"), "/b", true).is_err());
        assert!(hooks_disabled(Some("[features]\nhooks = false\n")).is_some());
        assert!(hooks_disabled(Some("[features]\nhooks = true\n")).is_none());
    }
}
