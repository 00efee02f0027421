"""A table of datasets (ProPos Table 1): registry columns set each printed cell beside what our
registry says for the row's dataset and split; a difference is marked and explained."""

from pathlib import Path

import pytest
from spec_files import write_spec

from repro import jobs, tables
from repro.data import DATASET_INFO
from repro.launch.cost import SPLIT_SIZES
from repro.spec import SpecError, load_table

ROOT = Path(__file__).resolve().parents[1]
PROPOS_T1 = ROOT / "experiments" / "propos" / "table1.yaml"
SCALES = {"paper": {"seeds": [0]}, "smoke": {"seeds": [0]}}


def _line(md, name):
    return [c.strip() for c in next(line for line in md.splitlines()
                                    if line.startswith(f"| {name} ")).strip("|").split("|")]


def test_propos_table1_shows_the_registry_and_runs_nothing():
    table = load_table(PROPOS_T1)
    assert all(jobs.expand(table, s, {}) == [] for s in table.scales)
    md = tables.render(table, "smoke")
    assert md == tables.render(table, "paper")
    assert "≠" not in md.split("\n\n")[2]  # the table body: ours agrees with the paper
    for row in table.rows:
        name, split = row.dataset["name"], row.dataset["split"]
        cells = _line(md, row.name)
        # Dataset | Split paper, ours | # Samples paper, ours | # Classes paper, ours | Size ...
        assert cells[2] == split
        assert cells[4] == f"{SPLIT_SIZES[name][split]:,}"
        assert cells[6] == f"{DATASET_INFO[name].num_classes:,}"
        assert cells[8] == f"{row.dataset['image_size']}×{row.dataset['image_size']}"
    assert _line(md, "ImageNet-10")[7:9] == ["96×96", "96×96"]  # Table 2's eval, not 224 native
    assert _line(md, "STL-10")[3:5] == ["13,000", "13,000"]  # 5,000 train + 8,000 test


EVALS = {  # a table whose paper-scale clustering extracts features at 64 px
    "paper": "propos", "table": "evals", "title": "t", "scales": SCALES,
    "evals": {"cl": {"protocol": "clustering", "features": {"image_size": 64}, "scales": {
        s: {"train": {"dataset": "cifar10", "split": "train"},
            "test": {"dataset": "cifar10", "split": "test"}} for s in SCALES}}},
    "columns": [{"id": "nmi", "label": "NMI", "eval": "cl", "metric": "nmi"}],
    "rows": [{"name": "X", "origin": "quoted", "paper": {"nmi": "1.0"}}],
}


def _datasets(rows):
    return {"paper": "propos", "table": "sets", "title": "Datasets", "scales": SCALES,
            "columns": [{"id": "split", "label": "Split", "registry": "split"},
                        {"id": "n", "label": "# Samples", "registry": "samples"},
                        {"id": "k", "label": "# Classes", "registry": "classes"},
                        {"id": "size", "label": "Size", "registry": "image_size"}],
            "rows": rows}


def test_a_difference_from_the_registry_is_marked_and_explained(tmp_path):
    write_spec(tmp_path / "experiments/propos/evals.yaml", EVALS)
    path = write_spec(tmp_path / "experiments/propos/sets.yaml", _datasets([
        {"name": "CIFAR-10", "dataset": {"name": "cifar10", "split": "train+test", "eval":
                                         "evals/cl"},
         "reason": "we resize to 64", "paper": {"split": "Train+Test", "n": "60,000", "k": 10,
                                                 "size": "32×32"}},
        {"name": "CIFAR-10-LT", "paper": {"split": "Train", "n": "12,406", "k": 10,
                                          "size": "32x32"}},
        {"name": "CIFAR-10 train", "dataset": {"name": "cifar10", "split": "train", "eval":
                                               "evals/cl"},
         "paper": {"split": "Train", "n": "60,000", "k": 10, "size": "64×64"}},
    ]))
    md = tables.render(load_table(path), "smoke")
    assert _line(md, "CIFAR-10")[1:] == ["Train+Test", "train+test", "60,000", "60,000", "10",
                                         "10", "32×32", "64×64 ≠"]
    assert "- Ours differs from the paper: CIFAR-10 — Size (paper 32×32, ours 64×64): we " \
           "resize to 64" in md
    assert _line(md, "CIFAR-10-LT")[2] == "not in our registry ≠"
    assert "CIFAR-10-LT — Split (paper Train, ours: not in our registry); " in md
    assert _line(md, "CIFAR-10 train")[3:] == ["60,000", "50,000 ≠", "10", "10", "64×64",
                                               "64×64"]
    assert "CIFAR-10 train — # Samples (paper 60,000, ours 50,000): no reason given" in md


@pytest.mark.parametrize("row, expected", [
    ({"name": "A", "dataset": {"name": "stl10", "split": "train", "eval": "evals/cl"},
      "paper": {}}, "rows[0].dataset.eval: evaluates cifar10: 'evals/cl'"),
    ({"name": "A", "dataset": {"name": "cifar10", "split": "train", "eval": "evals/none"},
      "paper": {}}, "no such evaluation at scale 'paper': 'evals/none'; allowed: evals/cl"),
    ({"name": "A", "dataset": {"name": "cifar10", "split": "train", "eval": "sets/cl"},
      "paper": {}}, "refers back to this table"),
    ({"name": "A", "dataset": {"name": "cifar10", "split": "val", "eval": "evals/cl"},
      "paper": {}}, "rows[0].dataset.split: unknown split of cifar10 'val'"),
    ({"name": "A", "dataset": {"name": "cifar10", "split": "train"}, "paper": {}},
     "rows[0].dataset.eval: required with an image_size column"),
    ({"name": "A", "origin": "quoted", "paper": {}},
     "rows[0].origin: origin not used in a table of datasets"),
], ids=["other-dataset", "no-eval", "cycle", "split", "no-size", "origin"])
def test_dataset_rows_are_checked(tmp_path, row, expected):
    write_spec(tmp_path / "experiments/propos/evals.yaml", EVALS)
    with pytest.raises(SpecError) as err:
        load_table(write_spec(tmp_path / "experiments/propos/sets.yaml", _datasets([row])))
    assert expected in str(err.value), str(err.value)


def test_dataset_only_in_a_table_of_datasets(tmp_path):
    raw = dict(EVALS, rows=[{"name": "X", "origin": "quoted", "paper": {"nmi": "1.0"},
                             "dataset": {"name": "cifar10", "split": "train"}}])
    with pytest.raises(SpecError, match=r"rows\[0\].dataset: not used here"):
        load_table(write_spec(tmp_path / "experiments/propos/evals.yaml", raw))
