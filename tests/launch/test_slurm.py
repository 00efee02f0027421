"""The Slurm path against a fake sbatch/sacct: what is submitted, what a relaunch skips or
resubmits, and what ``repro status`` reports. Nothing is trained here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repro import jobs, store
from repro.cli import main
from repro.launch import launch, log_root
from repro.spec import load_table

CLUSTER = Path(__file__).resolve().parent / "cluster_table.yaml"
SOURCES = {"digits": "real"}


def _quiet(msg):
    pass


def _expanded(table):
    exp = jobs.expand(table, "cluster", SOURCES)
    pre = {j.payload["recipe_id"]: j for j in exp if j.kind == "pretrain"}
    evals = {(j.payload["recipe"]["method"], j.payload["eval_id"]): j
             for j in exp if j.kind == "eval"}
    return pre, evals


def _submitted(table):
    return json.loads((log_root(table, "cluster") / "submitted.json").read_text())


def test_submits_pretraining_then_eval_arrays_with_afterok(fake_slurm, capsys):
    table = load_table(CLUSTER)
    code = main(["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm",
                 "--timeout-min", "2880", "--gpus-per-node", "8", "--qos", "high"])
    assert code == 0
    out = capsys.readouterr().out
    subs = fake_slurm.submissions()
    assert len(subs) == 4  # 2 pretraining jobs + 2 arrays of 2 evaluations
    pre_subs = [s for s in subs if "array" not in s["params"]]
    arrays = [s for s in subs if "array" in s["params"]]
    assert len(pre_subs) == 2 and len(arrays) == 2
    for s in pre_subs:  # spec resources, with the command-line overrides
        p = s["params"]
        assert (p["nodes"], p["gpus-per-node"], p["ntasks-per-node"]) == ("2", "8", "8")
        assert (p["time"], p["partition"], p["qos"], p["mem"]) == ("2880", "big", "high", "200GB")
        assert p["requeue"] is True and p["signal"].startswith("USR2@")
        assert "dependency" not in p
    pre_ids = {s["job_id"] for s in pre_subs}
    for s in arrays:
        p = s["params"]
        assert p["array"] == "0-1%1"  # two evaluations, array_parallelism 1
        assert p["dependency"].startswith("afterok:") and p["dependency"][8:] in pre_ids
        # evaluations keep their own resources; only shared overrides (qos) reach them
        assert (p["gpus-per-node"], p["ntasks-per-node"], p["time"]) == ("1", "1", "60")
        assert p["qos"] == "high" and "partition" not in p and p["mem"] == "32GB"
    assert {a["params"]["dependency"][8:] for a in arrays} == pre_ids

    pre, evals = _expanded(table)
    recorded = _submitted(table)
    assert set(recorded) == {j.key for j in [*pre.values(), *evals.values()]}
    for (method, _), job in evals.items():
        entry = recorded[job.key]
        assert entry["after"] == recorded[pre[method].key]["job_id"]
        assert entry["job_id"].split("_")[0] in {a["job_id"] for a in arrays}
    # submitit pickled a runnable call for every job, and the job ids and logs are printed
    folder = log_root(table, "cluster")
    for entry in recorded.values():
        assert (folder / f"{entry['job_id']}_submitted.pkl").exists()
    assert all(s["job_id"] in out for s in subs) and str(folder) in out
    assert not list(store.store_root().glob("*/*.json"))  # nothing ran


def _fresh_pretraining_record(job) -> None:
    """A record (and run folder) for ``job`` as if it had just been computed here."""
    from repro.freshness import job_fingerprint

    store.put({"key": job.key, "kind": "pretrain", "metrics": {}, "run_id": "r1",
               "fingerprint": job_fingerprint("pretrain", job.payload)})
    (Path("runs") / job.key).mkdir(parents=True)
    (Path("runs") / job.key / "encoders.pt").write_text("")
    (Path("runs") / job.key / "run.json").write_text('{"run_id": "r1"}')


def test_relaunch_skips_held_jobs_and_resubmits_failed_ones(fake_slurm, capsys):
    table = load_table(CLUSTER)
    launch(table, "cluster", "slurm", log=_quiet)
    pre, evals = _expanded(table)
    first = _submitted(table)
    ids = {k: v["job_id"] for k, v in first.items()}
    moco_probe, moco_knn = evals["moco", "probe"], evals["moco", "knn"]
    fake_slurm.set_states({
        ids[pre["moco"].key]: "COMPLETED",  # moco trained...
        ids[moco_probe.key]: "RUNNING",  # ...its probe is running
        ids[moco_knn.key]: "OUT_OF_MEMORY",  # ...and its kNN failed
        ids[pre["pcl"].key]: "FAILED",  # pcl failed: its evaluations can never start
    })
    _fresh_pretraining_record(pre["moco"])
    knn_log = Path(first[moco_knn.key]["stderr"])
    knn_log.parent.mkdir(parents=True, exist_ok=True)
    knn_log.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                       "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 9 TiB\n"
                       "srun: error: node1: task 0: Out Of Memory\n")

    assert main(["status", str(CLUSTER), "--scale", "cluster"]) == 1  # failures exist
    status = capsys.readouterr().out
    lines = {tuple(c.strip() for c in line.split("|")[1:4]): line
             for line in status.splitlines() if line.startswith("| ")}
    assert "running" in lines["MoCo", "probe", "0"]
    assert "failed" in lines["MoCo", "knn", "0"] and first[moco_knn.key]["stderr"] in \
        lines["MoCo", "knn", "0"]
    assert "_ArrayMemoryError: Unable to allocate 9 TiB" in lines["MoCo", "knn", "0"]
    for col in ("probe", "knn"):  # waiting on a failed pretraining: blocked, with its log
        row = lines["PCL", col, "0"]
        assert "blocked" in row and first[pre["pcl"].key]["stderr"] in row
    assert "2 blocked, 2 failed, 1 running, 1 stored" in status

    log = []
    out = launch(table, "cluster", "slurm", log=log.append)
    assert any(line.startswith(f"resubmit {moco_knn.label}") and "9 TiB" in line
               for line in log), log
    resubmitted = {j.key for j in out["to_submit"]}
    assert resubmitted == {moco_knn.key, pre["pcl"].key, evals["pcl", "probe"].key,
                           evals["pcl", "knn"].key}
    assert moco_probe.key in out["held"]  # running: never submitted twice
    # the stale evaluations waiting on the failed pretraining were cancelled
    assert sorted(fake_slurm.calls("scancel")[0]) == sorted(
        [ids[evals["pcl", "probe"].key], ids[evals["pcl", "knn"].key]])
    second = _submitted(table)
    new_pcl = second[pre["pcl"].key]["job_id"]
    assert new_pcl != ids[pre["pcl"].key]
    assert second[evals["pcl", "knn"].key]["after"] == new_pcl
    assert second[moco_knn.key]["after"] is None  # its pretraining is stored: no dependency
    assert second[moco_probe.key] == first[moco_probe.key]
    new_subs = fake_slurm.submissions()[4:]
    assert len(new_subs) == 3  # pcl pretraining, pcl's array of 2, moco's kNN alone
    deps = [(s["params"].get("array"), s["params"].get("dependency")) for s in new_subs]
    assert sorted(deps, key=str) == sorted([(None, None), (None, None),
                                            ("0-1%1", f"afterok:{new_pcl}")], key=str)

    # everything is held now: a third launch submits nothing
    third = launch(table, "cluster", "slurm", log=_quiet)
    assert third["to_submit"] == [] and len(fake_slurm.submissions()) == 7


def test_evaluations_stranded_behind_a_stored_pretraining_are_resubmitted(fake_slurm, capsys):
    """A pretraining job wrote its record, then ended FAILED in sacct (a signal after the
    record): it counts as stored, and its evaluations, which Slurm will never start (afterok),
    show as blocked; a relaunch cancels them and resubmits them with no dependency."""
    table = load_table(CLUSTER)
    launch(table, "cluster", "slurm", log=_quiet)
    pre, evals = _expanded(table)
    first = _submitted(table)
    ids = {k: v["job_id"] for k, v in first.items()}
    fake_slurm.set_states({ids[pre["moco"].key]: "FAILED", ids[pre["pcl"].key]: "RUNNING"})
    _fresh_pretraining_record(pre["moco"])

    assert main(["status", str(CLUSTER), "--scale", "cluster"]) == 1
    status = capsys.readouterr().out
    lines = {tuple(c.strip() for c in line.split("|")[1:4]): line
             for line in status.splitlines() if line.startswith("| ")}
    for col in ("probe", "knn"):
        row = lines["MoCo", col, "0"]
        assert "blocked" in row and f"Slurm job {ids[pre['moco'].key]}, which ended FAILED" \
            in row, row
        assert "pending" in lines["PCL", col, "0"]  # waits on a running job: fine
    assert "2 blocked, 2 pending, 1 running, 1 stored" in status

    out = launch(table, "cluster", "slurm", log=_quiet)
    moco_evals = {evals["moco", "probe"].key, evals["moco", "knn"].key}
    assert {j.key for j in out["to_submit"]} == moco_evals
    assert sorted(fake_slurm.calls("scancel")[0]) == sorted(ids[k] for k in moco_evals)
    second = _submitted(table)
    assert all(second[k]["after"] is None and second[k]["job_id"] != ids[k]
               for k in moco_evals)


def test_jobs_unknown_to_sacct_are_not_resubmitted_unless_asked(fake_slurm):
    table = load_table(CLUSTER)
    launch(table, "cluster", "slurm", log=_quiet)
    ids = [e["job_id"] for e in _submitted(table).values()]
    fake_slurm.set_states({i: None for i in ids} | {i.split("_")[0]: None for i in ids})
    log = []
    out = launch(table, "cluster", "slurm", log=log.append)
    assert out["to_submit"] == [] and any("--resubmit-unknown" in line for line in log)
    out = launch(table, "cluster", "slurm", log=_quiet, resubmit_unknown=True)
    assert len(out["to_submit"]) == 6


def test_dry_run_prints_scripts_and_graph_without_slurm(isolated, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("PATH", str(isolated))  # no Slurm, whatever this machine has
    assert shutil.which("srun") is None and shutil.which("sbatch") is None
    code = main(["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm",
                 "--dry-run", "--partition", "gpu"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("#!/bin/bash") == 4
    assert out.count("#SBATCH --partition=gpu") == 4
    assert out.count("#SBATCH --array=0-1%1") == 2
    assert "#SBATCH --dependency='afterok:<pretrain-1>'" in out
    assert "<pretrain-2>  pretrain pcl seed 0" in out
    unknown = " [cost unknown (no V100 throughput for resnet18_tiny)]"  # repro.launch.cost
    assert (f"array of 2 after <pretrain-1>: eval probe of moco seed 0{unknown}; "
            f"eval knn of moco seed 0{unknown}") in out
    assert not (isolated / "logs").exists()


def test_status_imports_no_torch(isolated):
    code = ("import sys; from repro.cli import main; "
            f"rc = main(['status', {str(CLUSTER)!r}, '--scale', 'cluster']); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('rc', rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=isolated)
    assert out.returncode == 0, out.stderr
    assert "6 missing (of 6 jobs)" in out.stdout and "rc 0" in out.stdout


@pytest.mark.parametrize("state,expected", [("PENDING", "pending"), ("REQUEUED", "pending"),
                                            ("RUNNING", "running"), ("TIMEOUT", "failed"),
                                            ("COMPLETED", "failed"), ("PREEMPTED", "failed")])
def test_slurm_states_map_to_cell_states(fake_slurm, state, expected):
    from repro.launch.status import table_status

    table = load_table(CLUSTER)
    launch(table, "cluster", "slurm", log=_quiet)
    pre, _ = _expanded(table)
    fake_slurm.set_states({_submitted(table)[pre["moco"].key]["job_id"]: state})
    st = table_status(table, "cluster")["statuses"][pre["moco"].key]
    assert st.state == expected  # COMPLETED without a record is a failure


@pytest.mark.parametrize("content", ["{half", "[1, 2]", '{"k": {"no": "job id"}}'])
def test_unreadable_submissions_stop_with_a_remedy_and_stay_untouched(fake_slurm, capsys,
                                                                     content):
    table = load_table(CLUSTER)
    launch(table, "cluster", "slurm", log=_quiet)
    path = log_root(table, "cluster") / "submitted.json"
    path.write_text(content)
    n_before = len(fake_slurm.submissions())
    for argv in (["status", str(CLUSTER), "--scale", "cluster"],
                 ["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm"]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(path) in err and "squeue" in err
    assert path.read_text() == content  # never overwritten: it lists jobs Slurm may hold
    assert len(fake_slurm.submissions()) == n_before  # and nothing was submitted twice


def test_refusal_midway_is_one_line_and_keeps_what_was_submitted(fake_slurm, capsys):
    table = load_table(CLUSTER)
    (fake_slurm.state / "refuse_from_id").write_text("1001")  # the 2nd submission fails
    argv = ["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: sbatch refused pretrain ")
    assert "Memory specification can not be satisfied" in err and "--mem-gb" in err
    first = _submitted(table)
    assert [e["job_id"] for e in first.values()] == ["1000"]  # recorded as it happened
    (fake_slurm.state / "refuse_from_id").unlink()
    assert main(argv) == 0
    after = _submitted(table)
    assert after[next(iter(first))] == first[next(iter(first))]  # not submitted twice
    assert len(after) == 6 and len(fake_slurm.submissions()) == 4  # 1 + (1 pre + 2 arrays)


def test_time_limit_shorter_than_the_requeue_signal_is_refused(fake_slurm, capsys):
    argv = ["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm",
            "--timeout-min", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "timeout_min" in err and "minimum is 3" in err
    assert "--signal-delay-s" in err
    assert fake_slurm.submissions() == []
    # a shorter signal lead allows a shorter limit: 2 minutes with the signal 30 s before it
    # (Slurm may send it 60 s early: 30 s of work are left at worst)
    argv = [*argv[:-1], "1", "--signal-delay-s", "30"]
    assert main(argv) == 2 and "minimum is 2" in capsys.readouterr().err
    argv = [*argv[:-3], "2", "--signal-delay-s", "30", "--eval-signal-delay-s", "20"]
    assert main(argv) == 0
    subs = fake_slurm.submissions()
    pre = [s["params"] for s in subs if "array" not in s["params"]]
    arrays = [s["params"] for s in subs if "array" in s["params"]]
    assert pre and all(p["time"] == "2" and p["signal"] == "USR2@30" for p in pre)
    assert arrays and all(p["signal"] == "USR2@20" for p in arrays)


def test_evaluation_resources_are_overridden_by_the_eval_flags_only(fake_slurm):
    argv = ["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm",
            "--mem-gb", "100", "--eval-mem-gb", "4", "--eval-timeout-min", "30",
            "--eval-cpus-per-task", "2", "--eval-gpus-per-node", "0",
            "--eval-array-parallelism", "2"]
    assert main(argv) == 0
    subs = fake_slurm.submissions()
    arrays = [s["params"] for s in subs if "array" in s["params"]]
    pres = [s["params"] for s in subs if "array" not in s["params"]]
    assert len(arrays) == 2 and len(pres) == 2
    for p in arrays:
        assert (p["mem"], p["time"], p["cpus-per-task"], p["array"]) == ("4GB", "30", "2",
                                                                          "0-1%2")
        assert "gpus-per-node" not in p
    for p in pres:  # the spec's pretraining resources, with --mem-gb only
        assert (p["mem"], p["time"], p["gpus-per-node"]) == ("100GB", "600", "4")


def test_eval_flags_are_checked_like_the_spec(fake_slurm, capsys):
    argv = ["launch", str(CLUSTER), "--scale", "cluster", "--executor", "slurm",
            "--eval-mem-gb", "-1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: --eval-mem-gb: ")
    assert fake_slurm.submissions() == []
