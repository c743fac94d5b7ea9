//! The `router` binary: runs a node's data plane (`router run`) and is its
//! kubectl-like CLI (`router get po -o wide`, `router describe service X`,
//! `router get conntrack`).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod protocol;
mod shell;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli::commands::dispatch(cli::args::Cli::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) if e.is_from_server() => {
            // kubectl's own error lines are printed as kubectl prints them.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
