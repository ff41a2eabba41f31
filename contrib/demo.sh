#!/usr/bin/env bash
# nat64 demo: an IPv6-only client fetches a page from an IPv4-only web server
# through nat64, on this machine, in three network namespaces:
#
#   client6 (IPv6 only)  --veth--  xlat (nat64 + TUN)  --veth--  server4 (IPv4 only)
#   2001:db8:1::2/64              2001:db8:1::1/64
#                                 198.51.100.1/24                198.51.100.2/24
#
# The client reaches the server at 2001:db8:64::198.51.100.2 (prefix
# 2001:db8:64::/96 || the server's IPv4 address); nat64 translates to IPv4
# from its pool 203.0.113.0/24. All addresses are documentation ranges and
# exist only inside the namespaces this script creates.
#
# Usage, as root: contrib/demo.sh     (KEEP=1 keeps the logs)
# Needs: root, a Debian-like system (contrib/setup.sh installs the tools),
# cargo. Cleans up on exit, however it exits: stops the processes it started
# (by PID) and deletes its namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, TUN): run it as root (su -, or sudo $0 where sudo exists)" >&2
  exit 1
fi

ID=n64demo$$
C6=${ID}c6 X=${ID}x S4=${ID}s4
WORK=$(mktemp -d /tmp/nat64-demo.XXXXXX)
PIDS=()
NSS=()

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup() {
  local rc=$? i pid
  set +e
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ((i = ${#NSS[@]} - 1; i >= 0; i--)); do
    ip netns del "${NSS[i]}" 2>/dev/null
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "demo: logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bold "1. Install missing tools (contrib/setup.sh)"
bash contrib/setup.sh

bold "2. Build nat64 (cargo build --release)"
cargo build --release -p nat64
NAT64=$PWD/target/release/nat64

bold "3. Create the namespaces: $C6 (IPv6-only), $X (translator), $S4 (IPv4-only)"
for ns in "$C6" "$X" "$S4"; do
  ip netns add "$ns"
  NSS+=("$ns")
  ip -n "$ns" link set lo up
done
in_ns "$X" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_ns "$S4" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
in_ns "$C6" sysctl -qw net.ipv6.conf.all.accept_ra=0
ip -n "$C6" link add v6c type veth peer name v6x netns "$X"
ip -n "$S4" link add v4s type veth peer name v4x netns "$X"
run ip -n "$C6" addr add 2001:db8:1::2/64 dev v6c nodad
run ip -n "$X" addr add 2001:db8:1::1/64 dev v6x nodad
run ip -n "$X" addr add 198.51.100.1/24 dev v4x
run ip -n "$S4" addr add 198.51.100.2/24 dev v4s
for l in "$C6 v6c" "$X v6x" "$X v4x" "$S4 v4s"; do
  # shellcheck disable=SC2086
  ip -n ${l% *} link set ${l#* } up
done
run ip -n "$C6" -6 route add 2001:db8:64::/96 via 2001:db8:1::1
run ip -n "$S4" route add 203.0.113.0/24 via 198.51.100.1

bold "4. Start an IPv4-only web server in $S4 (198.51.100.2:80)"
mkdir -p "$WORK/www"
cat >"$WORK/www/index.html" <<'EOF'
<html><body><h1>Hello from an IPv4-only server</h1>
<p>You are reading this over IPv6, translated by nat64.</p></body></html>
EOF
ip netns exec "$S4" python3 -m http.server 80 --bind 198.51.100.2 --directory "$WORK/www" \
  >"$WORK/http.log" 2>&1 &
PIDS+=($!)

bold "5. Start nat64 in $X with this configuration"
cat >"$WORK/nat64.toml" <<'EOF'
# the demo's embedded configuration
prefix = "2001:db8:64::/96"     # Network-Specific Prefix (RFC 6052)
pool = ["203.0.113.0/24"]       # IPv4 addresses the NAPT translates to
gateway-v4 = "192.0.2.1"        # source of nat64's own ICMP errors
napt = "daemon"
metrics = ""
control = ""

[tun]
name = "nat64"
EOF
sed 's/^/    /' "$WORK/nat64.toml"
printf '$ ip netns exec %s %s run --config nat64.toml\n' "$X" "$NAT64"
ip netns exec "$X" "$NAT64" run --config "$WORK/nat64.toml" >"$WORK/nat64.log" 2>&1 &
NAT64_PID=$!
PIDS+=("$NAT64_PID")
for _ in $(seq 100); do
  grep -q "nat64 running" "$WORK/nat64.log" && break
  kill -0 "$NAT64_PID" 2>/dev/null || { cat "$WORK/nat64.log"; echo "demo: nat64 exited" >&2; exit 1; }
  sleep 0.1
done
grep -q "nat64 running" "$WORK/nat64.log" || { cat "$WORK/nat64.log"; exit 1; }
sed 's/^/    /' "$WORK/nat64.log"
echo "routes nat64 installed in $X:"
in_ns "$X" ip -6 route show dev nat64 | sed 's/^/    /'
in_ns "$X" ip -4 route show dev nat64 | sed 's/^/    /'
for _ in $(seq 50); do
  in_ns "$S4" ss -Hltn 'sport = :80' | grep -q . && break
  sleep 0.1
done

bold "6. From the IPv6-only client: ping and fetch the page"
printf '$ ip netns exec %s ping -6 -c 3 2001:db8:64::198.51.100.2\n' "$C6"
in_ns "$C6" ping -6 -n -c 3 -i 0.3 -W 2 2001:db8:64::198.51.100.2
echo
printf '$ ip netns exec %s curl -v http://[2001:db8:64::c633:6402]/\n' "$C6"
in_ns "$C6" curl -sS -v --max-time 10 'http://[2001:db8:64::c633:6402]/' 2>&1 |
  grep -E '^(\* (Connected|Trying)|> GET|< HTTP|<html|<p>)' || true
PAGE=$(in_ns "$C6" curl -sS --max-time 10 'http://[2001:db8:64::c633:6402]/')

bold "7. What the IPv4 server saw (its access log)"
sed 's/^/    /' "$WORK/http.log"
echo "    -> the client 2001:db8:1::2 appears as a pool address from 203.0.113.0/24"

bold "8. Translator counters (kill -USR1 $NAT64_PID)"
kill -USR1 "$NAT64_PID"
sleep 0.3
grep " stats: " "$WORK/nat64.log" | tail -n 1 | sed 's/.* stats: //' | tr ' ' '\n' |
  grep -Ev '=0$' | sed 's/^/    /'

bold "Result"
if grep -q "Hello from an IPv4-only server" <<<"$PAGE"; then
  echo "OK: the IPv6-only client fetched the IPv4-only page through nat64."
  echo "Cleaning up (stopping nat64 and the server, deleting the namespaces)."
else
  echo "FAILED: the page did not arrive; nat64 log:" >&2
  cat "$WORK/nat64.log" >&2
  exit 1
fi
