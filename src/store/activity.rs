//! Activity markers: `~/.oxtail/activity/<activity key>`, the bare word `busy`
//! or `idle` written by the Claude Code hooks (UserPromptSubmit / Stop).
//!
//! Invariant defended: the server only ever *reads* markers, and any failure to
//! read one (no session id, missing file, unreadable, not a file) is "unknown",
//! never an error — a wake decision must not fail a delivery.

use std::fs;
use std::time::UNIX_EPOCH;

use super::paths::Layout;

/// What a marker said and how old it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivitySnapshot {
    /// The marker's content with surrounding whitespace trimmed (`busy`, `idle`, ...).
    pub status: String,
    /// `now_ms - mtime_ms`; negative when the marker's mtime is in the future.
    pub age_ms: f64,
}

impl ActivitySnapshot {
    pub fn is(&self, status: &str) -> bool {
        self.status == status
    }

    /// `busy`, written less than `ttl_ms` ago (a marker from the future is
    /// not fresh: its age is unknown).
    pub fn busy_within(&self, ttl_ms: f64) -> bool {
        self.is("busy") && self.age_ms >= 0.0 && self.age_ms < ttl_ms
    }
}

/// Read the marker of `session_id` at `now_ms`; `None` = unknown.
pub fn read(layout: &Layout, session_id: Option<&str>, now_ms: f64) -> Option<ActivitySnapshot> {
    let session_id = session_id.filter(|s| !s.is_empty())?;
    let path = layout.activity_marker(session_id);
    let meta = fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let content = fs::read(&path).ok()?;
    let mtime_ms = mtime_ms(&meta)?;
    Some(ActivitySnapshot {
        status: String::from_utf8_lossy(&content).trim().to_string(),
        age_ms: now_ms - mtime_ms,
    })
}

/// A file's mtime in (fractional) milliseconds since the epoch.
pub fn mtime_ms(meta: &fs::Metadata) -> Option<f64> {
    let mtime = meta.modified().ok()?;
    Some(match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    })
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> f64 {
    crate::clock::now_ms() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trimmed_status_and_age() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        let sid = "11111111-1111-1111-1111-111111111111";
        assert_eq!(read(&layout, Some(sid), now_ms()), None);
        assert_eq!(read(&layout, None, now_ms()), None);
        assert_eq!(read(&layout, Some(""), now_ms()), None);
        fs::create_dir_all(layout.activity_dir()).unwrap();
        fs::write(layout.activity_marker(sid), " idle\n").unwrap();
        let snap = read(&layout, Some(sid), now_ms() + 5_000.0).unwrap();
        assert!(snap.is("idle"));
        assert!(snap.age_ms >= 4_000.0 && snap.age_ms < 60_000.0, "{snap:?}");
        let past = read(&layout, Some(sid), 0.0).unwrap();
        assert!(past.age_ms < 0.0);
    }

    #[test]
    fn a_directory_in_place_of_the_marker_is_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        fs::create_dir_all(layout.activity_marker("abc")).unwrap();
        assert_eq!(read(&layout, Some("abc"), now_ms()), None);
    }
}
