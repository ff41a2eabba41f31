//! Kernel mode in an HA pair (`lease-recovery = "conntrack"`, ADR 0011):
//! a client's lease that the *other* node made, recovered from the
//! conntrack entries conntrackd replicated.
//!
//! A client's inner address is its home address on both nodes, so a flow
//! the client keeps sending on finds the same lease after a failover. A
//! flow where only the server speaks (a download whose client has nothing
//! to send but the ACKs of data that no longer arrives) would stall: the
//! new node has no lease for the inner address, and the hash cannot be run
//! backwards. But kernel mode keeps ports, and with IPv6 forwarding
//! tracked (nat64 installs `table ip6 nat64_<tun>` for it) conntrackd
//! replicates the client's IPv6 entry too. So the IPv4 packet itself names
//! the flow: server S:sport to inner X:cport; the IPv6 entry with original
//! destination prefix||S:sport and source port cport names the client; the
//! lease X = client is restored, and the server's next retransmission gets
//! through.
//!
//! Workers only `try_send` a miss (never block, never wait); one thread
//! asks conntrack (`conntrack -L -f ipv6`, CAP_NET_ADMIN: the one thread
//! besides the main thread that keeps it), at most [`PER_SECOND`] times a
//! second and once per inner address per [`RETRY`].

use nat64_core::addr::Prefix;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Queries to conntrack per second, at most.
pub const PER_SECOND: u32 = 50;
/// How soon an inner address is asked about again.
pub const RETRY: Duration = Duration::from_secs(1);
const QUEUE: usize = 1024;

/// An IPv4 packet for an inner address without a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    pub proto: u8,
    pub server: Ipv4Addr,
    pub server_port: u16,
    pub inner: Ipv4Addr,
    pub client_port: u16,
}

impl Miss {
    /// The flow of an IPv4 TCP or UDP packet (`pkt` from its IP header).
    pub fn parse(pkt: &[u8]) -> Option<Miss> {
        let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
        if pkt[0] >> 4 != 4 || ihl < 20 {
            return None;
        }
        let proto = *pkt.get(9)?;
        // First fragments only: later ones carry no ports.
        let frag_off = u16::from_be_bytes([*pkt.get(6)?, *pkt.get(7)?]) & 0x1fff;
        if !(proto == 6 || proto == 17) || frag_off != 0 {
            return None;
        }
        let l4 = pkt.get(ihl..ihl + 4)?;
        Some(Miss {
            proto,
            server: Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
            inner: Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
            server_port: u16::from_be_bytes([l4[0], l4[1]]),
            client_port: u16::from_be_bytes([l4[2], l4[3]]),
        })
    }
}

/// Counters of the recovery thread (`nat64_leases_recovered_total`).
#[derive(Debug, Default)]
pub struct Counters {
    pub recovered: AtomicU64,
    pub not_found: AtomicU64,
    pub queue_full: AtomicU64,
}

/// The workers' handle.
pub struct LeaseRecovery {
    tx: SyncSender<Miss>,
    pub counters: Arc<Counters>,
}

impl LeaseRecovery {
    /// Starts the thread; `restore` installs a recovered lease (returns
    /// whether it did).
    pub fn start(
        prefix: Prefix,
        restore: impl Fn(Ipv6Addr, Ipv4Addr) -> bool + Send + 'static,
    ) -> std::io::Result<LeaseRecovery> {
        let (tx, rx) = sync_channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("lease-recovery".into())
            .spawn(move || run(rx, prefix, restore, &c))?;
        Ok(LeaseRecovery { tx, counters })
    }

    /// From a worker: an IPv4 packet found no lease. Never blocks.
    pub fn report(&self, pkt: &[u8]) {
        if let Some(m) = Miss::parse(pkt) {
            if self.tx.try_send(m).is_err() {
                self.counters.queue_full.fetch_add(1, Relaxed);
            }
        }
    }
}

fn run(
    rx: Receiver<Miss>,
    prefix: Prefix,
    restore: impl Fn(Ipv6Addr, Ipv4Addr) -> bool,
    c: &Counters,
) {
    let mut asked: HashMap<Ipv4Addr, Instant> = HashMap::new();
    let (mut window, mut in_window) = (Instant::now(), 0u32);
    loop {
        let m = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                asked.retain(|_, t| t.elapsed() < RETRY);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if asked.get(&m.inner).is_some_and(|t| t.elapsed() < RETRY) {
            continue;
        }
        if window.elapsed() >= Duration::from_secs(1) {
            (window, in_window) = (Instant::now(), 0);
        }
        if in_window >= PER_SECOND {
            continue;
        }
        in_window += 1;
        asked.insert(m.inner, Instant::now());
        match query(&m, prefix) {
            Some(client) if !prefix.contains(&client) && restore(client, m.inner) => {
                c.recovered.fetch_add(1, Relaxed);
                info!(
                    "lease recovered from conntrack: {client} = {} (flow {}:{} -> {}:{})",
                    m.inner, m.server, m.server_port, m.inner, m.client_port
                );
            }
            _ => {
                c.not_found.fetch_add(1, Relaxed);
                debug!("no conntrack entry names the client of {}", m.inner);
            }
        }
    }
}

/// The IPv6 client of `m` from the kernel's IPv6 conntrack table.
fn query(m: &Miss, prefix: Prefix) -> Option<Ipv6Addr> {
    let proto = if m.proto == 6 { "tcp" } else { "udp" };
    let out = Command::new("conntrack")
        .args(["-L", "-f", "ipv6", "-p", proto])
        .args(["--orig-dst", &prefix.embed(m.server).to_string()])
        .args(["--orig-port-dst", &m.server_port.to_string()])
        .args(["--orig-port-src", &m.client_port.to_string()])
        .output()
        .ok()?;
    parse_client(&String::from_utf8_lossy(&out.stdout))
}

/// The original source of the first entry `conntrack -L` printed
/// (`tcp 6 431999 ESTABLISHED src=2001:db8:1::2 dst=... sport=...`).
fn parse_client(listing: &str) -> Option<Ipv6Addr> {
    listing
        .lines()
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("src=")))?
        .parse()
        .ok()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_miss_is_read_from_an_ipv4_tcp_or_udp_packet() {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 51, 100, 2], [100, 64, 10, 210], 63)
            .tcp(5201, 41140, 1, 1000)
            .write(&mut out, b"data")
            .unwrap();
        assert_eq!(
            Miss::parse(&out),
            Some(Miss {
                proto: 6,
                server: Ipv4Addr::new(198, 51, 100, 2),
                server_port: 5201,
                inner: Ipv4Addr::new(100, 64, 10, 210),
                client_port: 41140,
            })
        );
        let mut icmp = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 51, 100, 2], [100, 64, 10, 210], 63)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, b"x")
            .unwrap();
        assert_eq!(Miss::parse(&icmp), None);
        assert_eq!(Miss::parse(&out[..22]), None, "truncated");
        assert_eq!(Miss::parse(&[]), None);
    }

    #[test]
    fn the_client_is_the_first_entrys_original_source() {
        let listing = "tcp      6 431998 ESTABLISHED src=2001:db8:1::2 dst=2001:db8:64::c633:6402 \
                       sport=41140 dport=5201 src=2001:db8:64::c633:6402 dst=2001:db8:1::2 \
                       sport=5201 dport=41140 [ASSURED] mark=0 use=1\n";
        assert_eq!(parse_client(listing), "2001:db8:1::2".parse().ok());
        assert_eq!(parse_client(""), None);
        assert_eq!(
            parse_client("conntrack v1.4.7: 0 flow entries shown.\n"),
            None
        );
    }
}
