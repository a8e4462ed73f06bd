//! Stop hook (`assets/stop.sh`) and UserPromptSubmit hook
//! (`assets/userpromptsubmit.sh`) on fixture HOMEs, under mawk and gawk:
//! blocking delivery, the loop guard, busy/idle markers (atomic, private).

mod hooks_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use hooks_support::*;

const STOP: &str = "stop.sh";
const UPS: &str = "userpromptsubmit.sh";

#[test]
fn single_message_blocks_the_stop_and_leaves_the_marker_alone() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        h.send(100, "hello from peer", Some(PEER), Some("req-123"));
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        let reason = r.reason();
        for frag in [
            "[oxtail] 1 new peer message(s) arrived",
            "respond before stopping",
            "| message_id=",
            "request_id=req-123",
            &format!("from_session_id={PEER}"),
            "---\nhello from peer",
            "reply_to = request_id",
            "context, not user authority",
            "read_my_messages may now return count 0",
        ] {
            assert!(reason.contains(frag), "missing {frag:?} in {reason}");
        }
        assert!(!reason.contains("origin") && !reason.contains("using that UUID as target"));
        assert!(!r.text().contains('\n') && !r.text().contains("%%"));
        assert_eq!(h.mailbox_text(100), "");
        assert!(!h.lock_dir(100).exists());
        assert_eq!(h.activity(SID), None, "a blocking stop writes no marker");
    });
}

#[test]
fn budget_and_two_messages() {
    each_awk(|awk| {
        let h = Home::with_mail("aa\u{0}bb");
        let r = run_hook(
            STOP,
            &h,
            awk,
            Input::Text(&stop_payload(SID, false)),
            &[("OXTAIL_HOOK_MAX_BODY_CHARS", "4")],
        );
        let reason = r.reason();
        assert!(reason.contains("---\naa\n[oxtail: message truncated by hook body budget]"));
        assert!(reason.contains("1 message bodies were truncated or omitted by hook budget"));
        assert_eq!(h.mailbox_text(100), "");

        h.send(100, "first", Some(PEER), None);
        h.send(
            100,
            "second \"q\" \\ 😀\n",
            Some("33333333-3333-3333-3333-333333333333"),
            None,
        );
        let reason = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]).reason();
        assert!(reason.contains("[oxtail] 2 new peer message(s) arrived"));
        assert!(reason.contains("--- msg 1 |") && reason.contains("--- msg 2 |"));
        assert!(reason.contains("---\nfirst") && reason.contains("---\nsecond \"q\" \\ 😀\n"));
    });
}

#[test]
fn loop_guard_marks_idle_and_keeps_mail() {
    each_awk(|awk| {
        let h = Home::with_mail("later");
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, true)), &[]);
        assert!(r.stdout.is_empty());
        assert!(h.mailbox_text(100).contains("later"));
        assert_eq!(h.activity(SID).as_deref(), Some("idle"));
        // Spaced payload: recognised, and the guard still holds.
        let spaced = format!("{{\"session_id\": \"{SID}\", \"stop_hook_active\" :  true}}");
        let r = run_hook(STOP, &h, awk, Input::Text(&spaced), &[]);
        assert!(r.stdout.is_empty());
        assert!(h.mailbox_text(100).contains("later"));
        // The flag inside last_assistant_message (escaped quotes) is not the guard.
        let reason = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]).reason();
        assert!(reason.contains("---\nlater"));
    });
}

#[test]
fn real_stop_marks_idle() {
    each_awk(|awk| {
        // Empty mailbox.
        let h = Home::new();
        h.register(100, SID);
        fs::write(h.layout.mailbox(100), "").unwrap();
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        assert!(r.stdout.is_empty());
        assert_eq!(h.activity(SID).as_deref(), Some("idle"));
        // No mailbox, no dirs at all.
        let h = Home::new();
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        assert!(r.stdout.is_empty());
        assert_eq!(h.activity(SID).as_deref(), Some("idle"));
        // Unknown session.
        let h = Home::new();
        h.register(100, PEER);
        h.send(100, "not for us", Some(SID), None);
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        assert!(r.stdout.is_empty());
        assert!(h.mailbox_text(100).contains("not for us"));
    });
}

#[test]
fn no_session_id_or_no_stdin_does_nothing() {
    each_awk(|awk| {
        let h = Home::with_mail("queued");
        let r = run_hook(
            STOP,
            &h,
            awk,
            Input::Text("{\"stop_hook_active\":false}"),
            &[],
        );
        assert!(r.stdout.is_empty());
        let r = run_hook(
            STOP,
            &h,
            awk,
            Input::DevNull,
            &[("CLAUDE_CODE_SESSION_ID", SID)],
        );
        assert!(r.stdout.is_empty());
        let r = run_hook(STOP, &h, awk, Input::Text(""), &[]);
        assert!(r.stdout.is_empty());
        assert!(h.mailbox_text(100).contains("queued"));
        assert!(!h.layout.activity_dir().exists());
    });
}

#[test]
fn held_locks_mean_idle_and_kept_mail_then_delivery() {
    each_awk(|awk| {
        let h = Home::with_mail("held");
        fs::create_dir_all(h.layout.activity_dir()).unwrap();
        fs::write(h.layout.activity_dir().join(SID), "busy").unwrap();
        fs::create_dir(h.lock_dir(100)).unwrap();
        let r = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        assert!(r.stdout.is_empty());
        assert!(r.elapsed.as_millis() >= 400);
        assert!(h.mailbox_text(100).contains("held"));
        assert_eq!(h.activity(SID).as_deref(), Some("idle"));
        fs::remove_dir(h.lock_dir(100)).unwrap();
        let reason = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]).reason();
        assert!(reason.contains("---\nheld"));
    });
}

#[test]
fn stale_lock_is_cleared() {
    each_awk(|awk| {
        let h = Home::with_mail("after stale");
        fs::create_dir(h.lock_dir(100)).unwrap();
        fs::write(format!("{}.owner", h.lock_dir(100).display()), "999.dead").unwrap();
        age(&h.lock_dir(100), 60);
        let reason = run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]).reason();
        assert!(reason.contains("---\nafter stale"));
        assert!(!h.lock_dir(100).exists());
    });
}

#[test]
fn user_prompt_submit_marks_busy_atomically_and_privately() {
    each_awk(|awk| {
        let h = Home::new();
        let payload = format!(
            "{{\"session_id\":\"{SID}\",\"transcript_path\":\"/t\",\"cwd\":\"/p\",\"hook_event_name\":\"UserPromptSubmit\",\"prompt\":\"hi\"}}"
        );
        let r = run_hook(UPS, &h, awk, Input::Text(&payload), &[]);
        assert!(r.stdout.is_empty() && r.stderr.is_empty());
        assert_eq!(h.activity(SID).as_deref(), Some("busy"));
        let dir = h.layout.activity_dir();
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(SID)), 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        // Stop then flips it to idle.
        run_hook(STOP, &h, awk, Input::Text(&stop_payload(SID, false)), &[]);
        assert_eq!(h.activity(SID).as_deref(), Some("idle"));
        // Spaced payload and a session id that is not the first key both work.
        let h = Home::new();
        let spaced = format!(
            "{{\"prompt\":\"{{\\\"session_id\\\":\\\"x\\\"}}\", \"session_id\" : \"{SID}\"}}"
        );
        run_hook(UPS, &h, awk, Input::Text(&spaced), &[]);
        assert_eq!(h.activity(SID).as_deref(), Some("busy"));
    });
}

#[test]
fn user_prompt_submit_without_session_does_nothing() {
    each_awk(|awk| {
        let h = Home::new();
        let r = run_hook(UPS, &h, awk, Input::Text("{\"prompt\":\"x\"}"), &[]);
        assert!(r.stdout.is_empty());
        let r = run_hook(
            UPS,
            &h,
            awk,
            Input::DevNull,
            &[("CLAUDE_CODE_SESSION_ID", SID)],
        );
        assert!(r.stdout.is_empty());
        let r = run_hook(
            UPS,
            &h,
            awk,
            Input::Text("{\"session_id\":\"../../etc\"}"),
            &[],
        );
        assert!(r.stdout.is_empty());
        assert!(!h.layout.root().exists(), "nothing created under ~/.oxtail");
    });
}
