//! Crash-consistency primitives for the JSONL files of the store (§3).
//!
//! Invariants defended:
//! - healing append: a torn last line (no trailing `\n`, left by a writer that
//!   died mid-append) can never glue onto the next record — the new bytes are
//!   prefixed with `\n` so only the torn record is lost;
//! - atomic replace: readers see either the old or the new whole file, never a
//!   half-written one (temp `<target>.tmp.<pid>.<12hex>`, `0600`, same dir,
//!   then `rename`); the registry and claim records use the original's temp
//!   name `<target>.<own pid>.tmp` instead ([`write_pretty_json`]);
//! - tolerant reading: files are read whole as bytes and split on `\n`; lines
//!   keep their raw bytes (so survivors are written back byte-exact even when
//!   they hold invalid UTF-8) and are decoded lossily (U+FFFD) only for parsing;
//! - files this module creates are `0600`; an existing looser file is tightened;
//! - a store file that is a symlink is never followed (`O_NOFOLLOW`): reading
//!   or truncating it fails with [`StoreError::NotRegular`] instead of
//!   touching a file elsewhere, and appending replaces the link itself with a
//!   regular file holding just the new bytes (rename in the same directory;
//!   the link's target is never read or written) — beyond the original,
//!   which follows the link;
//! - nothing blocks on a FIFO planted as a store file (`O_NONBLOCK` on open):
//!   a store file that is not a regular file is refused with its kind.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{StoreError, StoreResult};
use super::paths::{FILE_MODE, is_message_id};

/// Open the store file `path` with `opts`, never through a symlink and never
/// blocking on a FIFO; anything but a regular file is
/// [`StoreError::NotRegular`]. Returns the file's metadata too (the one
/// `fstat` the kind check needs), so callers never stat it again.
fn open_regular(
    path: &Path,
    opts: &mut fs::OpenOptions,
    op: &'static str,
) -> StoreResult<(fs::File, fs::Metadata)> {
    let not_regular = |path: &Path| -> Option<StoreError> {
        let kind = kind_name(fs::symlink_metadata(path).ok()?.file_type())?;
        Some(StoreError::NotRegular {
            path: path.to_path_buf(),
            kind,
        })
    };
    match opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => {
            let meta = f.metadata().map_err(|e| StoreError::io("stat", path, e))?;
            match kind_name(meta.file_type()) {
                None => Ok((f, meta)),
                Some(kind) => Err(StoreError::NotRegular {
                    path: path.to_path_buf(),
                    kind,
                }),
            }
        }
        Err(e) => Err(not_regular(path).unwrap_or_else(|| StoreError::io(op, path, e))),
    }
}

/// [`open_regular`] for callers that only need to know whether it worked
/// (lock sidecars, day logs): the same flags and the one `fstat`, without
/// the extra `lstat` that names what sits there instead. A link, a FIFO or
/// any other non-regular file is an `InvalidInput` error.
pub(super) fn open_regular_io(
    path: &Path,
    opts: &mut fs::OpenOptions,
) -> io::Result<(fs::File, fs::Metadata)> {
    let f = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok((f, meta))
}

/// Read the rest of `f` into a buffer sized for `hint` bytes: one `read(2)`
/// when the file did not grow since it was stat'ed (a short read of a regular
/// file is its end), no size probe of its own.
pub(super) fn read_to_vec(f: &fs::File, hint: u64) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut b: Vec<u8> = Vec::with_capacity(usize::try_from(hint).unwrap_or(0) + 1);
    loop {
        if b.len() == b.capacity() {
            b.reserve(b.capacity().max(8192));
        }
        let spare = b.capacity() - b.len();
        // SAFETY: `read` writes at most `spare` bytes into the vector's
        // uninitialised tail, and `set_len` covers only the bytes it wrote.
        let n = unsafe { libc::read(f.as_raw_fd(), b.as_mut_ptr().add(b.len()).cast(), spare) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        unsafe { b.set_len(b.len() + n) };
        if n == 0 || n < spare {
            return Ok(b);
        }
    }
}

/// The kind of a file that is not a regular file; `None` for a regular one.
fn kind_name(t: fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    Some(if t.is_file() {
        return None;
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else {
        "device"
    })
}

/// Append `bytes` to `path` (created `0600` if missing), first writing a `\n`
/// when the file is non-empty and does not end with one (§3.1). One `write`
/// call carries the whole payload. A symlink at `path` is replaced by a
/// regular file holding just `bytes` (traced `store_symlink_replaced`); its
/// target is neither read nor written. Call under the file's lock.
pub fn append_healing(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    append_healing_if(path, bytes, |_, _| Ok(true)).map(drop)
}

/// [`append_healing`], with a last word: `go` sees the open file (readable)
/// and its metadata before anything is written and decides whether to
/// append at all, so a caller that must look at the file first (the
/// ledger's retention) opens it once. `Ok(false)` = `go` said no and nothing
/// was written. A symlink at `path` is replaced without asking `go`.
pub fn append_healing_if(
    path: &Path,
    bytes: &[u8],
    go: impl FnOnce(&fs::File, &fs::Metadata) -> io::Result<bool>,
) -> StoreResult<bool> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true).append(true).create(true).mode(FILE_MODE);
    let (mut f, meta) = match open_regular(path, &mut opts, "open") {
        Ok(opened) => opened,
        Err(e) if e.is_symlink() => {
            atomic_replace(path, bytes)?;
            crate::trace::event(
                "store_symlink_replaced",
                serde_json::json!({"path": path.display().to_string()}),
            );
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    if !go(&f, &meta).map_err(|e| StoreError::io("read", path, e))? {
        return Ok(false);
    }
    tighten(path, &meta);
    let mut heal = false;
    if meta.len() > 0 {
        let mut last = [0u8; 1];
        let n = f
            .read_at(&mut last, meta.len() - 1)
            .map_err(|e| StoreError::io("read", path, e))?;
        heal = n == 1 && last[0] != b'\n';
    }
    let mut payload = Vec::with_capacity(bytes.len() + 1);
    if heal {
        payload.push(b'\n');
    }
    payload.extend_from_slice(bytes);
    f.write_all(&payload)
        .map(|()| true)
        .map_err(|e| StoreError::io("append to", path, e))
}

/// Remove group/other bits from an existing file we are about to write.
fn tighten(path: &Path, meta: &fs::Metadata) {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & !FILE_MODE != 0 {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode & FILE_MODE));
    }
}

/// `<target>.tmp.<own pid>.<12 lowercase hex>` (§1.3).
pub fn temp_path_for(target: &Path) -> PathBuf {
    let mut bytes = [0u8; 6];
    rand::fill(&mut bytes[..]);
    let mut s = target.as_os_str().to_owned();
    s.push(format!(
        ".tmp.{}.{}",
        super::paths::own_pid(),
        hex::encode(bytes)
    ));
    PathBuf::from(s)
}

/// Replace `target` with `content` atomically (§3.2): write a `0600` temp in
/// the same directory, then rename it over the target. On failure the temp is
/// removed (the original leaves it behind).
pub fn atomic_replace(target: &Path, content: &[u8]) -> StoreResult<()> {
    let tmp = temp_path_for(target);
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        f.write_all(content)?;
        fs::rename(&tmp, target)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io("atomically replace", target, e)
    })
}

/// Write `value` as pretty JSON (2 spaces, no trailing newline) to `target`
/// atomically: a `0600` temp `<target>.<own pid>.tmp` (the name the original
/// uses for registry and claim files, so its readers' `*.json` filters skip
/// it), then `rename`. On failure the temp is removed.
pub fn write_pretty_json(target: &Path, value: &impl serde::Serialize) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", super::paths::own_pid()));
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        drop(f);
        // A temp left behind by a crashed writer may have looser bits.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(FILE_MODE))?;
        fs::rename(&tmp, target)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Publish `content` at `target` only if nothing is there yet (write-once
/// records): `open(O_CREAT | O_EXCL)` on the final name, which fails on any
/// existing entry (a symlink included, never followed), so a second writer
/// never replaces the first; then one `write` of the whole record. A write
/// that fails removes the file it created. `Ok(false)` = a record was already
/// there.
///
/// A reader racing the writer can see the file empty or short for the span
/// of that one `write`; record readers treat a record that does not parse as
/// what it means for them (a receipt: delivered, details unknown; an outbox
/// record: none yet — the sender writes it before the message can be seen,
/// so nobody can ask about it before it is whole). This is how the hooks
/// publish receipts too (`noclobber`); three system calls instead of a temp
/// file, a link and an unlink.
pub fn create_once(target: &Path, content: &[u8]) -> io::Result<bool> {
    let mut f = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    f.write_all(content).inspect_err(|_| {
        let _ = fs::remove_file(target);
    })?;
    Ok(true)
}

/// Run `op`; when it fails because `dir` does not exist yet, create `dir`
/// (`0700`) and run it once more.
pub(super) fn after_mkdir<T>(dir: &Path, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match op() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            super::paths::ensure_private_dir(dir)?;
            op()
        }
        other => other,
    }
}

/// [`create_once`] of a record in `dir`, creating `dir` (`0700`) when it
/// does not exist yet.
pub fn create_record(dir: &Path, target: &Path, content: &[u8]) -> io::Result<bool> {
    after_mkdir(dir, || create_once(target, content))
}

/// Retention of a directory of day logs and of write-once records named by
/// message id (receipts, outbox): remove day logs of days before the
/// retention window (`daylog`), records older than `retention` by mtime, and
/// temp files a crashed writer left (older than an hour). Returns how many
/// files were removed.
pub fn gc_records(dir: &Path, now_ms: i64, retention: Duration) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let keep_ms = retention.as_millis() as i64;
    let oldest_day = super::daylog::first_day(now_ms, retention);
    let mut removed = 0;
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(day) = super::paths::day_log_day(name) {
            if day < oldest_day && fs::remove_file(ent.path()).is_ok() {
                removed += 1;
            }
            continue;
        }
        let limit = if is_message_id(name) {
            keep_ms
        } else if name.contains(".tmp.") {
            3_600_000
        } else {
            continue;
        };
        let Ok(meta) = ent.metadata() else { continue };
        let Some(mtime) = super::activity::mtime_ms(&meta) else {
            continue;
        };
        if now_ms - (mtime as i64) > limit && fs::remove_file(ent.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The whole file, or `None` when it does not exist. A symlink or any other
/// non-regular file is [`StoreError::NotRegular`] (never read through).
pub fn read_all(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    Ok(read_all_with_meta(path)?.map(|(bytes, _)| bytes))
}

/// [`read_all`], with the metadata of the file that was read (its mtime
/// without a second stat).
pub fn read_all_with_meta(path: &Path) -> StoreResult<Option<(Vec<u8>, fs::Metadata)>> {
    let (f, meta) = match open_regular(path, fs::OpenOptions::new().read(true), "read") {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    read_to_vec(&f, meta.len())
        .map(|bytes| Some((bytes, meta)))
        .map_err(|e| StoreError::io("read", path, e))
}

/// The end of `path`, cut at a line boundary, holding at least `min_lines`
/// complete lines when the file has that many (else the whole file); `None`
/// when the file does not exist; a symlink or other non-regular file is
/// [`StoreError::NotRegular`], as for [`read_all`]. No lock: the store only changes a file by
/// appending whole lines or by renaming a new file over it, so the open file
/// is always a consistent prefix. Reads from the end in growing chunks, so a
/// big ledger costs only its tail.
pub fn read_tail(path: &Path, min_lines: usize) -> StoreResult<Option<Vec<u8>>> {
    let (f, meta) = match open_regular(path, fs::OpenOptions::new().read(true), "read") {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = meta.len();
    // A first guess of 512 bytes a line (a ledger record with a short body),
    // growing fourfold while too few lines came back.
    let mut chunk: u64 = (min_lines as u64).saturating_mul(512).max(4096);
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = vec![0u8; (len - start) as usize];
        let got = read_at_most(&f, &mut buf, start).map_err(|e| StoreError::io("read", path, e))?;
        buf.truncate(got);
        if start == 0 {
            return Ok(Some(buf));
        }
        // The first line may be cut: keep what follows its end.
        if let Some(nl) = memchr::memchr(b'\n', &buf) {
            let tail = buf.split_off(nl + 1);
            if lines(&tail).count() >= min_lines {
                return Ok(Some(tail));
            }
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Truncate `path` to length 0 in place (inode kept, as the hooks do);
/// a missing file is fine, a non-regular one is refused.
pub fn truncate(path: &Path) -> StoreResult<()> {
    match open_regular(path, fs::OpenOptions::new().write(true), "truncate") {
        Ok((f, _)) => f
            .set_len(0)
            .map_err(|e| StoreError::io("truncate", path, e)),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// An upper bound on `lines(content).count()`, computed without splitting:
/// the number of `\n` bytes plus a final unterminated line. Exact unless the
/// content has blank lines, which it counts.
pub fn line_count_upper_bound(content: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', content).count();
    newlines + usize::from(content.last().is_some_and(|&b| b != b'\n'))
}

/// The non-empty `\n`-separated lines of `content`, raw bytes, file order.
/// (A line of only spaces is not empty.)
pub fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', content)
        .chain(std::iter::once(content.len()))
        .map(move |end| {
            let line = &content[start.min(end)..end];
            start = end + 1;
            line
        })
        .filter(|l| !l.is_empty())
}

/// A line decoded for parsing: invalid UTF-8 becomes U+FFFD (Node's decoding).
pub fn decode(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(line)
}

/// Join lines with `\n` and a trailing `\n` (the empty list gives no bytes).
pub fn join_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

/// Read from `offset` until `buf` is full or the file ends; how many bytes
/// came (a short count means end of file).
pub(super) fn read_at_most(f: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_count_bound_is_exact_without_blank_lines_and_never_low() {
        for (content, exact) in [
            (&b""[..], 0),
            (b"a", 1),
            (b"a\n", 1),
            (b"a\nb", 2),
            (b"a\nb\n", 2),
            (b"a\n\nb\n", 2),
            (b"\n", 0),
        ] {
            assert_eq!(lines(content).count(), exact, "{content:?}");
            let bound = line_count_upper_bound(content);
            assert!(bound >= exact, "{content:?}");
            if !content.windows(2).any(|w| w == b"\n\n") && content.first() != Some(&b'\n') {
                assert_eq!(bound, exact, "{content:?}");
            }
        }
    }

    #[test]
    fn read_tail_returns_whole_lines_from_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("l.jsonl");
        assert_eq!(read_tail(&p, 3).unwrap(), None);
        fs::write(&p, b"a\nb\nc\n").unwrap();
        assert_eq!(read_tail(&p, 2).unwrap().unwrap(), b"a\nb\nc\n");
        // Big enough to need several chunks: 20,000 lines of 20 bytes.
        let mut big = Vec::new();
        for i in 0..20_000 {
            big.extend_from_slice(format!("{i:019}\n").as_bytes());
        }
        fs::write(&p, &big).unwrap();
        let tail = read_tail(&p, 5).unwrap().unwrap();
        let got: Vec<&[u8]> = lines(&tail).collect();
        assert!(got.len() >= 5 && got.len() < 20_000, "{}", got.len());
        assert_eq!(*got.last().unwrap(), format!("{:019}", 19_999).as_bytes());
        assert_eq!(got[0].len(), 19, "starts on a line boundary");
        let all = read_tail(&p, 100_000).unwrap().unwrap();
        assert_eq!(all, big);
    }

    #[test]
    fn healing_append_separates_a_torn_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.jsonl");
        append_healing(&p, b"a\n").unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        append_healing(&p, b"b\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a\n{\"torn\nb\n");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn append_tightens_a_loose_existing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.jsonl");
        fs::write(&p, b"").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        append_healing(&p, b"x\n").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"x\n");
    }

    #[test]
    fn pretty_json_replaces_a_loose_stale_temp_and_leaves_none() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("7.json");
        let stale = tmp
            .path()
            .join(format!("7.json.{}.tmp", std::process::id()));
        fs::write(&stale, b"junk junk junk").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o644)).unwrap();
        write_pretty_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!stale.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_replace_uses_a_private_temp_and_leaves_none() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("l.jsonl");
        fs::write(&p, b"old\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        atomic_replace(&p, b"new\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new\n");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let t = temp_path_for(&p);
        let name = t.file_name().unwrap().to_str().unwrap();
        let rest = name.strip_prefix("l.jsonl.tmp.").unwrap();
        let (pid, hx) = rest.split_once('.').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert_eq!(hx.len(), 12);
        assert!(
            hx.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn lines_skip_empty_but_keep_space_lines_and_raw_bytes() {
        let c = b"a\n\n  \n\xff\xfeb\nlast";
        let v: Vec<&[u8]> = lines(c).collect();
        assert_eq!(v, vec![&b"a"[..], b"  ", b"\xff\xfeb", b"last"]);
        assert_eq!(decode(b"\xffb"), "\u{fffd}b");
        assert_eq!(join_lines(v.iter().copied()), b"a\n  \n\xff\xfeb\nlast\n");
    }

    #[test]
    fn truncate_keeps_the_inode_and_tolerates_missing() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.jsonl");
        fs::write(&p, b"abc\n").unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        truncate(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        truncate(&tmp.path().join("missing")).unwrap();
        assert_eq!(read_all(&tmp.path().join("missing")).unwrap(), None);
    }

    #[test]
    fn a_symlink_is_never_read_or_written_through_and_an_append_replaces_it() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        fs::write(&target, b"theirs\n").unwrap();
        let p = tmp.path().join("l.jsonl");
        symlink(&target, &p).unwrap();
        let err = read_all(&p).unwrap_err();
        assert!(err.is_symlink(), "{err}");
        assert!(!err.to_string().contains("os error"), "{err}");
        assert!(truncate(&p).unwrap_err().is_symlink());
        append_healing(&p, b"ours\n").unwrap();
        assert!(fs::symlink_metadata(&p).unwrap().is_file());
        assert_eq!(fs::read(&p).unwrap(), b"ours\n");
        assert_eq!(fs::read(&target).unwrap(), b"theirs\n");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A dangling link is a symlink too, and is replaced the same way.
        let q = tmp.path().join("m.jsonl");
        symlink(tmp.path().join("nowhere"), &q).unwrap();
        assert!(read_all(&q).unwrap_err().is_symlink());
        append_healing(&q, b"x\n").unwrap();
        assert_eq!(fs::read(&q).unwrap(), b"x\n");
        assert!(!tmp.path().join("nowhere").exists());
    }

    #[test]
    fn non_regular_files_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("f.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for err in [
            read_all(&fifo).unwrap_err(),
            append_healing(&fifo, b"x\n").unwrap_err(),
            truncate(&fifo).unwrap_err(),
        ] {
            assert!(
                matches!(err, StoreError::NotRegular { kind: "FIFO", .. }),
                "{err}"
            );
        }
        let dir = tmp.path().join("d.jsonl");
        fs::create_dir(&dir).unwrap();
        let err = read_all(&dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is a directory, not a regular file", dir.display())
        );
        assert!(
            append_healing(&dir, b"x\n")
                .unwrap_err()
                .to_string()
                .contains("d.jsonl")
        );
    }
}
