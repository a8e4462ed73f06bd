//! The `oxtail` binary: argv to subcommand, nothing else.

fn main() -> std::process::ExitCode {
    oxtail::cli::main()
}
