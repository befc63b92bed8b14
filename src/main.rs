//! The `handgrad` command: parses the command line, runs the command, prints an error as one
//! sentence with its causes. Every command lives in [`cli`], every computation in the library
//! ([`handgrad::experiments`] and below).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::console::quiet_on_closed_pipe();
    let (args, matches) = cli::parse();
    match cli::run(args, &matches) {
        Ok(code) => code,
        Err(e) => {
            cli::console::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
