"""The dry-run cost estimate (repro/launch/cost.py) against the stored records of the CPU scales.

Reads every stored record of each CPU scale (smoke, real, digits; results/store, or
$REPRO_STORE: JSON only, no
torch, a second or so) and prints, per pretraining method and per evaluation protocol, the
estimated and the measured CPU minutes (``duration_s``) and their ratio. A ratio far from 1
means the throughput table needs a new row or a new figure (its sources are in cost.py).
Caveats: the CPU detection rows are fitted to these same records; evaluations that found
their features cached by an earlier evaluation of the same run measure below the estimate,
which counts the extraction for each.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from repro import store
from repro.launch import cost as C

SCALES = ("smoke", "real", "digits")


def rows(records: dict[str, dict], scale: str) -> tuple[dict, dict, list[str]]:
    """{name: [n, estimated s, measured s]} for pretraining methods and evaluation protocols,
    and the records that could not be estimated."""
    pre, evs, unknown = defaultdict(lambda: [0, 0.0, 0.0]), defaultdict(lambda: [0, 0.0, 0.0]), []
    for rec in records.values():
        if rec.get("context", {}).get("scale") != scale or "duration_s" not in rec:
            continue
        sources = rec.get("data_sources", {})
        if rec["kind"] == "pretrain":
            name, est = rec["recipe"]["method"], C.estimate_pretrain(rec["recipe"], {}, sources)
            acc = pre
        else:
            parent = records.get(rec.get("pretrain_key"))
            if parent is None:
                unknown.append(f"{rec['label']}: its pretraining record is not stored")
                continue
            name = rec["eval"]["protocol"]
            est = C.estimate_eval(rec["eval"], parent["recipe"], {}, sources)
            acc = evs
        if not est.known:
            unknown.append(f"{rec['label']}: {est.why}")
            continue
        acc[name][0] += 1
        acc[name][1] += est.seconds
        acc[name][2] += rec["duration_s"]
    return pre, evs, unknown


def table(title: str, data: dict) -> list[str]:
    out = [f"{title:24s} {'jobs':>5s} {'estimated CPU-min':>18s} {'measured CPU-min':>17s} "
           f"{'est/measured':>13s}"]
    for name, (n, est, meas) in sorted(data.items()):
        out.append(f"{name:24s} {n:5d} {est / 60:18.2f} {meas / 60:17.2f} {est / meas:13.2f}")
    n, est, meas = (sum(v[i] for v in data.values()) for i in range(3))
    if n:
        out.append(f"{'all':24s} {n:5d} {est / 60:18.2f} {meas / 60:17.2f} {est / meas:13.2f}")
    return out


if __name__ == "__main__":
    records = {r["key"]: r for r in store.all_records()}
    print(f"{len(records)} records in {store.store_root()}; 1 CPU per job")
    worst = {}
    for scale in SCALES:
        pre, evs, unknown = rows(records, scale)
        if not pre:
            print(f"\nscale {scale}: no stored pretraining records")
            continue
        print(f"\nscale {scale}")
        print("\n".join(table("pretraining method", pre)))
        print()
        print("\n".join(table("evaluation protocol", evs)))
        for line in unknown:
            print(f"not estimated: {line}")
        # methods whose jobs take under a minute (the untrained baselines) measure the fixed
        # costs (start-up, reading and fingerprinting real data), which the model leaves out
        judged = [(e, m) for n, e, m in pre.values() if m / n >= 60]
        worst[scale] = max(max(e / m, m / e) for e, m in judged)
    if not worst:
        sys.exit(f"no stored pretraining records of {', '.join(SCALES)} in {store.store_root()}")
    for scale, w in worst.items():
        print(f"{scale}: worst pretraining method (jobs of a minute or more) within a factor "
              f"{w:.2f} (target: 3)")
    if max(worst.values()) > 3:
        sys.exit("a method's estimate is off by more than 3x")
