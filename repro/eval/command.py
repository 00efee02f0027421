"""``repro eval <protocol> --train train.npz --test test.npz [--param k=v ...]``.

Runs a feature protocol on saved features (npz with arrays ``x``, ``y``, ``index``) and
prints its metrics; ``--out`` also writes the full result (selection, artifacts) as JSON.
Parameter values are parsed as JSON when they parse (``k=200``, ``costs=[0.1,1]``,
``normalize=true``) and kept as strings otherwise (``on=train``).
"""

from __future__ import annotations

import argparse
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
    import pickle
    import zipfile

    import numpy as np

    from repro.eval.types import Features

    if not path.is_file():
        raise EvalCommandError(f"{path}: " + ("not a regular file" if path.exists()
                                              else "no such file"))
    try:
        archive = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError):
        raise EvalCommandError(f"{path}: not a readable .npz archive of x, y, index") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise EvalCommandError(f"{path}: a single array, not an .npz archive of x, y, index")
    with archive:
        missing = {"x", "y", "index"} - set(archive.files)
        if missing:
            raise EvalCommandError(f"{path}: missing array(s) {sorted(missing)}; an eval npz "
                                   "holds x (N x D), y (N or N x C) and index (N)")
        try:
            return Features(archive["x"].astype("float32"), archive["y"],
                            archive["index"].astype("int64"))
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
            raise EvalCommandError(f"{path}: unreadable or malformed arrays ({err})") from None


def parse_params(items: list[str], protocol: str) -> dict:
    """``KEY=VALUE`` items, checked as a spec's evaluation ``params`` are."""
    # repro.spec holds the checks (names from the protocol's source, types from annotations)
    from repro.spec import SpecError, check_protocol_params, protocol_params

    allowed = protocol_params(protocol)
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
    try:
        check_protocol_params(protocol, params, where="--param")
    except SpecError as err:
        raise EvalCommandError(str(err)) from None
    return params


def _check_inputs(train, test, out: Path | None) -> None:
    if train.x.shape[1] != test.x.shape[1]:
        raise EvalCommandError(f"--test: features of dimension {test.x.shape[1]}, --train: "
                               f"{train.x.shape[1]}; allowed: the same dimension")
    if out is not None and out.is_dir():
        raise EvalCommandError(f"--out {str(out)!r}: a directory; allowed: a file path")


def _fail(message: str) -> int:
    from repro.spec import one_line

    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


def _scalars(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("selection", "artifacts")}


def run(args: argparse.Namespace) -> int:
    """Every mistake in the command line is one ``error:`` line on stderr and exit code 2."""
    try:
        if args.protocol in PROTOCOLS and PROTOCOL_INPUTS[args.protocol] != "features":
            raise EvalCommandError(
                f"protocol {args.protocol!r} needs a model and datasets, not saved features; "
                f"feature protocols: "
                f"{', '.join(n for n in PROTOCOLS.names() if PROTOCOL_INPUTS[n] == 'features')}")
        params = parse_params(args.param, args.protocol)  # from source: no import yet
        fn = PROTOCOLS.resolve(args.protocol)
        train, test = load_features(args.train), load_features(args.test)
        _check_inputs(train, test, args.out)
    except (EvalCommandError, UnknownName) as err:
        return _fail(str(err))
    try:
        result = fn(train, test, seed=args.seed, **params)
    except (TypeError, ValueError) as err:
        return _fail(f"repro eval {args.protocol}: {err}")
    width = max(len(k) for k in _scalars(result)) if _scalars(result) else 0
    for key, value in _scalars(result).items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else
              f"{key:<{width}}  {value}")
    for key, sel in result.get("selection", {}).items():
        print(f"selection: {key} = {sel['value']} ({sel['policy']})")
    if args.out:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        except OSError as err:
            return _fail(f"--out {str(args.out)!r}: cannot be written: {err.strerror or err}")
    return 0
