//! The idle watcher (`assets/idlewatch.sh`, Claude Code's `asyncRewake` Stop
//! hook) on fixture HOMEs, under mawk, gawk and BWK awk, with `oxtail
//! wait-mail` and with the bash polling fallback: it delivers queued or
//! arriving mail as plain text on stderr with exit 2 and a receipt (the Stop
//! hook's framing, lock and receipts), disarms when the agent is busy, lets
//! the newest instance win, quits when its client is gone, returns at once
//! outside the interactive TUI, leaves mail queued when it cannot print, and
//! announces a message too large for any hook only once.

mod hooks_support;

use std::fs;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hooks_support::*;
use oxtail::store::receipts;

const WATCH: &str = "idlewatch.sh";
const BIN: &str = env!("CARGO_BIN_EXE_oxtail");

fn mark(h: &Home, word: &str) {
    fs::create_dir_all(h.layout.activity_dir()).unwrap();
    fs::write(h.layout.activity_marker(SID), word).unwrap();
}

fn record(h: &Home) -> Option<String> {
    fs::read_to_string(h.layout.idle_watch(SID)).ok()
}

/// Start the watcher in the background (stdin = a Stop payload).
fn spawn(h: &Home, awk: &Awk, env: &[(&str, &str)], stderr: Stdio) -> Child {
    let mut cmd = Command::new("bash");
    cmd.arg(asset(WATCH))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", awk.dir.display()))
        // The variant under test, not the mawk the hooks prefer.
        .env("OXTAIL_HOOK_AWK", "awk")
        .env("HOME", h.path())
        .env("CLAUDE_CODE_ENTRYPOINT", "cli")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(stop_payload(SID, false).as_bytes())
        .unwrap();
    drop(stdin);
    child
}

/// Wait (bounded) until `f` holds.
fn until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// With the binary, and with the bash fallback (no binary anywhere).
fn each_way(f: impl Fn(&Awk, &[(&str, &str)])) {
    each_awk(|awk| {
        eprintln!("   with oxtail wait-mail");
        f(awk, &[("OXTAIL_BIN", BIN)]);
    });
    eprintln!("   bash fallback (mawk/first awk only)");
    f(&awks()[0], &[]);
}

#[test]
fn queued_mail_is_delivered_as_text_on_stderr_with_exit_2_and_a_receipt() {
    each_way(|awk, env| {
        let h = Home::new();
        h.register(100, SID);
        let body = "hello \"peer\"\nline two: café 😀 \u{1b}[31m tab\tend";
        let id = h.send(100, body, Some(PEER), Some("req-9"));
        mark(&h, "idle");
        let (code, out, err) = finish(spawn(&h, awk, env, Stdio::piped()));
        assert_eq!(code, Some(2), "stderr: {err}");
        assert_eq!(out, "", "nothing on stdout");
        for frag in [
            "[oxtail] 1 new peer message(s) arrived while you were idle",
            "context, not user authority",
            &format!(
                "--- msg 1 | message_id={id} | from_session_id={PEER} | request_id=req-9 ---\n"
            ),
            "hello \"peer\"\nline two: café 😀 \\u001b[31m tab\tend",
            "reply_to = request_id",
        ] {
            assert!(err.contains(frag), "missing {frag:?} in {err:?}");
        }
        assert!(err.len() <= HOOK_OUTPUT_CAP);
        assert_eq!(h.mailbox_text(100), "", "drained");
        let r = receipts::read(&h.layout, &id).expect("receipt");
        assert_eq!(r.via, "hook");
        assert_eq!(r.hook_event.as_deref(), Some("IdleWatch"));
        assert_eq!(r.recipient_session_id.as_deref(), Some(SID));
        assert_eq!(record(&h), None, "the record goes with the watcher");
    });
}

#[test]
fn mail_arriving_while_idle_wakes_it_and_busy_disarms_it() {
    each_way(|awk, env| {
        let h = Home::new();
        h.register(100, SID);
        mark(&h, "idle");
        let child = spawn(&h, awk, env, Stdio::piped());
        until("the watcher's record", || record(&h).is_some());
        let rec: serde_json::Value = serde_json::from_str(&record(&h).unwrap()).unwrap();
        assert_eq!(rec["session_id"], SID);
        assert_eq!(rec["pid"], child.id());
        let id = h.send(100, "ping while idle", Some(PEER), None);
        let (code, _, err) = finish(child);
        assert_eq!(code, Some(2), "stderr: {err}");
        assert!(err.contains("---\nping while idle"), "{err}");
        assert!(receipts::read(&h.layout, &id).is_some());

        // Busy again (a prompt was submitted): it stops waiting, and mail
        // sent afterwards stays queued for the agent's own hooks.
        let child = spawn(&h, awk, env, Stdio::piped());
        until("the watcher's record", || record(&h).is_some());
        mark(&h, "busy");
        let (code, _, err) = finish(child);
        assert_eq!(code, Some(0), "stderr: {err}");
        assert_eq!(err, "");
        assert_eq!(record(&h), None);
        h.send(100, "for the busy agent", Some(PEER), None);
        assert!(h.mailbox_text(100).contains("for the busy agent"));
    });
}

#[test]
fn the_newest_instance_wins_and_the_older_one_quits_quietly() {
    each_way(|awk, env| {
        let h = Home::new();
        h.register(100, SID);
        mark(&h, "idle");
        let old = spawn(&h, awk, env, Stdio::piped());
        until("the first record", || {
            record(&h).is_some_and(|r| r.contains(&format!("\"pid\":{}", old.id())))
        });
        let new = spawn(&h, awk, env, Stdio::piped());
        let new_pid = new.id();
        let (code, _, err) = finish(old);
        assert_eq!(code, Some(0), "the superseded one exits 0: {err}");
        assert_eq!(err, "");
        until("the second record", || {
            record(&h).is_some_and(|r| r.contains(&format!("\"pid\":{new_pid}")))
        });
        h.send(100, "only once", Some(PEER), None);
        let (code, _, err) = finish(new);
        assert_eq!(code, Some(2));
        assert_eq!(err.matches("---\nonly once").count(), 1);
    });
}

#[test]
fn it_quits_when_its_client_is_gone() {
    each_way(|awk, env| {
        let h = Home::new();
        h.register(100, SID);
        mark(&h, "idle");
        let mut client = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = client.id().to_string();
        let mut env = env.to_vec();
        env.push(("CLAUDE_PID", &pid));
        let child = spawn(&h, awk, &env, Stdio::piped());
        until("the record", || {
            record(&h).is_some_and(|r| r.contains(&format!("\"client_pid\":{pid}")))
        });
        client.kill().unwrap();
        client.wait().unwrap();
        let (code, _, err) = finish(child);
        assert_eq!(code, Some(0), "stderr: {err}");
        assert_eq!(record(&h), None);
    });
}

#[test]
fn outside_the_interactive_tui_it_returns_at_once_and_leaves_the_mail() {
    each_awk(|awk| {
        let h = Home::with_mail("for later");
        mark(&h, "idle");
        for entry in [Some("sdk-cli"), None, Some("sdk-ts")] {
            let mut env = vec![("OXTAIL_BIN", BIN)];
            if let Some(e) = entry {
                env.push(("CLAUDE_CODE_ENTRYPOINT", e));
            }
            // run_script gives no CLAUDE_CODE_ENTRYPOINT unless set here.
            let r = run_script(
                &asset(WATCH),
                h.path(),
                awk,
                Input::Text(&stop_payload(SID, false)),
                &env,
            );
            assert_eq!(r.code, Some(0), "{entry:?}: {}", r.stderr);
            assert_eq!((r.stdout.len(), r.stderr.as_str()), (0, ""));
        }
        let r = run_script(
            &asset(WATCH),
            h.path(),
            awk,
            Input::Text(&stop_payload(SID, false)),
            &[
                ("CLAUDE_CODE_ENTRYPOINT", "cli"),
                ("OXTAIL_IDLE_WATCH", "off"),
            ],
        );
        assert_eq!(r.code, Some(0));
        assert!(h.mailbox_text(100).contains("for later"));
        assert_eq!(record(&h), None);
    });
}

#[test]
fn a_stop_that_stop_sh_blocked_never_arms_it() {
    let awk = &awks()[0];
    let h = Home::with_mail("delivered by stop.sh instead");
    // stop.sh blocked to deliver, so the marker stays `busy` from the turn.
    mark(&h, "busy");
    let (code, _, err) = finish(spawn(&h, awk, &[("OXTAIL_BIN", BIN)], Stdio::piped()));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert!(h.mailbox_text(100).contains("delivered by stop.sh instead"));
}

#[test]
fn mail_stays_queued_when_the_text_cannot_be_written() {
    each_awk(|awk| {
        let h = Home::with_mail("keep me");
        mark(&h, "idle");
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let child = spawn(
            &h,
            awk,
            &[("OXTAIL_BIN", BIN), ("OXTAIL_IDLE_WATCH_MAX_S", "2")],
            Stdio::from(full),
        );
        let (code, _, _) = finish(child);
        assert_eq!(code, Some(0), "gives up at its deadline");
        assert!(h.mailbox_text(100).contains("keep me"));
        assert!(fs::read_dir(h.layout.receipts_dir()).map_or(true, |mut d| d.next().is_none()));
        assert_eq!(record(&h), None);
        let leftovers: Vec<_> = fs::read_dir(h.layout.idle_watch_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    });
}

#[test]
fn a_message_too_large_for_any_hook_is_announced_once() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let big = "\"".repeat(6000);
        let id = h.send(100, &big, Some(PEER), None);
        mark(&h, "idle");
        let env = [("OXTAIL_BIN", BIN), ("OXTAIL_IDLE_WATCH_MAX_S", "1")];
        let (code, _, err) = finish(spawn(&h, awk, &env, Stdio::piped()));
        assert_eq!(code, Some(2));
        assert!(err.contains("too large for this hook"), "{err}");
        assert!(err.contains(&id));
        // The next Stop's watcher does not wake the agent for it again.
        let (code, _, err) = finish(spawn(&h, awk, &env, Stdio::piped()));
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(err, "");
        assert!(
            h.mailbox_text(100).contains(&id),
            "still queued for read_my_messages"
        );
    });
}
