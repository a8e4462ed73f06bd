//! Delivery receipts written by the hooks (issue 12): after a PreToolUse or
//! Stop delivery, `~/.oxtail/receipts/<id>` says `via: hook` with the event,
//! the receiving session and server; never when the print failed, never for
//! what stayed queued; write-once; and only plain files under the store.

mod hooks_support;

use std::fs;
use std::process::Stdio;

use hooks_support::*;
use oxtail::store::receipts;

#[test]
fn a_pretooluse_delivery_leaves_one_receipt_per_message() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let a = h.send(100, "one", Some(PEER), None);
        let b = h.send(100, "two", Some(PEER), Some("req-1"));
        let before = oxtail::clock::now_ms();
        let r = run_hook(
            "pretooluse.sh",
            &h,
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
        );
        assert_eq!(message_ids(&r.context()), vec![a.clone(), b.clone()]);
        for id in [&a, &b] {
            let rc = receipts::read(&h.layout, id).expect("receipt");
            assert_eq!(rc.via, receipts::VIA_HOOK);
            assert_eq!(rc.hook_event.as_deref(), Some("PreToolUse"));
            assert_eq!(rc.recipient_session_id.as_deref(), Some(SID));
            assert_eq!(rc.recipient_server_pid, Some(100));
            assert!(
                rc.delivered_at_ms >= before / 1000 * 1000,
                "{} < {before}",
                rc.delivered_at_ms
            );
            let lines = receipt_lines(&h.layout, id);
            assert_eq!(lines.len(), 1, "one line per message: {lines:?}");
            let v = &lines[0];
            assert_eq!(v["schema_version"], 1);
            assert_eq!(
                v["delivered_at"],
                v["delivered_at_ms"].as_i64().unwrap() / 1000
            );
        }
    });
}

#[test]
fn a_stop_delivery_says_stop() {
    each_awk(|awk| {
        let h = Home::with_mail("at the end");
        let r = run_hook(
            "stop.sh",
            &h,
            awk,
            Input::Text(&stop_payload(SID, false)),
            &[],
        );
        let ids = message_ids(&r.reason());
        let rc = receipts::read(&h.layout, &ids[0]).expect("receipt");
        assert_eq!(rc.hook_event.as_deref(), Some("Stop"));
    });
}

#[test]
fn no_receipt_when_the_print_failed_or_the_mail_stayed_queued() {
    each_awk(|awk| {
        let h = Home::with_mail("not shown");
        let id = h.mailbox_text(100);
        let id = id.split("\"id\":\"").nth(1).unwrap()[..16].to_string();
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let r = run_with_stdout(
            &asset("pretooluse.sh"),
            h.path(),
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
            Stdio::from(full),
        );
        assert_eq!(r.code, Some(0));
        assert!(receipts::read(&h.layout, &id).is_none(), "print failed");

        // One message beyond the output cap stays queued: no receipt for it.
        let h = Home::new();
        h.register(100, SID);
        let big = "\"".repeat(4096);
        let first = h.send_at(100, &big, 1_767_225_600);
        let second = h.send_at(100, &big, 1_767_225_601);
        run_hook(
            "pretooluse.sh",
            &h,
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
        );
        assert!(receipts::read(&h.layout, &first).is_some());
        assert!(receipts::read(&h.layout, &second).is_none(), "still queued");
        // A subagent call delivers nothing and records nothing.
        let sub = pre_payload(SID).replacen('{', "{\"agent_id\":\"a1b2c3\",", 1);
        run_hook("pretooluse.sh", &h, awk, Input::Text(&sub), &[]);
        assert!(receipts::read(&h.layout, &second).is_none());
    });
}

#[test]
fn the_first_receipt_wins_and_none_follows_a_link() {
    each_awk(|awk| {
        let h = Home::new();
        h.register(100, SID);
        let id = h.send(100, "again", Some(PEER), None);
        fs::create_dir_all(h.layout.receipts_dir()).unwrap();
        let outside = h.path().join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, receipt_log(&h.layout)).unwrap();
        run_hook(
            "pretooluse.sh",
            &h,
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
        );
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert!(receipts::read(&h.layout, &id).is_none(), "nothing written");
        assert_eq!(
            h.mailbox_text(100),
            "",
            "delivery does not depend on the receipt"
        );

        // A duplicate delivery (same id, e.g. after a crash) keeps the first.
        let h = Home::new();
        h.register(100, SID);
        let id = h.send(100, "twice", Some(PEER), None);
        let line = h.mailbox_text(100);
        run_hook(
            "pretooluse.sh",
            &h,
            awk,
            Input::Text(&pre_payload(SID)),
            &[],
        );
        let first = receipts::read(&h.layout, &id).expect("receipt");
        h.append_raw(100, line.as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(5));
        run_hook(
            "stop.sh",
            &h,
            awk,
            Input::Text(&stop_payload(SID, false)),
            &[],
        );
        assert_eq!(
            receipts::read(&h.layout, &id),
            Some(first),
            "the first wins"
        );
    });
}

/// Without bash 5's EPOCHREALTIME (bash 3.2 on macOS) the renderer's receipt
/// lines take awk's own clock, in whole seconds, under every awk.
#[test]
fn receipt_lines_use_the_awk_clock_without_epochrealtime() {
    each_awk(|awk| {
        let h = Home::with_mail("clock");
        let out = std::process::Command::new(awk.dir.join("awk"))
            .arg("-f")
            .arg(asset("oxtail-hook.awk"))
            .arg(h.layout.mailbox(100))
            .env("OXH_MODE", "render")
            .env("OXH_EVENT", "pretooluse")
            .env("OXH_SID", SID)
            .env("OXH_TMP", ".tmp.test")
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.last().unwrap().starts_with('{'),
            "the envelope is last"
        );
        let line = lines[1];
        let json: serde_json::Value =
            serde_json::from_str(line.split('\t').nth(1).unwrap()).unwrap();
        let ms = json["delivered_at_ms"].as_i64().unwrap();
        let now = oxtail::clock::now_ms();
        assert!((now - ms).abs() < 5_000, "{ms} vs {now}");
        assert_eq!(ms % 1000, 0);
        assert_eq!(json["recipient_server_pid"], 100);
    });
}

/// Crash test: hooks SIGKILLed (with their awk) at random moments never leave
/// a receipt for a message they did not print, and a message not printed is
/// still queued (or was printed: nothing vanishes without being shown).
#[test]
fn killed_hooks_never_leave_a_receipt_for_what_they_did_not_print() {
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    let rounds: u64 = std::env::var("OXTAIL_HOOK_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let killed_early = std::cell::Cell::new(0);
    let completed = std::cell::Cell::new(0);
    each_awk(|awk| {
        for round in 0..rounds {
            let h = Home::new();
            h.register(100, SID);
            let ids: Vec<String> = (0..6)
                .map(|i| h.send_at(100, &format!("m{i}"), 1_767_225_600 + i))
                .collect();
            let mut child = std::process::Command::new("bash")
                .arg(asset("pretooluse.sh"))
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", awk.dir.display()))
                .env("OXTAIL_HOOK_AWK", "awk")
                .env("HOME", h.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(pre_payload(SID).as_bytes());
            drop(stdin);
            // 0..25 ms: before, during and after the render and the print.
            std::thread::sleep(std::time::Duration::from_micros(
                (round * 2654435761) % 25_000,
            ));
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let mut printed = String::new();
            let _ = child.stdout.take().unwrap().read_to_string(&mut printed);
            let status = child.wait().unwrap();
            if status.code().is_some() {
                completed.set(completed.get() + 1);
            } else {
                killed_early.set(killed_early.get() + 1);
            }
            let shown = message_ids(&printed);
            let queued = h.mailbox_text(100);
            for id in &ids {
                let receipt = receipts::read(&h.layout, id).is_some();
                assert!(
                    !receipt || shown.contains(id),
                    "round {round}: receipt for {id} that was not printed ({printed:?})"
                );
                assert!(
                    shown.contains(id) || queued.contains(id.as_str()),
                    "round {round}: {id} neither shown nor queued"
                );
            }
        }
    });
    eprintln!(
        "FIGURES hook_kill: rounds={rounds} killed={} completed={}",
        killed_early.get(),
        completed.get()
    );
}
