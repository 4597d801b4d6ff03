//! The `addon-sandbox` command line: parse, dispatch to `cli::<command>`, turn an error into
//! exit status 2. Everything a command does lives in `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Reading a repository allocates a great deal of small, short-lived values (YAML tokens,
/// names, plan entries); glibc's malloc spent a sixth of the instructions of `check` on them,
/// mimalloc about a quarter of that. `benches/core.rs` uses the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
