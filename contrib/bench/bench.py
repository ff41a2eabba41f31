#!/usr/bin/env python3
"""Helper for contrib/bench/run.sh (Python 3 standard library only).

  bench.py iperf JSON...          one iperf3 run (several files = parallel
                                  senders, summed): prints
                                  "ok gbps retrans tx_pps rx_pps loss_pct err"
  bench.py foreign ROOT PID...    CPU ticks (utime+stime) of user processes
                                  that are neither ROOT's descendants nor in
                                  the PID list: load from other workloads
  bench.py report RAW.csv         the result tables (Markdown) on stdout
"""

import csv
import json
import os
import statistics
import sys

MODES = [("kernel4nat", "kernel4nat"), ("daemon", "nat64 daemon"), ("daemon1q", "nat64 daemon, 1 queue"),
         ("fastpath", "nat64 daemon + tc-bpf fast path"),
         ("kernel", "nat64 kernel"), ("kernelfast", "nat64 kernel + tc-bpf fast path")]
THROUGHPUT = [
    ("tcp6to4_1", "TCP 6→4, 1 stream", "Gbit/s"),
    ("tcp4to6_1", "TCP 4→6, 1 stream", "Gbit/s"),
    ("tcp6to4_4", "TCP 6→4, 4 streams", "Gbit/s"),
    ("tcp4to6_4", "TCP 4→6, 4 streams", "Gbit/s"),
    ("udp6to4", "UDP 64 B 6→4", "kpps rx"),
    ("udp4to6", "UDP 64 B 4→6", "kpps rx"),
    ("udpnl6to4", "UDP 64 B 6→4, loss ≤ 2 %", "kpps rx"),
    ("udpnl4to6", "UDP 64 B 4→6, loss ≤ 2 %", "kpps rx"),
]
STATEFUL = [
    ("connrate", "max. connection establishment rate", "flows/s"),
    ("conncost", "CPU per new flow at a fixed rate, whole machine (lower is better)", "core-µs"),
    ("capacity", "connection table: flows held", "flows"),
    ("teardown", "connection tear-down rate", "flows/s"),
]


def cmd_iperf(files):
    gbps = retr = tx = rx = 0.0
    sent_pk = lost_pk = recv_pk = 0
    err = ""
    udp = False
    for f in files:
        try:
            with open(f) as fh:
                j = json.load(fh)
        except (OSError, ValueError) as e:
            err = f"{os.path.basename(f)}: {e.__class__.__name__}"
            continue
        if "error" in j:
            err = j["error"].replace(" ", "_")[:80]
            continue
        end = j.get("end", {})
        s, r = end.get("sum_sent"), end.get("sum_received")
        if not s or not r:
            err = "no_summary"
            continue
        if j.get("start", {}).get("test_start", {}).get("protocol") == "UDP":
            udp = True
            got = r["packets"] - r["lost_packets"]
            tx += s["packets"] / s["seconds"]
            rx += got / r["seconds"]
            sent_pk += r["packets"]
            lost_pk += r["lost_packets"]
            recv_pk += got
        else:
            gbps += r["bits_per_second"] / 1e9
            retr += s.get("retransmits", 0) or 0
    if err:
        print(f"0 NA NA NA NA NA {err}")
    elif udp:
        loss = 100.0 * lost_pk / sent_pk if sent_pk else 0.0
        print(f"1 NA NA {tx:.0f} {rx:.0f} {loss:.2f} -")
    else:
        print(f"1 {gbps:.3f} {retr:.0f} NA NA NA -")


def cmd_foreign(root, exclude):
    root = int(root)
    ex = {int(p) for p in exclude if p.isdigit()}
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                line = fh.read()
        except OSError:
            continue
        rest = line[line.rfind(")") + 2:].split()
        # rest[0]=state [1]=ppid ... [11]=utime [12]=stime; flags [6]
        procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[6]))
    total = 0
    for pid, (ppid, ticks, flags) in procs.items():
        if pid in ex or pid == 2 or ppid == 2 or flags & 0x00200000:  # PF_KTHREAD
            continue
        p, ours = pid, False
        for _ in range(64):
            if p == root:
                ours = True
                break
            if p not in procs or p <= 1:
                break
            p = procs[p][0]
        if not ours:
            total += ticks
    print(total)


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def value_key(test):
    """The CSV column a throughput test is compared by."""
    return "rx_pps" if test.startswith("udp") else "gbps"


def table_head(first, modes):
    """Markdown header of a results table: a column per mode, and a ratio
    column after each nat64 mode when kernel4nat is there to divide by."""
    head = [first, "unit"]
    for m, label in modes:
        head.append(label)
        if m != "kernel4nat" and any(mm[0] == "kernel4nat" for mm in modes):
            head.append("ratio")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))


def fmt(v, nd=2):
    if v is None:
        return "-"
    if abs(v) >= 100 or nd == 0:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def extra(row):
    out = {}
    for kv in (row.get("extra") or "").split(";"):
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


def cmd_report(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        print("(no results)")
        return
    meta = rows[0]
    offloads = []
    for r in rows:
        if r["offload"] not in offloads:
            offloads.append(r["offload"])
    modes = [m for m in MODES if any(r["mode"] == m[0] for r in rows)]
    groups = {}
    for r in rows:
        groups.setdefault((r["offload"], r["test"], r["mode"]), []).append(r)

    def med(rs, key):
        vals = [num(r[key]) for r in rs if r["ok"] == "1" and num(r[key]) is not None]
        return statistics.median(vals) if vals else None

    def span(rs, key):
        vals = [num(r[key]) for r in rs if r["ok"] == "1" and num(r[key]) is not None]
        return (min(vals), max(vals)) if vals else (None, None)

    reps = max(int(r["rep"]) for r in rows)
    print(f"nat64 benchmark {meta['run']} — {meta['ts']}; DURATION={meta.get('duration', '?')} s, "
          f"up to {reps} repetition(s), median (min–max). Ratios: nat64 mode ÷ kernel4nat, "
          "same offload setting, same run.\n")
    failures = []
    for off in offloads:
        tests = [t for t in THROUGHPUT if any(k[0] == off and k[1] == t[0] for k in groups)]
        if not tests:
            continue
        print(f"### Throughput, veth offloads {off}\n")
        table_head("test", modes)
        for t, label, unit in tests:
            line = [label, unit]
            base = None
            for m, _ in modes:
                rs = groups.get((off, t, m), [])
                scale = 1e-3 if t.startswith("udp") else 1.0
                key = value_key(t)
                v = med(rs, key)
                lo, hi = span(rs, key)
                if not rs:
                    cell = "-"
                elif v is None:
                    cell = "FAILED"
                    failures.extend(r for r in rs if r["ok"] != "1")
                else:
                    cell = fmt(v * scale, 0 if t.startswith("udp") else 2)
                    if lo != hi:
                        cell += f" ({fmt(lo * scale, 0 if t.startswith('udp') else 2)}–{fmt(hi * scale, 0 if t.startswith('udp') else 2)})"
                    if t.startswith("udp"):
                        cell += f", tx {fmt(med(rs, 'tx_pps') * 1e-3)}, loss {fmt(med(rs, 'loss_pct'), 1)}%"
                    nok = sum(r["ok"] == "1" for r in rs)
                    if nok != len(rs):
                        cell += f" [{nok}/{len(rs)} ok]"
                        failures.extend(r for r in rs if r["ok"] != "1")
                if m == "kernel4nat":
                    base = v
                    line.append(cell)
                else:
                    line.append(cell)
                    if any(mm[0] == "kernel4nat" for mm in modes):
                        line.append(f"{v / base:.2f}" if v is not None and base else "-")
            print("| " + " | ".join(line) + " |")
        print()
        if any(m == "daemon" for m, _ in modes) and any(m == "daemon1q" for m, _ in modes):
            print(f"Scaling, veth offloads {off}: nat64 daemon with one queue per CPU ÷ with one queue: "
                  + "; ".join(
                      f"{label} {fmt(a / b, 2)}"
                      for t, label, _ in tests
                      for key in [value_key(t)]
                      for a, b in [(med(groups.get((off, t, "daemon"), []), key),
                                    med(groups.get((off, t, "daemon1q"), []), key))]
                      if a is not None and b
                  ) + "\n")
        print(f"CPU, veth offloads {off} (medians, % of one core): translator process (utime+stime) / "
              "whole machine busy / softirq; TCP: sender retransmits; TUN drops: packets the kernel dropped "
              "because nat64 did not read its TUN in time (TX queue full); other = max CPU of processes "
              "outside the benchmark (shown when ≥ 5).\n")
        head = ["test"] + [label for _, label in modes]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for t, label, _ in tests:
            line = [label]
            for m, _ in modes:
                rs = groups.get((off, t, m), [])
                if not rs or med(rs, "host_busy") is None:
                    line.append("-")
                    continue
                xc = med(rs, "xlat_cpu")
                c = f"{fmt(xc, 0) if xc is not None else 'NA'} / {fmt(med(rs, 'host_busy'), 0)} / {fmt(med(rs, 'host_sirq'), 0)}"
                if t.startswith("tcp"):
                    c += f", retr {fmt(med(rs, 'retrans'), 0)}"
                drops = [num(extra(r).get("tun_drop")) for r in rs if r["ok"] == "1"]
                drops = [d for d in drops if d is not None]
                if drops:
                    c += f", TUN drops {fmt(statistics.median(drops), 0)}"
                oth = [num(r["other_cpu"]) for r in rs if num(r["other_cpu"]) is not None]
                if oth and max(oth) >= 5:
                    c += f", other {max(oth):.0f}"
                line.append(c)
            print("| " + " | ".join(line) + " |")
        print()

    for off in offloads:
        tests = [t for t in STATEFUL if any(k[0] == off and k[1] == t[0] for k in groups)]
        if not tests:
            continue
        print(f"### RFC 9693 stateful metrics (UDP, one packet per flow), veth offloads {off}\n")
        table_head("metric", modes)
        for t, label, unit in tests:
            line = [label, unit]
            base = None
            for m, _ in modes:
                rs = groups.get((off, t, m), [])
                v = med(rs, "value")
                if not rs:
                    cell = "-"
                elif v is None:
                    cell = "FAILED"
                    failures.extend(r for r in rs if r["ok"] != "1")
                else:
                    lo, hi = span(rs, "value")
                    oks = [r for r in rs if r["ok"] == "1"]
                    ex = extra(oks[-1])
                    nbound = sum(extra(r).get("bound") == "ge" for r in oks)
                    nd = 2 if t == "conncost" else 0
                    cell = ("≥ " if nbound == len(oks) else "") + fmt(v, nd)
                    if lo != hi:
                        cell += f" ({fmt(lo, nd)}–{fmt(hi, nd)})"
                    if t == "connrate":
                        gm = [num(extra(r).get("gen_max")) for r in oks]
                        gm = [g for g in gm if g is not None]
                        if gm:
                            cell += f", gen max {fmt(statistics.median(gm), 0)}"
                        if nbound == len(oks):
                            cell += " (sender-bound)"
                        elif nbound:
                            cell += f" ({nbound} of {len(oks)} sender-bound)"
                    elif t == "conncost":
                        cell += f" at {fmt(num(ex.get('rate')), 0)}/s"
                        lost = sum(num(extra(r).get("lost")) or 0 for r in oks)
                        if lost:
                            cell += f", {fmt(lost, 0)} lost"
                    elif t == "capacity":
                        cell += f" of {fmt(num(ex.get('sent')), 0)} sent at {fmt(num(ex.get('gen_rate')), 0)}/s"
                        if ex.get("rss_mib", "NA") != "NA":
                            cell += f"; RSS {ex['rss_mib']} MiB (+{ex.get('rss_delta_mib')} MiB"
                            if ex.get("bytes_per_flow", "NA") != "NA":
                                cell += f", {ex['bytes_per_flow']} B/flow"
                            cell += ")"
                        if ex.get("ct_mib", "NA") != "NA":
                            cell += f"; conntrack {ex.get('ct_count')} entries, slab +{ex['ct_mib']} MiB"
                        if ex.get("ct_max"):
                            cell += f" (nf_conntrack_max {ex['ct_max']})"
                    elif t == "teardown":
                        cell += f" ({ex.get('flows')} flows gone in ≤ {ex.get('drain_s')} s)"
                if m == "kernel4nat":
                    base = v
                    line.append(cell)
                else:
                    line.append(cell)
                    if any(mm[0] == "kernel4nat" for mm in modes):
                        line.append(f"{v / base:.2f}" if v is not None and base else "-")
            print("| " + " | ".join(line) + " |")
        print()
    if failures:
        print("### Failed runs\n")
        seen = set()
        for r in failures:
            k = (r["mode"], r["offload"], r["test"], r["rep"])
            if k in seen:
                continue
            seen.add(k)
            print(f"* {r['mode']} offload {r['offload']} {r['test']} rep {r['rep']}: {r['note']}")
        print()


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    c, a = sys.argv[1], sys.argv[2:]
    if c == "iperf":
        cmd_iperf(a)
    elif c == "foreign":
        cmd_foreign(a[0], a[1:])
    elif c == "report":
        cmd_report(a[0])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
