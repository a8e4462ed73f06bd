//! `oxtail status`: a one-shot table (or `--json`, `--check`) and a live
//! screen (`--watch`) of the project's agents. The model is
//! [`crate::status`]; this module only parses flags and draws.
//!
//! Invariant defended: the command is read-only — it never drains a mailbox,
//! never takes a store lock and writes nothing under `~/.oxtail` (see
//! `status::facts`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::status::{self, Options, Scope};
use crate::store::paths::Layout;

pub mod screen;
pub mod table;
pub mod view;
pub mod watch;

/// `--check` exit code when something needs a person (the original's).
pub const CHECK_TROUBLE_CODE: u8 = 2;

#[derive(Args, Debug, Clone, Default)]
pub struct StatusArgs {
    /// Every project on this machine, not only the current one.
    #[arg(long)]
    pub all: bool,
    /// The project to show (default: the one of the current directory).
    #[arg(long, value_name = "PATH")]
    pub project: Option<PathBuf>,
    /// Print the snapshot as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
    /// With --json: indent it.
    #[arg(long, requires = "json")]
    pub pretty: bool,
    /// Exit 2 when something needs a person: mail queued for a dead agent, a
    /// wait on a dead agent, a wait cycle of live agents.
    #[arg(long)]
    pub check: bool,
    /// Add the recent message log (N messages, default 20).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "20")]
    pub log: Option<usize>,
    /// Show message bodies in the log (implies --log).
    #[arg(long)]
    pub bodies: bool,
    /// A live screen that follows the store (q quits).
    #[arg(long, conflicts_with_all = ["json", "check"])]
    pub watch: bool,
}

/// The scope the flags ask for.
fn project_scope(args: &StatusArgs) -> Scope {
    let cwd = args
        .project
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    Scope::project_of(&cwd.to_string_lossy())
}

pub fn run(args: StatusArgs) -> ExitCode {
    let layout = Layout::from_env();
    let project = project_scope(&args);
    if args.watch {
        let ui = screen::Ui {
            all: args.all,
            bodies: args.bodies,
            show_log: args.bodies || args.log.is_some(),
            selected: 0,
        };
        return watch::run(layout, project, ui);
    }
    let scope = if args.all { Scope::All } else { project };
    let opts = Options {
        log: args
            .log
            .or(args.bodies.then_some(status::model::DEFAULT_LOG_LIMIT)),
        bodies: args.bodies,
    };
    let snap = status::snapshot(&layout, &scope, &opts);
    if args.json {
        let text = if args.pretty {
            serde_json::to_string_pretty(&snap)
        } else {
            serde_json::to_string(&snap)
        };
        println!("{}", text.unwrap_or_default());
    } else {
        let width = std::io::stdout()
            .is_terminal()
            .then(|| ratatui::crossterm::terminal::size().ok())
            .flatten()
            .map(|(w, _)| w as usize);
        print!("{}", table::render(&snap, width));
    }
    if args.check && snap.trouble.needs_attention {
        ExitCode::from(CHECK_TROUBLE_CODE)
    } else {
        ExitCode::SUCCESS
    }
}
