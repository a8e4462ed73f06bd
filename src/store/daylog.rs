//! Day logs: append-only JSON-lines files named by UTC day,
//! `<dir>/<day>.jsonl` (`day` = whole days since the Unix epoch; the name is
//! built by `paths::day_log`), for records written once per message:
//! delivery receipts and outbox records.
//!
//! Why not one file per record (the layout before): every message then cost a
//! new inode and a 4 KiB block, a week of traffic was a directory of that many
//! files, its clean-up deleted them in bulk, and on ext4 without a journal
//! every inode created in the minutes after a deletion scans past all recently
//! freed ones. An append allocates nothing new.
//!
//! Invariants defended:
//! - an append is whole lines in one `write(2)` with `O_APPEND`, so concurrent
//!   appenders never interleave inside a record (a single write to a regular
//!   file is atomic with respect to other writes on Linux and macOS local
//!   filesystems); the hooks append one line per write the same way;
//! - a day log is never written or read through a symlink (`O_NOFOLLOW`), and
//!   only a regular file is read;
//! - nothing is ever rewritten, so an append can never be lost to a concurrent
//!   rewrite; retention removes whole day files once they are older than the
//!   window ([`gc`]);
//! - a reader parses complete lines only (a record being appended is seen on
//!   the next look), and a line glued to a torn predecessor (a writer that hit
//!   a full disk mid-line) is recovered from its last `{"schema_version"`;
//! - lookups are incremental: a per-process [`Index`] remembers, per day file,
//!   its identity and how far it was read, and reads only what was appended
//!   since; a file that was replaced or shrank, or a window that moved to a
//!   new day, rebuilds the index from the files.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::paths;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Where a line glued to a torn predecessor starts again.
const RECORD_START: &[u8] = b"{\"schema_version\"";

/// The UTC day number of `ms` since the epoch.
pub fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Append `lines` (whole lines, each ending in `\n`) to `dir`'s log of `day`
/// in one write, creating `dir` (`0700`) and the file (`0600`) as needed.
pub fn append(dir: &Path, day: i64, lines: &[u8]) -> io::Result<()> {
    debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
    if lines.is_empty() {
        return Ok(());
    }
    let path = paths::day_log(dir, day);
    let (mut f, _) = super::file::after_mkdir(dir, || {
        super::file::open_regular_io(
            &path,
            fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(paths::FILE_MODE),
        )
    })?;
    f.write_all(lines)
}

/// The oldest day a retention of `retention` keeps at `now_ms` (whole days
/// before today's; `file::gc_records` removes the day logs before it).
pub fn first_day(now_ms: i64, retention: Duration) -> i64 {
    day_of_ms(now_ms) - (retention.as_secs() / 86_400) as i64
}

/// How far one day file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    dev: u64,
    ino: u64,
    offset: u64,
}

/// Where the line of one record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    day: i64,
    offset: u64,
    len: u32,
}

/// What a process learned from one directory's day logs: for each message
/// id, where its current record is — the first record of the id, unless a
/// later withdrawal (`"forgotten":true`) removed it (a record after that
/// counts again). Records are folded oldest day first. Only locations are
/// kept (about 24 bytes per message); a lookup reads its one line back.
#[derive(Debug)]
pub struct Index {
    first_day: i64,
    /// Every day looked at, with how far its file was read (`None`: absent).
    files: BTreeMap<i64, Option<Cursor>>,
    map: HashMap<u64, Loc>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            first_day: i64::MIN,
            files: BTreeMap::new(),
            map: HashMap::new(),
        }
    }
}

impl Index {
    /// Bring the index up to date with `dir`'s logs of the `retention`
    /// window (see [`first_day`]) through the day after `now_ms`'s (a writer's clock may run
    /// ahead). Days before yesterday, once looked at, are not looked at
    /// again (nobody writes a day log of the past).
    pub fn refresh(&mut self, dir: &Path, now_ms: i64, retention: Duration) {
        let today = day_of_ms(now_ms);
        let first = first_day(now_ms, retention);
        if first != self.first_day || !self.catch_up(dir, first, today) {
            self.first_day = first;
            self.files.clear();
            self.map.clear();
            self.catch_up(dir, first, today);
        }
    }

    /// Whether a record of `message_id` is known (as of the last refresh).
    pub fn contains(&self, message_id: &str) -> bool {
        id_key(message_id.as_bytes()).is_some_and(|k| self.map.contains_key(&k))
    }

    /// The current record of `message_id` (as of the last refresh), read
    /// back from its day log.
    pub fn record(&self, dir: &Path, message_id: &str) -> Option<serde_json::Value> {
        let loc = self.map.get(&id_key(message_id.as_bytes())?)?;
        let f = open_regular(&paths::day_log(dir, loc.day))?;
        let mut buf = vec![0u8; loc.len as usize];
        let n = super::file::read_at_most(&f, &mut buf, loc.offset).ok()?;
        let v = parse_line(&buf[..n])?;
        (v.get("message_id").and_then(serde_json::Value::as_str) == Some(message_id)).then_some(v)
    }

    /// Read what was appended since the last look. False when a file read
    /// before was replaced, shrank or vanished (the caller rebuilds).
    fn catch_up(&mut self, dir: &Path, first: i64, today: i64) -> bool {
        for day in first..=today + 1 {
            let known = self.files.get(&day).copied();
            if day < today - 1 && known.is_some() {
                continue;
            }
            let known = known.flatten();
            let path = paths::day_log(dir, day);
            // One lstat when nothing was appended; open only to read more.
            let Some(seen) = fs::symlink_metadata(&path)
                .ok()
                .filter(fs::Metadata::is_file)
            else {
                if known.is_some() {
                    return false;
                }
                self.files.insert(day, None);
                continue;
            };
            if known
                .is_some_and(|c| (c.dev, c.ino, c.offset) == (seen.dev(), seen.ino(), seen.len()))
            {
                continue;
            }
            let Some(f) = open_regular(&path) else {
                continue;
            };
            let Ok(meta) = f.metadata() else { continue };
            let mut cur = known.unwrap_or(Cursor {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 0,
            });
            if (cur.dev, cur.ino) != (meta.dev(), meta.ino()) || meta.len() < cur.offset {
                return false;
            }
            if meta.len() > cur.offset {
                let mut buf = vec![0u8; (meta.len() - cur.offset) as usize];
                let Ok(n) = super::file::read_at_most(&f, &mut buf, cur.offset) else {
                    continue;
                };
                buf.truncate(n);
                let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                let mut at = 0usize;
                for line in buf[..whole].split(|&b| b == b'\n') {
                    let offset = cur.offset + at as u64;
                    at += line.len() + 1;
                    self.fold(day, offset, line);
                }
                cur.offset += whole as u64;
            }
            self.files.insert(day, Some(cur));
        }
        true
    }

    fn fold(&mut self, day: i64, offset: u64, line: &[u8]) {
        let Ok(len) = u32::try_from(line.len()) else {
            return;
        };
        let Some((key, withdraw)) = classify(line) else {
            return;
        };
        if withdraw {
            self.map.remove(&key);
        } else {
            self.map.entry(key).or_insert(Loc { day, offset, len });
        }
    }
}

/// One [`Index`] per directory for the whole process; a store module keeps
/// one of these in a `static`.
pub struct Indexes(Mutex<Option<HashMap<PathBuf, Index>>>);

impl Default for Indexes {
    fn default() -> Self {
        Self::new()
    }
}

impl Indexes {
    pub const fn new() -> Self {
        Indexes(Mutex::new(None))
    }

    /// Run `f` on `dir`'s index, brought up to date (see [`Index::refresh`]).
    pub fn with<R>(
        &self,
        dir: &Path,
        now_ms: i64,
        retention: Duration,
        f: impl FnOnce(&Index) -> R,
    ) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let index = guard
            .get_or_insert_with(HashMap::new)
            .entry(dir.to_path_buf())
            .or_default();
        index.refresh(dir, now_ms, retention);
        f(index)
    }
}

/// The day log at `path`, opened for reading if it is a regular file
/// (never through a symlink, never blocking on a fifo).
fn open_regular(path: &Path) -> Option<fs::File> {
    super::file::open_regular_io(path, fs::OpenOptions::new().read(true))
        .ok()
        .map(|(f, _)| f)
}

/// A 16-hex message id as a number.
fn id_key(id: &[u8]) -> Option<u64> {
    let id = std::str::from_utf8(id).ok()?;
    if !paths::is_message_id(id) {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

/// The message id of a record line and whether it withdraws the id's
/// record. Our writers all start a line with [`ID_PREFIX`] and write a
/// withdrawal as exactly `<prefix><id>","forgotten":true}`; anything else is
/// parsed as JSON (a record glued to a torn one is taken from its start).
fn classify(line: &[u8]) -> Option<(u64, bool)> {
    let line = match memchr::memmem::rfind(line, RECORD_START) {
        Some(start) if start > 0 => &line[start..],
        _ => line,
    };
    if let Some(rest) = line.strip_prefix(ID_PREFIX)
        && rest.len() > 16
        && rest[16] == b'"'
        && let Some(key) = id_key(&rest[..16])
    {
        return Some((key, &rest[16..] == WITHDRAWN_TAIL));
    }
    let v = parse_line(line)?;
    let key = id_key(v.get("message_id")?.as_str()?.as_bytes())?;
    let withdraw = v.get("forgotten").and_then(serde_json::Value::as_bool) == Some(true);
    Some((key, withdraw))
}

/// How our writers start every record line.
const ID_PREFIX: &[u8] = b"{\"schema_version\":1,\"message_id\":\"";
/// What follows the id in a withdrawal line.
const WITHDRAWN_TAIL: &[u8] = b"\",\"forgotten\":true}";

/// One record of a line, or of the last record start in a glued line.
fn parse_line(line: &[u8]) -> Option<serde_json::Value> {
    if line.is_empty() {
        return None;
    }
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_slice(line) {
        return Some(v);
    }
    let start = memchr::memmem::rfind(line, RECORD_START)?;
    match serde_json::from_slice(&line[start..]) {
        Ok(v @ serde_json::Value::Object(_)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 20_000 * DAY_MS + 5_000;
    const WEEK: Duration = Duration::from_secs(7 * 86_400);
    const A: &str = "000000000000000a";
    const B: &str = "000000000000000b";

    fn rec(id: &str, x: &str) -> String {
        format!("{{\"schema_version\":1,\"message_id\":\"{id}\",\"x\":\"{x}\"}}\n")
    }

    fn x_of(ix: &Index, dir: &Path, id: &str) -> Option<String> {
        ix.record(dir, id)
            .map(|v| v["x"].as_str().unwrap_or_default().to_string())
    }

    #[test]
    fn appends_are_found_incrementally_and_the_first_record_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut ix = Index::default();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(A));
        append(&dir, 20_000, rec(A, "1").as_bytes()).unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert_eq!(x_of(&ix, &dir, A).as_deref(), Some("1"));
        append(&dir, 20_000, (rec(A, "2") + &rec(B, "3")).as_bytes()).unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert_eq!(x_of(&ix, &dir, A).as_deref(), Some("1"));
        assert_eq!(x_of(&ix, &dir, B).as_deref(), Some("3"));
        // An older day's record of the same id is older: it wins.
        append(&dir, 19_999, rec(B, "0").as_bytes()).unwrap();
        let mut fresh = Index::default();
        fresh.refresh(&dir, NOW, WEEK);
        assert_eq!(x_of(&fresh, &dir, B).as_deref(), Some("0"));
        let mode = fs::metadata(paths::day_log(&dir, 20_000)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_withdrawal_removes_the_record_and_a_later_one_counts_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let tomb = format!("{{\"schema_version\":1,\"message_id\":\"{A}\",\"forgotten\":true}}\n");
        append(&dir, 20_000, (rec(A, "1") + &tomb).as_bytes()).unwrap();
        let mut ix = Index::default();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(A));
        append(&dir, 20_000, rec(A, "2").as_bytes()).unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert_eq!(x_of(&ix, &dir, A).as_deref(), Some("2"));
        // Another writer's key order is parsed, not matched.
        append(
            &dir,
            20_000,
            format!("{{\"message_id\":\"{B}\",\"x\":\"9\"}}\n").as_bytes(),
        )
        .unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert!(ix.contains(B));
    }

    #[test]
    fn a_partial_line_waits_and_a_glued_line_is_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        fs::create_dir(&dir).unwrap();
        // A torn record, then one glued to it, not yet ended.
        let glued = format!(
            "{{\"schema_version\":1,\"message_id\":\"{B}\",\"x\"{}",
            rec(A, "4")
        );
        fs::write(paths::day_log(&dir, 20_000), glued.trim_end()).unwrap();
        let mut ix = Index::default();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(A), "no newline yet");
        append(&dir, 20_000, b"\n").unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert_eq!(x_of(&ix, &dir, A).as_deref(), Some("4"));
        assert!(!ix.contains(B), "the torn record is lost, not misread");
    }

    #[test]
    fn a_replaced_file_rebuilds_and_old_days_fall_out_and_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut ix = Index::default();
        append(&dir, 19_990, rec(B, "old").as_bytes()).unwrap();
        append(&dir, 20_000, rec(A, "1").as_bytes()).unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(B), "outside the window");
        assert!(ix.contains(A));
        let p = paths::day_log(&dir, 20_000);
        fs::remove_file(&p).unwrap();
        // Replaced by a shorter file (a same-size one with a reused inode
        // number would go unnoticed: nobody but gc removes a day log).
        append(&dir, 20_000, b"{}\n").unwrap();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(A), "rebuilt");
        assert_eq!(super::super::file::gc_records(&dir, NOW, WEEK), 1);
        assert!(p.exists() && !paths::day_log(&dir, 19_990).exists());
    }

    #[test]
    fn symlinked_logs_are_never_written_or_read_through() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        fs::create_dir(&dir).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, rec(A, "planted")).unwrap();
        std::os::unix::fs::symlink(&outside, paths::day_log(&dir, 20_000)).unwrap();
        assert!(append(&dir, 20_000, rec(B, "1").as_bytes()).is_err());
        assert_eq!(fs::read_to_string(&outside).unwrap(), rec(A, "planted"));
        let mut ix = Index::default();
        ix.refresh(&dir, NOW, WEEK);
        assert!(!ix.contains(A));
    }
}
