#!/usr/bin/env bash
# contrib/bench/run.sh - nat64 benchmark beside kernel forwarding (docs/benchmarks.md).
# A benchmark, not a test: it prints numbers and never fails on them.
#
# One invocation builds nat64 (release), one topology per mode, and measures
# the modes side by side, interleaved test by test:
#
#   c6 (client)  --veth--  x (router / translator)  --veth--  s4 (IPv4-only server)
#   v6c 2001:db8:1::2/64    v6x 2001:db8:1::1/64
#                           v4x 198.51.100.1/24                v4s 198.51.100.2/24
#
#   kernel4nat  no translation: the client also has 192.0.2.2/24 and talks
#               IPv4 to 198.51.100.2 through x: forwarding + nftables
#               masquerade on v4x (NAT44 with conntrack). The reference.
#   daemon      nat64 napt = "daemon", fast-path = "off" (every packet through
#               the TUN): prefix 2001:db8:64::/96 (NSP), pool 203.0.113.0/24
#               routed to the TUN; s4 routes the pool to x.
#   daemon1q    the same with tun.queues = 1: one worker, for the scaling
#               ratio (daemon ÷ daemon1q); not in the default MODES.
#   fastpath    daemon with fast-path = "tc-bpf" on v6x and v4x (what daemon
#               mode does by default): established flows translated by the
#               BPF program (issue 13).
#   kernel      nat64 napt = "kernel" (fast path off, its default): inner-pool
#               100.64.0.0/16, nat64 installs the masquerade (manage-nft);
#               egress NAPT by conntrack.
#   kernelfast  kernel with fast-path = "tc-bpf" on v6x (and the TUN's egress):
#               established flows translated by the BPF program around the
#               kernel's NAT (issue 13); not in the default MODES.
#   The client of the nat64 modes is IPv6-only and targets
#   2001:db8:64::198.51.100.2.
#
# Tests (TESTS):
#   tcp6to4_1 tcp4to6_1 tcp6to4_4 tcp4to6_4   iperf3 TCP, 1 or 4 streams;
#                   6to4 = client sends, 4to6 = iperf3 -R (server sends)
#   udp6to4 udp4to6 iperf3 -u -l UDP_LEN -b 0 -w UDP_BUF from SENDERS parallel
#                   clients: received pps (packets - lost, receiver side),
#                   sent pps, loss (the sender at full speed: overload)
#   udpnl6to4 udpnl4to6 the same, searching the highest rate with at most
#                   UDP_LOSS_MAX % loss: a full-speed trial, then UDP_STEPS
#                   bisection trials of UDP_TRIAL s (iperf3 -b); reports the
#                   pps received in the best passing trial
#   connrate        RFC 9693 maximum connection establishment rate: flowgen
#                   (flowgen.c) sends CONN_FLOWS packets, each a new UDP flow
#                   (new source address/port), at a set rate; s4 counts them
#                   with an nftables counter. Binary search (CONN_ITER steps,
#                   from the generator's own maximum) for the highest rate with
#                   no loss; the table is emptied before every trial (nat64
#                   restarted, conntrack -F).
#   conncost        what a new flow costs: CONNCOST_FLOWS new flows at a fixed
#                   CONNCOST_RATE (below every mode's connrate), the whole
#                   machine's busy CPU over the run (/proc/stat, generator
#                   included) divided by the flows: core-microseconds per
#                   flow, lower is better. Resolves differences the zero-loss
#                   rate search cannot (its trials end at the first lost
#                   packet, so one stall moves it by 10 %).
#   capacity        RFC 9693 connection tracking table capacity: CAP_FLOWS new
#                   flows at CAP_RATE; then the flows the table holds (nat64
#                   sessions_udp, or the namespace's conntrack count), the
#                   translator's VmRSS and the conntrack slab growth.
#   teardown        RFC 9693 connection tear-down rate: TD_FLOWS flows with a
#                   short UDP timeout (nat64 timeouts.udp / the namespace's
#                   nf_conntrack_udp_timeout = TD_TIMEOUT; nat64's reaper runs
#                   every TD_REAP s, so its first sweep finds them all expired),
#                   then the time from the last full table to an empty one.
#
# Environment (defaults in brackets):
#   MODES ["kernel4nat daemon fastpath kernel"]
#   OFFLOAD ["on off"] veth TSO/GSO/GRO all on, all off; "default" = what a new
#          veth has (TSO/GSO on, GRO off), as in the anchors' default rows
#   TESTS ["tcp6to4_1 tcp4to6_1 tcp6to4_4 tcp4to6_4 udp6to4 udp4to6 udpnl6to4
#          udpnl4to6 connrate conncost
#          capacity teardown"]
#   DURATION [10] s per iperf3 run   REPS [3] repetitions, the tables give medians
#   SENDERS [1] parallel iperf3 UDP clients (ports PORT..PORT+SENDERS-1)
#   TCP_PROCS [streams] how a tcp*_N test makes its N streams: "streams", N
#          iperf3 clients of one stream each (ports PORT..PORT+N-1), as iperf3
#          >= 3.16 gives each stream its own thread; "one", one iperf3 -P N
#          (iperf3 3.12, Debian 12's, then sends every stream from one thread,
#          and a run may end up with one vCPU doing sender, forwarding and
#          receiver while the other idles: the bimodal results of Run H)
#   UDP_LEN [64]   PORT [5201]
#   STATEFUL_OFFLOAD [off, or the first OFFLOAD] offload setting the
#          connrate/capacity/teardown tests run under (once, not per setting)
#   CONN_FLOWS [100000] CONN_ITER [7] CONN_LOSS [0] (fraction of loss tolerated)
#   CONNCOST_FLOWS [500000] CONNCOST_RATE [100000] new flows/s
#   CAP_FLOWS [1000000] CAP_RATE [auto: 80 % of the mode's connrate median
#          from this run, or 50000 without one] new flows/s while filling
#   TD_FLOWS [200000] TD_RATE [100000] TD_TIMEOUT [5] TD_REAP [15]
#   FLOW_SOURCES [4096] IPv6 sources (kernel4nat: at most 240 IPv4 sources)
#   FLOW_DPORTS [64] destination ports 10000.. (kernel NAPT needs several)
#   NAT64_QUEUES [unset = nat64's default, one per CPU]
#   CSV [/tmp/nat64-bench-<date>-<pid>.csv] raw results, one row per run
#   UDP_BUF [4M] iperf3 -w for the UDP tests (receiver socket buffer, capped by
#                   net.core.rmem_max), so the receiving iperf3 is not where
#                   packets are lost when it is scheduled late
#   UDP_TRIAL [DURATION] UDP_STEPS [5] UDP_LOSS_MAX [2] the udpnl* search
#   UDP_BURST [32] packets per paced burst in the udpnl* search (iperf3 -b
#                   RATE/BURST): paced without a burst, iperf3 3.12 makes one
#                   select() per datagram and tops out far below its unpaced
#                   rate (asked 452k pps, sent 303k), so the search would
#                   measure the sender's pacing, not the path
#   NAT64_BATCH [nat64's default] tun.batch: packets per TUN write batch (1: no io_uring)
#   NAT64_TXQUEUELEN [nat64's default] tun.txqueuelen
#   NAT64_PIN [nat64's default] tun.pin-workers: true or false
#   NAT64_BIN [target/release/nat64] the nat64 binary to run
#   KEEP_LOGS [0] keep the work directory (iperf3 JSON, nat64 logs)
#   SKIP_BUILD [0] use the existing target/release/nat64
#
# Usage (as root):  contrib/bench/run.sh
#         DURATION=2 REPS=1 MODES=kernel4nat OFFLOAD=off contrib/bench/run.sh
#         contrib/bench/run.sh report /tmp/nat64-bench-....csv
# Needs root, Debian (contrib/setup.sh installs iperf3, nftables, ethtool,
# conntrack, ...), cargo and a C compiler. Namespaces are named n64b<pid>*;
# on exit or INT/TERM it stops what it started, by PID, and deletes them.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/contrib/bench
PY=$BENCH/bench.py

if [[ ${1:-} == report ]]; then
	exec python3 "$PY" report "${2:?usage: run.sh report RAW.csv}"
fi

MODES=${MODES:-"kernel4nat daemon fastpath kernel"}
OFFLOAD=${OFFLOAD:-"on off"}
TESTS=${TESTS:-"tcp6to4_1 tcp4to6_1 tcp6to4_4 tcp4to6_4 udp6to4 udp4to6 udpnl6to4 udpnl4to6 connrate conncost capacity teardown"}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
SENDERS=${SENDERS:-1}
TCP_PROCS=${TCP_PROCS:-streams}
[[ $TCP_PROCS == streams || $TCP_PROCS == one ]] || { echo "TCP_PROCS must be 'streams' or 'one', not '$TCP_PROCS'" >&2; exit 1; }
# iperf3 servers each mode runs: one per UDP sender or per TCP stream.
SERVERS=$SENDERS
if [[ $TCP_PROCS == streams ]]; then
	for t in ${TESTS:-}; do
		[[ $t =~ ^tcp(6to4|4to6)_([0-9]+)$ ]] && ((BASH_REMATCH[2] > SERVERS)) && SERVERS=${BASH_REMATCH[2]}
	done
fi
UDP_LEN=${UDP_LEN:-64}
UDP_BUF=${UDP_BUF:-4M}
UDP_TRIAL=${UDP_TRIAL:-$DURATION}
UDP_STEPS=${UDP_STEPS:-5}
UDP_BURST=${UDP_BURST:-32}
UDP_LOSS_MAX=${UDP_LOSS_MAX:-2}
PORT=${PORT:-5201}
CONN_FLOWS=${CONN_FLOWS:-100000}
CONN_ITER=${CONN_ITER:-7}
CONN_LOSS=${CONN_LOSS:-0}
CONNCOST_FLOWS=${CONNCOST_FLOWS:-500000}
CONNCOST_RATE=${CONNCOST_RATE:-100000}
CAP_FLOWS=${CAP_FLOWS:-1000000}
CAP_RATE=${CAP_RATE:-auto}
TD_FLOWS=${TD_FLOWS:-200000}
TD_RATE=${TD_RATE:-100000}
TD_TIMEOUT=${TD_TIMEOUT:-5}
TD_REAP=${TD_REAP:-15}
FLOW_SOURCES=${FLOW_SOURCES:-4096}
FLOW_DPORTS=${FLOW_DPORTS:-64}
NAT64_QUEUES=${NAT64_QUEUES:-}
NAT64_BATCH=${NAT64_BATCH:-}
NAT64_PIN=${NAT64_PIN:-}
NAT64_TXQUEUELEN=${NAT64_TXQUEUELEN:-}
KEEP_LOGS=${KEEP_LOGS:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
RUN_ID=nat64-bench-$(date -u +%Y%m%dT%H%M%SZ)-$$
CSV=${CSV:-/tmp/$RUN_ID.csv}
if [[ -z ${STATEFUL_OFFLOAD:-} ]]; then
	if [[ " $OFFLOAD " == *" off "* ]]; then STATEFUL_OFFLOAD=off; else STATEFUL_OFFLOAD=${OFFLOAD%% *}; fi
fi

exec {LOGFD}>&2
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&"$LOGFD"; }
die() { log "ERROR: $*"; exit 1; }

for m in $MODES; do [[ $m =~ ^(kernel4nat|daemon|daemon1q|fastpath|kernel|kernelfast)$ ]] || die "unknown mode '$m' (kernel4nat daemon daemon1q fastpath kernel kernelfast)"; done
for o in $OFFLOAD; do [[ $o =~ ^(on|off|default)$ ]] || die "OFFLOAD takes on, off and/or default, not '$o'"; done
for t in $TESTS; do
	[[ $t =~ ^(tcp(6to4|4to6)_[0-9]+|udp6to4|udp4to6|udpnl6to4|udpnl4to6|connrate|conncost|capacity|teardown)$ ]] || die "unknown test '$t'"
done
[[ $CAP_RATE == auto || $CAP_RATE =~ ^[0-9]+$ ]] || die "CAP_RATE must be auto or a number"
for v in DURATION REPS SENDERS UDP_LEN CONN_FLOWS CONN_ITER CONNCOST_FLOWS CONNCOST_RATE CAP_FLOWS TD_FLOWS TD_RATE TD_TIMEOUT TD_REAP FLOW_SOURCES FLOW_DPORTS; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || die "$v must be a positive integer"
done
[[ $(id -u) -eq 0 ]] || die "needs root (namespaces, TUN, raw sockets): run it as root"

# ------------------------------------------------------------- preparing ---
log "installing missing packages (contrib/setup.sh)"
bash contrib/setup.sh
if [[ $SKIP_BUILD != 1 ]]; then
	log "building nat64 (cargo build --release -p nat64)"
	cargo build --release -p nat64 >&"$LOGFD" 2>&1 || die "cargo build failed"
fi
NAT64=${NAT64_BIN:-$ROOT/target/release/nat64}
[[ -x $NAT64 ]] || die "no $NAT64 (build it, or unset SKIP_BUILD)"

WORK=$(mktemp -d /tmp/nat64-bench.XXXXXX)
cc -O2 -o "$WORK/flowgen" "$BENCH/flowgen.c" || die "compiling flowgen.c failed"
FLOWGEN=$WORK/flowgen
NCPU=$(getconf _NPROCESSORS_ONLN)
HZ=$(getconf CLK_TCK)
ID=n64b$$

# Fixed address plan (documentation ranges only, inside our namespaces).
C6_ADDR=2001:db8:1::2
X6_ADDR=2001:db8:1::1
PREFIX=2001:db8:64::/96
SERVER4=198.51.100.2
X4_ADDR=198.51.100.1
SERVER4_V6=2001:db8:64::c633:6402     # 2001:db8:64::198.51.100.2
POOL=203.0.113.0/24
GATEWAY4=192.0.2.1
C4_ADDR=192.0.2.2                     # kernel4nat only
FLOW_SRC6=2001:db8:1::1:0             # flowgen sources (on-link, never answered)
FLOW_SRC4=192.0.2.10
FLOW_DPORT=10000

# ------------------------------------------------------- process control ---
declare -A NS_C6 NS_X NS_S4 XPID XLOG XCONF TARGET FAILED CONNRATE
CREATED_NS=()
declare -A LIVE # background processes we started and have not reaped, by PID
CLEANED=0

start_bg_log() { # start_bg_log LOG -- CMD... : background, sets BGPID
	local logf=$1
	shift 2
	"$@" >"$logf" 2>&1 </dev/null &
	BGPID=$!
	LIVE[$BGPID]=1
}

stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	unset "LIVE[$pid]"
}

cleanup() {
	local rc=$? i ns pid
	[[ $CLEANED -eq 0 ]] || return 0
	CLEANED=1
	set +e
	trap - INT TERM
	for pid in "${!LIVE[@]}"; do stop_pid "$pid"; done
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
	done
	sleep 0.2
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	for ((i = ${#CREATED_NS[@]} - 1; i >= 0; i--)); do
		ip netns del "${CREATED_NS[i]}" 2>/dev/null || log "could not delete netns ${CREATED_NS[i]}"
	done
	if [[ $KEEP_LOGS == 1 ]]; then log "logs kept in $WORK"; else rm -rf -- "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { ip netns exec "$@"; }
is_daemon() { [[ $1 == daemon || $1 == daemon1q || $1 == fastpath ]]; } # nat64 doing the NAPT
is_knat64() { [[ $1 == kernel || $1 == kernelfast ]]; }                  # nat64 + the kernel's NAPT

# -------------------------------------------------------------- topology ---
setup_topo() { # setup_topo MODE
	local m=$1 tag c6 x s4 l
	case $m in kernel4nat) tag=k4 ;; daemon) tag=nd ;; daemon1q) tag=n1 ;; fastpath) tag=nf ;; kernel) tag=nk ;; kernelfast) tag=kf ;; esac
	c6=$ID${tag}c6 x=$ID${tag}x s4=$ID${tag}s4
	NS_C6[$m]=$c6 NS_X[$m]=$x NS_S4[$m]=$s4
	for ns in "$c6" "$x" "$s4"; do
		ip netns add "$ns"
		CREATED_NS+=("$ns")
		ip -n "$ns" link set lo up
	done
	nsx "$x" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	nsx "$s4" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	nsx "$c6" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
	ip -n "$c6" link add v6c type veth peer name v6x netns "$x"
	ip -n "$s4" link add v4s type veth peer name v4x netns "$x"
	ip -n "$c6" addr add "$C6_ADDR/64" dev v6c nodad
	ip -n "$x" addr add "$X6_ADDR/64" dev v6x nodad
	ip -n "$x" addr add "$X4_ADDR/24" dev v4x
	ip -n "$s4" addr add "$SERVER4/24" dev v4s
	for l in "$c6 v6c" "$x v6x" "$x v4x" "$s4 v4s"; do ip -n "${l% *}" link set "${l#* }" up; done
	case $m in
	kernel4nat)
		ip -n "$c6" addr add "$C4_ADDR/24" dev v6c
		ip -n "$x" addr add "$GATEWAY4/24" dev v6x
		ip -n "$c6" route add 198.51.100.0/24 via "$GATEWAY4"
		nsx "$x" nft -f - <<-EOF
			table ip bench_nat44 {
				chain postrouting {
					type nat hook postrouting priority srcnat; policy accept;
					oifname "v4x" masquerade
				}
			}
		EOF
		TARGET[$m]=$SERVER4
		;;
	daemon | daemon1q | fastpath)
		ip -n "$c6" -6 route add "$PREFIX" via "$X6_ADDR"
		ip -n "$s4" route add "$POOL" via "$X4_ADDR"
		TARGET[$m]=$SERVER4_V6
		;;
	kernel | kernelfast)
		ip -n "$c6" -6 route add "$PREFIX" via "$X6_ADDR"
		TARGET[$m]=$SERVER4_V6
		;;
	esac
	# s4 counts (and drops) the flowgen packets: one per new flow.
	nsx "$s4" nft -f - <<-EOF
		table inet bench_count {
			counter flows { }
			chain input {
				type filter hook input priority filter; policy accept;
				udp dport $FLOW_DPORT-$((FLOW_DPORT + FLOW_DPORTS - 1)) counter name "flows" drop
			}
		}
	EOF
}

set_offload() { # set_offload on|off|default : TSO/GSO/GRO on every veth of every topology
	local m l k=(tso "$1" gso "$1" gro "$1")
	[[ $1 == default ]] && k=(tso on gso on gro off) # what a new veth has
	for m in $MODES; do
		for l in "${NS_C6[$m]} v6c" "${NS_X[$m]} v6x" "${NS_X[$m]} v4x" "${NS_S4[$m]} v4s"; do
			nsx "${l% *}" ethtool -K "${l#* }" "${k[@]}" >/dev/null 2>&1 ||
				log "ethtool -K ${l#* } $1 failed in ${l% *}"
		done
	done
}

declare -A SRV_PID
start_servers() { # start_servers MODE : SERVERS iperf3 servers in s4
	local m=$1 i p
	for ((i = 0; i < SERVERS; i++)); do
		p=$((PORT + i))
		start_bg_log "$WORK/$m.iperf3-s.$p.log" -- ip netns exec "${NS_S4[$m]}" iperf3 -s -4 -p "$p"
		SRV_PID[$m.$p]=$BGPID
	done
	for ((i = 0; i < 50; i++)); do
		nsx "${NS_S4[$m]}" ss -Hltn "sport = :$PORT" | grep -q . && return 0
		sleep 0.1
	done
	die "iperf3 server did not start in ${NS_S4[$m]}"
}
restart_servers() {
	local m=$1 i
	for ((i = 0; i < SERVERS; i++)); do stop_pid "${SRV_PID[$m.$((PORT + i))]}"; done
	start_servers "$m"
}

# ------------------------------------------------------------------ nat64 ---
write_conf() { # write_conf MODE FILE [teardown]
	local m=$1 f=$2 td=${3:-}
	{
		echo "# written by contrib/bench/run.sh"
		echo "prefix = \"$PREFIX\""
		echo "gateway-v4 = \"$GATEWAY4\""
		echo 'metrics = ""'
		echo 'control = ""'
		if is_daemon "$m"; then
			echo 'napt = "daemon"'
			echo "pool = [\"$POOL\"]"
			if [[ $m == fastpath ]]; then
				echo 'fast-path = "tc-bpf"'
				echo 'fast-path-interfaces = ["v6x", "v4x"]'
			else
				echo 'fast-path = "off"' # on by default in daemon mode
			fi
		else
			echo 'napt = "kernel"'
			echo 'inner-pool = "100.64.0.0/16"'
			echo 'manage-nft = true'
			if [[ $m == kernelfast ]]; then
				echo 'fast-path = "tc-bpf"'
				echo 'fast-path-interfaces = ["v6x"]'
			else
				echo 'fast-path = "off"'
			fi
		fi
		[[ -n $td ]] && echo "reap-interval-secs = $TD_REAP"
		echo
		echo '[tun]'
		echo 'name = "nat64"'
		if [[ $m == daemon1q ]]; then
			echo "queues = 1"
		elif [[ -n $NAT64_QUEUES ]]; then
			echo "queues = $NAT64_QUEUES"
		fi
		[[ -n $NAT64_BATCH ]] && echo "batch = $NAT64_BATCH"
		[[ -n $NAT64_PIN ]] && echo "pin-workers = $NAT64_PIN"
		[[ -n $NAT64_TXQUEUELEN ]] && echo "txqueuelen = $NAT64_TXQUEUELEN"
		echo
		echo '[limits]   # room for the capacity test'
		echo "max-sessions = $((CAP_FLOWS > 1000000 ? CAP_FLOWS * 2 : 2000000))"
		echo 'max-sessions-per-client = 65535'
		# The capacity test's flows come from one /64 (one site).
		echo "max-sessions-per-site = $((CAP_FLOWS > 1000000 ? CAP_FLOWS * 2 : 2000000))"
		# Kernel mode: one lease per flowgen source (FLOW_SOURCES of them, one
		# /64, and the other tests' clients); the default guard (256) would measure
		# the guard, not the rate.
		is_knat64 "$m" && echo "max-leases-per-site = $((FLOW_SOURCES + 1024))"
		if [[ -n $td ]]; then
			echo
			echo '[timeouts]'
			echo "udp = $TD_TIMEOUT"
		fi
	} >"$f"
}

log_tail() { tail -n "${2:-15}" "$1" 2>/dev/null | tr '\n' '|' | tr -d ',' | cut -c1-1500; }

start_nat64() { # start_nat64 MODE [teardown] -> 0 if running and the path works
	local m=$1 td=${2:-} f i
	f=$WORK/$m.nat64${td:+-td}.toml
	write_conf "$m" "$f" "$td"
	XCONF[$m]=$f
	XLOG[$m]=$WORK/$m.nat64.log
	echo "=== nat64 run --config $f ($(date +%T))" >>"${XLOG[$m]}"
	"$NAT64" check --config "$f" >>"${XLOG[$m]}" 2>&1 || { FAILED[$m]="nat64 check: $(log_tail "${XLOG[$m]}")"; return 1; }
	ip netns exec "${NS_X[$m]}" "$NAT64" run --config "$f" >>"${XLOG[$m]}" 2>&1 </dev/null &
	XPID[$m]=$!
	LIVE[${XPID[$m]}]=1
	for ((i = 0; i < 200; i++)); do
		tail -n 5 "${XLOG[$m]}" | grep -q "nat64 running" && break
		if ! kill -0 "${XPID[$m]}" 2>/dev/null; then
			FAILED[$m]="nat64 exited at start: $(log_tail "${XLOG[$m]}")"
			XPID[$m]=
			return 1
		fi
		sleep 0.1
	done
	tail -n 5 "${XLOG[$m]}" | grep -q "nat64 running" || { FAILED[$m]="nat64 not running after 20 s: $(log_tail "${XLOG[$m]}")"; return 1; }
	# A fast-path mode that fell back to the TUN would measure the wrong thing.
	if [[ $m == fastpath || $m == kernelfast ]] && ! grep -q "fast path on" "${XLOG[$m]}"; then
		FAILED[$m]="the fast path did not load: $(log_tail "${XLOG[$m]}")"
		return 1
	fi
	wait_path "$m"
}

stop_nat64() {
	local m=$1
	[[ -n ${XPID[$m]:-} ]] || return 0
	stop_pid "${XPID[$m]}"
	XPID[$m]=
}

wait_path() { # ping the server through the mode's router (ARP/ND warm-up too)
	local m=$1 fam=-6 i
	[[ $m == kernel4nat ]] && fam=-4
	for ((i = 0; i < 20; i++)); do
		nsx "${NS_C6[$m]}" ping "$fam" -n -c 1 -W 1 "${TARGET[$m]}" >/dev/null 2>&1 && return 0
		[[ -z ${XPID[$m]:-} || $m == kernel4nat ]] || kill -0 "${XPID[$m]}" 2>/dev/null ||
			{ FAILED[$m]="nat64 died: $(log_tail "${XLOG[$m]}")"; return 1; }
	done
	FAILED[$m]="no ping reply from ${TARGET[$m]}${XLOG[$m]:+: $(log_tail "${XLOG[$m]}")}"
	return 1
}

alive() { # is the mode usable (nat64 running, when there is one)?
	local m=$1
	[[ -z ${FAILED[$m]:-} ]] || return 1
	[[ $m == kernel4nat ]] && return 0
	if [[ -z ${XPID[$m]:-} ]] || ! kill -0 "${XPID[$m]}" 2>/dev/null; then
		FAILED[$m]="nat64 is not running: $(log_tail "${XLOG[$m]}")"
		return 1
	fi
}

nat64_stats() { # nat64_stats MODE KEY : SIGUSR1, then KEY from the new stats line
	local m=$1 key=$2 n0 i
	n0=$(grep -c " stats: " "${XLOG[$m]}" || true)
	kill -USR1 "${XPID[$m]}" 2>/dev/null || { echo NA; return; }
	for ((i = 0; i < 100; i++)); do
		if (($(grep -c " stats: " "${XLOG[$m]}" || true) > n0)); then
			grep " stats: " "${XLOG[$m]}" | tail -n 1 | tr ' ' '\n' | awk -F= -v k="$key" '$1 == k {print $2; f=1} END {if (!f) print "NA"}'
			return
		fi
		sleep 0.02
	done
	echo NA
}

# -------------------------------------------------------------- measures ---
pid_ticks() { # utime+stime of a process (all threads)
	local line rest
	[[ -n ${1:-} ]] || { echo NA; return; }
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || { echo NA; return; }
	rest=${line##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo $((${12} + ${13}))
}
host_ticks() { awk '/^cpu /{t=0; for(i=2;i<=9;i++) t+=$i; print t-$5-$6, $8, t; exit}' /proc/stat; }
our_pids() { local ns; for ns in "${CREATED_NS[@]}"; do ip netns pids "$ns" 2>/dev/null; done | tr '\n' ' '; }
foreign_ticks() { # shellcheck disable=SC2046
	python3 "$PY" foreign $$ $(our_pids)
}
vm_rss_kib() { awk '/^VmRSS:/{print $2; f=1} END{if(!f) print "NA"}' "/proc/$1/status" 2>/dev/null || echo NA; }
ct_count() { nsx "${NS_X[$1]}" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; }
ct_slab_bytes() { awk '$1 == "nf_conntrack" {print $2 * $4; f=1} END {if (!f) print 0}' /proc/slabinfo 2>/dev/null || echo 0; }
flow_count() { nsx "${NS_S4[$1]}" nft list counter inet bench_count flows | awk '/packets/ {for (i=1;i<=NF;i++) if ($i=="packets") print $(i+1)}'; }
# packets the kernel dropped because nat64 did not read its TUN fast enough
tun_drops() {
	[[ $1 != kernel4nat ]] || { echo NA; return; }
	nsx "${NS_X[$1]}" cat /sys/class/net/nat64/statistics/tx_dropped 2>/dev/null || echo NA
}
ct_flush() { nsx "${NS_X[$1]}" conntrack -F >/dev/null 2>&1 || true; }

# CPU window around a measurement: cpu_begin MODE; ...; cpu_end -> CPU_FIELDS
cpu_begin() {
	CB_MODE=$1
	CB_PID=${XPID[$1]:-}
	CB_X=$(pid_ticks "$CB_PID")
	CB_F=$(foreign_ticks)
	CB_H=$(host_ticks)
	CB_T=$(date +%s.%N)
}
cpu_end() { # sets CPU_FIELDS="xlat_cpu,host_busy,host_sirq,other_cpu,wall_s"
	local x1 f1 h1 t1
	# NA when nat64 was restarted inside the window (connrate trials)
	if [[ ${XPID[$CB_MODE]:-} == "$CB_PID" ]]; then x1=$(pid_ticks "$CB_PID"); else x1=NA; fi
	f1=$(foreign_ticks)
	h1=$(host_ticks)
	t1=$(date +%s.%N)
	CPU_FIELDS=$(awk -v x0="$CB_X" -v x1="$x1" -v f0="$CB_F" -v f1="$f1" -v h0="$CB_H" -v h1="$h1" \
		-v t0="$CB_T" -v t1="$t1" -v hz="$HZ" -v n="$NCPU" 'BEGIN {
		w = t1 - t0; if (w <= 0) w = 1
		split(h0, a, " "); split(h1, b, " "); dt = b[3] - a[3]; if (dt <= 0) dt = 1
		xc = (x0 == "NA" || x1 == "NA") ? "NA" : sprintf("%.0f", (x1 - x0) / hz / w * 100)
		o = (f1 - f0) / hz / w * 100; if (o < 0) o = 0
		printf "%s,%.0f,%.0f,%.0f,%.2f", xc, (b[1] - a[1]) / dt * 100 * n, (b[2] - a[2]) / dt * 100 * n, o, w }')
}

CSV_HEADER="run,ts,duration,mode,offload,test,rep,ok,value,unit,gbps,retrans,tx_pps,rx_pps,loss_pct,xlat_cpu,host_busy,host_sirq,other_cpu,wall_s,extra,note"
[[ -s $CSV ]] || echo "$CSV_HEADER" >"$CSV"
row() { # row MODE OFF TEST REP OK VALUE UNIT GBPS RETR TX RX LOSS CPU_FIELDS EXTRA NOTE
	local note=${15//,/;}
	echo "$RUN_ID,$(date -u +%FT%TZ),$DURATION,$1,$2,$3,$4,$5,$6,$7,$8,$9,${10},${11},${12},${13},${14},${note:0:1500}" >>"$CSV"
}
fail_row() { row "$1" "$2" "$3" "$4" 0 NA "$5" NA NA NA NA NA "NA,NA,NA,NA,NA" "" "${FAILED[$1]:-$6}"; }

# ----------------------------------------------------------------- iperf3 ---
# iperf_trial MODE NAME SECS CLIENTS ARGS... : CLIENTS iperf3 clients (ports
# PORT..) from c6 for SECS seconds; sets IT_OK IT_GBPS IT_RETR IT_TX IT_RX IT_LOSS
# IT_ERR, IT_EX (TUN drops) and CPU_FIELDS.
iperf_trial() {
	local m=$1 name=$2 secs=$3 n=$4 i j rc=0 files=() cpids=() d0 d1
	shift 4
	IT_EX=""
	d0=$(tun_drops "$m")
	cpu_begin "$m"
	for ((i = 0; i < n; i++)); do
		j=$WORK/$name.$i.json
		files+=("$j")
		ip netns exec "${NS_C6[$m]}" timeout -k 5 $((secs + 30)) \
			iperf3 -c "${TARGET[$m]}" -p $((PORT + i)) -t "$secs" -J --connect-timeout 5000 "$@" \
			>"$j" 2>"$j.err" </dev/null &
		cpids+=($!)
		LIVE[$!]=1
	done
	for i in "${cpids[@]}"; do
		wait "$i" || rc=$?
		unset "LIVE[$i]"
	done
	cpu_end
	d1=$(tun_drops "$m")
	[[ $d0 == NA || $d1 == NA ]] || IT_EX="tun_drop=$((d1 - d0))"
	read -r IT_OK IT_GBPS IT_RETR IT_TX IT_RX IT_LOSS IT_ERR < <(python3 "$PY" iperf "${files[@]}")
	[[ $rc -eq 0 ]] || IT_OK=0
	[[ $IT_OK == 1 ]] || IT_ERR="rc=$rc $IT_ERR $(head -c 300 "${files[0]}.err" 2>/dev/null | tr '\n' ' ')"
}

iperf_failed() { # iperf_failed MODE OFF TEST REP
	local m=$1 why=$IT_ERR
	alive "$m" || true
	[[ -n ${FAILED[$m]:-} ]] && why="$why; ${FAILED[$m]}"
	row "$m" "$2" "$3" "$4" 0 NA - NA NA NA NA NA "$CPU_FIELDS" "" "$why"
	log "  $m/$2 $3 #$4: FAILED $why"
	[[ -n ${FAILED[$m]:-} ]] || restart_servers "$m"
}

run_iperf() { # run_iperf MODE OFF TEST REP
	local m=$1 off=$2 t=$3 rep=$4 args=()
	local streams=${t#*_} clients=$SENDERS dir=()
	[[ $t == tcp4to6_* ]] && dir=(-R)
	case $t in
	tcp*)
		clients=1
		[[ $TCP_PROCS == streams ]] && clients=$streams streams=1
		args=("${dir[@]}" -P "$streams")
		;;
	udp6to4) args=(-u -l "$UDP_LEN" -b 0 -w "$UDP_BUF") ;;
	udp4to6) args=(-u -l "$UDP_LEN" -b 0 -w "$UDP_BUF" -R) ;;
	udpnl*) run_udp_search "$@"; return ;;
	esac
	if ! alive "$m"; then fail_row "$m" "$off" "$t" "$rep" "${t%%_*}"; return; fi
	iperf_trial "$m" "$m.$off.$t.$rep" "$DURATION" "$clients" "${args[@]}"
	if [[ $IT_OK != 1 ]]; then iperf_failed "$m" "$off" "$t" "$rep"; return; fi
	if [[ $t == tcp* ]]; then
		row "$m" "$off" "$t" "$rep" 1 "$IT_GBPS" Gbit/s "$IT_GBPS" "$IT_RETR" NA NA NA "$CPU_FIELDS" "$IT_EX" ""
		log "  $m/$off $t #$rep: $IT_GBPS Gbit/s retr $IT_RETR  cpu(xlat,busy,sirq,other,wall)=$CPU_FIELDS $IT_EX"
	else
		row "$m" "$off" "$t" "$rep" 1 "$IT_RX" pps NA NA "$IT_TX" "$IT_RX" "$IT_LOSS" "$CPU_FIELDS" "senders=$SENDERS${IT_EX:+;$IT_EX}" ""
		log "  $m/$off $t #$rep: rx $IT_RX pps tx $IT_TX pps loss $IT_LOSS%  cpu=$CPU_FIELDS $IT_EX"
	fi
}

# run_udp_search MODE OFF TEST REP: udpnl6to4 / udpnl4to6, the RFC 2544
# throughput idea with a loss bound: the highest sending rate at which at
# most UDP_LOSS_MAX % of the packets are lost. One trial at full speed
# (-b 0) gives the sender's ceiling; if it loses more than the bound,
# UDP_STEPS bisection trials between 0 and that ceiling follow. Reports the
# packets/s received in the best passing trial (its sent rate and loss too).
run_udp_search() {
	loss_ok() { awk -v l="$1" -v m="$UDP_LOSS_MAX" 'BEGIN { exit !(l + 0 <= m + 0) }'; }
	local m=$1 off=$2 t=$3 rep=$4 dir=() lo=0 hi best=() i rate trials=0 blast
	[[ $t == udpnl4to6 ]] && dir=(-R)
	if ! alive "$m"; then fail_row "$m" "$off" "$t" "$rep" pps; return; fi
	local base=(-u -l "$UDP_LEN" -w "$UDP_BUF" "${dir[@]}")
	iperf_trial "$m" "$m.$off.$t.$rep.full" "$UDP_TRIAL" "$SENDERS" "${base[@]}" -b 0
	trials=1
	if [[ $IT_OK != 1 ]]; then iperf_failed "$m" "$off" "$t" "$rep"; return; fi
	blast="full_tx=$IT_TX;full_rx=$IT_RX;full_loss=$IT_LOSS"
	hi=$IT_TX
	if loss_ok "$IT_LOSS"; then
		best=("$IT_RX" "$IT_TX" "$IT_LOSS" "$CPU_FIELDS" "$IT_EX")
	else
		for ((i = 0; i < UDP_STEPS; i++)); do
			rate=$(((lo + hi) / 2))
			((rate > 0)) || break
			iperf_trial "$m" "$m.$off.$t.$rep.$i" "$UDP_TRIAL" "$SENDERS" "${base[@]}" -b "$((rate * UDP_LEN * 8))/$UDP_BURST"
			trials=$((trials + 1))
			if [[ $IT_OK == 1 ]] && loss_ok "$IT_LOSS"; then
				lo=$rate
				if ((${#best[@]} == 0)) || ((${IT_RX%.*} > ${best[0]%.*})); then
					best=("$IT_RX" "$IT_TX" "$IT_LOSS" "$CPU_FIELDS" "$IT_EX")
				fi
			else
				hi=$rate
			fi
			log "    $m/$off $t step $i: asked $rate pps: rx $IT_RX tx $IT_TX loss $IT_LOSS% -> [$lo, $hi]"
		done
	fi
	if ((${#best[@]} == 0)); then
		IT_ERR="no rate with loss <= $UDP_LOSS_MAX% ($blast)"
		iperf_failed "$m" "$off" "$t" "$rep"
		return
	fi
	CPU_FIELDS=${best[3]}
	row "$m" "$off" "$t" "$rep" 1 "${best[0]}" pps NA NA "${best[1]}" "${best[0]}" "${best[2]}" "$CPU_FIELDS" \
		"senders=$SENDERS;trials=$trials;$blast${best[4]:+;${best[4]}}" ""
	log "  $m/$off $t #$rep: best rx ${best[0]} pps tx ${best[1]} pps loss ${best[2]}% ($trials trials; full speed: $blast)"
}

# -------------------------------------------------------- stateful tests ---
# gen MODE COUNT RATE : one flowgen run from the mode's client; sets GEN_SENT
# GEN_RATE GEN_SECS and GEN_RECV (counted in s4, after a short drain).
gen() {
	local m=$1 count=$2 rate=$3 c0 c1 out dst src nsrc
	if [[ $m == kernel4nat ]]; then
		dst=$SERVER4 src=$FLOW_SRC4 nsrc=$((FLOW_SOURCES < 240 ? FLOW_SOURCES : 240))
	else
		dst=$SERVER4_V6 src=$FLOW_SRC6 nsrc=$FLOW_SOURCES
	fi
	c0=$(flow_count "$m")
	nsx "${NS_C6[$m]}" "$FLOWGEN" -d "$dst" -s "$src" -n "$nsrc" -p 1024 -D "$FLOW_DPORT" -m "$FLOW_DPORTS" \
		-c "$count" -r "$rate" >"$WORK/gen.out" 2>&1 &
	local gp=$! grc=0
	LIVE[$gp]=1
	wait "$gp" || grc=$?
	unset "LIVE[$gp]"
	((grc == 0)) || { log "flowgen failed: $(cat "$WORK/gen.out")"; GEN_SENT=0 GEN_RATE=0 GEN_SECS=0 GEN_RECV=0; return 1; }
	out=$(cat "$WORK/gen.out")
	sleep 0.5
	c1=$(flow_count "$m")
	GEN_SENT=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
	GEN_RATE=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$out")
	GEN_SECS=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' <<<"$out")
	GEN_RECV=$((c1 - c0))
}

# fresh_table MODE [teardown] : empty connection state before a trial
fresh_table() {
	local m=$1
	if [[ $m != kernel4nat ]]; then
		stop_nat64 "$m"
		ct_flush "$m"
		start_nat64 "$m" "${2:-}" || return 1
	else
		ct_flush "$m"
		wait_path "$m" || return 1
	fi
}

trial() { # trial MODE RATE -> 0 pass / 1 loss ; logs it
	local m=$1 rate=$2 lost tol
	fresh_table "$m" || return 2
	gen "$m" "$CONN_FLOWS" "$rate" || return 2
	lost=$((GEN_SENT - GEN_RECV))
	tol=$(awk -v n="$GEN_SENT" -v f="$CONN_LOSS" 'BEGIN{printf "%d", n*f}')
	log "    trial $m rate ${rate:-max}: sent $GEN_SENT at $GEN_RATE/s, received $GEN_RECV, lost $lost"
	((lost <= tol))
}

run_connrate() { # binary search for the highest loss-free new-flow rate
	local m=$1 off=$2 rep=$3 lo=0 hi gmax mid k rc bound=eq trials=0
	if ! alive "$m"; then fail_row "$m" "$off" connrate "$rep" flows/s; return; fi
	cpu_begin "$m"
	rc=0; trial "$m" 0 || rc=$?
	trials=1
	if ((rc == 2)); then fail_row "$m" "$off" connrate "$rep" flows/s "trial setup failed"; return; fi
	gmax=$GEN_RATE
	if ((rc == 0)); then
		lo=$gmax bound=ge
	else
		hi=$gmax
		for ((k = 0; k < CONN_ITER; k++)); do
			mid=$(((lo + hi) / 2))
			((mid > 0)) || break
			rc=0; trial "$m" "$mid" || rc=$?
			trials=$((trials + 1))
			((rc == 2)) && { fail_row "$m" "$off" connrate "$rep" flows/s "trial setup failed"; return; }
			if ((rc == 0)); then
				# the generator may fall short of the rate asked for
				lo=$((GEN_RATE < mid ? GEN_RATE : mid))
			else
				hi=$mid
			fi
		done
	fi
	cpu_end
	row "$m" "$off" connrate "$rep" 1 "$lo" flows/s NA NA NA NA NA "$CPU_FIELDS" \
		"gen_max=$gmax;bound=$bound;trials=$trials;flows=$CONN_FLOWS;hi=${hi:-NA}" ""
	CONNRATE[$m]="${CONNRATE[$m]:-} $lo"
	log "  $m/$off connrate #$rep: $([[ $bound == ge ]] && echo '>= ')$lo flows/s (generator max $gmax, $trials trials)"
}

run_conncost() { # whole-machine CPU per new flow at a fixed rate
	local m=$1 off=$2 rep=$3 lost us loss
	if ! alive "$m"; then fail_row "$m" "$off" conncost "$rep" us/flow; return; fi
	fresh_table "$m" || { fail_row "$m" "$off" conncost "$rep" us/flow "trial setup failed"; return; }
	cpu_begin "$m"
	gen "$m" "$CONNCOST_FLOWS" "$CONNCOST_RATE" || { fail_row "$m" "$off" conncost "$rep" us/flow "flowgen failed"; return; }
	cpu_end
	lost=$((GEN_SENT - GEN_RECV))
	# CPU_FIELDS: xlat,host_busy (% of one core),sirq,other,wall_s
	us=$(awk -v c="$CPU_FIELDS" -v n="$GEN_SENT" 'BEGIN { split(c, f, ","); printf "%.2f", f[2] / 100 * f[5] / (n > 0 ? n : 1) * 1e6 }')
	loss=$(awk -v l="$lost" -v n="$GEN_SENT" 'BEGIN { printf "%.2f", (n > 0 ? l / n * 100 : 0) }')
	row "$m" "$off" conncost "$rep" 1 "$us" us/flow NA NA "$GEN_RATE" NA "$loss" "$CPU_FIELDS" \
		"flows=$GEN_SENT;rate=$GEN_RATE;lost=$lost" ""
	log "  $m/$off conncost #$rep: $us core-us/flow ($GEN_SENT flows at $GEN_RATE/s, lost $lost, cpu $CPU_FIELDS)"
}

run_capacity() {
	local m=$1 off=$2 rep=$3 rss0=NA rss1=NA held ct0 ct1 s0 s1 ctmax ex rate
	if ! alive "$m"; then fail_row "$m" "$off" capacity "$rep" flows; return; fi
	fresh_table "$m" || { fail_row "$m" "$off" capacity "$rep" flows; return; }
	[[ $m == kernel4nat ]] || rss0=$(vm_rss_kib "${XPID[$m]}")
	ct0=$(ct_count "$m") s0=$(ct_slab_bytes)
	rate=$CAP_RATE
	if [[ $rate == auto ]]; then
		# RFC 9693: fill the table below the maximum connection establishment
		# rate: 80 % of this run's median for the mode, else 50000/s.
		rate=$(tr ' ' '\n' <<<"${CONNRATE[$m]:-}" | sed '/^$/d' | sort -n |
			awk '{v[NR]=$1} END {if (NR) printf "%d", 0.8 * v[int((NR+1)/2)]; else print 50000}')
		((rate > 0)) || rate=50000
	fi
	cpu_begin "$m"
	gen "$m" "$CAP_FLOWS" "$rate" || { fail_row "$m" "$off" capacity "$rep" flows "flowgen failed"; return; }
	cpu_end
	sleep 0.5
	ct1=$(ct_count "$m") s1=$(ct_slab_bytes)
	ctmax=$(nsx "${NS_X[$m]}" cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo NA)
	if is_daemon "$m"; then
		held=$(nat64_stats "$m" sessions_udp)
	else
		held=$((ct1 - ct0))
	fi
	ex="sent=$GEN_SENT;recv=$GEN_RECV;gen_rate=$GEN_RATE;ct_count=$((ct1 - ct0))"
	if [[ $m == kernel4nat ]] || is_knat64 "$m"; then
		ex+=";ct_max=$ctmax;ct_mib=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.1f", (b-a)/1048576}')"
	fi
	if [[ $m != kernel4nat ]]; then
		rss1=$(vm_rss_kib "${XPID[$m]}")
		ex+=";rss_mib=$(awk -v v="$rss1" 'BEGIN{printf "%.1f", v/1024}');rss_delta_mib=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN{printf "%.1f", (b-a)/1024}')"
		if is_daemon "$m" && [[ $held =~ ^[0-9]+$ && $held -gt 0 ]]; then
			ex+=";bytes_per_flow=$(awk -v a="$rss0" -v b="$rss1" -v n="$held" 'BEGIN{printf "%.0f", (b-a)*1024/n}')"
		else
			ex+=";bytes_per_flow=NA"
		fi
		is_knat64 "$m" && ex+=";leases=$(nat64_stats "$m" kernel_leases)"
	fi
	row "$m" "$off" capacity "$rep" 1 "$held" flows NA NA NA NA NA "$CPU_FIELDS" "$ex" ""
	log "  $m/$off capacity: $held flows held ($GEN_RECV of $GEN_SENT received at $GEN_RATE/s); RSS ${rss0}->${rss1} KiB; conntrack +$((ct1 - ct0))"
	# leave an empty table behind
	fresh_table "$m" || true
}

run_teardown() {
	local m=$1 off=$2 rep=$3 base peak c t_full t_zero t_end now old deadline n
	if ! alive "$m"; then fail_row "$m" "$off" teardown "$rep" flows/s; return; fi
	count_fn() { if is_daemon "$m"; then nat64_stats "$m" sessions_udp; else ct_count "$m"; fi; }
	old=$(nsx "${NS_X[$m]}" sysctl -n net.netfilter.nf_conntrack_udp_timeout 2>/dev/null || echo 30)
	if [[ $m == kernel4nat ]] || is_knat64 "$m"; then
		nsx "${NS_X[$m]}" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$TD_TIMEOUT"
	fi
	fresh_table "$m" teardown || { fail_row "$m" "$off" teardown "$rep" flows/s; return; }
	base=$(count_fn)
	is_daemon "$m" && base=0
	gen "$m" "$TD_FLOWS" "$TD_RATE" || { fail_row "$m" "$off" teardown "$rep" flows/s "flowgen failed"; return; }
	peak=$(count_fn)
	t_full=$(date +%s.%N) t_zero=
	deadline=$((SECONDS + TD_REAP + TD_TIMEOUT + 90))
	while ((SECONDS < deadline)); do
		now=$(date +%s.%N)
		c=$(count_fn)
		[[ $c =~ ^[0-9]+$ ]] || break
		if ((c >= peak)); then t_full=$now; fi
		if ((c <= base)); then t_zero=$now; break; fi
		sleep 0.1
	done
	nsx "${NS_X[$m]}" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$old" 2>/dev/null || true
	n=$((peak - base))
	if [[ -z $t_zero ]] || ((n <= 0)); then
		row "$m" "$off" teardown "$rep" 0 NA flows/s NA NA NA NA NA "NA,NA,NA,NA,NA" "flows=$n" "table did not empty (count $c of $peak)"
		log "  $m/$off teardown: table did not empty (count $c, peak $peak)"
	else
		local d r
		d=$(awk -v a="$t_full" -v b="$t_zero" 'BEGIN{printf "%.2f", b-a}')
		r=$(awk -v n="$n" -v d="$d" 'BEGIN{printf "%.0f", n/(d>0?d:0.01)}')
		row "$m" "$off" teardown "$rep" 1 "$r" flows/s NA NA NA NA NA "NA,NA,NA,NA,$d" "flows=$n;drain_s=$d;bound=ge;timeout=$TD_TIMEOUT" ""
		log "  $m/$off teardown: $n flows freed in <= $d s: >= $r flows/s"
	fi
	# back to the normal configuration and an empty table
	fresh_table "$m" || true
}

# ------------------------------------------------------------------- main ---
log "run $RUN_ID: modes [$MODES] offload [$OFFLOAD] tests [$TESTS] duration ${DURATION}s reps $REPS senders $SENDERS tcp-procs $TCP_PROCS; loadavg $(cut -d' ' -f1-3 /proc/loadavg); raw CSV $CSV"
for m in $MODES; do
	setup_topo "$m"
	start_servers "$m"
	if [[ $m == kernel4nat ]]; then
		wait_path "$m" || log "kernel4nat: ${FAILED[$m]}"
	else
		start_nat64 "$m" || log "$m: FAILED: ${FAILED[$m]}"
	fi
done

TP_TESTS=() ST_TESTS=()
for t in $TESTS; do
	case $t in tcp* | udp*) TP_TESTS+=("$t") ;; *) ST_TESTS+=("$t") ;; esac
done

for off in $OFFLOAD; do
	set_offload "$off"
	log "== veth offloads $off"
	if ((${#TP_TESTS[@]})); then
		for ((rep = 1; rep <= REPS; rep++)); do
			for t in "${TP_TESTS[@]}"; do
				for m in $MODES; do
					run_iperf "$m" "$off" "$t" "$rep"
					sleep 1
				done
			done
		done
	fi
	if [[ $off == "$STATEFUL_OFFLOAD" ]]; then
		for t in "${ST_TESTS[@]}"; do
			case $t in
			connrate | conncost)
				# Modes take turns within each repetition, as in the
				# throughput tests: drift on a shared machine hits all.
				for ((rep = 1; rep <= REPS; rep++)); do
					for m in $MODES; do "run_$t" "$m" "$off" "$rep"; done
				done
				;;
			*) for m in $MODES; do "run_$t" "$m" "$off" 1; done ;;
			esac
		done
	fi
done

for m in $MODES; do
	[[ -n ${FAILED[$m]:-} ]] && log "$m FAILED: ${FAILED[$m]}"
done
log "raw results: $CSV"
echo
python3 "$PY" report <(awk -F, -v r="$RUN_ID" 'NR == 1 || $1 == r' "$CSV")
