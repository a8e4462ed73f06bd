//! `oxtail setup` / `oxtail uninstall` against fixture HOMEs: the built binary
//! is spawned with `HOME` and `CODEX_HOME` set to temp dirs (never the real
//! ones) and a PATH without `codex`.

mod setup_support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use serde_json::{Value, json};
use setup_support::{Home, binary, json_file, ok};

const EVENTS: [(&str, &str); 3] = [
    ("PreToolUse", "pretooluse.sh"),
    ("Stop", "stop.sh"),
    ("UserPromptSubmit", "userpromptsubmit.sh"),
];

fn assert_hooks_registered(v: &Value) {
    for (event, script) in EVENTS {
        let cmds: Vec<&str> = v["hooks"][event]
            .as_array()
            .unwrap_or_else(|| panic!("no {event} in {v}"))
            .iter()
            .flat_map(|g| g["hooks"].as_array().unwrap().iter())
            .filter_map(|h| h["command"].as_str())
            .collect();
        let want = format!("\"$HOME/.oxtail/hooks/{script}\"");
        assert_eq!(
            cmds.iter().filter(|c| **c == want).count(),
            1,
            "{event}: {cmds:?}"
        );
    }
}

#[test]
fn fresh_home_gets_every_entry_and_the_scripts() {
    let h = Home::new();
    let out = ok(&h.oxtail(&["setup"]));
    let bin = binary();
    assert!(out.contains("added mcpServers.oxtail"), "{out}");

    // Claude Code: exactly the entry `claude mcp add -s user` writes.
    assert_eq!(
        json_file(&h, ".claude.json"),
        json!({"mcpServers": {"oxtail": {"type": "stdio", "command": bin, "args": [], "env": {}}}})
    );
    // Codex: what `codex mcp add oxtail -- <bin>` writes, plus the approval
    // mode that lets Codex run oxtail's tools without asking.
    assert_eq!(
        h.read(".codex/config.toml"),
        format!(
            "[mcp_servers.oxtail]\ncommand = \"{bin}\"\ndefault_tools_approval_mode = \"approve\"\n"
        )
    );
    // Codex hooks.json: only `hooks` at the root (Codex refuses other keys).
    let codex_hooks = json_file(&h, ".codex/hooks.json");
    assert_eq!(codex_hooks.as_object().unwrap().len(), 1);
    assert_hooks_registered(&codex_hooks);
    // Claude Code hooks via install-hook: settings + scripts; and the rule
    // that allows oxtail's tools, with setup's record of having added it.
    let settings = json_file(&h, ".claude/settings.json");
    assert_hooks_registered(&settings);
    // SessionStart (identity follows /clear) is Claude Code's only: Codex
    // starts one MCP server per thread.
    assert_eq!(
        settings["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        "\"$HOME/.oxtail/hooks/sessionstart.sh\""
    );
    assert!(codex_hooks["hooks"].get("SessionStart").is_none());
    assert!(h.p(".oxtail/hooks/sessionstart.sh").is_file());
    assert_eq!(settings["permissions"], json!({"allow": ["mcp__oxtail"]}));
    assert_eq!(
        settings["_oxtailApprovals"],
        json!({"permissionsAllow": ["mcp__oxtail"]})
    );
    for line in [
        "Claude approvals  ~/.claude/settings.json: added \"mcp__oxtail\" to permissions.allow",
        "Codex approvals   ~/.codex/config.toml: added default_tools_approval_mode = \"approve\"",
    ] {
        assert!(out.contains(line), "setup must say so: {out}");
    }
    for (_, script) in EVENTS {
        assert!(
            h.p(&format!(".oxtail/hooks/{script}")).is_file(),
            "{script}"
        );
    }
    // New files need no backup.
    assert!(h.backups().is_empty(), "{:?}", h.backups());
    assert!(
        out.contains("/hooks"),
        "the Codex trust step must be named: {out}"
    );
}

#[test]
fn second_run_changes_nothing_and_writes_no_backup() {
    let h = Home::new();
    h.write(".claude.json", "{\n  \"numStartups\": 3\n}");
    h.write(".codex/config.toml", "model = \"o3\"\n");
    ok(&h.oxtail(&["setup"]));
    let first = h.snapshot();
    let backups = h.backups().len();
    let out = ok(&h.oxtail(&["setup"]));
    assert_eq!(h.snapshot(), first, "a second run must not touch any file");
    assert_eq!(h.backups().len(), backups);
    assert!(out.contains("no change"), "{out}");
}

#[test]
fn older_entries_are_updated_keeping_user_settings_byte_for_byte() {
    let h = Home::new();
    let claude = "{\n  \"firstStartTime\": \"2026-01-01T00:00:00.000Z\",\n  \"mcpServers\": {\n    \"mine\": {\n      \"type\": \"stdio\",\n      \"command\": \"/opt/mine\",\n      \"args\": [],\n      \"env\": {}\n    },\n    \"oxtail\": {\n      \"type\": \"stdio\",\n      \"command\": \"npx\",\n      \"args\": [\n        \"-y\",\n        \"oxtail\"\n      ],\n      \"env\": {\n        \"OXTAIL_HOOK_MAX_BODY_CHARS\": \"9000\"\n      }\n    }\n  },\n  \"projects\": {}\n}";
    let toml = "# Codex config — my comments stay\nmodel = \"o3\"  # trailing comment\n\n[mcp_servers.oxtail]\ncommand = \"npx\"\nargs = [\"-y\", \"oxtail\"]\nenv = { TMUX_TMPDIR = \"/x\" }\n\n[profiles.fast]\nmodel = \"o4-mini\" # another\n";
    h.write(".claude.json", claude);
    h.write(".codex/config.toml", toml);
    let out = ok(&h.oxtail(&["setup"]));
    let bin = binary();
    assert!(
        out.contains("was npx -y oxtail") || out.contains("was npx"),
        "{out}"
    );

    let expected_claude = claude
        .replace("\"command\": \"npx\"", &format!("\"command\": \"{bin}\""))
        .replace("[\n        \"-y\",\n        \"oxtail\"\n      ]", "[]");
    assert_eq!(h.read(".claude.json"), expected_claude);

    let new_toml = h.read(".codex/config.toml");
    let expected_toml = toml
        .replace("command = \"npx\"", &format!("command = \"{bin}\""))
        .replace("args = [\"-y\", \"oxtail\"]\n", "")
        .replace(
            "env = { TMUX_TMPDIR = \"/x\" }\n",
            "env = { TMUX_TMPDIR = \"/x\" }\ndefault_tools_approval_mode = \"approve\"\n",
        );
    assert_eq!(new_toml, expected_toml);

    // One backup per changed existing file, holding the old text verbatim.
    let backups = h.backups();
    let claude_backup = backups
        .iter()
        .find(|b| b.starts_with(".claude.json.oxtail-backup."))
        .unwrap();
    assert_eq!(h.read(claude_backup), claude);
    let toml_backup = backups
        .iter()
        .find(|b| b.starts_with(".codex/config.toml.oxtail-backup."))
        .unwrap();
    assert_eq!(h.read(toml_backup), toml);
}

fn assert_refused_untouched(h: &Home, needle: &str) {
    let before = h.snapshot();
    let out = h.oxtail(&["setup"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr must name the file: {stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        h.snapshot(),
        before,
        "a refused setup must write nothing at all"
    );
    assert!(!h.p(".oxtail").exists(), "no hook scripts either");
}

#[test]
fn malformed_claude_json_is_refused_and_nothing_is_written() {
    let h = Home::new();
    h.write(".claude.json", "{ \"numStartups\": 3, ");
    h.write(".codex/config.toml", "model = \"o3\"\n");
    assert_refused_untouched(&h, ".claude.json");
}

#[test]
fn malformed_config_toml_is_refused_and_nothing_is_written() {
    let h = Home::new();
    h.write(".claude.json", "{}\n");
    h.write(".codex/config.toml", "model = \"o3\n[mcp_servers\n");
    assert_refused_untouched(&h, "config.toml");
}

#[test]
fn malformed_settings_or_hooks_json_are_refused_too() {
    let h = Home::new();
    h.write(".claude/settings.json", "{\"hooks\": [] }");
    assert_refused_untouched(&h, "hooks");
    let h = Home::new();
    h.write(".codex/hooks.json", "{\"hooks\": {\"Stop\": ");
    assert_refused_untouched(&h, "hooks.json");
}

#[test]
fn symlinked_config_files_are_edited_through_the_link() {
    let h = Home::new();
    h.write("dotfiles/claude.json", "{\n  \"theme\": \"dark\"\n}\n");
    h.write("dotfiles/codex.toml", "# dotfiles\nmodel = \"o3\"\n");
    symlink(h.p("dotfiles/claude.json"), h.p(".claude.json")).unwrap();
    fs::create_dir_all(h.p(".codex")).unwrap();
    symlink("../dotfiles/codex.toml", h.p(".codex/config.toml")).unwrap();
    ok(&h.oxtail(&["setup"]));
    for link in [".claude.json", ".codex/config.toml"] {
        assert!(
            fs::symlink_metadata(h.p(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} must stay a symlink"
        );
    }
    let v: Value = serde_json::from_str(&h.read("dotfiles/claude.json")).unwrap();
    assert_eq!(v["theme"], "dark");
    assert_eq!(v["mcpServers"]["oxtail"]["command"], binary());
    let t = h.read("dotfiles/codex.toml");
    assert!(t.starts_with("# dotfiles\nmodel = \"o3\"\n"), "{t}");
    assert!(t.contains("[mcp_servers.oxtail]"), "{t}");
    // Backups sit beside the link the user knows, not in the dotfiles dir.
    assert!(
        h.backups().iter().all(|b| !b.starts_with("dotfiles/")),
        "{:?}",
        h.backups()
    );
    assert_eq!(h.backups().len(), 2);
}

#[test]
fn dry_run_writes_nothing() {
    let h = Home::new();
    h.write(".claude.json", "{}\n");
    let before = h.snapshot();
    let out = ok(&h.oxtail(&["setup", "--dry-run"]));
    assert!(out.contains("would be added mcpServers.oxtail"), "{out}");
    assert!(out.contains("would be installed"), "{out}");
    assert!(
        out.contains("would be added \"mcp__oxtail\" to permissions.allow"),
        "{out}"
    );
    assert!(
        out.contains("would be added default_tools_approval_mode = \"approve\""),
        "{out}"
    );
    assert_eq!(h.snapshot(), before);
    assert!(!h.p(".codex").exists() && !h.p(".oxtail").exists());
}

#[test]
fn uninstall_removes_what_setup_added_and_restores_the_user_files() {
    let h = Home::new();
    let toml = "# mine\nmodel = \"o3\"\n\n[mcp_servers.other]\ncommand = \"x\"\n";
    let hooks = "{\n  \"hooks\": {\n    \"Stop\": [\n      {\n        \"hooks\": [\n          {\n            \"type\": \"command\",\n            \"command\": \"/their/stop\"\n          }\n        ]\n      }\n    ]\n  }\n}\n";
    h.write(".codex/config.toml", toml);
    h.write(".codex/hooks.json", hooks);
    h.write(".claude.json", "{\n  \"theme\": \"dark\"\n}\n");
    ok(&h.oxtail(&["setup"]));
    assert!(h.read(".codex/hooks.json").contains("stop.sh"));

    let out = ok(&h.oxtail(&["uninstall"]));
    assert!(out.contains("removed"), "{out}");
    assert_eq!(
        h.read(".codex/config.toml"),
        toml,
        "config.toml back byte for byte"
    );
    assert_eq!(
        h.read(".codex/hooks.json"),
        hooks,
        "foreign hook kept, ours gone"
    );
    let claude = json_file(&h, ".claude.json");
    assert_eq!(claude, json!({"theme": "dark", "mcpServers": {}}));
    let settings = h.read(".claude/settings.json");
    assert!(!settings.contains("oxtail/hooks"), "{settings}");
    assert!(!h.p(".oxtail/hooks/stop.sh").exists());

    // Idempotent, and `setup --uninstall` is the same command.
    let before = h.snapshot();
    ok(&h.oxtail(&["setup", "--uninstall"]));
    assert_eq!(h.snapshot(), before);
}

#[test]
fn no_claude_still_installs_the_files_the_codex_hooks_run() {
    let h = Home::new();
    let out = ok(&h.oxtail(&["setup", "--no-claude"]));
    assert!(
        !h.p(".claude.json").exists() && !h.p(".claude").exists(),
        "{out}"
    );
    assert_hooks_registered(&json_file(&h, ".codex/hooks.json"));
    for (_, script) in EVENTS {
        let p = h.p(&format!(".oxtail/hooks/{script}"));
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert!(mode & 0o100 != 0, "{script} must be executable");
    }
    assert!(
        h.p(".oxtail/hooks/oxtail-lock.sh").is_file(),
        "libraries the hooks source"
    );
    let before = h.snapshot();
    ok(&h.oxtail(&["setup", "--no-claude"]));
    assert_eq!(h.snapshot(), before);
}

#[test]
fn no_approvals_leaves_both_clients_alone_and_doctor_names_the_fix() {
    let h = Home::new();
    let out = ok(&h.oxtail(&["setup", "--no-approvals"]));
    assert!(out.contains("left alone (--no-approvals)"), "{out}");
    assert!(
        !out.contains("Claude approvals") && !out.contains("Codex approvals"),
        "{out}"
    );
    let settings = json_file(&h, ".claude/settings.json");
    assert!(settings.get("permissions").is_none(), "{settings}");
    assert!(settings.get("_oxtailApprovals").is_none(), "{settings}");
    assert!(!h.read(".codex/config.toml").contains("approval"));
    for name in ["claude_approvals", "codex_approvals"] {
        let c = h.doctor_check(name);
        assert_eq!(c["status"], "warn", "{c}");
        assert!(c["fix"].as_str().unwrap().contains("oxtail setup"), "{c}");
    }
    // A later plain setup adds them; doctor is then content.
    ok(&h.oxtail(&["setup"]));
    for name in ["claude_approvals", "codex_approvals"] {
        assert_eq!(h.doctor_check(name)["status"], "ok", "{name}");
    }
    // `uninstall --no-approvals` keeps the Claude Code rule and its record.
    ok(&h.oxtail(&["uninstall", "--no-approvals"]));
    let settings = json_file(&h, ".claude/settings.json");
    assert_eq!(settings["permissions"], json!({"allow": ["mcp__oxtail"]}));
    assert!(settings.get("_oxtailApprovals").is_some());
}

#[test]
fn the_users_own_approvals_are_not_claimed_and_survive_uninstall() {
    let h = Home::new();
    let settings = "{\n  \"permissions\": {\n    \"allow\": [\n      \"Bash(ls)\",\n      \"mcp__oxtail\"\n    ]\n  }\n}\n";
    h.write(".claude/settings.json", settings);
    h.write(
        ".codex/config.toml",
        "[mcp_servers.oxtail]\ncommand = \"npx\"\ndefault_tools_approval_mode = \"prompt\" # I want to be asked\n",
    );
    let out = ok(&h.oxtail(&["setup"]));
    assert!(
        out.contains("permissions.allow has \"mcp__oxtail\" (your rule; uninstall leaves it)"),
        "{out}"
    );
    assert!(
        out.contains(
            "default_tools_approval_mode = \"prompt\" is your setting: left alone — no change"
        ),
        "{out}"
    );
    let v = json_file(&h, ".claude/settings.json");
    assert_eq!(
        v["permissions"],
        json!({"allow": ["Bash(ls)", "mcp__oxtail"]})
    );
    assert!(v.get("_oxtailApprovals").is_none(), "not claimed: {v}");
    assert!(
        h.read(".codex/config.toml")
            .contains("default_tools_approval_mode = \"prompt\" # I want to be asked\n")
    );
    assert_eq!(h.doctor_check("claude_approvals")["status"], "ok");
    assert_eq!(h.doctor_check("codex_approvals")["status"], "info");

    let out = ok(&h.oxtail(&["uninstall"]));
    assert!(out.contains("is yours: left alone"), "{out}");
    let v = json_file(&h, ".claude/settings.json");
    assert_eq!(
        v["permissions"],
        json!({"allow": ["Bash(ls)", "mcp__oxtail"]})
    );
}

#[test]
fn uninstall_takes_back_exactly_the_rule_setup_added() {
    let h = Home::new();
    h.write(
        ".claude/settings.json",
        "{\n  \"model\": \"opus\",\n  \"permissions\": {\n    \"allow\": [\n      \"Read\"\n    ],\n    \"deny\": [\n      \"mcp__oxtail__ask_peer\"\n    ]\n  }\n}\n",
    );
    let original = h.read(".claude/settings.json");
    let out = ok(&h.oxtail(&["setup"]));
    assert!(
        out.contains("your permissions.deny lists \"mcp__oxtail__ask_peer\""),
        "{out}"
    );
    // Hooks and approvals go into settings.json in one write: one backup,
    // holding the user's file.
    let backups = h.backups_of(".claude/settings.json");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(h.read(&backups[0]), original);
    let v = json_file(&h, ".claude/settings.json");
    assert_eq!(
        v["permissions"],
        json!({"allow": ["Read", "mcp__oxtail"], "deny": ["mcp__oxtail__ask_peer"]})
    );
    assert_eq!(h.doctor_check("claude_approvals")["status"], "info");
    ok(&h.oxtail(&["uninstall"]));
    let v = json_file(&h, ".claude/settings.json");
    assert_eq!(
        v["permissions"],
        json!({"allow": ["Read"], "deny": ["mcp__oxtail__ask_peer"]})
    );
    assert!(v.get("_oxtailApprovals").is_none());
    assert_eq!(v["model"], "opus");
}

#[test]
fn a_permissions_shape_setup_cannot_edit_is_refused_unless_approvals_are_left_alone() {
    let h = Home::new();
    h.write(".claude/settings.json", "{\"permissions\": []}\n");
    assert_refused_untouched(&h, "permissions");
    let out = ok(&h.oxtail(&["setup", "--no-approvals"]));
    assert!(out.contains("Installed oxtail hooks"), "{out}");
}

#[test]
fn every_line_names_paths_under_home_as_tilde() {
    let h = Home::new();
    h.write(".codex/config.toml", "model = \"o3\"\n");
    let home = h.home.display().to_string();
    for args in [
        &["setup", "--dry-run"][..],
        &["setup"],
        &["setup"],
        &["doctor"],
        &["doctor", "--json"],
        &["uninstall"],
        &["uninstall"],
    ] {
        let out = h.oxtail(args);
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(&home),
                "`oxtail {}` printed an absolute path under HOME:\n{text}",
                args.join(" ")
            );
        }
    }
}
