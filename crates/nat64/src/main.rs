//! `nat64`: the stateful NAT64 daemon.

use nat64::control::client::{self, Proto, ShowWhat};
use nat64::control::proto::Request;
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
        /// Config file, or a built-in profile name (`geomind`, `mycelium`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable), e.g.
        /// `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Validate a configuration and print the effective one (TOML), each
    /// value with where it came from (default, profile, file or --set).
    Check {
        /// Config file, or a built-in profile name (`geomind`, `mycelium`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable), e.g.
        /// `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
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
        /// What to convert into: `none` (stateless, as Tayga itself) or
        /// `kernel` (Tayga plus the kernel's NAT44 masquerade, folded in).
        #[arg(long, value_enum, default_value = "none")]
        napt: nat64::tayga::Target,
    },
    /// Run the translator over a capture (pcap/pcapng) and write what it
    /// emits as a LINKTYPE_RAW pcap; prints a verdict summary.
    Replay {
        /// Config file, or a built-in profile name (`geomind`).
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable), e.g.
        /// `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
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
    /// Show the running daemon's bindings, sessions, pool use or counters
    /// (over the control socket; a table, or JSON with --json).
    Show {
        /// bindings, sessions, pool or stats.
        what: ShowWhat,
        /// Print the daemon's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this IPv6 host (ADDR) or network (ADDR/LEN) (bindings, sessions).
        #[arg(long, value_name = "ADDR")]
        v6: Option<String>,
        /// Only this protocol (bindings, sessions).
        #[arg(long, value_enum)]
        proto: Option<Proto>,
        /// Show at most N rows (bindings, sessions); 0 shows all. Rows come
        /// from the daemon a page at a time and are printed as they arrive.
        #[arg(long, value_name = "N", default_value_t = 0)]
        limit: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Add or remove a static BIB entry (port forwarding) in the running
    /// daemon; it lasts until removed or the daemon stops (add a [[static]]
    /// to the config file to keep it).
    Binding {
        #[command(subcommand)]
        op: BindingOp,
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
    /// RFC 7422 deterministic port blocks from the configuration alone: the
    /// block an IPv6 client gets, or the client an IPv4 ADDRESS:PORT
    /// belongs to (abuse lookups without a log).
    Lookup {
        /// An IPv6 client address, or an IPv4 ADDRESS[:PORT] of the pool.
        query: String,
        /// Config file, or a built-in profile name.
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the configuration that tells clients about the translator,
    /// generated from nat64's own: DNS64 for unbound or BIND 9 (RFC 6147),
    /// PREF64 for radvd 2.20+ (RFC 8781).
    Gen {
        #[command(subcommand)]
        what: GenWhat,
    },
}

#[derive(Debug, Subcommand)]
enum GenWhat {
    /// A DNS64 snippet synthesizing AAAA records into nat64's prefix.
    #[command(group(clap::ArgGroup::new("server").required(true).args(["unbound", "bind9"])))]
    Dns64 {
        /// An unbound `server:` clause.
        #[arg(long)]
        unbound: bool,
        /// A BIND 9 `dns64` statement for `options`.
        #[arg(long)]
        bind9: bool,
        /// Config file, or a built-in profile name.
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// A radvd (2.20 or later) interface block advertising nat64's prefix
    /// as PREF64.
    Pref64 {
        /// radvd syntax (`nat64prefix`); the only one so far.
        #[arg(long, required = true)]
        radvd: bool,
        /// The interface the IPv6 clients are on.
        #[arg(long, value_name = "NAME")]
        interface: String,
        /// The option's lifetime in seconds (RFC 8781 §4.1: at least three
        /// times the router's MaxRtrAdvInterval).
        #[arg(long, default_value_t = 1800)]
        lifetime: u32,
        /// Config file, or a built-in profile name.
        #[arg(short, long, default_value = "/etc/nat64/nat64.toml")]
        config: String,
        /// Override one key of the configuration (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// `nat64 gen …`: the prefix of the configuration (derived or discovered
/// prefixes included), written into the server's syntax.
fn gen_snippet(what: &GenWhat) -> anyhow::Result<()> {
    use nat64::snippets;
    let text = match what {
        GenWhat::Dns64 {
            unbound,
            config,
            set,
            ..
        } => {
            let l = config::load(config, set)?;
            let source = l.source.to_string();
            if *unbound {
                snippets::unbound(l.settings.prefix, &source)
            } else {
                snippets::bind9(l.settings.prefix, &source)
            }
        }
        GenWhat::Pref64 {
            interface,
            lifetime,
            config,
            set,
            ..
        } => {
            let l = config::load(config, set)?;
            snippets::radvd(
                l.settings.prefix,
                interface,
                (*lifetime).min(nat64::pref64::MAX_LIFETIME),
                &l.source.to_string(),
            )
        }
    };
    print!("{text}");
    Ok(())
}

/// Which daemon `show` and `binding` talk to.
#[derive(Debug, clap::Args)]
struct Target {
    /// The control socket (default: the `control` key of --config, or of
    /// /etc/nat64/nat64.toml if it exists, else /run/nat64/control.sock).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    socket: Option<std::path::PathBuf>,
    /// Read the socket path from this config file (or profile).
    #[arg(short, long, value_name = "FILE")]
    config: Option<String>,
}

impl Target {
    fn path(&self) -> anyhow::Result<std::path::PathBuf> {
        client::socket_path(self.socket.as_deref(), self.config.as_deref())
    }
}

#[derive(Debug, Subcommand)]
enum BindingOp {
    /// Add a static BIB entry: IPv4 clients reaching --v4 reach --v6.
    Add {
        #[arg(long, value_enum)]
        proto: Proto,
        /// Pool address and port, e.g. 203.0.113.10:80.
        #[arg(long, value_name = "ADDR:PORT")]
        v4: std::net::SocketAddrV4,
        /// IPv6 host and port, e.g. [2001:db8::10]:8080.
        #[arg(long, value_name = "[ADDR]:PORT")]
        v6: std::net::SocketAddrV6,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a static BIB entry (and its sessions).
    Del {
        #[arg(long, value_enum)]
        proto: Proto,
        #[arg(long, value_name = "ADDR:PORT")]
        v4: std::net::SocketAddrV4,
        #[command(flatten)]
        target: Target,
    },
}

fn init_logging(filter: &str, format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Human => b
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        config::LogFormat::Json => b.json().with_ansi(false).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` logs in the format its configuration asks for.
    let loaded = match &cli.command {
        Command::Run { config, set } => Some(config::load(config, set)),
        _ => None,
    };
    let format = match &loaded {
        Some(Ok(l)) => l.settings.log_format,
        _ => config::LogFormat::Human,
    };
    init_logging(&cli.log, format);
    let res = match &cli.command {
        Command::Check { config, set } => check(config, set),
        Command::Run { config, set } => match loaded {
            Some(Ok(l)) => run::run(l, config, set),
            Some(Err(e)) => Err(e),
            None => Ok(()),
        },
        Command::Show {
            what,
            json,
            v6,
            proto,
            limit,
            target,
        } => target
            .path()
            .and_then(|p| client::show(&p, *what, *json, v6.as_deref(), *proto, *limit)),
        Command::Binding { op } => match op {
            BindingOp::Add {
                proto,
                v4,
                v6,
                target,
            } => target.path().and_then(|p| {
                client::binding(
                    &p,
                    Request::BindingAdd {
                        proto: proto.as_str().into(),
                        v6: v6.to_string(),
                        v4: v4.to_string(),
                    },
                )
            }),
            BindingOp::Del { proto, v4, target } => target.path().and_then(|p| {
                client::binding(
                    &p,
                    Request::BindingDel {
                        proto: proto.as_str().into(),
                        v4: v4.to_string(),
                    },
                )
            }),
        },
        Command::ImportTayga {
            file,
            output,
            leases,
            napt,
        } => nat64::tayga::cli(file, output.as_deref(), leases.as_deref(), *napt),
        Command::Replay {
            config,
            set,
            input,
            output,
            until,
            verbose,
        } => nat64::replay::cli(config, set, input, output, *until, *verbose),
        Command::Gen { what } => gen_snippet(what),
        Command::Lookup { query, config, set } => {
            nat64::lookup::lookup(query, config, set).map(|out| print!("{out}"))
        }
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

fn check(arg: &str, sets: &[String]) -> anyhow::Result<()> {
    let loaded = config::load(arg, sets)?;
    for w in &loaded.settings.warnings {
        eprintln!("nat64: warning: {w}");
    }
    println!("# effective configuration of {}", loaded.source);
    println!(
        "# each value is followed by where it came from: default, a profile, the file, or --set"
    );
    if let Some(d) = &loaded.derived {
        println!(
            "# prefix {} derived from {}: hand this prefix to the clients (DNS64, PREF64)",
            d.prefix,
            d.describe()
        );
    }
    print!("{}", loaded.annotated_toml()?);
    eprintln!("nat64: {} is valid", loaded.source);
    Ok(())
}
