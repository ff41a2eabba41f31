# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nat64_global_optspecs
    string join \n log= h/help V/version
end

function __fish_nat64_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nat64_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nat64_using_subcommand
    set -l cmd (__fish_nat64_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nat64 -n "__fish_nat64_needs_command" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_needs_command" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_needs_command" -s V -l version -d 'Print version'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "run" -d 'Run the translator in the foreground (SIGTERM/SIGINT stop it cleanly, SIGHUP reloads timeouts, limits and static entries, SIGUSR1 logs counters)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "check" -d 'Validate a configuration and print the effective one (TOML), each value with where it came from (default, profile, file or --set)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "import-tayga" -d 'Convert a Tayga configuration (tayga.conf) into an equivalent nat64.toml (kernel NAPT); prints what has no equivalent'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "replay" -d 'Run the translator over a capture (pcap/pcapng) and write what it emits as a LINKTYPE_RAW pcap; prints a verdict summary'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "show" -d 'Show the running daemon\'s bindings, sessions, pool use or counters (over the control socket; a table, or JSON with --json)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "binding" -d 'Add or remove a static BIB entry (port forwarding) in the running daemon; it lasts until removed or the daemon stops (add a [[static]] to the config file to keep it)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "generate" -d 'Print the man page (`man [SUBCOMMAND]`) or shell completions (`completions bash|zsh|fish`), or write all of them (`all DIR`)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "lookup" -d 'RFC 7422 deterministic port blocks from the configuration alone: the block an IPv6 client gets, or the client an IPv4 ADDRESS:PORT belongs to (abuse lookups without a log)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "gen" -d 'Print the configuration that tells clients about the translator, generated from nat64\'s own: DNS64 for unbound or BIND 9 (RFC 6147), PREF64 for radvd 2.20+ (RFC 8781)'
complete -c nat64 -n "__fish_nat64_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand run" -s c -l config -d 'Config file, or a built-in profile name (`geomind`, `mycelium`)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand run" -l set -d 'Override one key of the configuration (repeatable), e.g. `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`' -r
complete -c nat64 -n "__fish_nat64_using_subcommand run" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand run" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand check" -s c -l config -d 'Config file, or a built-in profile name (`geomind`, `mycelium`)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand check" -l set -d 'Override one key of the configuration (repeatable), e.g. `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`' -r
complete -c nat64 -n "__fish_nat64_using_subcommand check" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand check" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand import-tayga" -s o -l output -d 'Write the nat64.toml here instead of standard output' -r -F
complete -c nat64 -n "__fish_nat64_using_subcommand import-tayga" -l leases -d 'Write the dynamic mappings of Tayga\'s data-dir/dynamic.map here, as a nat64 lease file (the converted state-file)' -r -F
complete -c nat64 -n "__fish_nat64_using_subcommand import-tayga" -l napt -d 'What to convert into: `none` (stateless, as Tayga itself) or `kernel` (Tayga plus the kernel\'s NAT44 masquerade, folded in)' -r -f -a "none\t'`napt = "none"`: stateless, as Tayga itself'
kernel\t'`napt = "kernel"`: Tayga plus the kernel\'s NAT44 masquerade'"
complete -c nat64 -n "__fish_nat64_using_subcommand import-tayga" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand import-tayga" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -s c -l config -d 'Config file, or a built-in profile name (`geomind`)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -l set -d 'Override one key of the configuration (repeatable), e.g. `--set tun.mtu=1280 --set prefix=2001:db8:64::/96`' -r
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -l until -d 'Keep the clock (timers, held SYNs) running until this many seconds after the first packet' -r
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -s v -l verbose -d 'One line per packet'
complete -c nat64 -n "__fish_nat64_using_subcommand replay" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l v6 -d 'Only this IPv6 host (ADDR) or network (ADDR/LEN) (bindings, sessions)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l proto -d 'Only this protocol (bindings, sessions)' -r -f -a "tcp\t''
udp\t''
icmp\t''"
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l limit -d 'Show at most N rows (bindings, sessions); 0 shows all. Rows come from the daemon a page at a time and are printed as they arrive' -r
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l socket -d 'The control socket (default: the `control` key of --config, or of /etc/nat64/nat64.toml if it exists, else /run/nat64/control.sock)' -r -F
complete -c nat64 -n "__fish_nat64_using_subcommand show" -s c -l config -d 'Read the socket path from this config file (or profile)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand show" -l json -d 'Print the daemon\'s JSON instead of a table'
complete -c nat64 -n "__fish_nat64_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and not __fish_seen_subcommand_from add del help" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and not __fish_seen_subcommand_from add del help" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and not __fish_seen_subcommand_from add del help" -f -a "add" -d 'Add a static BIB entry: IPv4 clients reaching --v4 reach --v6'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and not __fish_seen_subcommand_from add del help" -f -a "del" -d 'Remove a static BIB entry (and its sessions)'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and not __fish_seen_subcommand_from add del help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -l proto -r -f -a "tcp\t''
udp\t''
icmp\t''"
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -l v4 -d 'Pool address and port, e.g. 203.0.113.10:80' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -l v6 -d 'IPv6 host and port, e.g. [2001:db8::10]:8080' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -l socket -d 'The control socket (default: the `control` key of --config, or of /etc/nat64/nat64.toml if it exists, else /run/nat64/control.sock)' -r -F
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -s c -l config -d 'Read the socket path from this config file (or profile)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -l proto -r -f -a "tcp\t''
udp\t''
icmp\t''"
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -l v4 -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -l socket -d 'The control socket (default: the `control` key of --config, or of /etc/nat64/nat64.toml if it exists, else /run/nat64/control.sock)' -r -F
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -s c -l config -d 'Read the socket path from this config file (or profile)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a static BIB entry: IPv4 clients reaching --v4 reach --v6'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from help" -f -a "del" -d 'Remove a static BIB entry (and its sessions)'
complete -c nat64 -n "__fish_nat64_using_subcommand binding; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand generate" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand generate" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand lookup" -s c -l config -d 'Config file, or a built-in profile name' -r
complete -c nat64 -n "__fish_nat64_using_subcommand lookup" -l set -d 'Override one key of the configuration (repeatable)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand lookup" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand lookup" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and not __fish_seen_subcommand_from dns64 pref64 help" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and not __fish_seen_subcommand_from dns64 pref64 help" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and not __fish_seen_subcommand_from dns64 pref64 help" -f -a "dns64" -d 'A DNS64 snippet synthesizing AAAA records into nat64\'s prefix'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and not __fish_seen_subcommand_from dns64 pref64 help" -f -a "pref64" -d 'A radvd (2.20 or later) interface block advertising nat64\'s prefix as PREF64'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and not __fish_seen_subcommand_from dns64 pref64 help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -s c -l config -d 'Config file, or a built-in profile name' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -l set -d 'Override one key of the configuration (repeatable)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -l unbound -d 'An unbound `server:` clause'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -l bind9 -d 'A BIND 9 `dns64` statement for `options`'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from dns64" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -l interface -d 'The interface the IPv6 clients are on' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -l lifetime -d 'The option\'s lifetime in seconds (RFC 8781 §4.1: at least three times the router\'s MaxRtrAdvInterval)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -s c -l config -d 'Config file, or a built-in profile name' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -l set -d 'Override one key of the configuration (repeatable)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -l log -d 'Log filter (tracing EnvFilter syntax; RUST_LOG overrides)' -r
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -l radvd -d 'radvd syntax (`nat64prefix`); the only one so far'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from pref64" -s h -l help -d 'Print help'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from help" -f -a "dns64" -d 'A DNS64 snippet synthesizing AAAA records into nat64\'s prefix'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from help" -f -a "pref64" -d 'A radvd (2.20 or later) interface block advertising nat64\'s prefix as PREF64'
complete -c nat64 -n "__fish_nat64_using_subcommand gen; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "run" -d 'Run the translator in the foreground (SIGTERM/SIGINT stop it cleanly, SIGHUP reloads timeouts, limits and static entries, SIGUSR1 logs counters)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "check" -d 'Validate a configuration and print the effective one (TOML), each value with where it came from (default, profile, file or --set)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "import-tayga" -d 'Convert a Tayga configuration (tayga.conf) into an equivalent nat64.toml (kernel NAPT); prints what has no equivalent'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "replay" -d 'Run the translator over a capture (pcap/pcapng) and write what it emits as a LINKTYPE_RAW pcap; prints a verdict summary'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "show" -d 'Show the running daemon\'s bindings, sessions, pool use or counters (over the control socket; a table, or JSON with --json)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "binding" -d 'Add or remove a static BIB entry (port forwarding) in the running daemon; it lasts until removed or the daemon stops (add a [[static]] to the config file to keep it)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "generate" -d 'Print the man page (`man [SUBCOMMAND]`) or shell completions (`completions bash|zsh|fish`), or write all of them (`all DIR`)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "lookup" -d 'RFC 7422 deterministic port blocks from the configuration alone: the block an IPv6 client gets, or the client an IPv4 ADDRESS:PORT belongs to (abuse lookups without a log)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "gen" -d 'Print the configuration that tells clients about the translator, generated from nat64\'s own: DNS64 for unbound or BIND 9 (RFC 6147), PREF64 for radvd 2.20+ (RFC 8781)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and not __fish_seen_subcommand_from run check import-tayga replay show binding generate lookup gen help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and __fish_seen_subcommand_from binding" -f -a "add" -d 'Add a static BIB entry: IPv4 clients reaching --v4 reach --v6'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and __fish_seen_subcommand_from binding" -f -a "del" -d 'Remove a static BIB entry (and its sessions)'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and __fish_seen_subcommand_from gen" -f -a "dns64" -d 'A DNS64 snippet synthesizing AAAA records into nat64\'s prefix'
complete -c nat64 -n "__fish_nat64_using_subcommand help; and __fish_seen_subcommand_from gen" -f -a "pref64" -d 'A radvd (2.20 or later) interface block advertising nat64\'s prefix as PREF64'
