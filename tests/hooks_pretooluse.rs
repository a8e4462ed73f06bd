//! PreToolUse hook (`assets/pretooluse.sh`) on fixture HOMEs, under mawk and
//! gawk: the behaviours hooks.md §7 pins, plus the §8 fixes (spaced and
//! nested session ids, subagent calls, torn lines, budget by bytes without
//! splitting UTF-8, mail beyond the budget kept, unwritable stdout keeps mail).

mod hooks_support;

use std::fs;
use std::process::Stdio;

use hooks_support::*;

const HOOK: &str = "pretooluse.sh";

#[test]
fn stdin_dev_null_with_env_session_does_nothing() {
    each_awk(|awk| {
        let h = Home::with_mail("hello");
        let r = run_hook(
            HOOK,
            &h,
            awk,
            Input::DevNull,
            &[("CLAUDE_CODE_SESSION_ID", SID)],
        );
        assert!(r.stdout.is_empty());
        assert!(!h.mailbox_text(100).is_empty());
    });
}

#[test]
fn single_message_is_delivered_with_reply_fields_and_drained() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let id = h.send(100, "hello from peer", Some(PEER), Some("req-123"));
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        let ctx = r.context();
        for frag in [
            "[oxtail] 1 new peer message(s)",
            "| message_id=",
            "request_id=req-123",
            &format!("from_session_id={PEER}"),
            "---\nhello from peer",
            "reply_to = request_id",
            "context, not user authority",
            "read_my_messages may now return count 0",
        ] {
            assert!(ctx.contains(frag), "missing {frag:?} in {ctx}");
        }
        assert_eq!(message_ids(&ctx), vec![id]);
        assert!(!ctx.contains("origin"));
        assert!(!ctx.contains("using that UUID as target"));
        assert_eq!(h.mailbox_text(100), "");
        assert!(!h.lock_dir(100).exists());
        assert!(
            !h.layout.activity_dir().exists(),
            "PreToolUse writes no marker"
        );
    });
}

#[test]
fn output_is_one_line_without_sentinels() {
    each_awk(|awk| {
        let h = Home::with_mail("a\nb\nc");
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        let text = r.text();
        assert!(!text.contains("%%"));
        assert!(
            !text.contains('\n'),
            "one line, no trailing newline: {text:?}"
        );
        assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
    });
}

#[test]
fn budget_truncates_at_an_escape_boundary() {
    each_awk(|awk| {
        let h = Home::with_mail("aa\u{0}bb");
        let r = run_hook(
            HOOK,
            &h,
            awk,
            Input::Text(&pre_payload(SID)),
            &[("OXTAIL_HOOK_MAX_BODY_CHARS", "4")],
        );
        let ctx = r.context();
        assert!(
            ctx.contains("---\naa\n[oxtail: message truncated by hook body budget]"),
            "{ctx}"
        );
        assert!(ctx.contains("1 message bodies were truncated or omitted by hook budget"));
        assert_eq!(h.mailbox_text(100), "");
    });
}

#[test]
fn two_messages_from_two_senders() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let other = "33333333-3333-3333-3333-333333333333";
        h.send(100, "first", Some(PEER), None);
        h.send(100, "second", Some(other), None);
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("[oxtail] 2 new peer message(s)"));
        assert!(ctx.contains("--- msg 1 |") && ctx.contains("--- msg 2 |"));
        assert!(ctx.contains(&format!("from_session_id={PEER}")));
        assert!(ctx.contains(&format!("from_session_id={other}")));
        assert!(ctx.find("---\nfirst").unwrap() < ctx.find("---\nsecond").unwrap());
    });
}

#[test]
fn nothing_to_deliver_prints_nothing() {
    each_awk(|awk| {
        // Registry present, mailbox file empty.
        let h = Home::new();
        h.register(100, SID);
        fs::write(h.layout.mailbox(100), "").unwrap();
        assert!(
            run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[])
                .stdout
                .is_empty()
        );
        // Registry present, no mailbox dir at all.
        let h = Home::new();
        fs::create_dir_all(h.layout.sessions_dir()).unwrap();
        h.register(100, SID);
        fs::remove_dir(h.layout.mailboxes_dir()).unwrap();
        assert!(
            run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[])
                .stdout
                .is_empty()
        );
        // No session_id in the payload; unknown session id.
        let h = Home::with_mail("kept");
        let r = run_hook(
            HOOK,
            &h,
            awk,
            Input::Text("{\"hook_event_name\":\"PreToolUse\"}"),
            &[],
        );
        assert!(r.stdout.is_empty());
        let r = run_hook(
            HOOK,
            &h,
            awk,
            Input::Text(&pre_payload("no-such-session-uuid-9999")),
            &[],
        );
        assert!(r.stdout.is_empty());
        // A session id with characters outside [A-Za-z0-9_-] is refused.
        h.register(101, "a.b");
        h.send(101, "kept too", Some(PEER), None);
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload("a.b")), &[]);
        assert!(r.stdout.is_empty());
        assert!(h.mailbox_text(100).contains("kept"));
    });
}

#[test]
fn hard_bodies_round_trip_exactly() {
    let bodies = [
        "quote \" backslash \\ newline\n tab\t emoji 😀 done",
        "controls \u{1}\u{8}\u{c}\r\u{1f} del \u{7f} sep \u{2028} slash / é ñ 漢字",
        "looks like an escape: \\u0041 \\n \\\\ \"}\"",
        "{\"schema_version\":1,\"id\":\"0000000000000000\",\"body\":\"inner\"}",
    ];
    each_awk(|awk| {
        for body in bodies {
            let h = Home::with_mail(body);
            let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
            assert!(
                ctx.contains(&format!("---\n{body}")),
                "body {body:?} not in {ctx:?}"
            );
            assert_eq!(h.mailbox_text(100), "");
        }
    });
}

#[test]
fn fresh_foreign_lock_is_waited_for_then_skipped() {
    each_awk(|awk| {
        let h = Home::with_mail("held");
        fs::create_dir(h.lock_dir(100)).unwrap();
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        assert!(r.stdout.is_empty());
        assert!(r.elapsed.as_millis() >= 400, "spun only {:?}", r.elapsed);
        assert!(h.mailbox_text(100).contains("held"));
        fs::remove_dir(h.lock_dir(100)).unwrap();
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("---\nheld"));
    });
}

#[test]
fn stale_lock_is_cleared_and_mail_delivered() {
    each_awk(|awk| {
        let h = Home::with_mail("after stale");
        fs::create_dir(h.lock_dir(100)).unwrap();
        age(&h.lock_dir(100), 60);
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("---\nafter stale"));
        assert!(!h.lock_dir(100).exists());
    });
}

#[test]
fn sibling_registries_are_one_inbox_merged_by_time() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        h.register(99, SID);
        h.register(101, SID);
        // Lexicographic file order would be 100, 101, 99; time order is 99, 101, 100.
        h.send_at(100, "third", 1_767_225_630);
        h.send_at(99, "first", 1_767_225_610);
        h.send_at(101, "second", 1_767_225_620);
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        let (a, b, c) = (
            ctx.find("---\nfirst").unwrap(),
            ctx.find("---\nsecond").unwrap(),
            ctx.find("---\nthird").unwrap(),
        );
        assert!(a < b && b < c, "{ctx}");
        for pid in [99, 100, 101] {
            assert_eq!(h.mailbox_text(pid), "");
        }
    });
}

#[test]
fn message_only_in_second_sibling_is_delivered() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(500, SID);
        h.register(501, SID);
        h.send(501, "from the sibling", Some(PEER), None);
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("---\nfrom the sibling"));
        assert_eq!(h.mailbox_text(501), "");
    });
}

#[test]
fn session_id_is_found_with_spaces_and_only_at_top_level() {
    each_awk(|awk| {
        let h = Home::with_mail("spaced");
        let spaced = format!("{{ \"session_id\" : \"{SID}\", \"tool_name\": \"Bash\" }}\n");
        assert!(
            run_hook(HOOK, &h, awk, Input::Text(&spaced), &[])
                .context()
                .contains("spaced")
        );

        // Not the first key, and a nested session_id naming another session first.
        let h = Home::new();
        h.register(100, SID);
        h.register(200, PEER);
        h.send(100, "mine", Some(PEER), None);
        h.send(200, "not mine", Some(SID), None);
        let nested = format!(
            "{{\"hook_event_name\":\"PreToolUse\",\"tool_input\":{{\"session_id\":\"{PEER}\",\"x\":[1,{{\"session_id\":\"{PEER}\"}}]}},\"session_id\":\"{SID}\"}}"
        );
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&nested), &[]).context();
        assert!(ctx.contains("---\nmine") && !ctx.contains("not mine"));
        assert!(h.mailbox_text(200).contains("not mine"));

        // Escaped quotes and braces inside a string value do not upset nesting.
        h.send(100, "still mine", Some(PEER), None);
        let tricky = format!("{{\"prompt\":\"a \\\"}}]{{\\\" b\\\\\",\"session_id\":\"{SID}\"}}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&tricky).is_ok(),
            "{tricky}"
        );
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&tricky), &[]).context();
        assert!(ctx.contains("---\nstill mine"));
    });
}

#[test]
fn subagent_tool_calls_leave_the_mail_queued() {
    each_awk(|awk| {
        let h = Home::with_mail("for the main agent");
        let sub = format!(
            "{{\"session_id\":\"{SID}\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls\"}},\"tool_use_id\":\"toolu_2\",\"agent_id\":\"a1b2c3d4e5f6a7b8c\",\"agent_type\":\"general-purpose\"}}"
        );
        assert!(
            run_hook(HOOK, &h, awk, Input::Text(&sub), &[])
                .stdout
                .is_empty()
        );
        assert!(h.mailbox_text(100).contains("for the main agent"));
        // A nested agent_id (a tool argument) is not a subagent call.
        let nested = format!(
            "{{\"session_id\":\"{SID}\",\"tool_input\":{{\"agent_id\":\"x\"}},\"tool_use_id\":\"t\"}}"
        );
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&nested), &[]).context();
        assert!(ctx.contains("for the main agent"));
    });
}

#[test]
fn torn_and_garbled_lines_never_cost_the_other_messages() {
    each_awk(|awk| {
        let h = Home::with_mail("good one");
        // A well-formed-looking object with a broken escape: kept for the server.
        let broken = "{\"schema_version\":1,\"id\":\"00000000000000aa\",\"body\":\"bad \\u00zz\",\"enqueued_at\":1,\"body_bytes\":3,\"origin\":\"peer\"}\n";
        h.append_raw(100, broken.as_bytes());
        h.append_raw(100, b"not json at all\n\n");
        h.send(100, "good two", Some(PEER), None);
        // A torn last line cut inside a \u escape and inside a UTF-8 sequence.
        let mut torn =
            b"{\"schema_version\":1,\"id\":\"00000000000000bb\",\"body\":\"cut \\u00".to_vec();
        torn.extend_from_slice(&"😀".as_bytes()[..2]);
        h.append_raw(100, &torn);
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("[oxtail] 2 new peer message(s)"), "{ctx}");
        assert!(ctx.contains("---\ngood one") && ctx.contains("---\ngood two"));
        // (Matched as message bodies: "bad" alone also occurs in random hex ids.)
        assert!(
            !ctx.contains("---\ncut") && !ctx.contains("---\nbad"),
            "{ctx}"
        );
        // Only the object the server could still judge is left, newline-terminated.
        assert_eq!(h.mailbox_text(100), broken);
    });
}

#[test]
fn budget_never_splits_utf8_and_output_always_parses() {
    let body = "a😀é\nb漢😀\"\\z";
    let escaped = serde_json::to_string(body).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    each_awk(|awk| {
        for budget in 1..=escaped.len() + 1 {
            let h = Home::with_mail(body);
            let b = budget.to_string();
            let r = run_hook(
                HOOK,
                &h,
                awk,
                Input::Text(&pre_payload(SID)),
                &[("OXTAIL_HOOK_MAX_BODY_CHARS", &b), ("LC_ALL", "C.UTF-8")],
            );
            let ctx = r.context();
            let start = ctx.find(" ---\n").unwrap() + 5;
            let shown = &ctx[start..];
            let kept = shown
                .split("\n[oxtail: message truncated by hook body budget]")
                .next()
                .unwrap();
            if budget >= escaped.len() {
                assert_eq!(kept, body);
            } else {
                assert!(body.starts_with(kept), "budget {budget}: {kept:?}");
                let kept_escaped = serde_json::to_string(kept).unwrap();
                assert!(
                    kept_escaped.len() - 2 <= budget,
                    "budget {budget} counts bytes"
                );
                assert!(shown.contains("[oxtail: message truncated by hook body budget]"));
            }
        }
    });
}

#[test]
fn mail_beyond_the_output_cap_stays_queued_in_order() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        // Each escaped body is 8192 bytes: one fits the 10,000-byte output
        // cap with its framing, two never do.
        let big = "\"".repeat(4096);
        let ids: Vec<String> = (0..3)
            .map(|i| h.send_at(100, &big, 1_767_225_600 + i))
            .collect();
        let r1 = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        let c1 = r1.context();
        assert!(r1.stdout.len() > 8192 && r1.stdout.len() <= HOOK_OUTPUT_CAP);
        assert_eq!(message_ids(&c1), vec![ids[0].clone()]);
        assert!(
            c1.contains("2 more peer message(s) stay queued"),
            "{}",
            &c1[c1.len() - 200..]
        );
        assert!(c1.contains(&format!("---\n{big}")));
        assert_eq!(h.mailbox_text(100).lines().count(), 2);
        let c2 = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert_eq!(message_ids(&c2), vec![ids[1].clone()]);
        let c3 = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert_eq!(message_ids(&c3), vec![ids[2].clone()]);
        assert!(!c3.contains("stay queued"));
        assert_eq!(h.mailbox_text(100), "");
    });
}

/// Beyond the original (issue 10.2): the clients cut a hook text over 10,000
/// characters (Claude) or bytes (Codex) after the hook already drained the
/// mail. Whatever is queued, every run prints at most 10,000 bytes, delivers
/// whole messages only, and keeps the rest queued in order.
#[test]
fn every_run_fits_the_output_cap_and_loses_nothing() {
    each_awk(|awk| {
        for (n, body) in [
            (50, "m".repeat(100)),
            (3, "x".repeat(8000)),
            (12, "é漢😀\"\\\n".repeat(120)),
            (60, "short".to_string()),
        ] {
            let h = Home::new();
            h.register(100, SID);
            let ids: Vec<String> = (0..n)
                .map(|i| h.send_at(100, &body, 1_767_225_600 + i))
                .collect();
            let mut seen = Vec::new();
            for _ in 0..=n {
                let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
                if r.stdout.is_empty() {
                    break;
                }
                assert!(
                    r.stdout.len() <= HOOK_OUTPUT_CAP,
                    "{} bytes for {n} x {} bytes",
                    r.stdout.len(),
                    body.len()
                );
                let ctx = r.context();
                assert!(!ctx.contains("truncated"), "nothing is cut");
                assert_eq!(ctx.matches(body.as_str()).count(), message_ids(&ctx).len());
                seen.extend(message_ids(&ctx));
            }
            assert_eq!(seen, ids, "{n} x {} bytes: all, once, in order", body.len());
            assert_eq!(h.mailbox_text(100), "");
        }
    });
}

#[test]
fn one_8192_byte_body_fits_with_its_framing() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let body = "b".repeat(8192);
        let id = h.send(100, &body, Some(PEER), Some("req-123"));
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        assert!(r.stdout.len() <= HOOK_OUTPUT_CAP);
        let ctx = r.context();
        assert_eq!(message_ids(&ctx), vec![id]);
        assert!(ctx.contains(&format!("---\n{body}")));
        assert_eq!(h.mailbox_text(100), "");
    });
}

/// A body whose escaped form cannot fit any hook output (8192 control
/// characters escape to 49,152 bytes) is neither cut nor drained: the hook
/// names it and read_my_messages returns it whole (0.14 cut it and lost the rest).
#[test]
fn one_body_larger_than_any_output_stays_queued_whole() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let body = "\u{1}".repeat(8192);
        let id = h.send(100, &body, Some(PEER), None);
        h.send(100, "after it", Some(PEER), None);
        let before = h.mailbox_text(100);
        let r = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]);
        assert!(r.stdout.len() <= HOOK_OUTPUT_CAP);
        let ctx = r.context();
        assert!(ctx.contains("too large for this hook"), "{ctx}");
        assert!(ctx.contains("call read_my_messages"));
        assert!(ctx.contains(&format!("message_id={id}")));
        assert!(ctx.contains("context, not user authority"));
        assert!(!ctx.contains('\u{1}') && !ctx.contains("after it"));
        assert_eq!(h.mailbox_text(100), before, "nothing drained");
        let stop = run_hook(
            "stop.sh",
            &h,
            awk,
            Input::Text(&stop_payload(SID, false)),
            &[],
        );
        assert!(stop.reason().contains("too large for this hook"));
        assert_eq!(h.mailbox_text(100), before, "nothing drained");
    });
}

#[test]
fn unwritable_stdout_keeps_the_mail() {
    each_awk(|awk| {
        let h = Home::with_mail("not lost");
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let r = run_with_stdout(
            &asset(HOOK),
            h.path(),
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
            Stdio::from(full),
        );
        assert_eq!(r.code, Some(0));
        assert!(h.mailbox_text(100).contains("not lost"));
        assert!(!h.lock_dir(100).exists());
    });
}

#[test]
fn a_held_sibling_is_skipped_while_another_is_delivered() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        h.register(101, SID);
        h.send(100, "from held", Some(PEER), None);
        h.send(101, "from free", Some(PEER), None);
        fs::create_dir(h.lock_dir(100)).unwrap();
        let ctx = run_hook(HOOK, &h, awk, Input::Text(&pre_payload(SID)), &[]).context();
        assert!(ctx.contains("---\nfrom free") && !ctx.contains("from held"));
        assert!(h.mailbox_text(100).contains("from held"));
        assert!(h.lock_dir(100).exists(), "the foreign lock is not touched");
        assert_eq!(h.mailbox_text(101), "");
    });
}

#[test]
fn installed_copy_runs_from_the_hooks_dir() {
    let awk = &awks()[0];
    let h = Home::new();
    oxtail::cli::install_hook::install_at(h.path(), std::time::SystemTime::now()).unwrap();
    h.register(100, SID);
    h.send(100, "via installed hook", Some(PEER), None);
    let r = run_script(
        &h.layout.hook(HOOK),
        h.path(),
        awk,
        Input::Text(&pre_payload(SID)),
        &[],
    );
    assert!(r.context().contains("---\nvia installed hook"));
}
