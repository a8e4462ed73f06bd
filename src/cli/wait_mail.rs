//! `oxtail wait-mail` (hidden): the blocking half of the Claude Code idle
//! watcher hook (`assets/idlewatch.sh`). Waits without polling for mail
//! addressed to a session (`wake::watcher`) and says through its exit code
//! why it stopped, so the hook knows whether to deliver.
//!
//! Invariant defended: it never moves mail; bad arguments exit 2 (clap) and
//! the hook then falls back to its own bounded polling, so a broken binary
//! never loses or delays a message for longer than that fallback's backoff.

use std::process::ExitCode;

use crate::store::paths::Layout;
use crate::wake::watcher::{self, WaitSpec};

#[derive(clap::Args, Debug)]
pub struct WaitMailArgs {
    /// The session whose mail to wait for.
    #[arg(long)]
    pub session: String,
    /// This watcher's token in `~/.oxtail/idlewatch/<session>`.
    #[arg(long)]
    pub token: String,
    /// Stop when this process is gone (the Claude Code client; 0 = unchecked).
    #[arg(long, default_value_t = 0)]
    pub client_pid: u32,
    /// Give up at this time (milliseconds since the epoch).
    #[arg(long)]
    pub until_ms: i64,
    /// Report mail only once the mailboxes changed from what they hold now.
    #[arg(long)]
    pub after_change: bool,
}

/// Exit 0 = mail, 3 = busy, 4 = superseded, 5 = client gone, 6 = deadline.
pub fn run(args: WaitMailArgs) -> ExitCode {
    let spec = WaitSpec {
        session_id: args.session,
        token: args.token,
        client_pid: args.client_pid,
        until_ms: args.until_ms,
        after_change: args.after_change,
    };
    ExitCode::from(watcher::wait(&Layout::from_env(), &spec).exit_code())
}
