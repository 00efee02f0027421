"""Generated cluster scripts are safe: a resource value that could add a line (or a command) to
an sbatch script is refused, whether it comes from a spec, a command-line override or a direct
call of ``slurm_parameters``; a valid spec's dry-run script keeps each ``#SBATCH`` line intact."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from repro.cli import main
from repro.launch import launch
from repro.launch.resources import FIELDS, ResourceError, check_resources
from repro.launch.slurm import slurm_parameters
from repro.spec import SpecError, load_table

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"
TEXT_FIELDS = ("partition", "account", "qos", "constraint")
INJECTIONS = [
    "gpu\n#SBATCH --wrap=id", "gpu\nid", "gpu\r\nid", "gpu\x0bid", "gpu\u2028id", "gpu;id",
    "gpu && id", "$(id)", "`id`", "gpu #x", "a'b", 'a"b', "gpu\\", " gpu", "gpu\t", "",
    "x" * 300, "gpu$HOME", "gpu>out", "gpu<in", "(gpu)",
]
NUMBER_INJECTIONS = {"nodes": "1\n#SBATCH --x", "gpus_per_node": "8;id", "mem_gb": "64GB\nid",
                     "timeout_min": "60 ", "cpus_per_task": 1.0, "array_parallelism": True,
                     "signal_delay_s": "90\n#SBATCH --x"}
VALID = {"partition": "gpu,debug", "account": "proj_1.a-b", "qos": "high",
         "constraint": "a100&ib|[h100*2,v100]:x", "nodes": 2, "gpus_per_node": 8,
         "mem_gb": 0.5, "timeout_min": 2880, "cpus_per_task": 10, "array_parallelism": 4,
         "signal_delay_s": 120}


def _one_line(text: str) -> bool:
    return len(text.splitlines()) == 1 and "\n" not in text


@pytest.mark.parametrize("key", TEXT_FIELDS)
@pytest.mark.parametrize("value", INJECTIONS, ids=repr)
def test_slurm_parameters_refuse_text_injections(key, value):
    with pytest.raises(ResourceError) as err:
        slurm_parameters({key: value}, "pretrain", "repro-pre-0123abcd")
    assert _one_line(str(err.value)) and str(err.value).startswith(f"{key}: invalid value")


@pytest.mark.parametrize("key, value", NUMBER_INJECTIONS.items())
def test_slurm_parameters_refuse_non_numbers(key, value):
    with pytest.raises(ResourceError, match=f"^{key}: invalid value"):
        slurm_parameters({key: value}, "eval", "repro-eval-0123abcd")


def test_slurm_parameters_refuse_a_job_name_with_a_newline():
    with pytest.raises(ResourceError, match="^job_name: invalid value"):
        slurm_parameters({}, "pretrain", "repro\n#SBATCH --wrap=id")


def test_valid_resources_pass_unchanged():
    assert check_resources(dict(VALID)) == VALID
    assert set(VALID) == set(FIELDS)
    params = slurm_parameters(VALID, "pretrain", "repro-pre-0123abcd")
    assert (params["partition"], params["constraint"], params["mem"]) == \
        ("gpu,debug", VALID["constraint"], "512MB")


def _spec_with(tmp_path: Path, resources: dict) -> Path:
    raw = yaml.safe_load(TINY.read_text())
    raw["scales"]["smoke"]["resources"] = copy.deepcopy(resources)
    path = tmp_path / "experiments" / "pcl" / "res.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("key", TEXT_FIELDS)
def test_a_spec_with_an_injected_resource_is_refused(tmp_path, key):
    path = _spec_with(tmp_path, {"eval": {key: "gpu\n#SBATCH --wrap=id"}})
    with pytest.raises(SpecError) as err:
        load_table(path)
    message = str(err.value)
    assert _one_line(message)
    assert f"scales.smoke.resources.eval.{key}: invalid value 'gpu\\n#SBATCH --wrap=id'" \
        in message


@pytest.mark.parametrize("flag, value", [
    ("--partition", "gpu\n#SBATCH --wrap=id"), ("--account", "$(id)"), ("--qos", "a;b"),
    ("--constraint", "a b"), ("--nodes", "0"), ("--gpus-per-node", "-1"),
    ("--timeout-min", "0"), ("--cpus-per-task", "0"), ("--mem-gb", "nan"),
    ("--mem-gb", "inf"),
])
def test_command_line_overrides_are_refused_before_any_script(isolated, capsys, flag, value):
    code = main(["launch", str(TINY), "--executor", "slurm", "--dry-run", flag, value])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err.rstrip("\n"))
    assert err.startswith(f"error: {flag}: invalid value")
    assert not (isolated / "logs").exists()  # no sbatch script was written


def test_dry_run_script_of_a_valid_spec_keeps_each_sbatch_line(isolated):
    path = _spec_with(isolated, {"pretrain": {k: VALID[k] for k in
                                              ("partition", "account", "qos", "constraint",
                                               "nodes", "gpus_per_node", "mem_gb")},
                                 "eval": {"array_parallelism": 1, "timeout_min": 30}})
    out = launch(load_table(path), "smoke", "slurm", dry_run=True, log=lambda msg: None)
    scripts = [text for _, text in out["scripts"]]
    pre = [s for s in scripts if "--job-name=repro-pre-" in s]
    assert len(pre) == 4 and len(scripts) == 8  # (moco, pcl) x 2 seeds, each + an eval array
    for text in scripts:
        sbatch = [line for line in text.splitlines() if line.startswith("#SBATCH")]
        assert all(re.fullmatch(r"#SBATCH --[a-z-]+(=\S+)?", line) for line in sbatch), sbatch
        assert not any("wrap" in line for line in text.splitlines())
    for text in pre:
        lines = text.splitlines()
        for expected in ("#SBATCH --partition=gpu,debug", "#SBATCH --account=proj_1.a-b",
                         "#SBATCH --qos=high", "#SBATCH --nodes=2",
                         "#SBATCH --gpus-per-node=8", "#SBATCH --mem=512MB",
                         "#SBATCH --constraint='a100&ib|[h100*2,v100]:x'"):
            assert expected in lines, (expected, lines)
