//! `oxtail doctor [--fix] [--json]`: check an installation and say, one line
//! per check, what is wrong and how to fix it.
//!
//! Checks: the binary; the MCP entries, approvals and delivery hooks of
//! Claude Code and Codex; the `/oxtail-join` command and skill; tmux; the
//! modes under `~/.oxtail`; stale locks; mailboxes and registry entries of
//! dead processes; received-ledger sizes. Paths are shown as `~/…` in the
//! text and the `--json` form alike.
//!
//! Invariants defended:
//! - without `--fix` doctor changes nothing on disk;
//! - `--fix` repairs only what is safe: stale locks (through the lock
//!   protocol's compare-and-clear), empty mailboxes of dead pids (removed under
//!   their lock, only while still empty), and loose modes (tightened, never
//!   loosened) — nothing else;
//! - exit status is non-zero exactly when a check failed (warnings do not);
//! - a warning means a person should act; what oxtail tidies up by itself
//!   (leftovers of killed processes) is info.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use serde::Serialize;
use serde_json::json;

use crate::cli::hook_assets::{self, Freshness, HOOK_FILES};
use crate::cli::setup::claude_json::Entry;
use crate::cli::setup::join::{self, JoinFile};
use crate::cli::setup::{
    self, ClientPaths, approvals, claude_json, codex_hooks, codex_toml, codex_trust, json_doc,
};
use crate::cli::{claude_bin, hook_settings};
use crate::store::paths::{self, Layout};

mod store_checks;
use store_checks::{dead_mailboxes, dead_registry_entries, ledgers, modes, stale_locks};

#[derive(clap::Args, Debug, Default)]
pub struct DoctorArgs {
    /// Repair what is safe to repair: stale locks, empty mailboxes of dead
    /// processes, loose file modes under ~/.oxtail.
    #[arg(long)]
    pub fix: bool,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Info,
    Warn,
    Fail,
    /// Something was wrong and `--fix` repaired it.
    Fixed,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (absent when nothing needs doing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: None,
    }
}

impl Check {
    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let checks = run_checks(&Layout::from_env(), &ClientPaths::from_env(), args.fix);
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        let out = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ok": !failed,
            "checks": checks,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("oxtail doctor {}", env!("CARGO_PKG_VERSION"));
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "[ok]   ",
                Status::Info => "[info] ",
                Status::Warn => "[warn] ",
                Status::Fail => "[FAIL] ",
                Status::Fixed => "[fixed]",
            };
            match &c.fix {
                Some(f) => println!("{tag} {:<16} {} — fix: {f}", c.name, c.detail),
                None => println!("{tag} {:<16} {}", c.name, c.detail),
            }
        }
        if failed {
            println!("Some checks failed; see the fixes above.");
        } else {
            println!("All checks passed.");
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every check, in report order.
pub fn run_checks(layout: &Layout, clients: &ClientPaths, fix: bool) -> Vec<Check> {
    let binary = setup::binary_path().unwrap_or_else(|e| e);
    let mut out = vec![check(
        "binary",
        Status::Ok,
        format!(
            "oxtail {} at {}",
            env!("CARGO_PKG_VERSION"),
            setup::display(Path::new(&binary))
        ),
    )];
    let claude = claude_in_use(clients);
    out.push(claude_mcp(clients, &binary));
    if claude {
        out.push(claude_approvals(clients));
        out.push(claude_hook_check(clients));
        out.push(idle_watch_check(clients));
    }
    if claude || codex_in_use(clients) {
        out.push(hook_scripts(layout));
    }
    out.push(codex_mcp(clients, &binary));
    if codex_in_use(clients) {
        out.push(codex_approvals(clients));
    }
    out.extend(codex_hook_checks(clients));
    for f in clients.join_files(claude, codex_in_use(clients)) {
        out.push(join_check(&f));
    }
    if !claude && !codex_in_use(clients) {
        out.push(
            check(
                "clients",
                Status::Fail,
                "neither Claude Code nor Codex is set up to start oxtail",
            )
            .with_fix("install one of them, then run `oxtail setup`"),
        );
    }
    out.push(tmux());
    out.extend(modes(layout, fix));
    out.push(stale_locks(layout, fix));
    out.push(dead_registry_entries(layout));
    out.push(dead_mailboxes(layout, fix));
    out.push(ledgers(layout));
    out
}

// ---------------------------------------------------------------- clients

fn read(path: &Path) -> Result<Option<String>, String> {
    setup::config_file::ConfigFile::load(path).map(|f| f.text)
}

fn mcp_check(name: &'static str, file: &Path, entry: Result<Entry, String>, binary: &str) -> Check {
    let shown = setup::display(file);
    match entry {
        Err(e) => check(name, Status::Fail, e)
            .with_fix(format!("repair {shown} by hand, then run `oxtail setup`")),
        Ok(Entry::Missing) => check(
            name,
            Status::Fail,
            format!("{shown} does not register oxtail"),
        )
        .with_fix("run `oxtail setup`"),
        Ok(Entry::Present { current: true, .. }) => check(
            name,
            Status::Ok,
            format!("{shown} runs {}", setup::display(Path::new(binary))),
        ),
        Ok(Entry::Present { command, .. }) => {
            let command = command.unwrap_or_else(|| "<no command>".into());
            let exists = Path::new(&command).is_absolute() && Path::new(&command).exists();
            let status = if exists || !Path::new(&command).is_absolute() {
                Status::Warn
            } else {
                Status::Fail
            };
            let missing = if status == Status::Fail {
                " (missing)"
            } else {
                ""
            };
            check(
                name,
                status,
                format!(
                    "{shown} runs {}{missing}, not this binary ({})",
                    setup::display(Path::new(&command)),
                    setup::display(Path::new(binary))
                ),
            )
            .with_fix("run `oxtail setup` with the oxtail you want the clients to start")
        }
    }
}

fn claude_mcp(clients: &ClientPaths, binary: &str) -> Check {
    let path = &clients.claude_json;
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => return check("claude_mcp", Status::Fail, e),
    };
    if !claude_in_use(clients) {
        return check(
            "claude_mcp",
            Status::Info,
            "Claude Code not found (no ~/.claude.json, no ~/.claude): not checked",
        )
        .with_fix("install Claude Code, then run `oxtail setup`");
    }
    mcp_check(
        "claude_mcp",
        path,
        claude_json::inspect(text.as_deref(), binary),
        binary,
    )
}

/// Claude Code's hooks: registered in `~/.claude/settings.json`, and the
/// `_oxtailHook` marker records this version's files (`install-hook`'s own
/// freshness assessment).
fn claude_hook_check(clients: &ClientPaths) -> Check {
    let path = clients.claude_settings();
    let shown = setup::display(&path);
    let home = paths::home_dir();
    let rerun = "run `oxtail setup` (or `oxtail install-hook`)";
    let list = match read(&path)
        .and_then(|t| codex_hooks::inspect(t.as_deref(), &home, "~/.claude/settings.json"))
    {
        Ok(list) => list,
        Err(e) => {
            return check("claude_hooks", Status::Fail, e)
                .with_fix(format!("repair {shown} by hand, then run `oxtail setup`"));
        }
    };
    let missing: Vec<&str> = list.iter().filter(|(_, ok)| !ok).map(|(e, _)| *e).collect();
    if !missing.is_empty() {
        return check(
            "claude_hooks",
            Status::Fail,
            format!("{shown} lacks oxtail's {} hook(s)", missing.join(", ")),
        )
        .with_fix(rerun);
    }
    match hook_assets::assess(&home) {
        Freshness::Ok {
            version_mismatch: false,
        } => check(
            "claude_hooks",
            Status::Ok,
            format!(
                "{shown} registers {} (v{})",
                hook_assets::event_list(),
                hook_assets::HOOK_MARKER_VERSION
            ),
        ),
        Freshness::Ok {
            version_mismatch: true,
        } => check(
            "claude_hooks",
            Status::Warn,
            format!(
                "{shown}: the _oxtailHook marker names another version than v{}",
                hook_assets::HOOK_MARKER_VERSION
            ),
        )
        .with_fix(rerun),
        Freshness::Stale { drifted, .. } => check(
            "claude_hooks",
            Status::Fail,
            format!(
                "{shown}: installed hooks are out of date ({})",
                drifted.join(", ")
            ),
        )
        .with_fix(rerun),
        Freshness::Absent | Freshness::Unknown => check(
            "claude_hooks",
            Status::Fail,
            format!("{shown} has oxtail's hooks but no usable _oxtailHook marker"),
        )
        .with_fix(rerun),
    }
}

/// The idle watcher (`asyncRewake` Stop hook): registered where the
/// installed Claude Code supports it; elsewhere idle sessions are woken
/// through tmux, which is information, not a fault.
fn idle_watch_check(clients: &ClientPaths) -> Check {
    let path = clients.claude_settings();
    let shown = setup::display(&path);
    let registered = read(&path)
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .is_some_and(|root| hook_settings::has_idle_watch(&root, &paths::home_dir()));
    let capable = claude_bin::idle_watch_capable();
    let name = "idle_watch";
    match (registered, capable) {
        (true, Some(_)) => check(
            name,
            Status::Ok,
            format!("{shown} registers the idle watcher (Stop, asyncRewake): an idle session wakes on its mail without tmux"),
        ),
        (true, None) => check(
            name,
            Status::Warn,
            format!("{shown} registers the idle watcher, but no Claude Code with asyncRewake support was found (claude on PATH)"),
        )
        .with_fix("run `oxtail install-hook` from a shell where `claude` is the Claude Code you use"),
        (false, Some(c)) => check(
            name,
            Status::Warn,
            format!(
                "{} supports asyncRewake but the idle watcher is not registered: idle sessions wake only through tmux",
                setup::display(&c)
            ),
        )
        .with_fix("run `oxtail install-hook` (or `oxtail setup`)"),
        (false, None) => check(
            name,
            Status::Info,
            "no Claude Code with asyncRewake support found: idle sessions are woken through tmux",
        ),
    }
}

/// The files in `~/.oxtail/hooks` are the ones this binary ships, and the
/// hooks are executable.
fn hook_scripts(layout: &Layout) -> Check {
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for h in &HOOK_FILES {
        let p = layout.hook(h.file);
        match fs::read(&p) {
            Err(_) => missing.push(h.file),
            Ok(bytes) => {
                let exec = fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o100 != 0);
                if bytes != h.text.as_bytes() || (h.runs && !exec) {
                    stale.push(h.file);
                }
            }
        }
    }
    let dir = setup::display(&layout.hooks_dir());
    if missing.is_empty() && stale.is_empty() {
        return check(
            "hook_scripts",
            Status::Ok,
            format!("{dir} holds this version's hook files"),
        );
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    if !stale.is_empty() {
        parts.push(format!("from another version: {}", stale.join(", ")));
    }
    check(
        "hook_scripts",
        Status::Fail,
        format!("{dir}: {}", parts.join("; ")),
    )
    .with_fix("run `oxtail setup` (or `oxtail install-hook`)")
}

/// The `/oxtail-join` command or skill: missing or different is a warning
/// (messaging works without it).
fn join_check(f: &JoinFile) -> Check {
    let (name, what) = if f.label.starts_with("Claude") {
        ("join_command", "the /oxtail-join command")
    } else {
        ("join_skill", "the $oxtail-join skill")
    };
    let shown = setup::display(&f.path);
    match join::state(f) {
        join::State::Current => check(name, Status::Ok, format!("{shown} is {what}")),
        join::State::Differs => check(
            name,
            Status::Warn,
            format!("{shown} differs from this version's {what} (edited, or another oxtail)"),
        )
        .with_fix("run `oxtail setup` (it keeps a backup of the old file)"),
        join::State::Missing => check(
            name,
            Status::Warn,
            format!("{shown} is missing: {what} is not available"),
        )
        .with_fix("run `oxtail setup`"),
    }
}

/// One approvals line: ok when every oxtail tool runs without asking.
fn approvals_check(name: &'static str, shown: &str, state: approvals::State, fix: &str) -> Check {
    use approvals::State;
    match state {
        State::Allowed { how } => check(
            name,
            Status::Ok,
            format!("{shown}: oxtail's tools run without asking ({how})"),
        ),
        State::Partial { asking } => check(
            name,
            Status::Warn,
            format!(
                "{shown} allows only some of oxtail's tools; the client asks before {}",
                asking.join(", ")
            ),
        )
        .with_fix(fix),
        State::UserChoice { what } => check(
            name,
            Status::Info,
            format!("{shown}: {what} (your setting, left alone)"),
        ),
        State::Missing => check(
            name,
            Status::Warn,
            format!(
                "{shown} does not allow oxtail's tools: the client asks before each call, \
                 and non-interactive runs refuse them (peers then see target-not-found)"
            ),
        )
        .with_fix(fix),
    }
}

/// Claude Code: `permissions.allow` of `~/.claude/settings.json` (user scope).
fn claude_approvals(clients: &ClientPaths) -> Check {
    let path = clients.claude_settings();
    let shown = setup::display(&path);
    let fix = format!(
        "run `oxtail setup` (adds \"{}\" to permissions.allow in {shown})",
        approvals::CLAUDE_RULE
    );
    match read(&path).and_then(|t| json_doc::JsonDoc::parse(t.as_deref(), &shown)) {
        Ok(doc) => approvals_check(
            "claude_approvals",
            &shown,
            approvals::claude_state(&doc.root),
            &fix,
        ),
        Err(e) => check("claude_approvals", Status::Fail, e)
            .with_fix(format!("repair {shown} by hand, then run `oxtail setup`")),
    }
}

/// Codex: `default_tools_approval_mode` of `[mcp_servers.oxtail]`.
fn codex_approvals(clients: &ClientPaths) -> Check {
    let path = clients.codex_config();
    let shown = setup::display(&path);
    let fix = format!(
        "run `oxtail setup` (adds {} = \"{}\" under [mcp_servers.oxtail] in {shown})",
        approvals::CODEX_KEY,
        approvals::CODEX_APPROVE
    );
    match read(&path).and_then(|t| codex_toml::approval_state(t.as_deref())) {
        Ok(state) => approvals_check("codex_approvals", &shown, state, &fix),
        Err(e) => check("codex_approvals", Status::Fail, e)
            .with_fix(format!("repair {shown} by hand, then run `oxtail setup`")),
    }
}

/// Claude Code counts as installed when `~/.claude.json` or `~/.claude` exists.
fn claude_in_use(clients: &ClientPaths) -> bool {
    clients.claude_json.exists() || paths::home_dir().join(".claude").exists()
}

/// Codex counts as installed when `$CODEX_HOME` exists.
fn codex_in_use(clients: &ClientPaths) -> bool {
    clients.codex_home.exists()
}

fn codex_mcp(clients: &ClientPaths, binary: &str) -> Check {
    if !codex_in_use(clients) {
        return check(
            "codex_mcp",
            Status::Info,
            format!(
                "Codex not found (no {}): not checked",
                setup::display(&clients.codex_home)
            ),
        )
        .with_fix("install Codex, then run `oxtail setup`");
    }
    let path = clients.codex_config();
    match read(&path) {
        Ok(text) => mcp_check(
            "codex_mcp",
            &path,
            codex_toml::inspect(text.as_deref(), binary),
            binary,
        ),
        Err(e) => check("codex_mcp", Status::Fail, e),
    }
}

fn codex_hook_checks(clients: &ClientPaths) -> Vec<Check> {
    if !codex_in_use(clients) {
        return Vec::new();
    }
    let path = clients.codex_hooks();
    let shown = setup::display(&path);
    let mut out = Vec::new();
    let registered =
        read(&path).and_then(|t| codex_hooks::inspect(t.as_deref(), &paths::home_dir(), &shown));
    out.push(match registered {
        Err(e) => check("codex_hooks", Status::Fail, e)
            .with_fix(format!("repair {shown} by hand, then run `oxtail setup`")),
        Ok(list) => {
            let missing: Vec<&str> = list.iter().filter(|(_, ok)| !ok).map(|(e, _)| *e).collect();
            if missing.is_empty() {
                check(
                    "codex_hooks",
                    Status::Ok,
                    format!(
                        "{shown} registers {}",
                        crate::cli::setup::codex_hooks::event_list()
                    ),
                )
            } else {
                check(
                    "codex_hooks",
                    Status::Fail,
                    format!("{shown} lacks oxtail's {} hook(s)", missing.join(", ")),
                )
                .with_fix("run `oxtail setup`")
            }
        }
    });
    let config = read(&clients.codex_config()).ok().flatten();
    if let Some(w) = codex_toml::hooks_disabled(config.as_deref()) {
        out.push(check("codex_hooks", Status::Fail, w));
    }
    out.push(codex_trust_check(clients, &shown));
    out
}

/// Whether Codex trusts oxtail's hooks, asked through `codex app-server`.
fn codex_trust_check(clients: &ClientPaths, shown: &str) -> Check {
    let manual = format!(
        "run `oxtail setup`, or start `codex`, type /hooks and trust the oxtail hooks from {shown}"
    );
    let Some(codex) = codex_trust::find_codex() else {
        return check(
            "codex_trust",
            Status::Info,
            "no `codex` on PATH to ask; Codex runs a new or changed hook only once you trust it",
        )
        .with_fix(manual);
    };
    match codex_trust::status(&codex, &clients.codex_home, &clients.codex_hooks()) {
        Err(e) => check(
            "codex_trust",
            Status::Warn,
            format!("could not ask Codex: {e}"),
        )
        .with_fix(manual),
        Ok(list) if list.is_empty() => check(
            "codex_trust",
            Status::Fail,
            "Codex lists none of oxtail's hooks",
        )
        .with_fix(manual),
        Ok(list) => {
            let untrusted: Vec<String> = list
                .iter()
                .filter(|h| h.status != "trusted")
                .map(|h| format!("{} ({})", h.event, h.status))
                .collect();
            if untrusted.is_empty() {
                check(
                    "codex_trust",
                    Status::Ok,
                    format!("Codex trusts oxtail's {} hooks", list.len()),
                )
            } else {
                check(
                    "codex_trust",
                    Status::Fail,
                    format!(
                        "Codex will not run oxtail's {} hook(s) until trusted",
                        untrusted.join(", ")
                    ),
                )
                .with_fix(manual)
            }
        }
    }
}

// ---------------------------------------------------------------- tmux

fn tmux() -> Check {
    let out = Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => check(
            "tmux",
            Status::Ok,
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        ),
        _ => check(
            "tmux",
            Status::Warn,
            "tmux not found: messages still arrive through the hooks, but idle peers cannot be woken",
        )
        .with_fix("install tmux and run your agents inside it"),
    }
}
