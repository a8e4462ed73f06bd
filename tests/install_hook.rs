//! `install-hook` / `uninstall-hook` and the start-up freshness hint on
//! fixture settings files: absent, empty, with third-party hooks, with an
//! older oxtail marker, malformed, non-object, symlinked; idempotence.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use oxtail::cli::hook_assets::{
    Freshness, HOOK_FILES, HOOK_MARKER_VERSION, assess, freshness_hint, hash16,
};
use oxtail::cli::install_hook::{install_at, uninstall_at};
use oxtail::store::paths::Layout;
use serde_json::{Value, json};

fn settings(home: &Path) -> PathBuf {
    home.join(".claude/settings.json")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

fn write_settings(home: &Path, text: &str) {
    fs::create_dir_all(home.join(".claude")).unwrap();
    fs::write(settings(home), text).unwrap();
}

fn backups(home: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(home.join(".claude")) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".oxtail-backup."))
        .collect()
}

fn commands(v: &Value, event: &str) -> Vec<String> {
    v["hooks"][event]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["hooks"].as_array().unwrap().clone())
        .map(|h| h["command"].as_str().unwrap().to_string())
        .collect()
}

const PRE: &str = "\"$HOME/.oxtail/hooks/pretooluse.sh\"";

#[test]
fn absent_settings_are_created_and_a_rerun_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let report = install_at(home, SystemTime::now()).unwrap();
    assert!(
        report
            .out
            .iter()
            .any(|l| l.contains(&format!("Installed oxtail hooks v{HOOK_MARKER_VERSION}")))
    );
    let v = read_json(&settings(home));
    assert_eq!(v["_oxtailHook"]["version"], HOOK_MARKER_VERSION);
    const { assert!(HOOK_MARKER_VERSION >= 7) };
    assert!(
        v["_oxtailHook"]["installedAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    for h in HOOK_FILES {
        assert_eq!(v["_oxtailHook"]["hashes"][h.id], hash16(h.text));
        let p = home.join(".oxtail/hooks").join(h.file);
        assert_eq!(fs::read_to_string(&p).unwrap(), h.text);
        assert!(fs::metadata(&p).unwrap().permissions().mode() & 0o100 != 0);
    }
    assert_eq!(commands(&v, "PreToolUse"), vec![PRE]);
    assert_eq!(
        commands(&v, "Stop"),
        vec!["\"$HOME/.oxtail/hooks/stop.sh\""]
    );
    assert_eq!(
        commands(&v, "UserPromptSubmit"),
        vec!["\"$HOME/.oxtail/hooks/userpromptsubmit.sh\""]
    );
    assert_eq!(
        commands(&v, "SessionStart"),
        vec!["\"$HOME/.oxtail/hooks/sessionstart.sh\""]
    );
    let group = &v["hooks"]["PreToolUse"][0];
    assert!(group.get("matcher").is_none() && group["hooks"][0].get("timeout").is_none());
    assert!(
        backups(home).is_empty(),
        "no backup of a file that did not exist"
    );

    let before = fs::read(settings(home)).unwrap();
    let report = install_at(home, SystemTime::now()).unwrap();
    assert_eq!(
        report.out,
        vec![format!(
            "oxtail hooks already installed (v{HOOK_MARKER_VERSION}). No changes."
        )]
    );
    assert_eq!(fs::read(settings(home)).unwrap(), before);
    assert!(backups(home).is_empty());

    // A locally edited script is detected and rewritten.
    let pre = home.join(".oxtail/hooks/pretooluse.sh");
    fs::write(&pre, "#!/bin/sh\n").unwrap();
    let report = install_at(home, SystemTime::now()).unwrap();
    assert!(
        report.out[0].contains("rewrote the hook files"),
        "{:?}",
        report.out
    );
    assert_eq!(fs::read_to_string(&pre).unwrap(), HOOK_FILES[0].text);
    assert_eq!(
        fs::read(settings(home)).unwrap(),
        before,
        "settings untouched"
    );
    assert!(backups(home).is_empty());
}

#[test]
fn empty_file_is_an_empty_object_and_is_backed_up() {
    let tmp = tempfile::tempdir().unwrap();
    write_settings(tmp.path(), "  \n");
    install_at(tmp.path(), SystemTime::now()).unwrap();
    assert_eq!(
        commands(&read_json(&settings(tmp.path())), "PreToolUse"),
        vec![PRE]
    );
    let b = backups(tmp.path());
    assert_eq!(b.len(), 1);
    assert_eq!(fs::read_to_string(&b[0]).unwrap(), "  \n");
}

#[test]
fn third_party_hooks_and_key_order_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let original = json!({
        "model": "opus",
        "hooks": {
            "PreToolUse": [{"matcher": "", "hooks": [{"type": "command", "command": "/opt/terminator/hook.sh"}]}],
            "PostToolUse": [{"hooks": [{"type": "command", "command": "/x/post.sh"}]}]
        },
        "env": {"B": "1", "A": "2"},
        "permissions": {"allow": ["Bash"]}
    });
    write_settings(home, &serde_json::to_string_pretty(&original).unwrap());
    let report = install_at(home, SystemTime::now()).unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("1 other hook group"))
    );
    assert!(report.out.iter().any(|l| l.starts_with("Backed up")));
    let v = read_json(&settings(home));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["model", "hooks", "env", "permissions", "_oxtailHook"]
    );
    let env_keys: Vec<&String> = v["env"].as_object().unwrap().keys().collect();
    assert_eq!(env_keys, ["B", "A"]);
    assert_eq!(
        commands(&v, "PreToolUse"),
        vec!["/opt/terminator/hook.sh", PRE]
    );
    assert_eq!(v["hooks"]["PostToolUse"], original["hooks"]["PostToolUse"]);

    uninstall_at(home, SystemTime::now()).unwrap();
    let v = read_json(&settings(home));
    assert_eq!(commands(&v, "PreToolUse"), vec!["/opt/terminator/hook.sh"]);
    assert!(v.get("_oxtailHook").is_none());
    assert_eq!(v["model"], "opus");
    assert!(!home.join(".oxtail/hooks/pretooluse.sh").exists());
    let again = uninstall_at(home, SystemTime::now()).unwrap();
    assert_eq!(
        again.out,
        vec!["oxtail hooks not installed — nothing to do."]
    );
}

#[test]
fn an_older_install_is_replaced_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let old = json!({
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash|Edit", "hooks": [
                    {"type": "command", "command": "~/.oxtail/hooks/pretooluse.sh", "timeout": 30},
                    {"type": "command", "command": "/opt/other.sh"}
                ]},
                {"hooks": [{"type": "command", "command": "/opt/after.sh"}]},
                {"hooks": [{"type": "command", "command": "\"$HOME/.oxtail/hooks/pretooluse.sh\""}]}
            ],
            "Stop": [{"hooks": [{"type": "command", "command": "\"$HOME/.oxtail/hooks/stop.sh\""}]}]
        },
        "_oxtailHook": {"version": 6, "installedAt": "2026-01-01T00:00:00.000Z",
                         "hashes": {"pretooluse": "f64fa3ec67d93e5d", "stop": "ef1bb5ddbcbee4d3",
                                    "userpromptsubmit": "c0dcb2e7ac2ad7f4"}}
    });
    write_settings(home, &serde_json::to_string_pretty(&old).unwrap());
    let stale = assess(home);
    assert!(
        matches!(
            stale,
            Freshness::Stale {
                version_mismatch: true,
                ..
            }
        ),
        "{stale:?}"
    );
    install_at(home, SystemTime::now()).unwrap();
    let v = read_json(&settings(home));
    let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2, "the duplicate oxtail group is collapsed");
    assert_eq!(pre[0]["matcher"], "Bash|Edit");
    assert_eq!(pre[0]["hooks"][0]["command"], PRE);
    assert_eq!(pre[0]["hooks"][0]["timeout"], 30);
    assert_eq!(pre[0]["hooks"][1]["command"], "/opt/other.sh");
    assert_eq!(pre[1]["hooks"][0]["command"], "/opt/after.sh");
    assert_eq!(
        commands(&v, "Stop"),
        vec!["\"$HOME/.oxtail/hooks/stop.sh\""]
    );
    assert_eq!(v["_oxtailHook"]["version"], HOOK_MARKER_VERSION);
    assert_eq!(
        assess(home),
        Freshness::Ok {
            version_mismatch: false
        }
    );
}

#[test]
fn malformed_or_unusable_settings_are_refused_untouched() {
    for text in [
        "{ \"model\": \"opus\", ",
        "not json at all",
        "{\"a\": 1, // comment\n}",
        "[1, 2]",
        "null",
        "{\"hooks\": \"nope\"}",
        "{\"hooks\": {\"PreToolUse\": {}}}",
        "{\"hooks\": {\"Stop\": null}}",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        write_settings(home, text);
        let err = install_at(home, SystemTime::now()).unwrap_err();
        assert!(err.contains("settings.json"), "{err}");
        assert!(err.contains("fix it by hand"), "{err}");
        assert_eq!(fs::read_to_string(settings(home)).unwrap(), text);
        assert!(
            !home.join(".oxtail").exists(),
            "no scripts written for {text:?}"
        );
        assert!(backups(home).is_empty());
        // Uninstall refuses what it cannot parse; an odd `hooks` shape holds
        // nothing of ours, so there is nothing to do.
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => assert!(uninstall_at(home, SystemTime::now()).is_ok()),
            _ => {
                let err = uninstall_at(home, SystemTime::now()).unwrap_err();
                assert!(err.contains("settings.json"));
            }
        }
        assert_eq!(fs::read_to_string(settings(home)).unwrap(), text);
    }
}

#[test]
fn a_symlinked_settings_file_is_edited_through_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let dotfiles = home.join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    let real = dotfiles.join("claude-settings.json");
    fs::write(&real, "{\"model\": \"opus\"}\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir_all(home.join(".claude")).unwrap();
    symlink(&real, settings(home)).unwrap();
    install_at(home, SystemTime::now()).unwrap();
    assert!(
        fs::symlink_metadata(settings(home))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let v = read_json(&real);
    assert_eq!(v["model"], "opus");
    assert_eq!(commands(&v, "PreToolUse"), vec![PRE]);
    assert_eq!(
        fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640
    );
    uninstall_at(home, SystemTime::now()).unwrap();
    assert!(
        fs::symlink_metadata(settings(home))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(read_json(&real).get("_oxtailHook").is_none());
}

#[test]
fn uninstall_without_settings_still_removes_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    install_at(home, SystemTime::now()).unwrap();
    fs::remove_file(settings(home)).unwrap();
    let report = uninstall_at(home, SystemTime::now()).unwrap();
    assert!(report.out[0].starts_with("No "), "{:?}", report.out);
    assert!(report.out.iter().any(|l| l.contains("Removed 9 file(s)")));
    assert!(!home.join(".oxtail/hooks").exists());
    assert!(!settings(home).exists());
}

#[test]
fn freshness_follows_marker_and_installed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let layout = Layout::at(home.join(".oxtail"));
    assert_eq!(assess(home), Freshness::Absent);
    assert!(freshness_hint(&layout).unwrap().contains("install-hook"));
    write_settings(home, "{\"hooks\": {}}");
    assert_eq!(assess(home), Freshness::Absent);
    write_settings(home, "{ this is not valid json _oxtailHook");
    assert!(matches!(
        assess(home),
        Freshness::Absent | Freshness::Unknown
    ));
    write_settings(home, "{\"_oxtailHook\": \"x\"}");
    assert_eq!(assess(home), Freshness::Absent);

    fs::remove_file(settings(home)).unwrap();
    install_at(home, SystemTime::now()).unwrap();
    assert_eq!(
        assess(home),
        Freshness::Ok {
            version_mismatch: false
        }
    );
    assert_eq!(freshness_hint(&layout), None);

    // Marker hash drift.
    let mut v = read_json(&settings(home));
    v["_oxtailHook"]["hashes"]["pretooluse"] = json!("183df30748928208");
    fs::write(settings(home), serde_json::to_string(&v).unwrap()).unwrap();
    match assess(home) {
        Freshness::Stale { drifted, .. } => assert_eq!(drifted, vec!["pretooluse"]),
        other => panic!("{other:?}"),
    }
    let hint = freshness_hint(&layout).unwrap();
    assert!(
        hint.contains("pretooluse") && hint.contains("install-hook"),
        "{hint}"
    );

    // Version only: still ok, flagged.
    install_at(home, SystemTime::now()).unwrap();
    let mut v = read_json(&settings(home));
    v["_oxtailHook"]["version"] = json!(HOOK_MARKER_VERSION - 1);
    fs::write(settings(home), serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(
        assess(home),
        Freshness::Ok {
            version_mismatch: true
        }
    );

    // A missing installed file is stale too.
    fs::remove_file(home.join(".oxtail/hooks/oxtail-lock.sh")).unwrap();
    match assess(home) {
        Freshness::Stale { drifted, .. } => assert_eq!(drifted, vec!["lock"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cli_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let run = |sub: &str| {
        Command::new(env!("CARGO_BIN_EXE_oxtail"))
            .arg(sub)
            .env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let ok = run("install-hook");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("uninstall-hook"));
    write_settings(home, "{ broken");
    let bad = run("install-hook");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid JSON"));
    assert_eq!(fs::read_to_string(settings(home)).unwrap(), "{ broken");
    fs::remove_file(settings(home)).unwrap();
    assert!(run("uninstall-hook").status.success());
}

/// Version-bump guard: when a shipped hook file changes, this table fails;
/// update it AND bump `HOOK_MARKER_VERSION` (installed copies only change
/// when users re-run install-hook, which the freshness hint asks them to do).
#[test]
fn shipped_hook_hashes_match_the_marker_version() {
    let table: [(&str, &str); 9] = [
        ("pretooluse", "5d7911e2852e2987"),
        ("stop", "a54fd75b4d6740ad"),
        ("userpromptsubmit", "8f3c4c7df806ed03"),
        ("sessionstart", "3a00f8096085e8c8"),
        ("idlewatch", "183df30748928208"),
        ("common", "3fa394655feba5d0"),
        ("deliver", "3b65870d4673bcc1"),
        ("awk", "e6249f73fc4185af"),
        ("lock", "11bd46d172f08d7e"),
    ];
    assert_eq!(HOOK_MARKER_VERSION, 15);
    for (h, (id, want)) in HOOK_FILES.iter().zip(table) {
        assert_eq!(h.id, id);
        assert_eq!(
            hash16(h.text),
            want,
            "{} changed: bump HOOK_MARKER_VERSION",
            h.file
        );
    }
}

/// Issue 13: the idle watcher is registered only for a Claude Code whose
/// program carries the `asyncRewake` option (detected, never assumed), with
/// `asyncRewake: true` and a timeout, next to stop.sh on Stop; the binary it
/// runs is recorded beside the hooks; a client without the option gets none
/// (and an earlier registration is taken out).
#[test]
fn install_hook_registers_the_idle_watcher_only_for_a_claude_that_supports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let fake = home.join("claude-fake");
    let run = |claude: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_oxtail"))
            .arg("install-hook")
            .env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/bin:/bin")
            .env("OXTAIL_CLAUDE_BIN", claude)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    fs::write(&fake, "x asyncRewake:M().optional() y").unwrap();
    let text = run(&fake);
    assert!(text.contains("Idle watcher registered"), "{text}");
    let v = read_json(&settings(home));
    let stop = v["hooks"]["Stop"].as_array().unwrap();
    let watcher: Vec<&Value> = stop
        .iter()
        .flat_map(|g| g["hooks"].as_array().unwrap())
        .filter(|h| h["command"] == "\"$HOME/.oxtail/hooks/idlewatch.sh\"")
        .collect();
    assert_eq!(watcher.len(), 1);
    assert_eq!(watcher[0]["asyncRewake"], true);
    assert_eq!(watcher[0]["timeout"], 3600);
    assert!(commands(&v, "Stop").contains(&"\"$HOME/.oxtail/hooks/stop.sh\"".to_string()));
    assert_eq!(v["_oxtailHook"]["idleWatch"], true);
    assert!(
        !commands(&v, "PreToolUse")
            .iter()
            .any(|c| c.contains("idlewatch"))
    );
    let bin = fs::read_to_string(home.join(".oxtail/hooks/oxtail-bin.path")).unwrap();
    assert!(Path::new(bin.trim_end()).is_file(), "{bin}");
    let mode = fs::metadata(home.join(".oxtail/hooks/idlewatch.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o100, 0);
    assert!(run(&fake).contains("No changes"), "a rerun changes nothing");

    fs::write(&fake, "#!/bin/sh\necho old claude\n").unwrap();
    let text = run(&fake);
    assert!(text.contains("Idle watcher not registered"), "{text}");
    let v = read_json(&settings(home));
    assert!(!commands(&v, "Stop").iter().any(|c| c.contains("idlewatch")));
    assert_eq!(v["_oxtailHook"]["idleWatch"], false);
    assert!(run(&home.join("missing")).contains("No changes"));
}
