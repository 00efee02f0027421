import argparse
import json
from pathlib import Path

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


# --- list params, label dtypes, optional index (issue 12) -------------------------------------

def _save(path, n=60, d=4, y=None, index=True, seed=1):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3) if y is None else y
    x = (np.eye(3, d)[np.asarray(y, dtype=int) % 3] * 10 + rng.normal(size=(n, d)))
    arrays = {"x": x.astype(np.float32), "y": y}
    if index:
        arrays["index"] = np.arange(n)
    np.savez(path, **arrays)
    return path


def test_list_params_take_a_bare_value_or_commas():
    from repro.eval.command import parse_params

    assert parse_params(["metrics=ami"], "clustering") == {"metrics": ["ami"]}
    assert parse_params(["metrics=ami,nmi"], "clustering") == {"metrics": ["ami", "nmi"]}
    assert parse_params(['metrics=["ami"]'], "clustering") == {"metrics": ["ami"]}
    assert parse_params(["costs=0.5"], "svm_voc07") == {"costs": [0.5]}
    assert parse_params(["costs=0.1,1"], "svm_voc07") == {"costs": [0.1, 1]}
    # int | Sequence[int]: a scalar stays a scalar, commas make a list
    assert parse_params(["k=5"], "knn") == {"k": 5}
    assert parse_params(["k=5,10"], "knn") == {"k": [5, 10]}
    assert parse_params(["on=train"], "clustering") == {"on": "train"}


def test_clustering_with_one_metric_runs(tmp_path, capsys):
    f = _save(tmp_path / "f.npz")
    assert run(_parse(["clustering", "--train", str(f), "--test", str(f),
                       "--param", "metrics=ami", "--param", "k=3"])) == 0
    out = capsys.readouterr().out
    assert "ami" in out and "nmi" not in out


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint16", "int32"])
def test_labels_of_any_integer_or_float_dtype(tmp_path, dtype, capsys):
    y = np.repeat(np.arange(3), 20).astype(dtype)
    f = _save(tmp_path / "f.npz", y=y)
    assert run(_parse(["knn", "--train", str(f), "--test", str(f), "--param", "k=5"])) == 0
    assert "top1  100.0000" in capsys.readouterr().out


def test_non_integral_float_labels_are_one_line(tmp_path, capsys):
    f = _save(tmp_path / "f.npz", y=np.repeat(np.arange(3), 20) + 0.5)
    assert run(_parse(["knn", "--train", str(f), "--test", str(f)])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and "array y" in err
    assert "non-integral label 0.5" in err and "allowed: integer class labels" in err


def test_multilabel_targets_keep_working(tmp_path, capsys):
    from repro.eval.command import load_features

    y = np.random.default_rng(0).choice([-1, 0, 1], size=(30, 4)).astype(np.float32)
    f = _save(tmp_path / "f.npz", n=30, y=np.zeros(30))
    np.savez(f, x=np.ones((30, 4), np.float32), y=y, index=np.arange(30))
    feats = load_features(f, "svm_voc07")
    assert feats.y.shape == (30, 4) and feats.y.dtype == np.float32 and feats.multilabel


def test_index_optional_unless_the_protocol_reads_it(tmp_path, capsys):
    f = _save(tmp_path / "f.npz", index=False)
    assert run(_parse(["knn", "--train", str(f), "--test", str(f), "--param", "k=5"])) == 0
    capsys.readouterr()
    assert run(_parse(["svm_places205", "--train", str(f), "--test", str(f)])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and "missing array index" in err
    from repro.eval.command import load_features

    assert load_features(f, "clustering").index.tolist() == list(range(60))


# --- repro features: export a stored run's cached features ------------------------------------

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny_table.yaml")


def _cache_file(table, pre, ev, part, run_id):
    """The path ``repro.launch.worker.run_eval`` + ``repro.features.cached_features`` give."""
    from repro import fingerprint as FP
    from repro.jobs import content_key
    from repro.launch.worker import runs_root

    feat_cfg = dict(ev.get("features", {}))
    image_size = feat_cfg.pop("image_size", pre.payload["recipe"]["views"]["image_size"])
    layer, pool = feat_cfg.get("layer", "pooled"), feat_cfg.get("pool", 2)
    ref = ev[part]
    made_by = {"run": run_id, "data": FP.data_fingerprints([ref])[FP.data_key(ref)],
               "code": FP.features_code(pre.payload["recipe"], ref["dataset"])["code"]}
    ident = {"encoder": ev.get("encoder", "query"), "layer": layer,
             "pool": pool if layer == "conv5_avgpool" else None, "image_size": image_size,
             "data": ref, "made_by": made_by}
    return Path(runs_root()) / pre.key / "features" / f"{content_key(ident)}.npz"


def test_features_export_end_to_end(isolated, capsys):
    tmp_path = isolated
    import shlex

    from repro import store, tables
    from repro.cli import main
    from repro.spec import load_table

    table = load_table(TINY)
    argv = ["features", TINY, "--scale", "smoke", "--row", "MoCo", "--seed", "1"]
    assert main(argv) == 1  # nothing trained yet
    assert "no stored pretraining run" in capsys.readouterr().out
    jobs, _, _ = tables.stored_jobs(table, "smoke")
    pre = next(j for j in jobs if j.kind == "pretrain" and j.seed == 1
               and j.payload["recipe_id"] == "moco")
    store.put({"key": pre.key, "run_id": "run-abc", "metrics": {}})
    assert main(argv) == 1  # trained, but no evaluation job cached features yet
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no cached features" in out and "repro launch" in out
    ev = next(j for j in jobs if j.kind == "eval" and ("MoCo", "probe") in j.cells
              and j.payload["pretrain_key"] == pre.key).payload["eval"]
    for part, n in (("train", 30), ("test", 21)):
        path = _cache_file(table, pre, ev, part, "run-abc")
        path.parent.mkdir(parents=True, exist_ok=True)
        # as cached_features writes them (np.savez of x, y, index); float labels on purpose
        _save(path, n=n, y=np.arange(n) % 3 * 1.0, seed=n)
    out_dir = tmp_path / "exported"
    assert main(argv + ["--eval", "probe", "--out", str(out_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"probe: train {out_dir / 'probe_train.npz'}"
    with np.load(out_dir / "probe_test.npz") as z:
        assert sorted(z.files) == ["index", "x", "y"] and len(z["x"]) == 21
    words = shlex.split(lines[2])
    assert words[:3] == ["repro", "eval", "linear_probe"] and "epochs=5" in words
    assert main(words[1:]) == 0  # the printed command runs as is
    assert "top1" in capsys.readouterr().out
    assert main(argv + ["--eval", "nope"]) == 2
    assert "allowed: probe" in capsys.readouterr().err
    assert main(["features", TINY, "--row", "Quoted baseline"]) == 2
    assert "not rerun" in capsys.readouterr().err
