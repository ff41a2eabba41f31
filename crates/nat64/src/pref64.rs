//! `[pref64]`: an opt-in sender of router advertisements that carry only
//! the PREF64 option (RFC 8781) with nat64's prefix, for links whose router
//! cannot send it (Debian's radvd 2.19 has no `nat64prefix`; ADR 0010).
//!
//! The advertisement says "not a default router" (Router Lifetime 0,
//! RFC 4861 §4.2) and carries no other option, so it changes nothing on the
//! hosts but their NAT64 prefix: a real router on the link keeps its role.
//! It goes to all-nodes (ff02::1) from the interface's link-local address
//! with hop limit 255, every `interval-secs`; the option's lifetime is three
//! intervals (RFC 8781 §4.1: at least 3 × MaxRtrAdvInterval). The raw
//! ICMPv6 socket is opened before privileges are dropped; the kernel fills
//! the checksum (RFC 3542 §3.1).

use anyhow::Context as _;
use nat64_core::addr::Prefix;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// ICMPv6 Router Advertisement (RFC 4861 §4.2).
const ROUTER_ADVERTISEMENT: u8 = 134;
/// The PREF64 option type (RFC 8781 §4).
const OPT_PREF64: u8 = 38;
/// Largest lifetime the 13-bit scaled field holds (units of 8 s).
pub const MAX_LIFETIME: u32 = 8191 * 8;

/// RFC 8781 §4: the Prefix Length Code of an RFC 6052 prefix length.
fn plc(len: u8) -> u16 {
    match len {
        96 => 0,
        64 => 1,
        56 => 2,
        48 => 3,
        40 => 4,
        _ => 5, // 32: Prefix holds no other length
    }
}

/// The 16-byte PREF64 option for `prefix` with `lifetime` seconds
/// (rounded up to a multiple of 8, capped at [`MAX_LIFETIME`]).
pub fn pref64_option(prefix: Prefix, lifetime: u32) -> [u8; 16] {
    let scaled = lifetime.min(MAX_LIFETIME).div_ceil(8) as u16;
    let mut o = [0u8; 16];
    o[0] = OPT_PREF64;
    o[1] = 2; // units of 8 bytes
    o[2..4].copy_from_slice(&((scaled << 3) | plc(prefix.len())).to_be_bytes());
    o[4..16].copy_from_slice(&prefix.addr().octets()[..12]);
    o
}

/// A Router Advertisement (checksum left 0 for the kernel) holding only the
/// PREF64 option: hop limit and timers unspecified, no flags, Router
/// Lifetime 0 (not a default router).
pub fn router_advertisement(prefix: Prefix, lifetime: u32) -> [u8; 32] {
    let mut ra = [0u8; 32];
    ra[0] = ROUTER_ADVERTISEMENT;
    // code 0, checksum 0 (kernel), cur hop limit 0, flags 0,
    // router lifetime 0, reachable time 0, retrans timer 0.
    ra[16..32].copy_from_slice(&pref64_option(prefix, lifetime));
    ra
}

/// The sender: a raw ICMPv6 socket bound to one interface.
pub struct Sender {
    sock: OwnedFd,
    interface: String,
    ifindex: u32,
    /// Bound to the interface's link-local address yet?
    bound: bool,
}

/// IFA_F_TENTATIVE | IFA_F_DADFAILED (linux/if_addr.h): not usable as a
/// source.
const UNUSABLE: u32 = 0x40 | 0x08;

/// The usable link-local address of `ifname` in the text of
/// `/proc/net/if_inet6` (`ADDR IFINDEX PLEN SCOPE FLAGS NAME` a line).
/// RFC 4861 §4.2: a Router Advertisement's source MUST be link-local (hosts
/// drop others), and a tentative address cannot be used yet.
pub fn link_local(if_inet6: &str, ifname: &str) -> Option<std::net::Ipv6Addr> {
    crate::config::derive::interface_entries(if_inet6, ifname)
        .find(|(a, flags)| a.segments()[0] & 0xffc0 == 0xfe80 && flags & UNUSABLE == 0)
        .map(|(a, _)| a)
}

fn sockopt(fd: i32, level: i32, name: i32, v: i32) -> std::io::Result<()> {
    // SAFETY: `v` lives across the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Sender {
    /// Opens the socket (needs CAP_NET_RAW: call before privileges drop).
    pub fn open(interface: &str) -> anyhow::Result<Sender> {
        let name = std::ffi::CString::new(interface)
            .with_context(|| format!("pref64.interface {interface:?} is not a name"))?;
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            anyhow::bail!(
                "pref64.interface {interface}: no such interface here (name the link the \
                 IPv6 clients are on)"
            );
        }
        // SAFETY: plain socket(2); the descriptor is owned below.
        let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .context("opening a raw ICMPv6 socket for PREF64 advertisements (needs root)");
        }
        // SAFETY: `fd` was just returned by socket(2) and is ours alone.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let fd = sock.as_raw_fd();
        // RFC 4861 §6.1.2: hop limit 255, or hosts drop the RA.
        sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, 255)?;
        sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        sockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            ifindex as i32,
        )?;
        sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0)?;
        Ok(Sender {
            sock,
            interface: interface.to_string(),
            ifindex,
            bound: false,
        })
    }

    /// Binds the socket to the interface's link-local address once it is
    /// usable (false until then).
    fn bind_link_local(&mut self) -> bool {
        if self.bound {
            return true;
        }
        let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
        let Some(ll) = link_local(&text, &self.interface) else {
            return false;
        };
        // SAFETY: sockaddr_in6 is plain data; zeroed is a valid value.
        let mut me: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        me.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        me.sin6_addr.s6_addr = ll.octets();
        me.sin6_scope_id = self.ifindex;
        // SAFETY: `me` is valid for the length passed.
        let r = unsafe {
            libc::bind(
                self.sock.as_raw_fd(),
                (&me as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        self.bound = r == 0;
        self.bound
    }

    /// Sends one advertisement to all-nodes on the interface.
    pub fn send(&self, ra: &[u8]) -> std::io::Result<()> {
        // SAFETY: sockaddr_in6 is plain data; zeroed is a valid value.
        let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        to.sin6_addr.s6_addr = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        to.sin6_scope_id = self.ifindex;
        // SAFETY: `ra` and `to` are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                ra.as_ptr().cast(),
                ra.len(),
                0,
                (&to as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Advertises `prefix` every `interval` until `stop` is set (a thread
    /// of its own; sleeps in short steps so shutdown is prompt). A send
    /// error is logged once per streak, then retried every second.
    pub fn run(mut self, prefix: Prefix, interval: Duration, stop: Arc<AtomicBool>) {
        let lifetime = (interval.as_secs() as u32).saturating_mul(3);
        let ra = router_advertisement(prefix, lifetime);
        info!(
            "PREF64 {prefix} advertised on {} every {} s (lifetime {} s, RFC 8781)",
            self.interface,
            interval.as_secs(),
            lifetime.min(MAX_LIFETIME)
        );
        let mut failing = false;
        while !stop.load(Ordering::Relaxed) {
            // Nothing goes out before the link-local source is usable
            // (right after the link comes up its address is tentative
            // during duplicate address detection): look again in 100 ms.
            if !self.bind_link_local() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            match self.send(&ra) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    warn!("PREF64 advertisement on {} failed: {e}", self.interface);
                    failing = true;
                }
                Err(_) => {}
            }
            // After a failure (at start the interface's link-local address
            // may still be tentative) retry within a second, not an interval.
            let wait = if failing {
                interval.min(Duration::from_secs(1))
            } else {
                interval
            };
            let mut slept = Duration::ZERO;
            while slept < wait && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                slept += Duration::from_millis(100);
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// RFC 8781 §4 Figure 1, written out: type 38, length 2, scaled
    /// lifetime (13 bits) and PLC (3 bits), then the highest 96 bits.
    #[test]
    fn rfc8781_4_option_layout() {
        let o = pref64_option("2001:db8:64::/96".parse().unwrap(), 1800);
        // 1800 s = 225 units of 8 s; (225 << 3) | PLC 0 = 0x0708.
        assert_eq!(
            o,
            [38, 2, 0x07, 0x08, 0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0]
        );
        // A /64 is PLC 1; a lifetime not a multiple of 8 rounds up (RFC 8781
        // §4: "rounded up"); above 65528 s it is capped.
        let o = pref64_option("2001:db8:122:344::/64".parse().unwrap(), 9);
        assert_eq!(&o[2..4], &[0x00, (2 << 3) | 1]);
        let o = pref64_option(Prefix::WELL_KNOWN, u32::MAX);
        assert_eq!(u16::from_be_bytes([o[2], o[3]]) >> 3, 8191);
    }

    #[test]
    fn rfc4861_4_2_source_is_a_usable_link_local_address() {
        let text = "20010db8000100000000000000000001 03 40 00 80     v6x\n\
                    fe80000000000000842bb24bfebd90d9 03 40 20 40     v6x\n";
        assert_eq!(link_local(text, "v6x"), None, "tentative (0x40)");
        let text = text.replace(" 20 40 ", " 20 80 ");
        assert_eq!(
            link_local(&text, "v6x"),
            Some("fe80::842b:b24b:febd:90d9".parse().unwrap())
        );
        assert_eq!(link_local(&text, "eth0"), None);
    }

    #[test]
    fn rfc4861_4_2_not_a_default_router() {
        let ra = router_advertisement(Prefix::WELL_KNOWN, 180);
        assert_eq!(ra[0], 134);
        assert_eq!(
            &ra[4..16],
            &[0u8; 12],
            "hop limit, flags, lifetimes, timers"
        );
        assert_eq!(ra[16], 38);
    }
}
