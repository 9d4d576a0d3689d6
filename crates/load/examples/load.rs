//! `sluice load` without the rest of the binary: `cargo run --release -p sluice-load --example
//! load -- --host http://127.0.0.1:4000 -u 50 -t 30s`. Handy for measuring the load generator
//! itself.

use clap::Parser;

#[derive(clap::Parser)]
#[command(name = "sluice-load", about = "sluice load: load-test an OpenAI-compatible gateway")]
struct Cli {
    #[command(flatten)]
    load: sluice_load::LoadArgs,
}

fn main() {
    std::process::exit(sluice_load::run(Cli::parse().load));
}
