//! The `poolc` binary: parse arguments, call the library, map the outcome to
//! an exit code (0 ok, 1 findings or stale output, 2 bad input or usage).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use poolc::pipeline::{self, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(paths) => generate(&paths),
        Command::Check(paths) => check(&paths),
    }
}

fn generate(paths: &cli::Paths) -> ExitCode {
    let set = match pipeline::compile(&paths.specs) {
        Ok(set) => set,
        Err(failure) => return fail(failure),
    };
    match set.write(&paths.out) {
        Ok(changes) => {
            println!(
                "poolc: {} files in {}, {} changed",
                set.len(),
                paths.out.display(),
                changes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check(paths: &cli::Paths) -> ExitCode {
    let set = match pipeline::compile(&paths.specs) {
        Ok(set) => set,
        Err(failure) => return fail(failure),
    };
    match set.diff(&paths.out) {
        Ok(diff) if diff.is_empty() => {
            println!("poolc: {} is current", paths.out.display());
            ExitCode::SUCCESS
        }
        Ok(diff) => {
            print!("{diff}");
            eprintln!(
                "poolc: {} is stale: run `just generate` (or `poolc generate`) and commit the result",
                paths.out.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn fail(failure: Failure) -> ExitCode {
    eprintln!("{failure}");
    ExitCode::from(2)
}
