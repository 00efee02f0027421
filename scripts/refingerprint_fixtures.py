"""Re-express the data fingerprints of records computed on synthetic fixtures after the scheme
change that identifies a fixture by its writer, not its bytes (repro/data/fingerprint.py).

    REPRO_DATA=<dir with the fixtures> python scripts/refingerprint_fixtures.py [--write]

A record's stored digest of a synthetic split is replaced by the new-scheme digest of the
fixture on disk only when (1) the record says the dataset was synthetic (``data_sources``),
(2) the fixture writer (repro/data/fixtures.py) is identical at the record's commit and now, so
the record's fixture came from the writer that made the one on disk, and (3) every record
stores the same old digest for that split (one fixture, as the old scheme saw it). Anything
else is left untouched (stale: `repro launch` recomputes it). Records gain
``refingerprinted_data: {<split>: <old digest>}``. Tables must be re-rendered afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro import store  # noqa: E402
from repro.data.fingerprint import data_fingerprint  # noqa: E402

WRITER = "repro/data/fixtures.py"


def _writer_unchanged(commit: str, memo: dict) -> bool:
    if commit not in memo:
        memo[commit] = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", commit, "--",
                                       WRITER]).returncode == 0
    return memo[commit]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    paths = sorted(store.store_root().glob("*/*.json"))
    records = {p: json.loads(p.read_text()) for p in paths}
    old = defaultdict(set)
    for rec in records.values():
        for ref, digest in rec.get("fingerprint", {}).get("data", {}).items():
            if rec.get("data_sources", {}).get(ref.split("/")[0]) == "synthetic":
                old[ref].add(digest)
    new = {ref: data_fingerprint(*ref.split("/", 1)) for ref in old}
    for ref in sorted(old):
        print(f"{ref}: stored {sorted(old[ref])} -> {new[ref]}")
    memo: dict = {}
    changed = skipped = 0
    for path, rec in records.items():
        data = rec.get("fingerprint", {}).get("data", {})
        refs = [r for r in data if rec.get("data_sources", {}).get(r.split("/")[0]) == "synthetic"]
        if not refs:
            continue
        commit = rec.get("provenance", {}).get("git", {}).get("commit")
        why = None
        if not commit or not _writer_unchanged(commit, memo):
            why = f"writer changed since {commit}"
        elif any(len(old[r]) != 1 or new[r] is None for r in refs):
            why = "several old digests for one split, or fixture not on disk"
        if why:
            skipped += 1
            print(f"skip {rec['key']} {rec.get('label')}: {why}")
            continue
        rec.setdefault("refingerprinted_data", {}).update({r: data[r] for r in refs})
        for r in refs:
            data[r] = new[r]
        changed += 1
        if args.write:
            store.put(rec)  # atomic, the store's own format
    print(f"{changed} record(s) re-expressed, {skipped} skipped"
          + ("" if args.write else " (dry run: --write to write)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
