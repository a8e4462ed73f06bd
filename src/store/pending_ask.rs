//! Durable `ask_peer` records: `~/.oxtail/pending-ask/p-<32 hex>`, one JSON
//! object per ask, named by the first 32 hex of sha256 of the JSON array
//! `[asker session id, request_id]` (the original's later layout, so a later
//! Node peer finds and consumes our records and we find theirs).
//!
//! ```json
//! {"sessionId":"<asker>","requestId":"<rid>","at":<ms>,"target":"<awaited peer>",
//!  "messageId":"<the question>","ownerEpoch":<asker server started_at, s>,
//!  "attempts":0,"lastRepokeAt":null,
//!  "state":"waiting"|"pending","requesterServerPid":<pid>,"timeoutMs":<ms>}
//! ```
//!
//! The first eight keys are the original's; `state`, `requesterServerPid`
//! and `timeoutMs` are ours (beyond the original, which writes a record only
//! at the timeout): a record is written `waiting` when the ask starts, so
//! `oxtail status` can show who waits on whom, turned `pending` when the wait
//! times out, and removed when the reply is returned in time or the call is
//! cancelled. Its mtime is the retention clock: a record older than
//! [`ttl_ms`] (`OXTAIL_PENDING_ASK_TTL_MS`, default one hour) is dead.
//!
//! Reading for `oxtail status`: [`list`] returns every record with its
//! `age_ms`; [`PendingAsk::session_id`] waits on [`PendingAsk::target`].
//!
//! Invariants defended: exactly one replier consumes a pending record
//! ([`consume`]: the claim is a rename, which only one caller can win), and
//! only a `pending` one (a `waiting` ask gets its reply from its own wait); an
//! expired record is never honoured; reading never fails (anything
//! unreadable is "no record").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::file;
use super::paths::Layout;

/// Default retention of a pending ask, in ms (the original's).
pub const DEFAULT_TTL_MS: f64 = 3_600_000.0;

/// `OXTAIL_PENDING_ASK_TTL_MS` (positive finite, JavaScript `Number()` rules).
pub fn ttl_ms() -> i64 {
    crate::config::positive_env("OXTAIL_PENDING_ASK_TTL_MS", DEFAULT_TTL_MS) as i64
}

/// Where an ask stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskState {
    /// The asker's `ask_peer` call is still waiting.
    Waiting,
    /// The wait timed out; a late reply will be delivered marked as its answer.
    Pending,
}

impl AskState {
    pub fn as_str(self) -> &'static str {
        match self {
            AskState::Waiting => "waiting",
            AskState::Pending => "pending",
        }
    }
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAsk {
    /// The asker.
    pub session_id: String,
    pub request_id: String,
    /// When the question was asked (ms).
    pub at_ms: i64,
    /// The awaited peer's session id.
    pub target: Option<String>,
    /// The question's message id.
    pub message_id: Option<String>,
    pub owner_epoch: Option<i64>,
    pub attempts: u64,
    pub last_repoke_at: Option<i64>,
    /// A record written by the original (no `state`) reads as pending: it
    /// writes records only at the timeout.
    pub state: AskState,
    pub requester_server_pid: Option<u32>,
    pub timeout_ms: Option<i64>,
    /// `now - mtime` when read (0 for a record built in memory).
    pub age_ms: i64,
}

impl PendingAsk {
    /// A new `waiting` record.
    pub fn new(session_id: &str, request_id: &str, at_ms: i64) -> PendingAsk {
        PendingAsk {
            session_id: session_id.into(),
            request_id: request_id.into(),
            at_ms,
            target: None,
            message_id: None,
            owner_epoch: None,
            attempts: 0,
            last_repoke_at: None,
            state: AskState::Waiting,
            requester_server_pid: None,
            timeout_ms: None,
            age_ms: 0,
        }
    }

    fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("sessionId".into(), json!(self.session_id));
        m.insert("requestId".into(), json!(self.request_id));
        m.insert("at".into(), json!(self.at_ms));
        m.insert("target".into(), json!(self.target));
        m.insert("messageId".into(), json!(self.message_id));
        m.insert("ownerEpoch".into(), json!(self.owner_epoch));
        m.insert("attempts".into(), json!(self.attempts));
        m.insert("lastRepokeAt".into(), json!(self.last_repoke_at));
        m.insert("state".into(), json!(self.state.as_str()));
        m.insert(
            "requesterServerPid".into(),
            json!(self.requester_server_pid),
        );
        m.insert("timeoutMs".into(), json!(self.timeout_ms));
        Value::Object(m).to_string()
    }

    fn parse(text: &[u8], age_ms: i64) -> Option<PendingAsk> {
        let v: Value = serde_json::from_slice(text).ok()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(Value::as_i64);
        Some(PendingAsk {
            session_id: s("sessionId")?,
            request_id: s("requestId")?,
            at_ms: n("at").unwrap_or(0),
            target: s("target"),
            message_id: s("messageId"),
            owner_epoch: n("ownerEpoch"),
            attempts: v.get("attempts").and_then(Value::as_u64).unwrap_or(0),
            last_repoke_at: n("lastRepokeAt"),
            state: match v.get("state").and_then(Value::as_str) {
                Some("waiting") => AskState::Waiting,
                _ => AskState::Pending,
            },
            requester_server_pid: n("requesterServerPid").and_then(|p| u32::try_from(p).ok()),
            timeout_ms: n("timeoutMs"),
            age_ms,
        })
    }

    /// Live at `ttl_ms`: younger than the retention (a future mtime counts
    /// as new).
    pub fn is_live(&self, ttl_ms: i64) -> bool {
        self.age_ms < ttl_ms
    }
}

/// How old a regular file is at `now_ms`, by its mtime.
fn age_of(meta: &fs::Metadata, now_ms: i64) -> Option<i64> {
    if !meta.is_file() {
        return None;
    }
    let mtime = super::activity::mtime_ms(meta)? as i64;
    Some(now_ms - mtime)
}

/// The record at `path` (never read through a symlink), aged from the
/// metadata of the file that was read.
fn read_path(path: &Path, now_ms: i64) -> Option<PendingAsk> {
    let (bytes, meta) = file::read_all_with_meta(path).ok().flatten()?;
    PendingAsk::parse(&bytes, age_of(&meta, now_ms)?)
}

/// Record a new ask (write-once: an existing record is kept as it is).
pub fn create(layout: &Layout, ask: &PendingAsk) -> io::Result<()> {
    let path = layout.pending_ask(&ask.session_id, &ask.request_id);
    file::create_record(&layout.pending_ask_dir(), &path, ask.to_json().as_bytes()).map(|_| ())
}

/// Turn the asker's record `pending` (a fresh mtime: the retention runs from
/// the timeout). `Ok(false)` when there was no record to turn (it was consumed
/// meanwhile, or never written).
pub fn mark_pending(layout: &Layout, session_id: &str, request_id: &str) -> io::Result<bool> {
    let path = layout.pending_ask(session_id, request_id);
    let Some(mut ask) = read_path(&path, crate::clock::now_ms()) else {
        return Ok(false);
    };
    ask.state = AskState::Pending;
    file::atomic_replace(&path, ask.to_json().as_bytes()).map_err(io::Error::other)?;
    Ok(true)
}

/// Put a consumed record back as `pending` (its reply could not be delivered).
pub fn restore(layout: &Layout, ask: &PendingAsk) -> io::Result<()> {
    let mut ask = ask.clone();
    ask.state = AskState::Pending;
    create(layout, &ask)
}

/// Remove the asker's record (the reply came in time, or the call was
/// cancelled: a cancelled ask is not pending).
pub fn remove(layout: &Layout, session_id: &str, request_id: &str) {
    let _ = fs::remove_file(layout.pending_ask(session_id, request_id));
}

/// The record of (`session_id`, `request_id`), whatever its state and age.
pub fn read(layout: &Layout, session_id: &str, request_id: &str) -> Option<PendingAsk> {
    read_path(
        &layout.pending_ask(session_id, request_id),
        crate::clock::now_ms(),
    )
}

fn claim_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".claim.{}", crate::store::lock::new_token()));
    path.with_file_name(name)
}

/// A reply to (`session_id`, `request_id`) is being sent: take the record if
/// it is `pending` and live (one winner among concurrent repliers). An
/// expired record is removed and not honoured; a `waiting` one is left to
/// its own ask.
pub fn consume(
    layout: &Layout,
    session_id: &str,
    request_id: &str,
    ttl_ms: i64,
) -> Option<PendingAsk> {
    let path = layout.pending_ask(session_id, request_id);
    let ask = read_path(&path, crate::clock::now_ms())?;
    if ask.state == AskState::Waiting && ask.is_live(ttl_ms) {
        return None;
    }
    let claimed = claim_path(&path);
    fs::rename(&path, &claimed).ok()?;
    let _ = fs::remove_file(&claimed);
    (ask.session_id == session_id && ask.request_id == request_id && ask.is_live(ttl_ms))
        .then_some(ask)
}

/// Every record (for `oxtail status` and the asker's own checks), with its
/// age; expired ones included (check [`PendingAsk::is_live`]).
pub fn list(layout: &Layout) -> Vec<PendingAsk> {
    let now = crate::clock::now_ms();
    let Ok(rd) = fs::read_dir(layout.pending_ask_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<PendingAsk> = rd
        .flatten()
        .filter(|e| is_record_name(&e.file_name().to_string_lossy()))
        .filter_map(|e| read_path(&e.path(), now))
        .collect();
    out.sort_by_key(|a| a.at_ms);
    out
}

/// The live `pending` records of one asker.
pub fn pending_for(layout: &Layout, session_id: &str, ttl_ms: i64) -> Vec<PendingAsk> {
    list(layout)
        .into_iter()
        .filter(|a| a.session_id == session_id && a.state == AskState::Pending)
        .filter(|a| a.is_live(ttl_ms))
        .collect()
}

/// `p-` followed by 32 lowercase hex (temp and claim names are not records).
fn is_record_name(name: &str) -> bool {
    name.strip_prefix("p-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Remove records older than `ttl_ms`, and temp or claim files left by a
/// crash (older than a minute). Returns how many files went.
pub fn gc(layout: &Layout, ttl_ms: i64) -> usize {
    let now = crate::clock::now_ms();
    let Ok(rd) = fs::read_dir(layout.pending_ask_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('p') && !name.starts_with(".p") {
            continue;
        }
        let limit = if is_record_name(&name) {
            ttl_ms
        } else {
            60_000
        };
        let age = fs::symlink_metadata(e.path())
            .ok()
            .and_then(|m| age_of(&m, now));
        if age.is_some_and(|a| a > limit) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "11111111-1111-1111-1111-111111111111";

    fn layout() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        (tmp, l)
    }

    #[test]
    fn name_matches_the_original_layout() {
        let l = Layout::at("/h/.oxtail");
        let p = l.pending_ask(A, "req-a");
        let pair = serde_json::to_string(&[A, "req-a"]).unwrap();
        let want = format!("p-{}", crate::store::paths::hash32(pair.as_bytes()));
        assert_eq!(p.file_name().unwrap().to_str().unwrap(), want);
        assert!(is_record_name(&want));
    }

    #[test]
    fn a_waiting_ask_is_not_consumed_a_pending_one_once() {
        let (_t, l) = layout();
        let mut ask = PendingAsk::new(A, "r1", 5);
        ask.target = Some("peer".into());
        ask.message_id = Some("0123456789abcdef".into());
        create(&l, &ask).unwrap();
        assert_eq!(consume(&l, A, "r1", 60_000), None, "waiting");
        assert_eq!(read(&l, A, "r1").unwrap().state, AskState::Waiting);
        assert!(mark_pending(&l, A, "r1").unwrap());
        let got = consume(&l, A, "r1", 60_000).expect("pending and live");
        assert_eq!(got.message_id.as_deref(), Some("0123456789abcdef"));
        assert_eq!(got.target.as_deref(), Some("peer"));
        assert_eq!(consume(&l, A, "r1", 60_000), None, "only one winner");
        assert!(!mark_pending(&l, A, "r1").unwrap());
        // Restored after a failed delivery: pending again.
        restore(&l, &got).unwrap();
        assert_eq!(pending_for(&l, A, 60_000).len(), 1);
        // Expired: removed, not honoured.
        assert_eq!(consume(&l, A, "r1", -1), None);
        assert!(read(&l, A, "r1").is_none());
    }

    #[test]
    fn a_record_of_the_original_reads_as_pending_and_gc_expires() {
        let (_t, l) = layout();
        fs::create_dir_all(l.pending_ask_dir()).unwrap();
        let path = l.pending_ask(A, "r2");
        fs::write(
            &path,
            format!("{{\"sessionId\":\"{A}\",\"requestId\":\"r2\",\"at\":1}}"),
        )
        .unwrap();
        fs::write(l.pending_ask_dir().join("p-x.tmp.1"), "").unwrap();
        let all = list(&l);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, AskState::Pending);
        assert_eq!(gc(&l, 3_600_000), 0);
        assert_eq!(gc(&l, -1), 1, "only the record is old enough");
        assert!(list(&l).is_empty());
        remove(&l, A, "r2");
    }
}
