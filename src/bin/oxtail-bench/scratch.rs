//! Where the benchmark's scratch files live, and the one temp-root type every
//! area uses.
//!
//! A run makes one pass per scratch kind (`--scratch`): `default` is the
//! environment's temporary directory (`TMPDIR`, else `/tmp` — on most Linux
//! machines an ordinary disk, where users are), `tmpfs` is `/dev/shm` when it
//! exists. The pass's directory is process-wide state set between passes,
//! when no scenario is running; every sandbox, home and store root is made
//! under it and removed on drop.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One scratch kind: its label in the tables and its directory.
#[derive(Debug, Clone)]
pub struct Scratch {
    pub label: &'static str,
    pub dir: PathBuf,
}

static CURRENT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The scratch kinds named by `spec` (`default`, `tmpfs`, `both`), the ones
/// this machine lacks left out with a note on stderr.
pub fn kinds(spec: &str) -> Result<Vec<Scratch>, String> {
    let default = Scratch {
        label: "default",
        dir: std::env::temp_dir(),
    };
    let shm = Path::new("/dev/shm");
    let tmpfs = shm.is_dir().then(|| Scratch {
        label: "tmpfs",
        dir: shm.to_path_buf(),
    });
    let mut out = Vec::new();
    match spec {
        "default" => out.push(default),
        "tmpfs" | "both" => {
            if spec == "both" {
                out.push(default);
            }
            match tmpfs {
                Some(t) => out.push(t),
                None => eprintln!("scratch: no /dev/shm on this machine; tmpfs pass skipped"),
            }
        }
        other => {
            return Err(format!(
                "--scratch {other}: expected default, tmpfs or both"
            ));
        }
    }
    Ok(out)
}

/// Make `s` the directory of every temp root created from now on.
pub fn enter(s: &Scratch) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.dir.clone());
}

/// The current pass's directory (the environment's temp dir before any pass).
pub fn dir() -> PathBuf {
    CURRENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(std::env::temp_dir)
}

/// The file system type of `p` (Linux `statfs`), for the header line.
pub fn fs_kind(p: &Path) -> String {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return "?".into();
        };
        // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return "?".into();
        }
        match st.f_type as i64 {
            0x0102_1994 => "tmpfs".into(),
            0xEF53 => "ext4".into(),
            0x5846_5342 => "xfs".into(),
            0x9123_683E => "btrfs".into(),
            0x794C_7630 => "overlayfs".into(),
            t => format!("fs 0x{t:x}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = p;
        "?".into()
    }
}

/// A fresh directory `oxtail-bench-<tag>-<12 hex>` under [`dir`], removed
/// (with everything in it) on drop.
pub struct TempRoot(PathBuf);

impl TempRoot {
    pub fn new(tag: &str) -> TempRoot {
        let mut b = [0u8; 6];
        rand::fill(&mut b[..]);
        let p = dir().join(format!("oxtail-bench-{tag}-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).expect("scratch dir");
        TempRoot(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A store rooted at `<this>/.oxtail`.
    pub fn layout(&self) -> oxtail::store::paths::Layout {
        oxtail::store::paths::Layout::at(self.0.join(".oxtail"))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
