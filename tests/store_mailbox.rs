//! Mailbox behaviours (messaging.md §5 and §14 items 1–29), plus the
//! improvements over the original: union drains deliver an id once, and
//! `requeue_front` keeps delivery order.

mod store_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use oxtail::store::lock::{self, LockKind, LockOptions};
use oxtail::store::mailbox::{self, from_session, reply_from};
use oxtail::store::message::{Message, NewMessage, has_fixed_prefix};
use oxtail::store::paths::Layout;
use store_support::{backdate, layout, traces};

const A: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const B: &str = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

fn none() -> NewMessage<'static> {
    NewMessage::default()
}

fn bodies(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(|m| m.body().unwrap().to_string()).collect()
}

fn raw(layout: &Layout, pid: u32) -> Vec<u8> {
    fs::read(layout.mailbox(pid)).unwrap_or_default()
}

fn append_raw(layout: &Layout, pid: u32, bytes: &[u8]) {
    fs::create_dir_all(layout.mailboxes_dir()).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(layout.mailbox(pid))
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn lock_dir(layout: &Layout, pid: u32) -> std::path::PathBuf {
    lock::lock_path_for(&layout.mailbox(pid))
}

#[test]
fn enqueue_then_drain_leaves_an_empty_file() {
    let (_t, l) = layout();
    let m = mailbox::enqueue(&l, 100, "hello", None, &none()).unwrap();
    assert!(m.is_schema_v1());
    let id = m.id().unwrap();
    assert_eq!(id.len(), 16);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let drained = mailbox::drain(&l, 100).unwrap();
    assert_eq!(drained, vec![m]);
    assert!(l.mailbox(100).exists());
    assert_eq!(fs::metadata(l.mailbox(100)).unwrap().len(), 0);
    assert!(!lock_dir(&l, 100).exists());
}

#[test]
fn files_and_dirs_are_private() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 101, "x", None, &none()).unwrap();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&l.mailboxes_dir()), 0o700);
    assert_eq!(mode(&l.mailbox(101)), 0o600);
    fs::set_permissions(l.mailbox(101), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(l.mailboxes_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    mailbox::enqueue(&l, 101, "y", None, &none()).unwrap();
    assert_eq!(mode(&l.mailboxes_dir()), 0o700);
    assert_eq!(mode(&l.mailbox(101)), 0o600);
}

#[test]
fn three_enqueues_drain_in_order_with_distinct_ids() {
    let (_t, l) = layout();
    for b in ["one", "two", "three"] {
        mailbox::enqueue(&l, 102, b, None, &none()).unwrap();
    }
    let d = mailbox::drain(&l, 102).unwrap();
    assert_eq!(bodies(&d), ["one", "two", "three"]);
    let ids: std::collections::HashSet<_> = d.iter().map(|m| m.id().unwrap()).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn draining_missing_or_empty_files_gives_nothing() {
    let (_t, l) = layout();
    assert!(mailbox::drain(&l, 103).unwrap().is_empty());
    assert!(!l.mailbox(103).exists(), "a missing file is not created");
    fs::write(l.mailbox(103), b"").unwrap();
    assert!(mailbox::drain(&l, 103).unwrap().is_empty());
}

#[test]
fn corrupt_and_foreign_lines_are_skipped_traced_and_cost_nothing_else() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 104, "first", None, &none()).unwrap();
    append_raw(
        &l,
        104,
        b"not json at all\n{\"schema_version\":2,\"id\":\"x\",\"body\":\"v2\"}\n\xff\xfe garbage\n   \n",
    );
    mailbox::enqueue(&l, 104, "second", None, &none()).unwrap();
    let d = mailbox::drain(&l, 104).unwrap();
    assert_eq!(bodies(&d), ["first", "second"]);
    assert_eq!(raw(&l, 104), b"");
    let t = traces("mailbox_drain_skip_invalid", "\"pid\":104");
    let lines: Vec<_> = t
        .iter()
        .map(|v| v["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "not json at all",
            "{\"schema_version\":2,\"id\":\"x\",\"body\":\"v2\"}",
            "\u{fffd}\u{fffd} garbage",
            "   "
        ]
    );
}

#[test]
fn tricky_bodies_round_trip_exactly() {
    let (_t, l) = layout();
    let body = "quote \" backslash \\ newline \n tab \t emoji 😀 nul \u{0} ✓";
    mailbox::enqueue(&l, 105, body, None, &none()).unwrap();
    let d = mailbox::drain(&l, 105).unwrap();
    assert_eq!(d[0].body(), Some(body));
}

#[test]
fn written_line_has_prefix_and_key_order() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 106, "abc", Some(A), &none()).unwrap();
    let text = String::from_utf8(raw(&l, 106)).unwrap();
    assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
    assert!(has_fixed_prefix(&text));
    let m = Message::parse_line(text.trim_end()).unwrap();
    let keys: Vec<_> = m.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "schema_version",
            "id",
            "body",
            "enqueued_at",
            "body_bytes",
            "origin",
            "from_session_id"
        ]
    );
    assert_eq!(m.fields()["body_bytes"], 3);
    assert_eq!(m.fields()["origin"], "peer");
}

#[test]
fn selective_drain_of_the_only_match_empties_the_file() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 107, "m", Some(A), &none()).unwrap();
    let got = mailbox::drain_first_matching(&l, 107, from_session(A)).unwrap();
    assert_eq!(got.unwrap().body(), Some("m"));
    assert_eq!(raw(&l, 107), b"");
}

#[test]
fn selective_drain_without_a_match_leaves_the_file_byte_identical() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 108, "m", Some(B), &none()).unwrap();
    append_raw(&l, 108, b"junk\n\n");
    let before = raw(&l, 108);
    assert!(
        mailbox::drain_first_matching(&l, 108, from_session(A))
            .unwrap()
            .is_none()
    );
    assert_eq!(raw(&l, 108), before);
}

#[test]
fn removing_a_middle_match_keeps_neighbours_byte_exact() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 109, "first", Some(B), &none()).unwrap();
    mailbox::enqueue(&l, 109, "middle", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 109, "third", Some(B), &none()).unwrap();
    // A corrupt line (invalid UTF-8) survives byte-exact too.
    append_raw(&l, 109, b"\xffraw\xfe\n");
    let before = raw(&l, 109);
    let lines: Vec<&[u8]> = before
        .split(|&b| b == b'\n')
        .filter(|x| !x.is_empty())
        .collect();
    let got = mailbox::drain_first_matching(&l, 109, from_session(A)).unwrap();
    assert_eq!(got.unwrap().body(), Some("middle"));
    let mut expected = Vec::new();
    for i in [0, 2, 3] {
        expected.extend_from_slice(lines[i]);
        expected.push(b'\n');
    }
    assert_eq!(raw(&l, 109), expected);
    let after = String::from_utf8_lossy(&raw(&l, 109)).to_string();
    for line in after.lines().take(2) {
        assert!(has_fixed_prefix(line));
    }
    // No temp files left behind; survivors drain in order (§14 item 29).
    let tmp: Vec<_> = fs::read_dir(l.mailboxes_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .collect();
    assert!(tmp.is_empty());
    assert_eq!(
        bodies(&mailbox::drain(&l, 109).unwrap()),
        ["first", "third"]
    );
}

#[test]
fn earliest_match_wins_and_repeated_drains_keep_order() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 110, "a1", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 110, "b1", Some(B), &none()).unwrap();
    mailbox::enqueue(&l, 110, "a2", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 110, "none", None, &none()).unwrap();
    mailbox::enqueue(&l, 110, "a3", Some(A), &none()).unwrap();
    let mut got = Vec::new();
    while let Some(m) = mailbox::drain_first_matching(&l, 110, from_session(A)).unwrap() {
        got.push(m.body().unwrap().to_string());
    }
    assert_eq!(got, ["a1", "a2", "a3"]);
    assert_eq!(bodies(&mailbox::drain(&l, 110).unwrap()), ["b1", "none"]);
}

#[test]
fn selective_drain_on_missing_or_empty_file() {
    let (_t, l) = layout();
    assert!(
        mailbox::drain_first_matching(&l, 111, from_session(A))
            .unwrap()
            .is_none()
    );
    fs::write(l.mailbox(111), b"").unwrap();
    assert!(
        mailbox::drain_first_matching(&l, 111, from_session(A))
            .unwrap()
            .is_none()
    );
}

#[test]
fn reply_match_needs_sender_and_reply_to() {
    let (_t, l) = layout();
    let rt = |r| NewMessage {
        reply_to: Some(r),
        ..Default::default()
    };
    mailbox::enqueue(&l, 112, "wrong-rt", Some(A), &rt("req-x")).unwrap();
    mailbox::enqueue(&l, 112, "wrong-sender", Some(B), &rt("req-1")).unwrap();
    mailbox::enqueue(&l, 112, "right", Some(A), &rt("req-1")).unwrap();
    let got = mailbox::drain_first_matching(&l, 112, reply_from(A, "req-1")).unwrap();
    assert_eq!(got.unwrap().body(), Some("right"));
    assert_eq!(
        bodies(&mailbox::drain(&l, 112).unwrap()),
        ["wrong-rt", "wrong-sender"]
    );
}

#[test]
fn enqueue_against_a_stale_ownerless_lock() {
    let (_t, l) = layout();
    fs::create_dir_all(lock_dir(&l, 113)).unwrap();
    backdate(&lock_dir(&l, 113), 60);
    let t = std::time::Instant::now();
    mailbox::enqueue(&l, 113, "through", None, &none()).unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "hang guard"
    );
    assert!(!lock_dir(&l, 113).exists());
    assert!(!traces("mailbox_lock_stale_clear", "\"pid\":113").is_empty());
    assert_eq!(bodies(&mailbox::drain(&l, 113).unwrap()), ["through"]);
}

#[test]
fn union_drain_pid_order_repeats_and_skips() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 115, "p115-1", None, &none()).unwrap();
    mailbox::enqueue(&l, 114, "p114-1", None, &none()).unwrap();
    mailbox::enqueue(&l, 115, "p115-2", None, &none()).unwrap();
    let u = mailbox::drain_many(&l, &[115, 114, 115]);
    assert_eq!(bodies(&u.messages), ["p115-1", "p115-2", "p114-1"]);
    assert_eq!(u.skipped, 0);
    assert_eq!(raw(&l, 114), b"");
    assert_eq!(raw(&l, 115), b"");

    // A fresh lock held on one pid: the other still drains, skipped = 1.
    mailbox::enqueue(&l, 114, "held", None, &none()).unwrap();
    mailbox::enqueue(&l, 115, "free", None, &none()).unwrap();
    let held = lock::acquire(
        &lock_dir(&l, 114),
        &LockKind::Mailbox(114),
        &LockOptions::default(),
    )
    .unwrap();
    let u = mailbox::drain_many(&l, &[114, 115]);
    assert_eq!(bodies(&u.messages), ["free"]);
    assert_eq!(u.skipped, 1);
    drop(held);
    assert_eq!(bodies(&mailbox::drain(&l, 114).unwrap()), ["held"]);
}

#[test]
fn union_drain_delivers_an_id_once_even_if_a_crash_duplicated_it() {
    let (_t, l) = layout();
    let m = mailbox::enqueue(&l, 116, "dup", None, &none()).unwrap();
    mailbox::enqueue(&l, 116, "other", None, &none()).unwrap();
    // Crash mid-migration: the same lines now sit in two mailboxes.
    mailbox::requeue(&l, 117, &m).unwrap();
    let u = mailbox::drain_many(&l, &[116, 117]);
    assert_eq!(bodies(&u.messages), ["dup", "other"]);
    assert_eq!(u.duplicates, 1);
    assert_eq!(
        raw(&l, 117),
        b"",
        "the duplicate is consumed, not left behind"
    );
}

#[test]
fn emptiness_probe() {
    let (_t, l) = layout();
    assert!(!mailbox::has_messages(&l, 118).unwrap());
    mailbox::enqueue(&l, 118, "x", None, &none()).unwrap();
    assert!(mailbox::has_messages(&l, 118).unwrap());
    mailbox::drain(&l, 118).unwrap();
    assert!(!mailbox::has_messages(&l, 118).unwrap());
}

#[test]
fn requeue_preserves_identity() {
    let (_t, l) = layout();
    let opts = NewMessage {
        reply_to: Some("rq"),
        ..Default::default()
    };
    mailbox::enqueue(&l, 119, "again", Some(A), &opts).unwrap();
    let m = mailbox::drain(&l, 119).unwrap().remove(0);
    mailbox::requeue(&l, 119, &m).unwrap();
    let back = mailbox::drain(&l, 119).unwrap().remove(0);
    assert_eq!(back.id(), m.id());
    assert_eq!(back.body(), Some("again"));
    assert_eq!(back.reply_to(), Some("rq"));
    assert_eq!(back.from_session_id(), Some(A));
    assert_eq!(back, m);
}

#[test]
fn requeue_of_an_invalid_record_fails_without_touching_the_lock_or_file() {
    let (_t, l) = layout();
    let bad = Message::parse_line(r#"{"schema_version":1,"id":"XYZ","body":"b"}"#).unwrap();
    assert!(mailbox::requeue(&l, 120, &bad).is_err());
    assert!(mailbox::requeue_many(&l, 120, std::slice::from_ref(&bad)).is_err());
    assert!(mailbox::requeue_front(&l, 120, &[bad]).is_err());
    assert!(!l.mailbox(120).exists());
    assert!(!lock_dir(&l, 120).exists());
    mailbox::requeue_many(&l, 120, &[]).unwrap();
    assert!(!l.mailbox(120).exists());
}

#[test]
fn requeue_front_puts_overflow_ahead_of_newer_mail() {
    let (_t, l) = layout();
    for b in ["1", "2", "3", "4"] {
        mailbox::enqueue(&l, 121, b, Some(A), &none()).unwrap();
    }
    let all = mailbox::drain(&l, 121).unwrap();
    // Reader accepted "1" and "2"; meanwhile "5" arrives; "3","4" go back first.
    mailbox::enqueue(&l, 121, "5", Some(A), &none()).unwrap();
    append_raw(&l, 121, b"torn-tail-without-newline");
    mailbox::requeue_front(&l, 121, &all[2..]).unwrap();
    let text = String::from_utf8(raw(&l, 121)).unwrap();
    assert!(text.ends_with("torn-tail-without-newline\n"), "{text}");
    assert_eq!(bodies(&mailbox::drain(&l, 121).unwrap()), ["3", "4", "5"]);
    // Onto an empty / missing mailbox it is a plain append.
    mailbox::requeue_front(&l, 122, &all[..1]).unwrap();
    assert_eq!(mailbox::drain(&l, 122).unwrap(), all[..1].to_vec());
}

#[test]
fn requeue_many_is_one_block_in_order() {
    let (_t, l) = layout();
    let msgs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|b| Message::build(b, None, &none()))
        .collect();
    mailbox::requeue_many(&l, 123, &msgs).unwrap();
    assert_eq!(mailbox::drain(&l, 123).unwrap(), msgs);
}

#[test]
fn migration_moves_raw_bytes_and_empties_the_source() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 125, "pre-existing", None, &none()).unwrap();
    mailbox::enqueue(&l, 124, "m1", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 124, "m2", Some(A), &none()).unwrap();
    let src = raw(&l, 124);
    assert_eq!(mailbox::migrate(&l, 124, 125).unwrap(), 2);
    assert_eq!(raw(&l, 124), b"");
    assert!(raw(&l, 125).ends_with(&src));
    let d = mailbox::drain(&l, 125).unwrap();
    assert_eq!(bodies(&d), ["pre-existing", "m1", "m2"]);
    assert_eq!(d[1].from_session_id(), Some(A));
    // Twice delivers once.
    assert_eq!(mailbox::migrate(&l, 124, 125).unwrap(), 0);
    assert!(mailbox::drain(&l, 125).unwrap().is_empty());
}

#[test]
fn migration_edge_cases() {
    let (_t, l) = layout();
    assert_eq!(mailbox::migrate(&l, 126, 127).unwrap(), 0);
    mailbox::enqueue(&l, 126, "stay", None, &none()).unwrap();
    let before = raw(&l, 126);
    assert_eq!(mailbox::migrate(&l, 126, 126).unwrap(), 0);
    assert_eq!(raw(&l, 126), before);
    // Whitespace-only source: nothing moved, file untouched.
    fs::write(l.mailbox(128), b"  \n\n").unwrap();
    assert_eq!(mailbox::migrate(&l, 128, 127).unwrap(), 0);
    assert_eq!(raw(&l, 128), b"  \n\n");
    // Invalid lines move too (counted), the torn source tail gets its newline.
    fs::write(l.mailbox(129), b"junk\n\xff\n{\"torn").unwrap();
    assert_eq!(mailbox::migrate(&l, 129, 127).unwrap(), 3);
    assert_eq!(raw(&l, 127), b"junk\n\xff\n{\"torn\n");
}

#[test]
fn migration_with_the_destination_locked_leaves_the_source() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 130, "keep", None, &none()).unwrap();
    let before = raw(&l, 130);
    fs::create_dir_all(l.mailboxes_dir()).unwrap();
    let held = lock::acquire(
        &lock_dir(&l, 131),
        &LockKind::Mailbox(131),
        &LockOptions::default(),
    )
    .unwrap();
    let err = mailbox::migrate(&l, 130, 131).unwrap_err();
    assert!(err.is_lock_timeout(), "{err}");
    assert_eq!(raw(&l, 130), before);
    assert!(!lock_dir(&l, 130).exists(), "source lock released on error");
    drop(held);
}

#[test]
fn torn_tails_never_glue_onto_the_next_record() {
    let (_t, l) = layout();
    // Enqueue onto a torn record.
    append_raw(
        &l,
        132,
        b"{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"to",
    );
    mailbox::enqueue(&l, 132, "new", None, &none()).unwrap();
    assert_eq!(bodies(&mailbox::drain(&l, 132).unwrap()), ["new"]);
    // Requeue onto a torn tail keeps the id.
    let m = Message::build("rq", None, &none());
    append_raw(&l, 132, b"{\"torn");
    mailbox::requeue(&l, 132, &m).unwrap();
    assert_eq!(mailbox::drain(&l, 132).unwrap(), vec![m]);
    // Migration onto a torn destination tail.
    mailbox::enqueue(&l, 133, "migrated", None, &none()).unwrap();
    append_raw(&l, 132, b"{\"torn");
    assert_eq!(mailbox::migrate(&l, 133, 132).unwrap(), 1);
    assert_eq!(bodies(&mailbox::drain(&l, 132).unwrap()), ["migrated"]);
}

#[test]
fn lone_surrogate_lines_are_delivered_not_dropped() {
    let (_t, l) = layout();
    append_raw(
        &l,
        134,
        b"{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"x\\ud800y\",\"enqueued_at\":1,\"body_bytes\":5,\"origin\":\"peer\"}\n",
    );
    let d = mailbox::drain(&l, 134).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].body(), Some("x\u{fffd}y"));
}

#[test]
fn peek_reads_without_the_lock_and_changes_nothing() {
    let (_t, l) = layout();
    assert!(mailbox::peek(&l, 42).unwrap().messages.is_empty());
    assert!(mailbox::list_pids(&l).is_empty());
    assert!(!l.mailboxes_dir().exists(), "a peek creates nothing");
    let m1 = mailbox::enqueue(&l, 42, "one", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 42, "two", Some(B), &none()).unwrap();
    mailbox::requeue(&l, 42, &m1).unwrap(); // a duplicate id stays visible
    append_raw(&l, 42, b"not json\n\n{\"schema_version\":1,\"id\":\"x\"}\n");
    fs::write(l.mailbox(7), b"").unwrap();
    fs::write(l.mailboxes_dir().join("junk.jsonl"), b"x\n").unwrap();
    let before = raw(&l, 42);
    // A held lock (a sender mid-append, a stalled hook) does not block a peek.
    let _held = lock::acquire(
        &lock::lock_path_for(&l.mailbox(42)),
        &LockKind::Mailbox(42),
        &LockOptions::default(),
    )
    .unwrap();
    let p = mailbox::peek(&l, 42).unwrap();
    assert_eq!(bodies(&p.messages), ["one", "two", "one"]);
    assert_eq!(p.unreadable, 2, "the bad line and the body-less record");
    assert_eq!(raw(&l, 42), before);
    assert_eq!(mailbox::list_pids(&l), vec![7, 42]);
}

// Beyond the original: a server that exits cleanly removes its own mailbox
// when it is empty (and only then), under the mailbox lock.

#[test]
fn remove_if_empty_removes_only_an_empty_file_and_leaves_no_lock() {
    let (_t, l) = layout();
    let short = std::time::Duration::from_millis(200);
    assert!(
        !mailbox::remove_if_empty(&l, 140, short, || true).unwrap(),
        "missing file"
    );
    mailbox::enqueue(&l, 140, "kept", None, &none()).unwrap();
    let before = raw(&l, 140);
    assert!(!mailbox::remove_if_empty(&l, 140, short, || true).unwrap());
    assert_eq!(
        raw(&l, 140),
        before,
        "a mailbox holding mail is never removed"
    );
    // A torn or blank line is still content: never removed either.
    append_raw(&l, 141, b"\n");
    assert!(!mailbox::remove_if_empty(&l, 141, short, || true).unwrap());
    assert!(l.mailbox(141).exists());
    mailbox::drain(&l, 140).unwrap();
    assert!(
        !mailbox::remove_if_empty(&l, 140, short, || false).unwrap(),
        "`still` vetoes"
    );
    assert!(l.mailbox(140).exists());
    assert!(mailbox::remove_if_empty(&l, 140, short, || true).unwrap());
    assert!(!l.mailbox(140).exists());
    assert!(!lock_dir(&l, 140).exists(), "the lock goes with the guard");
}

#[test]
fn remove_if_empty_waits_for_the_lock_and_gives_up_without_touching() {
    let (_t, l) = layout();
    mailbox::enqueue(&l, 142, "x", None, &none()).unwrap();
    mailbox::drain(&l, 142).unwrap();
    let held = lock::acquire(
        &lock_dir(&l, 142),
        &LockKind::Mailbox(142),
        &LockOptions::default(),
    )
    .unwrap();
    let short = std::time::Duration::from_millis(50);
    assert!(mailbox::remove_if_empty(&l, 142, short, || true).is_err());
    assert!(l.mailbox(142).exists(), "no removal without the lock");
    held.release();
    // A sender that appends after the removal gets a fresh file: nothing lost.
    assert!(mailbox::remove_if_empty(&l, 142, short, || true).unwrap());
    mailbox::enqueue(&l, 142, "late", None, &none()).unwrap();
    assert_eq!(bodies(&mailbox::drain(&l, 142).unwrap()), ["late"]);
}

#[test]
fn pending_summarises_without_changing_the_file() {
    let (_t, l) = layout();
    assert_eq!(mailbox::pending(&l, 143).unwrap(), None);
    mailbox::enqueue(&l, 143, "one", Some(A), &none()).unwrap();
    mailbox::enqueue(&l, 143, "two", Some(B), &none()).unwrap();
    append_raw(&l, 143, b"not json\n\n");
    let before = raw(&l, 143);
    let p = mailbox::pending(&l, 143).unwrap().unwrap();
    assert_eq!((p.lines, p.messages), (3, 2));
    assert_eq!(p.bytes, before.len() as u64);
    assert!(p.modified.is_some() && p.oldest_enqueued_at.is_some());
    assert_eq!(raw(&l, 143), before);
}

/// A budgeted read keeps per-sender order across drains: while it decides
/// what to hand over, a sender's next message and a concurrent drainer (a
/// hook) wait, so the kept part is never overtaken (a `fault_soak` finding:
/// a hook between the drain and the write-back delivered message 24 before
/// the requeued 23).
#[test]
fn drain_many_keeping_lets_nothing_overtake_what_it_keeps() {
    let (_t, l) = layout();
    for i in 1..=5 {
        mailbox::enqueue(&l, 7, &format!("m{i}"), Some(A), &none()).unwrap();
    }
    let (l2, l3) = (l.clone(), l.clone());
    let mut sender = None;
    let mut hook = None;
    let kept = mailbox::drain_many_keeping(&l, 7, &[7], |msgs| {
        // Both start while the split runs, i.e. while the drain holds the lock.
        sender = Some(std::thread::spawn(move || {
            mailbox::enqueue(&l2, 7, "m6", Some(A), &none()).unwrap();
        }));
        hook = Some(std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            mailbox::drain(&l3, 7)
        }));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut msgs = msgs;
        let keep = msgs.split_off(2);
        (msgs, keep)
    });
    assert_eq!(bodies(&kept.drain.messages), ["m1", "m2"]);
    assert_eq!(kept.kept, 3);
    sender.unwrap().join().unwrap();
    let hooked = hook.unwrap().join().unwrap().unwrap_or_default();
    let mut rest = hooked;
    rest.extend(mailbox::drain(&l, 7).unwrap());
    assert_eq!(
        bodies(&rest),
        ["m3", "m4", "m5", "m6"],
        "nothing overtook the kept part"
    );
}
