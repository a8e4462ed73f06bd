//! `oxtail setup` installs the `/oxtail-join` Claude Code command and the
//! Codex skill (exactly the shipped assets), is idempotent, backs up a file
//! the user edited before replacing it, honours --no-claude / --no-codex /
//! --dry-run; `oxtail uninstall` removes exactly those files; `doctor`
//! checks them.

mod setup_support;

use std::fs;
use std::path::Path;

use setup_support::{Home, ok};

const COMMAND: &str = ".claude/commands/oxtail-join.md";
const SKILL: &str = ".codex/skills/oxtail-join/SKILL.md";

fn asset(rel: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(rel),
    )
    .unwrap()
}

fn doctor_status(h: &Home, name: &str) -> String {
    h.doctor_check(name)["status"].as_str().unwrap().to_string()
}

#[test]
fn setup_installs_both_exactly_and_a_second_run_changes_nothing() {
    let h = Home::new();
    let out = ok(&h.oxtail(&["setup"]));
    assert_eq!(h.read(COMMAND), asset("claude/oxtail-join.md"));
    assert_eq!(h.read(SKILL), asset("codex/oxtail-join/SKILL.md"));
    assert!(out.contains("installed oxtail-join"), "{out}");
    assert!(h.backups().is_empty(), "{:?}", h.backups());
    assert_eq!(doctor_status(&h, "join_command"), "ok");
    assert_eq!(doctor_status(&h, "join_skill"), "ok");

    let before = h.snapshot();
    let out = ok(&h.oxtail(&["setup"]));
    assert!(out.contains("oxtail-join is current — no change"), "{out}");
    assert_eq!(h.snapshot(), before, "a second run must not touch any file");
}

#[test]
fn an_edited_command_is_backed_up_then_replaced() {
    let h = Home::new();
    ok(&h.oxtail(&["setup"]));
    h.write(COMMAND, "my own version\n");
    assert_eq!(doctor_status(&h, "join_command"), "warn");
    let out = ok(&h.oxtail(&["setup"]));
    assert!(out.contains("updated oxtail-join"), "{out}");
    assert_eq!(h.read(COMMAND), asset("claude/oxtail-join.md"));
    let backups = h.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].starts_with(".claude/commands/oxtail-join.md.oxtail-backup."));
    assert_eq!(h.read(&backups[0]), "my own version\n");
    assert_eq!(doctor_status(&h, "join_command"), "ok");
}

#[test]
fn uninstall_removes_only_the_join_files() {
    let h = Home::new();
    h.write(".claude/commands/mine.md", "keep me\n");
    h.write(
        ".codex/skills/mine/SKILL.md",
        "---\nname: mine\ndescription: x\n---\n",
    );
    ok(&h.oxtail(&["setup"]));
    h.write(SKILL, "edited skill\n");
    let out = ok(&h.oxtail(&["uninstall"]));
    assert!(out.contains("removed oxtail-join"), "{out}");
    assert!(!h.p(COMMAND).exists());
    assert!(!h.p(SKILL).exists());
    assert_eq!(h.read(".claude/commands/mine.md"), "keep me\n");
    assert!(h.p(".codex/skills/mine/SKILL.md").exists());
    // The edited skill was kept as a backup beside its old path.
    let backups: Vec<String> = h
        .backups()
        .into_iter()
        .filter(|b| b.contains("SKILL.md"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(h.read(&backups[0]), "edited skill\n");
    assert!(backups[0].starts_with(".codex/skills/oxtail-join/SKILL.md.oxtail-backup."));
    assert_eq!(doctor_status(&h, "join_command"), "warn");

    // Idempotent.
    let before = h.snapshot();
    let out = ok(&h.oxtail(&["uninstall"]));
    assert!(out.contains("not installed — no change"), "{out}");
    assert_eq!(h.snapshot(), before);
}

#[test]
fn client_switches_and_dry_run() {
    let h = Home::new();
    ok(&h.oxtail(&["setup", "--no-codex"]));
    assert!(h.p(COMMAND).is_file());
    assert!(!h.p(".codex").exists());

    let h = Home::new();
    ok(&h.oxtail(&["setup", "--no-claude"]));
    assert!(h.p(SKILL).is_file());
    assert!(!h.p(".claude").exists());

    let h = Home::new();
    let out = ok(&h.oxtail(&["setup", "--dry-run"]));
    assert!(out.contains("would be installed oxtail-join"), "{out}");
    assert!(!h.p(COMMAND).exists() && !h.p(SKILL).exists());
    ok(&h.oxtail(&["setup"]));
    let before = h.snapshot();
    let out = ok(&h.oxtail(&["uninstall", "--dry-run"]));
    assert!(out.contains("would be removed"), "{out}");
    assert_eq!(h.snapshot(), before);
    // Unedited: the skill's directory goes with it, `skills/` stays.
    ok(&h.oxtail(&["uninstall"]));
    assert!(!h.p(".codex/skills/oxtail-join").exists());
    assert!(h.p(".codex/skills").is_dir());
}
