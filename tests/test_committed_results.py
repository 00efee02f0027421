"""What the repository ships is current: no committed record is stale, every committed table is
what its records render to. (Regenerate with `make smoke` when a change makes this fail.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from repro import tables
from repro.data.fixtures import FIXTURES
from repro.freshness import Judge
from repro.spec import find_specs, load_table

ROOT = Path(__file__).resolve().parents[1]
SPECS = [p.relative_to(ROOT) for p in find_specs(ROOT / "experiments")]
SCALE = "smoke"  # the scale of the committed tables


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The repository as a fresh clone sees it after `make table3` wrote the fixtures."""
    data = tmp_path_factory.mktemp("data")
    for write in FIXTURES.values():  # deterministic: the same files as on the machine that ran
        write(data)
    mp = pytest.MonkeyPatch()
    mp.setenv("REPRO_DATA", str(data))
    mp.setenv("REPRO_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("REPRO_STORE", str(ROOT / "results" / "store"))
    mp.chdir(ROOT)
    yield
    mp.undo()


def _committed_tables() -> list[tuple[Path, str]]:
    """(spec, scale): every spec at smoke, and each partial scale (the real-data CPU scale)
    whose table is committed."""
    out = []
    for spec in SPECS:
        out.append((spec, SCALE))
        table = load_table(ROOT / spec)
        out += [(spec, s) for s in table.scales if table.is_partial(s)
                and (ROOT / table.result_path_at(s)).is_file()]
    return out


@pytest.mark.parametrize("spec, scale", _committed_tables(),
                         ids=lambda x: f"{x.parent.name}/{x.stem}" if isinstance(x, Path) else x)
def test_no_committed_record_is_stale_and_the_table_renders_from_them(shipped, spec, scale):
    table = load_table(spec)
    jobs, records, _ = tables.stored_jobs(table, scale)
    judge = Judge(jobs, records)
    assert judge.unchecked == []  # every dataset's files were fingerprinted
    assert judge.stale() == {}
    if not table.is_partial(scale):  # a partial (real-data) table may be committed seed by
        # seed: its header counts the cells computed and each cell its seeds
        assert len(records) == len(jobs), "a committed table has cells that were never computed"
    committed = (ROOT / table.result_path_at(scale)).read_text()
    assert tables.render(table, scale) == committed
