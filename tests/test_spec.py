"""Spec loading: every shipped spec is valid; malformed ones fail naming file, field, allowed."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro import jobs
from repro.spec import SpecError, find_specs, load_table, paper_number

ROOT = Path(__file__).resolve().parents[1]
SPECS = find_specs(ROOT / "experiments")
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"


def test_there_are_specs():
    assert ROOT / "experiments" / "pcl" / "table3.yaml" in SPECS


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_spec_loads_and_expands_at_every_scale(path):
    table = load_table(path)
    assert table.rows and table.columns
    for scale in table.scales:
        for source in ("real", "synthetic"):
            sources = {d: source for d in jobs.datasets_used(table, scale)}
            expanded = jobs.expand(table, scale, sources)
            keys = [j.key for j in expanded]
            assert len(keys) == len(set(keys))
            for j in expanded:
                assert all(d in keys for d in j.deps)
                assert j.synthetic == (source == "synthetic")
    # every row the paper printed has a number or a dash for every result column it has (the
    # columns its `evaluate` names, else all); reference rows of a scale (recipe_by_scale only)
    # are ours alone and print nothing of the paper's
    for row in table.rows:
        if row.recipe is None and row.recipe_by_scale:
            assert row.paper == {}, f"{row.name}: a reference row has no paper cells"
            continue
        for col in table.columns:
            if col.eval and (not row.evaluate or col.id in row.evaluate):
                assert col.id in row.paper, f"{row.name} lacks {col.id}"


def _write(tmp_path, mutate):
    raw = yaml.safe_load(TINY.read_text())
    mutate(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r.update(colour="red"), ["colour: unknown key", "allowed:", "columns"]),
        (lambda r: r["recipes"]["moco"]["scales"]["smoke"].update(method="mocov9"),
         ["recipes.moco.scales.smoke.method", "unknown method 'mocov9'", "allowed: ", "moco"]),
        (lambda r: r["evals"]["probe"].update(protocol="telepathy"),
         ["evals.probe.protocol", "unknown protocol 'telepathy'", "linear_probe"]),
        (lambda r: r["evals"]["probe"]["scales"]["smoke"]["train"].update(dataset="mnist"),
         ["evals.probe.scales.smoke.train.dataset", "unknown dataset 'mnist'", "cifar10"]),
        (lambda r: r["evals"]["probe"]["scales"]["smoke"]["train"].update(split="validation"),
         ["train.split", "'validation'", "allowed: train, test"]),
        (lambda r: r["scales"]["smoke"].update(seeds="0,1"),
         ["scales.smoke.seeds", "'0,1'", "allowed: a list"]),
        (lambda r: r["scales"]["smoke"].update(seeds=[True]),
         ["scales.smoke.seeds[0]", "True", "an integer"]),
        (lambda r: r["columns"][1].update(eval="nope"), ["columns[1].eval", "unknown eval"]),
        (lambda r: r["rows"][1].update(recipe="byol_x"), ["rows[1].recipe", "unknown recipe"]),
        (lambda r: r["rows"][1]["paper"].update(imagenet="1.0"),
         ["rows[1]", "unknown column 'imagenet'", "allowed: arch, probe"]),
        (lambda r: r["recipes"]["moco"]["scales"].update(paper={}),
         ["recipes.moco.scales.paper", "unknown scale"]),
        (lambda r: r["recipe_defaults"]["smoke"]["optim"].pop("epochs"),
         ["optim.epochs", "required"]),
        (lambda r: r["recipe_defaults"]["smoke"]["runtime"].update(precision="fp8"),
         ["runtime.precision", "allowed: fp32, bf16, fp16"]),
        (lambda r: r["scales"]["smoke"].update(resources={"pretrain": {"gpus": 4}}),
         ["resources.pretrain.gpus", "unknown key", "gpus_per_node"]),
        (lambda r: r.update(paper="simclr"), ["paper", "allowed: carl, pauc, pcl, propos"]),
        (lambda r: r.pop("rows"), ["rows: required"]),
    ],
)
def test_malformed_spec_names_file_field_and_allowed(tmp_path, mutate, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(SpecError) as err:
        load_table(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, message


def test_yaml_tags_are_not_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("paper: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_table(path)


def test_paper_number_parses_printed_cells():
    assert paper_number("79.2*") == 79.2
    assert paper_number("60.2†") == 60.2
    assert paper_number("0.410") == 0.41
    assert paper_number("-") is None
    assert paper_number("_") is None


def test_keys_change_with_recipe_seed_and_data_source():
    table = load_table(TINY)
    base = {j.label: j.key for j in jobs.expand(table, "smoke", {"digits": "real"})}
    synth = {j.label: j.key for j in jobs.expand(table, "smoke", {"digits": "synthetic"})}
    assert set(base) == set(synth) and all(base[k] != synth[k] for k in base)
    assert base["pretrain moco seed 0"] != base["pretrain moco seed 1"]
    table.recipes["moco"]["smoke"]["optim"]["lr"] = 0.1
    changed = {j.label: j.key for j in jobs.expand(table, "smoke", {"digits": "real"})}
    assert changed["pretrain moco seed 0"] != base["pretrain moco seed 0"]
    assert changed["pretrain pcl seed 0"] == base["pretrain pcl seed 0"]
    # the evaluation of a changed pretraining is a different job too
    assert changed["eval probe of moco seed 0"] != base["eval probe of moco seed 0"]


def test_spec_and_tables_import_no_torch():
    code = ("import sys; import repro.spec, repro.tables, repro.jobs, repro.store, repro.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_shipped_table_id_is_a_file_name_under_results():
    for path in SPECS:
        table = load_table(path)
        assert table.result_path.parent == Path("results") / table.paper


def test_a_table_id_that_escapes_results_is_refused_even_when_set_in_code():
    table = load_table(TINY)
    table.table = "../../x"
    with pytest.raises(SpecError, match="table: '../../x'"):
        table.result_path


def test_loading_every_spec_imports_no_torch():
    code = ("import sys; from repro.spec import find_specs, load_table; "
            "[load_table(p) for p in find_specs('experiments')]; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
