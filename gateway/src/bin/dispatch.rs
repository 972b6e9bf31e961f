//! `dispatch`: the command line. All of it lives in the library's `cli` module.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    dispatch_gateway::cli::main(dispatch_gateway::cli::Cli::parse())
}
