"""``repro eval <protocol> --train train.npz --test test.npz [--param k=v ...]``.

Runs a feature protocol on saved features (npz with arrays ``x``, ``y``, ``index``) and
prints its metrics; ``--out`` also writes the full result (selection, artifacts) as JSON.
Parameter values are parsed as JSON when they parse (``k=200``, ``costs=[0.1,1]``,
``normalize=true``) and kept as strings otherwise (``on=train``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from repro.eval import PROTOCOL_INPUTS, PROTOCOLS
from repro.registry import UnknownName


def add_arguments(parser: argparse.ArgumentParser) -> None:
    feature_protocols = [n for n in PROTOCOLS.names() if PROTOCOL_INPUTS[n] == "features"]
    parser.add_argument("protocol", help=f"one of: {', '.join(feature_protocols)}")
    parser.add_argument("--train", required=True, type=Path, help="npz with x, y, index")
    parser.add_argument("--test", required=True, type=Path, help="npz with x, y, index")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="protocol parameter (repeatable); VALUE is JSON or a string")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the full result as JSON here")


class EvalCommandError(ValueError):
    pass


def load_features(path: Path):
    import numpy as np

    from repro.eval.types import Features

    if not path.is_file():
        raise EvalCommandError(f"{path}: no such file")
    with np.load(path) as f:
        missing = {"x", "y", "index"} - set(f.files)
        if missing:
            raise EvalCommandError(f"{path}: missing array(s) {sorted(missing)}; an eval npz "
                                   "holds x (N x D), y (N or N x C) and index (N)")
        return Features(f["x"].astype("float32"), f["y"], f["index"].astype("int64"))


def parse_params(items: list[str], fn, protocol: str) -> dict:
    sig = inspect.signature(fn).parameters
    allowed = [n for n, p in sig.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
               and n != "seed"]
    params = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise EvalCommandError(f"--param {item!r}: expected KEY=VALUE")
        if key not in allowed:
            raise EvalCommandError(f"--param {key!r}: not a parameter of {protocol}; allowed: "
                                   f"{', '.join(allowed)}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _scalars(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("selection", "artifacts")}


def run(args: argparse.Namespace) -> int:
    try:
        if args.protocol in PROTOCOLS and PROTOCOL_INPUTS[args.protocol] != "features":
            raise EvalCommandError(
                f"protocol {args.protocol!r} needs a model and datasets, not saved features; "
                f"feature protocols: "
                f"{', '.join(n for n in PROTOCOLS.names() if PROTOCOL_INPUTS[n] == 'features')}")
        fn = PROTOCOLS.resolve(args.protocol)
        params = parse_params(args.param, fn, args.protocol)
        train, test = load_features(args.train), load_features(args.test)
    except (EvalCommandError, UnknownName) as err:
        print(f"repro eval: {err}", file=sys.stderr)
        return 2
    try:
        result = fn(train, test, seed=args.seed, **params)
    except (TypeError, ValueError) as err:
        print(f"repro eval {args.protocol}: {err}", file=sys.stderr)
        return 2
    width = max(len(k) for k in _scalars(result)) if _scalars(result) else 0
    for key, value in _scalars(result).items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else
              f"{key:<{width}}  {value}")
    for key, sel in result.get("selection", {}).items():
        print(f"selection: {key} = {sel['value']} ({sel['policy']})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0
