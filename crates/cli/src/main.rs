//! The `deepoffload` command: parses flags, wires the library crates together, prints.

/// `println!` for results: a closed stdout (`deepoffload … | head`) ends the program quietly
/// instead of panicking; any other write error is reported.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            crate::stdout_failed(e)
        }
    }};
}

mod args;
mod cmd;

/// Ends the program after stdout failed.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing results to stdout: {e}");
    std::process::exit(1)
}

use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;

fn init_logging(cli: &args::Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .init();
    }
}

/// The async runtime for the networked commands.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: args::Cli) -> Result<ExitCode> {
    match cli.command {
        args::Command::Detect(a) => cmd::detect::run(a),
        args::Command::Models(c) => cmd::models::run(c),
        args::Command::Video(c) => cmd::video::run(c),
        args::Command::Serve(a) => runtime()?.block_on(cmd::serve::run(a)),
        args::Command::Run(a) => runtime()?.block_on(cmd::run::run(*a)),
        args::Command::Link(a) => runtime()?.block_on(cmd::link::run(a)),
        args::Command::Profile(a) => cmd::profile::run(a),
        args::Command::Decide(a) => cmd::decide::decide(a),
        args::Command::Evaluate(a) => cmd::decide::evaluate(a),
        args::Command::Bench(args::BenchCommand::Detect(a)) => cmd::bench::run(a),
        args::Command::Bench(args::BenchCommand::Video(a)) => cmd::video::bench(a),
        args::Command::Experiment(a) => runtime()?.block_on(cmd::study::experiment(a)),
        args::Command::Report(a) => cmd::study::report(a),
        args::Command::Demo(a) => runtime()?.block_on(cmd::study::demo(a)),
    }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
