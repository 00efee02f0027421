"""Every user error on the command line is one ``error: ...`` line on stderr and exit code 2,
never a traceback: the real ``repro`` entry point, run in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "fixtures" / "tiny_table.yaml")
PCL3 = str(ROOT / "experiments" / "pcl" / "table3.yaml")
SCRIPT = Path(sys.executable).parent / "repro"  # the console script pip installed


def _command() -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT)]
    return [sys.executable, "-c", "import sys; from repro.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Inputs for the bad invocations: npz files, a directory, a broken spec, a plain file."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for name, dim in (("good.npz", 4), ("wide.npz", 5)):
        np.savez(root / name, x=rng.normal(size=(30, dim)).astype("float32"),
                 y=np.arange(30) % 3, index=np.arange(30))
    np.save(root / "single.npy", np.zeros(3))
    np.savez(root / "nox.npz", y=np.arange(3), index=np.arange(3))
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "text.npz").write_text("x, y, index\n")
    (root / "a_dir").mkdir()
    (root / "a_file").write_text("not a directory\n")
    raw = yaml.safe_load(Path(TINY).read_text())
    raw["recipe_defaults"]["smoke"]["optim"]["epochs"] = 0
    (root / "epochs0.yaml").write_text(yaml.safe_dump(raw))
    (root / "latin1.yaml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    (root / "bomb.yaml").write_text(
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                  for p, c in zip("abcdefgh", "bcdefghi")))
    return root


BAD = {
    "unknown-scale-launch": ["launch", TINY, "--scale", "nope", "--dry-run"],
    "unknown-scale-table": ["table", TINY, "--scale", "paper"],
    "unknown-scale-status": ["status", TINY, "--scale", "big"],
    "partition-newline": ["launch", TINY, "--executor", "slurm", "--dry-run", "--partition",
                          "gpu\n#SBATCH --wrap=id"],
    "account-substitution": ["launch", TINY, "--executor", "slurm", "--dry-run", "--account",
                             "$(id)"],
    "nodes-zero": ["launch", TINY, "--dry-run", "--nodes", "0"],
    "mem-nan": ["launch", TINY, "--dry-run", "--mem-gb", "nan"],
    "max-parallel-zero": ["launch", TINY, "--dry-run", "--max-parallel", "0"],
    "spec-directory": ["launch", "{work}/a_dir", "--dry-run"],
    "spec-device": ["table", "/dev/zero"],
    "spec-missing": ["table", "{work}/missing.yaml"],
    "spec-epochs-zero": ["table", "{work}/epochs0.yaml"],
    "spec-not-utf8": ["status", "{work}/latin1.yaml"],
    "spec-alias-bomb": ["launch", "{work}/bomb.yaml", "--dry-run"],
    "missing-dataset": ["launch", PCL3, "--scale", "paper", "--executor", "debug"],
    "fixture-root-is-a-file": ["data", "fixture", "cifar10", "--root", "{work}/a_file"],
    "eval-unknown-protocol": ["eval", "telepathy", "--train", "{work}/good.npz", "--test",
                              "{work}/good.npz"],
    "eval-model-protocol": ["eval", "finetune", "--train", "{work}/good.npz", "--test",
                            "{work}/good.npz"],
    "eval-unknown-param": ["eval", "knn", "--train", "{work}/good.npz", "--test",
                           "{work}/good.npz", "--param", "kk=3"],
    "eval-param-type": ["eval", "knn", "--train", "{work}/good.npz", "--test",
                        "{work}/good.npz", "--param", "k=abc"],
    "eval-param-no-equals": ["eval", "knn", "--train", "{work}/good.npz", "--test",
                             "{work}/good.npz", "--param", "k"],
    "eval-required-param": ["eval", "linear_probe", "--train", "{work}/good.npz", "--test",
                            "{work}/good.npz"],
    "eval-missing-npz": ["eval", "knn", "--train", "{work}/missing.npz", "--test",
                         "{work}/good.npz"],
    "eval-npz-is-a-directory": ["eval", "knn", "--train", "{work}/a_dir", "--test",
                                "{work}/good.npz"],
    "eval-corrupt-npz": ["eval", "knn", "--train", "{work}/corrupt.npz", "--test",
                         "{work}/good.npz"],
    "eval-text-as-npz": ["eval", "knn", "--train", "{work}/text.npz", "--test",
                         "{work}/good.npz"],
    "eval-npy-not-npz": ["eval", "knn", "--train", "{work}/single.npy", "--test",
                         "{work}/good.npz"],
    "eval-npz-without-x": ["eval", "knn", "--train", "{work}/nox.npz", "--test",
                           "{work}/good.npz"],
    "eval-dimension-mismatch": ["eval", "knn", "--train", "{work}/good.npz", "--test",
                                "{work}/wide.npz"],
    "eval-out-is-a-directory": ["eval", "knn", "--train", "{work}/good.npz", "--test",
                                "{work}/good.npz", "--out", "{work}/a_dir"],
}


def _run(args: list[str], work: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name, sub in (("REPRO_STORE", "store"), ("REPRO_RUNS", "runs"), ("REPRO_LOGS", "logs"),
                      ("REPRO_DATA", "data"), ("REPRO_CACHE", "cache")):
        env[name] = str(work / "env" / sub)
    argv = [a.replace("{work}", str(work)) for a in args]
    return subprocess.run(_command() + argv, capture_output=True, text=True, env=env,
                          cwd=work, timeout=120)


@pytest.fixture(scope="module")
def bad_results(work) -> dict[str, subprocess.CompletedProcess]:
    """All bad invocations, run concurrently (each is a fresh interpreter)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {name: pool.submit(_run, args, work) for name, args in BAD.items()}
        return {name: future.result() for name, future in futures.items()}


def test_there_are_at_least_ten_bad_invocations():
    assert len(BAD) >= 10


@pytest.mark.parametrize("name", BAD)
def test_bad_invocation_is_one_error_line_and_exit_2(bad_results, name):
    result = bad_results[name]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("args", [["launch"], ["launch", TINY, "--executor", "pbs"],
                                  ["data", "fixture", "mnist"], ["list", "recipes"]])
def test_argparse_errors_exit_2_without_traceback(work, args):
    result = _run(args, work)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("repro")


def test_a_good_invocation_still_works(work):
    result = _run(["launch", TINY, "--dry-run", "--executor", "slurm", "--partition", "gpu"],
                  work)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --partition=gpu" in result.stdout
