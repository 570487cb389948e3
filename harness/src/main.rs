//! `zcrx-conform`: parses the command line, runs one command, maps its result to the exit code
//! (`error::exit_code`, the only place that does).

use std::process::ExitCode;

use clap::Parser;

use zcrx_conform::cli::{commands, outputs, Cli};
use zcrx_conform::error::exit_code;

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => exit_code(outputs::stdout_checked(commands::dispatch(cli.cmd))),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
    }
}
