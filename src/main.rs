//! The `replicate` binary: parse the command line, run it, exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(replicate::cli::run())
}
