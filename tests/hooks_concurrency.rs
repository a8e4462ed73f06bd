//! The hooks drain while the store enqueues: across two sibling mailboxes,
//! with PreToolUse and Stop hooks running concurrently with each other and
//! with writer threads, every message is delivered exactly once.

mod hooks_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hooks_support::*;
use oxtail::store::mailbox;
use oxtail::store::message::NewMessage;

fn run_concurrently(awk: &Awk) {
    let home = Arc::new(Home::new());
    home.register(100, SID);
    home.register(101, SID);
    home.dirs();
    let writers_done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = [100u32, 101]
        .into_iter()
        .map(|pid| {
            let home = Arc::clone(&home);
            thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let body = format!("msg {pid}-{i} \"quoted\" \\ 😀\nline two");
                    // A lock timeout writes nothing, so retrying cannot duplicate.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match mailbox::enqueue(
                            &home.layout,
                            pid,
                            &body,
                            Some(PEER),
                            &NewMessage::default(),
                        ) {
                            Ok(m) => {
                                ids.push(m.id().unwrap().to_string());
                                break;
                            }
                            Err(e) => {
                                assert!(Instant::now() < deadline, "enqueue keeps failing: {e}");
                                thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                    if i % 7 == 0 {
                        thread::sleep(Duration::from_millis(3));
                    }
                }
                ids
            })
        })
        .collect();

    let hooks: Vec<_> = ["pretooluse.sh", "pretooluse.sh", "stop.sh"]
        .into_iter()
        .map(|hook| {
            let home = Arc::clone(&home);
            let done = Arc::clone(&writers_done);
            let awk = awk.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let input = if hook == "stop.sh" {
                        stop_payload(SID, false)
                    } else {
                        pre_payload(SID)
                    };
                    let r = run_hook(hook, &home, &awk, Input::Text(&input), &[]);
                    if !r.stdout.is_empty() {
                        let text = if hook == "stop.sh" {
                            r.reason()
                        } else {
                            r.context()
                        };
                        seen.extend(message_ids(&text));
                    }
                    let empty =
                        home.mailbox_text(100).is_empty() && home.mailbox_text(101).is_empty();
                    if finished && empty {
                        break;
                    }
                    assert!(Instant::now() < deadline, "hooks did not drain in time");
                }
                seen
            })
        })
        .collect();

    let mut sent = Vec::new();
    for w in writers {
        sent.extend(w.join().unwrap());
    }
    writers_done.store(true, Ordering::SeqCst);
    let mut delivered = Vec::new();
    for h in hooks {
        delivered.extend(h.join().unwrap());
    }
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a message was delivered twice"
    );
    let sent_set: HashSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), 80);
    assert_eq!(unique, sent_set, "lost or foreign messages");
}

#[test]
fn hooks_draining_during_enqueues_lose_and_duplicate_nothing() {
    for awk in awks() {
        eprintln!("-- awk = {}", awk.name);
        run_concurrently(awk);
    }
}
