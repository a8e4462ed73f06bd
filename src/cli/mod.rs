//! Command line: `oxtail` with no argument serves MCP on stdio; every other
//! behaviour is a subcommand with its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod claude_bin;
pub mod demo;
pub mod diagnose;
pub mod doctor;
pub mod hook_assets;
pub mod hook_settings;
pub mod install_hook;
pub mod setup;
pub mod status;
pub mod wait_mail;

#[derive(Parser, Debug)]
#[command(
    name = "oxtail",
    version,
    about = "Let parallel coding agents on one machine see and message each other (MCP stdio server)",
    long_about = "Run with no argument to serve MCP on stdio (this is how Claude Code and Codex start it).\nSubcommands manage the hooks and inspect what oxtail recorded."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Install the Claude Code delivery hooks into ~/.oxtail/hooks and ~/.claude/settings.json.
    InstallHook(install_hook::InstallArgs),
    /// Remove oxtail's hooks from ~/.claude/settings.json (third-party hooks are kept).
    UninstallHook(install_hook::UninstallArgs),
    /// Summarise wake outcomes recorded in MCP_TRACE_FILE.
    Diagnose,
    /// Register oxtail with Claude Code and Codex (MCP entries, delivery hooks, /oxtail-join).
    Setup(setup::SetupArgs),
    /// Remove what `oxtail setup` added (same as `oxtail setup --uninstall`).
    Uninstall(setup::UninstallArgs),
    /// Run two oxtail servers in a throwaway HOME and show them talking (MCP tools + real hooks).
    Demo(demo::DemoArgs),
    /// Check the installation (MCP entries, hooks, tmux, ~/.oxtail) and say how to fix it.
    Doctor(doctor::DoctorArgs),
    /// Wait for mail addressed to a session (run by the idle watcher hook).
    #[command(hide = true)]
    WaitMail(wait_mail::WaitMailArgs),
    /// Show the project's agents: liveness, unread mail, waits, stuck mail (--watch: live).
    Status(status::StatusArgs),
}

/// Parse argv and run the chosen behaviour.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => crate::server::serve(),
        Some(Command::InstallHook(args)) => install_hook::install(args),
        Some(Command::UninstallHook(args)) => install_hook::uninstall(args),
        Some(Command::Diagnose) => diagnose::run(),
        Some(Command::Setup(args)) => setup::run(args),
        Some(Command::Uninstall(args)) => setup::uninstall(args),
        Some(Command::Doctor(args)) => doctor::run(args),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::WaitMail(args)) => wait_mail::run(args),
        Some(Command::Status(args)) => status::run(args),
    }
}
