//! `oxtail install-hook` / `oxtail uninstall-hook`: put the embedded hook
//! files into `~/.oxtail/hooks/` and register them in
//! `~/.claude/settings.json` (or take both out again).
//!
//! Invariants defended:
//! - nothing is written before everything was checked: a settings file that is
//!   not strict JSON, not an object, or has a `hooks` shape we cannot edit is
//!   refused with a clear message and no side effect (no scripts, no backup);
//! - every rewrite of an existing settings file is preceded by a verbatim
//!   backup and goes through symlinks keeping the target's mode
//!   (`setup::config_file`);
//! - idempotent: when the settings and the installed files already match what
//!   this binary ships, nothing at all is written;
//! - the idle watcher (`asyncRewake`) is registered only when the installed
//!   Claude Code supports it ([`HookOptions::detect`]); otherwise ours is
//!   taken out, so a downgraded client never gets an option it ignores.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::hook_assets::{
    HOOK_FILES, HOOK_MARKER_VERSION, HookFile, OXTAIL_BIN_FILE, event_list, settings_path,
};
use super::hook_settings as edit;
use super::setup::config_file::{ConfigFile, backup_stamp};
use crate::store::paths::{Layout, ensure_private_dir, home_dir};

/// Mode of the installed scripts (run and sourced by the same user).
const SCRIPT_MODE: u32 = 0o700;

#[derive(clap::Args, Debug)]
pub struct InstallArgs {}

#[derive(clap::Args, Debug)]
pub struct UninstallArgs {}

/// What a run did, as lines for stdout (`out`) and stderr (`notes`).
#[derive(Debug, Default)]
pub struct Report {
    pub out: Vec<String>,
    pub notes: Vec<String>,
}

/// What an install registers beyond the three hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookOptions {
    /// Register the idle watcher (`asyncRewake` Stop hook).
    pub idle_watch: bool,
    /// The Claude Code whose support was detected (for messages).
    pub claude: Option<PathBuf>,
    /// The oxtail binary the watcher runs, recorded beside the hooks.
    pub oxtail_bin: Option<PathBuf>,
}

impl HookOptions {
    /// Detect what the installed Claude Code supports (`OXTAIL_CLAUDE_BIN` or
    /// `claude` on PATH) and name this binary for the watcher.
    pub fn detect() -> HookOptions {
        let claude = super::claude_bin::idle_watch_capable();
        HookOptions {
            idle_watch: claude.is_some(),
            claude,
            oxtail_bin: super::setup::binary_path().ok().map(PathBuf::from),
        }
    }
}

pub fn install(_args: InstallArgs) -> ExitCode {
    finish(
        "install-hook",
        install_at_with(
            &home_dir(),
            SystemTime::now(),
            &HookOptions::detect(),
            &mut |_| false,
        ),
    )
}

pub fn uninstall(_args: UninstallArgs) -> ExitCode {
    finish(
        "uninstall-hook",
        uninstall_at(&home_dir(), SystemTime::now()),
    )
}

fn finish(what: &str, result: Result<Report, String>) -> ExitCode {
    match result {
        Ok(report) => {
            for n in &report.notes {
                eprintln!("{n}");
            }
            for l in &report.out {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxtail {what} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parse settings text strictly. `None` or blank = an empty object.
fn parse(text: Option<&str>) -> Result<Map<String, Value>, String> {
    let text = text.unwrap_or("");
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(root)) => Ok(root),
        Ok(_) => Err(
            "~/.claude/settings.json does not hold a JSON object at its top level; \
                      it was left unchanged: fix it by hand, then re-run"
                .into(),
        ),
        Err(e) => Err(format!(
            "~/.claude/settings.json is not valid JSON ({e}); it was left unchanged: \
             fix it by hand (comments and trailing commas are not supported), then re-run"
        )),
    }
}

/// A further edit of the parsed settings made in the same write (setup's
/// approvals); returns whether it changed anything.
pub type SettingsEdit<'a> = &'a mut dyn FnMut(&mut Map<String, Value>) -> bool;

/// Install into `home` (tests pass a temp dir; the CLI passes `$HOME`),
/// without the idle watcher.
pub fn install_at(home: &Path, now: SystemTime) -> Result<Report, String> {
    install_at_with(home, now, &HookOptions::default(), &mut |_| false)
}

/// [`install_at`] with `opts`, and `also` applied to the same settings
/// document: one backup, one write.
pub fn install_at_with(
    home: &Path,
    now: SystemTime,
    opts: &HookOptions,
    also: SettingsEdit<'_>,
) -> Result<Report, String> {
    let settings = ConfigFile::load(&settings_path(home))?;
    let before = parse(settings.text.as_deref())?;
    edit::check_shape(&before)?;
    let layout = Layout::at(home.join(".oxtail"));
    let shown_settings = display_under(&settings.path, home);
    let shown_dir = display_under(&layout.hooks_dir(), home);
    let mut report = Report::default();

    let files_current = HOOK_FILES.iter().all(|h| file_matches(&layout, h))
        && bin_file_matches(&layout, opts.oxtail_bin.as_deref());
    // The hooks are current when re-applying them with the marker's own
    // `installedAt` changes nothing.
    let hooks_current = settings.text.is_some()
        && edit::marker_installed_at(&before).is_some_and(|at| {
            let mut same = before.clone();
            edit::apply_install(&mut same, home, &at, opts.idle_watch);
            same == before
        });
    let mut after = before.clone();
    if !hooks_current {
        let stamp = humantime::format_rfc3339_millis(now).to_string();
        edit::apply_install(&mut after, home, &stamp, opts.idle_watch);
        let foreign = edit::foreign_groups(&after, home);
        if foreign > 0 {
            report.notes.push(format!(
                "note: {foreign} other hook group(s) on {} are kept and \
                 run alongside oxtail's hooks.",
                event_list()
            ));
        }
    }
    let also_changed = also(&mut after);
    if !hooks_current || !files_current {
        write_files(&layout, opts.oxtail_bin.as_deref()).map_err(|e| scripts_error(&layout, e))?;
    }
    if !hooks_current || also_changed {
        let backup = settings.write(&edit::render(&after), &backup_stamp(now))?;
        if let Some(b) = backup {
            report.out.push(format!(
                "Backed up the previous settings to {}",
                display_under(&b, home)
            ));
        }
    }
    if !hooks_current {
        report.out.push(format!(
            "Installed oxtail hooks v{HOOK_MARKER_VERSION} ({}) in {shown_settings}; scripts in {shown_dir}.",
            event_list()
        ));
        report.out.push(idle_watch_line(opts, home));
        report
            .out
            .push("To remove them: oxtail uninstall-hook".into());
    } else if !files_current {
        report.out.push(format!(
            "Settings already current; rewrote the hook files in {shown_dir}."
        ));
    } else if also_changed {
        report.out.push(format!(
            "oxtail hooks already installed (v{HOOK_MARKER_VERSION})."
        ));
    } else {
        report.out.push(format!(
            "oxtail hooks already installed (v{HOOK_MARKER_VERSION}). No changes."
        ));
    }
    Ok(report)
}

/// What the run did about the idle watcher, for the report.
fn idle_watch_line(opts: &HookOptions, home: &Path) -> String {
    match (&opts.claude, opts.idle_watch) {
        (Some(c), true) => format!(
            "Idle watcher registered (Stop, asyncRewake: {} supports it): an idle session wakes on its mail without tmux.",
            display_under(c, home)
        ),
        (_, true) => "Idle watcher registered (Stop, asyncRewake).".into(),
        (_, false) => "Idle watcher not registered: no installed Claude Code with asyncRewake \
             support was found (claude on PATH or OXTAIL_CLAUDE_BIN); idle sessions are woken \
             through tmux."
            .into(),
    }
}

/// Uninstall from `home`.
pub fn uninstall_at(home: &Path, now: SystemTime) -> Result<Report, String> {
    uninstall_at_with(home, now, &mut |_| false)
}

/// [`uninstall_at`], with `also` applied to the same settings document.
pub fn uninstall_at_with(
    home: &Path,
    now: SystemTime,
    also: SettingsEdit<'_>,
) -> Result<Report, String> {
    let settings = ConfigFile::load(&settings_path(home))?;
    let layout = Layout::at(home.join(".oxtail"));
    let shown_settings = display_under(&settings.path, home);
    let shown_dir = display_under(&layout.hooks_dir(), home);
    let mut report = Report::default();
    let mut changed = false;
    if settings.text.is_some() {
        let mut root = parse(settings.text.as_deref())?;
        let hooks_changed = edit::apply_uninstall(&mut root, home);
        let also_changed = also(&mut root);
        if (hooks_changed || also_changed)
            && let Some(b) = settings.write(&edit::render(&root), &backup_stamp(now))?
        {
            report.out.push(format!(
                "Backed up the previous settings to {}",
                display_under(&b, home)
            ));
        }
        if hooks_changed {
            report
                .out
                .push(format!("Removed oxtail hooks from {shown_settings}."));
            changed = true;
        }
    }
    let mut removed = 0;
    let files = HOOK_FILES.iter().map(|h| h.file).chain([OXTAIL_BIN_FILE]);
    for file in files {
        let p = layout.hook(file);
        match fs::remove_file(&p) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.notes.push(format!(
                "warning: could not remove {}: {e}",
                display_under(&p, home)
            )),
        }
    }
    let _ = fs::remove_dir(layout.hooks_dir());
    if removed > 0 {
        report
            .out
            .push(format!("Removed {removed} file(s) from {shown_dir}."));
    }
    if !changed && removed == 0 {
        report
            .out
            .push("oxtail hooks not installed — nothing to do.".into());
    } else if settings.text.is_none() {
        report
            .out
            .insert(0, format!("No {shown_settings}: nothing to change there."));
    }
    Ok(report)
}

/// `path` with `home` shown as `~` (the one way setup, install-hook and
/// doctor print paths).
fn display_under(path: &Path, home: &Path) -> String {
    super::setup::display_under(path, home)
}

fn scripts_error(layout: &Layout, e: io::Error) -> String {
    format!(
        "cannot write the hook scripts into {}: {e}",
        super::setup::display(&layout.hooks_dir())
    )
}

/// The recorded binary path is `bin` (or no record is wanted).
fn bin_file_matches(layout: &Layout, bin: Option<&Path>) -> bool {
    bin.is_none_or(|b| {
        fs::read(layout.hook(OXTAIL_BIN_FILE))
            .is_ok_and(|t| t == format!("{}\n", b.display()).as_bytes())
    })
}

fn file_matches(layout: &Layout, h: &HookFile) -> bool {
    fs::read(layout.hook(h.file)).is_ok_and(|b| b == h.text.as_bytes())
        && fs::metadata(layout.hook(h.file)).is_ok_and(|m| m.permissions().mode() & 0o100 != 0)
}

/// Write every embedded file atomically (temp in the same dir, then rename),
/// and the path of the oxtail binary for the watcher ([`OXTAIL_BIN_FILE`]).
fn write_files(layout: &Layout, bin: Option<&Path>) -> io::Result<()> {
    ensure_private_dir(&layout.hooks_dir())?;
    for h in &HOOK_FILES {
        write_one(layout, h.file, h.text.as_bytes())?;
    }
    if let Some(b) = bin {
        write_one(
            layout,
            OXTAIL_BIN_FILE,
            format!("{}\n", b.display()).as_bytes(),
        )?;
    }
    Ok(())
}

fn write_one(layout: &Layout, file: &str, text: &[u8]) -> io::Result<()> {
    super::setup::config_file::replace(&layout.hook(file), text, SCRIPT_MODE)
}
