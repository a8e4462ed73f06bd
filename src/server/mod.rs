//! The MCP stdio server (owned by the server work; stub until then).

use std::process::ExitCode;

pub fn serve() -> ExitCode {
    eprintln!("oxtail: server not implemented yet");
    ExitCode::FAILURE
}
