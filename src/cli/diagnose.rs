//! `oxtail diagnose`: summarise `wake_outcome` events of `MCP_TRACE_FILE`.
//! (Owned by the messaging work; stub until then.)

use std::process::ExitCode;

pub fn run() -> ExitCode {
    eprintln!("oxtail diagnose: not implemented yet");
    ExitCode::FAILURE
}
