//! What a server leaves behind when it exits cleanly (stdin EOF or a signal):
//! beyond the original, its own mailbox goes too when it is empty, so
//! `oxtail doctor` stays quiet after ordinary use; a mailbox that still holds
//! mail is kept, and doctor names it.

mod messaging_support;

use std::process::{Command, Output};

use messaging_support::{SID_A, SID_B, Server, World};
use serde_json::{Value, json};

fn two_servers(world: &World) -> (Server, Server) {
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let mut b = world.server(&[]);
    b.claim(SID_B);
    (a, b)
}

/// Run the built `oxtail` CLI in the world's HOME (no `codex` on PATH).
fn cli(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &world.home)
        .env("CODEX_HOME", world.home.join(".codex"))
        .env("TMUX_TMPDIR", &world.tmux_tmpdir)
        .output()
        .unwrap()
}

fn doctor(world: &World) -> Value {
    let out = cli(world, &["doctor", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {v:#}"))
}

#[test]
fn sessions_that_exchanged_mail_and_exited_cleanly_leave_doctor_quiet() {
    let world = World::new();
    assert!(cli(&world, &["setup"]).status.success());
    let (mut a, mut b) = two_servers(&world);
    let layout = world.layout();
    a.tool("send_message", json!({"target": SID_B, "body": "hi"}))
        .json();
    let got = b.tool("read_my_messages", json!({})).json();
    assert_eq!(got["count"], 1);
    b.tool("send_message", json!({"target": SID_A, "body": "back"}))
        .json();
    assert_eq!(a.tool("read_my_messages", json!({})).json()["count"], 1);
    assert!(layout.mailbox(a.pid).exists() && layout.mailbox(b.pid).exists());

    let (pa, pb) = (a.pid, b.pid);
    assert!(a.exit().is_some_and(|s| s.success()));
    assert!(b.signal_exit(libc::SIGTERM).is_some_and(|s| s.success()));
    for pid in [pa, pb] {
        assert!(
            !layout.mailbox(pid).exists(),
            "the empty mailbox of {pid} goes with its server"
        );
        assert!(
            !oxtail::store::lock::lock_path_for(&layout.mailbox(pid)).exists(),
            "and so does its lock"
        );
        assert!(!layout.session_entry(pid).exists());
    }

    let v = doctor(&world);
    for c in v["checks"].as_array().unwrap() {
        if c["name"] == "tmux" {
            continue; // whether tmux is installed is the machine's business
        }
        assert!(
            c["status"] == "ok" || c["status"] == "info",
            "doctor must be quiet after ordinary use: {c}"
        );
    }
    assert_eq!(check(&v, "mailboxes")["status"], "ok");
    assert_eq!(check(&v, "registry")["status"], "ok");
}

#[test]
fn a_mailbox_holding_mail_is_kept_at_exit_and_doctor_says_what_to_do() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let layout = world.layout();
    for body in ["one", "two"] {
        a.tool("send_message", json!({"target": SID_B, "body": body}))
            .json();
    }
    let before = world.mailbox(b.pid);
    let pb = b.pid;
    assert!(b.exit().is_some());
    assert_eq!(world.mailbox(pb), before, "unread mail is never removed");
    assert!(a.exit().is_some());
    assert!(!layout.mailbox(a.pid).exists());

    let v = doctor(&world);
    let c = check(&v, "mailboxes");
    assert_eq!(c["status"], "warn", "{c}");
    let d = c["detail"].as_str().unwrap();
    assert!(
        d.contains(&format!("pid {pb}")) && d.contains("2 message(s)"),
        "{d}"
    );
    assert!(c["fix"].as_str().is_some_and(|f| !f.is_empty()), "{c}");
    // --fix never removes mail.
    cli(&world, &["doctor", "--fix"]);
    assert_eq!(world.mailbox(pb), before);
}
