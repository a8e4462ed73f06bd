//! `oxtail install-hook` / `oxtail uninstall-hook`.
//! (Owned by the hooks work; stub until then.)

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct InstallArgs {}

#[derive(clap::Args, Debug)]
pub struct UninstallArgs {}

pub fn install(_args: InstallArgs) -> ExitCode {
    eprintln!("oxtail install-hook: not implemented yet");
    ExitCode::FAILURE
}

pub fn uninstall(_args: UninstallArgs) -> ExitCode {
    eprintln!("oxtail uninstall-hook: not implemented yet");
    ExitCode::FAILURE
}
