//! What happens to a packet: forwarded, answered with an ICMP error, or dropped
//! for a named reason.
//!
//! Every way a packet can leave the translator without being forwarded has a
//! [`DropReason`]; its [`DropReason::as_str`] is the metric label (Jool's
//! `JSTAT_*` idea). A drop is never anonymous.

/// Why a packet was not translated. One variant per drop path; the daemon
/// counts each under `nat64_drops_total{reason="..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    // --- malformed input -------------------------------------------------
    /// Buffer shorter than the header it claims to hold.
    Truncated,
    /// IP version nibble is neither 4 nor 6 (or not the expected one).
    BadVersion,
    /// IPv4 IHL < 5 or beyond the packet.
    BadIpv4HeaderLength,
    /// IPv4 total length / IPv6 payload length inconsistent with the buffer.
    BadLength,
    /// IPv4 header checksum does not verify.
    BadIpv4Checksum,
    /// An IPv6 extension header chain that runs past the packet or repeats.
    BadExtensionHeader,
    /// TCP/UDP/ICMP header shorter than its minimum.
    BadL4Header,
    /// L4 checksum does not verify where the translator must check it.
    BadChecksum,

    // --- not for us / policy --------------------------------------------
    /// Source or destination is link-local, multicast, unspecified, loopback:
    /// traffic the kernel sends into the TUN that is not for translation.
    NotForTranslation,
    /// Destination is not inside the translation prefix.
    NotInPrefix,
    /// RFC 6052 §3.1: the Well-Known Prefix must not embed a non-global IPv4.
    WkpNonGlobal,
    /// Transport protocol the translator does not handle (e.g. SCTP, ESP).
    UnsupportedProtocol,
    /// IPv6 routing header with Segments Left != 0 (RFC 7915 §5.1).
    SegmentsLeft,
    /// An IPv6 extension header the translator cannot pass (RFC 7915 §5.1).
    UnsupportedExtensionHeader,
    /// IPv4 packet carries an unexpired source route option (RFC 7915 §4.1).
    SourceRoute,
    /// An IPv6 source inside the translation prefix: spoofed, or a packet of
    /// ours looping back into the translator (the loop guard,
    /// `state::pipeline::loop_guard`; docs/operator.md §7).
    SourceInPrefix,
    /// An IPv4 source that is one of the translator's own pool / inner-pool
    /// / static-map addresses, arriving from outside (loop guard).
    SourceIsOwnAddress,
    /// An IPv4 address that must never be forwarded, as source or
    /// destination, produced by extraction or arriving from IPv4: 0.0.0.0/8,
    /// 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255
    /// (RFC 6052 §5.1, RFC 1812 §5.3.7, RFC 3927 §7).
    OutOfScopeV4,
    /// Stateless (SIIT) mode: an IPv6 source that neither the EAM table nor
    /// the prefix nor the dynamic pool can translate (RFC 7915 §5.1, RFC 7757
    /// §3.3).
    UntranslatableSource,
    /// Stateless (SIIT) mode: a destination that neither the EAM table nor
    /// the prefix can translate (RFC 7915 §5.1, RFC 7757 §3.3).
    UntranslatableDestination,
    /// A packet to one of the translator's own addresses that it does not
    /// answer (anything but an echo request; an ICMP error goes back when
    /// RFC 792 / RFC 4443 name one).
    ToOwnAddress,

    // --- ICMP -------------------------------------------------------------
    /// ICMP type with no translation (RFC 7915 §4.2/§5.2 "silently drop").
    IcmpUntranslatableType,
    /// ICMP code with no translation.
    IcmpUntranslatableCode,
    /// Parameter Problem whose pointer has no counterpart (RFC 7915 Fig. 3/6).
    IcmpUntranslatablePointer,
    /// ICMP error that itself carries an ICMP error (RFC 7915 §4.3/§5.3).
    IcmpErrorInError,
    /// ICMP error whose inner packet cannot be parsed or mapped.
    IcmpBadInner,
    /// A fragmented ICMP message (its checksum cannot be adjusted).
    IcmpFragmented,

    // --- fragments ---------------------------------------------------------
    /// IPv4 UDP with zero checksum in a fragment: cannot be computed (`calc`).
    UdpZeroChecksumFragment,
    /// IPv4 UDP with zero checksum and `udp-zero-checksum = "drop"`.
    UdpZeroChecksum,
    /// A non-first fragment arrived whose first fragment is unknown.
    FragmentNoState,
    /// The fragment cache is full.
    FragmentCacheFull,
    /// Fragment too small to carry the transport header in the first fragment.
    FragmentTooSmall,
    /// Fragments of an ICMP/ICMPv6 datagram that was not complete within the
    /// reassembly timeout of its first-received fragment (RFC 8200 §4.5,
    /// RFC 791 §3.2); see [`crate::xlat::reassemble`].
    ReassemblyTimeout,
    /// Overlapping or inconsistent fragments (RFC 5722 §4, RFC 8200 §4.5;
    /// applied to IPv4 too, against teardrop-style attacks): a fragment that
    /// overlaps another, a second last fragment with a different end, or data
    /// beyond the known end. The whole datagram is dropped.
    ReassemblyOverlap,
    /// The reassembly buffers are full. To make room the **oldest** datagram
    /// is evicted and its fragments are counted here; the new fragment is
    /// refused (also counted here) only when the limit is zero or its own
    /// datagram alone exceeds the byte limit.
    ReassemblyLimit,
    /// The reassembled packet would exceed 65535 bytes (IPv4 Total Length,
    /// IPv6 Payload Length; RFC 8200 §4.5) or the caller's output buffer.
    ReassemblyTooBig,

    // --- state (RFC 6146) ---------------------------------------------------
    /// No BIB entry for an IPv4-initiated packet.
    NoBinding,
    /// Address-dependent filtering refused an unknown remote.
    FilteredByAddress,
    /// No free port (or address) in the pool.
    PoolExhausted,
    /// Global session limit reached.
    SessionLimit,
    /// Per-client session limit reached.
    ClientSessionLimit,
    /// The client's site (`site-prefix-len`, a /64 by default) holds its
    /// maximum of sessions or kernel-mode leases, or more than its fair
    /// share of a nearly full table.
    SiteLimit,
    /// TCP packet not allowed in the session's state (e.g. v4 SYN with no BIB).
    TcpStateRejected,
    /// The mapper has no translation for this packet (generic).
    NoMapping,

    // --- limits -------------------------------------------------------------
    /// The TTL / hop limit ran out (an ICMP error is produced instead).
    HopLimitExceeded,
    /// Translated packet exceeds the MTU and must not be fragmented.
    PacketTooBig,
    /// The caller's buffer lacks the headroom / size translation needs.
    NoBufferRoom,
    /// An ICMP error the translator wanted to send was rate-limited.
    IcmpRateLimited,
    /// A GSO super-packet whose segments would need fragmenting (DF clear
    /// and larger than the lowest IPv6 MTU): not expressible as GSO.
    GsoNeedsFragmentation,
}

impl DropReason {
    /// Every reason, for metric registration (so every label exists at 0).
    pub const ALL: &'static [DropReason] = &[
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::BadIpv4HeaderLength,
        DropReason::BadLength,
        DropReason::BadIpv4Checksum,
        DropReason::BadExtensionHeader,
        DropReason::BadL4Header,
        DropReason::BadChecksum,
        DropReason::NotForTranslation,
        DropReason::NotInPrefix,
        DropReason::WkpNonGlobal,
        DropReason::UnsupportedProtocol,
        DropReason::SegmentsLeft,
        DropReason::UnsupportedExtensionHeader,
        DropReason::SourceRoute,
        DropReason::SourceInPrefix,
        DropReason::SourceIsOwnAddress,
        DropReason::OutOfScopeV4,
        DropReason::UntranslatableSource,
        DropReason::UntranslatableDestination,
        DropReason::ToOwnAddress,
        DropReason::IcmpUntranslatableType,
        DropReason::IcmpUntranslatableCode,
        DropReason::IcmpUntranslatablePointer,
        DropReason::IcmpErrorInError,
        DropReason::IcmpBadInner,
        DropReason::IcmpFragmented,
        DropReason::UdpZeroChecksumFragment,
        DropReason::UdpZeroChecksum,
        DropReason::FragmentNoState,
        DropReason::FragmentCacheFull,
        DropReason::FragmentTooSmall,
        DropReason::ReassemblyTimeout,
        DropReason::ReassemblyOverlap,
        DropReason::ReassemblyLimit,
        DropReason::ReassemblyTooBig,
        DropReason::NoBinding,
        DropReason::FilteredByAddress,
        DropReason::PoolExhausted,
        DropReason::SessionLimit,
        DropReason::ClientSessionLimit,
        DropReason::SiteLimit,
        DropReason::TcpStateRejected,
        DropReason::NoMapping,
        DropReason::HopLimitExceeded,
        DropReason::PacketTooBig,
        DropReason::NoBufferRoom,
        DropReason::IcmpRateLimited,
        DropReason::GsoNeedsFragmentation,
    ];

    /// Stable snake_case label used in metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::BadIpv4HeaderLength => "bad_ipv4_header_length",
            DropReason::BadLength => "bad_length",
            DropReason::BadIpv4Checksum => "bad_ipv4_checksum",
            DropReason::BadExtensionHeader => "bad_extension_header",
            DropReason::BadL4Header => "bad_l4_header",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::NotForTranslation => "not_for_translation",
            DropReason::NotInPrefix => "not_in_prefix",
            DropReason::WkpNonGlobal => "wkp_non_global",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::SegmentsLeft => "segments_left",
            DropReason::UnsupportedExtensionHeader => "unsupported_extension_header",
            DropReason::SourceRoute => "source_route",
            DropReason::SourceInPrefix => "source_in_prefix",
            DropReason::SourceIsOwnAddress => "source_is_own_address",
            DropReason::OutOfScopeV4 => "out_of_scope_v4",
            DropReason::UntranslatableSource => "untranslatable_source",
            DropReason::UntranslatableDestination => "untranslatable_destination",
            DropReason::ToOwnAddress => "to_own_address",
            DropReason::IcmpUntranslatableType => "icmp_untranslatable_type",
            DropReason::IcmpUntranslatableCode => "icmp_untranslatable_code",
            DropReason::IcmpUntranslatablePointer => "icmp_untranslatable_pointer",
            DropReason::IcmpErrorInError => "icmp_error_in_error",
            DropReason::IcmpBadInner => "icmp_bad_inner",
            DropReason::IcmpFragmented => "icmp_fragmented",
            DropReason::UdpZeroChecksumFragment => "udp_zero_checksum_fragment",
            DropReason::UdpZeroChecksum => "udp_zero_checksum",
            DropReason::FragmentNoState => "fragment_no_state",
            DropReason::FragmentCacheFull => "fragment_cache_full",
            DropReason::FragmentTooSmall => "fragment_too_small",
            DropReason::ReassemblyTimeout => "reassembly_timeout",
            DropReason::ReassemblyOverlap => "reassembly_overlap",
            DropReason::ReassemblyLimit => "reassembly_limit",
            DropReason::ReassemblyTooBig => "reassembly_too_big",
            DropReason::NoBinding => "no_binding",
            DropReason::FilteredByAddress => "filtered_by_address",
            DropReason::PoolExhausted => "pool_exhausted",
            DropReason::SessionLimit => "session_limit",
            DropReason::ClientSessionLimit => "client_session_limit",
            DropReason::SiteLimit => "site_limit",
            DropReason::TcpStateRejected => "tcp_state_rejected",
            DropReason::NoMapping => "no_mapping",
            DropReason::HopLimitExceeded => "hop_limit_exceeded",
            DropReason::PacketTooBig => "packet_too_big",
            DropReason::NoBufferRoom => "no_buffer_room",
            DropReason::IcmpRateLimited => "icmp_rate_limited",
            DropReason::GsoNeedsFragmentation => "gso_needs_fragmentation",
        }
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ICMP error the translator itself must send back to the packet's source
/// instead of forwarding it. The original packet is left untouched in the
/// caller's buffer so the error can quote it (see [`crate::xlat::icmp_gen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// TTL / Hop Limit reached zero while forwarding (ICMPv4 11/0, ICMPv6 3/0).
    TimeExceeded,
    /// An IPv6 packet too big for the IPv4 next hop: ICMPv6 Packet Too Big
    /// with this MTU (RFC 7915 §5.1).
    PacketTooBig { mtu: u32 },
    /// An IPv4 packet with DF set too big for the IPv6 next hop: ICMPv4
    /// Fragmentation Needed with this MTU (RFC 7915 §4.1).
    FragmentationNeeded { mtu: u16 },
    /// ICMPv6 Parameter Problem, code and pointer (RFC 7915 §5.1: routing
    /// header with Segments Left != 0, code 0).
    ParameterProblem { code: u8, pointer: u32 },
    /// ICMPv4 Destination Unreachable with this code (e.g. 5 source route
    /// failed, 3 port unreachable, 13 administratively prohibited).
    DestUnreachableV4 { code: u8 },
    /// ICMPv6 Destination Unreachable with this code (e.g. 1 administratively
    /// prohibited, 4 port unreachable).
    DestUnreachableV6 { code: u8 },
}

/// Outcome of translating one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The translated packet is `buf[start..start + len]`. If `fragment_mtu` is
    /// set, the packet is larger than that MTU and may be fragmented: pass it
    /// to [`crate::xlat::frag`] to emit the fragments.
    Forward {
        start: usize,
        len: usize,
        fragment_mtu: Option<u16>,
    },
    /// Do not forward; answer the source with this ICMP error (the original
    /// packet is still intact in the buffer) and count `reason`.
    Icmp {
        error: IcmpError,
        reason: DropReason,
    },
    /// Drop and count.
    Drop(DropReason),
}

impl Verdict {
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            Verdict::Forward { .. } => None,
            Verdict::Icmp { reason, .. } => Some(*reason),
            Verdict::Drop(r) => Some(*r),
        }
    }
}

impl From<DropReason> for Verdict {
    fn from(r: DropReason) -> Self {
        Verdict::Drop(r)
    }
}
