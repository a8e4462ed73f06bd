//! The reply auto-wake store under `~/.oxtail/autowake/`: one-shot dedupe
//! records `d-<32hex>` per (session id, reply_to) and per-target rate records
//! `r-<32hex>` (names from `Layout::autowake_dedupe` / `autowake_rate`).
//!
//! Invariants defended:
//! - freshness is judged from file mtimes, which are set explicitly to the
//!   decision clock, so the records are deterministic under an injected clock and
//!   shared across processes (a Node peer uses the same files);
//! - a claim is create-exclusive: of two concurrent claims of one pair exactly one
//!   wins; a failure to clear a stale record is an error, never a false dedupe.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::activity::mtime_ms;
use super::paths::{FILE_MODE, Layout, ensure_private_dir};

/// True when the record at `path` exists and `now_ms - mtime < window_ms`.
/// A failed `stat` of any kind means "no record".
pub fn record_fresh(path: &Path, now_ms: f64, window_ms: f64) -> bool {
    match fs::metadata(path).ok().and_then(|m| mtime_ms(&m)) {
        Some(mtime) => now_ms - mtime < window_ms,
        None => false,
    }
}

/// Is the dedupe record of (`session_id`, `reply_to`) younger than `ttl_ms`?
pub fn deduped(
    layout: &Layout,
    session_id: &str,
    reply_to: &str,
    now_ms: f64,
    ttl_ms: f64,
) -> bool {
    record_fresh(
        &layout.autowake_dedupe(session_id, reply_to),
        now_ms,
        ttl_ms,
    )
}

/// Was a reply wake to `session_id` claimed less than `min_interval_ms` ago?
pub fn rate_limited(layout: &Layout, session_id: &str, now_ms: f64, min_interval_ms: f64) -> bool {
    record_fresh(&layout.autowake_rate(session_id), now_ms, min_interval_ms)
}

/// Delete every `d*` / `r*` record at least `ttl_ms` old (errors per entry ignored).
/// A missing store directory is nothing to do; any other listing error is raised.
pub fn gc(layout: &Layout, now_ms: f64, ttl_ms: f64) -> io::Result<()> {
    let entries = match fs::read_dir(layout.autowake_dir()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('d') || name.starts_with('r')) {
            continue;
        }
        let path = entry.path();
        if let Some(mtime) = fs::metadata(&path).ok().and_then(|m| mtime_ms(&m))
            && now_ms - mtime >= ttl_ms
        {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(())
}

/// Atomically claim the one-shot wake slot of (`session_id`, `reply_to`).
/// `Ok(true)` = won (the rate record is stamped too); `Ok(false)` = someone holds
/// a live claim; `Err` = the store is unusable.
pub fn claim(
    layout: &Layout,
    session_id: &str,
    reply_to: &str,
    now_ms: f64,
    ttl_ms: f64,
) -> io::Result<bool> {
    ensure_private_dir(&layout.autowake_dir())?;
    let dedupe = layout.autowake_dedupe(session_id, reply_to);
    if let Some(mtime) = fs::metadata(&dedupe).ok().and_then(|m| mtime_ms(&m))
        && now_ms - mtime >= ttl_ms
    {
        match fs::remove_file(&dedupe) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&dedupe)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    let record = serde_json::json!({"sessionId": session_id, "replyTo": reply_to, "at": crate::config::js_number_value(now_ms)});
    file.write_all(record.to_string().as_bytes())?;
    stamp_times(&file, now_ms);
    drop(file);
    let rate = layout.autowake_rate(session_id);
    if let Ok(mut f) = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&rate)
    {
        let _ = f.write_all(
            crate::config::js_number_value(now_ms)
                .to_string()
                .as_bytes(),
        );
        stamp_times(&f, now_ms);
    }
    Ok(true)
}

fn stamp_times(file: &File, now_ms: f64) {
    let t = if now_ms >= 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(now_ms / 1000.0)
    } else {
        UNIX_EPOCH
    };
    let _ = file.set_times(FileTimes::new().set_accessed(t).set_modified(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "11111111-1111-1111-1111-111111111111";
    const TTL: f64 = 3_600_000.0;
    const NOW: f64 = 1_800_000_000_000.0;

    fn files(layout: &Layout) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(layout.autowake_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn first_claim_wins_identical_second_loses_other_reply_to_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        assert!(claim(&layout, SID, "req-a", NOW, TTL).unwrap());
        assert!(!claim(&layout, SID, "req-a", NOW + 1.0, TTL).unwrap());
        assert!(claim(&layout, SID, "req-b", NOW + 2.0, TTL).unwrap());
        let names = files(&layout);
        assert!(names.contains(&"d-43d31c835c6d0726f5e1cfa39578d95d".to_string()));
        assert!(names.contains(&"r-bafde89c041e1756082b933aaf16cad8".to_string()));
        assert_eq!(names.len(), 3);
        assert!(deduped(&layout, SID, "req-a", NOW + 10.0, TTL));
        assert!(rate_limited(&layout, SID, NOW + 10.0, 4_000.0));
        assert!(!rate_limited(&layout, SID, NOW + 4_002.0, 4_000.0));
        let body = fs::read_to_string(layout.autowake_dedupe(SID, "req-a")).unwrap();
        assert_eq!(
            body,
            format!(
                "{{\"sessionId\":\"{SID}\",\"replyTo\":\"req-a\",\"at\":{}}}",
                NOW as i64
            )
        );
    }

    #[test]
    fn a_stale_claim_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        assert!(claim(&layout, SID, "req-a", NOW, TTL).unwrap());
        assert!(claim(&layout, SID, "req-a", NOW + TTL + 60_000.0, TTL).unwrap());
    }

    #[test]
    fn gc_drops_old_records_and_tolerates_a_missing_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        gc(&layout, NOW, TTL).unwrap();
        assert!(claim(&layout, SID, "old", NOW, TTL).unwrap());
        let other = "22222222-2222-2222-2222-222222222222";
        assert!(claim(&layout, other, "new", NOW + TTL, TTL).unwrap());
        assert_eq!(files(&layout).len(), 4);
        gc(&layout, NOW + TTL + 1.0, TTL).unwrap();
        assert_eq!(files(&layout).len(), 2);
        assert!(deduped(&layout, other, "new", NOW + TTL + 1.0, TTL));
    }

    #[test]
    fn a_store_path_that_is_a_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        fs::write(layout.autowake_dir(), "x").unwrap();
        assert!(gc(&layout, NOW, TTL).is_err());
        assert!(claim(&layout, SID, "req-a", NOW, TTL).is_err());
        assert!(!deduped(&layout, SID, "req-a", NOW, TTL));
    }
}
