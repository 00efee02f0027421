"""A fake Slurm on PATH: ``sbatch`` records what was submitted, ``sacct`` reports the states a
test chose, ``scancel``/``scontrol`` record their calls, ``srun`` only exists (submitit looks
for it). State lives in ``$FAKE_SLURM_DIR``; nothing runs."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

SBATCH = r'''
import json, os, re, sys
from pathlib import Path

import pytest
state = Path(os.environ["FAKE_SLURM_DIR"])
script = Path(sys.argv[-1]).read_text()
params = {}
for line in script.splitlines():
    m = re.match(r"#SBATCH --([\w-]+)(?:=(.*))?$", line)
    if m:
        value = m.group(2)
        params[m.group(1)] = True if value is None else value.strip("'")
counter = state / "next_id"
job_id = int(counter.read_text()) if counter.exists() else 1000
refuse = state / "refuse_from_id"  # a test's way to make sbatch refuse from a job id on
if refuse.exists() and job_id >= int(refuse.read_text()):
    print("sbatch: error: Memory specification can not be satisfied", file=sys.stderr)
    print("sbatch: error: Batch job submission failed: Requested node configuration is not "
          "available", file=sys.stderr)
    sys.exit(1)
counter.write_text(str(job_id + 1))
with (state / "submissions.jsonl").open("a") as f:
    f.write(json.dumps({"job_id": str(job_id), "params": params, "script": script}) + "\n")
print(f"Submitted batch job {job_id}")
'''

SACCT = r'''
import json, os, sys
from pathlib import Path

import pytest
state = Path(os.environ["FAKE_SLURM_DIR"])
args = sys.argv[1:]
asked = {args[i + 1] for i, a in enumerate(args) if a == "-j"}
with (state / "sacct_calls.jsonl").open("a") as f:
    f.write(json.dumps(args) + "\n")
states = json.loads((state / "states.json").read_text()) if (state / "states.json").exists() else {}
subs = [json.loads(l) for l in (state / "submissions.jsonl").read_text().splitlines()] \
    if (state / "submissions.jsonl").exists() else []
print("JobID|State")
for sub in subs:
    jid = sub["job_id"]
    if jid not in asked:
        continue
    array = sub["params"].get("array")
    if array is None:
        st = states.get(jid, "PENDING")
        if st is not None:
            print(f"{jid}|{st}")
        continue
    n = int(array.split("%")[0].split("-")[1]) + 1
    tasks = [f"{jid}_{i}" for i in range(n)]
    if not any(t in states for t in tasks) and states.get(jid, "PENDING") is not None:
        print(f"{jid}_[{array}]|{states.get(jid, 'PENDING')}")  # how sacct shows pending arrays
        continue
    for t in tasks:
        st = states.get(t, "PENDING")
        if st is not None:
            print(f"{t}|{st}")
            print(f"{t}.batch|{st}")
'''

RECORD = r'''
import json, os, sys
from pathlib import Path

import pytest
state = Path(os.environ["FAKE_SLURM_DIR"])
with (state / (os.path.basename(sys.argv[0]) + ".jsonl")).open("a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
'''


class FakeSlurm:
    def __init__(self, root: Path):
        self.state = root / "state"
        self.bin = root / "bin"
        self.state.mkdir(parents=True)
        self.bin.mkdir(parents=True)
        for name, body in (("sbatch", SBATCH), ("sacct", SACCT), ("scancel", RECORD),
                           ("scontrol", RECORD), ("srun", RECORD)):
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{body}")
            path.chmod(path.stat().st_mode | stat.S_IEXEC)

    def env(self) -> dict:
        return {"FAKE_SLURM_DIR": str(self.state),
                "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}

    def submissions(self) -> list[dict]:
        path = self.state / "submissions.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def set_states(self, states: dict) -> None:
        """{job id or ``<array>_<i>``: Slurm state, or None for "sacct has no trace"}."""
        path = self.state / "states.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **states}))

    def calls(self, name: str) -> list[list[str]]:
        path = self.state / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def fake_slurm(isolated, monkeypatch):
    fake = FakeSlurm(isolated / "fake_slurm")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    return fake
