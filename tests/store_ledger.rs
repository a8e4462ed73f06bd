//! Received-ledger and delivery behaviours (messaging.md §6, §7 and §14 items
//! 30–45). The retention-cap environment test lives in `store_ledger_env.rs`
//! (its own process, so setting the variable cannot race other tests).

mod store_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use oxtail::delivery;
use oxtail::store::ledger;
use oxtail::store::lock::{self, LockKind, LockOptions};
use oxtail::store::mailbox;
use oxtail::store::message::{Message, NewMessage};
use store_support::{layout, traces};

const RECV: &str = "11111111-1111-1111-1111-111111111111";
const SEND: &str = "22222222-2222-2222-2222-222222222222";
const THIRD: &str = "33333333-3333-3333-3333-333333333333";

fn ask(request_id: &str) -> NewMessage<'_> {
    NewMessage {
        request_id: Some(request_id),
        ..Default::default()
    }
}

#[test]
fn record_then_lookup_returns_the_envelope() {
    let (_t, l) = layout();
    let m = Message::build("q?", Some(SEND), &ask("9b1c2d3e4f5a6b7c"));
    ledger::record(&l, RECV, &m).unwrap();
    let got = ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().unwrap();
    assert_eq!(got, m);
    assert_eq!(got.request_id(), Some("9b1c2d3e4f5a6b7c"));
    let path = l.ledger(RECV);
    assert!(path.ends_with("received/bafde89c041e1756082b933aaf16cad8.jsonl"));
    // Byte-identical to the mailbox line without its newline.
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, m.to_line().unwrap());
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&l.received_dir()), 0o700);
}

#[test]
fn entries_survive_drains_and_direct_truncation() {
    let (_t, l) = layout();
    let m = delivery::deliver(
        &l,
        Some(RECV),
        200,
        "hi",
        Some(SEND),
        &NewMessage::default(),
    )
    .unwrap();
    assert_eq!(mailbox::drain(&l, 200).unwrap(), vec![m.clone()]);
    assert!(ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().is_some());
    let m2 = delivery::deliver(
        &l,
        Some(RECV),
        200,
        "hi2",
        Some(SEND),
        &NewMessage::default(),
    )
    .unwrap();
    fs::write(l.mailbox(200), b"").unwrap(); // the hooks' `: > file`
    assert!(
        ledger::lookup(&l, RECV, m2.id().unwrap())
            .unwrap()
            .is_some()
    );
}

#[test]
fn unknown_ids_and_other_sessions_resolve_to_nothing() {
    let (_t, l) = layout();
    let m = delivery::deliver(
        &l,
        Some(RECV),
        201,
        "private",
        Some(SEND),
        &NewMessage::default(),
    )
    .unwrap();
    let id = m.id().unwrap();
    assert!(
        ledger::lookup(&l, RECV, "ffffffffffffffff")
            .unwrap()
            .is_none()
    );
    assert!(ledger::lookup(&l, SEND, id).unwrap().is_none());
    assert!(ledger::lookup(&l, THIRD, id).unwrap().is_none());
    assert!(ledger::lookup(&l, RECV, id).unwrap().is_some());
}

#[test]
fn lookup_finds_the_right_one_among_ten_newest_first() {
    let (_t, l) = layout();
    let msgs: Vec<_> = (0..10)
        .map(|i| Message::build(&format!("m{i}"), Some(SEND), &NewMessage::default()))
        .collect();
    for m in &msgs {
        ledger::record(&l, RECV, m).unwrap();
    }
    assert_eq!(
        ledger::lookup(&l, RECV, msgs[3].id().unwrap())
            .unwrap()
            .unwrap(),
        msgs[3]
    );
    // The same id twice (re-delivery): the newest record wins.
    let mut again = msgs[3].clone().into_map();
    again.insert("body".into(), "newer".into());
    ledger::record(&l, RECV, &Message::from_map(again)).unwrap();
    let got = ledger::lookup(&l, RECV, msgs[3].id().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(got.body(), Some("newer"));
    let names: Vec<_> = fs::read_dir(l.received_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            // No temp file and no lock held (a parked `.spare` is not a lock).
            .all(|n| !n.contains(".tmp") && (!n.contains(".lock") || n.ends_with(".spare"))),
        "{names:?}"
    );
}

#[test]
fn empty_session_ids_record_and_resolve_nothing() {
    let (_t, l) = layout();
    let m = Message::build("x", None, &NewMessage::default());
    ledger::record(&l, "", &m).unwrap();
    assert!(!l.received_dir().exists());
    assert!(ledger::lookup(&l, "", m.id().unwrap()).unwrap().is_none());
}

#[test]
fn a_recorded_reply_keeps_its_correlation() {
    let (_t, l) = layout();
    let opts = NewMessage {
        reply_to: Some("9b1c2d3e4f5a6b7c"),
        source_message_id: Some("3f2a9c0d11e4b7a8"),
        ..Default::default()
    };
    let r = delivery::deliver(&l, Some(SEND), 202, "answer", Some(RECV), &opts).unwrap();
    let got = ledger::lookup(&l, SEND, r.id().unwrap()).unwrap().unwrap();
    assert_eq!(got.reply_to(), Some("9b1c2d3e4f5a6b7c"));
    assert_eq!(got.source_message_id(), Some("3f2a9c0d11e4b7a8"));
    assert_eq!(got.from_session_id(), Some(RECV));
}

#[test]
fn redelivery_keeps_the_id_and_unknown_keys_in_the_ledger_only() {
    let (_t, l) = layout();
    let m = Message::parse_line(
        r#"{"schema_version":1,"id":"0123456789abcdef","body":"b","enqueued_at":1,"body_bytes":1,"origin":"peer","from_session_id":"22222222-2222-2222-2222-222222222222","source_message_id":"aaaaaaaaaaaaaaaa","x_unknown":true}"#,
    )
    .unwrap();
    delivery::deliver_existing(&l, Some(RECV), 203, &m).unwrap();
    let drained = mailbox::drain(&l, 203).unwrap();
    assert_eq!(drained[0].id(), Some("0123456789abcdef"));
    assert!(!drained[0].fields().contains_key("x_unknown"));
    let got = ledger::lookup(&l, RECV, "0123456789abcdef")
        .unwrap()
        .unwrap();
    assert_eq!(got.source_message_id(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(got.fields()["x_unknown"], true);
    // Without a receiver session id: mailbox only.
    delivery::deliver_existing(&l, None, 204, &m).unwrap();
    assert_eq!(
        mailbox::drain(&l, 204).unwrap()[0].id(),
        Some("0123456789abcdef")
    );
}

#[test]
fn delivery_records_before_the_line_becomes_visible() {
    let (_t, l) = layout();
    let m =
        delivery::deliver(&l, Some(RECV), 205, "x", Some(SEND), &NewMessage::default()).unwrap();
    let d = mailbox::drain(&l, 205).unwrap();
    assert_eq!(d, vec![m.clone()]);
    assert!(ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().is_some());

    // Racing reader: every id a concurrent drain ever sees already resolves.
    let l2 = l.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..40 {
            delivery::deliver(
                &l2,
                Some(RECV),
                206,
                &format!("r{i}"),
                Some(SEND),
                &NewMessage::default(),
            )
            .unwrap();
        }
    });
    let mut seen = 0;
    loop {
        let done = writer.is_finished();
        let batch = mailbox::drain(&l, 206).unwrap();
        for m in &batch {
            assert!(
                ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().is_some(),
                "a shown id did not resolve"
            );
        }
        seen += batch.len();
        if done && batch.is_empty() {
            break;
        }
    }
    assert_eq!(seen, 40);
    writer.join().unwrap();
}

#[test]
fn hazard_append_before_record_is_unresolvable_meanwhile() {
    let (_t, l) = layout();
    let m = Message::build("x", Some(SEND), &NewMessage::default());
    mailbox::requeue(&l, 207, &m).unwrap();
    let shown = mailbox::drain(&l, 207).unwrap();
    assert!(
        ledger::lookup(&l, RECV, shown[0].id().unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_held_ledger_lock_does_not_stop_delivery() {
    let (_t, l) = layout();
    fs::create_dir_all(l.received_dir()).unwrap();
    let held = lock::acquire(
        &lock::lock_path_for(&l.ledger(RECV)),
        &LockKind::Ledger(RECV.into()),
        &LockOptions::default(),
    )
    .unwrap();
    let m = delivery::deliver(
        &l,
        Some(RECV),
        208,
        "through",
        Some(SEND),
        &NewMessage::default(),
    )
    .unwrap();
    assert_eq!(mailbox::drain(&l, 208).unwrap(), vec![m.clone()]);
    let t = traces("received_ledger_write_failed", m.id().unwrap());
    assert_eq!(t.len(), 1);
    assert!(
        t[0]["error"]
            .as_str()
            .unwrap()
            .contains("could not acquire lock at")
    );
    drop(held);
    assert!(ledger::lookup(&l, RECV, m.id().unwrap()).unwrap().is_none());
}

#[test]
fn delivery_without_a_receiver_session_records_nothing() {
    let (_t, l) = layout();
    let m = delivery::deliver(&l, None, 209, "anon", Some(SEND), &NewMessage::default()).unwrap();
    assert_eq!(mailbox::drain(&l, 209).unwrap(), vec![m]);
    assert!(!l.received_dir().exists());
    let m = delivery::deliver(&l, Some(""), 209, "anon", None, &NewMessage::default()).unwrap();
    assert_eq!(mailbox::drain(&l, 209).unwrap(), vec![m]);
    assert!(!l.received_dir().exists());
}

#[test]
fn a_failed_append_fails_the_delivery() {
    let (_t, l) = layout();
    fs::create_dir_all(l.mailboxes_dir()).unwrap();
    let held = lock::acquire(
        &lock::lock_path_for(&l.mailbox(210)),
        &LockKind::Mailbox(210),
        &LockOptions::default(),
    )
    .unwrap();
    let err =
        delivery::deliver(&l, Some(RECV), 210, "x", None, &NewMessage::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not acquire lock at {}",
            lock::lock_path_for(&l.mailbox(210)).display()
        )
    );
    drop(held);
}

#[test]
fn corrupt_ledger_lines_are_skipped_traced_and_kept() {
    let (_t, l) = layout();
    let a = Message::build("a", Some(SEND), &NewMessage::default());
    ledger::record(&l, THIRD, &a).unwrap();
    let path = l.ledger(THIRD);
    let mut content = fs::read(&path).unwrap();
    // Junk, a foreign array, invalid UTF-8, and a torn copy of `a`'s record.
    let torn = format!("{{\"id\":\"{}\",\"body\":\"tor", a.id().unwrap());
    content.extend_from_slice(b"{broken\n[1,2]\n\xff\xfe\n");
    content.extend_from_slice(torn.as_bytes());
    content.push(b'\n');
    fs::write(&path, &content).unwrap();
    let b = Message::build("b", Some(SEND), &NewMessage::default());
    ledger::record(&l, THIRD, &b).unwrap();
    assert_eq!(
        ledger::lookup(&l, THIRD, a.id().unwrap()).unwrap().unwrap(),
        a
    );
    assert_eq!(
        ledger::lookup(&l, THIRD, b.id().unwrap()).unwrap().unwrap(),
        b
    );
    assert!(ledger::lookup(&l, THIRD, "nope").unwrap().is_none());
    // The corrupt candidate record (it holds the wanted id) is traced.
    let t = traces("received_ledger_skip_invalid", THIRD);
    assert!(t.iter().any(|v| v["line"] == torn.as_str()), "{t:?}");
    // Corrupt lines are kept byte-exact by the rewrite (they age out normally).
    let after = fs::read(&path).unwrap();
    assert!(after.windows(5).any(|w| w == b"\n\xff\xfe\n{"));
    assert!(String::from_utf8_lossy(&after).contains("{broken\n[1,2]\n"));
}

#[test]
fn peek_tail_reads_the_newest_records_without_the_lock() {
    let (_t, l) = layout();
    assert!(ledger::peek_tail(&l, RECV, 5).unwrap().is_empty());
    assert!(!l.received_dir().exists(), "a peek creates nothing");
    for i in 0..30 {
        let m = Message::build(&format!("m{i}"), Some(SEND), &NewMessage::default());
        ledger::record(&l, RECV, &m).unwrap();
    }
    let _held = lock::acquire(
        &lock::lock_path_for(&l.ledger(RECV)),
        &LockKind::Ledger(RECV.to_string()),
        &LockOptions::default(),
    )
    .unwrap();
    let tail = ledger::peek_tail(&l, RECV, 5).unwrap();
    let bodies: Vec<&str> = tail.iter().map(|m| m.body().unwrap()).collect();
    assert_eq!(bodies, ["m25", "m26", "m27", "m28", "m29"]);
    assert_eq!(ledger::peek_tail(&l, RECV, 100).unwrap().len(), 30);
    assert!(ledger::peek_tail(&l, "", 5).unwrap().is_empty());
    assert!(ledger::peek_tail(&l, THIRD, 5).unwrap().is_empty());
}

#[test]
fn a_symlinked_ledger_is_refused_by_lookups_and_replaced_by_the_next_record() {
    let (t, l) = layout();
    let old = Message::build("old", Some(SEND), &NewMessage::default());
    let outside = t.path().join("outside.jsonl");
    fs::write(&outside, format!("{}\n", old.to_record_json())).unwrap();
    fs::create_dir_all(l.received_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, l.ledger(RECV)).unwrap();
    let err = ledger::lookup(&l, RECV, old.id().unwrap()).unwrap_err();
    assert!(err.is_symlink(), "{err}");
    let new = Message::build("new", Some(SEND), &NewMessage::default());
    ledger::record(&l, RECV, &new).unwrap();
    let meta = fs::symlink_metadata(l.ledger(RECV)).unwrap();
    assert!(meta.is_file(), "the link was not replaced");
    assert_eq!(
        fs::read_to_string(&outside).unwrap(),
        format!("{}\n", old.to_record_json()),
        "the link's target changed"
    );
    assert_eq!(
        ledger::lookup(&l, RECV, new.id().unwrap()).unwrap(),
        Some(new)
    );
    assert_eq!(ledger::lookup(&l, RECV, old.id().unwrap()).unwrap(), None);
    let link = l.ledger(RECV).display().to_string();
    assert!(
        !traces("store_symlink_replaced", &link).is_empty(),
        "the replacement is traced"
    );
}
