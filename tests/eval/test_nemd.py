import numpy as np
import pytest

from repro.eval.nemd import nemd, nemd_pair, prototype_nemd
from repro.eval.types import Features


def test_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 3)) + [4, 0, 0]
    assert nemd_pair(a, a) == pytest.approx(0.0, abs=1e-6)
    values = [nemd_pair(a, a + [0, s, 0]) for s in (0.25, 0.5, 1.0, 2.0)]
    assert all(np.diff(values) > 0) and values[0] > 0


def test_plain_sinkhorn_is_biased_upwards():
    a = np.random.default_rng(0).normal(size=(100, 3))
    assert nemd_pair(a, a, debiased=False) > nemd_pair(a, a)


def test_protocol_on_separated_vs_collapsed_prototypes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    spread = np.eye(3)[y] * 4 + rng.normal(size=(180, 3))
    f = Features(spread.astype(np.float32), y, np.arange(180))
    out = nemd(f, f, seed=0, prototypes="labels")
    assert out["nemd"] > 0.5 and out["selection"]["k"]["value"] == 3
    assert prototype_nemd(spread, y) == pytest.approx(out["nemd"])
    km = nemd(f, f, seed=0)
    assert km["nemd"] == pytest.approx(out["nemd"], rel=0.2)
