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
  [sha256sum]=coreutils
  [systemd-analyze]=systemd
  [unbound]=unbound
  [unbound-checkconf]=unbound
  [rdisc6]=ndisc6
  [dig]=bind9-dnsutils
  [getent]=libc-bin
)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 && continue
  [[ " ${missing[*]} " == *" ${NEED[$cmd]} "* ]] || missing+=("${NEED[$cmd]}")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # unbound is here for the DNS64 test, which runs its own instances inside
  # network namespaces; the system resolver service its package starts (on
  # a host running systemd) is not wanted, so a fresh install turns it off.
  if [[ " ${missing[*]} " == *" unbound "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now unbound.service >/dev/null 2>&1 || true
  fi
fi

# TUN device node (present on normal hosts; some containers lack it).
if [ ! -c /dev/net/tun ]; then
  mkdir -p /dev/net
  mknod /dev/net/tun c 10 200
  chmod 0666 /dev/net/tun
fi
