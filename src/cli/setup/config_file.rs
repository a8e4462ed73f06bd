//! One user configuration file that `oxtail setup` reads and may rewrite
//! (`~/.claude.json`, `$CODEX_HOME/config.toml`, `$CODEX_HOME/hooks.json`).
//!
//! Invariants defended:
//! - a symlinked file is edited through the link: the link stays a link and
//!   its target receives the new text;
//! - a file is only ever replaced whole (temp file in the target's directory,
//!   then rename), keeping the target's permission bits;
//! - every rewrite of an existing file is preceded by a verbatim backup
//!   `<path>.oxtail-backup.<timestamp>` beside the path the user knows;
//! - a file another program changed after we read it is not overwritten.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A path as messages show it (`~/…`).
fn shown(path: &Path) -> String {
    super::display(path)
}

/// Mode of a configuration file we create (the clients create theirs `0600`).
const NEW_FILE_MODE: u32 = 0o600;

/// A configuration file as read before any change.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The path as the user knows it (may be a symlink).
    pub path: PathBuf,
    /// Where the bytes live: `path` with every symlink resolved.
    pub real: PathBuf,
    /// The text read, `None` when the file does not exist.
    pub text: Option<String>,
}

impl ConfigFile {
    /// Read `path`, following symlinks. A missing file is not an error; a
    /// dangling link, a directory or non-UTF-8 content is.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let real = resolve(path)?;
        let text = match fs::read(&real) {
            Ok(bytes) => Some(
                String::from_utf8(bytes)
                    .map_err(|_| format!("{} is not UTF-8 text; not touching it", shown(path)))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", shown(path))),
        };
        Ok(ConfigFile {
            path: path.to_path_buf(),
            real,
            text,
        })
    }

    /// True when the user's path is a symlink.
    pub fn is_link(&self) -> bool {
        self.real != self.path
    }

    /// Replace the file's content with `new_text`: backup first (when the file
    /// existed), then an atomic replace of the link target. Returns the backup
    /// path, if one was written.
    pub fn write(&self, new_text: &str, stamp: &str) -> Result<Option<PathBuf>, String> {
        let current = match fs::read(&self.real) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot re-read {}: {e}", shown(&self.path))),
        };
        if current.as_deref() != self.text.as_deref().map(str::as_bytes) {
            return Err(format!(
                "{} was changed by another program while setup ran; it was left as is: run setup again",
                shown(&self.path)
            ));
        }
        let mode = match fs::metadata(&self.real) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(_) => NEW_FILE_MODE,
        };
        let backup = match &self.text {
            Some(old) => Some(self.backup(old, stamp)?),
            None => None,
        };
        let dir = self.real.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", shown(dir)))?;
        replace(&self.real, new_text.as_bytes(), mode)
            .map_err(|e| format!("cannot write {}: {e}", shown(&self.path)))?;
        Ok(backup)
    }

    /// Write `old` verbatim to `<path>.oxtail-backup.<stamp>` (never over an
    /// existing file: a numeric suffix is added instead).
    pub fn backup(&self, old: &str, stamp: &str) -> Result<PathBuf, String> {
        let base = format!("{}.oxtail-backup.{stamp}", self.path.display());
        for n in 0..100 {
            let candidate = if n == 0 {
                PathBuf::from(&base)
            } else {
                PathBuf::from(format!("{base}-{n}"))
            };
            let opened = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(NEW_FILE_MODE)
                .open(&candidate);
            match opened {
                Ok(mut f) => {
                    f.write_all(old.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| format!("cannot write backup {}: {e}", shown(&candidate)))?;
                    return Ok(candidate);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!("cannot write backup {}: {e}", shown(&candidate)));
                }
            }
        }
        Err(format!("too many backups named {base}*"))
    }
}

/// The timestamp used in backup names: ISO-8601 UTC with `:` and `.` as `-`
/// (the same form `install-hook` uses, e.g. `2026-05-13T10-20-30-123Z`).
pub fn backup_stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now)
        .to_string()
        .replace([':', '.'], "-")
}

/// `path` with every symlink resolved; a missing file resolves to itself (or
/// to the missing target of a link whose directory exists).
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)
                    .map_err(|e| format!("cannot read link {}: {e}", shown(&current)))?;
                current = if target.is_absolute() {
                    target
                } else {
                    current.parent().unwrap_or(Path::new("/")).join(target)
                };
            }
            Ok(meta) if meta.is_dir() => {
                return Err(format!(
                    "{} is a directory, not a file; not touching it",
                    shown(path)
                ));
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if current != path {
                    return Err(format!(
                        "{} is a symlink to {}, which does not exist; fix or remove the link first",
                        shown(path),
                        shown(&current)
                    ));
                }
                return Ok(current);
            }
            Err(e) => return Err(format!("cannot inspect {}: {e}", shown(&current))),
        }
    }
    Err(format!("{} is a symlink loop", shown(path)))
}

/// Atomically replace `target` with `bytes` (temp file in the same directory,
/// fsync, rename), giving it `mode`.
pub fn replace(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(
        ".{name}.oxtail-tmp-{}",
        crate::store::lock::new_token()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_goes_through_a_symlink_and_backs_up() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real.json");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let f = ConfigFile::load(&link).unwrap();
        assert!(f.is_link());
        assert_eq!(f.text.as_deref(), Some("old"));
        let backup = f.write("new", "STAMP").unwrap().unwrap();
        assert_eq!(fs::read_to_string(&backup).unwrap(), "old");
        assert!(backup.ends_with("link.json.oxtail-backup.STAMP"));
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        let mode = fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn refuses_when_changed_meanwhile_and_on_dangling_links() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.toml");
        fs::write(&p, "a").unwrap();
        let f = ConfigFile::load(&p).unwrap();
        fs::write(&p, "b").unwrap();
        assert!(f.write("c", "S").unwrap_err().contains("changed"));
        assert_eq!(fs::read_to_string(&p).unwrap(), "b");
        let dangling = tmp.path().join("d.toml");
        std::os::unix::fs::symlink("missing/x.toml", &dangling).unwrap();
        assert!(
            ConfigFile::load(&dangling)
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn backup_stamp_has_no_colons_or_dots() {
        let s = backup_stamp(SystemTime::UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00-00-00-000Z");
    }
}
