//! Network plumbing around the TUN: routes, the kernel-mode nftables table,
//! forwarding sysctls. Done with the `ip` and `nft` commands (ADR-0003).
//!
//! Everything installed is recorded in [`Installed`] and removed again by
//! [`Installed::teardown`] (also on drop), in reverse order.

use anyhow::{bail, Context as _};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use tracing::{info, warn};

/// Runs `prog args…`; on failure the error quotes the command and its stderr.
pub fn run(prog: &str, args: &[&str]) -> anyhow::Result<()> {
    run_stdin(prog, args, None)
}

fn run_stdin(prog: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    let cmdline = format!("{prog} {}", args.join(" "));
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run `{cmdline}`: is {prog} installed and on PATH? (Debian: apt-get \
                 install {})",
                if prog == "nft" {
                    "nftables"
                } else {
                    "iproute2"
                }
            )
        })?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(text.as_bytes())
            .with_context(|| format!("writing input to `{cmdline}`"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{cmdline}`"))?;
    if !out.status.success() {
        bail!(
            "`{cmdline}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `prog args…` and returns its standard output.
pub fn output(prog: &str, args: &[&str]) -> anyhow::Result<String> {
    let cmdline = format!("{prog} {}", args.join(" "));
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{cmdline}`: is {prog} installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "`{cmdline}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One thing the daemon installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A route `dest dev tun` (family `-4`/`-6`).
    Route {
        family: &'static str,
        dest: String,
        dev: String,
    },
    /// This instance's nftables table `ip NAME` ([`nft_table_name`]).
    NftTable(String),
    /// `table ip6 NAME` (lease recovery's IPv6 tracking).
    NftTable6(String),
    /// An address `addr/len` on `dev` (the TUN's own IPv4 address).
    Address { addr: String, dev: String },
    /// A proxy neighbour entry: `dev` answers neighbour solicitations for
    /// `addr` (the CLAT's IPv6 address on its uplink).
    ProxyNdp { addr: String, dev: String },
}

/// What was installed, to be removed on exit.
#[derive(Debug, Default)]
pub struct Installed {
    items: Vec<Item>,
}

impl Installed {
    /// `ip -6|-4 route replace DEST dev DEV` (replace: idempotent over a
    /// leftover from a crashed run).
    pub fn route(&mut self, family: &'static str, dest: &str, dev: &str) -> anyhow::Result<()> {
        run("ip", &[family, "route", "replace", dest, "dev", dev]).with_context(|| {
            format!("installing the route {dest} -> {dev} (set manage-routes = false to manage routes yourself)")
        })?;
        info!("route {dest} dev {dev} installed");
        self.items.push(Item::Route {
            family,
            dest: dest.to_string(),
            dev: dev.to_string(),
        });
        Ok(())
    }

    /// Installs this instance's table (`ip nat64_<tun>`, see
    /// [`nft_ruleset`]): masquerade of the inner pool, and the inbound
    /// filter that keeps the IPv6-only clients unreachable from the IPv4
    /// side except through `[[map]]` addresses. A table of that name left
    /// by a crashed instance is replaced. The caller has checked with
    /// [`check_nft_owner`], before touching anything, that no running
    /// instance owns it.
    pub fn nft_kernel(
        &mut self,
        inner: &str,
        tun: &str,
        maps: &[Ipv4Addr],
        egress: Option<Ipv4Addr>,
    ) -> anyhow::Result<()> {
        let table = nft_table_name(tun);
        let rules = nft_ruleset(&table, inner, tun, maps, egress, std::process::id());
        run_stdin("nft", &["-f", "-"], Some(&rules)).with_context(|| {
            format!(
                "installing the nftables table `ip {table}` (set manage-nft = false to manage \
                 NAT yourself)"
            )
        })?;
        let nat = egress.map_or("masquerade".to_string(), |a| format!("snat to {a}"));
        info!("nftables table ip {table} installed ({nat} {inner}, inbound filter)");
        self.items.push(Item::NftTable(table));
        Ok(())
    }

    /// `lease-recovery = "conntrack"`: `table ip6 nat64_<tun>`, whose one
    /// counting rule makes the kernel track the IPv6 flows forwarded into
    /// the TUN, so that conntrackd replicates them to the other node
    /// ([`crate::recovery`]). Nothing is filtered.
    pub fn nft_track_ipv6(&mut self, prefix: &str, tun: &str) -> anyhow::Result<()> {
        let table = nft_table_name(tun);
        let pid = std::process::id();
        let rules = format!(
            "add table ip6 {table}\n\
             delete table ip6 {table}\n\
             table ip6 {table} {{\n\
             \tcomment \"nat64 pid {pid} tun {tun}\"\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\toifname \"{tun}\" ip6 daddr {prefix} ct state new,established,related counter\n\
             \t}}\n\
             }}\n"
        );
        run_stdin("nft", &["-f", "-"], Some(&rules)).with_context(|| {
            format!("installing the nftables table `ip6 {table}` (lease-recovery's IPv6 tracking)")
        })?;
        info!("nftables table ip6 {table} installed (IPv6 flows into {tun} tracked)");
        self.items.push(Item::NftTable6(table));
        Ok(())
    }

    /// `ip addr add ADDR dev DEV`, unless this host already has ADDR on
    /// any interface (then it is the host's own address and stays where it
    /// is). Returns whether it was added.
    pub fn address(&mut self, addr: &str, dev: &str) -> anyhow::Result<bool> {
        let bare = addr.split('/').next().unwrap_or(addr);
        let present = output("ip", &["-o", "addr", "show", "to", bare])?;
        if !present.trim().is_empty() {
            info!("{bare} is already an address of this host; not adding it to {dev}");
            return Ok(false);
        }
        run("ip", &["addr", "add", addr, "dev", dev]).with_context(|| {
            format!("adding {addr} to {dev} (set tun.assign-gateway-v4 = false to leave the TUN without an address)")
        })?;
        info!("address {addr} added to {dev}");
        self.items.push(Item::Address {
            addr: addr.to_string(),
            dev: dev.to_string(),
        });
        Ok(true)
    }

    /// Makes `dev` answer neighbour solicitations for `addr` (RFC 4861
    /// §7.2.8 proxy): `net.ipv6.conf.DEV.proxy_ndp = 1` and a proxy entry.
    /// The CLAT's address (RFC 6877 §6.3) is routed into the TUN, so
    /// without this the uplink router could not find it.
    pub fn proxy_ndp(&mut self, addr: &str, dev: &str) -> anyhow::Result<()> {
        sysctl_set(&format!("net/ipv6/conf/{dev}/proxy_ndp"), "1").with_context(|| {
            format!("enabling proxy NDP on {dev} for {addr} (check clat-uplink names the uplink)")
        })?;
        run("ip", &["-6", "neigh", "replace", "proxy", addr, "dev", dev])
            .with_context(|| format!("adding the proxy neighbour entry {addr} on {dev}"))?;
        info!("answering neighbour solicitations for {addr} on {dev}");
        self.items.push(Item::ProxyNdp {
            addr: addr.to_string(),
            dev: dev.to_string(),
        });
        Ok(())
    }

    /// `ip -4 route add default dev DEV` unless the host has an IPv4
    /// default route already (a CLAT only serves hosts without IPv4; an
    /// existing route is left alone, with a warning). Returns whether it was
    /// added.
    pub fn default_v4_route(&mut self, dev: &str) -> anyhow::Result<bool> {
        let present = output("ip", &["-4", "route", "show", "default"])?;
        if !present.trim().is_empty() {
            warn!(
                "this host has an IPv4 default route ({}); the CLAT's default route into {dev} \
                 is not installed, so only routes you add reach it",
                present.trim()
            );
            return Ok(false);
        }
        self.route("-4", "default", dev)?;
        Ok(true)
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Removes everything, newest first. Errors are logged, not returned:
    /// teardown goes on with the rest.
    pub fn teardown(&mut self) {
        while let Some(it) = self.items.pop() {
            let r = match &it {
                Item::Route { family, dest, dev } => {
                    run("ip", &[family, "route", "del", dest, "dev", dev])
                }
                Item::NftTable(name) => run("nft", &["delete", "table", "ip", name]),
                Item::NftTable6(name) => run("nft", &["delete", "table", "ip6", name]),
                Item::Address { addr, dev } => run("ip", &["addr", "del", addr, "dev", dev]),
                Item::ProxyNdp { addr, dev } => {
                    run("ip", &["-6", "neigh", "del", "proxy", addr, "dev", dev])
                }
            };
            match r {
                Ok(()) => info!("removed {it:?}"),
                // Routes and addresses vanish with their TUN: nothing to
                // report then.
                Err(e) if matches!(it, Item::Route { .. } | Item::Address { .. }) => {
                    tracing::debug!("route already gone: {e:#}")
                }
                Err(e) => warn!("could not remove {it:?}: {e:#}"),
            }
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The name of an instance's nftables table: `nat64_` and its TUN's name
/// (anything but letters, digits and `_` becomes `_`), so that two
/// instances on two TUNs never touch each other's table (issue 11 #7).
pub fn nft_table_name(tun: &str) -> String {
    let t: String = tun
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("nat64_{t}")
}

/// Refuses when the nftables table of TUN `tun` belongs to another running
/// nat64 (its comment names a live PID other than ours): called before
/// anything is touched, so a second instance on the same TUN leaves the
/// first one's routes, address and table alone.
pub fn check_nft_owner(tun: &str) -> anyhow::Result<()> {
    let table = nft_table_name(tun);
    if let Ok(listing) = output("nft", &["list", "table", "ip", &table]) {
        if let Some(pid) = owner_pid(&listing).filter(|p| *p != std::process::id()) {
            if pid_alive(pid) {
                bail!(
                    "the nftables table `ip {table}` belongs to another running nat64 (pid {pid}) \
                     on TUN {tun}: give this instance another tun.name, or stop that one first"
                );
            }
            info!("replacing the table `ip {table}` left by nat64 pid {pid} (not running)");
        }
    }
    Ok(())
}

/// The owner PID in a table's comment (`nat64 pid N tun T`).
fn owner_pid(listing: &str) -> Option<u32> {
    let c = listing.split("comment \"nat64 pid ").nth(1)?;
    c.split_whitespace().next()?.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The kernel-mode nftables ruleset of table `table`. `add table` +
/// `delete table` first makes loading it replace a leftover table
/// atomically. Two chains:
/// * `postrouting`: masquerade the inner pool on every egress except the
///   TUN itself (hairpinned traffic goes back into it), or SNAT it to
///   `egress` (`egress-v4`: an HA pair's VRRP address; masquerade would
///   take each node's own address and flush its conntrack entries when an
///   address goes away);
/// * `forward`: towards the inner pool (into the TUN) only replies and
///   related ICMP of flows the clients opened, and new flows to `[[map]]`
///   addresses; anything else from outside is dropped, so an IPv4
///   neighbour with a route to the inner pool cannot reach the IPv6-only
///   clients (issue 11 #6); and out of the TUN, inner-pool packets that
///   conntrack finds invalid (an out-of-window TCP segment, one of a flow
///   whose entry is not there yet after an HA failover): NAT skips invalid
///   packets, so they would leave with the inner address.
pub fn nft_ruleset(
    table: &str,
    inner: &str,
    tun: &str,
    maps: &[Ipv4Addr],
    egress: Option<Ipv4Addr>,
    pid: u32,
) -> String {
    let nat = egress.map_or("masquerade".to_string(), |a| format!("snat to {a}"));
    // egress-v4 is an SNAT address only: a TCP or UDP packet to it that
    // no NAT entry claims is dropped, never answered by this host (after
    // an HA takeover the VRRP address arrives a moment before the
    // replicated entries are committed; a RST from this host then would
    // kill the flow the commit is about to carry on).
    let input = egress.map_or(String::new(), |a| {
        format!(
            "\tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tip daddr {a} meta l4proto {{ tcp, udp }} ct state new,invalid drop\n\
             \t}}\n"
        )
    });
    let allow_maps = if maps.is_empty() {
        String::new()
    } else {
        let set: Vec<String> = maps.iter().map(|a| a.to_string()).collect();
        format!(
            "\t\toifname \"{tun}\" ip daddr {{ {} }} accept\n",
            set.join(", ")
        )
    };
    format!(
        "add table ip {table}\n\
         delete table ip {table}\n\
         table ip {table} {{\n\
         \tcomment \"nat64 pid {pid} tun {tun}\"\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {inner} oifname != \"{tun}\" {nat}\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{tun}\" ip saddr {inner} ct state invalid drop\n\
         \t\toifname \"{tun}\" ip daddr {inner} ct state established,related accept\n\
         {allow_maps}\
         \t\toifname \"{tun}\" ip daddr {inner} drop\n\
         \t}}\n\
         {input}\
         }}\n"
    )
}

/// Reads a sysctl under /proc/sys (`net/ipv4/ip_forward`).
pub fn sysctl_get(path: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn sysctl_set(path: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)
        .with_context(|| format!("setting /proc/sys/{path} = {value} (needs root)"))
}

/// Forwarding must be on for traffic of other hosts to reach the TUN and
/// leave it. With `manage` the sysctls are set; otherwise a warning names
/// the missing ones.
pub fn ensure_forwarding(manage: bool) -> anyhow::Result<()> {
    for path in FORWARDING {
        let v = sysctl_get(path);
        if v.as_deref() == Some("1") {
            continue;
        }
        if manage {
            sysctl_set(path, "1")?;
            info!("sysctl {} = 1 (manage-forwarding)", path.replace('/', "."));
        } else {
            warn!(
                "sysctl {} is {}: only this host's own traffic will be translated; run `sysctl \
                 -w {}=1` or set manage-forwarding = true",
                path.replace('/', "."),
                v.as_deref().unwrap_or("unreadable"),
                path.replace('/', ".")
            );
        }
    }
    Ok(())
}

/// The forwarding sysctls that are not 1 (`net.ipv4.ip_forward`,
/// `net.ipv6.conf.all.forwarding`): what [`ForwardingWatch`] reports.
pub fn forwarding_off() -> Vec<&'static str> {
    FORWARDING
        .iter()
        .filter(|p| sysctl_get(p).as_deref() != Some("1"))
        .copied()
        .collect()
}

const FORWARDING: [&str; 2] = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"];

/// Notices forwarding being turned off (or on again) while nat64 runs: with
/// either sysctl at 0 the clients' traffic never reaches the TUN, and the
/// daemon looks healthy while every client times out.
#[derive(Debug, Default)]
pub struct ForwardingWatch {
    off: Vec<&'static str>,
}

impl ForwardingWatch {
    pub fn new() -> ForwardingWatch {
        ForwardingWatch {
            off: forwarding_off(),
        }
    }

    /// Checks the sysctls; logs each change once.
    pub fn check(&mut self) {
        let now = forwarding_off();
        if now == self.off {
            return;
        }
        for p in now.iter().filter(|p| !self.off.contains(p)) {
            warn!(
                "sysctl {} was turned off while nat64 runs: clients' traffic is no longer \
                 forwarded through the translator; turn it back on with `sysctl -w {}=1`",
                p.replace('/', "."),
                p.replace('/', ".")
            );
        }
        for p in self.off.iter().filter(|p| !now.contains(p)) {
            info!(
                "sysctl {} is 1 again: forwarding restored",
                p.replace('/', ".")
            );
        }
        self.off = now;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ruleset_masquerades_inner_pool_except_into_tun() {
        let r = nft_ruleset("nat64_nat64", "100.64.0.0/16", "nat64", &[], None, 42);
        assert!(r.contains("type nat hook postrouting priority srcnat"));
        assert!(r.contains("ip saddr 100.64.0.0/16 oifname != \"nat64\" masquerade"));
        assert!(r.starts_with("add table ip nat64_nat64\ndelete table ip nat64_nat64\n"));
        assert!(r.contains("comment \"nat64 pid 42 tun nat64\""));
        assert_eq!(owner_pid(&r), Some(42));
    }

    #[test]
    fn ruleset_admits_only_replies_and_maps_to_the_inner_pool() {
        let r = nft_ruleset(
            "nat64_t",
            "100.64.0.0/16",
            "t",
            &[
                "100.64.9.9".parse().unwrap(),
                "192.0.2.100".parse().unwrap(),
            ],
            None,
            1,
        );
        let fwd = r.split("chain forward").nth(1).unwrap();
        assert!(fwd.contains("iifname \"t\" ip saddr 100.64.0.0/16 ct state invalid drop"));
        let est = fwd.find("ct state established,related accept").unwrap();
        let maps = fwd
            .find("ip daddr { 100.64.9.9, 192.0.2.100 } accept")
            .unwrap();
        let drop = fwd.find("ip daddr 100.64.0.0/16 drop").unwrap();
        assert!(
            est < drop && maps < drop,
            "accepts come before the drop:\n{r}"
        );
    }

    #[test]
    fn ruleset_snats_to_egress_v4_instead_of_masquerading() {
        let r = nft_ruleset(
            "nat64_t",
            "100.64.0.0/16",
            "t",
            &[],
            Some("203.0.113.10".parse().unwrap()),
            1,
        );
        assert!(r.contains("ip saddr 100.64.0.0/16 oifname != \"t\" snat to 203.0.113.10\n"));
        assert!(!r.contains("masquerade"), "{r}");
        assert!(r.contains(
            "type filter hook input priority filter; policy accept;\n\t\tip daddr 203.0.113.10 \
             meta l4proto { tcp, udp } ct state new,invalid drop\n"
        ));
        let plain = nft_ruleset("nat64_t", "100.64.0.0/16", "t", &[], None, 1);
        assert!(!plain.contains("chain input"), "{plain}");
    }

    #[test]
    fn table_name_follows_the_tun() {
        assert_eq!(nft_table_name("nat64"), "nat64_nat64");
        assert_eq!(nft_table_name("xlat-1.a"), "nat64_xlat_1_a");
    }
}
