//! `nat64`: the stateful NAT64 daemon.

use clap::{Parser, Subcommand};

/// Stateful NAT64 translator (RFC 6146, RFC 7915, RFC 6052) on a Linux TUN.
#[derive(Debug, Parser)]
#[command(name = "nat64", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the translator in the foreground.
    Run,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run => anyhow::bail!("not implemented yet"),
    }
}
