#!/usr/bin/env bash
# Installs what nat64's build, tests, demo and benchmarks need on a fresh
# Debian machine (run as root). Idempotent: does nothing when all is present.
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [ip]=iproute2
  [nft]=nftables
  [iperf3]=iperf3
  [curl]=curl
  [tcpdump]=tcpdump
  [ping]=iputils-ping
  [tracepath]=iputils-tracepath
  [traceroute]=traceroute
  [jq]=jq
  [python3]=python3
  [ethtool]=ethtool
  [socat]=socat
  [conntrack]=conntrack
  [conntrackd]=conntrackd
  [keepalived]=keepalived
  [sha256sum]=coreutils
  [systemd-analyze]=systemd
  [unbound]=unbound
  [unbound-checkconf]=unbound
  [rdisc6]=ndisc6
  [dig]=bind9-dnsutils
  [getent]=libc-bin
  [bird]=bird2
  [vtysh]=frr
  [clang]=clang
)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 && continue
  [[ " ${missing[*]} " == *" ${NEED[$cmd]} "* ]] || missing+=("${NEED[$cmd]}")
done
# Headers rather than commands: the BPF fast path's build (crates/nat64-bpf).
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # These are test tools: no package may start a service while installing
  # (unbound would start a resolver on the host, keepalived and conntrackd
  # would run VRRP and conntrack sync there, bird and frr routing daemons;
  # the DNS64 and HA tests run their own instances inside network
  # namespaces, and the BGP configs are only parsed). policy-rc.d exit 101 is
  # Debian's "do not start" (invoke-rc.d(8)); one already there is kept.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || exit "$rc"
  # On a host running systemd the units are also kept from starting at
  # boot (without systemd, policy-rc.d above kept them from starting now).
  if [ -d /run/systemd/system ]; then
    for pair in unbound:unbound keepalived:keepalived conntrackd:conntrackd \
                bird:bird2 frr:frr; do
      unit=${pair%%:*} pkg=${pair#*:}
      [[ " ${missing[*]} " == *" $pkg "* ]] || continue
      systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    done
  fi
fi

# TUN device node (present on normal hosts; some containers lack it).
if [ ! -c /dev/net/tun ]; then
  mkdir -p /dev/net
  mknod /dev/net/tun c 10 200
  chmod 0666 /dev/net/tun
fi
