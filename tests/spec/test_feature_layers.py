"""Feature layers in specs: PCL Table 5 clusters the momentum encoder's normalised embedding
(the space PCL's prototypes live in) at every scale, and the layer reaches the jobs."""

from __future__ import annotations

from pathlib import Path

from repro import jobs as J
from repro.feature_export import cache_ident
from repro.spec import feature_layers, load_table

ROOT = Path(__file__).resolve().parents[2]


def test_embedding_is_a_feature_layer():
    assert "embedding" in feature_layers()


def test_pcl_table5_clusters_the_momentum_embedding_at_every_scale():
    table = load_table(ROOT / "experiments" / "pcl" / "table5.yaml")
    assert set(table.evals["kmeans_ami"]["scales"]) == set(table.scales)
    for scale in table.scales:
        ev = table.eval_at("kmeans_ami", scale)
        assert ev["encoder"] == "momentum"
        assert ev["features"]["layer"] == "embedding", scale
        evals = [j for j in J.expand(table, scale, {}) if j.kind == "eval"]
        assert evals and all(j.payload["eval"]["features"]["layer"] == "embedding"
                             for j in evals)
        ident = cache_ident(evals[0].payload["eval"], evals[0].payload["recipe"], "train",
                            "run-1", None)
        assert ident["layer"] == "embedding" and ident["pool"] is None
