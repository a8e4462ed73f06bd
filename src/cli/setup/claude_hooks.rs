//! The Claude Code hooks step of setup: a thin bridge to `install-hook` /
//! `uninstall-hook` (`cli::install_hook`), which own the hook files, the
//! `_oxtailHook` marker and `~/.claude/settings.json`.
//!
//! Invariant defended: `check` runs before setup writes anything and refuses
//! what the installer would refuse (not strict JSON, not an object, a `hooks`
//! shape it cannot edit), so a bad `settings.json` stops the whole setup.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cli::hook_assets::{Freshness, assess, settings_path};
use crate::cli::{hook_settings, install_hook};

use super::config_file::ConfigFile;
use super::json_doc::JsonDoc;

const LABEL: &str = "Claude Code hooks";

/// A checked hooks step, ready to apply.
#[derive(Debug)]
pub struct Plan {
    home: PathBuf,
    uninstall: bool,
    /// Whether settings currently register any oxtail hook (for messages).
    registered: bool,
}

/// Refuse up front what the installer would refuse.
pub fn check(home: &Path, uninstall: bool) -> Result<Plan, String> {
    let file = ConfigFile::load(&settings_path(home))?;
    let doc = JsonDoc::parse(file.text.as_deref(), "~/.claude/settings.json")?;
    if !uninstall {
        hook_settings::check_shape(&doc.root)?;
    }
    Ok(Plan {
        home: home.to_path_buf(),
        uninstall,
        registered: hook_settings::has_oxtail_entries(&doc.root, home),
    })
}

/// Run the installer (or, for a dry run, say what it would do). True on success.
pub fn apply(plan: Plan, dry_run: bool) -> bool {
    let shown = super::display(&settings_path(&plan.home));
    if dry_run {
        let what = match (plan.uninstall, assess(&plan.home)) {
            (true, _) if plan.registered => "oxtail's hooks would be removed".to_string(),
            (true, _) => "no oxtail hooks registered (installed files would be removed)".into(),
            (false, Freshness::Ok { .. }) if plan.registered => "hooks already current".into(),
            (false, Freshness::Stale { drifted, .. }) => {
                format!(
                    "hooks would be refreshed ({} out of date)",
                    drifted.join(", ")
                )
            }
            (false, _) => "PreToolUse, Stop and UserPromptSubmit hooks would be installed".into(),
        };
        println!("  {LABEL:<17} {shown}: {what}");
        return true;
    }
    let now = SystemTime::now();
    let result = if plan.uninstall {
        install_hook::uninstall_at(&plan.home, now)
    } else {
        install_hook::install_at(&plan.home, now)
    };
    match result {
        Ok(report) => {
            for n in &report.notes {
                println!("  {LABEL:<17} {n}");
            }
            for l in &report.out {
                println!("  {LABEL:<17} {l}");
            }
            true
        }
        Err(e) => {
            eprintln!("  {LABEL:<17} FAILED: {e}");
            false
        }
    }
}
