//! Sticky claims: `~/.oxtail/claims/<32hex>.json` (server spec §6.8).
//!
//! A claim remembers "the agent under this process ancestry, of this client type
//! in this cwd, is session X", so a restarted MCP child can re-adopt its id.
//!
//! Invariants defended:
//! - the file key is `(client_type, cwd, session_id)` (re-claiming overwrites one
//!   file); the ancestor chain is matched at recovery, never part of the key;
//! - recovery only returns a record when exactly one best match exists (ties
//!   abstain), its ancestry overlaps ours on (pid, non-empty start signature),
//!   and its transcript still exists;
//! - the claim store never fails a claim: callers swallow every error.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::file;
use super::paths::{self, Layout};
use crate::clock::now_ms;

/// Claims older than this are garbage-collected when a claim is written.
pub const CLAIM_MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;

/// One ancestor: pid plus its start-time signature (`ps lstart` text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: i64,
    #[serde(default)]
    pub sig: String,
}

/// A claim record, in the original's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub schema_version: u32,
    pub client_type: String,
    pub cwd: String,
    pub ancestors: Vec<Ancestor>,
    pub session_id: String,
    pub transcript_path: Option<String>,
    pub claimed_at: i64,
    pub server_pid: u32,
}

fn read_json_files(dir: &Path) -> Vec<(std::path::PathBuf, serde_json::Value)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|de| de.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|de| {
            let text = fs::read(de.path()).ok()?;
            let v = serde_json::from_slice(&text).ok()?;
            Some((de.path(), v))
        })
        .collect()
}

/// Delete claims whose transcript is gone or that are older than 14 days.
/// Unparseable files are left alone; a dead `server_pid` is not a reason.
pub fn gc(layout: &Layout) {
    let now = now_ms();
    for (path, v) in read_json_files(&layout.claims_dir()) {
        let transcript = v
            .get("transcript_path")
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let stale_transcript = transcript.is_empty() || !Path::new(transcript).exists();
        let too_old = v
            .get("claimed_at")
            .and_then(|c| c.as_f64())
            .is_some_and(|c| (now as f64) - c * 1000.0 > CLAIM_MAX_AGE_MS as f64);
        if stale_transcript || too_old {
            let _ = fs::remove_file(path);
        }
    }
}

/// GC, then write `rec` atomically (`<final>.<pid>.tmp` + rename, `0600`).
pub fn write_claim(layout: &Layout, rec: &ClaimRecord) -> io::Result<()> {
    let dir = layout.claims_dir();
    paths::ensure_private_dir(&dir)?;
    gc(layout);
    let path = layout.claim(&rec.client_type, &rec.cwd, &rec.session_id);
    file::write_pretty_json(&path, rec)
}

fn key(a: &Ancestor) -> Option<(i64, &str)> {
    (!a.sig.is_empty()).then_some((a.pid, a.sig.as_str()))
}

/// (overlap count, nearest current index, nearest record index) or `None`
/// when the chains share no (pid, sig) with a non-empty sig.
fn score(record: &[Ancestor], current: &[Ancestor]) -> Option<(usize, usize, usize)> {
    let mut cur_index: HashMap<(i64, &str), usize> = HashMap::new();
    for (i, a) in current.iter().enumerate() {
        if let Some(k) = key(a) {
            cur_index.entry(k).or_insert(i);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let (mut count, mut near_cur, mut near_rec) = (0, usize::MAX, usize::MAX);
    for (ri, a) in record.iter().enumerate() {
        let Some(k) = key(a) else { continue };
        if !seen.insert(k) {
            continue;
        }
        if let Some(&ci) = cur_index.get(&k) {
            count += 1;
            near_cur = near_cur.min(ci);
            near_rec = near_rec.min(ri);
        }
    }
    (count > 0).then_some((count, near_cur, near_rec))
}

/// The unique best claim for `(client_type, cwd)` whose ancestry overlaps
/// `current` and whose transcript exists, or `None` (no match, or a tie).
pub fn recover_claim(
    layout: &Layout,
    client_type: &str,
    cwd: &str,
    current: &[Ancestor],
) -> Option<ClaimRecord> {
    let mut scored: Vec<((usize, usize, usize, i64), ClaimRecord)> = Vec::new();
    for (_, v) in read_json_files(&layout.claims_dir()) {
        let Ok(rec) = serde_json::from_value::<ClaimRecord>(v) else {
            continue;
        };
        let transcript = rec.transcript_path.as_deref().unwrap_or("");
        if rec.client_type != client_type
            || rec.cwd != cwd
            || rec.session_id.is_empty()
            || transcript.is_empty()
            || !Path::new(transcript).exists()
        {
            continue;
        }
        let Some((count, near_cur, near_rec)) = score(&rec.ancestors, current) else {
            continue;
        };
        scored.push(((count, near_cur, near_rec, rec.claimed_at), rec));
    }
    // Best first: more overlap, nearer in our chain, nearer in theirs, newer.
    scored.sort_by(|(a, _), (b, _)| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(b.3.cmp(&a.3))
    });
    let mut it = scored.into_iter();
    let (best_key, best) = it.next()?;
    match it.next() {
        Some((second_key, _)) if second_key == best_key => None,
        _ => Some(best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_s;

    fn anc(list: &[(i64, &str)]) -> Vec<Ancestor> {
        list.iter()
            .map(|(p, s)| Ancestor {
                pid: *p,
                sig: s.to_string(),
            })
            .collect()
    }

    fn rec(sid: &str, transcript: &Path, ancestors: Vec<Ancestor>, claimed_at: i64) -> ClaimRecord {
        ClaimRecord {
            schema_version: 1,
            client_type: "codex".into(),
            cwd: "/p".into(),
            ancestors,
            session_id: sid.into(),
            transcript_path: Some(transcript.to_string_lossy().into()),
            claimed_at,
            server_pid: 4242,
        }
    }

    fn setup() -> (tempfile::TempDir, Layout, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        let t = tmp.path().join("t.jsonl");
        fs::write(&t, "{}\n").unwrap();
        (tmp, layout, t)
    }

    #[test]
    fn recovers_through_a_shared_host_and_rejects_pid_reuse() {
        let (_tmp, layout, t) = setup();
        let host = (100, "Mon Jan 1 00:00:00 2026");
        write_claim(&layout, &rec("s1", &t, anc(&[(200, "a"), host]), now_s())).unwrap();
        let got = recover_claim(&layout, "codex", "/p", &anc(&[(300, "b"), host])).unwrap();
        assert_eq!(got.session_id, "s1");
        assert!(recover_claim(&layout, "codex", "/p", &anc(&[(300, "b")])).is_none());
        assert!(recover_claim(&layout, "codex", "/p", &anc(&[(100, "other sig")])).is_none());
        assert!(recover_claim(&layout, "claude-code", "/p", &anc(&[host])).is_none());
        assert!(recover_claim(&layout, "codex", "/q", &anc(&[host])).is_none());
    }

    #[test]
    fn missing_transcript_or_no_records_gives_none() {
        let (tmp, layout, _t) = setup();
        assert!(recover_claim(&layout, "codex", "/p", &anc(&[(1, "x")])).is_none());
        let gone = tmp.path().join("gone.jsonl");
        paths::ensure_private_dir(&layout.claims_dir()).unwrap();
        let r = rec("s1", &gone, anc(&[(100, "h")]), now_s());
        let p = layout.claim("codex", "/p", "s1");
        fs::write(p, serde_json::to_string(&r).unwrap()).unwrap();
        assert!(recover_claim(&layout, "codex", "/p", &anc(&[(100, "h")])).is_none());
    }

    #[test]
    fn ranking_and_ties() {
        let (_tmp, layout, t) = setup();
        let now = now_s();
        // Tie: two sessions matching only the host at the same depth, same time.
        write_claim(&layout, &rec("a", &t, anc(&[(11, "x"), (100, "h")]), now)).unwrap();
        write_claim(&layout, &rec("b", &t, anc(&[(12, "y"), (100, "h")]), now)).unwrap();
        let cur = anc(&[(13, "z"), (100, "h")]);
        assert!(recover_claim(&layout, "codex", "/p", &cur).is_none());
        // Equal scores, newer claimed_at wins.
        write_claim(
            &layout,
            &rec("b", &t, anc(&[(12, "y"), (100, "h")]), now + 5),
        )
        .unwrap();
        assert_eq!(
            recover_claim(&layout, "codex", "/p", &cur)
                .unwrap()
                .session_id,
            "b"
        );
        // Higher overlap beats newer.
        write_claim(
            &layout,
            &rec("c", &t, anc(&[(13, "z"), (100, "h")]), now - 100),
        )
        .unwrap();
        assert_eq!(
            recover_claim(&layout, "codex", "/p", &cur)
                .unwrap()
                .session_id,
            "c"
        );
    }

    #[test]
    fn nearest_overlap_in_current_chain_wins_over_newer() {
        let (_tmp, layout, t) = setup();
        let now = now_s();
        write_claim(&layout, &rec("near", &t, anc(&[(50, "n")]), now - 50)).unwrap();
        write_claim(&layout, &rec("far", &t, anc(&[(100, "h")]), now)).unwrap();
        let cur = anc(&[(50, "n"), (100, "h")]);
        assert_eq!(
            recover_claim(&layout, "codex", "/p", &cur)
                .unwrap()
                .session_id,
            "near"
        );
    }

    #[test]
    fn reclaim_overwrites_one_file_and_gc_drops_stale() {
        let (tmp, layout, t) = setup();
        let mut r = rec("s1", &t, anc(&[(100, "h")]), now_s());
        write_claim(&layout, &r).unwrap();
        r.server_pid = 999;
        write_claim(&layout, &r).unwrap();
        assert_eq!(fs::read_dir(layout.claims_dir()).unwrap().count(), 1);
        let got = recover_claim(&layout, "codex", "/p", &anc(&[(100, "h")])).unwrap();
        assert_eq!(got.server_pid, 999);
        // A 20-day-old record and one whose transcript is gone are collected.
        let old = rec("old", &t, anc(&[(100, "h")]), now_s() - 20 * 86400);
        fs::write(
            layout.claim("codex", "/p", "old"),
            serde_json::to_string(&old).unwrap(),
        )
        .unwrap();
        let gone = rec(
            "gone",
            &tmp.path().join("nope"),
            anc(&[(100, "h")]),
            now_s(),
        );
        fs::write(
            layout.claim("codex", "/p", "gone"),
            serde_json::to_string(&gone).unwrap(),
        )
        .unwrap();
        fs::write(layout.claims_dir().join("junk.json"), "not json").unwrap();
        gc(&layout);
        let mut names: Vec<String> = fs::read_dir(layout.claims_dir())
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"junk.json".to_string()));
    }
}
