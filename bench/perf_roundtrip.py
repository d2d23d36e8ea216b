#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Round trips from kernel timestamps: pair each kvmi_event_send record
with the kvmi_reply record of the same vCPU and sequence number (and the
same thread, when the output names it: both fire on the vCPU's thread,
so VMs traced together don't mix), in the output of `perf script -F
tid,time,event,trace --ns` (bench/perf-roundtrip.sh makes it), and print
percentiles and a histogram.

    bench/perf_roundtrip.py PERF_SCRIPT_OUTPUT [--json FILE]

The time between the two records is the kernel's side of the round trip:
from the event being published (K1) to the reply being applied (K7),
without the guest's exit and re-entry.
"""
import argparse
import json
import math
import re
import sys

LINE = re.compile(r"\s(\d+\.\d+):\s+(\w+):(?:kvmi_)?(event_send|reply):?\s*(.*)$")
FIELD = {k: re.compile(r"\b%s[=: ]\s*(0x[0-9a-fA-F]+|\d+)" % k)
         for k in ("vcpu", "seq", "id", "event")}
# The thread, right before the timestamp: "comm TID [CPU] TIME:" or
# "TID TIME:" (perf script -F [comm,]tid[,cpu],time,...).
TID = re.compile(r"(?:^|\s)(\d+)(?:/\d+)?\s+(?:\[\d+\]\s+)?$")


def field(trace, name):
    m = FIELD[name].search(trace)
    if not m and name == "id":  # the event id is printed "event N" too
        m = FIELD["event"].search(trace)
    return int(m.group(1), 0) if m else None


def pct(v, p):
    k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


def roundtrips(lines):
    """Pair the records of lines: ({event id: [ns, ...]}, replies without
    their event, events without a reply)."""
    pending = {}
    rt = {}
    unmatched = 0
    for line in lines:
        m = LINE.search(line)
        if not m:
            continue
        t = float(m.group(1))
        kind, trace = m.group(3), m.group(4)
        vcpu, seq, ev = field(trace, "vcpu"), field(trace, "seq"), \
            field(trace, "id")
        if vcpu is None or seq is None:
            continue
        tm = TID.search(line[:m.start() + 1])
        key = (tm.group(1) if tm else None, vcpu, seq)
        if kind == "event_send":
            pending[key] = (t, ev)
        else:
            start = pending.pop(key, None)
            if start is None:
                unmatched += 1
                continue
            ns = round((t - start[0]) * 1e9)
            rt.setdefault(start[1] if start[1] is not None else ev,
                          []).append(ns)
    return rt, unmatched, len(pending)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--json")
    a = ap.parse_args()

    with open(a.script, errors="replace") as f:
        rt, unmatched, npending = roundtrips(f)
    if not rt:
        print("perf_roundtrip: no kvmi_event_send/kvmi_reply pair found",
              file=sys.stderr)
        return 1
    out = {}
    print("kernel-side round trip (kvmi_event_send to kvmi_reply), us")
    print("%-8s %8s %9s %9s %9s %9s %9s" % ("event", "n", "p50", "p90",
                                            "p99", "p99.9", "max"))
    for ev, v in sorted(rt.items(), key=lambda x: str(x[0])):
        v.sort()
        s = {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90),
             "p99": pct(v, 99), "p99_9": pct(v, 99.9), "max": v[-1]}
        bins = {}
        for x in v:
            b = math.floor(math.log10(max(x, 1)) * 20)
            bins[b] = bins.get(b, 0) + 1
        s["histogram"] = [[round(10 ** (b / 20)), round(10 ** ((b + 1) / 20)),
                           c] for b, c in sorted(bins.items())]
        out[str(ev)] = s
        print("%-8s %8d %9.1f %9.1f %9.1f %9.1f %9.1f" % (
            ev, s["n"], s["p50"] / 1e3, s["p90"] / 1e3, s["p99"] / 1e3,
            s["p99_9"] / 1e3, s["max"] / 1e3))
        peak = max(c for _, _, c in s["histogram"])
        for lo, hi, c in s["histogram"]:
            print("  %9.1f - %9.1f us %8d %s" % (lo / 1e3, hi / 1e3, c,
                                                "#" * max(1, 50 * c // peak)))
    if unmatched or npending:
        print("(%d replies without their event, %d events without a reply: "
              "the recording started or stopped in between)" %
              (unmatched, npending))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"unit": "ns", "by_event_id": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
