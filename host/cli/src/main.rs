//! The `cpi` command line: parse → dispatch → render → exit code.

mod cli;
mod commands;
mod interrupt;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Busybox-style: invoked as `cloudco-cli`, this binary is the simulated cloud's CLI, so the
    // demo and tests need no second program on PATH.
    let mut args = std::env::args_os();
    if let Some(argv0) = args.next()
        && std::path::Path::new(&argv0)
            .file_name()
            .is_some_and(|n| n == "cloudco-cli")
    {
        let code = cpi_sim::cloudco::main(std::env::args_os());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let mut cli = cli::Cli::parse();
    // `serve` and `sim` shut down gracefully on their own signals.
    if !matches!(cli.command, cli::Command::Serve(_) | cli::Command::Sim(_)) {
        interrupt::install();
    }
    output::configure(&mut cli.global);
    output::init_logging(cli.global.verbose, cli.global.quiet);
    let (settings, json) = (cli.global.settings, cli.global.json);
    match commands::exec(cli) {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&settings, &err, json);
            ExitCode::from(err.kind().exit_code())
        }
    }
}
