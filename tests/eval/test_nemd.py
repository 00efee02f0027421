import numpy as np
import ot
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from repro.eval.nemd import emd_cost, nemd, nemd_pair, prototype_nemd
from repro.eval.types import Features


def _sphere(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_nemd_is_the_optimal_matching_for_equal_sizes():
    """Eq. 3 between two uniform sets of n points: an optimal coupling is a permutation
    (Birkhoff), so the exact distance is the mean cost of the best matching (Hungarian)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 0.3
    m = cdist(_sphere(a), _sphere(b))
    rows, cols = linear_sum_assignment(m)
    assert nemd_pair(a, b) == pytest.approx(m[rows, cols].mean(), rel=1e-9)
    assert emd_cost(_sphere(a), _sphere(b)) == pytest.approx(m[rows, cols].mean(), rel=1e-9)


def test_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 3)) + [4, 0, 0]
    for method in ("exact", "sinkhorn_debiased"):
        assert nemd_pair(a, a, method=method) == pytest.approx(0.0, abs=1e-6)
        values = [nemd_pair(a, a + [0, s, 0], method=method) for s in (0.25, 0.5, 1.0, 2.0)]
        assert all(np.diff(values) > 0) and values[0] > 0


def test_sinkhorn_approximates_the_exact_distance_from_above():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(80, 4)), rng.normal(size=(60, 4)) + 0.5
    exact = nemd_pair(a, b)
    assert exact == pytest.approx(ot.emd2(np.full(80, 1 / 80), np.full(60, 1 / 60),
                                          cdist(_sphere(a), _sphere(b))), rel=1e-9)
    plain = nemd_pair(a, b, method="sinkhorn", reg=0.01)
    assert exact <= plain <= exact * 1.1  # the entropic plan is feasible, so never below
    assert nemd_pair(a, a, method="sinkhorn") > nemd_pair(a, a)  # plain Sinkhorn is biased


def test_protocol_on_separated_vs_collapsed_prototypes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    spread = np.eye(3)[y] * 4 + rng.normal(size=(180, 3))
    f = Features(spread.astype(np.float32), y, np.arange(180))
    out = nemd(f, f, seed=0, prototypes="labels")
    assert out["nemd"] > 0.5 and out["selection"]["k"]["value"] == 3
    assert out["selection"]["method"]["value"] == "exact" and "reg" not in out["selection"]
    assert prototype_nemd(spread, y) == pytest.approx(out["nemd"])
    km = nemd(f, f, seed=0)
    assert km["nemd"] == pytest.approx(out["nemd"], rel=0.2)
    with pytest.raises(ValueError, match="method='emd'; allowed: exact, sinkhorn"):
        nemd(f, f, seed=0, method="emd")
