//! `dispatch-loadtest`: the bundled load-test harness (see `dispatch_loadtest::cli`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = dispatch_loadtest::cli::Cli::parse();
    match dispatch_loadtest::cli::main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
