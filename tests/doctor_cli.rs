//! `oxtail doctor [--fix] [--json]` against fixture HOMEs (built binary, temp
//! `HOME`/`CODEX_HOME`, no `codex` on PATH). Fixtures are written with the
//! store's own writers where one exists.

mod setup_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry};
use oxtail::store::{lock, mailbox};
use serde_json::Value;
use setup_support::{Home, ok};

fn doctor_json(h: &Home, args: &[&str]) -> (Option<i32>, Value) {
    let mut argv = vec!["doctor", "--json"];
    argv.extend_from_slice(args);
    let out = h.oxtail(&argv);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json must print JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), v)
}

fn status_of<'a>(v: &'a Value, name: &str) -> Vec<&'a str> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap())
        .collect()
}

fn detail_of(v: &Value, name: &str) -> String {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .map(|c| c["detail"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn set_up(h: &Home) -> Layout {
    ok(&h.oxtail(&["setup"]));
    Layout::at(h.p(".oxtail"))
}

fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    fs::File::open(path).unwrap().set_modified(t).unwrap();
}

#[path = "shared/process.rs"]
mod process;
use process::dead_pid;

fn entry(pid: u32) -> Entry {
    let client = Client {
        client_type: ClientType::ClaudeCode,
        session_id: Some(format!("11111111-1111-1111-1111-{pid:012}")),
        session_id_source: Some("env".into()),
        cwd: "/p".into(),
        ..Client::default()
    };
    Entry {
        capabilities: None,
        ..Entry::new(pid, 1, client)
    }
}

const NO_OPTS: NewMessage<'static> = NewMessage {
    request_id: None,
    reply_to: None,
    source_message_id: None,
    answers_message_id: None,
    to_session_id: None,
};

#[test]
fn a_home_without_any_client_fails_and_is_left_alone() {
    let h = Home::new();
    let before = h.snapshot();
    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["ok"], false);
    assert_eq!(status_of(&v, "clients"), ["fail"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h.snapshot(), before);
    assert!(!h.p(".oxtail").exists());
}

#[test]
fn after_setup_every_check_passes_and_lines_name_each_check() {
    let h = Home::new();
    set_up(&h);
    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    for name in [
        "binary",
        "claude_mcp",
        "claude_approvals",
        "claude_hooks",
        "hook_scripts",
        "codex_mcp",
        "codex_approvals",
        "codex_hooks",
    ] {
        assert_eq!(status_of(&v, name), ["ok"], "{name}: {v:#}");
    }
    // No codex on PATH: the trust step is named, not checked.
    assert_eq!(status_of(&v, "codex_trust"), ["info"]);
    for c in v["checks"].as_array().unwrap() {
        assert_ne!(c["status"], "fail", "{c}");
    }
    let text = String::from_utf8(h.oxtail(&["doctor"]).stdout).unwrap();
    assert!(text.contains("[ok]    claude_mcp"), "{text}");
    assert!(text.contains("All checks passed."), "{text}");
}

#[test]
fn out_of_date_hooks_and_a_missing_binary_are_failures_with_fixes() {
    let h = Home::new();
    let layout = set_up(&h);
    fs::write(layout.hook("stop.sh"), "#!/usr/bin/env bash\n# old\n").unwrap();
    h.write(
        ".claude.json",
        "{\"mcpServers\": {\"oxtail\": {\"type\": \"stdio\", \"command\": \"/nonexistent/oxtail\", \"args\": [], \"env\": {}}}}",
    );
    h.write(".codex/hooks.json", "{\"hooks\": {}}\n");
    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&v, "hook_scripts"), ["fail"]);
    assert!(detail_of(&v, "hook_scripts").contains("stop.sh"));
    assert_eq!(status_of(&v, "claude_hooks"), ["fail"]);
    assert_eq!(status_of(&v, "claude_mcp"), ["fail"]);
    assert!(detail_of(&v, "claude_mcp").contains("/nonexistent/oxtail"));
    assert_eq!(status_of(&v, "codex_hooks"), ["fail"]);
    for c in v["checks"].as_array().unwrap() {
        if c["status"] == "fail" {
            assert!(c["fix"].as_str().is_some_and(|f| !f.is_empty()), "{c}");
        }
    }
    // Setup repairs all of it.
    ok(&h.oxtail(&["setup"]));
    assert_eq!(doctor_json(&h, &[]).0, Some(0));
}

#[test]
fn stale_locks_are_reported_and_only_fix_clears_them() {
    let h = Home::new();
    let layout = set_up(&h);
    let pid = std::process::id();
    fs::create_dir_all(layout.mailboxes_dir()).unwrap();
    let stale = lock::lock_path_for(&layout.mailbox(pid));
    let fresh = lock::lock_path_for(&layout.mailbox(pid + 1));
    fs::create_dir(&stale).unwrap();
    fs::create_dir(&fresh).unwrap();
    age(&stale, 120);

    let before = h.snapshot();
    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&v, "stale_locks"), ["fail"]);
    assert!(detail_of(&v, "stale_locks").contains(&format!("{pid}.jsonl.lock")));
    assert!(!detail_of(&v, "stale_locks").contains(&format!("{}.jsonl.lock", pid + 1)));
    assert!(stale.exists(), "doctor without --fix must not clear");
    assert_eq!(h.snapshot(), before);

    let (code, v) = doctor_json(&h, &["--fix"]);
    assert_eq!(status_of(&v, "stale_locks"), ["fixed"], "{v:#}");
    assert_eq!(code, Some(0), "{v:#}");
    assert!(!stale.exists());
    assert!(fresh.exists(), "a lock younger than 30 s is never touched");
}

#[test]
fn dead_processes_mailboxes_and_registry_entries() {
    let h = Home::new();
    let layout = set_up(&h);
    let dead_empty = dead_pid();
    let dead_full = dead_pid();
    let live = std::process::id();
    // Empty mailboxes: what a drain leaves behind.
    for pid in [dead_empty, live] {
        mailbox::enqueue(&layout, pid, "x", None, &NO_OPTS).unwrap();
        mailbox::drain(&layout, pid).unwrap();
        assert_eq!(fs::metadata(layout.mailbox(pid)).unwrap().len(), 0);
    }
    mailbox::enqueue(&layout, dead_full, "undelivered", None, &NO_OPTS).unwrap();
    registry::register(&layout, &entry(dead_full)).unwrap();
    registry::register(&layout, &entry(live)).unwrap();

    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(0), "dead leftovers are not failures: {v:#}");
    // Undelivered mail needs a person: a warning with the count, the session
    // and what to do. The empty one is only mentioned.
    assert_eq!(status_of(&v, "mailboxes"), ["warn"]);
    let d = detail_of(&v, "mailboxes");
    assert!(
        d.contains(&format!(
            "pid {dead_full} (session 11111111-1111-1111-1111-"
        )),
        "{d}"
    );
    assert!(
        d.contains("1 message(s)") && d.contains("the oldest waiting"),
        "{d}"
    );
    assert!(d.contains("also 1 empty one(s) (harmless)"), "{d}");
    // A dead registry entry is reaped by the next server: info, not a warning.
    assert_eq!(status_of(&v, "registry"), ["info"]);
    assert!(detail_of(&v, "registry").contains(&dead_full.to_string()));
    assert!(layout.mailbox(dead_empty).exists());

    doctor_json(&h, &["--fix"]);
    assert!(
        !layout.mailbox(dead_empty).exists(),
        "empty mailbox of a dead pid removed"
    );
    assert!(
        layout.mailbox(live).exists(),
        "a live server's mailbox stays"
    );
    assert!(
        fs::metadata(layout.mailbox(dead_full)).unwrap().len() > 0,
        "undelivered mail is never removed"
    );
    assert!(
        layout.session_entry(dead_full).exists(),
        "registry entries are not doctor's to remove"
    );
}

#[test]
fn empty_mailboxes_of_killed_processes_are_info_and_fix_removes_them() {
    let h = Home::new();
    let layout = set_up(&h);
    let dead = dead_pid();
    mailbox::enqueue(&layout, dead, "x", None, &NO_OPTS).unwrap();
    mailbox::drain(&layout, dead).unwrap();
    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(status_of(&v, "mailboxes"), ["info"], "{v:#}");
    assert!(detail_of(&v, "mailboxes").contains("1 empty mailbox(es)"));
    let (_, v) = doctor_json(&h, &["--fix"]);
    assert_eq!(status_of(&v, "mailboxes"), ["fixed"], "{v:#}");
    assert!(!layout.mailbox(dead).exists());
    let (_, v) = doctor_json(&h, &[]);
    assert_eq!(status_of(&v, "mailboxes"), ["ok"]);
}

#[test]
fn loose_modes_fail_and_fix_tightens_them() {
    let h = Home::new();
    let layout = set_up(&h);
    let pid = std::process::id();
    mailbox::enqueue(&layout, pid, "x", None, &NO_OPTS).unwrap();
    fs::set_permissions(layout.root(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(layout.mailbox(pid), fs::Permissions::from_mode(0o644)).unwrap();

    let (code, v) = doctor_json(&h, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&v, "modes"), ["fail"]);
    assert!(detail_of(&v, "modes").contains(&format!("{pid}.jsonl 644")));

    let (code, v) = doctor_json(&h, &["--fix"]);
    assert_eq!(status_of(&v, "modes"), ["fixed"]);
    assert_eq!(code, Some(0));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(layout.root()), 0o700);
    assert_eq!(mode(&layout.mailbox(pid)), 0o600);
    assert_eq!(
        fs::read_to_string(layout.mailbox(pid))
            .unwrap()
            .lines()
            .count(),
        1,
        "contents untouched"
    );
}
