"""Is a stored record still what the current code and data would compute? (no torch)

Design: a job's key names the experiment (resolved recipe or evaluation, dataset names, seed);
it does not change when code or files change. Each record carries the fingerprint of what
produced it (``repro.fingerprint``: code, libraries, data files) and, for an evaluation, the
``run_id`` of the pretraining run whose encoders it evaluated. A record is *fresh* when its
fingerprint equals the one computed now and, for an evaluation, its pretraining record is fresh
and is the run it evaluated. Keeping the key stable lets a table show a stale number next to
the reason and the commit that made it, and lets ``repro launch`` recompute exactly the stale
cells (``--keep-stale`` keeps them).

A dataset that is not on this machine cannot be fingerprinted: its part of the check is
skipped ("unchecked"), never failed, so a table renders on a laptop without the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repro import fingerprint as FP
from repro import store


def job_data_refs(kind: str, payload: dict) -> list[dict]:
    if kind == "pretrain":
        return [payload["recipe"]["data"]]
    return [payload["eval"]["train"], payload["eval"]["test"]]


def job_fingerprint(kind: str, payload: dict, data: dict[str, str | None] | None = None) -> dict:
    """The fingerprint a job of ``kind`` with ``payload`` gets from the code and data now.

    ``data``: precomputed ``{data key: digest}`` (computed here when None).
    """
    refs = job_data_refs(kind, payload)
    if data is None:
        data = FP.data_fingerprints(refs)
    if kind == "pretrain":
        code = FP.pretrain_code(payload["recipe"])
    else:
        code = FP.eval_code(payload["eval"], payload["recipe"])
    return {**code, "libs": FP.library_versions(),
            "data": {FP.data_key(r): data.get(FP.data_key(r)) for r in refs}}


def _diff(name: str, old: dict, new: dict) -> list[str]:
    return [f"{name} {k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


def fingerprint_reasons(stored: dict | None, now: dict) -> list[str]:
    """Why ``stored`` (a record's fingerprint) differs from ``now``; [] when it does not."""
    if not stored:
        return ["made before records carried fingerprints"]
    reasons = []
    if stored.get("code") != now["code"]:
        old, new = stored.get("modules", {}), now["modules"]
        changed = sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))
        reasons.append("code changed: " + (", ".join(changed[:4])
                                           + (f" (+{len(changed) - 4} more)"
                                              if len(changed) > 4 else "")
                                           if changed else "module list"))
    reasons += _diff("library", stored.get("libs", {}), now["libs"])
    for ref, digest in now["data"].items():
        old = stored.get("data", {}).get(ref)
        if digest is not None and old != digest:  # None: not on this machine, unchecked
            reasons.append(f"data changed: {ref} files differ from those it was computed on")
    return reasons


@dataclass
class Verdict:
    fresh: bool
    reasons: list[str] = field(default_factory=list)


class Judge:
    """Judges the records of a list of jobs (pretraining first) against the code and data now.

    Data fingerprints are computed once per dataset split; pass ``check_data=False`` to skip
    them (then only code and libraries are compared).
    """

    def __init__(self, jobs, records: dict[str, dict], *, check_data: bool = True):
        self.jobs = {j.key: j for j in jobs}
        self.records = records
        refs = {FP.data_key(r): r for j in jobs for r in job_data_refs(j.kind, j.payload)}
        self.data = (FP.data_fingerprints(list(refs.values())) if check_data
                     else {k: None for k in refs})
        self.unchecked = sorted(k for k, v in self.data.items() if v is None)
        self._verdicts: dict[str, Verdict] = {}

    def now(self, job) -> dict:
        return job_fingerprint(job.kind, job.payload, self.data)

    def verdict(self, key: str) -> Verdict | None:
        """None when the job has no record."""
        if key in self._verdicts:
            return self._verdicts[key]
        rec = self.records.get(key)
        if rec is None:
            return None
        job = self.jobs[key]
        reasons = fingerprint_reasons(rec.get("fingerprint"), self.now(job))
        if job.kind == "eval":
            reasons += self._pretrain_reasons(job, rec)
        self._verdicts[key] = Verdict(not reasons, reasons)
        return self._verdicts[key]

    def _pretrain_reasons(self, job, rec: dict) -> list[str]:
        pre_key = job.deps[0]
        pre = self.records.get(pre_key)
        if pre is None:
            return [f"its pretraining {pre_key[:8]} has no record"]
        if not self.verdict(pre_key).fresh:
            return [f"its pretraining {pre_key[:8]} is stale"]
        made_from = (rec.get("fingerprint") or {}).get("pretrain_run")
        if made_from != pre.get("run_id"):
            return [f"its pretraining {pre_key[:8]} was recomputed since"]
        return []

    def stale(self) -> dict[str, list[str]]:
        """{key: reasons} of every stored record that is stale."""
        out = {}
        for key in self.jobs:
            v = self.verdict(key)
            if v is not None and not v.fresh:
                out[key] = v.reasons
        return out


def load_records(jobs, store_dir=None) -> dict[str, dict]:
    return {j.key: r for j in jobs if (r := store.get(j.key, store_dir)) is not None}
