"""Projection heads: saved with the trained encoders, loaded back for the ``embedding`` layer.

Every method with a projection head builds its encoder as ``nn.Sequential(trunk, head...)``
(MoCo/PCL/PAUC ``encoder_q``/``encoder_k``, BYOL/ProPos ``online``/``target``, SimCLR, SimSiam,
SwAV, CARL ``encoder``) and ``encoders()`` names the trunks. The head of encoder ``name`` is
the rest of the Sequential whose first module is that trunk; a method whose trunk has no such
Sequential (supervised, untrained) has no embedding. ``encoders.pt`` keeps the heads' weights
under ``"heads"``; the head's architecture comes from the recipe (the method is rebuilt).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn


class NoEmbedding(KeyError):
    """The stored run has no projection head for the encoder asked for."""

    def __str__(self) -> str:
        return str(self.args[0])


def projectors(method: nn.Module) -> dict[str, nn.Sequential]:
    """Encoder name -> the ``Sequential(trunk, head...)`` that holds its trunk (heads only)."""
    found = {}
    for name, trunk in method.encoders().items():
        for module in method.modules():
            if isinstance(module, nn.Sequential) and len(module) > 1 and module[0] is trunk:
                found[name] = module
                break
    return found


def head_states(method: nn.Module) -> dict[str, dict]:
    """Encoder name -> state dict of its projection head (what ``encoders.pt`` keeps)."""
    return {name: seq[1:].state_dict() for name, seq in projectors(method).items()}


def load_embedder(run_dir: Path, which: str, recipe: dict) -> nn.Module:
    """Trunk + projection head of encoder ``which`` from ``run_dir/encoders.pt`` (eval mode);
    its output, L2-normalised, is the ``embedding`` feature layer (``repro.features``)."""
    from repro.train.checkpoint import load
    from repro.train.pretrain import ENCODERS, build_method

    path = Path(run_dir) / ENCODERS
    state = load(path)
    heads = state.get("heads", {})
    if which not in heads:
        raise NoEmbedding(
            f"features.layer 'embedding': {path} has no projection head for encoder {which!r} "
            f"(heads saved: {', '.join(heads) or 'none'}); method {recipe['method']!r} has no "
            "head, or the run predates saved heads (`repro launch` retrains a stale run)")
    seq = projectors(build_method(recipe))[which]
    seq[0].load_state_dict(state["encoders"][which])
    seq[1:].load_state_dict(heads[which])
    return seq.eval()
