"""Name tables are fingerprinted per entry: adding or editing one dataset's, method's, backbone's or
protocol's entry leaves the records of the others fresh; everything else in those modules, and
the entries a job uses, still count."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from repro import fingerprint as FP

ROOT = Path(__file__).resolve().parents[1]


def _recipe(method: str, dataset: str = "digits") -> dict:
    return {"method": method, "backbone": {"arch": "resnet18_tiny"},
            "data": {"dataset": dataset, "split": "train"}}


def _knn(dataset: str) -> dict:
    return {"protocol": "knn", "train": {"dataset": dataset, "split": "train"},
            "test": {"dataset": dataset, "split": "test"}}


@pytest.fixture()
def package(tmp_path, monkeypatch):
    """A copy of the repro package that the fingerprint reads instead of the real one."""
    copy = tmp_path / "repro"
    shutil.copytree(FP.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(FP, "PACKAGE_DIR", copy)
    FP.closure.cache_clear()
    FP.code_modules.cache_clear()
    yield copy
    FP.closure.cache_clear()
    FP.code_modules.cache_clear()


def _codes() -> dict[str, str]:
    FP.closure.cache_clear()
    FP.code_modules.cache_clear()
    return {"pcl/digits": FP.pretrain_code(_recipe("pcl"))["code"],
            "moco/digits": FP.pretrain_code(_recipe("moco"))["code"],
            "moco/cifar10": FP.pretrain_code(_recipe("moco", "cifar10"))["code"],
            "knn/digits": FP.eval_code(_knn("digits"), _recipe("moco"))["code"],
            "knn/cifar10": FP.eval_code(_knn("cifar10"), _recipe("moco", "cifar10"))["code"]}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_every_keyed_table_is_found_and_reduced_to_the_jobs_entries():
    for module, names in FP.KEYED_TABLES.items():
        source = FP.module_file(module).read_bytes()
        reduced = FP.keyed_source(source, names, frozenset())
        assert len(reduced) < len(source), module
        compile(reduced, module, "exec")  # still Python
    data = FP.keyed_source(FP.module_file("repro.data").read_bytes(),
                           FP.KEYED_TABLES["repro.data"], frozenset({"digits"})).decode()
    assert '"digits": "repro.data.digits:digits"' in data and "cifar10" not in data
    assert "def build_dataset" in data  # the rest is hashed as written


def test_keyed_source_rejects_tables_it_cannot_reduce():
    with pytest.raises(ValueError, match="not a dict literal"):
        FP.keyed_source(b"T = dict(a=1)\n", ("T",), frozenset(), "m.py")
    with pytest.raises(ValueError, match="not a string literal"):
        FP.keyed_source(b"K = 1\nT = {K: 1}\n", ("T",), frozenset(), "m.py")
    with pytest.raises(ValueError, match="no module-level dict U"):
        FP.keyed_source(b"T = {}\n", ("T", "U"), frozenset(), "m.py")
    assert FP.keyed_source(b'T = {"a": 1, **X, "b": 2}  # c\n', ("T",), frozenset({"b"})) \
        == b'T = {**X, "b": 2}  # c\n'


def test_adding_a_dataset_and_a_method_leaves_every_other_job_fresh(package):
    before = _codes()
    _edit(package / "data" / "__init__.py", '        "digits": "repro.data.digits:digits",\n',
          '        "digits": "repro.data.digits:digits",\n        "newset": "repro.data.x:y",\n')
    _edit(package / "data" / "__init__.py", "DATASET_INFO: dict[str, DatasetInfo] = {\n",
          'DATASET_INFO: dict[str, DatasetInfo] = {\n    "newset": DatasetInfo(2, 8, False, '
          '("train",), "nowhere"),\n')
    _edit(package / "data" / "transforms.py", "MEAN_STD = {\n",
          'MEAN_STD = {\n    "newset": ((0.5,), (0.5,)),\n')
    _edit(package / "methods" / "__init__.py", '        "byol": "repro.methods.byol:BYOL",\n',
          '        "byol": "repro.methods.byol:BYOL",\n        "newmethod": "repro.methods.x:Y",\n')
    _edit(package / "eval" / "__init__.py", '    "knn": "features",\n',
          '    "knn": "features",\n    "newprotocol": "features",\n')
    assert _codes() == before


def test_editing_an_entry_stales_exactly_the_jobs_that_use_it(package):
    before = _codes()
    _edit(package / "data" / "transforms.py", '"cifar10": ((0.4914,', '"cifar10": ((0.4915,')
    after = _codes()
    assert {k for k in before if before[k] != after[k]} == {"moco/cifar10", "knn/cifar10"}
    _edit(package / "methods" / "__init__.py", '"pcl": "repro.methods.pcl:PCL"',
          '"pcl": "repro.methods.pcl:PCLv2"')
    again = _codes()
    assert {k for k in after if after[k] != again[k]} == {"pcl/digits"}


def test_editing_outside_the_tables_stales_every_job_that_imports_the_module(package):
    before = _codes()
    _edit(package / "data" / "__init__.py", "def data_root() -> Path:",
          "# an edit\n\n\ndef data_root() -> Path:")
    after = _codes()
    assert all(before[k] != after[k] for k in before)


def _refingerprint():
    spec = importlib.util.spec_from_file_location("refingerprint",
                                                  ROOT / "scripts" / "refingerprint.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Job:
    kind = "pretrain"
    label = "pretrain moco seed 0"

    def __init__(self, recipe):
        self.payload = {"recipe": recipe}


def test_refingerprint_rewrites_only_records_whose_code_is_unchanged(monkeypatch):
    """A record current at a commit under the whole-file scheme is re-expressed; one whose
    code changed since is refused with the file named."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git history of the checkout")
    R = _refingerprint()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    job = _Job(_recipe("moco"))
    now = R.code_of(job)
    # the whole-file hashes of the files at HEAD: what a record made there under the old scheme
    # stored (the check reads HEAD through git, so uncommitted edits cannot leak in)
    old = {rel: hashlib.sha256(R._show(head, rel)).hexdigest()[:12] for rel in now["modules"]}
    record = {"fingerprint": {"code": FP.digest(old), "modules": old}}
    dirty = R.code_of(job, R.reader_at(head)) != now  # uncommitted edits the job reads
    new, why = R.check(job, record, head, R.reader_at(head))
    if dirty:  # the working tree differs from HEAD: only a refusal naming a file is right
        assert new is None and why
    else:
        assert (new, why) == (now, "")
    # a record whose stored hashes are not those of the commit is refused
    wrong = {**old, "repro/methods/moco.py": "0" * 12}
    new, why = R.check(job, {"fingerprint": {"code": FP.digest(wrong), "modules": wrong}},
                       head, R.reader_at(head))
    assert new is None and "repro/methods/moco.py" in why
    # code the job reads that differs between the commit and now is refused
    real_show = R._show

    def show(commit, rel):
        data = real_show(commit, rel)
        return data + b"\n# edited\n" if rel == "repro/train/pretrain.py" else data

    monkeypatch.setattr(R, "_show", show)
    edited = {**old, "repro/train/pretrain.py":
              hashlib.sha256(show(head, "repro/train/pretrain.py")).hexdigest()[:12]}
    new, why = R.check(job, {"fingerprint": {"code": FP.digest(edited), "modules": edited}},
                       head, R.reader_at(head))
    assert new is None and "repro/train/pretrain.py" in why
