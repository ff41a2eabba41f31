//! `nat64-core`: the translator without I/O.
//!
//! * [`wire`] — zero-copy packet views (IPv4, IPv6 + extension headers,
//!   TCP/UDP, ICMPv4/v6, checksums).
//! * [`addr`] — RFC 6052 IPv4-embedded IPv6 addresses.
//! * [`eam`] — RFC 7757 Explicit Address Mapping table (SIIT).
//! * [`xlat`] — RFC 7915 translation in place, with the mapping supplied by
//!   the caller.
//! * [`state`] — RFC 6146 stateful NAT64: BIB, sessions, pool, timers.
//! * [`verdict`] — what happens to a packet, and every named drop reason.
//!
//! Nothing here does I/O, spawns threads or reads a clock: time is passed in
//! as a [`time::Timestamp`].

#![forbid(unsafe_code)]

pub mod addr;
pub mod eam;
pub mod state;
pub mod time;
pub mod verdict;
pub mod wire;
pub mod xlat;

pub use verdict::{DropReason, IcmpError, Verdict};
