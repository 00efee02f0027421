"""PCL/PAUC smoke recipes: ProtoNCE has negative prototypes at every granularity.

Its negatives are the clusters that are no batch member's positive
(``repro.losses.proto_nce.sample_negative_prototypes``), so a small K with a large batch leaves
none. Measured with the real sampler on balanced assignments of each recipe's training subset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from repro.losses.proto_nce import sample_negative_prototypes
from repro.spec import load_table

ROOT = Path(__file__).resolve().parents[1]
# the recipes live in pcl/shared and pauc/shared; these two tables include all of them
SPECS = [ROOT / "experiments" / "pcl" / "table1.yaml",
         ROOT / "experiments" / "pauc" / "table2.yaml"]


def _smoke_protonce_recipes():
    seen = {}
    for spec in SPECS:
        for rid, scales in load_table(spec).recipes.items():
            body = scales.get("smoke")
            if body and body["method"] in ("pcl", "pauc"):
                seen[rid] = body
    return seen


def test_smoke_protonce_has_several_negatives_at_every_granularity():
    recipes = _smoke_protonce_recipes()
    assert {"pcl_v1", "pcl_v2", "pcl_v1_in100", "pauc_in1k", "pauc_in100"} <= set(recipes)
    gen = torch.Generator().manual_seed(0)
    for rid, body in recipes.items():
        n, batch = body["data"]["subset"], body["optim"]["batch_size"]
        r = body["params"]["num_neg_prototypes"]
        for k in body["params"]["num_clusters"]:
            assert 10 * k <= n, (rid, k)  # faiss's min_points_per_centroid, no warning
            assignments = torch.randperm(n, generator=gen) % k  # balanced clusters
            counts = [len(sample_negative_prototypes(
                assignments[torch.randperm(n, generator=gen)[:batch]], k, r, gen))
                for _ in range(50)]
            assert min(counts) >= 3 and sum(counts) / len(counts) >= 8, (rid, k, counts[:5])
