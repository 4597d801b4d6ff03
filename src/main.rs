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
        // A reader that went away (`| head`) ends the output, as it ends other Unix tools'.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
