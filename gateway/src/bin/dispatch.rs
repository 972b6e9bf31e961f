//! `dispatch`: the command line. All of it lives in the library's `cli` module.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match dispatch_gateway::cli::main(dispatch_gateway::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A person reads this: the message and its causes, no backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
