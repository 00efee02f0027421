"""torchvision ResNet state_dict -> detectron2 checkpoint (the job of MoCo's
``convert-pretrain-to-detectron2.py``; our own mapping, torch-free).

Key mapping (torchvision -> detectron2):
  conv1.weight                      -> stem.conv1.weight
  bn1.*                             -> stem.conv1.norm.*
  layer{i}.{j}.conv{k}.weight       -> res{i+1}.{j}.conv{k}.weight
  layer{i}.{j}.bn{k}.*              -> res{i+1}.{j}.conv{k}.norm.*
  layer{i}.{j}.downsample.0.weight  -> res{i+1}.{j}.shortcut.weight
  layer{i}.{j}.downsample.1.*       -> res{i+1}.{j}.shortcut.norm.*
``fc.*`` (classifier) and ``num_batches_tracked`` are dropped. A prefix in front of the
ResNet's keys (``module.encoder_q.`` in MoCo/PCL checkpoints) is found and stripped.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Mapping

import numpy as np

_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def _resnet_prefix(keys) -> str:
    candidates = [k[: -len("conv1.weight")] for k in keys
                  if k.endswith("conv1.weight") and "layer" not in k]
    if len(candidates) != 1:
        raise ValueError("cannot find the ResNet stem (one '<prefix>conv1.weight' outside the "
                         f"layers); found {candidates}")
    return candidates[0]


def torchvision_to_detectron2_key(key: str) -> str | None:
    """The detectron2 name of a torchvision ResNet key, or None if it is not carried over."""
    if key.startswith("fc.") or key.endswith("num_batches_tracked"):
        return None
    if key == "conv1.weight":
        return "stem.conv1.weight"
    if key.startswith("bn1."):
        return "stem.conv1.norm." + key[len("bn1."):]
    m = _BLOCK.match(key)
    if m is None:
        raise ValueError(f"unexpected ResNet key {key!r}")
    stage, block, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
    rest = re.sub(r"^bn(\d)\.", r"conv\1.norm.", rest)
    rest = rest.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")
    return f"res{stage}.{block}.{rest}"


def convert_state_dict(state_dict: Mapping[str, object]) -> dict[str, np.ndarray]:
    """detectron2 backbone weights (numpy) from a torchvision-layout ResNet state_dict."""
    prefix = _resnet_prefix(state_dict.keys())
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = torchvision_to_detectron2_key(key[len(prefix):])
        if name is not None:
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            out[name] = array
    return out


def write_detectron2_checkpoint(state_dict: Mapping[str, object], path: str | Path) -> Path:
    """Pickle in detectron2's format: ``{"model": weights, "matching_heuristics": True}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": convert_state_dict(state_dict), "__author__": "repro",
               "matching_heuristics": True}
    with open(path, "wb") as f:
        pickle.dump(payload, f)
    return path
