// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * NAT64 kernel fast path: RFC 7915 §4/§5 translation of TCP, UDP and ICMP
 * echo packets of established flows, at tc ingress (TCX), for flows the daemon installed
 * in `flows_6to4` / `flows_4to6`.
 *
 * The program never decides anything: a packet it does not translate
 * exactly as the user-space translator (crates/nat64-core/src/xlat) would
 * is passed to the stack untouched (TC_ACT_OK), where it reaches the TUN
 * and the daemon. Translated packets are routed with bpf_fib_lookup and
 * sent with bpf_redirect_neigh (or handed to the stack, STACK_FORWARD).
 *
 * Order of work, so that a packet is either translated completely or not
 * touched at all: parse (read only) -> miss filter (no installed key in the
 * packet's slot: passed without the lookup) -> flow lookup -> route for the
 * translated destination (with the translated size: MTU; the flow's cached
 * lookup when younger than NAT64_ROUTE_TTL_NS) -> rewrite.
 * A helper failing during the rewrite drops the packet (STAT_ERROR).
 *
 * Checksums: the L4 checksum is updated with bpf_l4_csum_replace (the
 * address part with BPF_F_PSEUDO_HDR, the port part without), which is
 * right for every skb->ip_summed state: CHECKSUM_NONE/UNNECESSARY (full
 * checksum field), CHECKSUM_PARTIAL (the field holds the pseudo-header sum,
 * ports are not part of it) and CHECKSUM_COMPLETE (skb->csum follows the
 * field; the IP header is rewritten with BPF_F_RECOMPUTE_CSUM, and
 * bpf_skb_change_proto pulls the removed bytes out of skb->csum / inserts
 * zeroes).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "nat64_xlat.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

/* RFC 7915 §5.1: DF is set on translated packets above this size. */
#define DF_THRESHOLD 1260
#define DEFAULT_LOWEST_IPV6_MTU 1280

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* set by the loader */
	__type(key, struct nat64_flow6);
	__type(value, struct nat64_to4);
} flows_6to4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* set by the loader */
	__type(key, struct nat64_flow4);
	__type(value, struct nat64_to6);
} flows_4to6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat64_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * NAT64_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} flow_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int count(__u32 what, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);

	if (v)
		*v += 1;
	return verdict;
}

#define PASS(what) count(what, TC_ACT_OK)

/* Whether a key of `n` 32-bit words may be installed: its slot's bit in
 * the miss filter (nat64_xlat.h), from word `base` on. */
static __always_inline int maybe_installed(const __u32 *w, const int n, __u32 base)
{
	__u32 h = 0, slot, word;
	__u64 *bits;

#pragma unroll
	for (int i = 0; i < n; i++)
		h = (h ^ w[i]) * NAT64_FILTER_MUL;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	slot = h >> (32 - NAT64_FILTER_BITS_LOG2);
	word = base + (slot >> 6);
	bits = bpf_map_lookup_elem(&flow_filter, &word);
	return !bits || (*bits >> (slot & 63)) & 1;
}

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* One's-complement sum of a 20-byte IPv4 header (as stored). */
static __always_inline __u32 iph_sum(const void *h)
{
	const __u16 *w = h;
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	return s;
}

/*
 * RFC 7915 §5.1 Identification for packets sent with DF clear: the same
 * hash as `fragment_id` in crates/nat64-core/src/xlat/six_to_four.rs (of
 * the host-order addresses, the new L4 checksum field and the length).
 */
static __always_inline __u16 fragment_id(__be32 src, __be32 dst, __u16 l4_sum, __u16 len)
{
	__u32 s = bpf_ntohl(src), d = bpf_ntohl(dst);
	__u32 x = ((s << 7) | (s >> 25)) ^ d ^ ((__u32)l4_sum << 16) ^ (__u32)len;
	__u32 h = x * 0x9e3779b1u;

	return (__u16)(h >> 16) | 1;
}

/* Rewrites ports and fixes the L4 checksum at `l4_off` (the transport
 * header's offset in the current layout): `diff` is the pseudo-header
 * (address) difference from bpf_csum_diff. */
static __always_inline int rewrite_l4(struct __sk_buff *skb, __u32 l4_off, __u8 proto,
				      __u32 old_ports, __u32 new_ports, __s64 diff)
{
	__u32 csum_off = l4_off + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							: offsetof(struct udphdr, check));
	__u64 mangle = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangle))
		return -1;
	if (old_ports != new_ports) {
		if (bpf_l4_csum_replace(skb, csum_off, old_ports, new_ports,
					sizeof(new_ports) | mangle))
			return -1;
		/* Not BPF_F_RECOMPUTE_CSUM: for CHECKSUM_COMPLETE the port change
		 * and the checksum field change cancel out. */
		if (bpf_skb_store_bytes(skb, l4_off, &new_ports, sizeof(new_ports), 0))
			return -1;
	}
	return 0;
}

/* Facts about the transport header shared by both directions. */
struct l4info {
	__u32 ports; /* source and destination port as on the wire (ICMP: the
		      * identifier twice, RFC 6146 §3.4) */
	__u16 hdr_len; /* TCP data offset * 4, or 8 */
	__u16 icmp_tc; /* ICMP: type and code as on the wire */
	__u8 icmp_type; /* ICMP: the translated echo type */
};

/* ICMP / ICMPv6 echo header (RFC 792, RFC 4443 §4). */
struct echohdr {
	__u8 type;
	__u8 code;
	__sum16 check;
	__be16 id;
	__be16 seq;
};

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

/*
 * Reads the TCP/UDP/echo header at `l4` (`len` bytes of transport header and
 * payload in the packet) for a packet that may be translated: -1 and a
 * stat to pass it.
 */
static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto, __u32 len, int gso,
				    struct l4info *out, __u32 *why)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || len < sizeof(*th)) {
			*why = STAT_PASS_MALFORMED;
			return -1;
		}
		if (th->syn || th->fin || th->rst) {
			*why = STAT_PASS_TCP_FLAGS;
			return -1;
		}
		out->hdr_len = th->doff * 4;
		/* RFC 9293 §3.1: the header it announces fits. */
		if (out->hdr_len < sizeof(*th) || out->hdr_len > len) {
			*why = STAT_PASS_MALFORMED;
			return -1;
		}
		out->ports = *(__u32 *)th;
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		__u32 ulen;

		if ((void *)(uh + 1) > data_end || len < sizeof(*uh)) {
			*why = STAT_PASS_MALFORMED;
			return -1;
		}
		ulen = bpf_ntohs(uh->len);
		/* RFC 768: the UDP length is the datagram's (a GSO super-packet's
		 * may describe one segment). */
		if (ulen < sizeof(*uh) || (!gso && ulen != len)) {
			*why = STAT_PASS_MALFORMED;
			return -1;
		}
		if (uh->check == 0) {
			*why = STAT_PASS_UDP_ZERO_CSUM;
			return -1;
		}
		out->hdr_len = sizeof(*uh);
		out->ports = *(__u32 *)uh;
		return 0;
	}
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		struct echohdr *eh = l4;

		if ((void *)(eh + 1) > data_end || len < sizeof(*eh) || gso) {
			*why = STAT_PASS_MALFORMED;
			return -1;
		}
		/* RFC 7915 §4.2 / §5.2: echo request and reply, any code
		 * (written as 0); errors and the rest go to the TUN path. */
		if (proto == IPPROTO_ICMP && eh->type == ICMP_ECHO)
			out->icmp_type = ICMPV6_ECHO_REQUEST;
		else if (proto == IPPROTO_ICMP && eh->type == ICMP_ECHOREPLY)
			out->icmp_type = ICMPV6_ECHO_REPLY;
		else if (proto == IPPROTO_ICMPV6 && eh->type == ICMPV6_ECHO_REQUEST)
			out->icmp_type = ICMP_ECHO;
		else if (proto == IPPROTO_ICMPV6 && eh->type == ICMPV6_ECHO_REPLY)
			out->icmp_type = ICMP_ECHOREPLY;
		else {
			*why = STAT_PASS_PROTO;
			return -1;
		}
		out->hdr_len = sizeof(*eh);
		out->icmp_tc = *(__u16 *)eh;
		out->ports = (__u32)eh->id | ((__u32)eh->id << 16);
		return 0;
	}
	*why = STAT_PASS_PROTO;
	return -1;
}

/* Offset of the checksum field in the transport header. */
static __always_inline __u32 csum_field(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return offsetof(struct tcphdr, check);
	if (proto == IPPROTO_UDP)
		return offsetof(struct udphdr, check);
	return offsetof(struct echohdr, check);
}

/* The IPv6 pseudo-header of an ICMPv6 message (RFC 4443 §2.3). */
struct pseudo6 {
	__u8 src[16];
	__u8 dst[16];
	__be32 len;
	__be32 nexthdr;
};

/*
 * Rewrites an echo header at `l4_off` to the other family's: type (code 0)
 * and identifier, and the checksum for them and for the ICMPv6
 * pseudo-header, which `diff` adds (4 -> 6) or removes (6 -> 4).
 */
static __always_inline int rewrite_echo(struct __sk_buff *skb, __u32 l4_off,
					const struct l4info *l4, __be16 new_id, __s64 diff)
{
	__u32 csum_off = l4_off + offsetof(struct echohdr, check);
	__u16 new_tc = l4->icmp_type; /* type, code 0: as stored on little and big endian */
	__be16 old_id = (__be16)l4->ports;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	new_tc = (__u16)l4->icmp_type << 8;
#endif
	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR))
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, l4->icmp_tc, new_tc, sizeof(new_tc)))
		return -1;
	if (bpf_skb_store_bytes(skb, l4_off, &new_tc, sizeof(new_tc), 0))
		return -1;
	if (old_id != new_id) {
		if (bpf_l4_csum_replace(skb, csum_off, old_id, new_id, sizeof(new_id)))
			return -1;
		if (bpf_skb_store_bytes(skb, l4_off + offsetof(struct echohdr, id), &new_id,
					sizeof(new_id), 0))
			return -1;
	}
	return 0;
}

/* Pulls the first `len` bytes into the linear area when they are not
 * (packet bytes are not changed). */
static __always_inline void ensure_linear(struct __sk_buff *skb, __u32 len)
{
	if ((long)skb->data + len > (long)skb->data_end && skb->len >= len)
		bpf_skb_pull_data(skb, len);
}

/* Route lookup for the translated packet; fills `nh` for
 * bpf_redirect_neigh. `tot_len` is the translated packet's size (or its GSO
 * segment's): above the route's MTU the packet is passed. */
static __always_inline int route(struct __sk_buff *skb, struct bpf_fib_lookup *fib,
				 const struct nat64_config *cfg, struct bpf_redir_neigh *nh,
				 __u32 *ifindex, __u32 *why)
{
	long rc;

	fib->ifindex = cfg->fib_ifindex ? cfg->fib_ifindex : skb->ifindex;
	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		*why = STAT_PASS_MTU;
		return -1;
	}
	/* NO_NEIGH: the route is known, the neighbour not yet resolved;
	 * bpf_redirect_neigh resolves it. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		*why = STAT_PASS_FIB;
		return -1;
	}
	*ifindex = fib->ifindex;
	nh->nh_family = fib->family;
	if (fib->family == AF_INET6)
		__builtin_memcpy(nh->ipv6_nh, fib->ipv6_dst, 16);
	else
		nh->ipv4_nh = fib->ipv4_dst;
	return 0;
}

/*
 * route() through the flow's cache `rc` (struct nat64_route): a lookup
 * younger than NAT64_ROUTE_TTL_NS, made with the same TOS, whose MTU took a
 * packet at least this size, is reused; else the lookup runs and is cached.
 * On a hit the FIB is not consulted: a route change reaches the flow within
 * the TTL. Two CPUs refreshing one flow at once write the same result
 * unless the route changed in between; a reader may then take one packet's
 * next hop from each (the next refresh settles it).
 */
static __always_inline int route_cached(struct __sk_buff *skb, struct bpf_fib_lookup *fib,
					const struct nat64_config *cfg, struct nat64_route *rc,
					__u64 now, __u8 tos, struct bpf_redir_neigh *nh,
					__u32 *ifindex, __u32 *why)
{
	__u64 at = *(volatile __u64 *)&rc->at_ns;
	__u16 size = fib->tot_len;
	int fresh = at && now - at < NAT64_ROUTE_TTL_NS && rc->tos == tos;

	if (fresh && size <= rc->fits) {
		*ifindex = rc->ifindex;
		nh->nh_family = rc->family;
		__builtin_memcpy(nh->ipv6_nh, rc->nh, 16);
		return 0;
	}
	if (route(skb, fib, cfg, nh, ifindex, why))
		return -1;
	/* Only a larger packet than cached (a hit returned above): the MTU
	 * took it too. */
	if (fresh && rc->ifindex == *ifindex) {
		rc->fits = size;
		return 0;
	}
	rc->at_ns = 0;
	asm volatile("" ::: "memory");
	rc->ifindex = *ifindex;
	rc->family = nh->nh_family;
	__builtin_memcpy(rc->nh, nh->ipv6_nh, 16);
	rc->fits = size;
	rc->tos = tos;
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&rc->at_ns = now;
	return 0;
}

static __always_inline void account(struct nat64_counters *c, __u32 bytes, __u64 now)
{
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, bytes);
	c->last_seen_ns = now;
}

static __always_inline int forward(const struct nat64_config *cfg, int stack, __u32 ifindex,
				   struct bpf_redir_neigh *nh)
{
	if (stack)
		return cfg->stack_ifindex ? bpf_redirect(cfg->stack_ifindex, BPF_F_INGRESS)
					  : TC_ACT_OK;
	return bpf_redirect_neigh(ifindex, nh, sizeof(*nh), 0);
}

/* RFC 7915 §5: IPv6 -> IPv4. */
static __always_inline int xlat_6to4(struct __sk_buff *skb, const struct nat64_config *cfg)
{
	const __u32 l3 = ETH_HLEN;
	void *data, *data_end;
	struct ipv6hdr *ip6;
	struct nat64_flow6 key __attribute__((aligned(8))) = {};
	struct nat64_to4 *val;
	struct l4info l4 = {};
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct iphdr iph = {};
	__u32 why = 0, ifindex = 0, plen, seg4, total4, new_ports;
	__u8 proto, proto4, tos, ttl;
	int gso = skb->gso_size != 0, stack, df;
	__s64 diff;
	__u64 now;
	__u16 l4_sum = 0;

	ensure_linear(skb, l3 + sizeof(*ip6) + sizeof(struct tcphdr));
	ensure_linear(skb, l3 + sizeof(*ip6) + sizeof(struct udphdr));
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip6 = data + l3;
	if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
		return PASS(STAT_PASS_MALFORMED);

	proto = ip6->nexthdr;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6) {
		switch (proto) {
		case 0: /* Hop-by-Hop */
		case 43: /* Routing */
		case 44: /* Fragment */
		case 51: /* AH */
		case 60: /* Destination Options */
		case 135: /* Mobility */
		case 139: /* HIP */
		case 140: /* Shim6 */
			return PASS(STAT_PASS_EXT_HEADER);
		default:
			return PASS(STAT_PASS_PROTO);
		}
	}
	plen = bpf_ntohs(ip6->payload_len);
	/* plen 0 (jumbogram / BIG TCP) or more than the skb holds. */
	if (plen == 0 || l3 + sizeof(*ip6) + plen > skb->len)
		return PASS(STAT_PASS_MALFORMED);
	/* Trailing bytes behind the IPv6 payload are cut (see below); a GSO
	 * packet whose lengths disagree is left to the stack. */
	if (gso && l3 + sizeof(*ip6) + plen != skb->len)
		return PASS(STAT_PASS_MALFORMED);
	if (!(cfg->flags & NAT64_CFG_NO_DECREMENT_TTL) && ip6->hop_limit <= 1)
		return PASS(STAT_PASS_TTL);

	if (parse_l4(ip6 + 1, data_end, proto, plen, gso, &l4, &why))
		return PASS(why);

	__builtin_memcpy(key.src, &ip6->saddr, 16);
	__builtin_memcpy(key.dst, &ip6->daddr, 16);
	*(__u32 *)&key.sport = l4.ports;
	key.proto = proto;
	if (!maybe_installed((const __u32 *)&key, sizeof(key) / 4, 0))
		return PASS(STAT_PASS_MISS);
	val = bpf_map_lookup_elem(&flows_6to4, &key);
	if (!val)
		return PASS(STAT_PASS_MISS);
	now = bpf_ktime_get_ns();
	proto4 = proto == IPPROTO_ICMPV6 ? IPPROTO_ICMP : proto;

	/* RFC 7915 §5.1 sizes, DF and MTU, judged per GSO segment. */
	total4 = plen + sizeof(struct iphdr);
	seg4 = total4;
	if (gso && plen > l4.hdr_len + skb->gso_size)
		seg4 = sizeof(struct iphdr) + l4.hdr_len + skb->gso_size;
	df = seg4 > DF_THRESHOLD;
	tos = (cfg->flags & NAT64_CFG_NO_COPY_TOS) ? 0 : (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	ttl = ip6->hop_limit - ((cfg->flags & NAT64_CFG_NO_DECREMENT_TTL) ? 0 : 1);

	stack = (cfg->flags & NAT64_CFG_STACK_FORWARD) || (val->flags & NAT64_FLOW_STACK_FORWARD);
	if (stack) {
		if (cfg->mtu4 && seg4 > cfg->mtu4)
			return PASS(STAT_PASS_MTU);
	} else {
		fib.family = AF_INET;
		fib.l4_protocol = proto4;
		fib.sport = val->out.sport;
		fib.dport = val->out.dport;
		fib.tot_len = seg4;
		fib.tos = tos;
		fib.ipv4_src = val->out.src;
		fib.ipv4_dst = val->out.dst;
		if (route_cached(skb, &fib, cfg, &val->route, now, tos, &nh, &ifindex, &why))
			return PASS(why);
	}

	/* Everything read from the packet is in locals: helpers below
	 * invalidate packet pointers. */
	if (proto == IPPROTO_ICMPV6) {
		/* ICMPv4 has no pseudo-header: take the ICMPv6 one out. */
		struct pseudo6 ph = {};

		__builtin_memcpy(ph.src, key.src, 16);
		__builtin_memcpy(ph.dst, key.dst, 16);
		ph.len = bpf_htonl(plen);
		ph.nexthdr = bpf_htonl(IPPROTO_ICMPV6);
		diff = bpf_csum_diff((__be32 *)&ph, sizeof(ph), NULL, 0, 0);
	} else {
		diff = bpf_csum_diff((__be32 *)key.src, 32, &val->out.src, 8, 0);
	}
	new_ports = *(__u32 *)&val->out.sport;

	/* Rewrite. Ethernet padding or other bytes behind the IPv6 packet
	 * are cut first (nothing is modified yet if that fails). */
	if (l3 + sizeof(*ip6) + plen < skb->len &&
	    bpf_skb_change_tail(skb, l3 + sizeof(*ip6) + plen, 0))
		return PASS(STAT_PASS_MALFORMED);
	if (proto == IPPROTO_ICMPV6) {
		/* RFC 6146 §3.4: the identifier is the source "port". */
		if (rewrite_echo(skb, l3 + sizeof(*ip6), &l4, val->out.sport, diff))
			goto err;
	} else if (rewrite_l4(skb, l3 + sizeof(*ip6), proto, l4.ports, new_ports, diff)) {
		goto err;
	}
	if (!df) {
		__u32 off = l3 + sizeof(*ip6) + csum_field(proto);
		__be16 c;

		if (bpf_skb_load_bytes(skb, off, &c, sizeof(c)))
			goto err;
		l4_sum = bpf_ntohs(c);
	}
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0))
		goto err;

	iph.version = 4;
	iph.ihl = 5;
	iph.tos = tos;
	iph.tot_len = bpf_htons(total4);
	/* RFC 7915 §5.1: Identification 0 with DF, else the hash. */
	iph.id = df ? 0 : bpf_htons(fragment_id(val->out.src, val->out.dst, l4_sum, total4));
	iph.frag_off = df ? bpf_htons(IP_DF) : 0;
	iph.ttl = ttl;
	iph.protocol = proto4;
	iph.saddr = val->out.src;
	iph.daddr = val->out.dst;
	iph.check = ~csum_fold32(iph_sum(&iph));
	if (bpf_skb_store_bytes(skb, l3, &iph, sizeof(iph), BPF_F_RECOMPUTE_CSUM))
		goto err;
	{
		__be16 ethertype = bpf_htons(ETH_P_IP);

		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &ethertype,
					sizeof(ethertype), 0))
			goto err;
	}
	account(&val->c, plen + sizeof(*ip6), now);
	count(STAT_XLAT_6TO4, 0);
	return forward(cfg, stack, ifindex, &nh);
err:
	return count(STAT_ERROR, TC_ACT_SHOT);
}

/*
 * RFC 7915 §4: IPv4 -> IPv6. `l3`: where the IPv4 header starts, ETH_HLEN
 * on an Ethernet interface, 0 on an L3 device (the TUN's egress in kernel
 * mode, where the packet arrives after conntrack gave it back its inner
 * address). Translated packets always leave with an Ethernet header: an L3
 * device's packet gets a blank one first, which bpf_redirect_neigh strips
 * and rebuilds for the egress.
 */
static __always_inline int xlat_4to6(struct __sk_buff *skb, const struct nat64_config *cfg,
				     const __u32 l3)
{
	const __u32 lw = ETH_HLEN; /* the IPv4 (then IPv6) header while rewriting */
	void *data, *data_end;
	struct iphdr *ip4;
	struct nat64_flow4 key __attribute__((aligned(8))) = {};
	struct nat64_to6 *val;
	struct l4info l4 = {};
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct ipv6hdr ip6 = {};
	__u32 why = 0, ifindex = 0, total, ulen, seg_upper, size6, new_ports, lowest;
	__u16 frag;
	__u8 proto, proto6, tos, ttl;
	int gso = skb->gso_size != 0, stack, df;
	__s64 diff;
	__u64 now;

	ensure_linear(skb, l3 + sizeof(*ip4) + sizeof(struct tcphdr));
	ensure_linear(skb, l3 + sizeof(*ip4) + sizeof(struct udphdr));
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip4 = data + l3;
	if ((void *)(ip4 + 1) > data_end || ip4->version != 4)
		return PASS(STAT_PASS_MALFORMED);
	if (ip4->ihl != 5)
		return PASS(ip4->ihl < 5 ? STAT_PASS_MALFORMED : STAT_PASS_IPV4_OPTIONS);
	if (csum_fold32(iph_sum(ip4)) != 0xffff)
		return PASS(STAT_PASS_MALFORMED);
	total = bpf_ntohs(ip4->tot_len);
	if (total < sizeof(*ip4) || l3 + total > skb->len)
		return PASS(STAT_PASS_MALFORMED);
	if (gso && l3 + total != skb->len)
		return PASS(STAT_PASS_MALFORMED);
	frag = bpf_ntohs(ip4->frag_off);
	if (frag & (IP_MF | IP_OFFMASK))
		return PASS(STAT_PASS_FRAGMENT);
	df = (frag & IP_DF) != 0;
	if (!(cfg->flags & NAT64_CFG_NO_DECREMENT_TTL) && ip4->ttl <= 1)
		return PASS(STAT_PASS_TTL);
	proto = ip4->protocol;
	ulen = total - sizeof(*ip4);
	if (parse_l4(ip4 + 1, data_end, proto, ulen, gso, &l4, &why))
		return PASS(why);

	key.src = ip4->saddr;
	key.dst = ip4->daddr;
	*(__u32 *)&key.sport = l4.ports;
	key.proto = proto;
	if (!maybe_installed((const __u32 *)&key, sizeof(key) / 4, NAT64_FILTER_WORDS))
		return PASS(STAT_PASS_MISS);
	val = bpf_map_lookup_elem(&flows_4to6, &key);
	if (!val)
		return PASS(STAT_PASS_MISS);
	now = bpf_ktime_get_ns();
	proto6 = proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : proto;

	/* RFC 7915 §4.1 sizes, Fragment header and MTU, per GSO segment. */
	seg_upper = ulen;
	if (gso && ulen > l4.hdr_len + skb->gso_size)
		seg_upper = l4.hdr_len + skb->gso_size;
	size6 = sizeof(struct ipv6hdr) + seg_upper;
	lowest = cfg->lowest_ipv6_mtu ? cfg->lowest_ipv6_mtu : DEFAULT_LOWEST_IPV6_MTU;
	/* Without DF the user-space path adds a Fragment header (and
	 * fragments to lowest-ipv6-mtu). */
	if (!df && size6 > lowest)
		return PASS(STAT_PASS_MTU);
	tos = (cfg->flags & NAT64_CFG_NO_COPY_TOS) ? 0 : ip4->tos;
	ttl = ip4->ttl - ((cfg->flags & NAT64_CFG_NO_DECREMENT_TTL) ? 0 : 1);

	stack = (cfg->flags & NAT64_CFG_STACK_FORWARD) || (val->flags & NAT64_FLOW_STACK_FORWARD);
	/* Handed back to the stack, an L3 device's IPv6 packet would go out
	 * of that device (the TUN): only a route lookup knows where it goes. */
	if (stack && l3 == 0)
		return PASS(STAT_PASS_FIB);
	if (stack) {
		if (cfg->mtu6 && size6 > cfg->mtu6)
			return PASS(STAT_PASS_MTU);
	} else {
		fib.family = AF_INET6;
		fib.l4_protocol = proto6;
		fib.sport = val->out.sport;
		fib.dport = val->out.dport;
		fib.tot_len = size6;
		fib.flowinfo = bpf_htonl((__u32)tos << 20);
		__builtin_memcpy(fib.ipv6_src, val->out.src, 16);
		__builtin_memcpy(fib.ipv6_dst, val->out.dst, 16);
		if (route_cached(skb, &fib, cfg, &val->route, now, tos, &nh, &ifindex, &why))
			return PASS(why);
	}

	if (proto == IPPROTO_ICMP) {
		/* ICMPv6 adds a pseudo-header (RFC 4443 §2.3). */
		struct pseudo6 ph = {};

		__builtin_memcpy(ph.src, val->out.src, 16);
		__builtin_memcpy(ph.dst, val->out.dst, 16);
		ph.len = bpf_htonl(ulen);
		ph.nexthdr = bpf_htonl(IPPROTO_ICMPV6);
		diff = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	} else {
		diff = bpf_csum_diff(&key.src, 8, (__be32 *)val->out.src, 32, 0);
	}
	new_ports = *(__u32 *)&val->out.sport;

	ip6.version = 6;
	ip6.priority = tos >> 4;
	ip6.flow_lbl[0] = (tos & 0xf) << 4; /* flow label 0 (RFC 7915 §4.1) */
	ip6.payload_len = bpf_htons(ulen);
	ip6.nexthdr = proto6;
	ip6.hop_limit = ttl;
	__builtin_memcpy(&ip6.saddr, val->out.src, 16);
	__builtin_memcpy(&ip6.daddr, val->out.dst, 16);

	/* Rewrite: cut Ethernet padding first (nothing modified yet). */
	if (l3 + total < skb->len && bpf_skb_change_tail(skb, l3 + total, 0))
		return PASS(STAT_PASS_MALFORMED);
	/* The blank Ethernet header (zeroes; the packet is unchanged if this
	 * fails). */
	if (l3 == 0 && bpf_skb_change_head(skb, ETH_HLEN, 0))
		return PASS(STAT_PASS_MALFORMED);
	/* 20 zero bytes are inserted after the Ethernet header: the old IPv4
	 * header now ends where the IPv6 header will. */
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0))
		goto err;
	if (proto == IPPROTO_ICMP) {
		/* The client's identifier: the destination "port" back. */
		if (rewrite_echo(skb, lw + sizeof(ip6), &l4, val->out.dport, diff))
			goto err;
	} else if (rewrite_l4(skb, lw + sizeof(ip6), proto, l4.ports, new_ports, diff)) {
		goto err;
	}
	if (bpf_skb_store_bytes(skb, lw, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM))
		goto err;
	{
		__be16 ethertype = bpf_htons(ETH_P_IPV6);

		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &ethertype,
					sizeof(ethertype), 0))
			goto err;
	}
	account(&val->c, total, now);
	count(STAT_XLAT_4TO6, 0);
	return forward(cfg, stack, ifindex, &nh);
err:
	return count(STAT_ERROR, TC_ACT_SHOT);
}

SEC("classifier")
int nat64_xlat(struct __sk_buff *skb)
{
	__u32 zero = 0;
	const struct nat64_config *cfg = bpf_map_lookup_elem(&config, &zero);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if (!cfg || (cfg->flags & NAT64_CFG_DISABLED))
		return PASS(STAT_PASS_DISABLED);
	/* Only unicast frames for this host, untagged. */
	if ((void *)(eth + 1) > data_end || skb->pkt_type != PACKET_HOST || skb->vlan_present)
		return PASS(STAT_PASS_NOT_IP);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return xlat_6to4(skb, cfg);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return xlat_4to6(skb, cfg, ETH_HLEN);
	return PASS(STAT_PASS_NOT_IP);
}

/*
 * The same for an L3 device's egress (no Ethernet header: the packet starts
 * with its IP header): kernel mode attaches it to the TUN, where an IPv4
 * packet of an installed flow arrives after the kernel's NAT gave it back
 * its inner destination. IPv4 -> IPv6 only: IPv6 packets to the prefix are
 * caught at the client interfaces' ingress before they are routed here.
 */
SEC("classifier")
int nat64_xlat_l3(struct __sk_buff *skb)
{
	__u32 zero = 0;
	const struct nat64_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg || (cfg->flags & NAT64_CFG_DISABLED))
		return PASS(STAT_PASS_DISABLED);
	if (skb->protocol != bpf_htons(ETH_P_IP) || skb->vlan_present)
		return PASS(STAT_PASS_NOT_IP);
	return xlat_4to6(skb, cfg, 0);
}

/* GPL-compatible (bpf_fib_lookup is GPL-only): this file is also offered under GPL-2.0. */
char LICENSE[] SEC("license") = "GPL";
