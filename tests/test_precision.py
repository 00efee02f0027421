"""Mixed precision in the pretraining loop: bf16 autocast, and fp16 with loss scaling."""

import json
import math
from pathlib import Path

import pytest

from repro.spec import load_table
from repro.train.checkpoint import load
from repro.train.pretrain import pretrain

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_table.yaml"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_checkpoints_its_scaler(isolated, precision):
    recipe = json.loads(json.dumps(load_table(TINY).recipe_at("moco", "smoke")))
    recipe["optim"]["epochs"] = 1
    recipe["runtime"]["precision"] = precision
    out = pretrain(recipe, isolated / precision, seed=0, log=lambda m: None)
    assert math.isfinite(out["final_loss"])
    state = load(isolated / precision / "checkpoint.pt")
    # the fp16 loss scale is part of the checkpoint, so a resumed run keeps it
    assert ("scale" in state["scaler"]) == (precision == "fp16")
