import argparse
import json

import numpy as np
import pytest

from repro.eval.command import add_arguments, run


def _parse(argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = (np.eye(3)[y] * 10 + rng.normal(size=(90, 3))).astype(np.float32)
    path = tmp_path / "f.npz"
    np.savez(path, x=x, y=y, index=np.arange(90))
    return path


def test_runs_knn_and_writes_json(npz, tmp_path, capsys):
    out = tmp_path / "m.json"
    args = _parse(["knn", "--train", str(npz), "--test", str(npz), "--param", "k=[5,10]",
                   "--param", "temperature=0.1", "--out", str(out)])
    assert run(args) == 0
    assert "top1_k5" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["top1_k10"] == 100.0 and result["selection"]["temperature"]["value"] == 0.1


def test_clear_errors(npz, capsys):
    assert run(_parse(["nope", "--train", str(npz), "--test", str(npz)])) == 2
    assert "allowed: clustering" in capsys.readouterr().err
    assert run(_parse(["knn", "--train", str(npz), "--test", str(npz), "--param", "kk=3"])) == 2
    assert "allowed: k, temperature" in capsys.readouterr().err
    assert run(_parse(["finetune", "--train", str(npz), "--test", str(npz)])) == 2
    assert "needs a model" in capsys.readouterr().err
    assert run(_parse(["knn", "--train", "missing.npz", "--test", str(npz)])) == 2
    assert "no such file" in capsys.readouterr().err
