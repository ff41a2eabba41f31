//! `nat64`: the stateful NAT64 daemon.

use nat64::{config, run};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Stateful NAT64 translator (RFC 6146, RFC 7915, RFC 6052) on a Linux TUN.
#[derive(Debug, Parser)]
#[command(name = "nat64", version, about)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax; RUST_LOG overrides).
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the translator in the foreground (SIGTERM/SIGINT stop it cleanly,
    /// SIGHUP reloads timeouts, limits and static entries, SIGUSR1 logs
    /// counters).
    Run {
        /// Config file, or a built-in profile name (`geomind`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
    },
    /// Validate a configuration and print the effective one (TOML).
    Check {
        /// Config file, or a built-in profile name (`geomind`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
    },
    /// Convert a Tayga configuration (tayga.conf) into an equivalent
    /// nat64.toml (kernel NAPT); prints what has no equivalent.
    ImportTayga {
        /// The tayga.conf to convert.
        file: std::path::PathBuf,
        /// Write the nat64.toml here instead of standard output.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// Write the dynamic mappings of Tayga's data-dir/dynamic.map here,
        /// as a nat64 lease file (the converted state-file).
        #[arg(long, value_name = "FILE")]
        leases: Option<std::path::PathBuf>,
    },
    /// Run the translator over a capture (pcap/pcapng) and write what it
    /// emits as a LINKTYPE_RAW pcap; prints a verdict summary.
    Replay {
        /// Config file, or a built-in profile name (`geomind`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Input capture: RAW, IPv4, IPv6, Ethernet, Linux SLL/SLL2 or loopback.
        input: std::path::PathBuf,
        /// Output capture (LINKTYPE_RAW).
        output: std::path::PathBuf,
        /// Keep the clock (timers, held SYNs) running until this many
        /// seconds after the first packet.
        #[arg(long, value_name = "SECONDS")]
        until: Option<f64>,
        /// One line per packet.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print the man page (`man [SUBCOMMAND]`) or shell completions
    /// (`completions bash|zsh|fish`), or write all of them (`all DIR`).
    #[command(hide = true)]
    Generate {
        /// man, completions or all.
        what: String,
        /// Subcommand, shell, or output directory.
        arg: Option<String>,
    },
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let res = match &cli.command {
        Command::Check { config } => check(config),
        Command::Run { config } => config::load(config).and_then(|loaded| run::run(loaded, config)),
        Command::ImportTayga {
            file,
            output,
            leases,
        } => nat64::tayga::cli(file, output.as_deref(), leases.as_deref()),
        Command::Replay {
            config,
            input,
            output,
            until,
            verbose,
        } => nat64::replay::cli(config, input, output, *until, *verbose),
        Command::Generate { what, arg } => nat64::gen::cli(
            &<Cli as clap::CommandFactory>::command(),
            what,
            arg.as_deref(),
        ),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<config::ConfigErrors>() {
                eprint!("nat64: {ce}");
            } else {
                eprintln!("nat64: error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn check(arg: &str) -> anyhow::Result<()> {
    let loaded = config::load(arg)?;
    for w in &loaded.settings.warnings {
        eprintln!("nat64: warning: {w}");
    }
    println!("# effective configuration of {}", loaded.source);
    print!("{}", loaded.file.to_toml()?);
    eprintln!("nat64: {} is valid", loaded.source);
    Ok(())
}
