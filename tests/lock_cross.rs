//! The Rust lock (`src/store/lock.rs`) and the bash lock library
//! (`assets/oxtail-lock.sh`) speak one protocol: they exclude each other, each
//! clears the other's stale lock, neither clears a lock whose owner changed,
//! and neither releases a lock it does not own.

mod store_support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oxtail::store::lock::{self, LockKind, LockOptions};
use store_support::{
    Hold, Holder, backdate, bash, bash_acquire, bash_lib, owner_of, side, stdout, trace_file,
    traces,
};

fn patient() -> LockOptions {
    LockOptions {
        max_wait: Duration::from_secs(5),
        max_attempts: u32::MAX,
        ..LockOptions::default()
    }
}

fn is_bash_token(t: &str) -> bool {
    let Some((pid, hx)) = t.split_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && hx.len() == 12
        && hx
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn rust_and_bash_exclude_each_other() {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let l = dir.join("m.jsonl.lock");
    let marker = dir.join("inside");
    let counter = dir.join("counter");
    let overlaps = dir.join("overlaps");
    fs::write(&counter, "0\n").unwrap();
    const PER: usize = 25;

    let script = format!(
        r#". '{lib}'
L='{l}'; M='{m}'; C='{c}'; O='{o}'
i=0
while [ "$i" -lt {per} ]; do
  if oxtail_lock_acquire "$L"; then
    tok=$OXTAIL_LOCK_TOKEN
    set -C
    if ! {{ : >"$M"; }} 2>/dev/null; then echo overlap >>"$O"; fi
    set +C
    read -r n <"$C"; n=$((n + 1)); printf '%s\n' "$n" >"$C"
    rm -f "$M"
    oxtail_lock_release "$L" "$tok"
    i=$((i + 1))
  fi
done
"#,
        lib = bash_lib().display(),
        l = l.display(),
        m = marker.display(),
        c = counter.display(),
        o = overlaps.display(),
        per = PER,
    );
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new("bash")
                .arg("-c")
                .arg(&script)
                .env("HOME", dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (l, marker, counter, overlaps) =
                (l.clone(), marker.clone(), counter.clone(), overlaps.clone());
            std::thread::spawn(move || {
                let mut done = 0;
                while done < PER {
                    let Ok(g) = lock::acquire(&l, &LockKind::Other, &patient()) else {
                        continue;
                    };
                    if fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&marker)
                        .is_err()
                    {
                        append(&overlaps, "overlap\n");
                    }
                    std::thread::sleep(Duration::from_micros(300));
                    let n: usize = fs::read_to_string(&counter)
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    fs::write(&counter, format!("{}\n", n + 1)).unwrap();
                    fs::remove_file(&marker).unwrap();
                    drop(g);
                    done += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert!(!overlaps.exists(), "critical sections overlapped");
    let n: usize = fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, 4 * PER, "a read-modify-write was lost");
    assert!(!l.exists(), "lock left behind");
}

fn append(path: &Path, text: &str) {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn lock_in(dir: &Path) -> PathBuf {
    dir.join("4000000001.jsonl.lock")
}

#[test]
fn rust_clears_a_stale_bash_lock() {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let l = lock_in(tmp.path());
    // A live bash holder (a dead one is reclaimed at once: lock_reclaim.rs).
    let holder = Holder::bash(tmp.path(), &l, Hold::Lock);
    let bash_tok = holder.token.clone();
    assert!(is_bash_token(&bash_tok), "{bash_tok}");
    assert!(bash_tok.starts_with(&format!("{}.", holder.pid())));
    assert_eq!(owner_of(&l).as_deref(), Some(bash_tok.as_str()));

    // Fresh: the Rust side must not steal it.
    let quick = LockOptions {
        max_wait: Duration::from_millis(100),
        ..LockOptions::default()
    };
    assert!(
        lock::acquire(&l, &LockKind::Mailbox(4000000001), &quick)
            .unwrap_err()
            .is_lock_timeout()
    );

    // Older than the (short, parameterised) window: cleared and re-acquired.
    backdate(&l, 5);
    let opts = LockOptions {
        stale: Duration::from_secs(2),
        ..LockOptions::default()
    };
    let g = lock::acquire(&l, &LockKind::Mailbox(4000000001), &opts).unwrap();
    assert_eq!(owner_of(&l).as_deref(), Some(g.token()));
    let clears = traces("mailbox_lock_stale_clear", "4000000001");
    assert!(clears.iter().any(|v| v["reason"] == "stale"), "{clears:?}");
    drop(g);
    assert!(!l.exists());
    drop(holder);
}

#[test]
fn bash_clears_a_stale_rust_lock_but_not_a_fresh_one() {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("r.lock");
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    let rust_tok = g.token().to_string();
    std::mem::forget(g); // a live holder (this process) that never releases

    // A window the ~50 bash attempts cannot outlast even on a loaded box.
    let (ok, _) = bash_acquire(tmp.path(), &l, &[("OXTAIL_LOCK_STALE_S", "20")]);
    assert!(!ok, "bash stole a fresh lock");
    assert_eq!(owner_of(&l).as_deref(), Some(rust_tok.as_str()));

    backdate(&l, 60);
    let (ok, bash_tok) = bash_acquire(tmp.path(), &l, &[("OXTAIL_LOCK_STALE_S", "20")]);
    assert!(ok);
    assert!(is_bash_token(&bash_tok));
    assert_eq!(owner_of(&l).as_deref(), Some(bash_tok.as_str()));
    assert!(!side(&l, ".steal").exists());

    // The Rust side releases a bash-held lock only with the bash token.
    lock::release(&l, &rust_tok);
    assert!(l.is_dir(), "non-owner release removed the lock");
    assert!(!traces("lock_release_skipped_not_owner", &l.display().to_string()).is_empty());
    lock::release(&l, &bash_tok);
    assert!(!l.exists());
}

#[test]
fn bash_does_not_clear_a_lock_whose_owner_changed() {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("c.lock");
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    std::mem::forget(g);
    backdate(&l, 60);
    // Simulate a re-acquire landing between the clearer's owner read and its
    // steal marker: the mkdir of the marker first rewrites the owner.
    let script = format!(
        r#"L='{l}'
mkdir() {{
  case "$1" in *.steal) printf '%s' 77.aaaaaaaaaaaa >"$L.owner" ;; esac
  command mkdir "$@"
}}
_oxtail_lock_clear_stale "$L"; echo "rc=$?""#,
        l = l.display()
    );
    let out = bash(tmp.path(), &script, &[("OXTAIL_LOCK_STALE_S", "30")]);
    assert_eq!(stdout(&out), "rc=0", "clearing work is reported");
    assert!(l.is_dir(), "lock with a changed owner was cleared");
    assert_eq!(owner_of(&l).as_deref(), Some("77.aaaaaaaaaaaa"));
    assert!(!side(&l, ".steal").exists(), "steal marker leaked");
}

#[test]
fn bash_release_by_a_non_owner_leaves_the_rust_lock() {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("n.lock");
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    let script = format!("oxtail_lock_release '{}' 1.aaaaaaaaaaaa", l.display());
    assert!(bash(tmp.path(), &script, &[]).status.success());
    assert!(l.is_dir());
    assert_eq!(owner_of(&l).as_deref(), Some(g.token()));

    // Owner file absent: a successor may be mid-acquire, so bash leaves it too.
    fs::remove_file(side(&l, ".owner")).unwrap();
    let script = format!("oxtail_lock_release '{}' '{}'", l.display(), g.token());
    assert!(bash(tmp.path(), &script, &[]).status.success());
    assert!(l.is_dir());

    // The owner (Rust token, released by bash) removes it.
    fs::write(side(&l, ".owner"), g.token()).unwrap();
    let script = format!("oxtail_lock_release '{}' '{}'", l.display(), g.token());
    assert!(bash(tmp.path(), &script, &[]).status.success());
    assert!(!l.exists());
    assert!(owner_of(&l).is_none());
    std::mem::forget(g);
}

#[test]
fn sourcing_the_library_has_no_side_effects() {
    let tmp = tempfile::tempdir().unwrap();
    let script = "set -u; before=$(set -o; echo \"$-\"); . \"$LIB\"; after=$(set -o; echo \"$-\"); \
                  [ \"$before\" = \"$after\" ] && [ -z \"${OXTAIL_LOCK_TOKEN:-}\" ] && \
                  type oxtail_lock_acquire >/dev/null && type oxtail_lock_release >/dev/null && echo clean";
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("LIB", bash_lib())
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "clean",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn bash_acquire_fails_fast_when_the_parent_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("missing/x.lock");
    let (ok, tok) = bash_acquire(tmp.path(), &l, &[]);
    assert!(!ok);
    assert!(tok.is_empty());
}

#[test]
fn the_library_works_under_set_euo_pipefail() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("e.lock");
    let script = format!(
        r#"set -euo pipefail
L='{l}'
oxtail_lock_acquire "$L"; t1=$OXTAIL_LOCK_TOKEN
oxtail_lock_release "$L" wrong.token
[ -d "$L" ]
rm -f "$L.owner"
oxtail_lock_release "$L" "$t1"
[ -d "$L" ]
touch -t 200001010000 "$L"
OXTAIL_LOCK_STALE_S=5 oxtail_lock_acquire "$L"
oxtail_lock_release "$L" "$OXTAIL_LOCK_TOKEN"
[ ! -e "$L" ]
mkdir "$L"; mkdir "$L.steal"; touch -t 200001010000 "$L" "$L.steal"
OXTAIL_LOCK_STALE_S=5 oxtail_lock_acquire "$L"
oxtail_lock_release "$L" ""
oxtail_lock_release "$L" ""
printf x >"$L"; touch -t 200001010000 "$L"
OXTAIL_LOCK_STALE_S=5 oxtail_lock_acquire "$L"
[ -d "$L" ]
oxtail_lock_release "$L" "$OXTAIL_LOCK_TOKEN"
echo survived"#,
        l = l.display()
    );
    let out = bash(tmp.path(), &script, &[]);
    assert_eq!(
        stdout(&out),
        "survived",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!l.exists());
}
