"""``repro eval <protocol> --train train.npz --test test.npz [--param k=v ...]``.

Runs a feature protocol on saved features (npz with arrays ``x``, ``y``, ``index``) and
prints its metrics; ``--out`` also writes the full result (selection, artifacts) as JSON.
Parameter values are parsed as JSON when they parse (``k=200``, ``costs=[0.1,1]``,
``normalize=true``) and kept as strings otherwise (``on=train``); a list parameter also takes
``metrics=ami`` (a list of one) and ``metrics=ami,nmi`` / ``costs=0.1,1`` (comma-separated).
Labels ``y`` may have any integer or integral float dtype (N), or be N x C multi-label
targets; ``index`` may be left out unless the protocol reports sample indices (SVMs).
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
    parser.add_argument("--train", required=True, type=Path, help="npz with x, y[, index]")
    parser.add_argument("--test", required=True, type=Path, help="npz with x, y[, index]")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="protocol parameter (repeatable); VALUE is JSON or a string")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the full result as JSON here")


class EvalCommandError(ValueError):
    pass


# Protocols that read ``index`` (to report which samples they drew or held out); the others
# get ``arange(N)`` when the npz has none.
USES_INDEX = frozenset({"svm_voc07", "svm_places205", "low_shot_svm_voc07",
                        "low_shot_svm_places205"})


def _labels(path: Path, y):
    """``y`` as the protocols read it: N integer labels (integral floats become int64) or
    N x C multi-label targets (unchanged)."""
    import numpy as np

    if y.ndim == 2:
        return y
    if y.ndim != 1:
        raise EvalCommandError(f"{path}: array y has shape {y.shape}; allowed: N labels or "
                               "N x C multi-label targets")
    if y.dtype == bool or np.issubdtype(y.dtype, np.integer):
        return y.astype("int64")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = y[~np.isfinite(y) | (y != np.round(y))][0]
            raise EvalCommandError(f"{path}: array y holds non-integral label {float(bad)!r}; "
                                   "allowed: integer class labels (any integer or float dtype)")
        return y.astype("int64")
    raise EvalCommandError(f"{path}: array y has dtype {y.dtype}; allowed: integer class "
                           "labels (any integer or float dtype)")


def load_features(path: Path, protocol: str | None = None):
    """The npz at ``path`` as ``Features``; ``index`` may be absent unless ``protocol`` reads
    it (``USES_INDEX``; ``None``: required)."""
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
    needs_index = protocol is None or protocol in USES_INDEX
    with archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise EvalCommandError(f"{path}: missing array(s) {sorted(missing)}; an eval npz "
                                   "holds x (N x D), y (N or N x C) and index (N, optional "
                                   "unless the protocol reads it)")
        if needs_index and "index" not in archive.files:
            raise EvalCommandError(f"{path}: missing array index; protocol {protocol} reports "
                                   "sample indices, so it needs index (N integers)")
        try:
            x = archive["x"].astype("float32")
            y = _labels(path, archive["y"])
            index = (archive["index"].astype("int64") if "index" in archive.files
                     else np.arange(len(x), dtype=np.int64))
            return Features(x, y, index)
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, EvalCommandError):
                raise
            raise EvalCommandError(f"{path}: unreadable or malformed arrays ({err})") from None


def _list_kind(annotation: str) -> str | None:
    """"list": the parameter takes only a sequence; "either": a scalar or a sequence;
    None: no sequence."""
    import ast

    from repro.spec import _SEQUENCES

    try:
        node = ast.parse(annotation, mode="eval").body if annotation else None
    except SyntaxError:
        return None

    def is_seq(n) -> bool:
        return isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) \
            and n.value.id in _SEQUENCES

    if node is None:
        return None
    if is_seq(node):
        return "list"
    parts = []
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        parts.append(node.right)
        node = node.left
    parts.append(node)
    return "either" if any(is_seq(n) for n in parts) else None


def _value(raw: str, kind: str | None):
    """JSON when it parses, else a string; for a sequence parameter ``a,b`` is a list of
    two (each JSON or a string) and, where only a list is allowed, a single value is a list
    of one."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if kind is None or isinstance(value, list):
        return value
    if isinstance(value, str) and "," in value:
        return [_value(part.strip(), None) for part in value.split(",")]
    return [value] if kind == "list" else value


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
        params[key] = _value(raw, _list_kind(allowed[key].annotation))
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
        train = load_features(args.train, args.protocol)
        test = load_features(args.test, args.protocol)
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
