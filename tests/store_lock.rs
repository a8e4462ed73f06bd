//! The Rust lock primitive against messaging.md §14 items 46–54 ("stale" =
//! mtime 60 s in the past), with the protocol's default options.

mod store_support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxtail::store::lock::{self, LockKind, LockOptions, STALE_WINDOW};
use store_support::{backdate, owner_of, side, trace_file};

fn fresh() -> (tempfile::TempDir, PathBuf) {
    trace_file();
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("9.jsonl.lock");
    (t, l)
}

#[test]
fn acquire_writes_a_token_and_release_with_it_removes_the_lock() {
    let (_t, l) = fresh();
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    let tok = owner_of(&l).unwrap();
    assert!(!tok.is_empty());
    assert_eq!(tok, g.token());
    lock::release(&l, &tok);
    assert!(!l.exists() && !side(&l, ".owner").exists());
    std::mem::forget(g);
}

#[test]
fn release_with_a_different_owner_leaves_lock_and_owner() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    fs::write(side(&l, ".owner"), "someone.else").unwrap();
    lock::release(&l, "me.0000");
    assert!(l.is_dir());
    assert_eq!(owner_of(&l).as_deref(), Some("someone.else"));
}

#[test]
fn release_with_an_empty_token_removes_an_ownerless_lock() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    lock::release(&l, "");
    assert!(!l.exists());
}

#[test]
fn release_with_a_token_but_no_owner_file_leaves_the_lock() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    lock::release(&l, "me.0000");
    assert!(l.is_dir());
}

#[test]
fn stale_clear_on_a_fresh_lock_does_nothing() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    fs::write(side(&l, ".owner"), "x").unwrap();
    assert!(!lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(l.is_dir());
    assert!(!side(&l, ".steal").exists());
}

#[test]
fn stale_clear_on_a_stale_lock_with_or_without_owner() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    fs::write(side(&l, ".owner"), "x").unwrap();
    backdate(&l, 60);
    assert!(lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(!l.exists() && !side(&l, ".steal").exists() && !side(&l, ".owner").exists());

    fs::create_dir(&l).unwrap();
    backdate(&l, 60);
    assert!(lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(!l.exists());
}

#[test]
fn stale_clear_with_a_fresh_steal_marker_does_nothing() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    backdate(&l, 60);
    fs::create_dir(side(&l, ".steal")).unwrap();
    assert!(!lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(l.is_dir() && side(&l, ".steal").is_dir());
    // A leaked marker older than the window is reclaimed by a later clearer.
    backdate(&side(&l, ".steal"), 60);
    assert!(!lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(!side(&l, ".steal").exists());
    assert!(lock::clear_stale(&l, &LockKind::Other, STALE_WINDOW));
    assert!(!l.exists());
}

#[test]
fn acquire_over_a_stale_lock_takes_it() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    fs::write(side(&l, ".owner"), "dead.holder").unwrap();
    backdate(&l, 60);
    let t = Instant::now();
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "hang guard");
    assert_eq!(owner_of(&l).as_deref(), Some(g.token()));
    drop(g);
    assert!(!l.exists());
}

#[test]
fn a_foreign_non_empty_stale_lock_dir_is_still_cleared() {
    let (_t, l) = fresh();
    fs::create_dir(&l).unwrap();
    fs::write(l.join("junk"), "x").unwrap();
    backdate(&l, 60);
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    assert!(l.is_dir() && !l.join("junk").exists());
    drop(g);
}

#[test]
fn a_stale_foreign_file_at_the_lock_path_does_not_wedge_it() {
    let (_t, l) = fresh();
    fs::write(&l, "not a dir").unwrap();
    backdate(&l, 60);
    let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
    assert!(l.is_dir());
    drop(g);
}
