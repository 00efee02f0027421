"""Re-express committed records' code fingerprints after a change of the fingerprint *scheme*.

    python scripts/refingerprint.py FROM_COMMIT [--scale smoke] [--write]

When ``repro/fingerprint.py`` changes what enters a code fingerprint (not the code the record
was computed with), every record's stored ``code`` differs from the one computed now, and
``tests/test_committed_results.py`` would call all of them stale although no number would
change. Recomputing them costs over an hour on 2 cores; this script instead proves, record by
record, that the code it was computed with is the code the new scheme describes, and only then
writes the new fingerprint:

1. the record was current at ``FROM_COMMIT``: every module hash it stores equals the hash of that
   file at ``FROM_COMMIT`` (``git show``), and its ``code`` is the digest of those hashes;
2. it lists exactly the modules the job's closure holds now;
3. the new scheme gives the same fingerprint for the files at ``FROM_COMMIT`` and for the files
   now, so whatever changed between the two is outside what the job reads.

A record that fails any check is left untouched (stale: ``repro launch`` recomputes it), and is
listed with the reason. Library versions, data fingerprints and everything else in the record
are kept; the record gains ``refingerprinted: {"from": FROM_COMMIT, "fingerprint_py": <hash of the
scheme's source>}``. Without
``--write`` nothing is written. Tables must be re-rendered afterwards (``repro table``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro import fingerprint as FP  # noqa: E402
from repro import store, tables  # noqa: E402
from repro.spec import find_specs, load_table  # noqa: E402


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True,
                          capture_output=True).stdout


@functools.lru_cache(maxsize=None)
def _show(commit: str, rel: str) -> bytes | None:
    try:
        return git("show", f"{commit}:{rel}")
    except subprocess.CalledProcessError:
        return None


def reader_at(commit: str):
    def read(path: Path) -> bytes:
        rel = str(path.resolve().relative_to(ROOT))
        data = _show(commit, rel)
        if data is None:
            raise FileNotFoundError(f"{rel} does not exist at {commit[:10]}")
        return data
    return read


def code_of(job, read=FP._read) -> dict:
    if job.kind == "pretrain":
        return FP.pretrain_code(job.payload["recipe"], read)
    return FP.eval_code(job.payload["eval"], job.payload["recipe"], read)


def check(job, rec: dict, commit: str, read_then) -> tuple[dict | None, str]:
    """(new code fingerprint, "") when the record may take it, else (None, why)."""
    stored = rec.get("fingerprint") or {}
    mods = stored.get("modules") or {}
    if not mods or FP.digest(mods) != stored.get("code"):
        return None, "its stored module hashes do not give its code digest"
    for rel, h in sorted(mods.items()):
        then = _show(commit, rel)
        if then is None or hashlib.sha256(then).hexdigest()[:12] != h:
            return None, f"not current at {commit[:10]}: {rel}"
    now = code_of(job)
    if set(now["modules"]) != set(mods):
        return None, "its module list differs from the job's closure now"
    try:
        then = code_of(job, read_then)
    except FileNotFoundError as e:
        return None, str(e)
    if then != now:
        changed = sorted(f for f in now["modules"] if now["modules"][f] != then["modules"][f])
        return None, "code it reads changed since: " + ", ".join(changed)
    return now, ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commit", help="the commit at which the records were current")
    ap.add_argument("--scale", default="smoke")
    ap.add_argument("--write", action="store_true", help="write the new fingerprints")
    args = ap.parse_args(argv)
    commit = git("rev-parse", args.commit).decode().strip()
    scheme = hashlib.sha256((ROOT / "repro" / "fingerprint.py").read_bytes()).hexdigest()[:12]
    read_then = reader_at(commit)
    seen: dict[str, tuple] = {}
    for spec in find_specs(ROOT / "experiments"):
        table = load_table(spec)
        jobs, records, _ = tables.stored_jobs(table, args.scale)
        for job in jobs:
            if job.key in records and job.key not in seen:
                seen[job.key] = (job, records[job.key])
    counts = {"current": 0, "migrated": 0, "refused": 0}
    for key, (job, rec) in sorted(seen.items()):
        if (rec.get("fingerprint") or {}).get("code") == code_of(job)["code"]:
            counts["current"] += 1
            continue
        new, why = check(job, rec, commit, read_then)
        if new is None:
            counts["refused"] += 1
            print(f"refused {key[:10]} ({job.label}): {why}")
            continue
        counts["migrated"] += 1
        if args.write:
            rec["fingerprint"].update(code=new["code"], modules=new["modules"])
            rec["refingerprinted"] = {"from": commit, "fingerprint_py": scheme}
            store.put(rec)
    verb = "rewrote" if args.write else "would rewrite"
    print(f"{len(seen)} records: {counts['current']} already current, {verb} "
          f"{counts['migrated']}, refused {counts['refused']}")
    return 1 if counts["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
