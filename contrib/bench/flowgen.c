/*
 * flowgen - one UDP packet per new flow, at a given rate (contrib/bench).
 *
 * Sends COUNT packets, each from a different (source address, source port),
 * so every packet opens a new flow in a stateful translator / NAT. Flow i
 * (OFFSET <= i < OFFSET + COUNT) uses
 *     source address  SRC + (i % NSRC)          (added to the last 32 bits)
 *     source port     SPORT + (i / NSRC)
 *     dest. port      DPORT + (i % NDPORT)
 * Raw sockets with the IP header included (IPPROTO_RAW), so the sources need
 * not be configured anywhere; nothing is expected back. Paced in batches with
 * clock_nanosleep; RATE 0 = as fast as possible.
 *
 *   flowgen -d DST -s SRC [-n NSRC] [-p SPORT] [-D DPORT] [-m NDPORT]
 *           -c COUNT [-r RATE] [-o OFFSET] [-l PAYLOAD]
 * Prints one line: sent=N secs=S rate=R errors=E
 * Build: cc -O2 -o flowgen flowgen.c      (needs root / CAP_NET_RAW)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAXPKT 1500

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint32_t sum16(const void *p, size_t n, uint32_t s) {
	const uint8_t *b = p;
	for (; n > 1; n -= 2, b += 2) s += (uint32_t)b[0] << 8 | b[1];
	if (n) s += (uint32_t)b[0] << 8;
	return s;
}
static uint16_t fold(uint32_t s) {
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void usage(void) {
	fprintf(stderr, "usage: flowgen -d DST -s SRC [-n NSRC] [-p SPORT] [-D DPORT] [-m NDPORT] -c COUNT [-r RATE] [-o OFFSET] [-l PAYLOAD]\n");
	exit(2);
}

int main(int argc, char **argv) {
	const char *dst = NULL, *src = NULL;
	unsigned long nsrc = 1, sport = 1024, dport = 10000, ndport = 1, payload = 16;
	unsigned long long count = 0, offset = 0;
	double rate = 0;
	int o;
	while ((o = getopt(argc, argv, "d:s:n:p:D:m:c:r:o:l:")) != -1) {
		switch (o) {
		case 'd': dst = optarg; break;
		case 's': src = optarg; break;
		case 'n': nsrc = strtoul(optarg, 0, 10); break;
		case 'p': sport = strtoul(optarg, 0, 10); break;
		case 'D': dport = strtoul(optarg, 0, 10); break;
		case 'm': ndport = strtoul(optarg, 0, 10); break;
		case 'c': count = strtoull(optarg, 0, 10); break;
		case 'r': rate = strtod(optarg, 0); break;
		case 'o': offset = strtoull(optarg, 0, 10); break;
		case 'l': payload = strtoul(optarg, 0, 10); break;
		default: usage();
		}
	}
	if (!dst || !src || !count || !nsrc || !ndport || payload < 8 || payload > 1000) usage();
	if (sport + (offset + count - 1) / nsrc > 65535) {
		fprintf(stderr, "flowgen: source ports run past 65535: raise -n\n");
		return 2;
	}
	int v6 = strchr(dst, ':') != NULL;
	struct sockaddr_in6 d6 = {0}, s6 = {0};
	struct sockaddr_in d4 = {0}, s4 = {0};
	if (v6) {
		d6.sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, dst, &d6.sin6_addr) != 1 || inet_pton(AF_INET6, src, &s6.sin6_addr) != 1) usage();
	} else {
		d4.sin_family = AF_INET;
		if (inet_pton(AF_INET, dst, &d4.sin_addr) != 1 || inet_pton(AF_INET, src, &s4.sin_addr) != 1) usage();
	}
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) { perror("flowgen: socket"); return 1; }
	int sb = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);

	static uint8_t pkt[BATCH][MAXPKT];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	size_t hl = v6 ? 40 : 20, ulen = 8 + payload, plen = hl + ulen;
	uint32_t base6 = ntohl(((uint32_t *)&s6.sin6_addr)[3]);
	uint32_t base4 = ntohl(s4.sin_addr.s_addr);
	memset(msg, 0, sizeof msg);
	for (int k = 0; k < BATCH; k++) {
		iov[k].iov_base = pkt[k];
		iov[k].iov_len = plen;
		msg[k].msg_hdr.msg_iov = &iov[k];
		msg[k].msg_hdr.msg_iovlen = 1;
		msg[k].msg_hdr.msg_name = v6 ? (void *)&d6 : (void *)&d4;
		msg[k].msg_hdr.msg_namelen = v6 ? sizeof d6 : sizeof d4;
		uint8_t *p = pkt[k];
		memset(p, 0, plen);
		if (v6) {
			p[0] = 0x60;
			p[4] = ulen >> 8; p[5] = ulen & 0xff;
			p[6] = IPPROTO_UDP; p[7] = 64;
			memcpy(p + 8, &s6.sin6_addr, 16);
			memcpy(p + 24, &d6.sin6_addr, 16);
		} else {
			p[0] = 0x45;
			p[2] = plen >> 8; p[3] = plen & 0xff;
			p[6] = 0x40; /* DF */
			p[8] = 64; p[9] = IPPROTO_UDP;
			memcpy(p + 16, &d4.sin_addr, 4);
		}
		p[hl + 4] = ulen >> 8; p[hl + 5] = ulen & 0xff;
	}

	unsigned long long sent = 0, errors = 0, i = offset, end = offset + count;
	double t0 = now();
	while (i < end) {
		int n = 0;
		for (; n < BATCH && i < end; n++, i++) {
			uint8_t *p = pkt[n], *u = p + hl;
			uint32_t si = (uint32_t)(i % nsrc);
			uint16_t sp = (uint16_t)(sport + i / nsrc), dp = (uint16_t)(dport + i % ndport);
			uint32_t s;
			if (v6) {
				uint32_t a = htonl(base6 + si);
				memcpy(p + 8 + 12, &a, 4);
				s = sum16(p + 8, 32, 0) + IPPROTO_UDP + ulen;
			} else {
				uint32_t a = htonl(base4 + si);
				memcpy(p + 12, &a, 4);
				s = sum16(p + 12, 8, 0) + IPPROTO_UDP + ulen;
			}
			u[0] = sp >> 8; u[1] = sp & 0xff;
			u[2] = dp >> 8; u[3] = dp & 0xff;
			u[6] = u[7] = 0;
			memcpy(u + 8, &i, sizeof i);
			uint16_t c = fold(sum16(u, ulen, s));
			if (c == 0) c = 0xffff;
			u[6] = c >> 8; u[7] = c & 0xff;
		}
		int off = 0;
		while (off < n) {
			int r = sendmmsg(fd, msg + off, n - off, 0);
			if (r < 0) {
				if (errno == EINTR) continue;
				if (errno == ENOBUFS || errno == EAGAIN) { errors++; usleep(50); continue; }
				perror("flowgen: sendmmsg");
				return 1;
			}
			off += r;
		}
		sent += n;
		if (rate > 0) {
			double due = t0 + sent / rate;
			double t = now();
			if (due > t) {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				double w = due - t;
				ts.tv_sec += (time_t)w;
				ts.tv_nsec += (long)((w - (time_t)w) * 1e9);
				if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
	}
	double secs = now() - t0;
	printf("sent=%llu secs=%.4f rate=%.0f errors=%llu\n", sent, secs, secs > 0 ? sent / secs : 0, errors);
	return 0;
}
