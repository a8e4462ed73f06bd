//! The `~/.claude/settings.json` step of setup: the hooks, through a thin
//! bridge to `install-hook` / `uninstall-hook` (`cli::install_hook`, which
//! owns the hook files, the `_oxtailHook` marker and the file), and the
//! approvals of oxtail's tools (`approvals`), made in the same write.
//!
//! Invariant defended: `check` runs before setup writes anything and refuses
//! what the installer or the approvals edit would refuse (not strict JSON,
//! not an object, a `hooks` or `permissions` shape it cannot edit), so a bad
//! `settings.json` stops the whole setup; the file is written (and backed up)
//! once per run.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::cli::hook_assets::{Freshness, assess, event_list, settings_path};
use crate::cli::{hook_settings, install_hook};

use super::approvals::{self, Change};
use super::config_file::ConfigFile;
use super::json_doc::JsonDoc;

const LABEL: &str = "Claude Code hooks";
/// The label of the approvals line.
pub const APPROVALS_LABEL: &str = "Claude approvals";

/// A checked settings step, ready to apply.
#[derive(Debug)]
pub struct Plan {
    home: PathBuf,
    uninstall: bool,
    /// Whether settings currently register any oxtail hook (for messages).
    registered: bool,
    /// Whether to edit the approvals, and what that would do (dry run).
    approvals: Option<Change>,
}

/// Refuse up front what the installer would refuse. With `approvals`, the
/// approvals of oxtail's tools are edited too (allowed on setup, setup's own
/// rule removed on uninstall).
pub fn check(home: &Path, uninstall: bool, approvals: bool) -> Result<Plan, String> {
    let file = ConfigFile::load(&settings_path(home))?;
    let doc = JsonDoc::parse(file.text.as_deref(), "~/.claude/settings.json")?;
    if !uninstall {
        hook_settings::check_shape(&doc.root)?;
        if approvals {
            approvals::claude_check(&doc.root)?;
        }
    }
    let preview = approvals.then(|| edit_approvals(&mut doc.root.clone(), uninstall));
    Ok(Plan {
        home: home.to_path_buf(),
        uninstall,
        registered: hook_settings::has_oxtail_entries(&doc.root, home),
        approvals: preview,
    })
}

fn edit_approvals(root: &mut Map<String, Value>, uninstall: bool) -> Change {
    if uninstall {
        approvals::claude_revoke(root)
    } else {
        approvals::claude_allow(root)
    }
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
            (false, _) => format!("{} hooks would be installed", event_list()),
        };
        println!("  {LABEL:<17} {shown}: {what}");
        if !plan.uninstall {
            let watch = if install_hook::HookOptions::detect().idle_watch {
                "the idle watcher (Stop, asyncRewake) would be registered"
            } else {
                "no idle watcher: no installed Claude Code with asyncRewake support"
            };
            println!("  {LABEL:<17} {shown}: {watch}");
        }
        if let Some(c) = &plan.approvals {
            print_approvals(&shown, c, true);
        }
        return true;
    }
    let now = SystemTime::now();
    let mut done: Option<Change> = None;
    let uninstall = plan.uninstall;
    let wanted = plan.approvals.is_some();
    let mut also = |root: &mut Map<String, Value>| {
        if !wanted {
            return false;
        }
        let c = edit_approvals(root, uninstall);
        let changed = c.changed;
        done = Some(c);
        changed
    };
    let result = if plan.uninstall {
        install_hook::uninstall_at_with(&plan.home, now, &mut also)
    } else {
        install_hook::install_at_with(
            &plan.home,
            now,
            &install_hook::HookOptions::detect(),
            &mut also,
        )
    };
    match result {
        Ok(report) => {
            for n in &report.notes {
                println!("  {LABEL:<17} {n}");
            }
            for l in &report.out {
                println!("  {LABEL:<17} {l}");
            }
            // No settings file on uninstall: nothing was there to revoke.
            let c = done.or(plan.approvals);
            if let Some(c) = &c {
                print_approvals(&shown, c, false);
            }
            true
        }
        Err(e) => {
            eprintln!("  {LABEL:<17} FAILED: {e}");
            false
        }
    }
}

fn print_approvals(shown: &str, c: &Change, dry_run: bool) {
    let line = match (c.changed, dry_run) {
        (false, _) => format!("{} — no change", c.summary),
        (true, true) => format!("would be {}", c.summary),
        (true, false) => c.summary.clone(),
    };
    println!("  {APPROVALS_LABEL:<17} {shown}: {line}");
}
