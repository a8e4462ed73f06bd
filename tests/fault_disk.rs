//! Unwritable stores: a full disk (a tiny tmpfs mounted on `~/.oxtail`, when
//! this machine allows mounting — otherwise the test prints a note and skips
//! that part) and targets of the wrong kind (a file where a directory is
//! expected, a directory where a file is expected — these need no root and no
//! permission bits, which CI as root would ignore).
//!
//! Proven: a send that cannot be stored fails with a clear error naming the
//! cause; nothing already stored is lost or corrupted (by the failed send, by
//! `read_my_messages` or by the PreToolUse hook draining on a full disk); once
//! space is back, sending works again at once (no lock left wedged).

mod fault_support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use fault_support::*;

const SID_R: &str = "d0000000-0000-4000-8000-0000000000aa";
const SID_S: &str = "d0000000-0000-4000-8000-0000000000bb";

/// A tmpfs mounted for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a `size` tmpfs on `dir`; `None` (with a printed note) when the
    /// machine does not allow it.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!(
                "note: cannot mount a tmpfs here (not root, or no mount); skipping the full-disk test"
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` with `dir/filler-*` until ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![b'f'; 1024];
    while f.write_all(&chunk).is_ok() {}
    // Smaller writes take the last partial block too.
    while f.write_all(b"f").is_ok() {}
    filler
}

/// Set `path`'s mtime `secs` seconds into the past.
fn age(path: &Path, secs: u64) {
    let t = std::time::SystemTime::now() - Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn read_all_messages(srv: &mut Server) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..200 {
        let v = srv
            .tool("read_my_messages", json!({}))
            .expect("read_my_messages must not fail");
        let msgs = v["messages"].as_array().unwrap().clone();
        if msgs.is_empty() {
            return out;
        }
        out.extend(msgs);
    }
    panic!("read_my_messages never ran dry");
}

fn bodies(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

/// Send until ok, within a bound far below the 30 s stale window: a lock
/// leaked by the failure would make this time out.
fn send_soon(s: &mut Server, body: &str) -> String {
    let start = Instant::now();
    loop {
        match s.tool("send_message", json!({"target": SID_R, "body": body})) {
            Ok(v) if v["ok"] == true => return v["message_id"].as_str().unwrap().to_string(),
            other => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "sending still fails after space came back (lock leaked?): {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn full_disk_send_fails_clearly_and_loses_nothing() {
    let world = World::new();
    let Some(_mnt) = Tmpfs::mount(world.layout().root(), "256k") else {
        return;
    };
    let mut r = world.server(&[("OXTAIL_READ_MAX_MESSAGES", "2")]);
    let mut s = world.server(&[]);
    r.claim(SID_R);
    s.claim(SID_S);
    let before: Vec<String> = (0..5)
        .map(|i| format!("stored before the disk filled #{i} ✓"))
        .collect();
    for b in &before {
        send_soon(&mut s, b);
    }
    let mailbox = world.layout().mailbox(r.pid);
    let stored = fs::read(&mailbox).unwrap();

    let filler = fill(world.layout().root());
    let big = "B".repeat(8000);
    let mut errors = 0;
    for _ in 0..3 {
        match s.tool("send_message", json!({"target": SID_R, "body": big})) {
            Err(text) => {
                errors += 1;
                assert!(
                    text.contains("No space left") || text.contains("could not acquire lock"),
                    "unclear error on a full disk: {text}"
                );
            }
            Ok(v) => assert_eq!(v["ok"], true, "{v}"),
        }
    }
    assert!(
        errors > 0,
        "an 8000-byte send succeeded three times on a full disk"
    );
    let now = fs::read(&mailbox).unwrap();
    assert!(
        now.starts_with(&stored),
        "stored mail was changed by a failed send"
    );

    // Drain on the full disk (budget 2, so the overflow must be requeued and
    // that needs space), then give the space back and drain the rest: every
    // stored message arrives once, in order — a full disk may delay, never lose.
    let mut got = bodies(&read_all_messages(&mut r));
    let during = got.len();
    fs::remove_file(&filler).unwrap();
    let id = send_soon(&mut s, "after space came back");
    got.extend(bodies(&read_all_messages(&mut r)));
    let mut expected = before.clone();
    expected.push("after space came back".into());
    assert_eq!(
        got, expected,
        "a full disk lost, duplicated or reordered mail"
    );
    assert!(
        !world
            .layout()
            .mailbox(r.pid)
            .with_extension("jsonl.lock")
            .exists()
    );
    let _ = id;
    eprintln!(
        "read {during} of {} stored messages while the disk was full",
        before.len()
    );
    figure("fault_disk", &[("full_disk_send_errors", errors)]);
}

#[test]
fn full_disk_hook_drain_loses_nothing() {
    // 10: one plain drain; 70: past the hook's 50-message cap, so survivors
    // must be written back (which needs space).
    for count in [10, 70] {
        hook_drain_on_full_disk(count);
    }
}

/// (1 MiB: every sent message also leaves a 4 KiB outbox record there.)
fn hook_drain_on_full_disk(count: usize) {
    let world = World::new();
    let Some(_mnt) = Tmpfs::mount(world.layout().root(), "1m") else {
        return;
    };
    let mut r = world.server(&[]);
    let mut s = world.server(&[]);
    r.claim(SID_R);
    s.claim(SID_S);
    let sent: Vec<String> = (0..count)
        .map(|i| format!("hook mail {i:03} {}", "h".repeat(300)))
        .collect();
    for b in &sent {
        send_soon(&mut s, b);
    }
    let filler = fill(world.layout().root());
    let mut delivered = Vec::new();
    let mut runs = 0;
    loop {
        let (code, out, err) = world.run_hook("pretooluse.sh", &pre_payload(SID_R));
        assert_eq!(code, Some(0), "hook failed: {err}");
        runs += 1;
        let msgs = hook_messages(&out).unwrap();
        if msgs.is_empty() {
            break;
        }
        delivered.extend(msgs.into_iter().map(|(_, b)| b));
        assert!(runs < 20, "the hook keeps delivering");
    }
    eprintln!(
        "{count} queued: the hook delivered {} on the full disk",
        delivered.len()
    );
    fs::remove_file(&filler).unwrap();
    // Stand-in for the 30 s stale window: age whatever lock is left over.
    for dir in [
        world.layout().mailboxes_dir(),
        world.layout().received_dir(),
    ] {
        for de in fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            if de.file_name().to_string_lossy().ends_with(".lock") {
                eprintln!(
                    "note: lock left behind after the full disk: {:?}",
                    de.path()
                );
                age(&de.path(), 120);
            }
        }
    }
    loop {
        let (_, out, _) = world.run_hook("pretooluse.sh", &pre_payload(SID_R));
        let msgs = hook_messages(&out).unwrap();
        if msgs.is_empty() {
            break;
        }
        delivered.extend(msgs.into_iter().map(|(_, b)| b));
        runs += 1;
        assert!(runs < 40, "the hook keeps delivering");
    }
    // Whatever the hook could not deliver must still be queued.
    delivered.extend(bodies(&read_all_messages(&mut r)));
    assert_eq!(
        delivered, sent,
        "the hook lost or reordered mail on a full disk"
    );
}

#[test]
fn file_where_a_directory_belongs_fails_clearly_and_recovers() {
    let world = World::new();
    let mut r = world.server(&[]);
    let mut s = world.server(&[]);
    r.claim(SID_R);
    s.claim(SID_S);
    let first = send_soon(&mut s, "first");

    // mailboxes/ replaced by a regular file: the send must fail clearly.
    let l = world.layout();
    let mb_dir = l.mailboxes_dir();
    let saved = world.root().join("saved-mailboxes");
    fs::rename(&mb_dir, &saved).unwrap();
    fs::write(&mb_dir, b"not a directory").unwrap();
    let text = s
        .tool("send_message", json!({"target": SID_R, "body": "second"}))
        .expect_err("send into a file-shaped mailboxes dir must fail");
    assert!(
        text.contains("mailboxes") && text.contains("not a directory"),
        "unclear error: {text}"
    );
    // The reader does not crash and does not pretend.
    let v = r.tool("read_my_messages", json!({}));
    if let Ok(v) = &v {
        assert_eq!(v["count"], 0, "{v}");
    }
    assert_eq!(fs::read(&mb_dir).unwrap(), b"not a directory");
    fs::remove_file(&mb_dir).unwrap();
    fs::rename(&saved, &mb_dir).unwrap();

    // The mailbox file replaced by a directory.
    let mailbox = l.mailbox(r.pid);
    let content = fs::read(&mailbox).unwrap();
    fs::remove_file(&mailbox).unwrap();
    fs::create_dir(&mailbox).unwrap();
    let text = s
        .tool("send_message", json!({"target": SID_R, "body": "third"}))
        .expect_err("send into a directory-shaped mailbox must fail");
    assert!(
        text.contains(&format!("{}.jsonl", r.pid)),
        "unclear error: {text}"
    );
    let (code, out, _) = world.run_hook("pretooluse.sh", &pre_payload(SID_R));
    assert_eq!(code, Some(0));
    assert!(out.is_empty(), "{out}");
    fs::remove_dir(&mailbox).unwrap();
    fs::write(&mailbox, &content).unwrap();

    // received/ is a file: the ledger cannot be written, delivery still works
    // (delivery beats the reply handle) and the failure is traced.
    let rec = l.received_dir();
    fs::remove_dir_all(&rec).unwrap();
    fs::write(&rec, b"x").unwrap();
    let fourth = send_soon(&mut s, "fourth");
    assert!(
        world
            .traces("received_ledger_write_failed")
            .iter()
            .any(|t| t["message_id"] == fourth.as_str()),
        "ledger failure not traced"
    );
    let got = read_all_messages(&mut r);
    let ids: Vec<&str> = got.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), fourth.as_str()]);
    assert_eq!(
        fs::read(&rec).unwrap(),
        b"x",
        "the blocking file is untouched"
    );
}
