//! `oxtail setup` / `oxtail setup --uninstall` (alias `oxtail uninstall`):
//! register oxtail as an MCP server for Claude Code (`~/.claude.json`) and
//! Codex (`$CODEX_HOME/config.toml`), let both run oxtail's tools without
//! asking (`approvals`; `--no-approvals` leaves that alone), install the
//! delivery hooks for Claude Code (through `install-hook`) and for Codex
//! (`$CODEX_HOME/hooks.json`), install the `/oxtail-join` command and skill
//! (`join`), and say what was done, every path shown as `~/…`.
//!
//! Invariants defended:
//! - all or nothing up front: every file is read and every edit computed (and
//!   the Claude Code settings checked) before the first write, so a malformed
//!   file means nothing at all is written;
//! - idempotent: a file whose content would not change is not written and not
//!   backed up; every existing file that is written is backed up first, once
//!   per run, and a file this run created gets no backup (`config_file`);
//!   files are edited through symlinks, other settings kept;
//! - uninstall removes only what setup added (`approvals` documents the rule
//!   for the approvals);
//! - `--dry-run` writes nothing anywhere.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use crate::store::paths::home_dir;

pub mod approvals;
pub mod claude_hooks;
pub mod claude_json;
pub mod codex_hooks;
pub mod codex_toml;
pub mod codex_trust;
pub mod config_file;
pub mod join;
pub mod json_doc;

use config_file::ConfigFile;

#[derive(clap::Args, Debug, Default)]
pub struct SetupArgs {
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove what setup added (MCP entries and hooks) instead.
    #[arg(long)]
    pub uninstall: bool,
    /// Leave Claude Code alone.
    #[arg(long)]
    pub no_claude: bool,
    /// Leave Codex alone.
    #[arg(long)]
    pub no_codex: bool,
    /// Do not mark oxtail's Codex hooks as trusted (through `codex app-server`);
    /// just print how to trust them in Codex's /hooks screen.
    #[arg(long)]
    pub no_codex_trust: bool,
    /// Leave the clients' approvals alone: do not let Claude Code and Codex
    /// run oxtail's tools without asking (they then prompt on each call, and
    /// `claude -p` / `codex exec` refuse them).
    #[arg(long)]
    pub no_approvals: bool,
}

#[derive(clap::Args, Debug, Default)]
pub struct UninstallArgs {
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave Claude Code alone.
    #[arg(long)]
    pub no_claude: bool,
    /// Leave Codex alone.
    #[arg(long)]
    pub no_codex: bool,
    /// Keep the Claude Code approval setup added (Codex's goes with oxtail's
    /// server table).
    #[arg(long)]
    pub no_approvals: bool,
}

/// The result of planning one file edit: the new full text when it changes,
/// what it does, and further labelled parts of the same edit (e.g. the
/// approvals added to the file the MCP entry lives in), each saying whether it
/// changes anything.
#[derive(Debug, Clone)]
pub struct Edit {
    pub new_text: Option<String>,
    pub summary: String,
    /// Whether `summary` describes a change (false when only a part does).
    pub main_changed: bool,
    pub parts: Vec<Part>,
}

/// One labelled part of an [`Edit`], printed on its own line.
#[derive(Debug, Clone)]
pub struct Part {
    pub label: &'static str,
    pub summary: String,
    pub changed: bool,
}

impl Edit {
    pub fn changed(text: String, summary: String) -> Edit {
        Edit {
            new_text: Some(text),
            summary,
            main_changed: true,
            parts: Vec::new(),
        }
    }

    pub fn unchanged(summary: String) -> Edit {
        Edit {
            new_text: None,
            summary,
            main_changed: false,
            parts: Vec::new(),
        }
    }
}

/// Where the client configuration files are, for the current `HOME` and
/// `CODEX_HOME`.
#[derive(Debug, Clone)]
pub struct ClientPaths {
    pub claude_json: PathBuf,
    pub codex_home: PathBuf,
}

impl ClientPaths {
    pub fn from_env() -> ClientPaths {
        ClientPaths {
            claude_json: home_dir().join(".claude.json"),
            codex_home: crate::store::paths::codex_home(),
        }
    }

    pub fn claude_settings(&self) -> PathBuf {
        home_dir().join(".claude/settings.json")
    }

    pub fn codex_config(&self) -> PathBuf {
        self.codex_home.join("config.toml")
    }

    pub fn codex_hooks(&self) -> PathBuf {
        self.codex_home.join("hooks.json")
    }

    /// The `/oxtail-join` files for the chosen clients.
    pub fn join_files(&self, claude: bool, codex: bool) -> Vec<join::JoinFile> {
        join::files(self, &home_dir(), claude, codex)
    }
}

/// The absolute path of the running binary (what the clients will start).
pub fn binary_path() -> Result<String, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this binary's path: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.into_os_string().into_string().map_err(|p| {
        format!(
            "this binary's path is not UTF-8: {}",
            PathBuf::from(p).display()
        )
    })
}

/// One planned file change.
struct Planned {
    label: &'static str,
    file: ConfigFile,
    edit: Edit,
}

pub fn run(args: SetupArgs) -> ExitCode {
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

pub fn uninstall(args: UninstallArgs) -> ExitCode {
    run(SetupArgs {
        dry_run: args.dry_run,
        uninstall: true,
        no_claude: args.no_claude,
        no_codex: args.no_codex,
        no_codex_trust: true,
        no_approvals: args.no_approvals,
    })
}

fn execute(args: &SetupArgs) -> Result<(), ExitCode> {
    let paths = ClientPaths::from_env();
    let home = home_dir();
    let binary = if args.uninstall {
        String::new()
    } else {
        binary_path().map_err(|e| refuse(&[e]))?
    };
    let verb = if args.uninstall { "uninstall" } else { "setup" };
    let mode = if args.dry_run {
        " (dry run: nothing is written)"
    } else {
        ""
    };
    if args.uninstall {
        println!("oxtail {verb}{mode}");
    } else {
        println!(
            "oxtail {verb} {} — MCP command {}{mode}",
            env!("CARGO_PKG_VERSION"),
            display(Path::new(&binary))
        );
    }

    // 1. Read everything and compute every edit; any refusal stops it all.
    let (plan, hooks_plan) = plan(args, &paths, &home, &binary).map_err(|e| refuse(&e))?;

    // 2. Write (or, for a dry run, just say). The Claude Code hooks go first:
    //    they install the scripts the Codex hooks run too.
    let stamp = config_file::backup_stamp(SystemTime::now());
    let mut ok = true;
    if let Some(hp) = hooks_plan {
        ok &= claude_hooks::apply(hp, args.dry_run);
    }
    if args.no_claude && !args.no_codex && !args.uninstall {
        ok &= hook_files_for_codex(args.dry_run);
    }
    for p in &plan {
        ok &= apply(p, args.dry_run, &stamp);
    }
    if args.no_approvals && !args.uninstall {
        println!(
            "  {:<17} left alone (--no-approvals): the clients ask before each oxtail tool call, \
             and `claude -p` / `codex exec` refuse them",
            "Approvals"
        );
    }
    if args.uninstall {
        for f in paths.join_files(!args.no_claude, !args.no_codex) {
            ok &= join::remove(&f, args.dry_run, &stamp);
        }
    }

    // 3. What the user still has to do.
    if !args.uninstall && !args.no_codex {
        codex_next_steps(args, &paths, &plan, &stamp);
    }
    if !ok {
        eprintln!(
            "oxtail {verb}: some steps failed (see above); files already written keep their backups"
        );
        return Err(ExitCode::FAILURE);
    }
    if !args.dry_run {
        if args.uninstall {
            println!("Done. Restart running Claude Code / Codex sessions to drop oxtail.");
        } else {
            println!(
                "Done. Restart running Claude Code / Codex sessions to load oxtail; `oxtail doctor` checks the result."
            );
        }
    }
    Ok(())
}

/// Every file edit and the Claude Code hooks step, computed without writing;
/// or every reason to refuse.
fn plan(
    args: &SetupArgs,
    paths: &ClientPaths,
    home: &Path,
    binary: &str,
) -> Result<(Vec<Planned>, Option<claude_hooks::Plan>), Vec<String>> {
    type EditFn<'a> = Box<dyn Fn(Option<&str>) -> Result<Edit, String> + 'a>;
    let mut steps: Vec<(&'static str, PathBuf, EditFn)> = Vec::new();
    if !args.no_claude {
        let f: EditFn = if args.uninstall {
            Box::new(claude_json::uninstall)
        } else {
            Box::new(move |t| claude_json::install(t, binary))
        };
        steps.push(("Claude Code MCP", paths.claude_json.clone(), f));
    }
    if !args.no_codex {
        if args.uninstall {
            // Codex's trust records name our hooks by position: read them
            // from hooks.json before the entries go.
            let keys = ConfigFile::load(&paths.codex_hooks())
                .map(|f| codex_hooks::trust_keys(f.text.as_deref(), home, &paths.codex_hooks()))
                .unwrap_or_default();
            steps.push((
                "Codex MCP",
                paths.codex_config(),
                Box::new(move |t| codex_toml::uninstall(t, &keys)),
            ));
            steps.push((
                "Codex hooks",
                paths.codex_hooks(),
                Box::new(move |t| codex_hooks::uninstall(t, home)),
            ));
        } else {
            steps.push((
                "Codex MCP",
                paths.codex_config(),
                Box::new(move |t| codex_toml::install(t, binary, !args.no_approvals)),
            ));
            steps.push((
                "Codex hooks",
                paths.codex_hooks(),
                Box::new(move |t| codex_hooks::install(t, home)),
            ));
        }
    }
    if !args.uninstall {
        for f in paths.join_files(!args.no_claude, !args.no_codex) {
            let text = f.text;
            steps.push((f.label, f.path, Box::new(move |t| join::install(t, text))));
        }
    }
    let mut errors = Vec::new();
    let mut plan = Vec::new();
    for (label, path, f) in steps {
        match ConfigFile::load(&path).and_then(|file| {
            let edit = f(file.text.as_deref())?;
            Ok(Planned { label, file, edit })
        }) {
            Ok(p) => plan.push(p),
            Err(e) => errors.push(e),
        }
    }
    let hooks_plan = if args.no_claude {
        None
    } else {
        claude_hooks::check(home, args.uninstall, !args.no_approvals)
            .map_err(|e| errors.push(e))
            .ok()
    };
    if errors.is_empty() {
        Ok((plan, hooks_plan))
    } else {
        Err(errors)
    }
}

/// Write one planned file change (or say what it would be), one line per
/// part of the edit; the backup is named on the first line that changes.
/// True on success.
fn apply(p: &Planned, dry_run: bool, stamp: &str) -> bool {
    let shown = display(&p.file.path);
    let via = if p.file.is_link() {
        format!(" (symlink to {})", display(&p.file.real))
    } else {
        String::new()
    };
    let mut backup = String::new();
    if let (Some(text), false) = (&p.edit.new_text, dry_run) {
        match p.file.write(text, stamp) {
            Ok(b) => {
                backup = b
                    .map(|b| format!("; backup {}", display(&b)))
                    .unwrap_or_default()
            }
            Err(e) => {
                eprintln!("  {:<17} FAILED: {e}", p.label);
                return false;
            }
        }
    }
    let main = std::iter::once((p.label, &p.edit.summary, p.edit.main_changed));
    let parts = p
        .edit
        .parts
        .iter()
        .map(|x| (x.label, &x.summary, x.changed));
    for (label, summary, changed) in main.chain(parts) {
        match (changed, dry_run) {
            (false, _) => println!("  {label:<17} {shown}: {summary} — no change"),
            (true, true) => println!("  {label:<17} {shown}{via}: would be {summary}"),
            (true, false) => {
                println!(
                    "  {label:<17} {shown}{via}: {summary}{}",
                    std::mem::take(&mut backup)
                );
            }
        }
    }
    true
}

/// `setup --no-claude` does not run `install-hook`, so put the hook files the
/// Codex entries run into `~/.oxtail/hooks` here. True on success.
fn hook_files_for_codex(dry_run: bool) -> bool {
    const LABEL: &str = "Hook files";
    let layout = crate::store::paths::Layout::from_env();
    let dir = display(&layout.hooks_dir());
    match codex_hooks::ensure_files(&layout, dry_run) {
        Ok(w) if w.is_empty() => println!("  {LABEL:<17} {dir}: hook files current — no change"),
        Ok(w) => {
            let verb = if dry_run { "would write" } else { "wrote" };
            println!("  {LABEL:<17} {dir}: {verb} {}", w.join(", "));
        }
        Err(e) => {
            eprintln!("  {LABEL:<17} FAILED: {e}");
            return false;
        }
    }
    true
}

/// Codex: hooks must be enabled (the default) and trusted before they run.
/// Trust them through Codex's app-server when a `codex` binary is at hand,
/// else name the manual step (also when trusting fails: a warning, since
/// everything else is in place and `doctor` reports it).
fn codex_next_steps(args: &SetupArgs, paths: &ClientPaths, plan: &[Planned], stamp: &str) {
    const LABEL: &str = "Codex hook trust";
    let config = plan.iter().find(|p| p.label == "Codex MCP");
    let config_text = config.and_then(|p| p.edit.new_text.clone().or(p.file.text.clone()));
    if let Some(w) = codex_toml::hooks_disabled(config_text.as_deref()) {
        println!("  ! {w}");
    }
    let hooks_json = paths.codex_hooks();
    let manual = format!(
        "start `codex`, type /hooks, review the {} hooks \
         from {} and trust them (one-off automation can pass \
         `codex exec --dangerously-bypass-hook-trust` instead)",
        codex_hooks::event_list(),
        display(&hooks_json)
    );
    let codex = if args.no_codex_trust {
        None
    } else {
        codex_trust::find_codex()
    };
    let Some(codex) = codex else {
        let why = if args.no_codex_trust {
            "not trusted by setup (--no-codex-trust)"
        } else {
            "no `codex` on PATH to trust them with"
        };
        println!("  {LABEL:<17} {why}; Codex runs oxtail's hooks only once trusted: {manual}.");
        return;
    };
    if args.dry_run {
        println!(
            "  {LABEL:<17} oxtail's hooks would be marked trusted through `{} app-server` (as /hooks does)",
            display(&codex)
        );
        return;
    }
    let config_path = paths.codex_config();
    let wanted = config.is_none_or(needs_backup_before_trust);
    let backup = || -> Result<(), String> {
        let file = ConfigFile::load(&config_path)?;
        if let (true, Some(text)) = (wanted, &file.text) {
            let b = file.backup(text, stamp)?;
            println!("  {LABEL:<17} backup {}", display(&b));
        }
        Ok(())
    };
    match codex_trust::trust(&codex, &paths.codex_home, &hooks_json, &backup) {
        Ok(newly) if newly.is_empty() => {
            println!("  {LABEL:<17} oxtail's Codex hooks are already trusted — no change");
        }
        Ok(newly) => {
            let events: Vec<&str> = newly.iter().map(|h| h.event.as_str()).collect();
            println!(
                "  {LABEL:<17} {}: trusted oxtail's {} hook(s) through `codex app-server` (hooks.state in config.toml)",
                display(&config_path),
                events.join(", ")
            );
        }
        Err(e) => {
            // Everything else is in place; the manual step is the fallback.
            eprintln!(
                "  ! {LABEL}: could not trust the hooks ({e}); trust them by hand: {manual}."
            );
        }
    }
}

/// Whether Codex's trust write into config.toml needs a backup first: only
/// when the file existed before this run and this run did not rewrite it
/// (then its backup of the user's file exists already). A file this run
/// created holds nothing of the user's.
fn needs_backup_before_trust(config: &Planned) -> bool {
    config.file.text.is_some() && config.edit.new_text.is_none()
}

fn refuse(errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("oxtail setup: refused: {e}");
    }
    eprintln!("oxtail setup: nothing was changed.");
    ExitCode::from(2)
}

/// `path` with the home directory shown as `~`: the one way setup,
/// uninstall, install-hook and doctor print paths (text and `--json` alike).
pub fn display(path: &Path) -> String {
    display_under(path, &home_dir())
}

/// `path` with `home` shown as `~` (`~` itself for `home`).
pub fn display_under(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if home != Path::new("/") && home.is_absolute() => {
            if rest.as_os_str().is_empty() {
                "~".into()
            } else {
                format!("~/{}", rest.display())
            }
        }
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(before: Option<&str>, rewrites: bool) -> Planned {
        let edit = if rewrites {
            Edit::changed("new".into(), "s".into())
        } else {
            Edit::unchanged("s".into())
        };
        Planned {
            label: "Codex MCP",
            file: ConfigFile {
                path: "/h/.codex/config.toml".into(),
                real: "/h/.codex/config.toml".into(),
                text: before.map(str::to_string),
            },
            edit,
        }
    }

    #[test]
    fn codex_trust_backs_up_only_a_file_the_user_had_and_this_run_left_alone() {
        // Created by this run: nothing of the user's to keep.
        assert!(!needs_backup_before_trust(&planned(None, true)));
        // Rewritten by this run: the user's version is backed up already.
        assert!(!needs_backup_before_trust(&planned(Some("x"), true)));
        assert!(needs_backup_before_trust(&planned(Some("x"), false)));
    }

    #[test]
    fn paths_under_home_are_shown_with_a_tilde() {
        let home = Path::new("/home/u");
        assert_eq!(
            display_under(Path::new("/home/u/.codex/x"), home),
            "~/.codex/x"
        );
        assert_eq!(display_under(Path::new("/home/u"), home), "~");
        assert_eq!(
            display_under(Path::new("/home/user2/x"), home),
            "/home/user2/x"
        );
        assert_eq!(display_under(Path::new("/x"), Path::new("/")), "/x");
    }
}
