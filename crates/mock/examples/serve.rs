//! Runs the mock standalone (`cargo run -p sluice-mock --example serve -- --port 0`), for
//! benchmarking the mock on its own before the `sluice` binary wires it in.

use clap::Parser;

#[derive(Parser)]
#[command(name = "sluice-mock")]
struct Cli {
    #[command(flatten)]
    mock: sluice_mock::MockArgs,
}

fn main() -> std::io::Result<()> {
    sluice_mock::run(Cli::parse().mock)
}
