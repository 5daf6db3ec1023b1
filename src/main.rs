//! `nexus`: the SirsiNexus command line.

use clap::Parser;

mod commands;

fn main() -> std::process::ExitCode {
    let runtime = match nexus_http::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> std::process::ExitCode {
    // Logs go to stderr, filtered by `RUST_LOG` (default `info` for our crates, `warn`
    // otherwise); spans go to the OTLP endpoint when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    let tracing = nexus_telemetry::trace::init(
        "nexus-coordinator",
        "warn,nexus=info,nexus_edge=info,nexus_runtime=info",
    );
    let cli = commands::Cli::parse();
    let code = match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    };
    tracing.shutdown().await;
    code
}
