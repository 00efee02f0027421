"""The cluster path against a real Slurm: `make test-slurm` (it runs `scripts/slurm_local.sh up`).

Skipped, with the reason, where no Slurm controller answers (a laptop); with ``CI=true`` a
missing Slurm is a failure instead. Not part of `make test` yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from repro import tables
from repro.cli import main
from repro.launch import launch, log_root
from repro.launch.status import ENDED, read_submitted, sacct_states
from repro.spec import load_table

pytestmark = pytest.mark.slurm
TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_table.yaml"
# The tiny digits table names no resources: size its jobs for a 2-CPU node.
SMALL = ["--mem-gb", "2", "--eval-mem-gb", "2", "--cpus-per-task", "1",
         "--eval-cpus-per-task", "1", "--timeout-min", "10", "--eval-timeout-min", "10"]


def _why_no_cluster() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "no sbatch/sacct on PATH: run `bash scripts/slurm_local.sh up` as root"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: is slurmctld running? (`scripts/slurm_local.sh status`)"
    if out.returncode != 0 or not ({"idle", "mixed", "allocated"} & set(out.stdout.split())):
        return f"no usable Slurm node (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


@pytest.fixture
def cluster(isolated):
    why = _why_no_cluster()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return isolated


def _wait_until_ended(job_ids: list[str], timeout_s: float = 600) -> dict[str, str]:
    deadline = time.time() + timeout_s
    while True:
        states = sacct_states(job_ids) or {}
        if all(states.get(j) in ENDED for j in job_ids):
            return states
        assert time.time() < deadline, f"jobs still not ended: {states}"
        time.sleep(3)


def test_tiny_table_end_to_end_on_a_real_slurm(cluster, capsys):
    table = load_table(TINY)
    argv = ["launch", str(TINY), "--scale", "smoke", "--executor", "slurm", *SMALL]
    assert main(argv) == 0
    submitted = read_submitted(log_root(table, "smoke"))
    assert len(submitted) == 8
    pre_ids = {e["job_id"] for e in submitted.values() if e["kind"] == "pretrain"}
    evals = [e for e in submitted.values() if e["kind"] == "eval"]
    assert len(pre_ids) == 4 and all(e["after"] in pre_ids for e in evals)

    states = _wait_until_ended([e["job_id"] for e in submitted.values()])
    assert set(states.values()) == {"COMPLETED"}, states
    capsys.readouterr()
    assert main(["status", str(TINY), "--scale", "smoke"]) == 0  # real sacct, every cell stored
    assert "8 stored (of 8 jobs)" in capsys.readouterr().out
    md = tables.render(table, "smoke")
    assert "Cells computed: 4/4" in md and " ± " in md
    again = launch(table, "smoke", "slurm", log=lambda *_: None)
    assert again["todo"] == [] and again["to_submit"] == []


def test_sbatch_refusal_on_a_real_slurm_is_one_line(cluster, capsys):
    argv = ["launch", str(TINY), "--scale", "smoke", "--executor", "slurm",
            "--mem-gb", "100000", "--cpus-per-task", "1", "--timeout-min", "10"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sbatch refused pretrain" in err
    assert "--mem-gb" in err
    assert read_submitted(log_root(load_table(TINY), "smoke")) == {}
