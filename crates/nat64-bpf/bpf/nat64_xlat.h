/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Shared layout of the NAT64 fast path's maps. Mirrored by `src/abi.rs`
 * (`#[repr(C)]`, with layout tests): change both together.
 *
 * Everything in keys and values is in network byte order, as on the wire,
 * so the program compares and copies bytes without swapping.
 */
#ifndef NAT64_XLAT_H
#define NAT64_XLAT_H

#include <linux/types.h>

/* An IPv6 5-tuple: the key of `flows_6to4` (a packet arriving from an IPv6
 * client), and the rewritten addresses/ports in `struct nat64_to6`. */
struct nat64_flow6 {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 (v6) / IPPROTO_ICMP (v4):
		     * an echo has its identifier in sport and dport */
	__u8 pad[3]; /* zero */
};

/* An IPv4 5-tuple: the key of `flows_4to6`. */
struct nat64_flow4 {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3]; /* zero */
};

/* Per-flow counters, written by the program (atomic adds; last_seen_ns is a
 * plain store of bpf_ktime_get_ns(), i.e. CLOCK_MONOTONIC). */
struct nat64_counters {
	__u64 last_seen_ns;
	__u64 packets;
	__u64 bytes; /* IP bytes as received, before translation */
};

/* The route a flow's translated packets took: the program's cache of its
 * last bpf_fib_lookup, reused for NAT64_ROUTE_TTL_NS (zero when installed;
 * the daemon never reads it). */
struct nat64_route {
	__u64 at_ns; /* bpf_ktime_get_ns() of the lookup; 0: none yet */
	__u32 nh[4]; /* next hop for bpf_redirect_neigh (IPv4: nh[0]) */
	__u32 ifindex; /* egress */
	__u16 fits; /* largest translated size (per GSO segment) the route's MTU took */
	__u8 tos; /* TOS / traffic class it was looked up with */
	__u8 family; /* of the next hop: AF_INET / AF_INET6 */
};

/* How long a cached route is used before it is looked up again: a route,
 * MTU or forwarding change reaches an installed flow within this time. */
#define NAT64_ROUTE_TTL_NS 1000000ull

/* Value of `flows_6to4`: what an IPv6 packet of the key's flow becomes. */
struct nat64_to4 {
	struct nat64_flow4 out;
	__u32 flags; /* NAT64_FLOW_* */
	__u32 pad;
	struct nat64_counters c;
	struct nat64_route route;
};

/* Value of `flows_4to6`: what an IPv4 packet of the key's flow becomes. */
struct nat64_to6 {
	struct nat64_flow6 out;
	__u32 flags;
	__u32 pad;
	struct nat64_counters c;
	struct nat64_route route;
};

/* Per-flow flags. */
/* Translate, then hand the packet to the local stack (see
 * `nat64_config.stack_ifindex`) instead of looking up a route and
 * redirecting it. */
#define NAT64_FLOW_STACK_FORWARD 0x1u

/* The program's settings: `config` array map, index 0. */
struct nat64_config {
	__u32 flags; /* NAT64_CFG_* */
	/* Interface the route lookup runs as if the packet came in on (the
	 * TUN's, so policy routing sees what the user-space path sees);
	 * 0: the interface the packet arrived on. */
	__u32 fib_ifindex;
	/* RFC 7915 §4.1 lowest-ipv6-mtu: IPv4 packets without DF that would be
	 * larger than this as IPv6 need a Fragment header: passed. 0 = 1280. */
	__u16 lowest_ipv6_mtu;
	/* With STACK_FORWARD (no route lookup): the MTUs to check against,
	 * translated packet (or GSO segment) sizes above are passed. 0: none. */
	__u16 mtu4;
	__u16 mtu6;
	__u16 pad;
	/* Where packets handed to the stack enter it: 0, the interface they
	 * arrived on (TC_ACT_OK); else that interface's ingress
	 * (bpf_redirect with BPF_F_INGRESS): kernel mode gives the TUN's, so
	 * a translated packet enters the stack exactly as one nat64 wrote into
	 * the TUN (firewall rules on iifname, rp_filter, policy routing). */
	__u32 stack_ifindex;
};

/*
 * Miss filter (`flow_filter`, an array of __u64 words): one bit per hash
 * slot of each flow map's keys, set by the loader while a key of that slot
 * is installed (it counts them). A packet whose slot bit is clear cannot be
 * in the map: it is passed without the hash map lookup, whose bucket read
 * is a cache miss in a large table. Words [0, NAT64_FILTER_WORDS) are
 * `flows_6to4`'s, the next NAT64_FILTER_WORDS `flows_4to6`'s.
 *
 * The slot of a key: h = 0, then h = (h ^ w) * NAT64_FILTER_MUL for each
 * 32-bit word w of the key in memory order (host byte order reads), then
 * MurmurHash3's finalizer (fmix32), and the top NAT64_FILTER_BITS_LOG2 bits
 * of h. Mirrored in `src/filter.rs`.
 */
#define NAT64_FILTER_BITS_LOG2 20
#define NAT64_FILTER_WORDS (1u << (NAT64_FILTER_BITS_LOG2 - 6))
#define NAT64_FILTER_MUL 0x9e3779b1u

#define NAT64_CFG_STACK_FORWARD 0x1u /* every flow as NAT64_FLOW_STACK_FORWARD */
#define NAT64_CFG_NO_COPY_TOS 0x2u /* traffic class / TOS written as 0 */
#define NAT64_CFG_NO_DECREMENT_TTL 0x4u /* TTL / hop limit copied as is */
#define NAT64_CFG_DISABLED 0x8u /* pass everything (counted as STAT_DISABLED) */

/* Index in the per-CPU `stats` array: what happened to each packet. */
enum nat64_stat {
	STAT_XLAT_6TO4 = 0,
	STAT_XLAT_4TO6,
	STAT_PASS_NOT_IP, /* not IPv4/IPv6 over Ethernet, VLAN, not to us */
	STAT_PASS_MISS, /* no flow entry */
	STAT_PASS_TCP_FLAGS, /* SYN, FIN or RST */
	STAT_PASS_FRAGMENT, /* IPv4 MF/offset */
	STAT_PASS_EXT_HEADER, /* IPv6 extension header (incl. Fragment) */
	STAT_PASS_IPV4_OPTIONS,
	STAT_PASS_TTL, /* TTL / hop limit <= 1 */
	STAT_PASS_UDP_ZERO_CSUM,
	STAT_PASS_PROTO, /* not TCP/UDP/ICMP echo */
	STAT_PASS_MTU, /* too big for the egress, or needs fragmenting */
	STAT_PASS_MALFORMED, /* truncated, lengths disagree, bad header checksum */
	STAT_PASS_FIB, /* no route, local destination, forwarding disabled */
	STAT_PASS_DISABLED,
	STAT_ERROR, /* a helper failed mid-translation: dropped */
	STAT_MAX,
};

/* The same numbers are pinned on the Rust side (src/abi.rs layout test). */
_Static_assert(sizeof(struct nat64_flow6) == 40, "nat64_flow6 layout");
_Static_assert(sizeof(struct nat64_flow4) == 16, "nat64_flow4 layout");
_Static_assert(sizeof(struct nat64_route) == 32, "nat64_route layout");
_Static_assert(sizeof(struct nat64_to4) == 80, "nat64_to4 layout");
_Static_assert(__builtin_offsetof(struct nat64_to4, c) == 24, "nat64_to4 layout");
_Static_assert(__builtin_offsetof(struct nat64_to4, route) == 48, "nat64_to4 layout");
_Static_assert(sizeof(struct nat64_to6) == 104, "nat64_to6 layout");
_Static_assert(__builtin_offsetof(struct nat64_to6, c) == 48, "nat64_to6 layout");
_Static_assert(__builtin_offsetof(struct nat64_to6, route) == 72, "nat64_to6 layout");
_Static_assert(sizeof(struct nat64_config) == 20, "nat64_config layout");
_Static_assert(STAT_MAX == 16, "Stat::ALL in src/lib.rs");

#endif
